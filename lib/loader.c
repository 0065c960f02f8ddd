/* loader.c — batches of views, decoded and augmented ahead on worker threads.
 *
 * A ring of `prefetch` batch slots bounds memory (prefetch * batch * c*h*w
 * floats). Workers claim whole batches in order (batch k may be claimed once
 * batch k - prefetch has been handed back by the consumer), fill them
 * independently, and mark them ready; ss_loader_next hands batches out
 * strictly in order. Which thread fills a batch does not matter: each view
 * is keyed by (seed, epoch, dataset index), and the order by (seed, epoch).
 *
 * ss_loader_start_epoch may be called at any time: batches of the old epoch
 * still being filled are finished and discarded (generation counter). An
 * epoch can start at any batch (a run resumed mid-epoch): batch k is the
 * same wherever the epoch started.
 */
#include "loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "image.h"
#include "transform.h"

enum { SLOT_FREE = 0, SLOT_FILLING = 1, SLOT_READY = 2 };

typedef struct slot {
    float **xv;      /* nviews buffers of batch * per_v[v] floats */
    int32_t *y;
    uint32_t *index;
    int n, state, failed;
    size_t step;
    ss_err err;
} slot;

struct ss_loader {
    ss_dataset *d;
    const ss_transform *t;   /* single-view loader, or NULL */
    const ss_multicrop *mc;  /* multi-crop loader, or NULL */
    ss_loader_cfg cfg;
    int want_c, min_side, nviews;  /* decode arguments (0, 0: full decode) */
    size_t *per_v;           /* floats per view, per view index */
    uint32_t n;              /* samples in the data set */
    uint32_t *perm;
    size_t nbatches;

    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_ready, cv_idle;
    pthread_t *th;
    int nth, started;
    slot *slots;
    int nslots;

    uint32_t epoch;
    unsigned gen;
    int active, quit, busy;
    size_t next_claim, next_consume, released;
    int held;                /* slot handed to the consumer, or -1 */

    size_t skipped;
    int have_skip;
    ss_err first_skip;
};

/* Fills batch `step` of the current epoch into s. Runs without the lock;
 * reads only immutable state (perm is not rewritten while busy > 0). */
static void fill_batch(ss_loader *l, slot *s, size_t step, uint32_t epoch)
{
    size_t lo = step * (size_t)l->cfg.batch, hi = lo + (size_t)l->cfg.batch;
    if (hi > l->n) hi = l->n;
    int m = 0;
    s->failed = 0;
    for (size_t p = lo; p < hi; p++) {
        uint32_t i = l->perm[p];
        ss_image im = {0};
        int label;
        ss_err e;
        if (ss_dataset_get_ex(l->d, i, l->min_side, l->want_c, &im, &label, &e)) {
            if (l->cfg.skip_corrupt) {
                pthread_mutex_lock(&l->mu);
                if (!l->have_skip) l->first_skip = e, l->have_skip = 1;
                l->skipped++;
                pthread_mutex_unlock(&l->mu);
                continue;
            }
            s->err = e;
            s->failed = 1;
            break;
        }
        int bad = 0;
        for (int v = 0; v < l->nviews && !bad; v++) {
            const ss_transform *t = l->mc ? ss_multicrop_view(l->mc, v) : l->t;
            float *x = s->xv[v] + (size_t)m * l->per_v[v];
            bad = ss_transform_apply_view(t, &im, l->cfg.seed, epoch, i, (uint32_t)v, x, &e) != 0;
        }
        if (bad) {
            char name[512];
            ss_dataset_item_name(l->d, i, name, sizeof name);
            ss_image_free(&im);
            s->err = e;
            ss_prefix(&s->err, "%s", name);
            s->failed = 1;
            break;
        }
        ss_image_free(&im);
        s->y[m] = label;
        s->index[m] = i;
        m++;
    }
    s->n = m;
}

static void *worker(void *arg)
{
    ss_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->quit) {
        if (l->active && l->next_claim < l->nbatches &&
            l->next_claim < l->released + (size_t)l->nslots) {
            size_t step = l->next_claim++;
            slot *s = &l->slots[step % (size_t)l->nslots];
            s->state = SLOT_FILLING;
            s->step = step;
            unsigned gen = l->gen;
            uint32_t epoch = l->epoch;
            l->busy++;
            pthread_mutex_unlock(&l->mu);
            fill_batch(l, s, step, epoch);
            pthread_mutex_lock(&l->mu);
            l->busy--;
            if (gen == l->gen) {
                s->state = SLOT_READY;
                pthread_cond_broadcast(&l->cv_ready);
            }
            if (!l->busy) pthread_cond_broadcast(&l->cv_idle);
        } else {
            pthread_cond_wait(&l->cv_work, &l->mu);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void slots_free(ss_loader *l)
{
    if (!l->slots) return;
    for (int k = 0; k < l->nslots; k++) {
        slot *s = &l->slots[k];
        if (s->xv)
            for (int v = 0; v < l->nviews; v++) free(s->xv[v]);
        free(s->xv), free(s->y), free(s->index);
    }
    free(l->slots);
    l->slots = NULL;
}

static ss_loader *loader_make(ss_dataset *d, const ss_transform *t, const ss_multicrop *mc,
                              const ss_loader_cfg *cfg, int c, ss_err *e)
{
    if (cfg->batch <= 0 || cfg->batch > (1 << 20)) {
        ss_fail(e, "loader: bad batch size %d", cfg->batch);
        return NULL;
    }
    size_t n = ss_dataset_len(d);
    ss_loader *l = calloc(1, sizeof *l);
    if (!l) {
        ss_fail(e, "out of memory");
        return NULL;
    }
    l->d = d, l->t = t, l->mc = mc, l->cfg = *cfg, l->want_c = c;
    l->nviews = mc ? ss_multicrop_nviews(mc) : 1;
    l->per_v = calloc((size_t)l->nviews, sizeof(size_t));
    if (!l->per_v) {
        free(l);
        ss_fail(e, "out of memory");
        return NULL;
    }
    for (int v = 0; v < l->nviews; v++) {
        const ss_transform *tv = mc ? ss_multicrop_view(mc, v) : t;
        int th, tw, tc;
        ss_transform_geometry(tv, &th, &tw, &tc);
        l->per_v[v] = (size_t)tc * th * tw;
    }
    l->min_side = mc ? ss_multicrop_min_side(mc) : ss_transform_min_side(t);
    l->n = (uint32_t)n;
    l->nbatches = cfg->drop_last ? n / (size_t)cfg->batch : (n + (size_t)cfg->batch - 1) / (size_t)cfg->batch;
    l->held = -1;
    int nth = cfg->threads;
    if (nth <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        nth = cpus >= 2 ? 2 : 1;
    }
    if (nth > 64) nth = 64;
    l->nth = nth;
    l->nslots = cfg->prefetch > 0 ? cfg->prefetch : 2 * nth;
    if (l->nslots < 2) l->nslots = 2;
    if (l->nslots > 64) l->nslots = 64;
    l->perm = malloc(sizeof(uint32_t) * (n ? n : 1));
    l->slots = calloc((size_t)l->nslots, sizeof(slot));
    l->th = calloc((size_t)nth, sizeof(pthread_t));
    if (!l->perm || !l->slots || !l->th) goto oom;
    for (int k = 0; k < l->nslots; k++) {
        slot *s = &l->slots[k];
        s->xv = calloc((size_t)l->nviews, sizeof(float *));
        s->y = malloc(sizeof(int32_t) * (size_t)cfg->batch);
        s->index = malloc(sizeof(uint32_t) * (size_t)cfg->batch);
        if (!s->xv || !s->y || !s->index) goto oom;
        for (int v = 0; v < l->nviews; v++) {
            size_t xfloats;
            if (ss_mul_size(l->per_v[v], (size_t)cfg->batch, &xfloats) || xfloats > ((size_t)1 << 34)) {
                ss_fail(e, "loader: batch of %d views of %zu floats is too large", cfg->batch, l->per_v[v]);
                slots_free(l);
                free(l->perm), free(l->th), free(l->per_v), free(l);
                return NULL;
            }
            if (!(s->xv[v] = malloc(sizeof(float) * xfloats))) goto oom;
        }
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_ready, NULL);
    pthread_cond_init(&l->cv_idle, NULL);
    l->started = 1;
    for (int k = 0; k < nth; k++)
        if (pthread_create(&l->th[k], NULL, worker, l)) {
            l->nth = k;
            ss_loader_free(l);
            ss_fail(e, "loader: cannot start worker thread");
            return NULL;
        }
    return l;
oom:
    slots_free(l);
    free(l->perm), free(l->th), free(l->per_v), free(l);
    ss_fail(e, "loader: out of memory for %d batches of %d samples", cfg->prefetch, cfg->batch);
    return NULL;
}

ss_loader *ss_loader_new(ss_dataset *d, const ss_transform *t, const ss_loader_cfg *cfg, int out_h,
                         int out_w, int c, ss_err *e)
{
    int th, tw, tc;
    ss_transform_geometry(t, &th, &tw, &tc);
    if (th != out_h || tw != out_w || tc != c) {
        ss_fail(e, "loader: transform makes %dx%dx%d views, asked for %dx%dx%d", tc, th, tw, c, out_h, out_w);
        return NULL;
    }
    return loader_make(d, t, NULL, cfg, c, e);
}

ss_loader *ss_loader_new_multicrop(ss_dataset *d, const ss_multicrop *m, const ss_loader_cfg *cfg,
                                   ss_err *e)
{
    int c;
    ss_transform_geometry(ss_multicrop_view(m, 0), NULL, NULL, &c);
    return loader_make(d, NULL, m, cfg, c, e);
}

int ss_loader_start_epoch(ss_loader *l, uint32_t epoch, ss_err *e) { return ss_loader_start_epoch_at(l, epoch, 0, e); }

int ss_loader_start_epoch_at(ss_loader *l, uint32_t epoch, size_t first, ss_err *e)
{
    if (first > l->nbatches)
        return ss_fail(e, "loader: batch %zu of an epoch of %zu batches", first, l->nbatches);
    pthread_mutex_lock(&l->mu);
    l->gen++;
    l->active = 0;
    while (l->busy) pthread_cond_wait(&l->cv_idle, &l->mu);
    for (int k = 0; k < l->nslots; k++) l->slots[k].state = SLOT_FREE;
    ss_epoch_order(l->cfg.seed, epoch, l->cfg.shuffle, l->perm, l->n);
    l->epoch = epoch;
    l->next_claim = l->next_consume = l->released = first;
    l->held = -1;
    l->active = 1;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

int ss_loader_next(ss_loader *l, ss_batch *b, ss_err *e)
{
    pthread_mutex_lock(&l->mu);
    if (!l->active) {
        pthread_mutex_unlock(&l->mu);
        return ss_fail(e, "loader: no epoch started");
    }
    if (l->held >= 0) {
        l->slots[l->held].state = SLOT_FREE;
        l->held = -1;
        l->released++;
        pthread_cond_broadcast(&l->cv_work);
    }
    if (l->next_consume >= l->nbatches) {
        pthread_mutex_unlock(&l->mu);
        return 0;
    }
    size_t step = l->next_consume;
    slot *s = &l->slots[step % (size_t)l->nslots];
    while (!(s->state == SLOT_READY && s->step == step)) pthread_cond_wait(&l->cv_ready, &l->mu);
    l->next_consume++;
    l->held = (int)(step % (size_t)l->nslots);
    if (s->failed) {
        *e = s->err;
        /* The epoch cannot continue past a failed batch. */
        l->next_consume = l->nbatches;
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    b->n = s->n;
    b->x = s->xv[0];
    b->nviews = l->nviews;
    b->views = s->xv;
    b->y = s->y;
    b->index = s->index;
    b->epoch = l->epoch;
    b->step = (uint32_t)step;
    pthread_mutex_unlock(&l->mu);
    return 1;
}

size_t ss_loader_batches(const ss_loader *l) { return l->nbatches; }

size_t ss_loader_skipped(const ss_loader *l, ss_err *first)
{
    ss_loader *m = (ss_loader *)l;
    pthread_mutex_lock(&m->mu);
    size_t k = m->skipped;
    if (first && m->have_skip) *first = m->first_skip;
    pthread_mutex_unlock(&m->mu);
    return k;
}

void ss_loader_free(ss_loader *l)
{
    if (!l) return;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->quit = 1;
        l->gen++;
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
        for (int k = 0; k < l->nth; k++) pthread_join(l->th[k], NULL);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv_work);
        pthread_cond_destroy(&l->cv_ready);
        pthread_cond_destroy(&l->cv_idle);
    }
    slots_free(l);
    free(l->perm), free(l->th), free(l->per_v), free(l);
}
