/* npy.h — NumPy .npy files (format versions 1.0, 2.0 and 3.0) to and from
 * record tensors.
 *
 * Layout: "\x93NUMPY", major, minor, header length (u16 LE for v1, u32 LE
 * for v2/v3), then a Python dict literal
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and ending in '\n', then the data in C order. The
 * header length is read from the file, never assumed.
 *
 * dtypes: '|b1' BOOL, '|u1' U8, '|i1' I8, '<u2' U16, '<i2' I16, '<f2' F16,
 * '<u4' U32, '<i4' I32, '<f4' F32, '<u8' U64, '<i8' I64, '<f8' F64. Big-endian
 * ('>') inputs are byte-swapped on read; '=' is taken as little-endian (this
 * library only runs on little-endian hosts). fortran_order True is refused.
 * NumPy has no bfloat16: BF16 is written either as '<f4' (converted exactly)
 * or, raw, as '<u2' (the caller chooses, see ss_npy_encode).
 */
#ifndef SS_NPY_H
#define SS_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

/* The header of a .npy image: buf holds at least the preamble and the
 * header dict (the data need not follow). */
typedef struct ss_npy_info {
    ss_dtype dtype;
    int ndim;
    int64_t shape[SS_MAX_DIMS];
    size_t data_offset;   /* where the data start */
    size_t nbytes;        /* prod(shape) * itemsize (overflow-checked) */
    int big_endian;       /* '>' with itemsize > 1: the reader must swap */
    char descr[32];
} ss_npy_info;
int ss_npy_header(const uint8_t *buf, size_t len, ss_npy_info *info, ss_err *e);

/* Parses a complete .npy image and adds it to r as tensor `name`.
 * Errors: bad magic/version, malformed header, unsupported dtype, fortran
 * order, data size != prod(shape) * itemsize. */
int ss_npy_decode(const uint8_t *buf, size_t len, ss_record *r, const char *name, ss_err *e);

/* Serialises t as .npy version 1.0 (our headers are always short) into a
 * malloc'd *buf. BF16: bf16_raw == 0 converts to '<f4', 1 writes '<u2'. */
int ss_npy_encode(const ss_tensor *t, int bf16_raw, uint8_t **buf, size_t *len, ss_err *e);

/* File wrappers ("-" = stdin / stdout); save is atomic. Errors name the path. */
int ss_npy_load(const char *path, ss_record *r, const char *name, ss_err *e);
int ss_npy_save(const char *path, const ss_tensor *t, int bf16_raw, ss_err *e);

#endif
