/* linear-probe — a linear classifier on the frozen features of a backbone,
 * fitted to convergence: features computed once (no augmentation),
 * standardised, L2-regularised multinomial logistic regression by L-BFGS
 * for each strength asked, the one with the best validation top-1 kept
 * (Kornblith et al. 2019; CLIP's linear probes). Writes the backbone with
 * that head (standardisation folded in) as a checkpoint every tool loads.
 * See linear-probe(1).
 *
 * Not here: the solver (lib/logreg.h), running the backbone (lib/runner.h).
 * distill-step --freeze-backbone trains DINO's SGD linear evaluation instead.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "io.h"
#include "logreg.h"
#include "modelfile.h"
#include "runner.h"
#include "safetensors.h"
#include "tool.h"
#include "vit.h"

#define PRODUCER "linear-probe 0.1"
#define MAX_L2 16

typedef struct opts {
    const char *model, *train, *val, *out, *report;
    int blocks, pool, max_iter, batch, threads, loader_threads;
    int nl2;
    double l2[MAX_L2];
    const char *l2_arg;
} opts;

static void usage(void)
{
    printf(
        "Usage: linear-probe --model BACKBONE --train SPEC --val SPEC -o PROBE [OPTIONS]\n"
        "Fit a linear classifier on the frozen features of BACKBONE: the final-normed\n"
        "class tokens of its last K blocks (DINO's linear evaluation input), computed\n"
        "once without augmentation, standardised, then L2-regularised multinomial\n"
        "logistic regression by L-BFGS for each strength of --l2; the strength with\n"
        "the best top-1 on --val is kept. PROBE is the backbone with that head\n"
        "(standardisation folded into it): vit-fwd, head-rank and attn-dump load it.\n"
        "A table (l2, iters, loss, train_top1, val_top1, chosen) goes to stdout, or to\n"
        "--report FILE.\n"
        "\n"
        "  --model CKPT        backbone (safetensors, ssta metadata; a head is ignored)\n"
        "  --train SPEC        labelled training images, e.g. fashion-mnist:train\n"
        "  --val SPEC          labelled images the strength is chosen on\n"
        "  -o, --out FILE      the probe checkpoint (written atomically)\n"
        "  --blocks K [4]      class tokens of the last K blocks\n"
        "  --pool avg          also the mean of the final-normed patch tokens (K = 1)\n"
        "  --l2 LIST           strengths, comma-separated [1e-5,...,1e-1];\n"
        "                      fitted from the strongest down, each warm-started from\n"
        "                      the previous; a tie on val keeps the stronger\n"
        "  --max-iter N [1000] L-BFGS iterations per strength\n"
        "  --report FILE       the table (default: stdout)\n"
        "  --batch N [256]  --threads N [2]  --loader-threads N [1]\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error, 2 usage error.\n");
}

enum { O_MODEL = 256, O_TRAIN, O_VAL, O_BLOCKS, O_POOL, O_L2, O_ITER, O_REPORT, O_BATCH, O_THREADS, O_LTHREADS };

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"model", 1, 0, O_MODEL}, {"train", 1, 0, O_TRAIN}, {"val", 1, 0, O_VAL}, {"out", 1, 0, 'o'},
        {"blocks", 1, 0, O_BLOCKS}, {"pool", 1, 0, O_POOL}, {"l2", 1, 0, O_L2}, {"max-iter", 1, 0, O_ITER},
        {"report", 1, 0, O_REPORT}, {"batch", 1, 0, O_BATCH}, {"threads", 1, 0, O_THREADS},
        {"loader-threads", 1, 0, O_LTHREADS}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->blocks = 0; o->max_iter = 1000; o->batch = 256; o->threads = 2; o->loader_threads = 1;
    o->l2_arg = "1e-5,1e-4,1e-3,1e-2,1e-1";
    int c;
    while ((c = tool_getopt(argc, argv, "o:h", lo)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case 'o': o->out = optarg; break;
        case O_MODEL: o->model = optarg; break;
        case O_TRAIN: o->train = optarg; break;
        case O_VAL: o->val = optarg; break;
        case O_BLOCKS: o->blocks = (int)tool_parse_long("--blocks", optarg, 1, 64); break;
        case O_POOL:
            if ((o->pool = ss_vit_pool_parse(optarg)) < 0) tool_usage_error("--pool: '%s' is not avg or none", optarg);
            break;
        case O_L2: o->l2_arg = optarg; break;
        case O_ITER: o->max_iter = (int)tool_parse_long("--max-iter", optarg, 1, 1000000); break;
        case O_REPORT: o->report = optarg; break;
        case O_BATCH: o->batch = (int)tool_parse_long("--batch", optarg, 1, 4096); break;
        case O_THREADS: o->threads = (int)tool_parse_long("--threads", optarg, 1, 64); break;
        case O_LTHREADS: o->loader_threads = (int)tool_parse_long("--loader-threads", optarg, 1, 64); break;
        default: tool_usage_error("unknown option");
        }
    }
    if (optind < argc) tool_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->model) tool_usage_error("--model CKPT is required");
    if (!o->train || !o->val) tool_usage_error("--train SPEC and --val SPEC are required");
    if (!o->out) tool_usage_error("-o PROBE is required");
    if (o->pool && o->blocks > 1) tool_usage_error("--pool avg goes with one block (DINO's eval_linear)");
    if (!o->blocks) o->blocks = o->pool ? 1 : 4;
    o->nl2 = tool_parse_doubles("--l2", o->l2_arg, 0, 1e6, o->l2, MAX_L2);
}

/* ---------------------------------------------------------------- features */

typedef struct feat_ctx {
    int F;
    float *rows;   /* this batch's rows */
} feat_ctx;

static int feat_objective(void *arg, ss_objio *io, ss_err *e)
{
    (void)e;
    feat_ctx *c = arg;
    memcpy(c->rows + (size_t)io->lo * c->F, ss_vit_head_input(io->acts[0]), sizeof(float) * (size_t)io->n * c->F);
    return 0;
}

/* The head inputs of every image of spec (dataset order) as double rows
 * (*n, F), labels into *y; every image needs a label in [0, K). */
static double *features(const char *spec, const char *opt, const opts *o, ss_runner *run, int slot, const ss_vit *m,
                        const float mean[3], const float stdv[3], size_t *n_out, int32_t **y_out)
{
    ss_err e;
    const ss_vit_cfg *c = &m->cfg;
    ss_dataset *d = ss_dataset_open(spec, &e);
    if (!d) tool_die("%s: %s", opt, e.msg);
    size_t n = ss_dataset_len(d);
    if (n == 0) tool_die("%s: %s is empty", opt, ss_dataset_spec(d));
    if (ss_dataset_nclasses(d) > c->num_classes)
        tool_die("%s: %s has %d classes, --train %d", opt, ss_dataset_spec(d), ss_dataset_nclasses(d), c->num_classes);
    ss_transform *tf = ss_transform_new("eval", c->img_size, c->img_size, c->in_chans, mean, stdv, &e);
    if (!tf) tool_die_err(&e);
    ss_loader_cfg lc = {.batch = o->batch, .seed = 0, .shuffle = 0, .drop_last = 0, .threads = o->loader_threads};
    ss_loader *ld = ss_loader_new(d, tf, &lc, c->img_size, c->img_size, c->in_chans, &e);
    if (!ld || ss_loader_start_epoch(ld, 0, &e)) tool_die("%s: %s", ss_dataset_spec(d), e.msg);
    int F = ss_vit_head_in(c);
    float *rows = malloc(sizeof(float) * (size_t)o->batch * F);
    double *X = malloc(sizeof(double) * n * F);
    int32_t *y = malloc(sizeof(int32_t) * n);
    if (!rows || !X || !y) tool_die("out of memory for the features of %zu images", n);
    size_t done = 0;
    double t0 = tool_now();
    ss_batch b;
    int rc;
    while ((rc = ss_loader_next(ld, &b, &e)) == 1) {
        feat_ctx fc = {F, rows};
        ss_pass p;
        memset(&p, 0, sizeof p);
        p.B = b.n;
        p.nitems = 1;
        p.item[0] = (ss_pass_item){.slot = slot, .x = b.x};
        p.obj = feat_objective;
        p.obj_ctx = &fc;
        if (ss_runner_pass(run, &p, &e)) tool_die_err(&e);
        for (int i = 0; i < b.n; i++) {
            char item[512];
            if (b.y[i] < 0 || b.y[i] >= c->num_classes) {
                ss_dataset_item_name(d, (size_t)b.index[i], item, sizeof item);
                tool_die("%s: %s has %s label %d: a linear probe needs labels 0..%d", opt, item,
                         b.y[i] < 0 ? "no" : "the", (int)b.y[i], c->num_classes - 1);
            }
            y[done + i] = b.y[i];
            for (int j = 0; j < F; j++) {
                float v = rows[(size_t)i * F + j];
                if (!isfinite(v)) {
                    ss_dataset_item_name(d, (size_t)b.index[i], item, sizeof item);
                    tool_die("%s: non-finite feature %d for %s (index %lld)", o->model, j, item, (long long)b.index[i]);
                }
                X[(done + i) * F + j] = v;
            }
        }
        done += (size_t)b.n;
        tool_progress("%s: features %zu/%zu  %.0f img/s", opt, done, n, done / (tool_now() - t0));
    }
    if (rc < 0) tool_die("%s: %s", ss_dataset_spec(d), e.msg);
    tool_progress_end();
    if (done != n) tool_die("%s: %zu of %zu images read", ss_dataset_spec(d), done, n);
    tool_warn("%s %s: %zu images, %d features, %.1f s", opt, ss_dataset_spec(d), n, F, tool_now() - t0);
    free(rows);
    ss_loader_free(ld);
    ss_transform_free(tf);
    ss_dataset_close(d);
    *n_out = n;
    *y_out = y;
    return X;
}

static void fit_progress(void *ctx, double l2, int iter, double f)
{
    (void)ctx;
    tool_progress("l2 %g: iteration %d  loss %.6f", l2, iter, f);
}

int main(int argc, char **argv)
{
    tool_init("linear-probe");
    opts o;
    parse(argc, argv, &o);
    ss_err e;

    ss_modelfile mf;
    if (ss_modelfile_open(&mf, o.model, NULL, NULL, 0, &e)) tool_die_err(&e);
    ss_dataset *dtr = ss_dataset_open(o.train, &e);
    if (!dtr) tool_die("--train: %s", e.msg);
    int K = ss_dataset_nclasses(dtr);
    if (K < 2) tool_die("--train: %s has %d classes; a classifier needs 2 or more", ss_dataset_spec(dtr), K);
    float mean[3], stdv[3];
    ss_modelfile_norm(&mf, dtr, mean, stdv);
    ss_dataset_close(dtr);

    /* the backbone with a head of the chosen input (its own head, if any, left out) */
    ss_vit_cfg c = mf.m.cfg;
    if (o.blocks > c.depth) tool_usage_error("--blocks %d: %s has %d blocks", o.blocks, o.model, c.depth);
    c.num_classes = K;
    c.head_blocks = o.blocks;
    c.head_pool = o.pool;
    if (ss_vit_cfg_check(&c, &e)) tool_usage_error("%s: %s", o.model, e.msg);
    ss_vit m;
    if (ss_vit_new(&m, &c, &e) || ss_vit_load(&m, &mf.rec, "", m.params, 2, &e)) tool_die("%s: %s", o.model, e.msg);

    tool_refuse_tty_stdout(o.out);   /* a checkpoint is binary */
    ss_afile out, rep;   /* opened now: a bad path fails before the work */
    if (ss_afile_open(&out, o.out, &e) || ss_afile_open(&rep, o.report ? o.report : "-", &e)) tool_die_err(&e);

    ss_runner *run = ss_runner_new(o.threads, &e);
    int slot = run ? ss_runner_slot(run, &m, o.batch, c.img_size, c.img_size, -1, &e) : -1;
    if (slot < 0) tool_die_err(&e);
    size_t ntr, nva;
    int32_t *ytr, *yva;
    double *Xtr = features(o.train, "--train", &o, run, slot, &m, mean, stdv, &ntr, &ytr);
    double *Xva = features(o.val, "--val", &o, run, slot, &m, mean, stdv, &nva, &yva);
    ss_runner_free(run);
    ss_blas_threads(o.threads);   /* the fits' products */

    int F = ss_vit_head_in(&c);
    double *mu = malloc(sizeof(double) * F), *sd = malloc(sizeof(double) * F);
    double *W = malloc(sizeof(double) * (size_t)K * F), *b = malloc(sizeof(double) * K);
    ss_logreg_row *rows = malloc(sizeof(ss_logreg_row) * o.nl2);
    if (!mu || !sd || !W || !b || !rows) tool_die("out of memory");
    ss_logreg_standardize(Xtr, ntr, F, mu, sd);
    ss_logreg_apply(Xva, nva, F, mu, sd);   /* val with the training split's statistics */
    double t0 = tool_now();
    int best;
    if (ss_logreg_sweep(Xtr, ytr, ntr, Xva, yva, nva, F, K, o.l2, o.nl2, o.max_iter, W, b, rows, &best,
                        fit_progress, NULL, &e))
        tool_die("--train %s: %s", o.train, e.msg);
    tool_progress_end();
    fprintf(rep.f, "l2\titers\tloss\ttrain_top1\tval_top1\tchosen\n");
    for (int i = 0; i < o.nl2; i++) {
        const ss_logreg_row *r = &rows[i];
        tool_warn("l2 %g: %d iterations%s, loss %.6f, train %.2f %%, val %.2f %%", r->l2, r->info.iters,
                  r->info.converged ? "" : " (not converged)", r->info.loss, 100.0 * r->train_hits / ntr,
                  100.0 * r->val_hits / nva);
        fprintf(rep.f, "%g\t%d\t%.6f\t%.4f\t%.4f\t%d\n", r->l2, r->info.iters, r->info.loss,
                (double)r->train_hits / ntr, (double)r->val_hits / nva, i == best);
    }
    double best_l2 = rows[best].l2, best_tr = (double)rows[best].train_hits / ntr,
           best_va = (double)rows[best].val_hits / nva;
    tool_warn("fits: %.1f s", tool_now() - t0);

    /* the head on raw features, into the model, and the checkpoint */
    ss_vit_w w;
    if (ss_vit_point(&m, m.params, &w, &e)) tool_die_err(&e);
    ss_logreg_fold(W, b, mu, sd, F, K, w.head_w, w.head_b);
    ss_vit_w_free(&w);
    ss_record r;
    ss_record_init(&r);
    if (ss_vit_save(&m, &r, "", m.params, &e) || ss_vit_cfg_to_meta(&c, &r, &e) ||
        ss_norm_to_meta(&r, c.in_chans, mean, stdv, &e) ||
        ss_record_set_meta(&r, "ssta.producer", PRODUCER, &e) || ss_record_set_meta(&r, "ssta.backbone", o.model, &e) ||
        ss_record_set_meta(&r, "ssta.backbone_md5", mf.md5, &e) || ss_record_set_meta(&r, "ssta.data", o.train, &e) ||
        ss_record_set_meta(&r, "ssta.val_data", o.val, &e) ||
        ss_record_set_metaf(&r, &e, "ssta.probe", "logistic regression, L-BFGS, standardised features, l2 %g of %s",
                            best_l2, o.l2_arg) ||
        ss_record_set_metaf(&r, &e, "ssta.train_acc", "%.4f", best_tr) ||
        ss_record_set_metaf(&r, &e, "ssta.val_acc", "%.4f", best_va))
        tool_die_err(&e);
    uint8_t *buf;
    size_t len;
    if (ss_record_encode(&r, &buf, &len, &e)) tool_die_err(&e);
    if (fwrite(buf, 1, len, out.f) != len) tool_die("%s: write error", o.out);
    free(buf);
    if (ss_afile_commit(&out, &e) || ss_afile_commit(&rep, &e)) tool_die_err(&e);
    tool_warn("%s: l2 %g, val top-1 %.2f %% (%zu training images, %d features)", o.out, best_l2, 100 * best_va, ntr, F);

    ss_record_free(&r);
    free(Xtr), free(Xva), free(ytr), free(yva), free(mu), free(sd), free(W), free(b), free(rows);
    ss_vit_free(&m);
    ss_modelfile_close(&mf);
    return 0;
}
