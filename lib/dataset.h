/* dataset.h — data sets opened from a spec string: samples, labels,
 * class names, canonical specs, normalisation metadata, epoch order.
 *
 * A dataset is opened from a *spec* string (grammar in man/man5/ssta-data.5),
 * for example
 *     fashion-mnist:train        Debian dataset-fashion-mnist, train split
 *                                minus the fixed held-out validation split
 *     fashion-mnist:val          that held-out split (600 per class)
 *     fashion-mnist:test
 *     cifar10:/path/cifar-10-binary.tar.gz:test
 *     folder:/path/train         class subfolders of JPEG/PNG (directory,
 *                                plain tar read in place, or tar.gz/zip)
 *     idx:IMAGES:LABELS          IDX pair (gzip or plain)
 *     stream:-                   image records on stdin
 *     cifar-c:/path/CIFAR-10-C:fog:3   one severity of a released .npy
 * followed by options such as ",per-class=100,seed=1",
 * ",holdout=500,part=val" or ",corrupt=fog:3" (an ImageNet-C corruption
 * applied as each image is read, corrupt.h). ss_dataset_spec() returns the canonical form,
 * which tools store in stream headers and checkpoint metadata so that a
 * consumer can check it.
 *
 * Images are uint8, HWC, c in {1,3}. Fashion-MNIST, CIFAR, IDX and image
 * streams are decoded once and held in memory; folders decode on demand.
 * ss_dataset_get is thread-safe.
 *
 * The order of epoch e is a pure function of (seed, e) (ss_epoch_order).
 * All functions that can fail return 0/-1 (or NULL) and fill *e.
 *
 * Not here: views of a sample (transform.h), batches (loader.h), writing
 * image streams (imgstream.h), the source backends (data_src.h, private).
 */
#ifndef SS_DATASET_H
#define SS_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "image.h"   /* ss_image: uint8 HWC */

typedef struct ss_dataset ss_dataset;

ss_dataset *ss_dataset_open(const char *spec, ss_err *e);
void ss_dataset_close(ss_dataset *d);
size_t ss_dataset_len(const ss_dataset *d);
int ss_dataset_nclasses(const ss_dataset *d);
const char *ss_dataset_class_name(const ss_dataset *d, int k);
const char *ss_dataset_spec(const ss_dataset *d);   /* canonical spec */
/* Sets (k in 0..14, severity s in 1..5) or removes (k = -1) the corruption
 * applied as images are read, exactly as the spec option
 * corrupt=NAME:S,corrupt-table=T,corrupt-seed=SEED would (corrupt.h); the
 * canonical spec follows. Saves reopening a data set per corruption. Not
 * while a loader is running on d. */
int ss_dataset_set_corrupt(ss_dataset *d, int k, int s, int table, uint64_t seed, ss_err *e);
/* Native geometry, or 0 for a dimension that varies between samples. */
void ss_dataset_geometry(const ss_dataset *d, int *h, int *w, int *c);
/* Fills *im (caller frees) and *label for sample i. */
int ss_dataset_get(ss_dataset *d, size_t i, ss_image *im, int *label, ss_err *e);
/* The same, with a JPEG DCT-scaling hint (decode no larger than needed for
 * the shorter side to stay >= min_side; 0: full size) and a channel count
 * (0: the data's own, else 1 or 3). Deterministic in (sample, min_side). */
int ss_dataset_get_ex(ss_dataset *d, size_t i, int min_side, int want_c, ss_image *im,
                      int *label, ss_err *e);
int ss_dataset_label(const ss_dataset *d, size_t i);
/* Index of sample i in the underlying source (before subset/split). */
size_t ss_dataset_source_index(const ss_dataset *d, size_t i);
/* A printable name for sample i (file path, archive member, record). */
void ss_dataset_item_name(const ss_dataset *d, size_t i, char *buf, size_t n);
/* The data set's customary per-channel normalisation (c entries, for the
 * native channel count): Fashion-MNIST 0.2860/0.3530, CIFAR-10/100 and
 * ImageNet-style folders their published values (see ssta-data(5)). Tools
 * should prefer the mean/std stored in the model's checkpoint. */
void ss_dataset_norm(const ss_dataset *d, float mean[3], float std[3]);
/* The normalisation stored as metadata (checkpoints, image stream headers):
 * "ssta.mean" and "ssta.std", each 1 or 3 comma-separated numbers (1: the
 * same for every channel; a 1-channel model uses the first), means finite,
 * stds finite and > 0. ss_norm_from_meta returns 1 and fills mean/std (3
 * entries each) when both keys are present, 0 when neither is (mean/std
 * untouched), -1 when only one is or a value is bad, with a message naming
 * the key and its value ("ssta.std: '0.3,0' is not 1 or 3 numbers > 0").
 * ss_norm_to_meta writes c (1 or 3) entries, each the shortest decimal that
 * reads back as the same float. */
typedef struct ss_record ss_record;
int ss_norm_from_meta(const ss_record *r, float mean[3], float std[3], ss_err *e);
int ss_norm_to_meta(ss_record *r, int c, const float mean[3], const float std[3], ss_err *e);
/* Class k's name; class order is fixed by the source (sorted folder names
 * for folders). Writes the list, one name a line, to `path` atomically. */
int ss_dataset_write_classes(const ss_dataset *d, const char *path, ss_err *e);

/* Epoch order: perm[0..n) = a permutation of 0..n-1 keyed by (seed, e),
 * or the identity when shuffle is 0. */
void ss_epoch_order(uint64_t seed, uint32_t epoch, int shuffle, uint32_t *perm, uint32_t n);

#endif
