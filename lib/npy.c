/* npy.c — .npy read/write (see npy.h). */
#include "npy.h"
#include "io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *descr; ss_dtype dt; } npy_types[] = {
    {"b1", SS_BOOL}, {"u1", SS_U8},  {"i1", SS_I8},  {"u2", SS_U16}, {"i2", SS_I16}, {"f2", SS_F16},
    {"u4", SS_U32},  {"i4", SS_I32}, {"f4", SS_F32}, {"u8", SS_U64}, {"i8", SS_I64}, {"f8", SS_F64},
};

typedef struct hp {
    const char *p, *end;
} hp;

static void hws(hp *h)
{
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r')) h->p++;
}

static int hchar(hp *h, char c)
{
    hws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes, copied into out (size n). */
static int hstr(hp *h, char *out, size_t n)
{
    hws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return -1;
    char q = *h->p++;
    size_t k = 0;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || k + 1 >= n) return -1;
        out[k++] = *h->p++;
    }
    if (h->p >= h->end) return -1;
    h->p++;
    out[k] = 0;
    return 0;
}

static int hword(hp *h, const char *w)
{
    hws(h);
    size_t n = strlen(w);
    if ((size_t)(h->end - h->p) < n || memcmp(h->p, w, n)) return -1;
    h->p += n;
    return 0;
}

int ss_npy_header(const uint8_t *buf, size_t len, ss_npy_info *info, ss_err *e)
{
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return ss_fail(e, "not a .npy file (bad magic)");
    int major = buf[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return ss_fail(e, ".npy: truncated header");
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        off = 12;
    } else
        return ss_fail(e, ".npy: unsupported format version %d.%d", major, buf[7]);
    if (hlen > len - off) return ss_fail(e, ".npy: header length %zu runs past the end of the file", hlen);
    hp h = {(const char *)buf + off, (const char *)buf + off + hlen};
    char descr[32] = "", key[32];
    int have_descr = 0, have_fo = 0, have_shape = 0, fortran = 0, ndim = 0;
    int64_t shape[SS_MAX_DIMS];
    if (!hchar(&h, '{')) return ss_fail(e, ".npy: header is not a dict");
    while (!hchar(&h, '}')) {
        if (hstr(&h, key, sizeof key) < 0 || !hchar(&h, ':')) return ss_fail(e, ".npy: malformed header dict");
        if (strcmp(key, "descr") == 0) {
            if (hstr(&h, descr, sizeof descr) < 0) return ss_fail(e, ".npy: 'descr' is not a simple type string");
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (hword(&h, "True") == 0) fortran = 1;
            else if (hword(&h, "False") == 0) fortran = 0;
            else return ss_fail(e, ".npy: bad 'fortran_order'");
            have_fo = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (!hchar(&h, '(')) return ss_fail(e, ".npy: 'shape' is not a tuple");
            while (!hchar(&h, ')')) {
                hws(&h);
                if (h.p >= h.end || *h.p < '0' || *h.p > '9') return ss_fail(e, ".npy: bad 'shape'");
                int64_t v = 0;
                while (h.p < h.end && *h.p >= '0' && *h.p <= '9') {
                    if (v > (INT64_MAX - 9) / 10) return ss_fail(e, ".npy: dimension too large");
                    v = v * 10 + (*h.p++ - '0');
                }
                hws(&h);
                if (h.p < h.end && *h.p == 'L') h.p++; /* Python 2 longs */
                if (ndim == SS_MAX_DIMS) return ss_fail(e, ".npy: more than %d dimensions", SS_MAX_DIMS);
                shape[ndim++] = v;
                if (!hchar(&h, ',')) {
                    if (!hchar(&h, ')')) return ss_fail(e, ".npy: bad 'shape'");
                    break;
                }
            }
            have_shape = 1;
        } else
            return ss_fail(e, ".npy: unknown header key '%s'", key);
        if (!hchar(&h, ',')) {
            if (!hchar(&h, '}')) return ss_fail(e, ".npy: malformed header dict");
            break;
        }
    }
    if (!have_descr || !have_fo || !have_shape) return ss_fail(e, ".npy: header lacks descr, fortran_order or shape");
    if (fortran) return ss_fail(e, ".npy: fortran_order arrays are not supported (save with np.ascontiguousarray)");
    char bo = descr[0];
    if (bo != '<' && bo != '>' && bo != '|' && bo != '=') return ss_fail(e, ".npy: unsupported dtype '%s'", descr);
    int found = -1;
    for (size_t i = 0; i < sizeof npy_types / sizeof *npy_types; i++)
        if (strcmp(descr + 1, npy_types[i].descr) == 0) found = (int)i;
    if (found < 0) return ss_fail(e, ".npy: unsupported dtype '%s'", descr);
    ss_dtype dt = npy_types[found].dt;
    size_t es = ss_dtype_size(dt), nbytes = es;
    for (int i = 0; i < ndim; i++)
        if (ss_mul_size(nbytes, (size_t)shape[i], &nbytes) < 0) return ss_fail(e, ".npy: shape overflows");
    info->dtype = dt;
    info->ndim = ndim;
    memcpy(info->shape, shape, sizeof(int64_t) * (size_t)ndim);
    info->data_offset = off + hlen;
    info->nbytes = nbytes;
    info->big_endian = bo == '>' && es > 1;
    snprintf(info->descr, sizeof info->descr, "%s", descr);
    return 0;
}

int ss_npy_decode(const uint8_t *buf, size_t len, ss_record *r, const char *name, ss_err *e)
{
    ss_npy_info in;
    if (ss_npy_header(buf, len, &in, e)) return -1;
    size_t data = in.data_offset, nbytes = in.nbytes, es = ss_dtype_size(in.dtype);
    if (len - data != nbytes)
        return ss_fail(e, ".npy: %zu data bytes, but dtype '%s' and the shape need %zu", len - data, in.descr, nbytes);
    ss_tensor *t = ss_record_add(r, name, in.dtype, in.ndim, in.shape, buf + data, e);
    if (!t) return -1;
    if (in.big_endian) {
        uint8_t *p = t->data;
        for (size_t i = 0; i < nbytes; i += es)
            for (size_t a = 0, b = es - 1; a < b; a++, b--) {
                uint8_t x = p[i + a];
                p[i + a] = p[i + b];
                p[i + b] = x;
            }
    }
    return 0;
}

int ss_npy_encode(const ss_tensor *t, int bf16_raw, uint8_t **buf, size_t *len, ss_err *e)
{
    const char *descr = NULL;
    ss_dtype dt = t->dtype;
    int widen = 0;
    if (dt == SS_BF16) {
        if (bf16_raw) dt = SS_U16;
        else dt = SS_F32, widen = 1;
    }
    for (size_t i = 0; i < sizeof npy_types / sizeof *npy_types; i++)
        if (npy_types[i].dt == dt) descr = npy_types[i].descr;
    if (!descr) return ss_fail(e, "%s: dtype %s has no .npy equivalent", t->name, ss_dtype_name(t->dtype));
    char dict[512];
    int k = snprintf(dict, sizeof dict, "{'descr': '%c%s', 'fortran_order': False, 'shape': (",
                     ss_dtype_size(dt) == 1 ? '|' : '<', descr);
    for (int i = 0; i < t->ndim; i++)
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%lld,%s", (long long)t->shape[i],
                      i + 1 < t->ndim ? " " : "");
    if (t->ndim > 1) k--; /* "(3, 4)" but "(3,)" */
    k += snprintf(dict + k, sizeof dict - (size_t)k, "), }");
    /* preamble 10 bytes + dict + spaces + '\n', total a multiple of 64 */
    size_t hl = (size_t)k + 1, pre = 10;
    size_t total_hdr = (pre + hl + 63) / 64 * 64;
    size_t n = ss_tensor_numel(t), nbytes;
    if (ss_mul_size(n, ss_dtype_size(dt), &nbytes) < 0 || ss_add_size(nbytes, total_hdr, len) < 0)
        return ss_fail(e, "%s: too large", t->name);
    uint8_t *b = malloc(*len ? *len : 1);
    if (!b) return ss_fail(e, "%s: out of memory", t->name);
    size_t h = total_hdr - pre;
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)(h & 0xff);
    b[9] = (uint8_t)(h >> 8);
    memcpy(b + pre, dict, (size_t)k);
    memset(b + pre + k, ' ', h - (size_t)k - 1);
    b[total_hdr - 1] = '\n';
    if (widen) {
        const uint8_t *s = t->data;
        for (size_t i = 0; i < n; i++) {
            float f = ss_bf16_to_f32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
            memcpy(b + total_hdr + 4 * i, &f, 4);
        }
    } else if (nbytes)
        memcpy(b + total_hdr, t->data, nbytes);
    *buf = b;
    return 0;
}

int ss_npy_load(const char *path, ss_record *r, const char *name, ss_err *e)
{
    uint8_t *buf;
    size_t len;
    if (ss_read_file(path, SIZE_MAX, &buf, &len, e) < 0) return -1;
    int rc = ss_npy_decode(buf, len, r, name, e);
    free(buf);
    return rc < 0 ? ss_prefix(e, "%s", path) : 0;
}

int ss_npy_save(const char *path, const ss_tensor *t, int bf16_raw, ss_err *e)
{
    uint8_t *buf;
    size_t len;
    if (ss_npy_encode(t, bf16_raw, &buf, &len, e) < 0) return ss_prefix(e, "%s", path);
    ss_afile a;
    if (ss_afile_open(&a, path, e) < 0) {
        free(buf);
        return -1;
    }
    int ok = fwrite(buf, 1, len, a.f) == len;
    free(buf);
    if (!ok) {
        ss_afile_abort(&a);
        return ss_fail(e, "%s: write error", path);
    }
    return ss_afile_commit(&a, e);
}
