/* model.c — see model.h. */
#include "model.h"

#include <string.h>

int tool_model_open(tool_model *tm, const char *path, const char *preset, int heads, int batch,
                    int threads, ss_err *e)
{
    memset(tm, 0, sizeof *tm);
    if (ss_modelfile_open(&tm->mf, path, NULL, preset, heads, e)) return -1;
    const ss_vit_cfg *c = &tm->mf.m.cfg;
    if (c->num_classes <= 0) return ss_fail(e, "%s: no classification head (a backbone only)", path);
    tm->side = c->img_size, tm->chans = c->in_chans, tm->classes = c->num_classes;
    tm->batch = batch;
    tm->has_norm = tm->mf.has_norm;
    memcpy(tm->mean, tm->mf.mean, sizeof tm->mean);
    memcpy(tm->std, tm->mf.std, sizeof tm->std);
    memcpy(tm->md5, tm->mf.md5, sizeof tm->md5);
    if (!(tm->run = ss_runner_new(threads, e))) return -1;
    tm->slot = ss_runner_slot(tm->run, &tm->mf.m, batch, tm->side, tm->side, -1, e);
    return tm->slot < 0 ? ss_prefix(e, "%s", path) : 0;
}

int tool_model_logits(tool_model *tm, const float *x, int B, float *logits, ss_err *e)
{
    return ss_runner_logits(tm->run, tm->slot, x, B, logits, e);
}

void tool_model_close(tool_model *tm)
{
    ss_runner_free(tm->run);
    ss_modelfile_close(&tm->mf);
    memset(tm, 0, sizeof *tm);
}
