/* attncache_read.c — what reading a teacher-attention cache adds to a
 * student training step (the goal: <= 5 %).
 *
 * Times ROUNDS x STEPS training steps of the student preset (batch = the
 * cache's, random inputs, the trainer of train.h on THREADS workers),
 * alternating rounds without and with ss_attncache_next (read + decode on the
 * reader's thread) before each step, and reports the median step time of
 * each and their ratio; then the reader alone (batches/s). The distillation
 * loss itself is not counted: it is the student's work, not the cache's.
 *
 * Build and run (from the top of the tree, after make):
 *   cc -O2 -Ilib bench/attncache_read.c build/libssta.a \
 *      $(pkg-config --libs openblas libzstd libjpeg libarchive spng zlib) -lm -pthread -o build/attncache_read
 *   build/attncache_read CACHE [STEPS=10] [ROUNDS=4] [THREADS=2]
 * The cache must hold at least ROUNDS*STEPS/2 batches (it is reopened as
 * needed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attncache.h"
#include "rng.h"
#include "train.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: attncache_read CACHE [STEPS] [ROUNDS] [THREADS]\n");
        return 2;
    }
    const char *path = argv[1];
    int steps = argc > 2 ? atoi(argv[2]) : 10, rounds = argc > 3 ? atoi(argv[3]) : 4;
    int threads = argc > 4 ? atoi(argv[4]) : 2;
    ss_err e;
    ss_attncache *c = ss_attncache_open(path, NULL, 0, 1, &e);
    if (!c) {
        fprintf(stderr, "attncache_read: %s\n", e.msg);
        return 1;
    }
    ss_attn_batch ab;
    if (ss_attncache_next(c, &ab, &e) != 1) {
        fprintf(stderr, "attncache_read: %s: no batch\n", path);
        return 1;
    }
    int B = ab.n;
    ss_attncache_close(c);

    ss_vit_cfg cfg;
    if (ss_vit_preset("fmnist-student", &cfg, &e)) return 1;
    ss_vit m;
    if (ss_vit_new(&m, &cfg, &e)) return 1;
    ss_vit_init_weights(&m, 1);
    ss_trainer_cfg tc = {0};
    tc.workers = threads, tc.batch = B, tc.hin = tc.win = cfg.img_size;
    tc.label_smoothing = 0.1f, tc.seed = 1;
    ss_adamw_defaults(&tc.opt);
    ss_trainer *t = ss_trainer_new(&m, &tc, &e);
    if (!t) {
        fprintf(stderr, "attncache_read: %s\n", e.msg);
        return 1;
    }
    size_t in1 = (size_t)cfg.in_chans * cfg.img_size * cfg.img_size;
    float *x = malloc(sizeof(float) * in1 * B);
    int32_t *y = malloc(sizeof(int32_t) * B);
    ss_rng r = ss_rng_key(1, 99, 0, 0, 0);
    for (size_t i = 0; i < in1 * B; i++) x[i] = (float)ss_rng_normal(&r);
    for (int b = 0; b < B; b++) y[b] = (int32_t)ss_rng_below(&r, 10);
    ss_step_stats st;
    for (int s = 0; s < 2; s++) ss_trainer_step(t, x, y, B, 1e-4, &st, &e);   /* warm up */

    double *plain = malloc(sizeof(double) * rounds * steps), *with = malloc(sizeof(double) * rounds * steps);
    int np = 0, nw = 0;
    double sink = 0;
    c = ss_attncache_open(path, NULL, 0, 1, &e);
    for (int round = 0; round < 2 * rounds; round++) {
        int reading = round % 2;
        for (int s = 0; s < steps; s++) {
            double t0 = now();
            if (reading) {
                int rc = ss_attncache_next(c, &ab, &e);
                if (rc == 0) {   /* reopen at the end of the cache's first epoch */
                    ss_attncache_close(c);
                    c = ss_attncache_open(path, NULL, 0, 1, &e);
                    rc = c ? ss_attncache_next(c, &ab, &e) : -1;
                }
                if (rc != 1) {
                    fprintf(stderr, "attncache_read: %s\n", e.msg);
                    return 1;
                }
                sink += ab.maps[0];
            }
            if (ss_trainer_step(t, x, y, B, 1e-4, &st, &e)) return 1;
            double dt = now() - t0;
            if (reading) with[nw++] = dt;
            else plain[np++] = dt;
        }
    }
    ss_attncache_close(c);
    double mp = median(plain, np), mw = median(with, nw);

    /* the reader alone */
    c = ss_attncache_open(path, NULL, 0, 1, &e);
    double t0 = now();
    long nb = 0;
    while (ss_attncache_next(c, &ab, &e) == 1) {
        sink += ab.maps[1];
        nb++;
    }
    double tr = now() - t0;
    ss_attncache_close(c);
    printf("batch\tthreads\tstep_ms\tstep_read_ms\toverhead\treader_batches_s\treader_views_s\n");
    printf("%d\t%d\t%.1f\t%.1f\t%.2f%%\t%.1f\t%.0f\n", B, threads, 1e3 * mp, 1e3 * mw, 100 * (mw / mp - 1), nb / tr,
           nb * B / tr);
    if (sink == 12345.678) puts("");
    ss_trainer_free(t);
    ss_vit_free(&m);
    free(x), free(y), free(plain), free(with);
    return 0;
}
