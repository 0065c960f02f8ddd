/* views.c — the training views of a student run (views.h). */
#include "views.h"

#include <stdio.h>
#include <string.h>

const char *ss_views_default_aug(const char *spec)
{
    return !strncmp(spec, "fashion-mnist", 13) ? "fmnist-light" : "eval";
}

int ss_views_open(ss_views *v, ss_dataset *d, const ss_views_cfg *c, ss_err *e)
{
    memset(v, 0, sizeof *v);
    const char *spec = ss_dataset_spec(d);
    size_t n = ss_dataset_len(d);
    if (n == 0) return ss_fail(e, "%s: empty dataset", spec);
    if (n > UINT32_MAX) return ss_fail(e, "%s: too many samples", spec);
    if (c->batch < 1) return ss_fail(e, "batch %d (>= 1)", c->batch);
    if ((size_t)c->batch > n) return ss_fail(e, "%s: %zu samples, fewer than one batch of %d", spec, n, c->batch);
    if (c->steps_per_epoch < 0) return ss_fail(e, "steps per epoch %d (>= 0)", c->steps_per_epoch);
    const char *aug = c->aug ? c->aug : ss_views_default_aug(spec);
    if (strlen(aug) >= sizeof v->aug) return ss_fail(e, "augmentation '%.40s...' too long", aug);
    snprintf(v->aug, sizeof v->aug, "%s", aug);
    v->d = d;
    v->tf = ss_transform_new(aug, c->img, c->img, c->chans, c->mean, c->std, e);
    if (!v->tf) return ss_prefix(e, "augmentation '%s'", aug);
    ss_loader_cfg lc = {.batch = c->batch, .seed = c->seed, .shuffle = 1, .drop_last = 1, .threads = c->threads,
                        .skip_corrupt = c->skip_corrupt};
    v->loader = ss_loader_new(d, v->tf, &lc, c->img, c->img, c->chans, e);
    if (!v->loader) {
        ss_transform_free(v->tf);
        v->tf = NULL;
        return -1;
    }
    v->steps = ss_loader_batches(v->loader);
    if (c->steps_per_epoch && (size_t)c->steps_per_epoch < v->steps) v->steps = (size_t)c->steps_per_epoch;
    return 0;
}

void ss_views_close(ss_views *v)
{
    ss_loader_free(v->loader);
    ss_transform_free(v->tf);
    memset(v, 0, sizeof *v);
}

int ss_views_start_epoch(ss_views *v, uint32_t ep, ss_err *e) { return ss_loader_start_epoch(v->loader, ep, e); }

int ss_views_next(ss_views *v, ss_batch *b, ss_err *e)
{
    int rc = ss_loader_next(v->loader, b, e);
    if (rc == 1 && b->step >= v->steps) return 0;   /* beyond the cap */
    return rc;
}

int ss_views_ident(const ss_views *v, const ss_views_cfg *c, ss_ident *id, ss_err *e)
{
    if (ss_ident_add(id, e, "data", "%s", ss_dataset_spec(v->d)) || ss_ident_add(id, e, "aug", "%s", v->aug) ||
        ss_ident_add(id, e, "seed", "%llu", (unsigned long long)c->seed) ||
        ss_ident_add(id, e, "batch", "%d", c->batch) || ss_ident_add(id, e, "img", "%d", c->img) ||
        ss_ident_add(id, e, "chans", "%d", c->chans) || ss_ident_add(id, e, "steps", "%zu", v->steps))
        return -1;
    return 0;
}
