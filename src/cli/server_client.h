// Talking to the running `hearth serve` (ps, stop): $HEARTH_HOST, and $HEARTH_API_KEY sent as a
// Bearer token, as Ollama's client sends OLLAMA_API_KEY-style credentials.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "base/error.h"
#include "store/http_client.h"

namespace hearth::cli {

// Sends the request to the server; errors are one line that tells the user what to do (no
// server running, API key missing or refused, the server's own error message).
Result<nlohmann::json> server_call(const std::string& method, const std::string& path, const std::string& body = "");

}  // namespace hearth::cli
