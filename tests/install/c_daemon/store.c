#define _GNU_SOURCE
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC 0x31564b43u /* "CKV1" */
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define MAX_FIELD (16u << 20)

struct header {
  uint32_t magic;
  uint32_t klen;
  uint32_t vlen;
  uint32_t check; /* FNV-1a (folded to 32 bits) of revision, key and value */
  uint64_t revision;
};

struct entry {
  struct entry* next;
  char* key;
  size_t klen;
  char* val;
  size_t vlen;
};

static int fail(struct store* s, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->error, sizeof s->error, fmt, ap);
  va_end(ap);
  return -1;
}

static uint64_t fnv(uint64_t h, const void* p, size_t n) {
  const unsigned char* b = p;
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * FNV_PRIME;
  return h;
}

static uint32_t record_check(uint64_t revision, const char* key, size_t klen, const char* val, size_t vlen) {
  uint64_t h = fnv(FNV_OFFSET, &revision, sizeof revision);
  h = fnv(fnv(h, key, klen), val, vlen);
  return (uint32_t)(h ^ (h >> 32));
}

/* ---- the map ------------------------------------------------------------ */

static struct entry** find(const struct store* s, const char* key, size_t klen) {
  struct entry** e = &s->buckets[fnv(FNV_OFFSET, key, klen) & (s->nbuckets - 1)];
  while (*e != NULL && ((*e)->klen != klen || memcmp((*e)->key, key, klen) != 0)) e = &(*e)->next;
  return e;
}

static void grow(struct store* s) {
  size_t n = s->nbuckets * 2;
  struct entry** b = calloc(n, sizeof *b);
  if (b == NULL) return; /* stay at this size: slower, still correct */
  for (size_t i = 0; i < s->nbuckets; ++i) {
    for (struct entry *e = s->buckets[i], *next; e != NULL; e = next) {
      next = e->next;
      struct entry** slot = &b[fnv(FNV_OFFSET, e->key, e->klen) & (n - 1)];
      e->next = *slot;
      *slot = e;
    }
  }
  free(s->buckets);
  s->buckets = b;
  s->nbuckets = n;
}

static void clear_map(struct store* s) {
  for (size_t i = 0; i < s->nbuckets; ++i) {
    for (struct entry *e = s->buckets[i], *next; e != NULL; e = next) {
      next = e->next;
      free(e->key);
      free(e->val);
      free(e);
    }
    s->buckets[i] = NULL;
  }
  s->count = 0;
}

void store_apply(struct store* s, const char* key, size_t klen, const char* val, size_t vlen) {
  struct entry** slot = find(s, key, klen);
  char* copy = malloc(vlen + 1);
  if (copy == NULL) abort(); /* memory would disagree with the log */
  memcpy(copy, val, vlen);
  if (*slot != NULL) {
    free((*slot)->val);
  } else {
    struct entry* e = calloc(1, sizeof *e);
    if (e == NULL || (e->key = malloc(klen + 1)) == NULL) abort();
    memcpy(e->key, key, klen);
    e->klen = klen;
    *slot = e;
    if (++s->count > s->nbuckets) grow(s);
    slot = find(s, key, klen);
  }
  (*slot)->val = copy;
  (*slot)->vlen = vlen;
  ++s->revision;
  if (s->appended < s->revision) s->appended = s->revision;
  s->hash = fnv(fnv(fnv(s->hash, &s->revision, sizeof s->revision), key, klen), val, vlen);
  s->applied_offset += (off_t)(sizeof(struct header) + klen + vlen);
  if (s->write_offset < s->applied_offset) s->write_offset = s->applied_offset;
}

const char* store_get(const struct store* s, const char* key, size_t klen, size_t* vlen) {
  struct entry* e = *find(s, key, klen);
  if (e == NULL) return NULL;
  *vlen = e->vlen;
  return e->val;
}

void store_fingerprint(const struct store* s, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)s->hash); }

/* ---- the log ------------------------------------------------------------ */

int store_init(struct store* s, const char* data_dir) {
  memset(s, 0, sizeof *s);
  s->fd = -1;
  s->hash = FNV_OFFSET;
  s->nbuckets = 1024;
  if ((s->buckets = calloc(s->nbuckets, sizeof *s->buckets)) == NULL) return fail(s, "out of memory");
  if ((size_t)snprintf(s->path, sizeof s->path, "%s/kv.log", data_dir) >= sizeof s->path) {
    return fail(s, "data dir path too long: %s", data_dir);
  }
  return 0;
}

void store_free(struct store* s) {
  if (s->fd >= 0) close(s->fd);
  clear_map(s);
  free(s->buckets);
  s->buckets = NULL;
}

static int all_zero(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return 0;
  }
  return 1;
}

int store_replay(struct store* s, enum replay_mode mode) {
  int fd = open(s->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : fail(s, "open %s: %s", s->path, strerror(errno));
  struct stat st;
  char* buf = NULL;
  int rc = 0;
  if (fstat(fd, &st) != 0) {
    rc = fail(s, "stat %s: %s", s->path, strerror(errno));
    goto out;
  }
  size_t n = st.st_size > s->applied_offset ? (size_t)(st.st_size - s->applied_offset) : 0;
  if (n > 0 && ((buf = malloc(n)) == NULL || pread(fd, buf, n, s->applied_offset) != (ssize_t)n)) {
    rc = fail(s, "read %s: %s", s->path, buf == NULL ? "out of memory" : "short read");
    goto out;
  }
  size_t pos = 0;
  while (pos < n) {
    struct header h;
    const size_t left = n - pos;
    int good = left >= sizeof h;
    if (good) {
      memcpy(&h, buf + pos, sizeof h);
      good = h.magic == MAGIC && h.klen <= MAX_FIELD && h.vlen <= MAX_FIELD &&
             left >= sizeof h + h.klen + h.vlen && h.revision == s->revision + 1 &&
             h.check == record_check(h.revision, buf + pos + sizeof h, h.klen, buf + pos + sizeof h + h.klen, h.vlen);
    }
    if (!good) {
      if (mode == REPLAY_READ_ONLY) break; /* the writer may be in the middle of it */
      /* Torn: the last record, half-written by a crash (nothing valid
       * after it); it was never acknowledged: cut it off. */
      const int torn = left < sizeof h || (h.magic == MAGIC && left <= sizeof h + h.klen + h.vlen) ||
                       all_zero(buf + pos, left);
      if (!torn) {
        rc = fail(s, "%s: damaged record at offset %lld (after revision %llu)", s->path,
                  (long long)(s->applied_offset), (unsigned long long)s->revision);
        goto out;
      }
      fprintf(stderr, "ckvd: %s: cutting a torn tail of %zu bytes after revision %llu\n", s->path, left,
              (unsigned long long)s->revision);
      if (truncate(s->path, s->applied_offset) != 0) {
        rc = fail(s, "truncate %s: %s", s->path, strerror(errno));
        goto out;
      }
      break;
    }
    store_apply(s, buf + pos + sizeof h, h.klen, buf + pos + sizeof h + h.klen, h.vlen);
    pos += sizeof h + h.klen + h.vlen;
  }
out:
  free(buf);
  close(fd);
  return rc;
}

int store_reload(struct store* s) {
  clear_map(s);
  s->revision = s->appended = 0;
  s->hash = FNV_OFFSET;
  s->applied_offset = s->write_offset = 0;
  return store_replay(s, REPLAY_REPAIR);
}

int store_open_writer(struct store* s) {
  if (s->fd >= 0) return 0;
  const int existed = access(s->path, F_OK) == 0;
  s->fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (s->fd < 0) return fail(s, "open %s: %s", s->path, strerror(errno));
  if (!existed) {
    /* Make the new file's name durable too. */
    char dir[sizeof s->path];
    snprintf(dir, sizeof dir, "%s", s->path);
    *strrchr(dir, '/') = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) return fail(s, "fsync %s: %s", dir, strerror(errno));
    close(dfd);
  }
  s->write_offset = lseek(s->fd, 0, SEEK_END);
  if (s->write_offset != s->applied_offset) {
    return fail(s, "%s ends at %lld but %lld bytes were replayed", s->path, (long long)s->write_offset,
                (long long)s->applied_offset);
  }
  return 0;
}

int store_close_writer(struct store* s) {
  if (s->fd < 0) return 0;
  const int rc = fdatasync(s->fd);
  const int err = errno;
  close(s->fd);
  s->fd = -1;
  return rc == 0 ? 0 : fail(s, "fsync %s: %s", s->path, strerror(err));
}

int store_append(struct store* s, const char* key, size_t klen, const char* val, size_t vlen, uint64_t* revision) {
  if (s->fd < 0) return fail(s, "not writable");
  if (klen > MAX_FIELD || vlen > MAX_FIELD) return fail(s, "key or value too large");
  struct header h = {MAGIC, (uint32_t)klen, (uint32_t)vlen, 0, s->appended + 1};
  h.check = record_check(h.revision, key, klen, val, vlen);
  /* One write per record, so a reader replaying meanwhile sees it whole or not at all. */
  const size_t n = sizeof h + klen + vlen;
  char* rec = malloc(n);
  if (rec == NULL) return fail(s, "out of memory");
  memcpy(rec, &h, sizeof h);
  memcpy(rec + sizeof h, key, klen);
  memcpy(rec + sizeof h + klen, val, vlen);
  for (size_t done = 0; done < n;) {
    ssize_t w = write(s->fd, rec + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      /* Maybe a half-written record: refuse further writes (a restart repairs it). */
      const int err = errno;
      free(rec);
      close(s->fd);
      s->fd = -1;
      return fail(s, "write %s: %s", s->path, strerror(err));
    }
    done += (size_t)w;
  }
  free(rec);
  s->appended = h.revision;
  s->write_offset += (off_t)n;
  *revision = h.revision;
  return 0;
}

int store_sync(struct store* s) {
  if (s->fd < 0) return fail(s, "not writable");
  if (fdatasync(s->fd) == 0) return 0;
  const int err = errno;
  close(s->fd); /* after a failed fsync the page cache cannot be trusted */
  s->fd = -1;
  return fail(s, "fsync %s: %s", s->path, strerror(err));
}
