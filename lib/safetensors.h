/* safetensors.h — tensors, records, and safetensors files.
 *
 * A *record* is the in-memory form of exactly one safetensors file: a set of
 * named tensors plus a string->string __metadata__ map. Checkpoints are single
 * records on disk; tensor streams (stream.h) are records back to back.
 *
 * Byte layout (huggingface/safetensors; the full specification is man/man5/sts.5):
 *   u64 LE  N          length of the JSON header
 *   N bytes JSON       {"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},
 *                       ..., "__metadata__":{"k":"v",...}}  (space padded)
 *   bytes   buffer     tensor data, little-endian, C order; offsets relative
 *                      to the start of the buffer; tensors tile it exactly.
 *
 * Decoding validates everything the reference implementation validates
 * (header size <= 100e6, JSON shape, known dtype, byte size == prod(shape) *
 * dtype size, no overlap, no holes, buffer end == data end, no duplicate
 * names) and reports the first violation in ss_err.
 *
 * Ownership: a record owns copies of its names, metadata and tensor data.
 */
#ifndef SS_SAFETENSORS_H
#define SS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum ss_dtype {
    SS_BOOL, SS_U8, SS_I8, SS_U16, SS_I16, SS_F16, SS_BF16,
    SS_U32, SS_I32, SS_F32, SS_U64, SS_I64, SS_F64,
    SS_DTYPE_COUNT
} ss_dtype;

#define SS_MAX_DIMS 8
#define SS_MAX_HEADER 100000000u

const char *ss_dtype_name(ss_dtype dt);            /* "F32", ... */
int ss_dtype_parse(const char *s, ss_dtype *out);  /* 0, or -1 if unknown */
size_t ss_dtype_size(ss_dtype dt);                 /* bytes per element */

typedef struct ss_tensor {
    char *name;
    ss_dtype dtype;
    int ndim;
    int64_t shape[SS_MAX_DIMS];
    size_t nbytes;
    void *data;      /* nbytes bytes, little-endian, owned by the record */
} ss_tensor;

typedef struct ss_record {
    ss_tensor *t;    /* ntensors tensors, in insertion (or file) order */
    int ntensors, tcap;
    char **mkey, **mval;  /* nmeta metadata pairs */
    int nmeta, mcap;
} ss_record;

void ss_record_init(ss_record *r);
void ss_record_free(ss_record *r);   /* frees contents; r is re-initialised */

/* Adds a tensor (copying `data`, or zero-filled when data is NULL) and returns
 * it, so that the caller may fill t->data in place. NULL on error (bad shape,
 * overflow, duplicate name, out of memory). */
ss_tensor *ss_record_add(ss_record *r, const char *name, ss_dtype dt, int ndim,
                         const int64_t *shape, const void *data, ss_err *e);

/* Sets (or replaces) a metadata value. */
int ss_record_set_meta(ss_record *r, const char *key, const char *val, ss_err *e);
int ss_record_set_metaf(ss_record *r, ss_err *e, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
const char *ss_record_meta(const ss_record *r, const char *key);  /* NULL if absent */

ss_tensor *ss_record_find(const ss_record *r, const char *name);  /* NULL if absent */
size_t ss_tensor_numel(const ss_tensor *t);

/* Copies tensor `name` into out as float32 (from F32, F16, BF16 or F64),
 * after checking its shape equals shape[0..ndim). Error names the tensor and
 * both shapes: "blocks.0.attn.qkv.weight: shape 576x192, expected 288x96". */
int ss_record_get_f32(const ss_record *r, const char *name, int ndim,
                      const int64_t *shape, float *out, ss_err *e);

/* Serialise to exactly the bytes of a safetensors file (malloc'd *buf).
 * Header padded with spaces to a multiple of 8; tensors laid out in
 * record order. */
int ss_record_encode(const ss_record *r, uint8_t **buf, size_t *len, ss_err *e);

/* Parse and validate a complete safetensors image; r must be initialised
 * (and is cleared first). */
int ss_record_decode(ss_record *r, const uint8_t *buf, size_t len, ss_err *e);

/* The two halves of decoding/encoding, for readers and writers that stream
 * tensor data instead of holding a whole image (stream.c).
 *
 * ss_record_decode_header parses and validates the N-byte JSON header `json`
 * (without the 8-byte length) into r (cleared first): tensors are created in
 * buffer order (ascending data offsets) with nbytes set and data == NULL, and
 * *data_len receives the buffer length the header implies (the last end
 * offset). The caller fills each t->data (malloc'd, nbytes bytes, or NULL when
 * nbytes == 0) in that order; ss_record_free frees them.
 *
 * ss_record_encode_header produces the 8-byte length plus the space-padded
 * JSON header (malloc'd *buf); the tensor data follow in record order. */
int ss_record_decode_header(ss_record *r, const uint8_t *json, size_t n,
                            uint64_t *data_len, ss_err *e);
int ss_record_encode_header(const ss_record *r, uint8_t **buf, size_t *len, ss_err *e);

/* Whole-file helpers. Errors are prefixed with the path. Load reads a
 * regular file in place (one copy of the data in memory; sizes checked
 * against the file size before allocating), "-" or a pipe whole; a
 * zstd-compressed file is refused with a hint. Save is atomic (temporary
 * file in the same folder, fsync, rename). */
int ss_st_load(const char *path, ss_record *r, ss_err *e);
int ss_st_save(const char *path, const ss_record *r, ss_err *e);

/* float <-> half conversions used by the F16/BF16 paths. */
float ss_f16_to_f32(uint16_t h);
uint16_t ss_f32_to_f16(float f);
float ss_bf16_to_f32(uint16_t h);
uint16_t ss_f32_to_bf16(float f);   /* round to nearest even, NaN kept */

#endif
