// The server's own small database (SQLite, `<data dir>/hearth.sqlite`): chat conversations and
// their messages, presets (system prompt + sampling saved by name) and per-model load settings,
// i.e. what the web UI keeps on the server so it survives a browser change or a restart.
// docs/WEBUI.md is the HTTP contract over it (server/app_routes.cpp).
//
// One connection guarded by a mutex: every operation is a few small statements, far below the
// cost of anything else the server does, and SQLite serializes writers anyway. WAL mode, so a
// crash mid-write loses at most that write; every multi-statement change is one transaction.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

struct sqlite3;

namespace hearth::server {

using DbJson = nlohmann::ordered_json;

struct ConversationSummary {
  int64_t id = 0;
  std::string title;
  std::string model;
  std::string created_at;  // RFC 3339 UTC
  std::string updated_at;
  int64_t message_count = 0;
};

struct Conversation {
  ConversationSummary summary;
  std::string system;
  DbJson options = DbJson::object();
  DbJson messages = DbJson::array();  // each an object with "role" and "content"
};

// Fields a create/update sets; unset fields keep their value (or the default on create).
struct ConversationPatch {
  std::optional<std::string> title;
  std::optional<std::string> model;
  std::optional<std::string> system;
  std::optional<DbJson> options;
  std::optional<DbJson> messages;  // replaces the whole list
};

struct Preset {
  std::string name;
  std::string system;
  DbJson options = DbJson::object();
};

class AppDb {
 public:
  // Opens (creating when missing) the database file; ":memory:" for tests.
  static Result<std::unique_ptr<AppDb>> open(const std::string& path);
  ~AppDb();
  AppDb(const AppDb&) = delete;
  AppDb& operator=(const AppDb&) = delete;

  // Newest first; `query` (optional) matches titles and message text, case-insensitively.
  Result<std::vector<ConversationSummary>> list_conversations(const std::string& query = "");
  Result<ConversationSummary> create_conversation(const ConversationPatch& init);
  Result<Conversation> get_conversation(int64_t id);  // kNotFound when missing
  Result<ConversationSummary> update_conversation(int64_t id, const ConversationPatch& patch);
  Result<ConversationSummary> append_messages(int64_t id, const DbJson& messages);
  Status delete_conversation(int64_t id);

  Result<std::vector<Preset>> list_presets();
  Status put_preset(const Preset& p);
  Status delete_preset(const std::string& name);  // kNotFound when missing

  // Per-model settings objects, by canonical model name.
  Result<std::vector<std::pair<std::string, DbJson>>> list_model_settings();
  Result<std::optional<DbJson>> model_settings(const std::string& model);
  Status put_model_settings(const std::string& model, const DbJson& settings);
  Status delete_model_settings(const std::string& model);

  const std::string& path() const { return path_; }

 private:
  explicit AppDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status exec(const char* sql);
  Result<ConversationSummary> summary_locked(int64_t id);
  Status insert_messages_locked(int64_t id, const DbJson& messages, int64_t first_seq);

  sqlite3* db_;
  std::string path_;
  std::mutex mu_;
};

// Checks a message list as the API takes it: an array of objects whose "role" is system, user,
// assistant or tool and whose "content" is a string. The error names the offending index.
Status validate_stored_messages(const DbJson& messages);

}  // namespace hearth::server
