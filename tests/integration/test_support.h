// SPDX-License-Identifier: Apache-2.0
#pragma once

// Helpers for tests that run the real programs: temporary folders, processes, files.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/bucket/bucket_json.h"

namespace teiten::test {

/// A fresh folder under $TMPDIR (or /tmp), removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base ? base : "/tmp") + "/teiten-test-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// An hourly bucket of one row: `packets` scans of `port`/TCP from China (the live
/// notable-changes tests build their hours of these).
inline bucket::SealedBucket hour_bucket(const std::string& sensor, const std::string& boot_id,
                                        std::uint64_t seq, std::int64_t hour, std::uint16_t port,
                                        std::uint64_t packets) {
  bucket::SealedBucket b;
  b.sensor_id = sensor;
  b.boot_id = boot_id;
  b.seq = seq;
  b.start = hour * 3600;
  b.width_s = 3600;
  b.provenance = {"test", std::string(64, '0'), 0, true};
  classify::Key k;
  k.proto = classify::Proto::tcp;
  k.has_port = true;
  k.port = port;
  k.country = classify::country_from_string("CN");
  k.kind = classify::Kind::scan;
  b.rows.push_back(bucket::Row{k, packets, packets * 40, {}});
  return b;
}

/// Result of a finished process.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// key -> text of every element with a data-k attribute in an HTML page (the reports'
/// and the dashboard's figures).
inline std::map<std::string, std::string> html_cells(const std::string& html) {
  std::map<std::string, std::string> out;
  const std::regex re("data-k=\"([^\"]+)\">([^<]*)<");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), re); it != std::sregex_iterator();
       ++it)
    out[(*it)[1]] = (*it)[2];
  return out;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// Runs argv (no shell interpretation of the arguments), capturing stdout and stderr.
inline RunResult run(const std::vector<std::string>& argv, const TempDir& dir) {
  std::string cmd;
  for (const auto& a : argv) cmd += shell_quote(a) + " ";
  const std::string out = dir / ".stdout", err = dir / ".stderr";
  cmd += "</dev/null >" + shell_quote(out) + " 2>" + shell_quote(err);
  const int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

/// A 60 s bucket of `sensor` starting `seq` minutes after 2022-07-01T00:00:00Z, with one
/// row: Mirai-type telnet scans from Japan.
inline bucket::SealedBucket telnet_minute(const std::string& sensor, const std::string& boot,
                                          std::uint64_t seq, std::uint64_t packets,
                                          std::uint64_t bytes) {
  bucket::SealedBucket b;
  b.sensor_id = sensor;
  b.boot_id = boot;
  b.seq = seq;
  b.start = 1656633600 + static_cast<std::int64_t>(seq) * 60;
  b.width_s = 60;
  b.rows.push_back({classify::Key{classify::Proto::tcp, true, 23, classify::make_country('J', 'P'),
                                  classify::Fingerprint::mirai, classify::Kind::scan},
                    packets, bytes});
  return b;
}

/// `promtool check metrics` (Debian's prometheus, installed by scripts/install-deps.sh)
/// on an exposition text: exit code 0 when it parses and passes the linter.
inline RunResult promtool_check_metrics(const std::string& exposition, const TempDir& dir,
                                        const std::string& name) {
  const std::string file = dir / (name + ".prom");
  write_file(file, exposition);
  return run({"/bin/sh", "-c", "exec promtool check metrics < " + shell_quote(file)}, dir);
}

/// Parses JSON lines of sealed buckets; throws on a malformed line.
inline std::vector<bucket::SealedBucket> read_buckets_from_string(const std::string& text) {
  std::istringstream in(text);
  std::vector<bucket::SealedBucket> out;
  std::string line, error;
  while (std::getline(in, line)) {
    auto b = bucket::from_json_line(line, error);
    if (!b) throw std::runtime_error(error);
    out.push_back(std::move(*b));
  }
  return out;
}

/// Parses a JSON-lines file of sealed buckets; throws on a malformed line.
inline std::vector<bucket::SealedBucket> read_buckets(const std::string& path) {
  return read_buckets_from_string(read_file(path));
}

/// A program running in the background, its output going to `log`. Killed (SIGKILL) at
/// scope exit if still running.
class Process {
 public:
  /// `env`: NAME=VALUE entries added to the child's environment.
  Process(const std::vector<std::string>& argv, const std::string& log,
          const std::vector<std::string>& env = {})
      : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Process() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool running() {
    if (exited_) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      status_ = status;
      return false;
    }
    return true;
  }
  void kill(int sig) { ::kill(pid_, sig); }
  pid_t pid() const noexcept { return pid_; }
  /// Waits for the exit; returns the exit code (128 + signal when killed).
  int wait() {
    if (!exited_) {
      waitpid(pid_, &status_, 0);
      exited_ = true;
    }
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  }
  /// Waits up to `timeout` for the exit; nullopt if still running.
  std::optional<int> wait_for(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (running()) {
      if (std::chrono::steady_clock::now() > until) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return wait();
  }
  std::string log() const { return read_file(log_); }

 private:
  pid_t pid_ = -1;
  std::string log_;
  bool exited_ = false;
  int status_ = 0;
};

/// Polls `pred` every 10 ms until it holds or `timeout` passes.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace teiten::test
