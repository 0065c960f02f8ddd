/* stream.h — tensor streams: safetensors records back to back, optionally
 * zstd-compressed (any number of frames), from files or pipes.
 *
 * A stream is the concatenation of records, each exactly the bytes of a
 * safetensors file. `cat a.sts b.sts` is a valid stream, and so is the zstd
 * compression of one, or a mix of compressed frames. Readers detect zstd by
 * its magic (28 b5 2f fd) at the start and accept either form.
 *
 * The first record of every stream is its *header*: no tensors, metadata
 * only, with at least
 *     "ssta.format"   = "sts/1"
 *     "ssta.kind"     = what the data records hold ("attn", "logits", ...)
 *     "ssta.producer" = tool and version that wrote it
 * plus whatever provenance the producer knows (model checksum, data spec,
 * seed, head selection...). A consumer compares the fields it depends on with
 * ss_stream_expect() and refuses a stream that does not match. Full
 * specification: man/man5/sts.5.
 *
 * Memory is bounded by the largest record, never by the stream.
 */
#ifndef SS_STREAM_H
#define SS_STREAM_H

#include "safetensors.h"

typedef struct ss_sreader ss_sreader;
typedef struct ss_swriter ss_swriter;

/* Opens `path` for reading ("-" or NULL: standard input). */
ss_sreader *ss_sreader_open(const char *path, ss_err *e);

/* Reads the next record into r (cleared first). Returns 1 when a record was
 * read, 0 at a clean end (only at a record boundary), -1 on error. Errors
 * name the path and the 0-based record number: "x.sts: record 17: ...". A
 * truncated record or a corrupt/truncated zstd frame is an error. */
int ss_sreader_next(ss_sreader *s, ss_record *r, ss_err *e);

/* Reads a stream held in memory (buf stays owned by the caller and must
 * outlive the reader); `name` is used in messages. For fuzzing and tests. */
ss_sreader *ss_sreader_open_mem(const uint8_t *buf, size_t len, const char *name, ss_err *e);

/* Refuses records whose header + data exceed max_bytes (0: no limit, the
 * default). Without a limit memory still follows the bytes actually present:
 * a header that claims more data than the input holds fails as truncated
 * after reading what is there, never by allocating the claimed size first.
 * The header length itself is always capped at SS_MAX_HEADER. */
void ss_sreader_set_max_record(ss_sreader *s, uint64_t max_bytes);

long ss_sreader_count(const ss_sreader *s);        /* records read so far */
uint64_t ss_sreader_bytes(const ss_sreader *s);    /* record bytes read so far (uncompressed) */
int ss_sreader_compressed(const ss_sreader *s);    /* 1 once a zstd frame was seen */
const char *ss_sreader_path(const ss_sreader *s);  /* "-" for stdin */
void ss_sreader_close(ss_sreader *s);

/* Opens `path` for writing ("-": standard output). A file is written to a
 * temporary name beside it and renamed by ss_swriter_close, so an
 * interrupted run never leaves a complete-looking file. level: 0 writes
 * uncompressed records, 1..19 zstd at that level (content checksums on),
 * SS_ZSTD_DEFAULT the default level. */
#define SS_ZSTD_DEFAULT (-1000)
ss_swriter *ss_swriter_open(const char *path, int level, ss_err *e);
int ss_swriter_put(ss_swriter *w, const ss_record *r, ss_err *e);
/* Writes raw, already-encoded record bytes (used when passing through). */
int ss_swriter_put_raw(ss_swriter *w, const uint8_t *buf, size_t len, ss_err *e);
int ss_swriter_close(ss_swriter *w, ss_err *e);   /* flush + commit; frees w */
void ss_swriter_abort(ss_swriter *w);             /* drop the temp file; frees w */

/* Fills r as a stream header of `kind` written by `producer`. */
int ss_stream_header(ss_record *r, const char *kind, const char *producer, ss_err *e);

/* 1 if r looks like a stream header record: no tensors and an
 * "ssta.format" field (callers also check that it is record 0). */
int ss_stream_is_header(const ss_record *r);

/* Checks that header field `key` equals `want`; otherwise fails with
 * "field 'key' is 'have', expected 'want'" (or "has no field 'key'"). */
int ss_stream_expect(const ss_record *hdr, const char *key, const char *want, ss_err *e);

#endif
