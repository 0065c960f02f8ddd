/* modelfile.c — a ViT from its checkpoint file(s) (modelfile.h). */
#include "modelfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md5.h"

/* The one normalisation parser (dataset.h): 1 found, 0 absent, -1 bad. */
static int read_norm(const ss_record *r, int *has, float mean[3], float std[3], ss_err *e)
{
    int rc = ss_norm_from_meta(r, mean, std, e);
    *has = rc == 1;
    return rc < 0 ? -1 : 0;
}

/* The probe's head into f->m (whose cfg already has its classes and k). */
static int load_probe(ss_modelfile *f, const ss_record *pr, const char *probe, ss_err *e)
{
    ss_vit *m = &f->m;
    if (ss_record_find(pr, "cls_token")) {
        /* a whole probe checkpoint: its backbone must be ours */
        float *buf = malloc(sizeof(float) * m->nparams);
        if (!buf) return ss_fail(e, "out of memory");
        if (ss_vit_load(m, pr, "", buf, 0, e)) {
            free(buf);
            return ss_prefix(e, "%s", probe);
        }
        for (int i = 0; i < m->ntensors; i++) {
            const ss_vit_tensor *t = &m->tab[i];
            if (!t->backbone) continue;
            if (memcmp(buf + t->off, m->params + t->off, t->n * sizeof(float))) {
                free(buf);
                return ss_fail(e, "%s: %s differs from the backbone's: the probe was trained on another backbone",
                               probe, t->name);
            }
        }
        for (int i = 0; i < m->ntensors; i++)
            if (!m->tab[i].backbone) memcpy(m->params + m->tab[i].off, buf + m->tab[i].off, m->tab[i].n * sizeof(float));
        free(buf);
        return 0;
    }
    int64_t sw[2] = {m->cfg.num_classes, (int64_t)ss_vit_head_in(&m->cfg)}, sb[1] = {m->cfg.num_classes};
    if (ss_record_get_f32(pr, "head.weight", 2, sw, m->w.head_w, e) ||
        ss_record_get_f32(pr, "head.bias", 1, sb, m->w.head_b, e))
        return ss_prefix(e, "%s", probe);
    return 0;
}

int ss_modelfile_open(ss_modelfile *f, const char *path, const char *probe, const char *preset, int heads,
                      ss_err *e)
{
    memset(f, 0, sizeof *f);
    ss_record_init(&f->rec);
    ss_record pr;
    ss_record_init(&pr);
    ss_vit_cfg c;
    memset(&c, 0, sizeof c);
    if (preset && ss_vit_preset(preset, &c, e)) return -1;
    if (heads) c.num_heads = heads;
    if (ss_st_load(path, &f->rec, e)) return -1;
    if (!ss_record_find(&f->rec, "cls_token") && ss_record_find(&f->rec, "teacher.backbone.cls_token")) {
        ss_fail(e, "%s: a dino-train state (student, teacher and their DINO heads); the model is its --teacher-out file",
                path);
        goto fail;
    }
    if (ss_vit_cfg_from_record(&f->rec, &c, e)) goto fail_path;
    if (probe) {
        if (ss_st_load(probe, &pr, e)) goto fail;
        const ss_tensor *hw = ss_record_find(&pr, "head.weight");
        if (!hw || hw->ndim != 2 || hw->shape[0] < 1 || hw->shape[1] < 1) {
            ss_fail(e, "%s: no head.weight [classes, k*D]: not a linear probe", probe);
            goto fail;
        }
        /* a pooled head (ssta.head_pool avg) reads D more inputs than its blocks' class tokens */
        const char *hp = ss_record_meta(&pr, SS_META_HEADPOOL);
        int pool = hp ? ss_vit_pool_parse(hp) : 0;
        if (pool < 0) {
            ss_fail(e, "%s: metadata %s: bad value '%s' (avg or none)", probe, SS_META_HEADPOOL, hp);
            goto fail;
        }
        if (hw->shape[1] % c.embed_dim || hw->shape[1] / c.embed_dim - pool > c.depth ||
            hw->shape[1] / c.embed_dim - pool < 1) {
            ss_fail(e, "%s: head.weight has %lld inputs, not a multiple k%s <= %d of the backbone's width %d", probe,
                    (long long)hw->shape[1], pool ? " + 1 (pooled patch tokens)" : "", c.depth + pool, c.embed_dim);
            goto fail;
        }
        c.num_classes = (int)hw->shape[0];
        c.head_pool = pool;
        c.head_blocks = (int)(hw->shape[1] / c.embed_dim) - pool;
        const char *kb = ss_record_meta(&pr, SS_META_HEADBLK);
        if (kb && atoi(kb) != c.head_blocks) {
            ss_fail(e, "%s: ssta.head_blocks %s, but head.weight has %d blocks' inputs", probe, kb, c.head_blocks);
            goto fail;
        }
    }
    if (ss_vit_cfg_check(&c, e)) goto fail_path;
    if (ss_vit_new(&f->m, &c, e)) goto fail_path;
    if (ss_vit_load(&f->m, &f->rec, "", f->m.params, probe ? 2 : 1, e)) goto fail_path;
    if (read_norm(&f->rec, &f->has_norm, f->mean, f->std, e)) goto fail_path;
    if (probe) {
        if (load_probe(f, &pr, probe, e)) goto fail;
        int has;
        float pm[3], ps[3];
        if (read_norm(&pr, &has, pm, ps, e)) {
            ss_prefix(e, "%s", probe);
            goto fail;
        }
        if (has && f->has_norm && (memcmp(pm, f->mean, sizeof pm) || memcmp(ps, f->std, sizeof ps))) {
            ss_fail(e, "%s: normalisation (ssta.mean/std) differs from the backbone's in %s", probe, path);
            goto fail;
        }
        if (has && !f->has_norm) {
            memcpy(f->mean, pm, sizeof pm);
            memcpy(f->std, ps, sizeof ps);
            f->has_norm = 1;
        }
    }
    ss_md5_buf_hex(f->m.params, f->m.nparams * sizeof(float), f->md5);
    ss_record_free(&pr);
    return 0;
fail_path:
    ss_prefix(e, "%s", path);
fail:
    ss_record_free(&pr);
    ss_modelfile_close(f);
    return -1;
}

void ss_modelfile_close(ss_modelfile *f)
{
    if (f->m.params || f->m.tab) ss_vit_free(&f->m);
    ss_record_free(&f->rec);
    memset(f, 0, sizeof *f);
}

void ss_modelfile_norm(const ss_modelfile *f, const ss_dataset *d, float mean[3], float std[3])
{
    if (f->has_norm) {
        memcpy(mean, f->mean, sizeof f->mean);
        memcpy(std, f->std, sizeof f->std);
        return;
    }
    ss_dataset_norm(d, mean, std);
    int h, w, c;
    ss_dataset_geometry(d, &h, &w, &c);
    if (c == 1)
        for (int i = 1; i < 3; i++) mean[i] = mean[0], std[i] = std[0];
}
