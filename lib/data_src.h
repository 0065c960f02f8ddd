/* data_src.h — what a data *source* (one backend: IDX, CIFAR, image folder,
 * image stream) provides to data.c. Private to the data module: tools use
 * the public headers (dataset.h, data.h) only.
 *
 * A source knows every label up front (subsets and the held-out split are
 * drawn from labels without decoding a pixel). Its pixels are either one
 * in-memory uint8 array of n fixed-size HWC images (`pix`), or produced on
 * demand by `get` (which must be thread-safe).
 */
#ifndef SS_DATA_SRC_H
#define SS_DATA_SRC_H

#include "dataset.h"
#include "image.h"

typedef struct ss_src {
    size_t n;
    int nclasses;
    char **class_names;        /* nclasses strings, owned */
    int32_t *labels;           /* n labels in [0, nclasses), owned */
    int h, w, c;               /* fixed geometry, or 0 where it varies */
    uint8_t *pix;              /* n*h*w*c bytes when in memory, else NULL */
    float mean[3], std[3];     /* the data set's usual normalisation */
    /* On-demand sources: decode sample i (min_side: JPEG DCT-scaling hint,
     * want_c: 0 native, 1 or 3). Errors name the file/member. */
    int (*get)(struct ss_src *s, size_t i, int min_side, int want_c, ss_image *im, ss_err *e);
    /* A name for sample i in messages (path, member name, record number). */
    void (*item_name)(const struct ss_src *s, size_t i, char *buf, size_t n);
    void (*close)(struct ss_src *s);   /* frees impl only */
    void *impl;
} ss_src;

/* Constructors; each fills *s (zeroed by the caller) or fails with a message
 * naming the file. `opt` are the spec options the source understands. */
int ss_src_fmnist(ss_src *s, const char *dir, int test, ss_err *e);
int ss_src_idx(ss_src *s, const char *images, const char *labels, ss_err *e);
int ss_src_cifar(ss_src *s, const char *tarball, int hundred, int test, int coarse, ss_err *e);
int ss_src_folder(ss_src *s, const char *path, const char *classes_file, ss_err *e);
int ss_src_stream(ss_src *s, const char *path, ss_err *e);
/* CIFAR-10-C / CIFAR-100-C: DIR/CORRUPTION.npy rows of severity 1..5 and
 * DIR/labels.npy (cifarc.c). */
int ss_src_cifarc(ss_src *s, const char *dir, const char *corruption, int severity, ss_err *e);

/* Helpers shared by the sources (data.c). */
char **ss_src_names_dup(const char *const *names, int n, ss_err *e);
void ss_src_free(ss_src *s);

/* Reads a whole IDX file (gzip or plain; zlib) and checks its type is u8.
 * dims/ndim receive its shape. If md5_hex is non-NULL it receives the MD5
 * of the decompressed bytes. *data is malloc'd. */
int ss_idx_read(const char *path, uint8_t **data, int *ndim, uint32_t dims[4],
                char md5_hex[33], ss_err *e);

#endif
