/* test_kdrun.c — distillation terms opened from their description
 * (kdrun.h): a cache and an online teacher (which also gives logits KD and
 * attention transfer, loaded once) open, feed the student's batches and
 * train; the identity fields name the teachers and selections; a batch that
 * is not the cache's and a cache that ends early are refused naming the
 * file; the description's own faults (student head, source syntax, a
 * selection or layer set the model lacks, two caches on stdin) return
 * SS_KD_EUSAGE; faults of the files (missing, another run, too few epochs,
 * other token counts, other normalisation, other classes) return -1 with
 * the message naming the file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "attncache.h"
#include "dataset.h"
#include "kdrun.h"
#include "rng.h"
#include "safetensors.h"
#include "train.h"
#include "vit.h"

enum { B = 4, STEPS = 2, EPOCHS = 2, NTOK = 5 };

static const float MEAN[3] = {0.5f, 0.5f, 0.5f}, STD[3] = {0.25f, 0.25f, 0.25f};

static ss_vit_cfg tiny(int dim, int heads, int patch, int classes)
{
    ss_vit_cfg c = {0};
    c.img_size = 8; c.patch = patch; c.in_chans = 1; c.embed_dim = dim; c.depth = 2; c.num_heads = heads;
    c.num_classes = classes;
    ss_vit_cfg_defaults(&c);
    return c;
}

/* A teacher checkpoint; norm: 0 none, 1 the student's, 2 another. */
static void save_teacher(const char *path, ss_vit_cfg c, int norm)
{
    ss_err e;
    ss_vit m;
    CHECK(ss_vit_new(&m, &c, &e) == 0);
    ss_vit_init_weights(&m, 9);
    ss_record r;
    ss_record_init(&r);
    float other[3] = {0.3f, 0.3f, 0.3f};
    CHECK(ss_vit_save(&m, &r, "", m.params, &e) == 0 && ss_vit_cfg_to_meta(&c, &r, &e) == 0);
    if (norm) CHECK(ss_norm_to_meta(&r, 1, norm == 1 ? MEAN : other, STD, &e) == 0);
    CHECK_MSG(ss_st_save(path, &r, &e) == 0, "%s", e.msg);
    ss_record_free(&r);
    ss_vit_free(&m);
}

static void views_ident(ss_ident *id, int seed)
{
    ss_err e;
    ss_ident_init(id);
    ss_ident_add(id, &e, "seed", "%d", seed);
    ss_ident_add(id, &e, "batch", "%d", B);
}

static uint32_t index_of(uint32_t ep, uint32_t st, int b) { return ep * 100 + st * 10 + (uint32_t)b; }

/* A cache of one layer (block 1, head 0) of N-token maps for epochs 0..1. */
static void save_cache(const char *path, int N)
{
    ss_err e;
    ss_ident id;
    views_ident(&id, 7);
    ss_ident_add(&id, &e, "steps", "%d", STEPS);
    ss_ident_add(&id, &e, "heads", "%s", "1:0");
    ss_ident_add(&id, &e, "model_md5", "%s", "0123abcd");
    ss_attncache_w *w = ss_attncache_w_open(path, "test", &id, "f32", 1, N, 0, EPOCHS, 0, &e);
    CHECK_MSG(w != NULL, "%s", e.msg);
    float *maps = malloc(sizeof(float) * B * N * N);
    for (int i = 0; i < B * N * N; i++) maps[i] = 1.0f / (float)N + (float)((i % N) - N / 2) * 0.01f;
    uint32_t index[B];
    for (uint32_t ep = 0; ep < EPOCHS; ep++)
        for (uint32_t st = 0; st < STEPS; st++) {
            for (int b = 0; b < B; b++) index[b] = index_of(ep, st, b);
            CHECK(ss_attncache_w_put(w, ep, st, B, index, maps, &e) == 0);
        }
    CHECK(ss_attncache_w_close(w, NULL, &e) == 0);
    free(maps);
    ss_ident_free(&id);
}

typedef struct fixture {
    ss_vit s;
    ss_trainer *t;
} fixture;

static void fx_new(fixture *f)
{
    ss_err e;
    ss_vit_cfg c = tiny(12, 3, 4, 5);
    CHECK(ss_vit_new(&f->s, &c, &e) == 0);
    ss_vit_init_weights(&f->s, 3);
    ss_trainer_cfg tc = {.workers = 2, .batch = B, .hin = 8, .win = 8, .label_smoothing = 0.1f, .seed = 1};
    ss_adamw_defaults(&tc.opt);
    f->t = ss_trainer_new(&f->s, &tc, &e);
    CHECK(f->t != NULL);
}

static void fx_free(fixture *f)
{
    ss_trainer_free(f->t);
    ss_vit_free(&f->s);
}

/* Opens d on a fresh student and expects return rc and a message holding `msg`. */
static void expect_open(const ss_kd_desc *d, int seed, uint32_t e1, int rc, const char *msg)
{
    fixture f;
    fx_new(&f);
    ss_ident vid;
    views_ident(&vid, seed);
    ss_kdrun *k = (ss_kdrun *)1;
    ss_err e = {{0}};
    int got = ss_kdrun_open(&k, d, f.t, &f.s, MEAN, STD, &vid, 0, e1, &e);
    CHECK_MSG(got == rc && k == NULL && strstr(e.msg, msg), "rc %d, expected %d; '%s', expected '%s'", got, rc,
              e.msg, msg);
    ss_ident_free(&vid);
    fx_free(&f);
}

static ss_kd_desc one_source(const char *source)
{
    ss_kd_desc d = {.dir = SS_KL_TS, .nattn = 1};
    d.attn[0] = (ss_kd_attn_desc){.name = "sl", .label = "--attn-kd sl", .source = source, .weight = 1};
    return d;
}

int main(void)
{
    char dir[] = "/tmp/test_kdrun.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cache[128], cache7[128], tch[128], tpatch[128], tnorm[128], tcls[128], online[160], src[200];
    snprintf(cache, sizeof cache, "%s/c.sts", dir);
    snprintf(cache7, sizeof cache7, "%s/c7.sts", dir);
    snprintf(tch, sizeof tch, "%s/t.st", dir);
    snprintf(tpatch, sizeof tpatch, "%s/tpatch.st", dir);
    snprintf(tnorm, sizeof tnorm, "%s/tnorm.st", dir);
    snprintf(tcls, sizeof tcls, "%s/tcls.st", dir);
    save_cache(cache, NTOK);
    save_cache(cache7, 7);
    save_teacher(tch, tiny(16, 4, 4, 5), 1);
    save_teacher(tpatch, tiny(16, 4, 2, 5), 0);
    save_teacher(tnorm, tiny(16, 4, 4, 5), 2);
    save_teacher(tcls, tiny(16, 4, 4, 6), 0);
    snprintf(online, sizeof online, "online:%s@1:2,0:avg", tch);

    /* a cache and an online teacher (also the logits and AT teacher) */
    ss_err e;
    fixture f;
    fx_new(&f);
    ss_kd_desc d = {.dir = SS_KL_TS, .nattn = 2, .logit_teacher = tch, .logit_tau = 2, .logit_weight = 0.5,
                    .at_teacher = tch, .at_weight = 10};
    d.attn[0] = (ss_kd_attn_desc){.name = "sl", .source = cache, .student_head = 0, .weight = 1};
    d.attn[1] = (ss_kd_attn_desc){.name = "ssl", .source = online, .student_head = 1, .weight = 0.5};
    CHECK(ss_kd_desc_any(&d) && !ss_kd_desc_any(&(ss_kd_desc){0}));
    ss_ident vid;
    views_ident(&vid, 7);
    ss_kdrun *k = NULL;
    CHECK_MSG(ss_kdrun_open(&k, &d, f.t, &f.s, MEAN, STD, &vid, 0, 1, &e) == 0, "%s", e.msg);
    CHECK(ss_runner_workers(ss_trainer_runner(f.t)) == 2 && ss_trainer_batch(f.t) == B);
    if (k) {
        const ss_ident *id = ss_kdrun_ident(k);
        const char *md5 = ss_ident_get(id, "kd.ssl.teacher_md5");
        CHECK(id->n == 6);
        CHECK(!strcmp(ss_ident_get(id, "kd.sl.teacher_md5"), "0123abcd"));
        CHECK(!strcmp(ss_ident_get(id, "kd.sl.heads"), "1:0"));
        CHECK_MSG(!strcmp(ss_ident_get(id, "kd.ssl.heads"), "0:avg,1:2"), "%s", ss_ident_get(id, "kd.ssl.heads"));
        CHECK(md5 && strlen(md5) == 32 && !strcmp(ss_ident_get(id, "logit_kd.teacher_md5"), md5) &&
              !strcmp(ss_ident_get(id, "at_kd.teacher_md5"), md5));
        const ss_distill *dd = ss_kdrun_distill(k);
        CHECK(ss_distill_nstats(dd) == 4 && !strcmp(ss_distill_stat_name(dd, 0), "kd_sl") &&
              !strcmp(ss_distill_stat_name(dd, 3), "kd_at"));

        /* two steps of epoch 0, each fed its cache batch; every term is on */
        float x[B * 64];
        int32_t y[B];
        uint32_t index[B];
        ss_rng r = ss_rng_key(3, 1, 2, 3, 4);
        for (int i = 0; i < B * 64; i++) x[i] = (float)ss_rng_normal(&r);
        for (int b = 0; b < B; b++) y[b] = (int32_t)ss_rng_below(&r, 5);
        ss_batch b = {.n = B, .x = x, .y = y, .index = index, .epoch = 0};
        for (uint32_t st = 0; st < STEPS; st++) {
            b.step = st;
            for (int i = 0; i < B; i++) index[i] = index_of(0, st, i);
            CHECK_MSG(ss_kdrun_feed(k, &b, &e) == 0, "%s", e.msg);
            ss_step_stats ss;
            CHECK_MSG(ss_trainer_step(f.t, x, y, B, 1e-3, &ss, &e) == 0, "%s", e.msg);
            int on = 1;
            for (int i = 0; i < 4; i++) on &= ss.user[i] > 0 && isfinite(ss.user[i]);
            CHECK(on);
        }
        /* the cache was opened for epoch 0 only */
        b.epoch = 1;
        b.step = 0;
        for (int i = 0; i < B; i++) index[i] = index_of(1, 0, i);
        CHECK(ss_kdrun_feed(k, &b, &e) == -1 && strstr(e.msg, "c.sts: ends before epoch 1 step 0"));
        /* the early stop: no term, the feed does nothing */
        ss_kdrun_stop(k);
        CHECK(ss_kdrun_feed(k, &b, &e) == 0);
        ss_step_stats ss;
        CHECK(ss_trainer_step(f.t, x, y, B, 1e-3, &ss, &e) == 0 && ss.user[0] == 0 && ss.user[3] == 0);
    }
    ss_kdrun_close(k);
    fx_free(&f);

    /* a batch that is not the cache's */
    fx_new(&f);
    d = one_source(cache);
    CHECK(ss_kdrun_open(&k, &d, f.t, &f.s, MEAN, STD, &vid, 0, 2, &e) == 0);
    if (k) {
        uint32_t index[B] = {0, 1, 2, 9};
        ss_batch b = {.n = B, .index = index};
        CHECK(ss_kdrun_feed(k, &b, &e) == -1 && strstr(e.msg, cache) && strstr(e.msg, "record 1"));
    }
    ss_kdrun_close(k);
    fx_free(&f);
    ss_ident_free(&vid);

    /* the description's faults: usage */
    d = one_source(cache);
    d.attn[0].student_head = 3;
    expect_open(&d, 7, 1, SS_KD_EUSAGE, "--attn-kd sl: student head 3, the student has heads 0..2");
    snprintf(src, sizeof src, "online:%s", tch);
    d = one_source(src);
    expect_open(&d, 7, 1, SS_KD_EUSAGE, "--attn-kd sl: expected online:CKPT@SELECTION, got 'online:");
    snprintf(src, sizeof src, "online:%s@1:4", tch);
    d = one_source(src);
    expect_open(&d, 7, 1, SS_KD_EUSAGE, "--attn-kd sl: head selection '1:4'");
    d = (ss_kd_desc){.at_teacher = tch, .at_layers = "2", .at_weight = 1};
    expect_open(&d, 7, 1, SS_KD_EUSAGE, "attention transfer layers: ");
    d = one_source("-");
    d.nattn = 2;
    d.attn[1] = d.attn[0];
    strcpy(d.attn[1].name, "ssl");
    expect_open(&d, 7, 1, SS_KD_EUSAGE, "only one cache can come from standard input");

    /* the files' faults: data */
    snprintf(src, sizeof src, "%s/none.sts", dir);
    d = one_source(src);
    expect_open(&d, 7, 1, -1, "--attn-kd sl: ");
    d = one_source(cache);
    expect_open(&d, 8, 1, -1, "--attn-kd sl: ");
    expect_open(&d, 8, 1, -1, "c.sts: field seed is 7, expected 8");
    expect_open(&d, 7, 3, -1, "expected to cover 0-2");
    d = one_source(cache7);
    expect_open(&d, 7, 1, -1, "c7.sts: maps of 7 tokens, the student has 5");
    snprintf(src, sizeof src, "online:%s@avg", tpatch);
    d = one_source(src);
    expect_open(&d, 7, 1, -1, "tpatch.st: takes 8x8 inputs in 2-pixel patches (1 channels); the student's 8 px");
    snprintf(src, sizeof src, "online:%s@avg", tnorm);
    d = one_source(src);
    expect_open(&d, 7, 1, -1, "tnorm.st: normalised with mean 0.3 std 0.25, the student's views with 0.5 0.25");
    d = (ss_kd_desc){.logit_teacher = tcls, .logit_tau = 1, .logit_weight = 1};
    expect_open(&d, 7, 1, -1, "tcls.st: 6 classes, the student 5: no logits KD");
    snprintf(src, sizeof src, "online:%s/none.st@avg", dir);
    d = one_source(src);
    expect_open(&d, 7, 1, -1, "none.st");

    const char *files[] = {cache, cache7, tch, tpatch, tnorm, tcls};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) unlink(files[i]);
    rmdir(dir);
    return check_summary("test_kdrun");
}
