/* headrank.c — head importance by zeroing, with shared prefixes (headrank.h). */
#define _GNU_SOURCE   /* qsort_r */
#include "headrank.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "rng.h"

/* ---------------------------------------------------------------- selections */

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int parse_index(const char **p, long *v)
{
    char *end;
    if (**p < '0' || **p > '9') return -1;
    *v = strtol(*p, &end, 10);
    if (end == *p || *v > 1000000) return -1;
    *p = end;
    return 0;
}

int ss_layers_parse(const char *s, int depth, int *layers, int *nl, ss_err *e)
{
    *nl = 0;
    if (!strncmp(s, "last", 4)) {
        long k = 3;
        const char *p = s + 4;
        if (*p == ':') {
            p++;
            if (parse_index(&p, &k) || *p || k < 1) return ss_fail(e, "bad layer set '%s' (last:K)", s);
        } else if (*p) {
            return ss_fail(e, "bad layer set '%s'", s);
        }
        if (k > depth) k = depth;
        if (k > SS_HEADSEL_MAX) return ss_fail(e, "layer set '%s': more than %d layers", s, SS_HEADSEL_MAX);
        for (int i = 0; i < k; i++) layers[i] = depth - (int)k + i;
        *nl = (int)k;
        return 0;
    }
    const char *p = s;
    while (*p) {
        long v;
        if (parse_index(&p, &v)) return ss_fail(e, "bad layer set '%s' (comma list of block indices)", s);
        if (v >= depth) return ss_fail(e, "layer set '%s': block %ld, the model has %d (0..%d)", s, v, depth, depth - 1);
        if (*nl >= SS_HEADSEL_MAX) return ss_fail(e, "layer set '%s': more than %d layers", s, SS_HEADSEL_MAX);
        for (int i = 0; i < *nl; i++)
            if (layers[i] == v) return ss_fail(e, "layer set '%s': block %ld twice", s, v);
        layers[(*nl)++] = (int)v;
        if (*p == ',' && p[1]) p++;
        else if (*p) return ss_fail(e, "bad layer set '%s' (comma list of block indices)", s);
    }
    if (*nl == 0) return ss_fail(e, "empty layer set");
    qsort(layers, (size_t)*nl, sizeof(int), cmp_int);
    return 0;
}

void ss_headsel_avg(const int *layers, int nl, ss_headsel *sel)
{
    memset(sel, 0, sizeof *sel);
    for (int i = 0; i < nl && i < SS_HEADSEL_MAX; i++) {
        sel->layer[i] = layers[i];
        sel->head[i] = SS_HEAD_AVG;
        sel->n++;
    }
}

void ss_headsel_random(const int *layers, int nl, int heads, uint64_t seed, ss_headsel *sel)
{
    memset(sel, 0, sizeof *sel);
    for (int i = 0; i < nl && i < SS_HEADSEL_MAX; i++) {
        ss_rng r = ss_rng_key(seed, SS_RNG_HEAD, (uint64_t)layers[i], 0, 0);
        sel->layer[i] = layers[i];
        sel->head[i] = (int)ss_rng_below(&r, (uint32_t)heads);
        sel->n++;
    }
}

int ss_headsel_parse(const char *s, int depth, int heads, ss_headsel *sel, ss_err *e)
{
    memset(sel, 0, sizeof *sel);
    if (!strcmp(s, "avg")) {
        int layers[SS_HEADSEL_MAX], nl;
        if (ss_layers_parse("last", depth, layers, &nl, e)) return -1;
        ss_headsel_avg(layers, nl, sel);
        return 0;
    }
    const char *p = s;
    while (*p) {
        const char *item = p;
        long l, h;
        if (parse_index(&p, &l) || *p != ':')
            return ss_fail(e, "head selection '%s': bad item at '%s' (L:H or L:avg)", s, item);
        p++;
        if (!strncmp(p, "avg", 3)) {
            h = SS_HEAD_AVG;
            p += 3;
        } else if (parse_index(&p, &h)) {
            return ss_fail(e, "head selection '%s': bad item at '%s' (L:H or L:avg)", s, item);
        }
        if (*p && *p != ',') return ss_fail(e, "head selection '%s': bad item at '%s' (L:H or L:avg)", s, item);
        if (l >= depth) return ss_fail(e, "head selection '%s': block %ld, the model has %d (0..%d)", s, l, depth, depth - 1);
        if (h >= heads) return ss_fail(e, "head selection '%s': head %ld, the model has %d (0..%d)", s, h, heads, heads - 1);
        for (int i = 0; i < sel->n; i++)
            if (sel->layer[i] == l) return ss_fail(e, "head selection '%s': block %ld twice (one head per layer)", s, l);
        if (sel->n >= SS_HEADSEL_MAX) return ss_fail(e, "head selection '%s': more than %d layers", s, SS_HEADSEL_MAX);
        sel->layer[sel->n] = (int)l;
        sel->head[sel->n] = (int)h;
        sel->n++;
        if (*p == ',') {
            p++;
            if (!*p) return ss_fail(e, "head selection '%s': empty item", s);
        }
    }
    if (sel->n == 0) return ss_fail(e, "empty head selection");
    /* insertion sort by layer (n is small) */
    for (int i = 1; i < sel->n; i++)
        for (int j = i; j > 0 && sel->layer[j - 1] > sel->layer[j]; j--) {
            int tl = sel->layer[j], th = sel->head[j];
            sel->layer[j] = sel->layer[j - 1], sel->head[j] = sel->head[j - 1];
            sel->layer[j - 1] = tl, sel->head[j - 1] = th;
        }
    return 0;
}

void ss_headsel_format(const ss_headsel *sel, char *buf, size_t n)
{
    size_t k = 0;
    if (n) buf[0] = 0;
    for (int i = 0; i < sel->n && k < n; i++) {
        int w = sel->head[i] == SS_HEAD_AVG
                    ? snprintf(buf + k, n - k, "%s%d:avg", i ? "," : "", sel->layer[i])
                    : snprintf(buf + k, n - k, "%s%d:%d", i ? "," : "", sel->layer[i], sel->head[i]);
        if (w < 0) break;
        k += (size_t)w;
    }
}

/* ---------------------------------------------------------------- ranking */

struct ss_headrank {
    ss_runner *r;
    int slot;
    const ss_vit *m;
    ss_headrank_cfg c;
    int depth, NH, K, W;
    int nsingles, ncombos, nrows;
    ss_headrank_row *rows;
    uint8_t *hits;          /* [image][row] */
    long images, cap;
    uint8_t *mask[SS_MAX_WORKERS];   /* depth*NH head masks, one per worker */
    /* blocks run per image, by the schedule (the same on every worker) */
    double blocks_base, blocks_singles, blocks_combos;
    int ranked;
};

/* Row numbers: 0 base, 1 + k*NH + h singles, 1 + nsingles + combo combos,
 * where combo = sum_k h_k NH^(nl-1-k) (lexicographic). */
static int row_single(const ss_headrank *h, int k, int head) { return 1 + k * h->NH + head; }
static int row_combo(const ss_headrank *h, long combo) { return 1 + h->nsingles + (int)combo; }

ss_headrank *ss_headrank_new(ss_runner *r, int slot, const ss_headrank_cfg *c, ss_err *e)
{
    const ss_vit *m = ss_runner_model(r, slot);
    int depth = m->cfg.depth, NH = m->cfg.num_heads, K = m->cfg.num_classes;
    if (K <= 0) {
        ss_fail(e, "the model has no classifier (give a linear probe)");
        return NULL;
    }
    if (c->nlayers < 1 || c->nlayers > SS_HEADSEL_MAX) {
        ss_fail(e, "layer set of %d layers (1..%d)", c->nlayers, SS_HEADSEL_MAX);
        return NULL;
    }
    for (int k = 0; k < c->nlayers; k++)
        if (c->layers[k] < 0 || c->layers[k] >= depth || (k && c->layers[k] <= c->layers[k - 1])) {
            ss_fail(e, "layer set: blocks must be ascending, distinct and < %d", depth);
            return NULL;
        }
    if (!c->singles && !c->combos) {
        ss_fail(e, "nothing to evaluate (neither single heads nor combinations)");
        return NULL;
    }
    long ncombos = 0;
    if (c->combos) {
        ncombos = 1;
        for (int k = 0; k < c->nlayers; k++) {
            ncombos *= NH;
            if (ncombos > SS_HEADRANK_MAX_EVALS) {
                ss_fail(e, "%d heads over %d layers make more than %d combinations; use fewer layers or "
                           "single heads only", NH, c->nlayers, SS_HEADRANK_MAX_EVALS);
                return NULL;
            }
        }
    }
    ss_headrank *h = calloc(1, sizeof *h);
    if (!h) {
        ss_fail(e, "out of memory");
        return NULL;
    }
    h->r = r, h->slot = slot, h->m = m, h->c = *c;
    h->depth = depth, h->NH = NH, h->K = K, h->W = ss_runner_workers(r);
    h->nsingles = c->singles ? NH * c->nlayers : 0;
    h->ncombos = (int)ncombos;
    h->nrows = 1 + h->nsingles + h->ncombos;
    h->rows = calloc((size_t)h->nrows, sizeof *h->rows);
    if (!h->rows) goto oom;
    for (int w = 0; w < h->W; w++)
        if (!(h->mask[w] = calloc((size_t)depth * NH, 1))) goto oom;
    h->rows[0].kind = SS_HR_BASE;
    for (int k = 0; k < (c->singles ? c->nlayers : 0); k++)
        for (int hd = 0; hd < NH; hd++) {
            ss_headrank_row *rw = &h->rows[row_single(h, k, hd)];
            rw->kind = SS_HR_SINGLE;
            rw->nz = 1;
            rw->layer[0] = c->layers[k];
            rw->head[0] = hd;
        }
    for (long cb = 0; cb < ncombos; cb++) {
        ss_headrank_row *rw = &h->rows[row_combo(h, cb)];
        rw->kind = SS_HR_COMBO;
        rw->nz = c->nlayers;
        long rest = cb;
        for (int k = c->nlayers - 1; k >= 0; k--) {
            rw->layer[k] = c->layers[k];
            rw->head[k] = (int)(rest % NH);
            rest /= NH;
        }
    }
    return h;
oom:
    ss_headrank_free(h);
    ss_fail(e, "out of memory");
    return NULL;
}

void ss_headrank_free(ss_headrank *h)
{
    if (!h) return;
    for (int w = 0; w < SS_MAX_WORKERS; w++) free(h->mask[w]);
    free(h->rows);
    free(h->hits);
    free(h);
}

int ss_headrank_nevals(const ss_headrank *h) { return h->nrows; }
long ss_headrank_images(const ss_headrank *h) { return h->images; }

/* ---------------------------------------------------------------- one batch */

typedef struct batch_ctx {
    ss_headrank *h;
    const float *x;
    const int32_t *y;
    long first;             /* image number of the batch's sample 0 */
    double blocks[SS_MAX_WORKERS][3];   /* per image: base, singles, combos */
} batch_ctx;

/* A worker's state while it walks the evaluations of its slice. */
typedef struct walk {
    batch_ctx *bc;
    ss_vit_acts *a;
    uint8_t *mask;
    int lo, n;
    double *blocks;
} walk;

static void describe(const ss_headrank_row *rw, char *buf, size_t n)
{
    if (rw->kind == SS_HR_BASE) {
        snprintf(buf, n, "no head zeroed");
        return;
    }
    ss_headsel s = {.n = rw->nz};
    memcpy(s.layer, rw->layer, sizeof s.layer);
    memcpy(s.head, rw->head, sizeof s.head);
    char t[512];
    ss_headsel_format(&s, t, sizeof t);
    snprintf(buf, n, "heads %s zeroed", t);
}

/* Hits of the current logits for evaluation `row`. */
static int record(walk *wk, int row, ss_err *e)
{
    ss_headrank *h = wk->bc->h;
    const float *z = ss_vit_logits(wk->a);
    for (int b = 0; b < wk->n; b++) {
        long img = wk->bc->first + wk->lo + b;
        int rk = ss_class_rank(z + (size_t)b * h->K, h->K, wk->bc->y[wk->lo + b]);
        if (rk < 0) {
            char d[600];
            describe(&h->rows[row], d, sizeof d);
            return ss_fail(e, "non-finite logits for image %ld (%s)", img, d);
        }
        h->hits[(size_t)img * h->nrows + row] = rk == 0;
    }
    return 0;
}

static int from(walk *wk, int l0, int l1, int what, ss_err *e)
{
    ss_headrank *h = wk->bc->h;
    wk->blocks[what] += l1 - l0;
    return ss_vit_forward_from(h->m, h->m->params, wk->a, l0, l1, wk->mask, e);
}

/* Depth-first over the heads of layers k.. of the set, heads of layers
 * < k already set in the mask; prefix = the combination index so far. */
static int dfs(walk *wk, int k, long prefix, ss_err *e)
{
    ss_headrank *h = wk->bc->h;
    const ss_headrank_cfg *c = &h->c;
    int nl = c->nlayers, lk = c->layers[k], NH = h->NH;
    int lnext = k + 1 < nl ? c->layers[k + 1] : h->depth;
    for (int hd = 0; hd < NH; hd++) {
        uint8_t *bit = &wk->mask[(size_t)lk * NH + hd];
        *bit = 1;
        if (from(wk, lk, lnext, 2, e)) return -1;
        long cb = prefix * NH + hd;
        if (k == nl - 1) {
            if (record(wk, row_combo(h, cb), e)) return -1;
            if (k == 0 && c->singles && record(wk, row_single(h, 0, hd), e)) return -1;
        } else {
            if (k == 0 && c->singles) {
                /* the single head (l_0, hd): the walk's block l_0 plus the rest */
                if (from(wk, lnext, h->depth, 1, e) || record(wk, row_single(h, 0, hd), e)) return -1;
            }
            if (dfs(wk, k + 1, cb, e)) return -1;
        }
        *bit = 0;
    }
    return 0;
}

static void set_row_mask(const ss_headrank *h, const ss_headrank_row *rw, uint8_t *mask)
{
    memset(mask, 0, (size_t)h->depth * h->NH);
    for (int i = 0; i < rw->nz; i++) mask[(size_t)rw->layer[i] * h->NH + rw->head[i]] = 1;
}

static int batch_worker(void *arg, int w, int lo, int hi, ss_err *e)
{
    batch_ctx *bc = arg;
    ss_headrank *h = bc->h;
    const ss_headrank_cfg *c = &h->c;
    int n = hi - lo;
    if (n <= 0) return 0;
    const ss_vit *m = h->m;
    walk wk = {.bc = bc, .a = ss_runner_acts(h->r, h->slot, w), .mask = h->mask[w], .lo = lo, .n = n,
               .blocks = bc->blocks[w]};
    size_t in1 = (size_t)m->cfg.in_chans * wk.a->hin * wk.a->win;
    ss_vit_run run = {0};
    run.sample0 = lo;
    run.head_off = wk.mask;
    memset(wk.mask, 0, (size_t)h->depth * h->NH);
    ss_vit_forward(m, m->params, wk.a, bc->x + (size_t)lo * in1, n, &run);
    wk.blocks[0] += h->depth;
    if (record(&wk, 0, e)) return -1;

    if (c->naive) {
        for (int row = 1; row < h->nrows; row++) {
            set_row_mask(h, &h->rows[row], wk.mask);
            ss_vit_forward(m, m->params, wk.a, bc->x + (size_t)lo * in1, n, &run);
            wk.blocks[h->rows[row].kind == SS_HR_COMBO ? 2 : 1] += h->depth;
            if (record(&wk, row, e)) return -1;
        }
        memset(wk.mask, 0, (size_t)h->depth * h->NH);
        return 0;
    }
    /* Singles read the base outputs below their layer: deepest layer first,
     * so each one only overwrites blocks the next ones do not read. Those of
     * l_0 come with the walk when there is one. */
    if (c->singles)
        for (int k = c->nlayers - 1; k >= (c->combos ? 1 : 0); k--) {
            int lk = c->layers[k];
            for (int hd = 0; hd < h->NH; hd++) {
                wk.mask[(size_t)lk * h->NH + hd] = 1;
                if (from(&wk, lk, h->depth, 1, e) || record(&wk, row_single(h, k, hd), e)) return -1;
                wk.mask[(size_t)lk * h->NH + hd] = 0;
            }
        }
    if (c->combos && dfs(&wk, 0, 0, e)) return -1;
    return 0;
}

int ss_headrank_batch(ss_headrank *h, const float *x, const int32_t *y, int B, ss_err *e)
{
    if (B < 1) return ss_fail(e, "empty batch");
    for (int b = 0; b < B; b++)
        if (y[b] < 0 || y[b] >= h->K)
            return ss_fail(e, "image %ld: label %d outside the model's %d classes", h->images + b, y[b], h->K);
    long need = h->images + B;
    if (need > h->cap) {
        long cap = h->cap ? h->cap : 1024;
        while (cap < need) cap *= 2;
        size_t bytes;
        if (ss_mul_size((size_t)cap, (size_t)h->nrows, &bytes)) return ss_fail(e, "too many images");
        uint8_t *nh = realloc(h->hits, bytes);
        if (!nh) return ss_fail(e, "out of memory for %zu MB of per-image hits", bytes >> 20);
        h->hits = nh;
        h->cap = cap;
    }
    batch_ctx *bc = calloc(1, sizeof *bc);
    if (!bc) return ss_fail(e, "out of memory");
    bc->h = h, bc->x = x, bc->y = y, bc->first = h->images;
    int rc = ss_runner_each(h->r, B, batch_worker, bc, e);
    if (rc == 0) {
        /* every worker with samples ran the same schedule: take one */
        for (int w = 0; w < h->W; w++) {
            int lo, hi;
            ss_runner_slice(h->r, w, B, &lo, &hi);
            if (hi <= lo) continue;
            h->blocks_base += bc->blocks[w][0] * B;
            h->blocks_singles += bc->blocks[w][1] * B;
            h->blocks_combos += bc->blocks[w][2] * B;
            break;
        }
        h->images += B;
        h->ranked = 0;
    }
    free(bc);
    return rc;
}

double ss_headrank_cost(const ss_headrank *h, double *combos, double *singles)
{
    double d = (double)h->depth * (h->images ? (double)h->images : 1.0);
    if (combos) *combos = h->blocks_combos / d;
    if (singles) *singles = h->blocks_singles / d;
    return (h->blocks_base + h->blocks_singles + h->blocks_combos) / d;
}

int ss_headrank_hit(const ss_headrank *h, int row, long i) { return h->hits[(size_t)i * h->nrows + row]; }

/* ---------------------------------------------------------------- results */

/* Paired mean and SE of d_i in {-1,0,1} from the discordant counts. */
static void paired(long n, long n10, long n01, double *mean, double *se)
{
    double dn = (double)n, m = (double)(n10 - n01) / dn;
    *mean = m;
    if (n < 2) {
        *se = NAN;
        return;
    }
    double ss = (double)(n10 + n01) - dn * m * m;   /* sum (d - mean)^2 */
    if (ss < 0) ss = 0;
    *se = sqrt(ss / (dn - 1) / dn);
}

void ss_headrank_compare(const ss_headrank *h, int a, int b, double *diff, double *se, long *n10,
                         long *n01)
{
    long x10 = 0, x01 = 0;
    for (long i = 0; i < h->images; i++) {
        const uint8_t *hi = h->hits + (size_t)i * h->nrows;
        x10 += hi[a] && !hi[b];
        x01 += !hi[a] && hi[b];
    }
    paired(h->images, x10, x01, diff, se);
    if (n10) *n10 = x10;
    if (n01) *n01 = x01;
}

static int cmp_rank(const void *pa, const void *pb, void *ctx)
{
    const ss_headrank *h = ctx;
    int a = *(const int *)pa, b = *(const int *)pb;
    long ca = h->rows[a].correct, cb = h->rows[b].correct;
    if (ca != cb) return ca < cb ? -1 : 1;   /* fewer hits = larger drop = first */
    return (a > b) - (a < b);
}

static void rank_group(ss_headrank *h, int *idx, int n)
{
    qsort_r(idx, (size_t)n, sizeof(int), cmp_rank, h);
    for (int i = 0; i < n; i++) {
        ss_headrank_row *rw = &h->rows[idx[i]];
        rw->rank = i + 1;
        rw->next = i + 1 < n ? idx[i + 1] : -1;
        rw->gap = rw->se_gap = 0;
        if (rw->next >= 0) ss_headrank_compare(h, rw->next, idx[i], &rw->gap, &rw->se_gap, NULL, NULL);
    }
}

const ss_headrank_row *ss_headrank_rows(ss_headrank *h, ss_err *e)
{
    if (h->images == 0) {
        ss_fail(e, "no image was counted");
        return NULL;
    }
    if (h->ranked) return h->rows;
    long *n10 = calloc((size_t)h->nrows, sizeof(long)), *n01 = calloc((size_t)h->nrows, sizeof(long));
    long *cor = calloc((size_t)h->nrows, sizeof(long));
    int *idx = malloc(sizeof(int) * (size_t)h->nrows);
    if (!n10 || !n01 || !cor || !idx) {
        free(n10), free(n01), free(cor), free(idx);
        ss_fail(e, "out of memory");
        return NULL;
    }
    for (long i = 0; i < h->images; i++) {
        const uint8_t *hi = h->hits + (size_t)i * h->nrows;
        int base = hi[0];
        for (int r = 0; r < h->nrows; r++) {
            cor[r] += hi[r];
            n10[r] += base && !hi[r];
            n01[r] += !base && hi[r];
        }
    }
    for (int r = 0; r < h->nrows; r++) {
        ss_headrank_row *rw = &h->rows[r];
        rw->n = h->images;
        rw->correct = cor[r];
        rw->acc = (double)cor[r] / (double)h->images;
        paired(h->images, n10[r], n01[r], &rw->drop, &rw->se);
        rw->rank = 0;
        rw->next = -1;
        rw->gap = rw->se_gap = 0;
    }
    /* singles within their layer, combos among themselves */
    if (h->nsingles)
        for (int k = 0; k < h->c.nlayers; k++) {
            for (int hd = 0; hd < h->NH; hd++) idx[hd] = row_single(h, k, hd);
            rank_group(h, idx, h->NH);
        }
    if (h->ncombos) {
        for (int cb = 0; cb < h->ncombos; cb++) idx[cb] = row_combo(h, cb);
        rank_group(h, idx, h->ncombos);
    }
    free(n10), free(n01), free(cor), free(idx);
    h->ranked = 1;
    return h->rows;
}

int ss_headrank_select(ss_headrank *h, ss_headsel *sel, ss_err *e)
{
    const ss_headrank_row *rows = ss_headrank_rows(h, e);
    if (!rows) return -1;
    memset(sel, 0, sizeof *sel);
    if (h->ncombos) {
        for (int r = 0; r < h->nrows; r++)
            if (rows[r].kind == SS_HR_COMBO && rows[r].rank == 1) {
                sel->n = rows[r].nz;
                memcpy(sel->layer, rows[r].layer, sizeof sel->layer);
                memcpy(sel->head, rows[r].head, sizeof sel->head);
                return 0;
            }
        return ss_fail(e, "internal error: no top combination");
    }
    for (int r = 0; r < h->nrows; r++)
        if (rows[r].kind == SS_HR_SINGLE && rows[r].rank == 1) {
            sel->layer[sel->n] = rows[r].layer[0];
            sel->head[sel->n] = rows[r].head[0];
            sel->n++;
        }
    return 0;
}
