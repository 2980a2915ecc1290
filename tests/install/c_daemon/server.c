#define _GNU_SOURCE
#include "server.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADER (16u << 10)
#define MAX_BODY (1u << 20)
#define MS 1000000ll

enum conn_state { READING, SYNCING, WRITING, LINGERING, CLOSED };

struct conn {
  int fd;
  enum conn_state state;
  char* in;
  size_t in_len, in_cap;
  char* out;
  size_t out_len, out_sent;
  size_t req_len;   /* bytes of `in` the request being answered takes */
  int keep_alive;   /* the client did not ask for Connection: close */
  int close_after;  /* the response being written says Connection: close */
  const char* key;  /* a PUT waiting for the group commit: key and value point into `in` */
  size_t klen;
  const char* val;
  size_t vlen;
  int64_t linger_until;
};

struct server {
  pthread_mutex_t mu;
  pthread_cond_t drained_cv;
  struct store* store;
  int listen_fd, signal_fd, wake_fd;
  void (*on_signal)(void*);
  void* user;
  int accepting, stopped;
  int draining, drained;
  int64_t drain_deadline, idle_deadline;
  struct conn** conns;
  size_t nconns, cap;
  struct conn** pending; /* PUTs appended this loop turn, in log order */
  size_t npending;
};

int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 * MS + ts.tv_nsec;
}

static void wake(struct server* sv) {
  const uint64_t one = 1;
  if (write(sv->wake_fd, &one, sizeof one) < 0) { /* full: the loop wakes anyway */
  }
}

void server_lock(struct server* sv) { pthread_mutex_lock(&sv->mu); }
void server_unlock(struct server* sv) { pthread_mutex_unlock(&sv->mu); }

void server_set_accepting(struct server* sv, int on) {
  sv->accepting = on;
  if (on) sv->draining = 0;
  wake(sv);
}

void server_drain(struct server* sv, int64_t deadline_ns) {
  pthread_mutex_lock(&sv->mu);
  const int64_t now = now_ns();
  int64_t idle = (deadline_ns - now) / 2;
  if (idle > 1000 * MS) idle = 1000 * MS;
  sv->accepting = 0;
  sv->draining = 1;
  sv->drained = 0;
  sv->drain_deadline = deadline_ns;
  sv->idle_deadline = now + idle;
  wake(sv);
  while (!sv->drained && !sv->stopped) pthread_cond_wait(&sv->drained_cv, &sv->mu);
  pthread_mutex_unlock(&sv->mu);
}

void server_stop(struct server* sv) {
  pthread_mutex_lock(&sv->mu);
  sv->stopped = 1;
  pthread_cond_broadcast(&sv->drained_cv);
  wake(sv);
  pthread_mutex_unlock(&sv->mu);
}

struct server* server_new(struct store* store, int listen_fd, int signal_fd, void (*on_signal)(void*), void* user) {
  struct server* sv = calloc(1, sizeof *sv);
  if (sv == NULL) return NULL;
  pthread_mutex_init(&sv->mu, NULL);
  pthread_cond_init(&sv->drained_cv, NULL);
  sv->store = store;
  sv->listen_fd = listen_fd;
  sv->signal_fd = signal_fd;
  sv->on_signal = on_signal;
  sv->user = user;
  sv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (sv->wake_fd < 0) {
    free(sv);
    return NULL;
  }
  return sv;
}

void server_free(struct server* sv) {
  close(sv->wake_fd);
  pthread_mutex_destroy(&sv->mu);
  pthread_cond_destroy(&sv->drained_cv);
  free(sv->conns);
  free(sv->pending);
  free(sv);
}

/* ---- connections -------------------------------------------------------- */

static void conn_close(struct conn* c) {
  if (c->state == CLOSED) return;
  close(c->fd);
  c->state = CLOSED;
}

static void process(struct server* sv, struct conn* c);

/* Writes what it can; once the response is out, either closes gracefully
 * (shut down our side, then read until the client closes: no reset) or
 * reads the next request. */
static void flush(struct server* sv, struct conn* c) {
  while (c->out_sent < c->out_len) {
    ssize_t w = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c->state = WRITING;
      return;
    }
    if (w < 0) {
      conn_close(c);
      return;
    }
    c->out_sent += (size_t)w;
  }
  c->out_len = c->out_sent = 0;
  if (c->close_after) {
    shutdown(c->fd, SHUT_WR);
    c->state = LINGERING;
    c->linger_until = now_ns() + 1000 * MS;
    return;
  }
  c->state = READING;
  process(sv, c); /* a pipelined request may be waiting */
}

static void respond(struct server* sv, struct conn* c, int status, const char* body, size_t len) {
  const char* reason = status == 200 ? "OK" : status == 404 ? "Not Found" : status == 503 ? "Service Unavailable"
                                                                                           : "Error";
  if (status >= 400 && status != 404 && status != 503) c->keep_alive = 0;
  const int close_it = c->close_after = !c->keep_alive || sv->draining;
  char head[256];
  int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n",
                   status, reason, len, close_it ? "Connection: close\r\n" : "");
  char* out = realloc(c->out, (size_t)n + len);
  if (out == NULL) {
    conn_close(c);
    return;
  }
  c->out = out;
  memcpy(out, head, (size_t)n);
  memcpy(out + n, body, len);
  c->out_len = (size_t)n + len;
  c->out_sent = 0;
  /* The request is answered: drop its bytes. */
  memmove(c->in, c->in + c->req_len, c->in_len - c->req_len);
  c->in_len -= c->req_len;
  c->req_len = 0;
  flush(sv, c);
}

static void respond_text(struct server* sv, struct conn* c, int status, const char* text) {
  respond(sv, c, status, text, strlen(text));
}

static int header_is(const char* line, size_t len, const char* name) {
  const size_t n = strlen(name);
  return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/* Parses and answers the requests buffered in c->in, while it can. */
static void process(struct server* sv, struct conn* c) {
  while (c->state == READING && c->in_len > 0) {
    char* end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL) {
      if (c->in_len > MAX_HEADER) respond_text(sv, c, 431, "headers too large\n");
      return;
    }
    char method[8] = "", target[1024] = "";
    int minor = 0;
    if (memchr(c->in, '\0', (size_t)(end - c->in)) != NULL ||
        sscanf(c->in, "%7s %1023s HTTP/1.%d\r\n", method, target, &minor) != 3) {
      c->req_len = c->in_len;
      respond_text(sv, c, 400, "bad request line\n");
      return;
    }
    c->keep_alive = minor >= 1;
    size_t body_len = 0;
    for (char* line = strstr(c->in, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
      const size_t len = (size_t)(strstr(line, "\r\n") - line);
      const char* value = memchr(line, ':', len);
      if (value == NULL) continue;
      for (++value; *value == ' ' || *value == '\t'; ++value) {
      }
      if (header_is(line, len, "content-length")) body_len = strtoull(value, NULL, 10);
      if (header_is(line, len, "connection")) {
        if (strncasecmp(value, "close", 5) == 0) c->keep_alive = 0;
        if (strncasecmp(value, "keep-alive", 10) == 0) c->keep_alive = 1;
      }
      if (header_is(line, len, "transfer-encoding")) {
        c->req_len = c->in_len;
        respond_text(sv, c, 501, "chunked bodies are not supported\n");
        return;
      }
    }
    const size_t head_len = (size_t)(end + 4 - c->in);
    if (body_len > MAX_BODY) {
      c->req_len = c->in_len;
      respond_text(sv, c, 413, "body too large\n");
      return;
    }
    if (c->in_len < head_len + body_len) return; /* the body is still coming */
    c->req_len = head_len + body_len;
    const char* body = c->in + head_len;

    const int is_get = strcmp(method, "GET") == 0, is_put = strcmp(method, "PUT") == 0;
    if (is_get && strcmp(target, "/healthz") == 0) {
      char json[128];
      snprintf(json, sizeof json, "{\"status\":\"ok\",\"pid\":%d,\"revision\":%llu}\n", (int)getpid(),
               (unsigned long long)sv->store->revision);
      respond_text(sv, c, 200, json);
    } else if (strncmp(target, "/kv/", 4) != 0 || target[4] == '\0') {
      respond_text(sv, c, 404, "no such route\n");
    } else if (is_get) {
      size_t vlen = 0;
      const char* v = store_get(sv->store, target + 4, strlen(target + 4), &vlen);
      if (v == NULL) {
        respond_text(sv, c, 404, "no such key\n");
      } else {
        respond(sv, c, 200, v, vlen);
      }
    } else if (is_put) {
      /* The key is copied into `in` in place of the (consumed) request line. */
      c->klen = strlen(target + 4);
      memcpy(c->in, target + 4, c->klen);
      c->key = c->in;
      c->val = body;
      c->vlen = body_len;
      uint64_t revision = 0;
      if (store_append(sv->store, c->key, c->klen, c->val, c->vlen, &revision) != 0) {
        respond_text(sv, c, 503, "not writable\n");
      } else {
        c->state = SYNCING; /* answered after the group commit */
        sv->pending[sv->npending++] = c;
      }
    } else {
      respond_text(sv, c, 405, "method not allowed\n");
    }
  }
}

static void on_readable(struct server* sv, struct conn* c) {
  for (;;) {
    if (c->in_cap - c->in_len < 4096) {
      char* in = realloc(c->in, c->in_cap * 2 + 8192);
      if (in == NULL) {
        conn_close(c);
        return;
      }
      c->in = in;
      c->in_cap = c->in_cap * 2 + 8192;
    }
    ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (r <= 0) { /* the client closed (or reset) */
      conn_close(c);
      return;
    }
    if (c->state == LINGERING) {
      c->in_len = 0; /* discard until the client closes */
      continue;
    }
    c->in_len += (size_t)r;
    c->in[c->in_len] = '\0'; /* for sscanf/strstr on the header */
  }
  if (c->state == READING) process(sv, c);
}

/* One connection per readiness: the listening socket's file description is
 * shared with the supervisor and other generations, so we leave it
 * blocking (O_NONBLOCK would change it for them too) and never call
 * accept when poll did not say a connection is waiting. */
static void accept_one(struct server* sv) {
  int fd = accept4(sv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return; /* e.g. the client gave up already */
  if (sv->nconns == sv->cap) {
    const size_t cap = sv->cap * 2 + 64;
    struct conn** conns = realloc(sv->conns, cap * sizeof *conns);
    struct conn** pending = realloc(sv->pending, cap * sizeof *pending);
    if (conns != NULL) sv->conns = conns;
    if (pending != NULL) sv->pending = pending;
    if (conns == NULL || pending == NULL) {
      close(fd);
      return;
    }
    sv->cap = cap;
  }
  struct conn* c = calloc(1, sizeof *c);
  if (c == NULL) {
    close(fd);
    return;
  }
  c->fd = fd;
  c->state = READING;
  sv->conns[sv->nconns++] = c;
}

/* The group commit: one fdatasync for every PUT of this turn, then they
 * become visible and are answered, in log order. Answering may read a
 * pipelined PUT: it goes into the next batch. */
static void commit_batch(struct server* sv, size_t batch);
static void commit(struct server* sv) {
  while (sv->npending > 0) {
    const size_t batch = sv->npending;
    commit_batch(sv, batch);
    memmove(sv->pending, sv->pending + batch, (sv->npending - batch) * sizeof *sv->pending);
    sv->npending -= batch;
  }
}

static void commit_batch(struct server* sv, size_t batch) {
  const int rc = store_sync(sv->store);
  if (rc != 0) fprintf(stderr, "ckvd: %s; refusing writes\n", sv->store->error);
  for (size_t i = 0; i < batch; ++i) {
    struct conn* c = sv->pending[i];
    if (rc != 0) {
      c->state = READING;
      respond_text(sv, c, 503, "write failed\n");
      continue;
    }
    store_apply(sv->store, c->key, c->klen, c->val, c->vlen);
    char rev[32];
    snprintf(rev, sizeof rev, "%llu", (unsigned long long)sv->store->revision);
    c->state = READING;
    respond_text(sv, c, 200, rev);
  }
}

/* Frees the closed connections. */
static void sweep(struct server* sv, int64_t now) {
  size_t kept = 0;
  for (size_t i = 0; i < sv->nconns; ++i) {
    struct conn* c = sv->conns[i];
    if (c->state == LINGERING && now >= c->linger_until) conn_close(c);
    if (c->state == CLOSED) {
      free(c->in);
      free(c->out);
      free(c);
    } else {
      sv->conns[kept++] = c;
    }
  }
  sv->nconns = kept;
}

/* Drain: close idle connections after the idle wait, everything at the
 * deadline, and wake server_drain once none is left. */
static void drain_step(struct server* sv, int64_t now) {
  if (!sv->draining || sv->drained) return;
  for (size_t i = 0; i < sv->nconns; ++i) {
    struct conn* c = sv->conns[i];
    if (now >= sv->drain_deadline || (c->state == READING && c->in_len == 0 && now >= sv->idle_deadline)) {
      conn_close(c);
    }
  }
  sweep(sv, now);
  if (sv->nconns == 0) {
    sv->drained = 1;
    pthread_cond_broadcast(&sv->drained_cv);
  }
}

static int poll_timeout(const struct server* sv, int64_t now) {
  int64_t next = INT64_MAX;
  if (sv->draining && !sv->drained) next = sv->nconns == 0 ? now : sv->idle_deadline < now ? sv->drain_deadline
                                                                                           : sv->idle_deadline;
  for (size_t i = 0; i < sv->nconns; ++i) {
    if (sv->conns[i]->state == LINGERING && sv->conns[i]->linger_until < next) next = sv->conns[i]->linger_until;
  }
  if (next == INT64_MAX) return -1;
  if (next <= now) return 0;
  return next - now > 1000 * MS ? 1000 : (int)((next - now) / MS + 1);
}

int server_run(struct server* sv) {
  struct pollfd* pfds = NULL;
  int rc = 0;
  pthread_mutex_lock(&sv->mu);
  while (!sv->stopped) {
    struct pollfd* p = realloc(pfds, (sv->nconns + 3) * sizeof *p);
    if (p == NULL) {
      rc = -1;
      break;
    }
    pfds = p;
    size_t n = 0;
    pfds[n++] = (struct pollfd){.fd = sv->wake_fd, .events = POLLIN};
    pfds[n++] = (struct pollfd){.fd = sv->signal_fd, .events = POLLIN}; /* fd -1: ignored */
    pfds[n++] = (struct pollfd){.fd = sv->accepting ? sv->listen_fd : -1, .events = POLLIN};
    const size_t polled = sv->nconns;
    for (size_t i = 0; i < polled; ++i) {
      const enum conn_state st = sv->conns[i]->state;
      pfds[n++] = (struct pollfd){.fd = sv->conns[i]->fd, .events = st == WRITING ? POLLOUT : POLLIN};
    }
    const int timeout = poll_timeout(sv, now_ns());
    pthread_mutex_unlock(&sv->mu);
    const int ready = poll(pfds, n, timeout);
    pthread_mutex_lock(&sv->mu);
    if (ready < 0 && errno != EINTR) {
      rc = -1;
      break;
    }
    uint64_t count;
    if (pfds[0].revents & POLLIN) (void)!read(sv->wake_fd, &count, sizeof count);
    if (pfds[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sv->signal_fd, &si, sizeof si) == sizeof si) sv->on_signal(sv->user);
    }
    for (size_t i = 0; i < polled; ++i) {
      struct conn* c = sv->conns[i];
      const short ev = pfds[3 + i].revents;
      if (ev == 0 || c->state == CLOSED) continue;
      if (c->state == WRITING) {
        flush(sv, c);
      } else {
        on_readable(sv, c);
      }
    }
    if (sv->accepting && (pfds[2].revents & POLLIN)) accept_one(sv);
    commit(sv);
    const int64_t now = now_ns();
    sweep(sv, now);
    drain_step(sv, now);
  }
  for (size_t i = 0; i < sv->nconns; ++i) conn_close(sv->conns[i]);
  sweep(sv, now_ns());
  pthread_mutex_unlock(&sv->mu);
  free(pfds);
  return rc;
}
