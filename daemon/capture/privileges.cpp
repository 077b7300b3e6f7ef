// SPDX-License-Identifier: Apache-2.0
#include "daemon/capture/privileges.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

namespace teiten::sensor {

namespace {
std::string err(const std::string& what) {
  return what + ": " + std::strerror(errno);
}
}  // namespace

std::string drop_privileges(const std::string& user, const std::vector<std::string>& own) {
  if (::geteuid() != 0)
    return "service.user '" + user + "' is set, but the sensor is not started as root";
  errno = 0;
  const passwd* pw = ::getpwnam(user.c_str());
  if (!pw) return "service.user: no such user '" + user + "'";
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  for (const auto& path : own) {
    // Only the folder itself, opened without following a symlink: never a walk through
    // a tree that the (less trusted) service user can change under us.
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return "cannot create " + path + ": " + ec.message();
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return err("open " + path);
    const int rc = ::fchown(fd, uid, gid);
    ::close(fd);
    if (rc != 0) return err("chown " + path);
  }
  // Every capability but CAP_NET_RAW leaves the bounding set (needs CAP_SETPCAP: before
  // the user changes).
  for (int c = 0; c <= CAP_LAST_CAP; ++c) {
    if (c == CAP_NET_RAW || !CAP_IS_SUPPORTED(c)) continue;
    if (cap_drop_bound(static_cast<cap_value_t>(c)) != 0) return err("cap_drop_bound");
  }
  if (::prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) != 0) return err("prctl(PR_SET_KEEPCAPS)");
  if (::setgroups(0, nullptr) != 0) return err("setgroups");
  if (::setresgid(gid, gid, gid) != 0) return err("setresgid");
  if (::setresuid(uid, uid, uid) != 0) return err("setresuid");
  // The uid change cleared the effective set; keep CAP_NET_RAW alone.
  std::unique_ptr<std::remove_pointer_t<cap_t>, int (*)(void*)> caps(cap_init(), &cap_free);
  const cap_value_t raw[] = {CAP_NET_RAW};
  if (!caps || cap_set_flag(caps.get(), CAP_PERMITTED, 1, raw, CAP_SET) != 0 ||
      cap_set_flag(caps.get(), CAP_EFFECTIVE, 1, raw, CAP_SET) != 0 ||
      cap_set_proc(caps.get()) != 0) {
    return err("cap_set_proc(cap_net_raw=ep)");
  }
  ::prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
  if (::setuid(0) == 0) return "could still become root after dropping privileges";
  return {};
}

std::string describe_privileges() {
  std::unique_ptr<std::remove_pointer_t<cap_t>, int (*)(void*)> caps(cap_get_proc(), &cap_free);
  char* text = caps ? cap_to_text(caps.get(), nullptr) : nullptr;
  std::string out = "uid=" + std::to_string(::getuid()) + " gid=" + std::to_string(::getgid()) +
                    " caps=" + (text ? text : "?");
  if (text) cap_free(text);
  return out;
}

}  // namespace teiten::sensor
