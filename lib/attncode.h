/* attncode.h — compact encoding of attention probability rows, for the
 * teacher-attention cache (attn-dump writes it, distill-step reads it).
 *
 * A *blob* holds nrows rows of K probabilities (rows of softmax attention:
 * non-negative, summing to 1; for a view, the chosen head's (N,N) map of
 * each distilled block, one after the other). It is self-describing and
 * checksummed, and is meant to be stored as a U8 tensor inside a stream
 * record, the stream itself zstd-compressed by stream.h's writer. The
 * lossy methods code values one byte (or half a byte) per entry so that
 * zstd's entropy stage does the rest; blob sizes depend only on
 * (method, nrows, K), so blobs of one run pack into a fixed-shape tensor.
 *
 * Methods (docs/kd.md has the measurements that chose the default):
 *   f32   float32, lossless.
 *   bf16  bfloat16 (round to nearest even), bytes planar: all high bytes,
 *         then all low bytes (zstd sees the exponent bytes together).
 *   sqrt  code c = round(L * sqrt(p)) in 0..L (L = levels <= 255). The
 *         square root makes the quantisation error uniform in the metric
 *         of KL (KL(p||p^) ~ 2 sum (sqrt p - sqrt p^)^2), so every entry
 *         costs the same KL whatever its size. Decoded p^ = (c/L)^2, and
 *         code 0 (p < 1/(4L^2)) decodes to 1/(12 L^2), the mean of u^2 for
 *         u uniform on [0, 1/(2L)). Rows are renormalised to sum 1.
 *   log   code 0 for p < floor = 10^-floor_exp, else
 *         c = 1 + round((L-1) * (ln p - ln floor) / -ln floor) in 1..L;
 *         decoded p^ = floor^(1 - (c-1)/(L-1)), code 0 -> floor/4; rows
 *         renormalised.
 * Option of the quantised methods:
 *   pack4  two codes per byte, low nibble first (L <= 15).
 * (Predicting a row's codes from the previous row's, or from the left and
 * upper neighbours, was measured and makes the zstd'ed stream LARGER: zstd
 * finds repeated row fragments that residuals destroy. docs/kd.md.)
 *
 * Byte format, version 1 (all integers little-endian):
 *   0  2  magic "AC"
 *   2  1  version (1)
 *   3  1  method: 0 f32, 1 bf16, 2 sqrt, 3 log
 *   4  1  levels L (sqrt 1..255, log 2..255; 0 for f32/bf16)
 *   5  1  flags: bit 0 pack4 (others 0)
 *   6  1  floor_exp (log: 1..30; else 0)
 *   7  1  0
 *   8  2  K, row length (1..65535)
 *  10  2  nrows (1..65535)
 *  12  4  CRC-32 (IEEE, as zlib's crc32) of bytes 0..11 then the payload
 *  16  payload: f32 4*nrows*K bytes; bf16 2*nrows*K (high bytes, then
 *      low bytes); sqrt/log nrows*K bytes, or ceil(nrows*K/2) with pack4
 *      (code i in byte i/2, low nibble when i is even; a last odd nibble 0).
 * Rows are in order and entries within a row in order (code i = row*K+j).
 *
 * Errors: every decode validates the header, the exact length, the
 * checksum, the codes (<= L, a last pad nibble 0) and the values (finite,
 * >= 0, row sums > 0 for f32/bf16); a truncated or corrupt blob is an
 * error, never a silent garbage row.
 */
#ifndef SS_ATTNCODE_H
#define SS_ATTNCODE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SS_AC_VERSION 1
#define SS_AC_HEADER 16

typedef enum ss_ac_method { SS_AC_F32 = 0, SS_AC_BF16 = 1, SS_AC_SQRT = 2, SS_AC_LOG = 3 } ss_ac_method;

typedef struct ss_ac_opts {
    ss_ac_method method;
    int levels;      /* L for sqrt / log */
    int floor_exp;   /* log: floor 10^-floor_exp */
    int pack4;       /* 0/1, needs levels <= 15 */
} ss_ac_opts;

/* The recommended encoding, "sqrt:31" (docs/kd.md): on real teacher maps
 * (Fashion-MNIST, N = 50, blocks 3-5, teacher after 2 epochs) 1.84 KB per
 * view after zstd level 9 (SS_AC_ZSTD_LEVEL), mean KL(exact||decoded)
 * 7e-3 nats per row, head-KD loss off by < 0.8 % and its gradient by ~4 %
 * (relative L2), for the default KL(T||S). For KL(S||T) — which weighs
 * log T at small T — use "log:63:8" (3.9 KB per view; sqrt codes give a
 * ~50 % gradient error there). */
#define SS_AC_ZSTD_LEVEL 9
void ss_ac_default(ss_ac_opts *o);
const char *ss_ac_default_spec(void);

/* Parses a spec: "f32", "bf16", "sqrt:L[,pack4]", "log:L:FLOOR_EXP[,pack4]",
 * or "default". Validates the parameters. */
int ss_ac_parse(const char *spec, ss_ac_opts *o, ss_err *e);
/* Writes the canonical spec of o (at least 32 bytes). */
void ss_ac_spec(const ss_ac_opts *o, char *buf, size_t cap);
int ss_ac_check(const ss_ac_opts *o, ss_err *e);

/* Exact size of a blob of nrows x K with o (header included); 0 when the
 * options or sizes are invalid. */
size_t ss_ac_size(const ss_ac_opts *o, int nrows, int K);

/* Encodes rows (nrows,K) into out (cap >= ss_ac_size). Rows should be
 * probability rows; negative or non-finite values are an error. */
int ss_ac_encode(uint8_t *out, size_t cap, const float *rows, int nrows, int K, const ss_ac_opts *o,
                 ss_err *e);

/* The same for nmaps maps of (N,N), map k at maps[k] (contiguous rows; the
 * maps need not be adjacent): the blob holds nmaps*N rows of N, map after
 * map, and decodes into (nmaps,N,N). */
int ss_ac_encode_maps(uint8_t *out, size_t cap, const float *const *maps, int nmaps, int N,
                      const ss_ac_opts *o, ss_err *e);

/* Reads the header of a blob (without checking the payload). */
int ss_ac_info(const uint8_t *buf, size_t len, ss_ac_opts *o, int *nrows, int *K, ss_err *e);

/* Decodes a blob of exactly len bytes into rows (nrows,K), which must match
 * the blob's header. Lossy methods give rows summing to 1 (within float
 * rounding); f32 gives the stored values unchanged. */
int ss_ac_decode(float *rows, int nrows, int K, const uint8_t *buf, size_t len, ss_err *e);

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32), continuing from crc
 * (start with 0). */
uint32_t ss_crc32(uint32_t crc, const void *data, size_t n);

#endif
