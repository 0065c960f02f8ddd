/* test_headrank.c — head ranking against independent computations.
 *
 * Selections and layer sets parse, print and refuse as documented. On a
 * small random ViT (6 blocks, 6 heads, layer set {3,4,5}: 216 combinations):
 * every row's hit count equals a plain forward with those heads switched off
 * (m->head_off) counted by ss_topk; the shared-prefix walk gives per-image
 * hits identical to the naive loop and to another worker count; the cost is
 * the documented 1 + 5 + 43 forward-equivalents; drop and se equal the
 * paired formulas computed here from the per-image hits; ranks follow the
 * hit counts; a NaN parameter and an out-of-range label fail. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "headrank.h"
#include "metrics.h"
#include "rng.h"
#include "runner.h"
#include "vit.h"

static void test_parse(void)
{
    ss_err e;
    ss_headsel s;
    char buf[256];
    CHECK(ss_headsel_parse("5:5,3:2,4:0", 6, 6, &s, &e) == 0);
    ss_headsel_format(&s, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "3:2,4:0,5:5"), "%s", buf);
    CHECK(ss_headsel_parse("avg", 6, 6, &s, &e) == 0);
    ss_headsel_format(&s, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "3:avg,4:avg,5:avg"), "%s", buf);
    CHECK(ss_headsel_parse("4:avg,1:3", 6, 6, &s, &e) == 0 && s.head[1] == SS_HEAD_AVG && s.layer[0] == 1);
    const char *bad[] = {"3:2,3:1", "6:0", "3:6", "3", "3:", "", "3:2,", "x", "3:2;4:1", "-1:0", "3:avgx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(ss_headsel_parse(bad[i], 6, 6, &s, &e) == -1, "'%s' accepted", bad[i]);
    CHECK(ss_headsel_parse("3:2,3:1", 6, 6, &s, &e) == -1 && strstr(e.msg, "block 3 twice"));

    int l[SS_HEADSEL_MAX], n;
    CHECK(ss_layers_parse("last", 6, l, &n, &e) == 0 && n == 3 && l[0] == 3 && l[2] == 5);
    CHECK(ss_layers_parse("last:2", 12, l, &n, &e) == 0 && n == 2 && l[0] == 10 && l[1] == 11);
    CHECK(ss_layers_parse("last:9", 4, l, &n, &e) == 0 && n == 4 && l[0] == 0);
    CHECK(ss_layers_parse("5,1,3", 6, l, &n, &e) == 0 && n == 3 && l[0] == 1 && l[1] == 3 && l[2] == 5);
    const char *badl[] = {"6", "3,3", "", "3,", "a", "last:0", "lastx"};
    for (size_t i = 0; i < sizeof badl / sizeof badl[0]; i++)
        CHECK_MSG(ss_layers_parse(badl[i], 6, l, &n, &e) == -1, "'%s' accepted", badl[i]);

    int L3[3] = {3, 4, 5};
    ss_headsel r1, r2;
    ss_headsel_random(L3, 3, 6, 7, &r1);
    ss_headsel_random(L3, 3, 6, 7, &r2);
    CHECK(!memcmp(&r1, &r2, sizeof r1));
    int differs = 0;
    for (uint64_t seed = 0; seed < 20; seed++) {
        ss_headsel_random(L3, 3, 6, seed, &r2);
        for (int i = 0; i < 3; i++) {
            CHECK(r2.head[i] >= 0 && r2.head[i] < 6 && r2.layer[i] == L3[i]);
            differs |= r2.head[i] != r1.head[i];
        }
    }
    CHECK(differs);
    ss_headsel_avg(L3, 3, &r1);
    ss_headsel_format(&r1, buf, sizeof buf);
    CHECK(!strcmp(buf, "3:avg,4:avg,5:avg"));
}

enum { NIMG = 30, BATCH = 16 };

typedef struct fixture {
    ss_vit m;
    float *x;
    int32_t y[NIMG];
} fixture;

static void make_fixture(fixture *f)
{
    ss_err e;
    ss_vit_cfg c = {.img_size = 28, .patch = 7, .in_chans = 1, .embed_dim = 24, .depth = 6, .num_heads = 6,
                    .mlp_ratio = 2, .num_classes = 10};
    ss_vit_cfg_defaults(&c);
    CHECK(ss_vit_new(&f->m, &c, &e) == 0);
    ss_vit_init_weights(&f->m, 11);
    /* larger weights than the init, so that zeroing heads moves predictions */
    for (size_t i = 0; i < f->m.nparams; i++) f->m.params[i] *= 8.0f;
    f->x = malloc(sizeof(float) * NIMG * 28 * 28);
    ss_rng r = ss_rng_key(5, 99, 0, 0, 0);
    for (int i = 0; i < NIMG * 28 * 28; i++) f->x[i] = (float)ss_rng_normal(&r);
    /* labels: the base model's prediction for most images (so accuracy is
     * high and zeroing can lower it), random for the rest */
    ss_vit_acts a;
    CHECK(ss_vit_acts_new(&a, &f->m, NIMG, 28, 28, 0, &e) == 0);
    ss_vit_forward(&f->m, f->m.params, &a, f->x, NIMG, NULL);
    for (int i = 0; i < NIMG; i++)
        f->y[i] = i % 4 == 3 ? (int32_t)ss_rng_below(&r, 10) : ss_argmax(ss_vit_logits(&a) + i * 10, 10);
    ss_vit_acts_free(&a);
}

static ss_headrank *rank(fixture *f, int workers, int naive, ss_runner **run)
{
    ss_err e;
    *run = ss_runner_new(workers, &e);
    int slot = ss_runner_slot(*run, &f->m, BATCH, 28, 28, -1, &e);
    ss_headrank_cfg c = {.nlayers = 3, .layers = {3, 4, 5}, .singles = 1, .combos = 1, .naive = naive};
    ss_headrank *h = ss_headrank_new(*run, slot, &c, &e);
    CHECK_MSG(h != NULL, "%s", e.msg);
    for (int b0 = 0; b0 < NIMG; b0 += BATCH) {
        int B = NIMG - b0 < BATCH ? NIMG - b0 : BATCH;
        CHECK_MSG(ss_headrank_batch(h, f->x + (size_t)b0 * 28 * 28, f->y + b0, B, &e) == 0, "%s", e.msg);
    }
    return h;
}

static void test_rank(void)
{
    fixture f;
    make_fixture(&f);
    ss_err e;
    ss_runner *r1, *r2, *r3;
    ss_headrank *h = rank(&f, 2, 0, &r1), *hn = rank(&f, 1, 1, &r2), *h1 = rank(&f, 1, 0, &r3);
    int nr = ss_headrank_nevals(h);
    CHECK(nr == 1 + 18 + 216);
    const ss_headrank_row *rows = ss_headrank_rows(h, &e);
    CHECK(rows != NULL);

    /* identical per-image hits: shared prefixes vs naive vs one worker */
    long same = 0;
    for (int row = 0; row < nr; row++)
        for (long i = 0; i < NIMG; i++)
            same += ss_headrank_hit(h, row, i) == ss_headrank_hit(hn, row, i) &&
                    ss_headrank_hit(h, row, i) == ss_headrank_hit(h1, row, i);
    CHECK_MSG(same == (long)nr * NIMG, "%ld of %ld per-image hits agree", same, (long)nr * NIMG);

    /* every row against an independent forward with m->head_off */
    ss_vit_acts a;
    CHECK(ss_vit_acts_new(&a, &f.m, NIMG, 28, 28, 0, &e) == 0);
    int agree = 0, moved = 0;
    for (int row = 0; row < nr; row++) {
        memset(f.m.head_off, 0, 36);
        for (int i = 0; i < rows[row].nz; i++) f.m.head_off[rows[row].layer[i] * 6 + rows[row].head[i]] = 1;
        ss_vit_forward(&f.m, f.m.params, &a, f.x, NIMG, NULL);
        ss_topk t;
        ss_topk_init(&t);
        ss_topk_add(&t, ss_vit_logits(&a), f.y, NIMG, 10);
        agree += t.top1 == rows[row].correct && t.n == NIMG;
        moved += rows[row].correct != rows[0].correct;
    }
    memset(f.m.head_off, 0, 36);
    ss_vit_acts_free(&a);
    CHECK_MSG(agree == nr, "%d of %d rows agree with a plain forward", agree, nr);
    CHECK_MSG(moved > 20, "only %d rows differ from the base: the fixture does not exercise the ranking", moved);

    /* cost: base 1, singles (6*(1+2) + 6*2) / 6 = 5, combos (6 + 36 + 216) / 6 = 43 */
    double cc, cs, ct = ss_headrank_cost(h, &cc, &cs);
    CHECK_CLOSE(cc, 43.0, 1e-12, 0);
    CHECK_CLOSE(cs, 5.0, 1e-12, 0);
    CHECK_CLOSE(ct, 49.0, 1e-12, 0);
    ss_headrank_cost(hn, &cc, &cs);
    CHECK_CLOSE(cc, 216.0, 1e-12, 0);

    /* drop and se from the per-image differences; ranks follow hit counts */
    int ok = 0, rank_ok = 1;
    for (int row = 1; row < nr; row++) {
        double s = 0, s2 = 0;
        for (long i = 0; i < NIMG; i++) {
            double d = ss_headrank_hit(h, 0, i) - ss_headrank_hit(h, row, i);
            s += d;
        }
        double mean = s / NIMG;
        for (long i = 0; i < NIMG; i++) {
            double d = ss_headrank_hit(h, 0, i) - ss_headrank_hit(h, row, i) - mean;
            s2 += d * d;
        }
        double se = sqrt(s2 / (NIMG - 1) / NIMG);
        ok += fabs(rows[row].drop - mean) < 1e-12 && fabs(rows[row].se - se) < 1e-12;
        if (rows[row].next >= 0) {
            const ss_headrank_row *nx = &rows[rows[row].next];
            rank_ok &= nx->rank == rows[row].rank + 1 && nx->kind == rows[row].kind &&
                       (nx->correct > rows[row].correct || (nx->correct == rows[row].correct && rows[row].next > row));
            double diff, sed;
            ss_headrank_compare(h, rows[row].next, row, &diff, &sed, NULL, NULL);
            rank_ok &= fabs(rows[row].gap - (nx->acc - rows[row].acc)) < 1e-12 && diff == rows[row].gap &&
                       sed == rows[row].se_gap;
        }
    }
    CHECK_MSG(ok == nr - 1, "%d of %d rows have the paired drop/se", ok, nr - 1);
    CHECK(rank_ok);
    ss_headsel sel;
    CHECK(ss_headrank_select(h, &sel, &e) == 0 && sel.n == 3);
    long best = rows[0].n + 1;
    for (int row = 0; row < nr; row++)
        if (rows[row].kind == SS_HR_COMBO && rows[row].correct < best) best = rows[row].correct;
    int found = 0;
    for (int row = 0; row < nr; row++)
        if (rows[row].kind == SS_HR_COMBO && rows[row].rank == 1)
            found = rows[row].correct == best && !memcmp(rows[row].head, sel.head, sizeof(int) * 3);
    CHECK(found);

    ss_headrank_free(h), ss_headrank_free(hn), ss_headrank_free(h1);
    ss_runner_free(r1), ss_runner_free(r2), ss_runner_free(r3);

    /* bad inputs: a label outside the classes, a NaN in the last block */
    ss_runner *run = ss_runner_new(2, &e);
    int slot = ss_runner_slot(run, &f.m, BATCH, 28, 28, -1, &e);
    ss_headrank_cfg c = {.nlayers = 2, .layers = {4, 5}, .singles = 1, .combos = 1};
    ss_headrank *hb = ss_headrank_new(run, slot, &c, &e);
    int32_t ybad[4] = {1, 2, 10, 3};
    CHECK(ss_headrank_batch(hb, f.x, ybad, 4, &e) == -1 && strstr(e.msg, "label 10"));
    f.m.w.blk[5].fc2_b[0] = NAN;
    CHECK(ss_headrank_batch(hb, f.x, f.y, 4, &e) == -1);
    CHECK_MSG(strstr(e.msg, "non-finite logits for image 0"), "%s", e.msg);
    CHECK(ss_headrank_rows(hb, &e) == NULL);   /* nothing counted */
    ss_headrank_free(hb);
    ss_headrank_cfg none = {.nlayers = 1, .layers = {3}};
    CHECK(ss_headrank_new(run, slot, &none, &e) == NULL);
    ss_headrank_cfg desc = {.nlayers = 2, .layers = {4, 3}, .singles = 1};
    CHECK(ss_headrank_new(run, slot, &desc, &e) == NULL);
    ss_runner_free(run);
    ss_vit_free(&f.m);
    free(f.x);
}

int main(void)
{
    test_parse();
    test_rank();
    return check_summary("test_headrank");
}
