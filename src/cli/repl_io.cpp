#include "cli/repl_io.h"

#include <errno.h>
#include <histedit.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace hearth::cli {

namespace {

volatile sig_atomic_t g_interrupted = 0;

void on_sigint(int) { g_interrupted = 1; }

}  // namespace

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read() returns EINTR, so the prompt sees Ctrl-C
  sigaction(SIGINT, &sa, nullptr);
}

bool take_interrupt() {
  const bool was = g_interrupted != 0;
  g_interrupted = 0;
  return was;
}

bool interrupt_pending() { return g_interrupted != 0; }

// ---- LineReader ---------------------------------------------------------------------------

struct LineReader::Impl {
  EditLine* el = nullptr;
  History* hist = nullptr;
  HistEvent ev{};
  std::string prompt;
  std::string history_file;
  bool ctrl_c = false;

  static const char* prompt_fn(EditLine* el) {
    void* p = nullptr;
    el_get(el, EL_CLIENTDATA, &p);
    return static_cast<Impl*>(p)->prompt.c_str();
  }
  // Ctrl-C is bound as a key (the terminal's ISIG is off while editing), so it ends the line
  // deterministically instead of racing a signal against libedit's read loop.
  static unsigned char on_ctrl_c(EditLine* el, int) {
    void* p = nullptr;
    el_get(el, EL_CLIENTDATA, &p);
    static_cast<Impl*>(p)->ctrl_c = true;
    std::fputs("^C", stdout);
    return CC_NEWLINE;
  }
};

LineReader::LineReader(bool tty) : impl_(std::make_unique<Impl>()), tty_(tty) {
  if (!tty_) return;
  Impl& m = *impl_;
  m.el = el_init("hearth", stdin, stdout, stderr);
  if (m.el == nullptr) {
    tty_ = false;
    return;
  }
  el_set(m.el, EL_CLIENTDATA, impl_.get());
  el_set(m.el, EL_PROMPT, &Impl::prompt_fn);
  el_set(m.el, EL_EDITOR, "emacs");
  el_set(m.el, EL_SETTY, "-d", "-isig", nullptr);
  el_set(m.el, EL_ADDFN, "hearth-interrupt", "Drop the line (Ctrl-C)", &Impl::on_ctrl_c);
  el_set(m.el, EL_BIND, "^C", "hearth-interrupt", nullptr);
  m.hist = history_init();
  if (m.hist != nullptr) {
    history(m.hist, &m.ev, H_SETSIZE, 1000);
    history(m.hist, &m.ev, H_SETUNIQUE, 1);
    el_set(m.el, EL_HIST, history, m.hist);
    if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
      std::error_code ec;
      std::filesystem::create_directories(std::string(home) + "/.hearth", ec);
      m.history_file = std::string(home) + "/.hearth/history";
      history(m.hist, &m.ev, H_LOAD, m.history_file.c_str());
    }
  }
}

LineReader::~LineReader() {
  if (impl_->hist != nullptr) {
    if (!impl_->history_file.empty()) history(impl_->hist, &impl_->ev, H_SAVE, impl_->history_file.c_str());
    history_end(impl_->hist);
  }
  if (impl_->el != nullptr) el_end(impl_->el);
}

void LineReader::add_history(const std::string& line) {
  if (!tty_ || !history_on_ || impl_->hist == nullptr || line.empty()) return;
  history(impl_->hist, &impl_->ev, H_ENTER, line.c_str());
}

LineReader::Status LineReader::read(const std::string& prompt, std::string& line) {
  line.clear();
  if (tty_) {
    Impl& m = *impl_;
    m.prompt = prompt;
    m.ctrl_c = false;
    int count = 0;
    const char* s = el_gets(m.el, &count);
    if (m.ctrl_c) {
      // The dropped text is returned so the caller can tell Ctrl-C on an empty line (twice: exit).
      if (s != nullptr && count > 0) line.assign(s, static_cast<size_t>(count));
      if (!line.empty() && line.back() == '\n') line.pop_back();
      std::fputc('\n', stdout);
      return Status::kInterrupt;
    }
    if (s == nullptr || count <= 0) {
      if (take_interrupt()) return Status::kInterrupt;
      return Status::kEof;
    }
    line.assign(s, static_cast<size_t>(count));
    if (!line.empty() && line.back() == '\n') line.pop_back();
    return Status::kLine;
  }
  // A pipe: read(2) so a SIGINT (no SA_RESTART) interrupts the wait.
  for (;;) {
    if (const size_t nl = pending_.find('\n'); nl != std::string::npos) {
      line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return Status::kLine;
    }
    if (eof_) {
      if (pending_.empty()) return Status::kEof;
      line = std::move(pending_);
      pending_.clear();
      return Status::kLine;
    }
    if (take_interrupt()) return Status::kInterrupt;
    char buf[4096];
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof_ = true;
      continue;
    }
    pending_.append(buf, static_cast<size_t>(n));
  }
}

// ---- Spinner ------------------------------------------------------------------------------

void Spinner::start(std::string label) {
  if (running_ || isatty(STDERR_FILENO) == 0) return;
  label_ = std::move(label);
  running_ = true;
  thread_ = std::thread([this] {
    static const char* frames[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
    for (size_t i = 0; running_; ++i) {
      std::fprintf(stderr, "\r%s %s", frames[i % 10], label_.c_str());
      std::fflush(stderr);
      for (int k = 0; k < 10 && running_; ++k) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  });
}

void Spinner::stop() {
  if (!running_) return;
  running_ = false;
  if (thread_.joinable()) thread_.join();
}

// ---- WordWrapper --------------------------------------------------------------------------

namespace {
// Display columns of UTF-8 text: one per code point (continuation bytes add nothing).
int columns(std::string_view s) {
  int n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}
}  // namespace

void WordWrapper::emit(std::string_view s) { std::fwrite(s.data(), 1, s.size(), stdout); }

void WordWrapper::flush() {
  if (!word_.empty()) {
    const int w = columns(word_);
    if (width_ > 0 && col_ > 0 && col_ + w > width_) {
      emit("\n");
      col_ = 0;
    }
    emit(word_);
    col_ += w;
    word_.clear();
  }
  std::fflush(stdout);
}

void WordWrapper::write(std::string_view text) {
  if (width_ <= 0) {
    emit(text);
    for (char c : text) col_ = c == '\n' ? 0 : col_ + 1;
    std::fflush(stdout);
    return;
  }
  for (char c : text) {
    if (c == '\n') {
      flush();
      emit("\n");
      col_ = 0;
    } else if (c == ' ') {
      flush();
      if (col_ >= width_) {
        emit("\n");
        col_ = 0;
      } else {
        emit(" ");
        ++col_;
      }
    } else {
      word_ += c;
    }
  }
  std::fflush(stdout);
}

int terminal_width() {
  if (isatty(STDOUT_FILENO) == 0) return 0;
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return 80;
  return ws.ws_col;
}

}  // namespace hearth::cli
