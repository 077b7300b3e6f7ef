#pragma once

// Helpers for tests that run the real programs: temporary folders, processes, files.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
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

/// Result of a finished process.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

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

}  // namespace teiten::test
