#include "server/app_db.h"

#include <sqlite3.h>

#include <chrono>

#include "server/model_resolver.h"

namespace hearth::server {
namespace app_db {
namespace {

// A prepared statement, finalized on scope exit. bind() indexes from 1 as SQLite does.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return rc_ == SQLITE_OK && st_ != nullptr; }
  Stmt& bind(int i, const std::string& s) {
    sqlite3_bind_text(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(st_); }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(st_, col);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(st_, col));
  }
  int64_t i64(int col) const { return sqlite3_column_int64(st_, col); }
  Status error(const char* what) const {
    return make_error_kind(ErrorKind::kGeneric, "database: {}: {}", what, sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

std::string now_rfc3339() { return rfc3339_utc(std::chrono::system_clock::now()); }

// Text of a JSON value as stored (invalid UTF-8 replaced, never thrown on).
std::string dump(const DbJson& j) { return j.dump(-1, ' ', false, DbJson::error_handler_t::replace); }

DbJson parse_or(const std::string& s, DbJson fallback) {
  auto j = DbJson::parse(s, nullptr, false);
  return j.is_discarded() ? fallback : j;
}

// LIKE pattern for a substring search, with the pattern characters of `q` escaped by '\'.
std::string like_pattern(const std::string& q) {
  std::string out = "%";
  for (char c : q) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out + "%";
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS conversations(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  title TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  system TEXT NOT NULL DEFAULT '',
  options TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages(
  conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  role TEXT NOT NULL,
  content TEXT NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY(conversation_id, seq));
CREATE TABLE IF NOT EXISTS presets(name TEXT PRIMARY KEY, system TEXT NOT NULL, options TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS model_settings(model TEXT PRIMARY KEY, settings TEXT NOT NULL);
)sql";

}  // namespace
}  // namespace app_db

using app_db::Stmt;

Status validate_stored_messages(const DbJson& messages) {
  if (!messages.is_array()) return make_error_kind(ErrorKind::kInvalidArgument, "'messages' must be an array");
  for (size_t i = 0; i < messages.size(); ++i) {
    const DbJson& m = messages[i];
    if (!m.is_object()) return make_error_kind(ErrorKind::kInvalidArgument, "messages[{}] must be an object", i);
    auto role = m.find("role");
    if (role == m.end() || !role->is_string() ||
        (*role != "system" && *role != "user" && *role != "assistant" && *role != "tool")) {
      return make_error_kind(ErrorKind::kInvalidArgument,
                             "messages[{}].role must be \"system\", \"user\", \"assistant\" or \"tool\"", i);
    }
    auto content = m.find("content");
    if (content == m.end() || !content->is_string()) {
      return make_error_kind(ErrorKind::kInvalidArgument, "messages[{}].content must be a string", i);
    }
  }
  return {};
}

Result<std::unique_ptr<AppDb>> AppDb::open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return make_error("cannot open the database {}: {} (set --data-dir to a writable folder)", path, msg);
  }
  std::unique_ptr<AppDb> out(new AppDb(db, path));
  sqlite3_busy_timeout(db, 5000);
  // WAL needs a real file; an in-memory database keeps its default journal.
  Status st = path != ":memory:" ? out->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;") : Status{};
  if (st) st = out->exec("PRAGMA foreign_keys=ON;");
  if (st) st = out->exec(app_db::kSchema);
  if (!st) {
    return make_error("{} is not a usable hearth database ({}); move it away or set --data-dir", path,
                      st.error().message);
  }
  return out;
}

AppDb::~AppDb() { sqlite3_close(db_); }

Status AppDb::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    return make_error_kind(ErrorKind::kGeneric, "database: {}", msg);
  }
  return {};
}

namespace app_db {
namespace {

// Every conversation query selects the same columns (a summary, then system and options), so one
// reader serves them all; `rest` is the WHERE / ORDER BY part.
std::string conversation_query(const char* rest) {
  return std::string(
             "SELECT id, title, model, created_at, updated_at, "
             "(SELECT COUNT(*) FROM messages WHERE conversation_id = c.id), system, options FROM conversations c ") +
         rest;
}

ConversationSummary read_summary(const Stmt& s) {
  return ConversationSummary{s.i64(0), s.text(1), s.text(2), s.text(3), s.text(4), s.i64(5)};
}

}  // namespace
}  // namespace app_db

Result<ConversationSummary> AppDb::summary_locked(int64_t id) {
  Stmt s(db_, app_db::conversation_query("WHERE id = ?1").c_str());
  if (!s.ok()) return std::unexpected(s.error("select").error());
  s.bind(1, id);
  if (s.step() != SQLITE_ROW) return make_error_kind(ErrorKind::kNotFound, "conversation '{}' not found", id);
  return app_db::read_summary(s);
}

Result<std::vector<ConversationSummary>> AppDb::list_conversations(const std::string& query) {
  std::lock_guard lk(mu_);
  const char* all = "ORDER BY updated_at DESC, id DESC";
  const char* search =
      "WHERE title LIKE ?1 ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id "
      "AND m.content LIKE ?1 ESCAPE '\\') ORDER BY updated_at DESC, id DESC";
  Stmt s(db_, app_db::conversation_query(query.empty() ? all : search).c_str());
  if (!s.ok()) return std::unexpected(s.error("list").error());
  if (!query.empty()) s.bind(1, app_db::like_pattern(query));
  std::vector<ConversationSummary> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(app_db::read_summary(s));
  if (rc != SQLITE_DONE) return std::unexpected(s.error("list").error());
  return out;
}

Status AppDb::insert_messages_locked(int64_t id, const DbJson& messages, int64_t first_seq) {
  int64_t seq = first_seq;
  for (const DbJson& m : messages) {
    Stmt one(db_, "INSERT INTO messages(conversation_id, seq, role, content, data) VALUES(?1, ?2, ?3, ?4, ?5)");
    one.bind(1, id).bind(2, seq++).bind(3, m["role"].get<std::string>()).bind(4, m["content"].get<std::string>());
    one.bind(5, app_db::dump(m));
    if (one.step() != SQLITE_DONE) return one.error("insert message");
  }
  return {};
}

Result<ConversationSummary> AppDb::create_conversation(const ConversationPatch& init) {
  if (init.messages) HEARTH_TRY(validate_stored_messages(*init.messages));
  std::lock_guard lk(mu_);
  HEARTH_TRY(exec("BEGIN IMMEDIATE"));
  auto body = [&]() -> Result<int64_t> {
    const std::string now = app_db::now_rfc3339();
    Stmt s(db_,
           "INSERT INTO conversations(title, model, system, options, created_at, updated_at) "
           "VALUES(?1, ?2, ?3, ?4, ?5, ?5)");
    s.bind(1, init.title.value_or("")).bind(2, init.model.value_or("")).bind(3, init.system.value_or(""));
    s.bind(4, app_db::dump(init.options.value_or(DbJson::object()))).bind(5, now);
    if (s.step() != SQLITE_DONE) return std::unexpected(s.error("create").error());
    const int64_t id = sqlite3_last_insert_rowid(db_);
    if (init.messages) HEARTH_TRY(insert_messages_locked(id, *init.messages, 0));
    return id;
  };
  auto id = body();
  if (!id) {
    (void)exec("ROLLBACK");
    return std::unexpected(id.error());
  }
  HEARTH_TRY(exec("COMMIT"));
  return summary_locked(*id);
}

Result<Conversation> AppDb::get_conversation(int64_t id) {
  std::lock_guard lk(mu_);
  Conversation c;
  {
    Stmt s(db_, app_db::conversation_query("WHERE id = ?1").c_str());
    if (!s.ok()) return std::unexpected(s.error("select").error());
    s.bind(1, id);
    if (s.step() != SQLITE_ROW) return make_error_kind(ErrorKind::kNotFound, "conversation '{}' not found", id);
    c.summary = app_db::read_summary(s);
    c.system = s.text(6);
    c.options = app_db::parse_or(s.text(7), DbJson::object());
  }
  Stmt s(db_, "SELECT role, content, data FROM messages WHERE conversation_id = ?1 ORDER BY seq");
  s.bind(1, id);
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    DbJson m = app_db::parse_or(s.text(2), DbJson::object());
    if (!m.is_object()) m = DbJson::object();
    m["role"] = s.text(0);
    m["content"] = s.text(1);
    c.messages.push_back(std::move(m));
  }
  if (rc != SQLITE_DONE) return std::unexpected(s.error("messages").error());
  return c;
}

Result<ConversationSummary> AppDb::update_conversation(int64_t id, const ConversationPatch& p) {
  if (p.messages) HEARTH_TRY(validate_stored_messages(*p.messages));
  std::lock_guard lk(mu_);
  HEARTH_TRY(summary_locked(id));
  HEARTH_TRY(exec("BEGIN IMMEDIATE"));
  auto body = [&]() -> Status {
    auto set = [&](const char* sql, const std::string& v) -> Status {
      Stmt s(db_, sql);
      s.bind(1, v).bind(2, id);
      if (s.step() != SQLITE_DONE) return s.error("update");
      return {};
    };
    if (p.title) HEARTH_TRY(set("UPDATE conversations SET title = ?1 WHERE id = ?2", *p.title));
    if (p.model) HEARTH_TRY(set("UPDATE conversations SET model = ?1 WHERE id = ?2", *p.model));
    if (p.system) HEARTH_TRY(set("UPDATE conversations SET system = ?1 WHERE id = ?2", *p.system));
    if (p.options) HEARTH_TRY(set("UPDATE conversations SET options = ?1 WHERE id = ?2", app_db::dump(*p.options)));
    if (p.messages) {
      Stmt del(db_, "DELETE FROM messages WHERE conversation_id = ?1");
      del.bind(1, id);
      if (del.step() != SQLITE_DONE) return del.error("replace messages");
      HEARTH_TRY(insert_messages_locked(id, *p.messages, 0));
    }
    return set("UPDATE conversations SET updated_at = ?1 WHERE id = ?2", app_db::now_rfc3339());
  };
  if (auto st = body(); !st) {
    (void)exec("ROLLBACK");
    return std::unexpected(st.error());
  }
  HEARTH_TRY(exec("COMMIT"));
  return summary_locked(id);
}

Result<ConversationSummary> AppDb::append_messages(int64_t id, const DbJson& messages) {
  HEARTH_TRY(validate_stored_messages(messages));
  std::lock_guard lk(mu_);
  HEARTH_TRY(summary_locked(id));
  HEARTH_TRY(exec("BEGIN IMMEDIATE"));
  auto body = [&]() -> Status {
    Stmt s(db_, "SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE conversation_id = ?1");
    s.bind(1, id);
    if (s.step() != SQLITE_ROW) return s.error("append");
    HEARTH_TRY(insert_messages_locked(id, messages, s.i64(0)));
    Stmt u(db_, "UPDATE conversations SET updated_at = ?1 WHERE id = ?2");
    u.bind(1, app_db::now_rfc3339()).bind(2, id);
    if (u.step() != SQLITE_DONE) return u.error("append");
    return {};
  };
  if (auto st = body(); !st) {
    (void)exec("ROLLBACK");
    return std::unexpected(st.error());
  }
  HEARTH_TRY(exec("COMMIT"));
  return summary_locked(id);
}

Status AppDb::delete_conversation(int64_t id) {
  std::lock_guard lk(mu_);
  Stmt s(db_, "DELETE FROM conversations WHERE id = ?1");
  s.bind(1, id);
  if (s.step() != SQLITE_DONE) return s.error("delete");
  if (sqlite3_changes(db_) == 0) return make_error_kind(ErrorKind::kNotFound, "conversation '{}' not found", id);
  return {};
}

Result<std::vector<Preset>> AppDb::list_presets() {
  std::lock_guard lk(mu_);
  Stmt s(db_, "SELECT name, system, options FROM presets ORDER BY name");
  std::vector<Preset> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back({s.text(0), s.text(1), app_db::parse_or(s.text(2), {})});
  if (rc != SQLITE_DONE) return std::unexpected(s.error("presets").error());
  return out;
}

Status AppDb::put_preset(const Preset& p) {
  std::lock_guard lk(mu_);
  Stmt s(db_,
         "INSERT INTO presets(name, system, options) VALUES(?1, ?2, ?3) "
         "ON CONFLICT(name) DO UPDATE SET system = excluded.system, options = excluded.options");
  s.bind(1, p.name).bind(2, p.system).bind(3, app_db::dump(p.options));
  if (s.step() != SQLITE_DONE) return s.error("save preset");
  return {};
}

Status AppDb::delete_preset(const std::string& name) {
  std::lock_guard lk(mu_);
  Stmt s(db_, "DELETE FROM presets WHERE name = ?1");
  s.bind(1, name);
  if (s.step() != SQLITE_DONE) return s.error("delete preset");
  if (sqlite3_changes(db_) == 0) return make_error_kind(ErrorKind::kNotFound, "preset '{}' not found", name);
  return {};
}

Result<std::vector<std::pair<std::string, DbJson>>> AppDb::list_model_settings() {
  std::lock_guard lk(mu_);
  Stmt s(db_, "SELECT model, settings FROM model_settings ORDER BY model");
  std::vector<std::pair<std::string, DbJson>> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.emplace_back(s.text(0), app_db::parse_or(s.text(1), DbJson::object()));
  if (rc != SQLITE_DONE) return std::unexpected(s.error("model settings").error());
  return out;
}

Result<std::optional<DbJson>> AppDb::model_settings(const std::string& model) {
  std::lock_guard lk(mu_);
  Stmt s(db_, "SELECT settings FROM model_settings WHERE model = ?1");
  s.bind(1, model);
  const int rc = s.step();
  if (rc == SQLITE_DONE) return std::optional<DbJson>();
  if (rc != SQLITE_ROW) return std::unexpected(s.error("model settings").error());
  return std::optional<DbJson>(app_db::parse_or(s.text(0), DbJson::object()));
}

Status AppDb::put_model_settings(const std::string& model, const DbJson& settings) {
  std::lock_guard lk(mu_);
  Stmt s(db_,
         "INSERT INTO model_settings(model, settings) VALUES(?1, ?2) "
         "ON CONFLICT(model) DO UPDATE SET settings = excluded.settings");
  s.bind(1, model).bind(2, app_db::dump(settings));
  if (s.step() != SQLITE_DONE) return s.error("save model settings");
  return {};
}

Status AppDb::delete_model_settings(const std::string& model) {
  std::lock_guard lk(mu_);
  Stmt s(db_, "DELETE FROM model_settings WHERE model = ?1");
  s.bind(1, model);
  if (s.step() != SQLITE_DONE) return s.error("delete model settings");
  return {};
}

}  // namespace hearth::server
