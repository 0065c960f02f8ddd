/* test_cueconflict.c — the generated cue-conflict set (lib/cueconflict.h):
 * K(K-1) ordered class pairs, shape and texture sources of the right
 * classes, deterministic per (seed, item) and different for another seed;
 * the conflict image is black outside the shape image's silhouette and
 * equals the texture-only image inside it; every texture tile is a tile
 * of the texture source lying (mostly) inside its own silhouette; the
 * shape-only control is one constant inside the silhouette.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "cueconflict.h"
#include "data.h"

static void silhouette(const ss_image *im, uint8_t *m)
{
    int mx = 0;
    for (int i = 0; i < im->h * im->w; i++) mx = im->pix[i] > mx ? im->pix[i] : mx;
    for (int i = 0; i < im->h * im->w; i++) m[i] = im->pix[i] > 0.1f * mx;
}

int main(void)
{
    ss_err e;
    ss_dataset *d = ss_dataset_open("fashion-mnist:test,per-class=20", &e);
    CHECK_MSG(d != NULL, "%s", e.msg);
    if (!d) return check_summary("test_cueconflict");
    ss_cue_cfg cfg;
    ss_cue_defaults(&cfg);
    cfg.per_pair = 3;
    ss_cueset *c = ss_cueset_new(d, &cfg, &e);
    CHECK_MSG(c != NULL, "%s", e.msg);
    CHECK(ss_cueset_len(c) == 90 * 3 && ss_cueset_nclasses(c) == 10);
    int pairs[10][10] = {{0}};
    for (size_t i = 0; i < ss_cueset_len(c); i++) {
        ss_image k[3], xa, xb;
        int A, B, A2, B2;
        size_t ia, ib, ia2, ib2;
        CHECK(ss_cueset_get(c, i, SS_CUE_CONFLICT, &k[0], &A, &B, &ia, &ib, &e) == 0);
        CHECK(ss_cueset_get(c, i, SS_CUE_SHAPE, &k[1], &A2, &B2, &ia2, &ib2, &e) == 0);
        CHECK(ss_cueset_get(c, i, SS_CUE_TEXTURE, &k[2], NULL, NULL, NULL, NULL, &e) == 0);
        CHECK(A != B && A == A2 && B == B2 && ia == ia2 && ib == ib2);
        pairs[A][B]++;
        CHECK(ss_dataset_label(d, ia) == A && ss_dataset_label(d, ib) == B);
        ss_dataset_get(d, ia, &xa, NULL, &e);
        ss_dataset_get(d, ib, &xb, NULL, &e);
        uint8_t ma[784], mb[784];
        silhouette(&xa, ma);
        silhouette(&xb, mb);
        int konst = -1, ok_c = 1, ok_s = 1, ok_t = 1;
        for (int q = 0; q < 784; q++) {
            ok_c &= ma[q] ? k[0].pix[q] == k[2].pix[q] : k[0].pix[q] == 0;
            if (ma[q]) {
                if (konst < 0) konst = k[1].pix[q];
                ok_s &= k[1].pix[q] == konst;
            } else {
                ok_s &= k[1].pix[q] == 0;
            }
        }
        /* each 4x4 tile of the texture is a tile of x_B, >= 3/4 inside B */
        for (int ty = 0; ty < 7; ty++)
            for (int tx = 0; tx < 7; tx++) {
                int found = 0;
                for (int sy = 0; sy < 7 && !found; sy++)
                    for (int sx = 0; sx < 7 && !found; sx++) {
                        int same = 1, cov = 0;
                        for (int y = 0; y < 4; y++)
                            for (int x = 0; x < 4; x++) {
                                same &= k[2].pix[(ty * 4 + y) * 28 + tx * 4 + x] == xb.pix[(sy * 4 + y) * 28 + sx * 4 + x];
                                cov += mb[(sy * 4 + y) * 28 + sx * 4 + x];
                            }
                        found = same && cov >= 12;
                    }
                ok_t &= found;
            }
        CHECK_MSG(ok_c, "item %zu: conflict != texture inside the silhouette, 0 outside", i);
        CHECK_MSG(ok_s, "item %zu: shape-only not constant inside the silhouette", i);
        CHECK_MSG(ok_t, "item %zu: a texture tile is not an inside tile of the texture image", i);
        for (int q = 0; q < 3; q++) ss_image_free(&k[q]);
        ss_image_free(&xa), ss_image_free(&xb);
    }
    int all3 = 1;
    for (int a = 0; a < 10; a++)
        for (int b = 0; b < 10; b++) all3 &= a == b ? pairs[a][b] == 0 : pairs[a][b] == 3;
    CHECK(all3);
    /* deterministic; another seed draws other images */
    ss_cue_cfg c2 = cfg;
    c2.seed = 1;
    ss_cueset *o = ss_cueset_new(d, &cfg, &e), *s = ss_cueset_new(d, &c2, &e);
    int differs = 0;
    for (size_t i = 0; i < 30; i++) {
        ss_image a, b, x;
        size_t i1, i2;
        ss_cueset_get(c, i, SS_CUE_CONFLICT, &a, NULL, NULL, &i1, NULL, &e);
        ss_cueset_get(o, i, SS_CUE_CONFLICT, &b, NULL, NULL, NULL, NULL, &e);
        ss_cueset_get(s, i, SS_CUE_CONFLICT, &x, NULL, NULL, &i2, NULL, &e);
        CHECK(!memcmp(a.pix, b.pix, 784));
        differs += i1 != i2 || memcmp(a.pix, x.pix, 784);
        ss_image_free(&a), ss_image_free(&b), ss_image_free(&x);
    }
    CHECK(differs > 20);
    ss_image junk;
    CHECK(ss_cueset_get(c, ss_cueset_len(c), 0, &junk, NULL, NULL, NULL, NULL, &e) == -1);
    cfg.patch = 40;
    ss_cueset *big = ss_cueset_new(d, &cfg, &e);
    CHECK(big && ss_cueset_get(big, 0, SS_CUE_TEXTURE, &junk, NULL, NULL, NULL, NULL, &e) == -1);
    ss_cueset_free(big), ss_cueset_free(o), ss_cueset_free(s), ss_cueset_free(c);
    ss_dataset_close(d);
    return check_summary("test_cueconflict");
}
