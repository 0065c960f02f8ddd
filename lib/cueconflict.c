/* cueconflict.c — the generated cue-conflict set (see cueconflict.h). */
#include "cueconflict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

struct ss_cueset {
    ss_dataset *src;
    ss_cue_cfg cfg;
    int K;
    size_t **idx;   /* per class: data set indices */
    size_t *cnt;
    char desc[1024];
};

void ss_cue_defaults(ss_cue_cfg *c)
{
    c->per_pair = 20;
    c->patch = 4;
    c->thresh = 0.1f;
    c->seed = 0;
}

void ss_cueset_free(ss_cueset *c)
{
    if (!c) return;
    if (c->idx)
        for (int k = 0; k < c->K; k++) free(c->idx[k]);
    free(c->idx);
    free(c->cnt);
    free(c);
}

ss_cueset *ss_cueset_new(ss_dataset *src, const ss_cue_cfg *cfg, ss_err *e)
{
    if (cfg->per_pair < 1 || cfg->patch < 1 || !(cfg->thresh >= 0.0f && cfg->thresh < 1.0f)) {
        ss_fail(e, "cue-conflict: bad parameters (per_pair %d, patch %d, thresh %g)", cfg->per_pair, cfg->patch,
                cfg->thresh);
        return NULL;
    }
    int K = ss_dataset_nclasses(src);
    if (K < 2) {
        ss_fail(e, "cue-conflict: %s has %d class(es), at least 2 needed", ss_dataset_spec(src), K);
        return NULL;
    }
    ss_cueset *c = calloc(1, sizeof *c);
    if (!c || !(c->idx = calloc((size_t)K, sizeof(size_t *))) || !(c->cnt = calloc((size_t)K, sizeof(size_t)))) {
        ss_cueset_free(c);
        ss_fail(e, "out of memory");
        return NULL;
    }
    c->src = src, c->cfg = *cfg, c->K = K;
    size_t n = ss_dataset_len(src);
    for (size_t i = 0; i < n; i++) {
        int l = ss_dataset_label(src, i);
        if (l >= 0 && l < K) c->cnt[l]++;
    }
    for (int k = 0; k < K; k++) {
        if (!c->cnt[k]) {
            ss_fail(e, "cue-conflict: %s has no image of class %d (%s)", ss_dataset_spec(src), k,
                    ss_dataset_class_name(src, k) ? ss_dataset_class_name(src, k) : "?");
            ss_cueset_free(c);
            return NULL;
        }
        if (!(c->idx[k] = malloc(sizeof(size_t) * c->cnt[k]))) {
            ss_fail(e, "out of memory");
            ss_cueset_free(c);
            return NULL;
        }
        c->cnt[k] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        int l = ss_dataset_label(src, i);
        if (l >= 0 && l < K) c->idx[l][c->cnt[l]++] = i;
    }
    snprintf(c->desc, sizeof c->desc, "cue-conflict of %s: per_pair=%d patch=%d thresh=%g seed=%llu",
             ss_dataset_spec(src), cfg->per_pair, cfg->patch, cfg->thresh, (unsigned long long)cfg->seed);
    return c;
}

size_t ss_cueset_len(const ss_cueset *c) { return (size_t)c->K * (c->K - 1) * c->cfg.per_pair; }
int ss_cueset_nclasses(const ss_cueset *c) { return c->K; }
const char *ss_cueset_describe(const ss_cueset *c) { return c->desc; }

static inline float luma(const uint8_t *p, int C)
{
    return C == 3 ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : p[0];
}

/* The silhouette of im: luma > thresh * max luma. */
static void silhouette(const ss_image *im, float thresh, uint8_t *m)
{
    size_t n = (size_t)im->h * im->w;
    float mx = 0;
    for (size_t i = 0; i < n; i++) {
        float v = luma(im->pix + i * im->c, im->c);
        mx = v > mx ? v : mx;
    }
    float t = thresh * mx;
    for (size_t i = 0; i < n; i++) m[i] = mx > 0 && luma(im->pix + i * im->c, im->c) > t;
}

/* T_B over an out_h x out_w frame (channels of out): B's tiles inside its
 * silhouette, shuffled. */
static int texture(const ss_image *b, float thresh, int P, ss_rng *r, ss_image *out, ss_err *e)
{
    int gh = b->h / P, gw = b->w / P;
    if (gh < 1 || gw < 1) return ss_fail(e, "cue-conflict: %dx%d image smaller than a %d px tile", b->h, b->w, P);
    uint8_t *m = malloc((size_t)b->h * b->w);
    uint32_t *tiles = malloc(sizeof(uint32_t) * (size_t)gh * gw), *perm = malloc(sizeof(uint32_t) * (size_t)gh * gw);
    if (!m || !tiles || !perm) {
        free(m), free(tiles), free(perm);
        return ss_fail(e, "out of memory");
    }
    silhouette(b, thresh, m);
    /* tiles by coverage: >= 3/4, else >= 1/2, else > 0, else all */
    static const float need[4] = {0.75f, 0.5f, 1e-9f, -1.0f};
    int nt = 0;
    for (int q = 0; q < 4 && nt == 0; q++)
        for (int ty = 0; ty < gh; ty++)
            for (int tx = 0; tx < gw; tx++) {
                int cov = 0;
                for (int y = 0; y < P; y++)
                    for (int x = 0; x < P; x++) cov += m[(size_t)(ty * P + y) * b->w + tx * P + x];
                if ((float)cov / (P * P) >= need[q]) tiles[nt++] = (uint32_t)(ty * gw + tx);
            }
    int oh = out->h, ow = out->w, C = out->c;
    int th = (oh + P - 1) / P, tw = (ow + P - 1) / P, used = nt;
    for (int cy = 0; cy < th; cy++)
        for (int cx = 0; cx < tw; cx++) {
            if (used == nt) {
                ss_rng_permute(r, perm, (uint32_t)nt);
                used = 0;
            }
            uint32_t t = tiles[perm[used++]];
            int sy = (int)(t / gw) * P, sx = (int)(t % gw) * P;
            for (int y = 0; y < P && cy * P + y < oh; y++)
                for (int x = 0; x < P && cx * P + x < ow; x++) {
                    const uint8_t *s = b->pix + ((size_t)(sy + y) * b->w + sx + x) * b->c;
                    uint8_t *d = out->pix + ((size_t)(cy * P + y) * ow + cx * P + x) * C;
                    for (int ch = 0; ch < C; ch++) d[ch] = b->c == C ? s[ch] : (uint8_t)(luma(s, b->c) + 0.5f);
                }
        }
    free(m), free(tiles), free(perm);
    return 0;
}

int ss_cueset_get(const ss_cueset *c, size_t i, int kind, ss_image *out, int *shape, int *tex, size_t *src_a,
                  size_t *src_b, ss_err *e)
{
    out->pix = NULL;
    if (i >= ss_cueset_len(c)) return ss_fail(e, "cue-conflict item %zu out of range (%zu)", i, ss_cueset_len(c));
    size_t p = i / (size_t)c->cfg.per_pair, j = i % (size_t)c->cfg.per_pair;
    int A = (int)(p / (size_t)(c->K - 1)), Bi = (int)(p % (size_t)(c->K - 1));
    int B = Bi < A ? Bi : Bi + 1;
    ss_rng ra = ss_rng_key(c->cfg.seed, SS_RNG_CUE, p, j, 0), rb = ss_rng_key(c->cfg.seed, SS_RNG_CUE, p, j, 1);
    ss_rng rt = ss_rng_key(c->cfg.seed, SS_RNG_CUE, p, j, 2);
    size_t ia = c->idx[A][ss_rng_below(&ra, (uint32_t)c->cnt[A])];
    size_t ib = c->idx[B][ss_rng_below(&rb, (uint32_t)c->cnt[B])];
    if (shape) *shape = A;
    if (tex) *tex = B;
    if (src_a) *src_a = ia;
    if (src_b) *src_b = ib;
    ss_image xa = {0}, xb = {0};
    uint8_t *m = NULL;
    int rc = -1;
    if (ss_dataset_get(c->src, ia, &xa, NULL, e) || ss_dataset_get(c->src, ib, &xb, NULL, e)) goto done;
    if (ss_image_alloc(out, xa.h, xa.w, xa.c, e)) goto done;
    size_t n = (size_t)xa.h * xa.w;
    if (!(m = malloc(n))) {
        ss_fail(e, "out of memory");
        goto done;
    }
    silhouette(&xa, c->cfg.thresh, m);
    if (kind == SS_CUE_SHAPE) {
        double s[3] = {0, 0, 0};
        size_t cnt = 0;
        for (size_t q = 0; q < n; q++)
            if (m[q]) {
                for (int ch = 0; ch < xa.c; ch++) s[ch] += xa.pix[q * xa.c + ch];
                cnt++;
            }
        for (size_t q = 0; q < n; q++)
            for (int ch = 0; ch < xa.c; ch++)
                out->pix[q * xa.c + ch] = m[q] ? (uint8_t)(s[ch] / (double)cnt + 0.5) : 0;
    } else {
        if (texture(&xb, c->cfg.thresh, c->cfg.patch, &rt, out, e)) goto done;
        if (kind == SS_CUE_CONFLICT)
            for (size_t q = 0; q < n; q++)
                if (!m[q]) memset(out->pix + q * xa.c, 0, (size_t)xa.c);
    }
    rc = 0;
done:
    if (rc) ss_image_free(out);
    ss_image_free(&xa), ss_image_free(&xb);
    free(m);
    return rc;
}
