/* attncode_bench.c — measures the attention-cache encodings (attncode.h) on
 * real attention maps: bytes per view after the stream writer's zstd, the
 * error they introduce, and encode/decode speed. docs/kd.md has the
 * results and how they were made.
 *
 * Views: the maps come either from a `vit-fwd --attn L1,L2,L3` stream
 * (--maps; every head of every image) or are computed here from a
 * checkpoint on augmented views (--model, --data, --aug PRESET, --epoch).
 * A *view* is what the cache stores per training sample and teacher: one
 * head's (N,N) map in each of the three blocks, i.e. 3N rows of N. Every
 * head h of an image gives one view (the chosen head is not known here).
 *
 * For each encoding spec and zstd level it reports (TSV on stdout):
 *   bytes_raw    blob bytes per view (header included)
 *   bytes_zst    file bytes per view of a stream written with ss_swriter at
 *                that level: a header record, then records of --batch views
 *                (tensors "index" I64 [n] and "attn" U8 [n, blob]);
 *   kl_mean, kl_p99, kl_max   KL(exact || decoded) per row (nats);
 *   loss_{ts,st}_{u,s}  relative error of the head-KD loss, mean over the
 *                data, when the decoded T replaces the exact one: direction
 *                KL(T||S) (ts, the default) or KL(S||T) (st), with S uniform
 *                (u: the student at initialisation) or S = the maps of
 *                --student (s: another model on the same images, standing in
 *                for a trained student);
 *   grad_{ts,st}_{u,s}  the same for the gradient of that loss wrt the
 *                student's attention logits (what training uses):
 *                ||g(T^) - g(T)||_2 / ||g(T)||_2 over all the data;
 *   enc_MBs, dec_MBs  single-thread speed in MB of float32 maps per CPU second,
 *                streaming over all views (buffers far larger than the caches);
 *   enc_us, dec_us    CPU microseconds per view, one view encoded/decoded 2000
 *                times in a row (in cache: what a training step sees);
 *   write_s      CPU seconds the writer spent (zstd at that level).
 *
 * Usage:
 *   attncode_bench --maps T.sts.zst [--student S.sts.zst] [--levels 3,9,19]
 *                  [--batch 128] SPEC...
 *   attncode_bench --model CKPT --data SPEC --aug PRESET [--epoch E] [--n N] ... SPEC...
 * Build: make build/bench/attncode_bench
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attncode.h"
#include "data.h"
#include "image.h"
#include "kd.h"
#include "stream.h"
#include "vit.h"

/* CPU time of this (single-threaded) program: the machine is shared, and
 * wall time would measure the other jobs. */
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void die(const char *what, const ss_err *e)
{
    fprintf(stderr, "attncode_bench: %s: %s\n", what, e ? e->msg : "");
    exit(1);
}

typedef struct {
    float *v;     /* nviews x (3N x N) */
    int nviews, cap, N;
} views;

static void views_add(views *s, const float *maps[3], int N)
{
    size_t per = (size_t)3 * N * N;
    if (s->N && s->N != N) die("token count changes between records", NULL);
    s->N = N;
    if (s->nviews == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->v = realloc(s->v, sizeof(float) * per * s->cap);
        if (!s->v) die("out of memory", NULL);
    }
    for (int k = 0; k < 3; k++) memcpy(s->v + per * s->nviews + (size_t)k * N * N, maps[k], sizeof(float) * N * N);
    s->nviews++;
}

/* Every head of every image of a vit-fwd attention stream with three blocks. */
static void read_maps(const char *path, views *s)
{
    ss_err e;
    ss_sreader *r = ss_sreader_open(path, &e);
    if (!r) die(path, &e);
    ss_record rec;
    ss_record_init(&rec);
    int rc;
    while ((rc = ss_sreader_next(r, &rec, &e)) == 1) {
        ss_tensor *t[3];
        int k = 0;
        for (int i = 0; i < rec.ntensors && k < 3; i++)
            if (!strncmp(rec.t[i].name, "attn.", 5)) t[k++] = &rec.t[i];
        if (k == 0) continue;   /* the header record */
        if (k != 3) die("expected three attn.* tensors per record", NULL);
        for (int j = 0; j < 3; j++)
            if (t[j]->dtype != SS_F32 || t[j]->ndim != 4 || t[j]->shape[0] != t[0]->shape[0] ||
                t[j]->shape[1] != t[0]->shape[1] || t[j]->shape[2] != t[0]->shape[2])
                die("attn tensors must be F32 [n,h,N,N] alike", NULL);
        int n = (int)t[0]->shape[0], H = (int)t[0]->shape[1], N = (int)t[0]->shape[2];
        for (int b = 0; b < n; b++)
            for (int h = 0; h < H; h++) {
                const float *m[3];
                for (int j = 0; j < 3; j++) m[j] = (const float *)t[j]->data + ((size_t)b * H + h) * N * N;
                views_add(s, m, N);
            }
    }
    if (rc < 0) die(path, &e);
    ss_record_free(&rec);
    ss_sreader_close(r);
}

/* Attention of blocks depth-3..depth-1 on augmented training views. */
static void compute_maps(const char *ckpt, const char *spec, const char *aug, int epoch, int nimg, views *s)
{
    ss_err e;
    ss_record rec;
    ss_record_init(&rec);
    if (ss_st_load(ckpt, &rec, &e)) die(ckpt, &e);
    ss_vit_cfg c;
    if (ss_vit_preset("fmnist-teacher", &c, &e) || ss_vit_cfg_from_record(&rec, &c, &e)) die(ckpt, &e);
    ss_vit m;
    if (ss_vit_new(&m, &c, &e) || ss_vit_load(&m, &rec, "", m.params, 1, &e)) die(ckpt, &e);
    ss_dataset *d = ss_dataset_open(spec, &e);
    if (!d) die(spec, &e);
    float mean[3], std[3];
    ss_dataset_norm(d, mean, std);
    const char *ms = ss_record_meta(&rec, "ssta.mean"), *ss = ss_record_meta(&rec, "ssta.std");
    if (ms && ss && c.in_chans == 1) {
        mean[0] = (float)atof(ms);
        std[0] = (float)atof(ss);
    }
    ss_transform *t = ss_transform_new(aug, c.img_size, c.img_size, c.in_chans, mean, std, &e);
    if (!t) die(aug, &e);
    const int B = 32;
    ss_vit_acts a;
    if (ss_vit_acts_new(&a, &m, B, c.img_size, c.img_size, 0, &e)) die("acts", &e);
    size_t in = (size_t)c.in_chans * c.img_size * c.img_size;
    float *x = malloc(sizeof(float) * in * B);
    size_t n = ss_dataset_len(d);
    if (nimg > 0 && (size_t)nimg < n) n = (size_t)nimg;
    ss_image im;
    memset(&im, 0, sizeof im);
    const int H = c.num_heads;
    for (size_t i0 = 0; i0 < n; i0 += B) {
        int nb = (int)(n - i0 < (size_t)B ? n - i0 : (size_t)B);
        for (int b = 0; b < nb; b++) {
            int label;
            if (ss_dataset_get(d, i0 + b, &im, &label, &e) ||
                ss_transform_apply(t, &im, 0, (uint32_t)epoch, i0 + b, x + in * b, &e))
                die(spec, &e);
        }
        ss_vit_forward(&m, m.params, &a, x, nb, NULL);
        int NN = a.N;
        for (int b = 0; b < nb; b++)
            for (int h = 0; h < H; h++) {
                const float *mp[3];
                for (int j = 0; j < 3; j++)   /* att (B,NH,N,N) */
                    mp[j] = a.att[c.depth - 3 + j] + ((size_t)b * H + h) * NN * NN;
                views_add(s, mp, NN);
            }
    }
    free(x);
    ss_image_free(&im);
    ss_vit_acts_free(&a);
    ss_transform_free(t);
    ss_dataset_close(d);
    ss_vit_free(&m);
    ss_record_free(&rec);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Loss and gradient of the head-KD term over every view: the loss is the
 * mean over views and their 3 maps of the mean over rows of the per-row KL;
 * g (views x 3N x N) receives the gradient wrt the student's attention
 * LOGITS, g = S*(dS - rowsum(dS*S)) with dS = d loss/d S (kd.h). S NULL:
 * uniform. */
static double kd_loss(float *g, const float *T, const float *S, int nviews, int N, ss_kl_dir dir)
{
    const size_t per = (size_t)3 * N * N, map = (size_t)N * N;
    float *U = malloc(sizeof(float) * per);
    for (size_t i = 0; i < per; i++) U[i] = 1.0f / N;
    memset(g, 0, sizeof(float) * per * nviews);
    double tot = 0;
    for (int v = 0; v < nviews; v++) {
        const float *Sv = S ? S + per * v : U;
        float *gv = g + per * v;
        tot += ss_kd_attn_kl(gv, Sv, map, T + per * v, map, 3, N, dir, 1.0f / 3);
        for (int r = 0; r < 3 * N; r++) {
            float *gr = gv + (size_t)r * N;
            const float *sr = Sv + (size_t)r * N;
            double d = 0;
            for (int j = 0; j < N; j++) d += (double)gr[j] * sr[j];
            for (int j = 0; j < N; j++) gr[j] = (float)(sr[j] * (gr[j] - d));
        }
    }
    free(U);
    return tot / nviews;
}

/* ||a - b|| / ||b|| */
static double rel_l2(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / den);
}

static int g_losses_said;

static void run(const views *s, const views *stu, const char *spec, const int *levels, int nlev, int batch)
{
    ss_err e;
    ss_ac_opts o;
    if (ss_ac_parse(spec, &o, &e)) die(spec, &e);
    const int N = s->N, rows = 3 * N;
    const size_t per = (size_t)rows * N, blob = ss_ac_size(&o, rows, N);
    uint8_t *enc = malloc(blob * s->nviews);
    float *dec = malloc(sizeof(float) * per * s->nviews);
    memset(enc, 0, blob * s->nviews);   /* page faults out of the timings */
    memset(dec, 0, sizeof(float) * per * s->nviews);
    double t0 = now();
    for (int v = 0; v < s->nviews; v++)
        if (ss_ac_encode(enc + blob * v, blob, s->v + per * v, rows, N, &o, &e)) die(spec, &e);
    double t1 = now();
    for (int v = 0; v < s->nviews; v++)
        if (ss_ac_decode(dec + per * v, rows, N, enc + blob * v, blob, &e)) die(spec, &e);
    double t2 = now();
    double mb = 4.0 * per * s->nviews / 1e6;
    const int reps = 2000;
    double h0 = now();
    for (int k = 0; k < reps; k++)
        if (ss_ac_encode(enc, blob, s->v, rows, N, &o, &e)) die(spec, &e);
    double h1 = now();
    for (int k = 0; k < reps; k++)
        if (ss_ac_decode(dec, rows, N, enc, blob, &e)) die(spec, &e);
    double h2 = now();
    double enc_us = (h1 - h0) / reps * 1e6, dec_us = (h2 - h1) / reps * 1e6;
    if (ss_ac_encode(enc, blob, s->v, rows, N, &o, &e)) die(spec, &e);   /* view 0 again */
    /* errors */
    size_t nr = (size_t)rows * s->nviews;
    double *kl = malloc(sizeof(double) * nr), klsum = 0;
    for (size_t r = 0; r < nr; r++) {
        kl[r] = ss_kl_row(s->v + r * N, dec + r * N, N);
        klsum += kl[r];
    }
    qsort(kl, nr, sizeof(double), cmp_dbl);
    /* loss and gradient errors: [dir ts/st][student u/s] */
    double lerr[2][2], gerr[2][2];
    float *g0 = malloc(sizeof(float) * per * s->nviews), *g1 = malloc(sizeof(float) * per * s->nviews);
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < 2; k++) {
            if (k == 1 && !stu) {
                lerr[d][k] = gerr[d][k] = NAN;
                continue;
            }
            const float *S = k ? stu->v : NULL;
            double l0 = kd_loss(g0, s->v, S, s->nviews, N, (ss_kl_dir)d);
            double l1 = kd_loss(g1, dec, S, s->nviews, N, (ss_kl_dir)d);
            lerr[d][k] = fabs(l1 - l0) / l0;
            gerr[d][k] = rel_l2(g1, g0, per * s->nviews);
            if (!g_losses_said)
                fprintf(stderr, "attncode_bench: exact KD loss %s, S %s: %.4f nats/row\n", d ? "KL(S||T)" : "KL(T||S)",
                        k ? "--student" : "uniform", l0);
        }
    g_losses_said = 1;
    free(g0);
    free(g1);
    for (int li = 0; li < nlev; li++) {
        char path[] = "/tmp/attncode_bench.XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0) die("mkstemp", NULL);
        close(fd);
        double w0 = now();
        ss_swriter *w = ss_swriter_open(path, levels[li], &e);
        if (!w) die(path, &e);
        ss_record r;
        ss_record_init(&r);
        if (ss_stream_header(&r, "attn-code", "attncode_bench", &e) ||
            ss_record_set_meta(&r, "ssta.attn_code", spec, &e) || ss_swriter_put(w, &r, &e))
            die(path, &e);
        for (int v0 = 0; v0 < s->nviews; v0 += batch) {
            int nb = s->nviews - v0 < batch ? s->nviews - v0 : batch;
            ss_record_free(&r);
            int64_t shp[2] = {nb, (int64_t)blob};
            ss_tensor *ti = ss_record_add(&r, "index", SS_I64, 1, shp, NULL, &e);
            if (!ti || !ss_record_add(&r, "attn", SS_U8, 2, shp, enc + blob * v0, &e)) die(path, &e);
            for (int b = 0; b < nb; b++) ((int64_t *)ti->data)[b] = v0 + b;
            if (ss_swriter_put(w, &r, &e)) die(path, &e);
        }
        if (ss_swriter_close(w, &e)) die(path, &e);
        double w1 = now();
        ss_record_free(&r);
        struct stat st;
        if (stat(path, &st)) die(path, NULL);
        unlink(path);
        printf("%s\t%d\t%zu\t%.0f\t%.3g\t%.3g\t%.3g", spec, levels[li], blob, (double)st.st_size / s->nviews,
               klsum / nr, kl[(size_t)(0.99 * (nr - 1))], kl[nr - 1]);
        for (int d = 0; d < 2; d++)
            for (int k = 0; k < 2; k++) printf("\t%.2e", lerr[d][k]);
        for (int d = 0; d < 2; d++)
            for (int k = 0; k < 2; k++) printf("\t%.2e", gerr[d][k]);
        printf("\t%.0f\t%.0f\t%.1f\t%.1f\t%.2f\n", mb / (t1 - t0), mb / (t2 - t1), enc_us, dec_us, w1 - w0);
        fflush(stdout);
    }
    free(kl);
    free(enc);
    free(dec);
}

int main(int argc, char **argv)
{
    const char *maps = NULL, *student = NULL, *model = NULL, *data = NULL, *aug = NULL;
    int levels[8] = {3}, nlev = 1, batch = 128, epoch = 0, nimg = 0, i;
    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i += 2) {
        if (i + 1 >= argc) die("option needs a value", NULL);
        const char *k = argv[i] + 2, *v = argv[i + 1];
        if (!strcmp(k, "maps")) maps = v;
        else if (!strcmp(k, "student")) student = v;
        else if (!strcmp(k, "model")) model = v;
        else if (!strcmp(k, "data")) data = v;
        else if (!strcmp(k, "aug")) aug = v;
        else if (!strcmp(k, "epoch")) epoch = atoi(v);
        else if (!strcmp(k, "n")) nimg = atoi(v);
        else if (!strcmp(k, "batch")) batch = atoi(v);
        else if (!strcmp(k, "levels")) {
            nlev = 0;
            for (const char *p = v; *p && nlev < 8; p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p))
                levels[nlev++] = atoi(p);
        } else die(k, NULL);
    }
    if (i >= argc || (!maps && !(model && data && aug)) || batch < 1) {
        fprintf(stderr, "usage: attncode_bench (--maps S | --model C --data D --aug P) [--student S] "
                        "[--levels 3,19] [--batch 128] SPEC...\n");
        return 2;
    }
    views s = {0}, stu = {0};
    if (maps) read_maps(maps, &s);
    else compute_maps(model, data, aug, epoch, nimg, &s);
    if (student) {
        read_maps(student, &stu);
        if (stu.nviews != s.nviews || stu.N != s.N) die("--student has other views than the maps", NULL);
    }
    fprintf(stderr, "attncode_bench: %d views of 3x%dx%d\n", s.nviews, s.N, s.N);
    if (student) {   /* a yardstick: how much another teacher's maps move the KD gradient */
        size_t tot = (size_t)3 * s.N * s.N * s.nviews;
        float *g0 = malloc(sizeof(float) * tot), *g1 = malloc(sizeof(float) * tot);
        kd_loss(g0, s.v, NULL, s.nviews, s.N, SS_KL_TS);
        kd_loss(g1, stu.v, NULL, s.nviews, s.N, SS_KL_TS);
        fprintf(stderr, "attncode_bench: --student's maps as the target instead of --maps' change the "
                        "KL(T||S) gradient (S uniform) by %.3f (relative L2)\n", rel_l2(g1, g0, tot));
        free(g0);
        free(g1);
    }
    printf("spec\tlevel\tbytes_raw\tbytes_zst\tkl_mean\tkl_p99\tkl_max\tloss_ts_u\tloss_ts_s\tloss_st_u\tloss_st_s\t"
           "grad_ts_u\tgrad_ts_s\tgrad_st_u\tgrad_st_s\tenc_MBs\tdec_MBs\tenc_us\tdec_us\twrite_s\n");
    for (; i < argc; i++) run(&s, student ? &stu : NULL, argv[i], levels, nlev, batch);
    free(s.v);
    free(stu.v);
    return 0;
}
