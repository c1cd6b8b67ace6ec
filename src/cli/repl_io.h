// Terminal plumbing for `hearth run`: reading lines (libedit on a terminal, plain reads on a
// pipe), Ctrl-C, the spinner, and word wrap.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace hearth::cli {

// SIGINT while the REPL runs sets a flag (the token callback polls it and stops the reply)
// instead of killing the process. One-shot runs keep the default (Ctrl-C exits).
void install_interrupt_handler();
// True once after a SIGINT arrived (the flag is cleared).
bool take_interrupt();
// True if a SIGINT arrived and was not taken yet.
bool interrupt_pending();

class LineReader {
 public:
  enum class Status { kLine, kInterrupt, kEof };
  // `tty`: libedit with history (~/.hearth/history); else unbuffered reads of stdin, so a
  // SIGINT at the prompt is seen as kInterrupt rather than end of input.
  explicit LineReader(bool tty);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // One line without its newline. kInterrupt: Ctrl-C at the prompt; `line` then holds the text
  // that was dropped (empty: Ctrl-C on an empty line).
  Status read(const std::string& prompt, std::string& line);
  void add_history(const std::string& line);
  void set_history(bool on) { history_on_ = on; }
  bool tty() const { return tty_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool tty_ = false;
  bool history_on_ = true;
  std::string pending_;  // non-TTY: bytes read past the last newline
  bool eof_ = false;
};

// A braille spinner on stderr while the model loads or the first token is pending. Does
// nothing unless stderr is a terminal.
class Spinner {
 public:
  Spinner() = default;
  ~Spinner() { stop(); }
  // `label` follows the spinner ("Thinking..." while a hidden thought streams).
  void start(std::string label = "");
  void stop();  // erases the spinner; idempotent

 private:
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::string label_;
};

// Writes reply text to stdout, breaking lines at spaces so words stay whole at `width` columns
// (width 0: no wrapping).
class WordWrapper {
 public:
  explicit WordWrapper(int width) : width_(width) {}
  void write(std::string_view text);
  // Writes the word still held back.
  void flush();
  int column() const { return col_; }
  // Bytes written so far end with a newline (or nothing was written).
  bool at_line_start() const { return col_ == 0 && word_.empty(); }
  void reset() {
    col_ = 0;
    word_.clear();
  }

 private:
  void emit(std::string_view s);
  int width_;
  int col_ = 0;
  std::string word_;
};

// Columns of the terminal on stdout; 0 when stdout is not a terminal.
int terminal_width();

}  // namespace hearth::cli
