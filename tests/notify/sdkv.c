/* sdkv: a small HTTP key-value daemon that knows nothing of baton. It uses
 * only systemd's conventions, as an unmodified distribution daemon would:
 * its listening sockets from LISTEN_FDS/LISTEN_PID (sd_listen_fds(3)) and
 * its state on $NOTIFY_SOCKET (sd_notify(3)), both implemented here by hand
 * (no libsystemd, no libbaton). The tests of docs/unmodified.md drive it.
 *
 *   PUT /kv/<key>   the body is the value (a file in --data, written with
 *                   rename, so two generations may serve at once)
 *   GET /kv/<key>   200 with the value, 404 if absent
 *   GET /healthz    200 "pid=<pid> gen=<n> fds=<LISTEN_FDNAMES>"
 *   a datagram      on an inherited datagram socket (a udp:// listener):
 *                   answered to its sender with "pid=<pid> " + the datagram
 *
 * HTTP/1.1 keep-alive. On SIGTERM/SIGINT/SIGQUIT: STOPPING=1, close the
 * listeners, answer "Connection: close" from then on, close connections
 * idle after a response (300 ms) or that never sent a request (3 s), exit 0
 * once none is left.
 *
 * Test switches: --never-ready, --exit-before-ready CODE, --errno N,
 * --stopping-before-ready, --ready-delay-ms N, --extend-ms N,
 * --ignore-term, --store-state (keep a generation counter in a memfd parked
 * in the FD store), --store-extra N (park N more, fresh descriptors),
 * --watchdog (WATCHDOG=1 at a third of WATCHDOG_USEC), --watchdog-stop-ms N
 * (stop that after N ms), --watchdog-stop-file PATH (stop it once PATH
 * exists), --watchdog-usec N (set its own period with WATCHDOG_USEC=N
 * after READY=1 and ping at a third of that), --junk (send bad datagrams after READY=1),
 * --mainpid, --fail-healthz (GET /healthz answers 503), --store-and-die
 * (on SIGUSR1: send 100 STATUS= datagrams, park a fresh descriptor named
 * "last-words-<pid>" in the FD store and exit 9 at once, as a service that
 * saves its state on its way out). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONN 4096
#define BUF 65536

struct conn {
  int fd;
  char in[BUF];
  size_t in_len;
  char* out;
  size_t out_len, out_off;
  int close_after;
  int served; /* responses written in full */
  long long last_ms;
};

static struct conn* conns[MAX_CONN];
static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t store_and_die_requested;
static const char* data_dir = ".";  /* --data; else $BATON_DATA_DIR (the test harness sets it) */
static int listeners[16];
static int n_listeners;
static int udp_listeners[16]; /* bound datagram sockets: echoed */
static int n_udp;
static unsigned long generation;
static char fdnames[512];
static int fail_healthz;  /* --fail-healthz */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* sd_notify with optional descriptors, by hand. */
static int notify_fds(const char* msg, size_t len, const int* fds, int nfds) {
  const char* path = getenv("NOTIFY_SOCKET");
  if (!path || !*path) return 0;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct iovec iov = {(void*)msg, len};
  struct msghdr mh = {.msg_name = &addr, .msg_namelen = sizeof(addr), .msg_iov = &iov, .msg_iovlen = 1};
  char control[CMSG_SPACE(sizeof(int) * 16)];
  if (nfds > 0) {
    memset(control, 0, sizeof(control));
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  int r = (int)sendmsg(s, &mh, MSG_NOSIGNAL);
  close(s);
  return r;
}

static void notify(const char* msg) { notify_fds(msg, strlen(msg), NULL, 0); }

static void on_usr1(int sig) {
  (void)sig;
  store_and_die_requested = 1;
}

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static int valid_key(const char* k, size_t n) {
  if (n == 0 || n > 200) return 0;
  for (size_t i = 0; i < n; ++i) {
    char c = k[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return 0;
  }
  return 1;
}

static void respond(struct conn* c, int status, const char* body, size_t body_len) {
  const char* reason = status == 200   ? "OK"
                       : status == 404 ? "Not Found"
                       : status == 503 ? "Service Unavailable"
                                       : "Bad Request";
  if (stop_requested) c->close_after = 1;
  char head[256];
  int h = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n", status,
                   reason, body_len, c->close_after ? "close" : "keep-alive");
  c->out = realloc(c->out, (size_t)h + body_len);
  memcpy(c->out, head, (size_t)h);
  if (body_len) memcpy(c->out + h, body, body_len);
  c->out_len = (size_t)h + body_len;
  c->out_off = 0;
}

/* Handles one complete request at the head of c->in; returns its length,
 * 0 if incomplete, -1 if bad. */
static long handle(struct conn* c) {
  char* end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
  if (!end) return c->in_len >= BUF ? -1 : 0;
  size_t head_len = (size_t)(end - c->in) + 4;
  size_t body_len = 0;
  char* cl = memmem(c->in, head_len, "Content-Length:", 15);
  if (!cl) cl = memmem(c->in, head_len, "content-length:", 15);
  if (cl) body_len = strtoul(cl + 15, NULL, 10);
  if (head_len + body_len > BUF) return -1;
  if (c->in_len < head_len + body_len) return 0;
  if (memmem(c->in, head_len, "Connection: close", 17) || memmem(c->in, head_len, "connection: close", 17))
    c->close_after = 1;
  char method[8] = {0}, path[256] = {0};
  if (sscanf(c->in, "%7s %255s", method, path) != 2) return -1;
  const char* body = c->in + head_len;
  if (strcmp(path, "/healthz") == 0) {
    char b[700];
    int n = snprintf(b, sizeof(b), "pid=%d gen=%lu fds=%s\n", getpid(), generation, fdnames);
    respond(c, fail_healthz ? 503 : 200, b, (size_t)n);
  } else if (strncmp(path, "/kv/", 4) == 0 && valid_key(path + 4, strlen(path + 4))) {
    char file[512], tmp[560];
    snprintf(file, sizeof(file), "%s/%s", data_dir, path + 4);
    if (strcmp(method, "PUT") == 0) {
      snprintf(tmp, sizeof(tmp), "%s.tmp.%d", file, getpid());
      int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0 || write(fd, body, body_len) != (ssize_t)body_len || close(fd) != 0 || rename(tmp, file) != 0) {
        respond(c, 400, "write failed\n", 13);
      } else {
        respond(c, 200, "", 0);
      }
    } else {
      int fd = open(file, O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        respond(c, 404, "", 0);
      } else {
        char v[BUF];
        ssize_t n = read(fd, v, sizeof(v));
        close(fd);
        respond(c, 200, v, n > 0 ? (size_t)n : 0);
      }
    }
  } else {
    respond(c, 400, "bad request\n", 12);
  }
  return (long)(head_len + body_len);
}

static void drop(int ep, struct conn* c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  conns[c->fd] = NULL;
  free(c->out);
  free(c);
}

/* Reads, answers what is complete, writes; returns 0 when the connection is done. */
static int service(struct conn* c) {
  for (;;) {
    if (c->out_off < c->out_len) {
      ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
      if (w < 0) return errno == EAGAIN ? 1 : 0;
      c->out_off += (size_t)w;
      if (c->out_off < c->out_len) return 1;
      c->out_len = c->out_off = 0;
      ++c->served;
      if (c->close_after) return 0;
    }
    long used = handle(c);
    if (used < 0) return 0;
    if (used > 0) {
      memmove(c->in, c->in + used, c->in_len - (size_t)used);
      c->in_len -= (size_t)used;
      continue;
    }
    ssize_t r = read(c->fd, c->in + c->in_len, BUF - c->in_len);
    if (r == 0) return 0;
    if (r < 0) return errno == EAGAIN ? 1 : 0;
    c->in_len += (size_t)r;
    c->last_ms = now_ms();
  }
}

/* The generation counter in a memfd kept in the FD store: 1 on the first
 * start, one more on every later one (handed back through LISTEN_FDS). */
static void store_state(int state_fd) {
  if (state_fd < 0) {
    state_fd = memfd_create("sdkv-state", MFD_CLOEXEC);
    if (state_fd < 0 || ftruncate(state_fd, 8) != 0) return;
  }
  uint64_t g = 0;
  if (pread(state_fd, &g, sizeof(g), 0) != sizeof(g)) g = 0;
  ++g;
  if (pwrite(state_fd, &g, sizeof(g), 0) != sizeof(g)) return;
  generation = (unsigned long)g;
  const char msg[] = "FDSTORE=1\nFDNAME=state";
  notify_fds(msg, sizeof(msg) - 1, &state_fd, 1);
}

static void store_extra(int n) {
  for (int i = 0; i < n; ++i) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return;
    char msg[80];
    int len = snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=extra-%d-%d", getpid(), i);
    notify_fds(msg, (size_t)len, &p[0], 1);
    close(p[0]);
    close(p[1]);
  }
}

/* Answers every datagram waiting on `fd` with "pid=<pid> " + the datagram. */
static void echo_datagrams(int fd) {
  for (;;) {
    char in[2048], out[2100];
    struct sockaddr_storage from;
    socklen_t flen = sizeof(from);
    ssize_t r = recvfrom(fd, in, sizeof(in), MSG_DONTWAIT, (struct sockaddr*)&from, &flen);
    if (r < 0) return;
    int h = snprintf(out, sizeof(out), "pid=%d ", getpid());
    memcpy(out + h, in, (size_t)r);
    sendto(fd, out, (size_t)h + (size_t)r, MSG_DONTWAIT, (struct sockaddr*)&from, flen);
  }
}

static void send_junk(void) {
  static char big[65536];
  memset(big, 'x', sizeof(big));
  notify_fds(big, sizeof(big), NULL, 0);                       /* oversized */
  notify("this is not an assignment");                          /* malformed */
  int p[2];
  if (pipe2(p, O_CLOEXEC) == 0) {
    notify_fds("STATUS=with an fd", 17, &p[0], 1);             /* unannounced_fd */
    close(p[0]);
    close(p[1]);
  }
  notify("STATUS=after junk");
}

int main(int argc, char** argv) {
  int never_ready = 0, exit_before_ready = -1, errno_before = 0, stopping_before = 0, ready_delay = 0, extend = 0;
  if (getenv("BATON_DATA_DIR")) data_dir = getenv("BATON_DATA_DIR");
  int ignore_term = 0, want_state = 0, extra = 0, watchdog = 0, watchdog_stop = -1, junk = 0, mainpid = 0;
  const char* watchdog_stop_file = NULL;
  int store_and_die = 0;
  long long watchdog_usec = 0;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "0";
    if (!strcmp(a, "--data")) data_dir = v, ++i;
    else if (!strcmp(a, "--never-ready")) never_ready = 1;
    else if (!strcmp(a, "--exit-before-ready")) exit_before_ready = atoi(v), ++i;
    else if (!strcmp(a, "--errno")) errno_before = atoi(v), ++i;
    else if (!strcmp(a, "--stopping-before-ready")) stopping_before = 1;
    else if (!strcmp(a, "--ready-delay-ms")) ready_delay = atoi(v), ++i;
    else if (!strcmp(a, "--extend-ms")) extend = atoi(v), ++i;
    else if (!strcmp(a, "--ignore-term")) ignore_term = 1;
    else if (!strcmp(a, "--store-state")) want_state = 1;
    else if (!strcmp(a, "--store-extra")) extra = atoi(v), ++i;
    else if (!strcmp(a, "--watchdog")) watchdog = 1;
    else if (!strcmp(a, "--watchdog-stop-ms")) watchdog_stop = atoi(v), ++i;
    else if (!strcmp(a, "--watchdog-stop-file")) watchdog_stop_file = v, ++i;
    else if (!strcmp(a, "--watchdog-usec")) watchdog_usec = atoll(v), ++i;
    else if (!strcmp(a, "--junk")) junk = 1;
    else if (!strcmp(a, "--mainpid")) mainpid = 1;
    else if (!strcmp(a, "--fail-healthz")) fail_healthz = 1;
    else if (!strcmp(a, "--store-and-die")) store_and_die = 1;
    else {
      fprintf(stderr, "sdkv: unknown argument %s\n", a);
      return 2;
    }
  }
  /* sd_listen_fds(): ours only if LISTEN_PID names us. */
  const char* lpid = getenv("LISTEN_PID");
  const char* lfds = getenv("LISTEN_FDS");
  const char* lnames = getenv("LISTEN_FDNAMES");
  if (!lpid || !lfds || atoi(lpid) != getpid()) {
    fprintf(stderr, "sdkv: no LISTEN_FDS for this pid: start me socket-activated\n");
    return 1;
  }
  snprintf(fdnames, sizeof(fdnames), "%s", lnames ? lnames : "");
  int n = atoi(lfds), state_fd = -1;
  char names[512];
  snprintf(names, sizeof(names), "%s", lnames ? lnames : "");
  char* save = NULL;
  char* name = strtok_r(names, ":", &save);
  for (int i = 0; i < n; ++i, name = name ? strtok_r(NULL, ":", &save) : NULL) {
    int fd = 3 + i;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    int accepting = 0;
    socklen_t len = sizeof(accepting);
    int type = 0;
    socklen_t tlen = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting) {
      if (n_listeners < 16) listeners[n_listeners++] = fd;
    } else if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_DGRAM && !(name && !strcmp(name, "state"))) {
      if (n_udp < 16) udp_listeners[n_udp++] = fd;
    } else if (name && !strcmp(name, "state")) {
      state_fd = fd;
    }
  }
  if (n_listeners == 0 && n_udp == 0) {
    fprintf(stderr, "sdkv: no listening socket among LISTEN_FDS=%d\n", n);
    return 1;
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGQUIT, &sa, NULL);
  if (ignore_term) signal(SIGTERM, SIG_IGN);
  if (store_and_die) {
    struct sigaction su = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &su, NULL);
  }
  signal(SIGPIPE, SIG_IGN);

  if (extend) {
    char m[64];
    snprintf(m, sizeof(m), "EXTEND_TIMEOUT_USEC=%lld", (long long)extend * 1000);
    notify(m);
  }
  if (exit_before_ready >= 0) return exit_before_ready;
  if (errno_before) {
    char m[32];
    snprintf(m, sizeof(m), "ERRNO=%d", errno_before);
    notify(m);
  }
  if (stopping_before) notify("STOPPING=1");
  if (want_state) store_state(state_fd);
  store_extra(extra);
  if (ready_delay) usleep((useconds_t)ready_delay * 1000);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < n_listeners; ++i) {
    fcntl(listeners[i], F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listeners[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, listeners[i], &ev);
  }
  /* Non-blocking per call (MSG_DONTWAIT), not O_NONBLOCK: the file status
   * flags are the open file's, shared with the supervisor and the other
   * generation. */
  for (int i = 0; i < n_udp; ++i) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = udp_listeners[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, udp_listeners[i], &ev);
  }
  if (!never_ready && !errno_before && !stopping_before) {
    char m[128];
    snprintf(m, sizeof(m), "READY=1\nSTATUS=serving as pid %d%s", getpid(), mainpid ? "\nMAINPID=1" : "");
    notify(m);
  }
  if (junk) send_junk();
  const char* wd = getenv("WATCHDOG_USEC");
  long long wd_every = watchdog && wd ? atoll(wd) / 3000 : 0, wd_next = now_ms(), started = now_ms();
  if (watchdog && watchdog_usec > 0) {
    char m[64];
    snprintf(m, sizeof(m), "WATCHDOG_USEC=%lld", watchdog_usec);
    notify(m);
    wd_every = watchdog_usec / 3000;
  }
  int stopping = 0;
  long long stop_deadline = 0;
  for (;;) {
    if (store_and_die_requested) {
      /* A burst first (the kernel lets a sender queue only a few
       * datagrams ahead of the reader), so that the supervisor is still
       * reading when the exit comes: the FDSTORE=1 is the last one. */
      for (int i = 0; i < 100; ++i) notify("STATUS=saving state");
      int p[2];
      if (pipe2(p, O_CLOEXEC) == 0) {
        char msg[64];
        int len = snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=last-words-%d", getpid());
        notify_fds(msg, (size_t)len, &p[0], 1);
      }
      _exit(9);
    }
    if (stop_requested && !stopping) {
      stopping = 1;
      stop_deadline = now_ms() + 10000;
      notify("STOPPING=1");
      for (int i = 0; i < n_listeners; ++i) close(listeners[i]);
      n_listeners = 0;
      for (int i = 0; i < n_udp; ++i) close(udp_listeners[i]);
      n_udp = 0;
    }
    if (wd_every > 0 && now_ms() >= wd_next && (watchdog_stop < 0 || now_ms() - started < watchdog_stop) &&
        (!watchdog_stop_file || access(watchdog_stop_file, F_OK) != 0)) {
      notify("WATCHDOG=1");
      wd_next = now_ms() + wd_every;
    }
    if (stopping) {
      int left = 0;
      for (int fd = 0; fd < MAX_CONN; ++fd) {
        struct conn* c = conns[fd];
        if (!c) continue;
        /* An idle keep-alive connection is closed at this boundary. A
         * new one that has not sent its first request yet is not idle:
         * the request is on its way (the client connected to send it), so
         * it gets longer before it counts as abandoned. */
        const long long idle_ms = c->served ? 300 : 3000;
        if (c->in_len == 0 && c->out_len == 0 && now_ms() - c->last_ms > idle_ms) {
          drop(ep, c);
          continue;
        }
        ++left;
      }
      if (left == 0 || now_ms() > stop_deadline) return 0;
    }
    struct epoll_event evs[64];
    int k = epoll_wait(ep, evs, 64, 50);
    for (int i = 0; i < k; ++i) {
      int fd = evs[i].data.fd;
      int is_listener = 0, is_udp = 0;
      for (int j = 0; j < n_listeners; ++j) is_listener |= listeners[j] == fd;
      for (int j = 0; j < n_udp; ++j) is_udp |= udp_listeners[j] == fd;
      if (is_udp) {
        echo_datagrams(fd);
        continue;
      }
      if (is_listener) {
        for (;;) {
          int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (cfd < 0) break;
          if (cfd >= MAX_CONN) {
            close(cfd);
            continue;
          }
          struct conn* c = calloc(1, sizeof(*c));
          c->fd = cfd;
          c->last_ms = now_ms();
          conns[cfd] = c;
          struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.fd = cfd};
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
          if (!service(c)) drop(ep, c);
        }
        continue;
      }
      struct conn* c = fd < MAX_CONN ? conns[fd] : NULL;
      if (c && !service(c)) drop(ep, c);
    }
  }
}
