/* attncache.h — teacher-attention caches: the stream attn-dump writes and
 * distill-step reads (kind "teacher-attn", SS_KIND_TEACHER_ATTN).
 *
 * A cache holds, for every training view of a student run's first KD epochs
 * (views.h), the teacher's attention maps of the selected heads (one head
 * per layer, or a layer's head mean), in the order the student reads its
 * batches. Full specification: teacher-attn(5). In short:
 *
 * Record 0, the header (no tensors): ssta.format, ssta.kind = teacher-attn,
 * ssta.producer, and the provenance fields PREFIX.FIELD with PREFIX "ssta":
 *   the views (ss_views_ident): data, aug, seed, batch, img, chans, steps
 *   the teacher: model (file as given), model_md5, heads (canonical
 *     selection, "3:2,4:0,5:5"), mean, std (its normalisation)
 *   the cache: epoch_first, epochs (0-based epochs [first, first+epochs)),
 *     layers (count), tokens (N), encoding, dtype (of the stored tensor)
 * Records 1..: one per student batch, in order (epoch_first, step 0), ...,
 * (epoch_first, steps-1), (epoch_first+1, 0), ...:
 *   metadata  ssta.epoch, ssta.step (decimal)
 *   index     I64 [n]: the dataset indices of the batch's views
 *   attn      the maps (n, layers, N, N), query rows over key columns,
 *             encoded: F32 / BF16 [n, layers, N, N] for "f32" / "bf16";
 *             a byte codec stores U8 [bytes].
 *
 * Encodings. A codec turns rows of N probabilities into bytes and back
 * (ss_attn_codec). "f32" (exact) and "bf16" (8-bit mantissa, round to
 * nearest even) are built in; a third plugs in by adding an entry to the
 * table in attncache.c: name, stored dtype, fixed or variable size, encode,
 * decode. Readers refuse an encoding they do not know, naming it.
 *
 * Reading. ss_attncache_open checks the header against the student's
 * identity (ss_ident_check: "field seed is 1, expected 2"), and that the
 * cache covers the epochs the student will read ("field epochs is 0-9,
 * expected to cover 0-29"), then a thread reads and decodes ahead (a ring of
 * decoded batches), so a student step only waits when the disk or pipe is
 * slower than training. Every record is checked: epoch and step in
 * sequence, n = batch, shapes; a stream that ends before the last promised
 * record, or a truncated record, is an error naming the record number.
 *
 * Threads: a writer or reader is used from one thread (each has one
 * internal thread: the writer encodes and compresses behind the caller,
 * the reader reads and decodes ahead of it).
 */
#ifndef SS_ATTNCACHE_H
#define SS_ATTNCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ident.h"
#include "safetensors.h"

#define SS_ATTNCACHE_PREFIX "ssta"

/* ---------------------------------------------------------------- codecs */

typedef struct ss_attn_codec {
    const char *name;       /* the header's "encoding" */
    ss_dtype dtype;         /* stored tensor dtype */
    int fixed;              /* 1: stored as dtype [n, layers, N, N];
                               0: stored as U8 [bytes] */
    /* Upper bound of the bytes for `rows` rows of N values. */
    size_t (*max_bytes)(size_t rows, int N);
    /* rows x N floats -> out (max_bytes room); *len = bytes written. */
    int (*encode)(const float *in, size_t rows, int N, uint8_t *out, size_t *len, ss_err *e);
    /* len bytes -> rows x N floats; fails on a size or content mismatch. */
    int (*decode)(const uint8_t *in, size_t len, size_t rows, int N, float *out, ss_err *e);
} ss_attn_codec;

/* The codec called `name`, or NULL. */
const ss_attn_codec *ss_attn_codec_find(const char *name);
/* "f32, bf16": for usage messages. */
const char *ss_attn_codec_names(void);

/* ---------------------------------------------------------------- writing */

typedef struct ss_attncache_w ss_attncache_w;

/* Opens `path` ("-": standard output; a file is written to a temporary
 * name and renamed by close) and writes the header: kind, producer, the
 * fields of prov (views, teacher: see above) and the cache's own fields
 * (epoch_first, epochs, layers, tokens, encoding, dtype). level: zstd level
 * (0: uncompressed; SS_ZSTD_DEFAULT). */
ss_attncache_w *ss_attncache_w_open(const char *path, const char *producer, const ss_ident *prov,
                                    const char *encoding, int layers, int N, uint32_t epoch_first,
                                    uint32_t epochs, int level, ss_err *e);
/* Appends one batch: maps (n, layers, N, N) of the views with dataset
 * indices index[n], batch `step` of epoch `epoch`. The batch is copied and
 * encoded and written by the writer's thread while the caller goes on; an
 * error there is returned by a later put or by close. */
int ss_attncache_w_put(ss_attncache_w *w, uint32_t epoch, uint32_t step, int n, const uint32_t *index,
                       const float *maps, ss_err *e);
/* Writes what is pending and commits (rename); *bytes (may be NULL): the
 * encoded bytes of the batch records (before zstd). Frees w. */
int ss_attncache_w_close(ss_attncache_w *w, uint64_t *bytes, ss_err *e);
void ss_attncache_w_abort(ss_attncache_w *w);   /* drop everything; frees w */

/* ---------------------------------------------------------------- reading */

typedef struct ss_attncache ss_attncache;

typedef struct ss_attn_batch {
    uint32_t epoch, step;
    long record;             /* its record number in the stream */
    int n;                   /* views (= the header's batch) */
    const int64_t *index;    /* n dataset indices */
    const float *maps;       /* (n, layers, N, N) */
} ss_attn_batch;

/* Opens `path` ("-": standard input), reads the header and checks: kind
 * teacher-attn, every field of `want` (may be NULL; prefix "ssta"), a known
 * encoding, and that epochs [epoch_from, epoch_to) are in the cache. Then
 * starts reading ahead from the first record of epoch_from (earlier records
 * are read and checked but not decoded). Errors name the path. */
ss_attncache *ss_attncache_open(const char *path, const ss_ident *want, uint32_t epoch_from,
                                uint32_t epoch_to, ss_err *e);
/* The next batch (valid until the next call or close): 1, or 0 after the
 * last batch of epoch_to - 1, or -1 (truncated stream, corrupt record, ...:
 * "PATH: record 17: ..."). */
int ss_attncache_next(ss_attncache *c, ss_attn_batch *b, ss_err *e);
/* Checks that a cache batch is the student's batch (epoch, step, indices);
 * the error names the record and the first differing position. */
int ss_attncache_match(const ss_attn_batch *b, uint32_t epoch, uint32_t step, int n, const uint32_t *index,
                       ss_err *e);
const ss_record *ss_attncache_header(const ss_attncache *c);
int ss_attncache_layers(const ss_attncache *c);
int ss_attncache_tokens(const ss_attncache *c);
/* Stops the read-ahead thread and closes the input. */
void ss_attncache_close(ss_attncache *c);

#endif
