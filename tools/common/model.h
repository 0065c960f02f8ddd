/* model.h — the model side of the analysis tools (mce-eval, shape-bias):
 * a checkpoint (lib/modelfile.h: architecture, normalisation, checksum) on
 * a runner slot, turning batches of normalised views into logits.
 */
#ifndef SS_TOOL_MODEL_H
#define SS_TOOL_MODEL_H

#include "err.h"
#include "modelfile.h"
#include "runner.h"

typedef struct tool_model {
    ss_modelfile mf;
    ss_runner *run;
    int slot;
    int side, chans, classes, batch;
    int has_norm;          /* ssta.mean / ssta.std found in the checkpoint */
    float mean[3], std[3]; /* valid when has_norm */
    char md5[33];          /* MD5 of the parameters as loaded */
} tool_model;

/* Loads `path` (architecture from its ssta.* metadata, or from `preset` /
 * `heads` for a checkpoint without them, as vit-fwd does) for batches of up
 * to `batch` inputs of the model's own size, split over `threads`. */
int tool_model_open(tool_model *tm, const char *path, const char *preset, int heads, int batch,
                    int threads, ss_err *e);
/* logits (B, classes) of B normalised inputs (B, chans, side, side). */
int tool_model_logits(tool_model *tm, const float *x, int B, float *logits, ss_err *e);
void tool_model_close(tool_model *tm);

#endif
