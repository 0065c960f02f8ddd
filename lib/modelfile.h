/* modelfile.h — a ViT from its checkpoint file(s), as inference tools load it.
 *
 * One checkpoint with timm names (ssta metadata, or --preset/--heads for a
 * plain timm file), optionally with a separate linear probe: the SSL teacher
 * is a frozen backbone (no head) plus a head trained on its features
 * (distill-step --freeze-backbone). The probe file holds head.weight
 * [K, (k+p)*D] and head.bias [K] (p = 1 with ssta.head_pool avg: the head
 * also reads the pooled patch tokens; k = ssta.head_blocks, else
 * head.weight's columns / D - p); if it also holds backbone tensors (as
 * distill-step's probe checkpoints do) they must equal the backbone's
 * bit for bit, so a probe trained on another backbone is refused.
 *
 * What a tool needs besides the weights comes with them: the MD5 of the
 * float32 parameters as loaded (stream headers record it, as vit-fwd does)
 * and the normalisation the model was trained with (ssta.mean / ssta.std).
 *
 * Not here: training checkpoints with optimizer state (train.h).
 */
#ifndef SS_MODELFILE_H
#define SS_MODELFILE_H

#include "dataset.h"
#include "err.h"
#include "safetensors.h"
#include "vit.h"

typedef struct ss_modelfile {
    ss_vit m;
    ss_record rec;          /* the checkpoint's record (metadata readers) */
    char md5[33];           /* MD5 of m.params (nparams float32, native order) */
    int has_norm;           /* ssta.mean / ssta.std present */
    float mean[3], std[3];  /* from the metadata (one value broadcast to 3) */
} ss_modelfile;

/* Loads `path` (and `probe`, may be NULL). preset (may be NULL) and heads
 * (0: unknown) stand in for metadata a plain timm file lacks. Errors are
 * prefixed with the file concerned. */
int ss_modelfile_open(ss_modelfile *f, const char *path, const char *probe, const char *preset, int heads,
                      ss_err *e);
void ss_modelfile_close(ss_modelfile *f);

/* The normalisation for inputs from d: the checkpoint's, else d's customary
 * values (ss_dataset_norm), with a gray data set's value broadcast to 3
 * channels for an RGB model. */
void ss_modelfile_norm(const ss_modelfile *f, const ss_dataset *d, float mean[3], float std[3]);

#endif
