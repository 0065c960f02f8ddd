/* model.c — see model.h. */
#include "model.h"

#include <stdio.h>
#include <string.h>

#include "md5.h"

int tool_model_open(tool_model *tm, const char *path, const char *preset, int heads, int batch,
                    int threads, ss_err *e)
{
    memset(tm, 0, sizeof *tm);
    ss_record_init(&tm->ck);
    if (ss_st_load(path, &tm->ck, e)) return -1;
    if (preset && ss_vit_preset(preset, &tm->cfg, e)) return ss_prefix(e, "--preset");
    if (heads) tm->cfg.num_heads = heads;
    if (ss_vit_cfg_from_record(&tm->ck, &tm->cfg, e) || ss_vit_new(&tm->m, &tm->cfg, e) ||
        ss_vit_load(&tm->m, &tm->ck, "", tm->m.params, 1, e))
        return ss_prefix(e, "%s", path);
    if (tm->cfg.num_classes <= 0) return ss_fail(e, "%s: no classification head (a backbone only)", path);
    tm->side = tm->cfg.img_size, tm->chans = tm->cfg.in_chans, tm->classes = tm->cfg.num_classes;
    tm->batch = batch;
    const char *mm = ss_record_meta(&tm->ck, "ssta.mean"), *ms = ss_record_meta(&tm->ck, "ssta.std");
    if (mm && ms) {
        int n1 = sscanf(mm, "%f,%f,%f", &tm->mean[0], &tm->mean[1], &tm->mean[2]);
        int n2 = sscanf(ms, "%f,%f,%f", &tm->std[0], &tm->std[1], &tm->std[2]);
        if (n1 != n2 || (n1 != 1 && n1 != 3)) return ss_fail(e, "%s: bad ssta.mean/ssta.std metadata", path);
        if (n1 == 1)
            for (int i = 1; i < 3; i++) tm->mean[i] = tm->mean[0], tm->std[i] = tm->std[0];
        tm->has_norm = 1;
    }
    ss_md5 md;
    uint8_t dig[16];
    ss_md5_init(&md);
    ss_md5_update(&md, tm->m.params, tm->m.nparams * sizeof(float));
    ss_md5_final(&md, dig);
    ss_md5_hex(dig, tm->md5);
    ss_trainer_cfg tc;
    memset(&tc, 0, sizeof tc);
    tc.workers = threads, tc.batch = batch, tc.hin = tm->side, tc.win = tm->side;
    if (!(tm->tr = ss_trainer_new(&tm->m, &tc, e))) return ss_prefix(e, "%s", path);
    return 0;
}

int tool_model_logits(tool_model *tm, const float *x, int B, float *logits, ss_err *e)
{
    return ss_trainer_eval(tm->tr, x, NULL, B, logits, NULL, NULL, e);
}

void tool_model_close(tool_model *tm)
{
    ss_trainer_free(tm->tr);
    ss_vit_free(&tm->m);
    ss_record_free(&tm->ck);
    memset(tm, 0, sizeof *tm);
}
