// `q3vl chat` on a terminal: Ctrl-C stops a reply, not the REPL (issue #7).
//
// The chat runs on a pseudo-terminal (forkpty: its own session, the pty its controlling
// terminal), and the test types Ctrl-C as a user does: it writes the terminal's interrupt
// character (0x03) and the kernel's line discipline sends SIGINT to the chat. The reply is
// greedy with a large token budget, so only the interrupt can end it early; /stats then
// shows how it ended ("finish cancelled", fewer tokens than the budget).
#include <gtest/gtest.h>

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "runtime/runtime_fixture.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Generous: the machine is shared and the tests may run under a parallel CTest.
constexpr auto kPatience = std::chrono::seconds(180);

// One `q3vl chat` process on a pseudo-terminal, echo off (so its output holds only what
// the chat prints), '\r' of the terminal's "\r\n" dropped. Killed (SIGKILL, by pid) if
// still running when destroyed.
class TerminalChat {
 public:
  explicit TerminalChat(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    // Canonical mode and ISIG as a login terminal has them, echo off.
    termios mode{};
    cfmakeraw(&mode);
    mode.c_iflag = ICRNL | IXON;
    mode.c_oflag = OPOST | ONLCR;
    mode.c_lflag = ICANON | ISIG | IEXTEN;
    mode.c_cflag = CS8 | CREAD;
    mode.c_cc[VINTR] = 0x03;
    mode.c_cc[VEOF] = 0x04;
    mode.c_cc[VMIN] = 1;
    mode.c_cc[VTIME] = 0;
    cfsetispeed(&mode, B38400);
    cfsetospeed(&mode, B38400);
    pid_ = forkpty(&master_, nullptr, &mode, nullptr);
    if (pid_ == 0) {
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~TerminalChat() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }
  TerminalChat(const TerminalChat&) = delete;
  TerminalChat& operator=(const TerminalChat&) = delete;

  bool started() const { return pid_ > 0 && master_ >= 0; }

  void type(const std::string& keys) {
    ASSERT_EQ(::write(master_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  }
  void ctrl_c() { type("\x03"); }

  // Reads until `needle` appears after the read position, then moves the position past
  // it. Returns the text from the old position up to the needle; nullopt on timeout or
  // end of output.
  std::optional<std::string> read_until(const std::string& needle) {
    while (true) {
      const auto at = output_.find(needle, position_);
      if (at != std::string::npos) {
        std::string before = output_.substr(position_, at - position_);
        position_ = at + needle.size();
        return before;
      }
      if (!read_more()) return std::nullopt;
    }
  }
  // Reads until at least `bytes` new bytes follow the read position (they stay unread).
  bool read_at_least(std::size_t bytes) {
    while (output_.size() < position_ + bytes) {
      if (!read_more()) return false;
    }
    return true;
  }

  // Waits for the process to end (reading its output meanwhile); its wait status, or
  // nullopt on timeout.
  std::optional<int> wait_exit() {
    const auto deadline = Clock::now() + kPatience;
    while (!status_ && Clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        status_ = status;
        break;
      }
      read_more(std::chrono::milliseconds(100));
    }
    return status_;
  }

  const std::string& output() const { return output_; }

 private:
  // Appends what the chat prints within `wait`. False when nothing came (timeout or
  // the terminal closed).
  bool read_more(std::chrono::milliseconds wait = std::chrono::duration_cast<std::chrono::milliseconds>(kPatience)) {
    pollfd p{master_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
    char buffer[4096];
    const ssize_t n = ::read(master_, buffer, sizeof buffer);
    if (n <= 0) return false;  // EIO once the chat has closed the terminal
    for (ssize_t i = 0; i < n; ++i) {
      if (buffer[i] != '\r') output_.push_back(buffer[i]);
    }
    return true;
  }

  pid_t pid_ = -1;
  int master_ = -1;
  std::optional<int> status_;
  std::string output_;
  std::size_t position_ = 0;
};

struct UsageLine {
  long long completion = 0;
  std::string finish;
};

// The "[usage] ..." line /stats prints for the last reply.
std::optional<UsageLine> parse_usage(const std::string& text) {
  static const std::regex pattern(R"(\[usage\] prompt \d+ \(cached \d+, image \d+, video \d+\), completion (\d+), finish (\w+))");
  std::smatch m;
  if (!std::regex_search(text, m, pattern)) return std::nullopt;
  return UsageLine{std::stoll(m[1]), m[2]};
}

constexpr long long kBudget = 3000;  // max new tokens per reply

TEST(ChatInterrupt, CtrlCStopsTheReplyNotTheRepl) {
  const auto package = runtime_package("tiny");
  TerminalChat chat({q3vl_exe().string(), "chat", "--model", package.string(), "--temperature", "0",
                     "--max-new-tokens", std::to_string(kBudget), "--threads", "1"});
  ASSERT_TRUE(chat.started());
  ASSERT_TRUE(chat.read_until("> ")) << "no first prompt:\n" << chat.output();

  // A reply is streaming: Ctrl-C ends it, the chat marks it and prompts again.
  chat.type("Tell me a very long story.\n");
  ASSERT_TRUE(chat.read_at_least(16)) << "no reply text:\n" << chat.output();
  chat.ctrl_c();
  ASSERT_TRUE(chat.read_until(" [stopped]\n> ")) << "reply not stopped:\n" << chat.output();
  chat.type("/stats\n");
  const auto stats = chat.read_until("\n> ");
  ASSERT_TRUE(stats) << chat.output();
  const auto stopped = parse_usage(*stats);
  ASSERT_TRUE(stopped) << *stats;
  EXPECT_EQ(stopped->finish, "cancelled") << *stats;
  EXPECT_GT(stopped->completion, 0) << *stats;
  EXPECT_LT(stopped->completion, kBudget) << *stats;

  // The REPL goes on: the next message gets a whole reply (nothing left over from the
  // interrupt cancels it).
  chat.type("Now a short one.\n");
  chat.type("/stats\n");  // queued: read once the reply is done
  const auto second = chat.read_until("[chat] vision calls");
  ASSERT_TRUE(second) << "no second reply:\n" << chat.output();
  const auto answered = parse_usage(*second);
  ASSERT_TRUE(answered) << *second;
  EXPECT_NE(answered->finish, "cancelled") << *second;
  EXPECT_GT(answered->completion, 0) << *second;
  ASSERT_TRUE(chat.read_until("\n> ")) << chat.output();

  // Ctrl-C at an empty prompt, twice: each gives a fresh prompt; the REPL stays.
  for (int i = 0; i < 2; ++i) {
    chat.ctrl_c();
    const auto fresh = chat.read_until("> ");
    ASSERT_TRUE(fresh) << "no prompt after Ctrl-C " << i << ":\n" << chat.output();
    EXPECT_EQ(*fresh, "\n") << "Ctrl-C " << i;
  }
  // Ctrl-C after typing part of a line drops that line (the terminal discards it).
  chat.type("this is never sent");
  chat.ctrl_c();
  ASSERT_TRUE(chat.read_until("\n> ")) << chat.output();
  chat.type("/stats\n");
  const auto after = chat.read_until("\n> ");
  ASSERT_TRUE(after) << chat.output();
  const auto unchanged = parse_usage(*after);
  ASSERT_TRUE(unchanged) << *after;
  EXPECT_EQ(unchanged->completion, answered->completion) << "a dropped line was answered:\n" << *after;

  chat.type("/quit\n");
  const auto status = chat.wait_exit();
  ASSERT_TRUE(status) << "chat did not exit after /quit:\n" << chat.output();
  ASSERT_TRUE(WIFEXITED(*status)) << "status " << *status << "\n" << chat.output();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << chat.output();
}

// End of input (Ctrl-D) at the prompt ends the chat with status 0, also right after a
// reply was stopped with Ctrl-C (the interrupt is not carried over to the prompt).
TEST(ChatInterrupt, CtrlDAfterAStoppedReplyExits) {
  const auto package = runtime_package("tiny");
  TerminalChat chat({q3vl_exe().string(), "chat", "--model", package.string(), "--temperature", "0",
                     "--max-new-tokens", std::to_string(kBudget), "--threads", "1"});
  ASSERT_TRUE(chat.started());
  ASSERT_TRUE(chat.read_until("> ")) << chat.output();
  chat.type("Tell me a very long story.\n");
  ASSERT_TRUE(chat.read_at_least(16)) << chat.output();
  chat.ctrl_c();
  ASSERT_TRUE(chat.read_until(" [stopped]\n> ")) << chat.output();
  chat.type("\x04");
  const auto status = chat.wait_exit();
  ASSERT_TRUE(status) << "chat did not exit on Ctrl-D:\n" << chat.output();
  ASSERT_TRUE(WIFEXITED(*status)) << chat.output();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << chat.output();
}

}  // namespace
}  // namespace q3vl::testing
