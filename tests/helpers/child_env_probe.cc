// Runs TakeChildEnvironment() and prints what it found, one fact per line:
//   role <r>
//   listener <name> <fd> <port or path>
//   control <fd>
//   env <VAR> <set|unset>       for each contract variable, after the call
//   cloexec <fd> <0|1>
// or "error <message>" and exit 1.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "protocol/child_env.h"

namespace {
std::string Where(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  if (ss.ss_family == AF_INET) return std::to_string(ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port));
  if (ss.ss_family == AF_UNIX) return reinterpret_cast<sockaddr_un*>(&ss)->sun_path;
  return "?";
}
}  // namespace

int main() {
  auto env = baton::protocol::TakeChildEnvironment();
  if (!env) {
    std::printf("error %s\n", env.error().message.c_str());
    return 1;
  }
  std::printf("role %s\n", std::string(baton::protocol::LaunchRoleName(env->role)).c_str());
  for (const auto& l : env->listeners) {
    std::printf("listener %s %d %s\n", l.name.c_str(), l.fd, Where(l.fd).c_str());
    std::printf("cloexec %d %d\n", l.fd, (::fcntl(l.fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
  }
  if (env->control_fd >= 0) {
    std::printf("control %d\n", env->control_fd);
    std::printf("cloexec %d %d\n", env->control_fd, (::fcntl(env->control_fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
    // Prove it is the channel: echo one byte back.
    char c = 0;
    if (::read(env->control_fd, &c, 1) == 1) {
      c = static_cast<char>(c + 1);
      (void)::write(env->control_fd, &c, 1);
    }
  }
  for (auto v : baton::protocol::kContractVariables) {
    std::string name(v);
    std::printf("env %s %s\n", name.c_str(), std::getenv(name.c_str()) ? "set" : "unset");
  }
  return 0;
}
