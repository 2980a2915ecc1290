/* ckvd's state: an in-memory map rebuilt from an append-only log,
 * <data-dir>/kv.log. Knows nothing about baton or HTTP.
 *
 * Record: a header (magic, key length, value length, revision, checksum)
 * then the key and value bytes. Revisions count 1, 2, 3, ... with no gap.
 * The fingerprint is a running FNV-1a over every record in order, so two
 * processes that replayed the same log agree on it.
 *
 * Not thread-safe: one caller at a time (ckvd holds its server lock). */
#ifndef CKVD_STORE_H_
#define CKVD_STORE_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct entry;

struct store {
  char path[4096];        /* the log file */
  int fd;                 /* the writer (O_APPEND), -1 when closed */
  struct entry** buckets; /* chained hash map key -> value */
  size_t nbuckets, count;
  uint64_t revision;    /* last record applied to memory */
  uint64_t appended;    /* last record written by us (>= revision) */
  uint64_t hash;        /* the fingerprint's state */
  off_t applied_offset; /* log bytes applied to memory */
  off_t write_offset;   /* log bytes written, ours included */
  char error[512];      /* what the last failing call said */
};

/* 0 on success, else -1 with the reason in s->error. */
int store_init(struct store* s, const char* data_dir);
void store_free(struct store* s);

enum replay_mode {
  REPLAY_READ_ONLY, /* another process may be appending: stop at a bad or half-written record */
  REPLAY_REPAIR     /* we own the log: truncate a torn tail, fail on damage anywhere else */
};
/* Applies the records after s->applied_offset. */
int store_replay(struct store* s, enum replay_mode mode);
/* Forgets memory and replays the whole log (another process wrote it). */
int store_reload(struct store* s);

int store_open_writer(struct store* s);
/* fsyncs and closes the writer; nothing is written after. */
int store_close_writer(struct store* s);

/* Writes a record (not yet durable, not yet visible); *revision is its
 * revision. store_sync makes every written record durable; store_apply
 * then makes them visible, in the order they were written. */
int store_append(struct store* s, const char* key, size_t klen, const char* val, size_t vlen, uint64_t* revision);
int store_sync(struct store* s);
void store_apply(struct store* s, const char* key, size_t klen, const char* val, size_t vlen);

/* The value of `key` (not NUL-terminated), or NULL. */
const char* store_get(const struct store* s, const char* key, size_t klen, size_t* vlen);
/* 16 lowercase hex digits + NUL into out[17]. */
void store_fingerprint(const struct store* s, char out[17]);

#endif /* CKVD_STORE_H_ */
