// An unmodified socket-activated daemon: only libsystemd, no baton.
// Prints "n <count>" then "fd <fd> <name> <is_listening_inet_or_unix>".
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <cstdlib>

int main() {
  char** names = nullptr;
  int n = sd_listen_fds_with_names(0, &names);
  std::printf("n %d\n", n);
  for (int i = 0; i < n; ++i) {
    int fd = SD_LISTEN_FDS_START + i;
    int listening = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);
    std::printf("fd %d %s %d\n", fd, names ? names[i] : "?", listening);
    if (names) std::free(names[i]);
  }
  std::free(names);
  return n > 0 ? 0 : 1;
}
