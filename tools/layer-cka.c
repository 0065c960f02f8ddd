/* layer-cka — linear CKA between every block of one ViT and every block of
 * another on the same images (the paper's Figure 2: SL vs SL, SL vs SSL),
 * over minibatches. See layer-cka(1).
 *
 * Not here: the CKA arithmetic (lib/cka.h), running the models (lib/runner.h).
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cka.h"
#include "data.h"
#include "io.h"
#include "modelfile.h"
#include "runner.h"
#include "tool.h"
#include "vit.h"

typedef struct opts {
    const char *model[2], *data, *out;
    int batch, threads, loader_threads, cls;
    ss_cka_estimator est;
} opts;

static void usage(void)
{
    printf(
        "Usage: layer-cka --model-a CKPT [--model-b CKPT] --data SPEC [OPTIONS]\n"
        "Linear CKA between the output of every block of model A and of every block\n"
        "of model B on the same images (each model with its own input normalisation),\n"
        "accumulated over minibatches (Nguyen et al.'s unbiased HSIC by default).\n"
        "Writes a TSV table: layer_a, layer_b (0-based blocks), cka.\n"
        "\n"
        "  -a, --model-a CKPT  first model (safetensors, ssta metadata)\n"
        "  -b, --model-b CKPT  second model (default: the first)\n"
        "  --data SPEC         images, e.g. fashion-mnist:test,n=2048 (labels not needed)\n"
        "  --repr tokens|cls   what a block's representation is: all its tokens,\n"
        "                      flattened [tokens], or its class token\n"
        "  --estimator unbiased|biased  HSIC estimator [unbiased]\n"
        "  --batch N [256]     minibatch size (>= 4; >= 2 biased); a last, shorter\n"
        "                      batch is left out\n"
        "  -o, --out FILE      the table (default -, stdout)\n"
        "  --threads N [2]  --loader-threads N [1]\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error, 2 usage error.\n");
}

enum { O_A = 256, O_B, O_DATA, O_REPR, O_EST, O_BATCH, O_THREADS, O_LTHREADS };

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"model-a", 1, 0, 'a'}, {"model-b", 1, 0, 'b'}, {"data", 1, 0, O_DATA}, {"repr", 1, 0, O_REPR},
        {"estimator", 1, 0, O_EST}, {"batch", 1, 0, O_BATCH}, {"out", 1, 0, 'o'}, {"threads", 1, 0, O_THREADS},
        {"loader-threads", 1, 0, O_LTHREADS}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->batch = 256; o->threads = 2; o->loader_threads = 1; o->out = "-"; o->est = SS_CKA_UNBIASED;
    int c;
    while ((c = tool_getopt(argc, argv, "a:b:o:h", lo)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case 'a': o->model[0] = optarg; break;
        case 'b': o->model[1] = optarg; break;
        case 'o': o->out = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_REPR:
            if (!strcmp(optarg, "cls")) o->cls = 1;
            else if (!strcmp(optarg, "tokens")) o->cls = 0;
            else tool_usage_error("--repr: '%s' is not tokens or cls", optarg);
            break;
        case O_EST:
            if (ss_cka_estimator_parse(optarg, &o->est)) tool_usage_error("--estimator: '%s' is not unbiased or biased", optarg);
            break;
        case O_BATCH: o->batch = (int)tool_parse_long("--batch", optarg, 2, 4096); break;
        case O_THREADS: o->threads = (int)tool_parse_long("--threads", optarg, 1, 64); break;
        case O_LTHREADS: o->loader_threads = (int)tool_parse_long("--loader-threads", optarg, 1, 64); break;
        default: tool_usage_error("unknown option");
        }
    }
    if (optind < argc) tool_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->model[0]) tool_usage_error("--model-a CKPT is required");
    if (!o->data) tool_usage_error("--data SPEC is required");
    if (o->batch < ss_cka_min_batch(o->est))
        tool_usage_error("--batch %d: the %s estimator needs minibatches of %d or more", o->batch,
                         ss_cka_estimator_name(o->est), ss_cka_min_batch(o->est));
    if (!o->model[1]) o->model[1] = o->model[0];
}

/* One model's side: its file, data, loader and slot, and the centred Grams
 * of the current minibatch (one per block). */
typedef struct side {
    ss_modelfile mf;
    ss_dataset *d;
    ss_transform *tf;
    ss_loader *ld;
    int slot, L, N, C;
    double **g;
} side;

/* The Grams of one minibatch, a layer per work item: item i < L_a is block
 * i of model A, the rest model B's. Each worker reads the token buffers of
 * every worker (the pass is over) and writes its own layers' Grams. */
typedef struct gram_job {
    const opts *o;
    ss_runner *run;
    side *s;
    int B, W;
    float **scratch;   /* per worker, B*B */
} gram_job;

static int gram_work(void *arg, int w, int lo, int hi, ss_err *e)
{
    gram_job *j = arg;
    for (int i = lo; i < hi; i++) {
        side *s = i < j->s[0].L ? &j->s[0] : &j->s[1];
        int l = i < j->s[0].L ? i : i - j->s[0].L;
        const float *x[SS_MAX_WORKERS];
        int rows[SS_MAX_WORKERS];
        for (int v = 0; v < j->W; v++) {
            int a, b;
            ss_runner_slice(j->run, v, j->B, &a, &b);
            rows[v] = b - a;
            x[v] = ss_vit_tokens(ss_runner_acts(j->run, s->slot, v), l);
        }
        size_t ld = (size_t)s->N * s->C, p = j->o->cls ? (size_t)s->C : ld;
        if (ss_cka_gram_parts(j->W, x, rows, ld, p, j->o->est, j->scratch[w], s->g[l], e))
            return ss_prefix(e, "%s, block %d", j->o->model[s == &j->s[1]], l);
    }
    return 0;
}

static void side_open(side *s, const char *path, const opts *o, ss_runner *run)
{
    ss_err e;
    if (ss_modelfile_open(&s->mf, path, NULL, NULL, 0, &e)) tool_die_err(&e);
    const ss_vit_cfg *c = &s->mf.m.cfg;
    if (!(s->d = ss_dataset_open(o->data, &e))) tool_die("--data: %s", e.msg);
    float mean[3], stdv[3];
    ss_modelfile_norm(&s->mf, s->d, mean, stdv);
    if (!(s->tf = ss_transform_new("eval", c->img_size, c->img_size, c->in_chans, mean, stdv, &e))) tool_die_err(&e);
    ss_loader_cfg lc = {.batch = o->batch, .seed = 0, .shuffle = 0, .drop_last = 0, .threads = o->loader_threads};
    if (!(s->ld = ss_loader_new(s->d, s->tf, &lc, c->img_size, c->img_size, c->in_chans, &e)) ||
        ss_loader_start_epoch(s->ld, 0, &e))
        tool_die("%s: %s", ss_dataset_spec(s->d), e.msg);
    if ((s->slot = ss_runner_slot(run, &s->mf.m, o->batch, c->img_size, c->img_size, -1, &e)) < 0) tool_die_err(&e);
    s->L = c->depth;
    s->C = c->embed_dim;
    s->N = ss_runner_acts(run, s->slot, 0)->N;
    s->g = calloc((size_t)s->L, sizeof *s->g);
    if (!s->g) tool_die("out of memory");
    for (int l = 0; l < s->L; l++)
        if (!(s->g[l] = malloc(sizeof(double) * (size_t)o->batch * o->batch))) tool_die("out of memory");
}

static void side_close(side *s)
{
    for (int l = 0; l < s->L; l++) free(s->g[l]);
    free(s->g);
    ss_loader_free(s->ld);
    ss_transform_free(s->tf);
    ss_dataset_close(s->d);
    ss_modelfile_close(&s->mf);
}

int main(int argc, char **argv)
{
    tool_init("layer-cka");
    opts o;
    parse(argc, argv, &o);
    ss_err e;
    ss_runner *run = ss_runner_new(o.threads, &e);
    if (!run) tool_die_err(&e);
    side s[2];
    memset(s, 0, sizeof s);
    for (int k = 0; k < 2; k++) side_open(&s[k], o.model[k], &o, run);
    size_t n = ss_dataset_len(s[0].d), nb = n / (size_t)o.batch;
    if (nb == 0)
        tool_die("%s: %zu images, fewer than one minibatch of %d (--batch)", ss_dataset_spec(s[0].d), n, o.batch);
    if (n % (size_t)o.batch)
        tool_warn("%s: the last %zu of %zu images are left out (minibatches of %d)", ss_dataset_spec(s[0].d),
                  n % (size_t)o.batch, n, o.batch);

    int W = ss_runner_workers(run);
    gram_job job = {.o = &o, .run = run, .s = s, .B = o.batch, .W = W};
    job.scratch = calloc((size_t)W, sizeof *job.scratch);
    if (!job.scratch) tool_die("out of memory");
    for (int w = 0; w < W; w++)
        if (!(job.scratch[w] = malloc(sizeof(float) * (size_t)o.batch * o.batch))) tool_die("out of memory");
    ss_cka_acc acc;
    if (ss_cka_acc_init(&acc, s[0].L, s[1].L, &e)) tool_die_err(&e);

    ss_afile a;   /* opened now: a bad path fails before the work */
    if (ss_afile_open(&a, o.out, &e)) tool_die_err(&e);
    double t0 = tool_now();
    for (size_t k = 0; k < nb; k++) {
        ss_batch b[2];
        for (int m = 0; m < 2; m++) {
            int rc = ss_loader_next(s[m].ld, &b[m], &e);
            if (rc < 0) tool_die("%s: %s", ss_dataset_spec(s[m].d), e.msg);
            if (rc == 0 || b[m].n != o.batch)
                tool_die("internal error: %s ended at batch %zu of %zu", ss_dataset_spec(s[m].d), k, nb);
        }
        ss_pass p;
        memset(&p, 0, sizeof p);
        p.B = o.batch;
        p.nitems = 2;
        for (int m = 0; m < 2; m++) p.item[m] = (ss_pass_item){.slot = s[m].slot, .x = b[m].x};
        if (ss_runner_pass(run, &p, &e) || ss_runner_each(run, s[0].L + s[1].L, gram_work, &job, &e))
            tool_die_err(&e);
        ss_cka_acc_add(&acc, (const double *const *)s[0].g, (const double *const *)s[1].g, o.batch);
        tool_progress("minibatch %zu/%zu  %.0f img/s", k + 1, nb, (double)(k + 1) * o.batch / (tool_now() - t0));
    }
    tool_progress_end();

    fprintf(a.f, "layer_a\tlayer_b\tcka\n");
    double diag = 0;
    int nd = 0, nan = 0;
    for (int i = 0; i < s[0].L; i++)
        for (int j = 0; j < s[1].L; j++) {
            double v = ss_cka_value(&acc, i, j);
            fprintf(a.f, "%d\t%d\t%.6f\n", i, j, v);
            nan += isnan(v);
            if (i == j && !isnan(v)) diag += v, nd++;
        }
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);
    tool_warn("%s vs %s: %zu images of %s in %zu minibatches of %d, %s CKA of %s; mean over blocks i = i: %.4f "
              "(%.1f s)",
              o.model[0], o.model[1], nb * (size_t)o.batch, ss_dataset_spec(s[0].d), nb, o.batch,
              ss_cka_estimator_name(o.est), o.cls ? "class tokens" : "all tokens", nd ? diag / nd : NAN,
              tool_now() - t0);
    if (nan) tool_warn("%d entries are NaN: a block whose representation is constant over a minibatch", nan);

    ss_cka_acc_free(&acc);
    for (int w = 0; w < W; w++) free(job.scratch[w]);
    free(job.scratch);
    ss_runner_free(run);
    for (int k = 0; k < 2; k++) side_close(&s[k]);
    return 0;
}
