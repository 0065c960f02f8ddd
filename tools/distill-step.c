/* distill-step — train a ViT (supervised mode; linear probing of a frozen
 * backbone), resumable, deterministic. See distill-step(1).
 *
 * Not here (yet): the head-level attention KD terms read from an attn-dump
 * stream; they plug in through ss_trainer_set_hook (train.h).
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "data.h"
#include "io.h"
#include "rng.h"
#include "safetensors.h"
#include "stream.h"
#include "tool.h"
#include "train.h"
#include "vit.h"

#define PRODUCER "distill-step 0.1"

typedef struct opts {
    const char *train, *val, *out, *log, *init, *preset, *aug, *dump_grads;
    int img, patch, chans, dim, depth, heads, classes, head_blocks;
    float mlp_ratio;
    int epochs, batch, threads, loader_threads, steps_per_epoch, warmup_epochs_set;
    double lr, min_lr, wd, warmup, smoothing, drop_path, dropout, clip;
    uint64_t seed;
    int freeze, decay_tokens, bench, bench_steps, skip_corrupt;
} opts;

static void usage(void)
{
    printf(
        "Usage: distill-step [OPTIONS] --train SPEC -o CKPT\n"
        "Train a ViT on a dataset (supervised), writing CKPT after every epoch.\n"
        "Restarted with the same command, it resumes from CKPT and ends with the\n"
        "same weights as an uninterrupted run. A TSV table (epoch, lr, loss,\n"
        "train_acc, val_acc, img_s, seconds) goes to stdout.\n"
        "\n"
        "Data:\n"
        "  --train SPEC         training data (e.g. fashion-mnist:train)\n"
        "  --val SPEC           validation data, evaluated after each epoch\n"
        "  --aug PRESET         training transform (default fmnist-light for\n"
        "                       fashion-mnist, else eval)\n"
        "Model:\n"
        "  --preset NAME        fmnist-student, fmnist-teacher, deit-tiny, deit-small, deit-base\n"
        "  --init CKPT          start from these weights (architecture from the file)\n"
        "  --img N --patch N --chans N --dim N --depth N --heads N --mlp-ratio X\n"
        "  --classes N          override/define the architecture (classes default:\n"
        "                       the training data's)\n"
        "  --freeze-backbone    train only the head (linear probe) on --init's backbone\n"
        "  --head-blocks K      head on the final-norm class tokens of the last K blocks\n"
        "Optimisation (defaults in brackets):\n"
        "  --epochs N [40]  --batch N [128]  --lr X [1e-3]  --min-lr X [1e-5]\n"
        "  --wd X [0.05]  --warmup EPOCHS [5]  --smoothing X [0.1]  --drop-path X [0.1]\n"
        "  --dropout X [0] (after pos-embed, attn.proj, GELU, fc2, as timm drop_rate)\n"
        "  --clip X [0 = off]   --decay-tokens (weight-decay cls_token/pos_embed)\n"
        "  --seed N [0]  --threads N [2]  --steps-per-epoch N (cap, for quick runs)\n"
        "  --loader-threads N [1]  threads decoding/augmenting batches ahead (no\n"
        "                       effect on the result)\n"
        "  --skip-corrupt       leave out samples that cannot be decoded (counted on\n"
        "                       stderr at the end)\n"
        "Output:\n"
        "  -o, --out CKPT       checkpoint (safetensors, timm names + optimizer state)\n"
        "  --log FILE           the TSV table, rewritten atomically each epoch\n"
        "  --dump-grads FILE    write the loss and all gradients of the first step as\n"
        "                       a stream (kind \"grads\") and exit\n"
        "  --bench              time training and inference steps on random inputs\n"
        "                       (--preset/--batch/--threads; --bench-steps N [20])\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error (incl. NaN loss), 2 usage error.\n");
}

enum {
    O_TRAIN = 256, O_VAL, O_LOG, O_INIT, O_PRESET, O_AUG, O_DUMP, O_IMG, O_PATCH, O_CHANS, O_DIM,
    O_DEPTH, O_HEADS, O_CLASSES, O_HEADBLK, O_MLP, O_EPOCHS, O_BATCH, O_THREADS, O_LTHREADS, O_SPE, O_LR,
    O_MINLR, O_WD, O_WARMUP, O_SMOOTH, O_DP, O_DO, O_CLIP, O_SEED, O_FREEZE, O_DECTOK, O_BENCH, O_BSTEPS, O_SKIP
};

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"train", 1, 0, O_TRAIN}, {"val", 1, 0, O_VAL}, {"out", 1, 0, 'o'}, {"log", 1, 0, O_LOG},
        {"init", 1, 0, O_INIT}, {"preset", 1, 0, O_PRESET}, {"aug", 1, 0, O_AUG},
        {"dump-grads", 1, 0, O_DUMP}, {"img", 1, 0, O_IMG}, {"patch", 1, 0, O_PATCH},
        {"chans", 1, 0, O_CHANS}, {"dim", 1, 0, O_DIM}, {"depth", 1, 0, O_DEPTH},
        {"heads", 1, 0, O_HEADS}, {"classes", 1, 0, O_CLASSES}, {"head-blocks", 1, 0, O_HEADBLK},
        {"mlp-ratio", 1, 0, O_MLP}, {"epochs", 1, 0, O_EPOCHS}, {"batch", 1, 0, O_BATCH},
        {"threads", 1, 0, O_THREADS}, {"loader-threads", 1, 0, O_LTHREADS}, {"steps-per-epoch", 1, 0, O_SPE}, {"lr", 1, 0, O_LR},
        {"min-lr", 1, 0, O_MINLR}, {"wd", 1, 0, O_WD}, {"warmup", 1, 0, O_WARMUP},
        {"smoothing", 1, 0, O_SMOOTH}, {"drop-path", 1, 0, O_DP}, {"dropout", 1, 0, O_DO}, {"clip", 1, 0, O_CLIP},
        {"seed", 1, 0, O_SEED}, {"freeze-backbone", 0, 0, O_FREEZE},
        {"decay-tokens", 0, 0, O_DECTOK}, {"bench", 0, 0, O_BENCH}, {"bench-steps", 1, 0, O_BSTEPS},
        {"skip-corrupt", 0, 0, O_SKIP},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->epochs = 40; o->batch = 128; o->threads = 2; o->loader_threads = 1; o->lr = 1e-3; o->min_lr = 1e-5; o->wd = 0.05;
    o->warmup = 5; o->smoothing = 0.1; o->drop_path = 0.1; o->bench_steps = 20; o->head_blocks = 0;
    int c;
    while ((c = tool_getopt(argc, argv, "o:h", lo)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case 'o': o->out = optarg; break;
        case O_TRAIN: o->train = optarg; break;
        case O_VAL: o->val = optarg; break;
        case O_LOG: o->log = optarg; break;
        case O_INIT: o->init = optarg; break;
        case O_PRESET: o->preset = optarg; break;
        case O_AUG: o->aug = optarg; break;
        case O_DUMP: o->dump_grads = optarg; break;
        case O_IMG: o->img = (int)tool_parse_long("--img", optarg, 1, 8192); break;
        case O_PATCH: o->patch = (int)tool_parse_long("--patch", optarg, 1, 1024); break;
        case O_CHANS: o->chans = (int)tool_parse_long("--chans", optarg, 1, 64); break;
        case O_DIM: o->dim = (int)tool_parse_long("--dim", optarg, 1, 16384); break;
        case O_DEPTH: o->depth = (int)tool_parse_long("--depth", optarg, 1, 256); break;
        case O_HEADS: o->heads = (int)tool_parse_long("--heads", optarg, 1, 1024); break;
        case O_CLASSES: o->classes = (int)tool_parse_long("--classes", optarg, 1, 1000000); break;
        case O_HEADBLK: o->head_blocks = (int)tool_parse_long("--head-blocks", optarg, 1, 256); break;
        case O_MLP: o->mlp_ratio = (float)tool_parse_double("--mlp-ratio", optarg, 0.01, 64); break;
        case O_EPOCHS: o->epochs = (int)tool_parse_long("--epochs", optarg, 1, 100000); break;
        case O_BATCH: o->batch = (int)tool_parse_long("--batch", optarg, 1, 65536); break;
        case O_THREADS: o->threads = (int)tool_parse_long("--threads", optarg, 1, 64); break;
        case O_LTHREADS: o->loader_threads = (int)tool_parse_long("--loader-threads", optarg, 1, 64); break;
        case O_SPE: o->steps_per_epoch = (int)tool_parse_long("--steps-per-epoch", optarg, 1, 100000000); break;
        case O_LR: o->lr = tool_parse_double("--lr", optarg, 0, 10); break;
        case O_MINLR: o->min_lr = tool_parse_double("--min-lr", optarg, 0, 10); break;
        case O_WD: o->wd = tool_parse_double("--wd", optarg, 0, 10); break;
        case O_WARMUP: o->warmup = tool_parse_double("--warmup", optarg, 0, 100000); break;
        case O_SMOOTH: o->smoothing = tool_parse_double("--smoothing", optarg, 0, 1); break;
        case O_DP: o->drop_path = tool_parse_double("--drop-path", optarg, 0, 0.99); break;
        case O_DO: o->dropout = tool_parse_double("--dropout", optarg, 0, 0.99); break;
        case O_CLIP: o->clip = tool_parse_double("--clip", optarg, 0, 1e9); break;
        case O_SEED: o->seed = tool_parse_u64("--seed", optarg); break;
        case O_FREEZE: o->freeze = 1; break;
        case O_DECTOK: o->decay_tokens = 1; break;
        case O_BENCH: o->bench = 1; break;
        case O_SKIP: o->skip_corrupt = 1; break;
        case O_BSTEPS: o->bench_steps = (int)tool_parse_long("--bench-steps", optarg, 1, 100000); break;
        default: tool_usage_error("unknown option");
        }
    }
    if (optind < argc) tool_usage_error("unexpected argument '%s'", argv[optind]);
    if (o->bench) return;
    if (!o->train) tool_usage_error("--train SPEC is required");
    if (!o->out && !o->dump_grads) tool_usage_error("-o CKPT is required");
    if (o->freeze && !o->init) tool_usage_error("--freeze-backbone needs --init CKPT");
    if (o->head_blocks > 1 && !o->freeze) tool_usage_error("--head-blocks > 1 is for linear probing (--freeze-backbone)");
}

/* Architecture: preset, then --init's file, then explicit options. */
static void build_cfg(const opts *o, const ss_record *init, int data_classes, ss_vit_cfg *c)
{
    ss_err e;
    memset(c, 0, sizeof *c);
    if (o->preset && ss_vit_preset(o->preset, c, &e)) tool_usage_error("--preset: %s", e.msg);
    if (o->heads) c->num_heads = o->heads;
    if (init) {
        if (ss_vit_cfg_from_record(init, c, &e)) tool_die("%s: %s", o->init, e.msg);
        if (o->freeze) c->num_classes = 0;   /* a new head follows */
    }
    if (o->img) c->img_size = o->img;
    if (o->patch) c->patch = o->patch;
    if (o->chans) c->in_chans = o->chans;
    if (o->dim) c->embed_dim = o->dim;
    if (o->depth) c->depth = o->depth;
    if (o->heads) c->num_heads = o->heads;
    if (o->mlp_ratio > 0) c->mlp_ratio = o->mlp_ratio;
    if (o->classes) c->num_classes = o->classes;
    if (o->head_blocks) c->head_blocks = o->head_blocks;
    if (c->num_classes <= 0) c->num_classes = data_classes;
    ss_vit_cfg_defaults(c);
    if (!c->img_size || !c->patch || !c->embed_dim || !c->depth || !c->num_heads)
        tool_usage_error("the architecture is incomplete: give --preset, --init, or --img/--patch/--dim/--depth/--heads");
    if (ss_vit_cfg_check(c, &e)) tool_usage_error("%s", e.msg);
}

static long peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

/* --bench: steps on random inputs; TSV to stdout. */
static int bench(const opts *o)
{
    ss_vit_cfg c;
    build_cfg(o, NULL, 10, &c);
    ss_err e;
    ss_vit m;
    if (ss_vit_new(&m, &c, &e)) tool_die_err(&e);
    ss_vit_init_weights(&m, o->seed);
    ss_trainer_cfg tc = {0};
    tc.workers = o->threads; tc.batch = o->batch; tc.hin = tc.win = c.img_size;
    tc.label_smoothing = 0.1f; tc.drop_path = (float)o->drop_path; tc.seed = o->seed;
    ss_adamw_defaults(&tc.opt);
    tc.opt.wd = 0.05f;
    ss_trainer *t = ss_trainer_new(&m, &tc, &e);
    if (!t) tool_die_err(&e);
    size_t in1 = (size_t)c.in_chans * c.img_size * c.img_size;
    float *x = malloc(sizeof(float) * in1 * o->batch);
    int32_t *y = malloc(sizeof(int32_t) * o->batch);
    if (!x || !y) tool_die("out of memory");
    ss_rng r = ss_rng_key(1, 99, 0, 0, 0);
    for (size_t i = 0; i < in1 * o->batch; i++) x[i] = (float)ss_rng_normal(&r);
    for (int b = 0; b < o->batch; b++) y[b] = (int32_t)ss_rng_below(&r, (uint32_t)c.num_classes);
    ss_step_stats st;
    int warm = 2;
    double t0 = 0;
    for (int s = 0; s < warm + o->bench_steps; s++) {
        if (s == warm) t0 = tool_now();
        if (ss_trainer_step(t, x, y, o->batch, 1e-4, &st, &e)) tool_die_err(&e);
    }
    double train_ips = (double)o->bench_steps * o->batch / (tool_now() - t0);
    for (int s = 0; s < warm + o->bench_steps; s++) {
        if (s == warm) t0 = tool_now();
        if (ss_trainer_eval(t, x, NULL, o->batch, NULL, NULL, NULL, &e)) tool_die_err(&e);
    }
    double infer_ips = (double)o->bench_steps * o->batch / (tool_now() - t0);
    printf("impl\tdim\tdepth\theads\timg\tpatch\tbatch\tthreads\ttrain_img_s\tinfer_img_s\tpeak_rss_mb\n");
    printf("ssta\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%ld\n", c.embed_dim, c.depth, c.num_heads,
           c.img_size, c.patch, o->batch, o->threads, train_ips, infer_ips, peak_rss_mb());
    ss_trainer_free(t);
    ss_vit_free(&m);
    free(x);
    free(y);
    return 0;
}

/* ---------------------------------------------------------------- batches */

/* Batches come from the shared loader (data.h), which decodes and augments
 * them ahead on `threads` worker threads: epoch order from (seed, epoch),
 * view of sample i from (seed, epoch, i). JPEGs decode with DCT scaling to
 * the transform's minimum side (ssta-data(5)), a function of (file,
 * transform) only, so the views do not depend on the loader. */
static ss_loader *open_loader(ss_dataset *d, const ss_transform *tf, const ss_vit_cfg *c, int batch,
                              int shuffle, int drop_last, uint64_t seed, int threads, int skip, ss_err *e)
{
    size_t n = ss_dataset_len(d);
    if (n == 0) {
        ss_fail(e, "%s: empty dataset", ss_dataset_spec(d));
        return NULL;
    }
    if (n > UINT32_MAX) {
        ss_fail(e, "%s: too many samples", ss_dataset_spec(d));
        return NULL;
    }
    ss_loader_cfg lc = {.batch = batch, .seed = seed, .shuffle = shuffle, .drop_last = drop_last,
                        .threads = threads, .skip_corrupt = skip};
    return ss_loader_new(d, tf, &lc, c->img_size, c->img_size, c->in_chans, e);
}

/* The next batch of the epoch, which must have one. */
static void next_batch(ss_loader *l, ss_batch *b)
{
    ss_err e;
    int rc = ss_loader_next(l, b, &e);
    if (rc < 0) tool_die_err(&e);
    if (rc == 0) tool_die("internal error: the loader's epoch ended early");
}

/* ---------------------------------------------------------------- main */

/* The settings that determine the result; a resumed run must match. */
static void run_identity(const opts *o, const char *train_spec, const char *val_spec, char *buf, size_t n)
{
    snprintf(buf, n,
             "train=%s;val=%s;init=%s;aug=%s;epochs=%d;batch=%d;lr=%.9g;min_lr=%.9g;wd=%.9g;warmup=%.9g;"
             "smoothing=%.9g;drop_path=%.9g;dropout=%.9g;clip=%.9g;seed=%llu;threads=%d;steps_per_epoch=%d;freeze=%d;"
             "decay_tokens=%d",
             train_spec, val_spec ? val_spec : "", o->init ? o->init : "", o->aug ? o->aug : "",
             o->epochs, o->batch, o->lr, o->min_lr, o->wd, o->warmup, o->smoothing, o->drop_path,
             o->dropout, o->clip, (unsigned long long)o->seed, o->threads, o->steps_per_epoch, o->freeze,
             o->decay_tokens);
    if (o->skip_corrupt) snprintf(buf + strlen(buf), n - strlen(buf), ";skip_corrupt=1");
}

/* First differing ';'-separated field of two identities. */
static void first_diff(const char *a, const char *b, char *out, size_t n)
{
    while (*a && *b) {
        const char *ea = strchr(a, ';'), *eb = strchr(b, ';');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la)) {
            snprintf(out, n, "'%.*s', this command has '%.*s'", (int)la, a, (int)lb, b);
            return;
        }
        a += la + (ea ? 1 : 0);
        b += lb + (eb ? 1 : 0);
    }
    snprintf(out, n, "settings differ");
}

static const char *LOG_HEADER = "epoch\tlr\tloss\ttrain_acc\tval_acc\timg_s\tseconds\n";

/* The checkpoint's ssta.log keeps the table without its timing columns
 * (img_s, seconds), so that the same command writes the same bytes; a
 * resumed run shows '-' there for the epochs it did not run. strip = 1:
 * each row cut to its first 5 fields; strip = 0: rows of 5 fields get
 * "\t-\t-" appended. Returns a malloc'd copy (dies when out of memory). */
static char *log_timing(const char *rows, int strip)
{
    size_t n = strlen(rows), lines = 1;
    for (const char *p = rows; *p; p++) lines += *p == '\n';
    char *out = malloc(n + 4 * lines + 1), *q = out;
    if (!out) tool_die("out of memory");
    while (*rows) {
        const char *eol = strchr(rows, '\n');
        size_t len = eol ? (size_t)(eol - rows) : strlen(rows), keep = len;
        int tabs = 0;
        for (size_t i = 0; i < len; i++)
            if (rows[i] == '\t' && ++tabs == 5 && strip) keep = i;
        memcpy(q, rows, keep);
        q += keep;
        if (!strip && tabs == 4) memcpy(q, "\t-\t-", 4), q += 4;
        if (eol) *q++ = '\n';
        rows += len + (eol ? 1 : 0);
    }
    *q = 0;
    return out;
}

static void write_log(const char *path, const char *rows)
{
    ss_afile a;
    ss_err e;
    if (ss_afile_open(&a, path, &e)) tool_die_err(&e);
    fputs(LOG_HEADER, a.f);
    fputs(rows, a.f);
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);
}

/* Accuracy over the whole validation set: dataset order (epoch 0, no
 * shuffle), the last batch short. */
static int evaluate(ss_trainer *t, ss_loader *vl, size_t n, double *acc, ss_err *e)
{
    if (ss_loader_start_epoch(vl, 0, e)) return -1;
    int correct = 0, rc;
    size_t seen = 0;   /* n, less the samples --skip-corrupt left out */
    ss_batch b;
    while ((rc = ss_loader_next(vl, &b, e)) == 1) {
        if (b.n && ss_trainer_eval(t, b.x, b.y, b.n, NULL, &correct, NULL, e)) return -1;
        seen += (size_t)b.n;
    }
    if (rc < 0) return -1;
    *acc = seen ? (double)correct / (double)seen : NAN;
    (void)n;
    return 0;
}

int main(int argc, char **argv)
{
    tool_init("distill-step");
    opts o;
    parse(argc, argv, &o);
    if (o.bench) return bench(&o);
    ss_err e;

    ss_dataset *dtr = ss_dataset_open(o.train, &e);
    if (!dtr) tool_die("--train: %s", e.msg);
    ss_dataset *dva = NULL;
    if (o.val && !(dva = ss_dataset_open(o.val, &e))) tool_die("--val: %s", e.msg);

    ss_record init;
    ss_record_init(&init);
    if (o.init && ss_st_load(o.init, &init, &e)) tool_die_err(&e);
    ss_vit_cfg c;
    build_cfg(&o, o.init ? &init : NULL, ss_dataset_nclasses(dtr), &c);
    if (ss_dataset_nclasses(dtr) > c.num_classes)
        tool_die("%s has %d classes, the model's head has %d", ss_dataset_spec(dtr), ss_dataset_nclasses(dtr), c.num_classes);

    /* normalisation: --init's metadata, else the dataset's customary values */
    float mean[3], stdv[3];
    ss_dataset_norm(dtr, mean, stdv);
    int have_norm = o.init ? ss_norm_from_meta(&init, mean, stdv, &e) : 0;
    if (have_norm < 0) tool_die("%s: %s", o.init, e.msg);
    if (!have_norm && c.in_chans == 3) {
        int h, w, dc;
        ss_dataset_geometry(dtr, &h, &w, &dc);
        if (dc == 1) for (int i = 1; i < 3; i++) mean[i] = mean[0], stdv[i] = stdv[0];
    }
    const char *aug = o.aug ? o.aug : (!strncmp(o.train, "fashion-mnist", 13) ? "fmnist-light" : "eval");
    ss_transform *tf = ss_transform_new(aug, c.img_size, c.img_size, c.in_chans, mean, stdv, &e);
    if (!tf) tool_die("--aug: %s", e.msg);
    ss_transform *tfv = ss_transform_new("eval", c.img_size, c.img_size, c.in_chans, mean, stdv, &e);
    if (!tfv) tool_die("%s", e.msg);

    ss_vit m;
    if (ss_vit_new(&m, &c, &e)) tool_die_err(&e);
    ss_vit_init_weights(&m, o.seed);
    if (o.init && ss_vit_load(&m, &init, "", m.params, o.freeze ? 2 : 1, &e)) tool_die("%s: %s", o.init, e.msg);

    ss_trainer_cfg tc = {0};
    tc.workers = o.threads; tc.batch = o.batch; tc.hin = tc.win = c.img_size;
    tc.label_smoothing = (float)o.smoothing; tc.drop_path = (float)o.drop_path;
    tc.drop_rate = (float)o.dropout;
    tc.clip = (float)o.clip; tc.freeze_backbone = o.freeze; tc.decay_tokens = o.decay_tokens;
    tc.seed = o.seed;
    ss_adamw_defaults(&tc.opt);
    tc.opt.wd = (float)o.wd;
    ss_trainer *t = ss_trainer_new(&m, &tc, &e);
    if (!t) tool_die_err(&e);

    /* training: shuffled, full batches only; validation: dataset order, all */
    ss_loader *tl = open_loader(dtr, tf, &c, o.batch, 1, 1, o.seed, o.loader_threads, o.skip_corrupt, &e);
    if (!tl) tool_die_err(&e);
    ss_loader *vl = NULL;
    if (dva && !(vl = open_loader(dva, tfv, &c, o.batch, 0, 0, o.seed, o.loader_threads, o.skip_corrupt, &e))) tool_die_err(&e);
    size_t spe = ss_loader_batches(tl);
    if (spe == 0) tool_die("%s: %zu samples, fewer than one batch of %d", ss_dataset_spec(dtr), ss_dataset_len(dtr), o.batch);
    if (o.steps_per_epoch && (size_t)o.steps_per_epoch < spe) spe = (size_t)o.steps_per_epoch;
    uint64_t total = spe * (uint64_t)o.epochs, warm = (uint64_t)llround(o.warmup * spe);

    char *rows = NULL;  /* the TSV log so far (freed at done) */
    if (o.dump_grads) {
        ss_batch b;
        if (ss_loader_start_epoch(tl, 0, &e)) tool_die_err(&e);
        next_batch(tl, &b);
        ss_step_stats st;
        if (ss_trainer_grad(t, b.x, b.y, b.n, &st, &e)) tool_die_err(&e);
        ss_record r;
        ss_record_init(&r);
        if (ss_stream_header(&r, "grads", PRODUCER, &e) ||
            ss_record_set_meta(&r, "ssta.data", ss_dataset_spec(dtr), &e) ||
            ss_record_set_metaf(&r, &e, "ssta.seed", "%llu", (unsigned long long)o.seed) ||
            ss_vit_cfg_to_meta(&c, &r, &e))
            tool_die_err(&e);
        tool_refuse_tty_stdout(o.dump_grads);
        ss_swriter *w = ss_swriter_open(o.dump_grads, SS_ZSTD_DEFAULT, &e);
        if (!w || ss_swriter_put(w, &r, &e)) tool_die_err(&e);
        ss_record_free(&r);
        ss_record_init(&r);
        float lossf = (float)st.loss;
        int64_t noshape[1] = {0};
        if (!ss_record_add(&r, "loss", SS_F32, 0, noshape, &lossf, &e) ||
            ss_vit_save(&m, &r, "grad.", ss_trainer_grads(t), &e) || ss_swriter_put(w, &r, &e) ||
            ss_swriter_close(w, &e))
            tool_die_err(&e);
        ss_record_free(&r);
        goto done;
    }

    /* resume */
    char ident[4096];
    run_identity(&o, ss_dataset_spec(dtr), dva ? ss_dataset_spec(dva) : NULL, ident, sizeof ident);
    int start_epoch = 0;
    rows = calloc(1, 1);
    size_t rows_len = 0;
    FILE *probe = fopen(o.out, "rb");
    if (probe) {
        fclose(probe);
        ss_record r;
        ss_record_init(&r);
        if (ss_st_load(o.out, &r, &e)) tool_die("cannot resume: %s", e.msg);
        const char *id = ss_record_meta(&r, "ssta.run");
        if (!id) tool_die("%s exists and is not a distill-step checkpoint; remove it or choose another -o", o.out);
        if (strcmp(id, ident)) {
            char d[512];
            first_diff(id, ident, d, sizeof d);
            tool_die("%s is from a different run (%s); remove it or choose another -o", o.out, d);
        }
        if (ss_vit_load(&m, &r, "", m.params, 0, &e) || ss_trainer_load_state(t, &r, &e))
            tool_die("%s: %s", o.out, e.msg);
        const char *ep = ss_record_meta(&r, "ssta.epoch"), *lg = ss_record_meta(&r, "ssta.log");
        start_epoch = ep ? atoi(ep) : 0;
        if (lg) {
            free(rows);
            rows = log_timing(lg, 0);
            rows_len = strlen(rows);
        }
        ss_record_free(&r);
    }
    printf("%s%s", LOG_HEADER, rows);
    fflush(stdout);
    if (start_epoch >= o.epochs) {
        if (start_epoch > 0 && tool_isatty(2)) tool_warn("%s: already trained for %d epochs", o.out, start_epoch);
        goto done;
    }

    char meanbuf[64], stdbuf[64];
    if (c.in_chans == 1) {
        snprintf(meanbuf, sizeof meanbuf, "%.6g", mean[0]);
        snprintf(stdbuf, sizeof stdbuf, "%.6g", stdv[0]);
    } else {
        snprintf(meanbuf, sizeof meanbuf, "%.6g,%.6g,%.6g", mean[0], mean[1], mean[2]);
        snprintf(stdbuf, sizeof stdbuf, "%.6g,%.6g,%.6g", stdv[0], stdv[1], stdv[2]);
    }

    for (int ep = start_epoch; ep < o.epochs; ep++) {
        double t0 = tool_now(), loss_sum = 0, lr = 0;
        long correct = 0, seen = 0;
        /* With --steps-per-epoch the epoch stops early; starting the next
         * one discards the batches prefetched beyond it. */
        if (ss_loader_start_epoch(tl, (uint32_t)ep, &e)) tool_die_err(&e);
        for (size_t s = 0; s < spe; s++) {
            ss_batch b;
            next_batch(tl, &b);
            if (!b.n) continue;   /* every sample left out by --skip-corrupt */
            uint64_t gstep = ss_trainer_steps(t);
            lr = ss_lr_cosine(o.lr, o.min_lr, gstep, warm, total);
            ss_step_stats st;
            if (ss_trainer_step(t, b.x, b.y, b.n, lr, &st, &e))
                tool_die("epoch %d, step %zu: %s", ep + 1, s + 1, e.msg);
            loss_sum += st.loss * b.n;
            correct += st.correct;
            seen += b.n;
            tool_progress("epoch %d/%d  step %zu/%zu  loss %.4f  lr %.2e  %.0f img/s", ep + 1, o.epochs,
                          s + 1, spe, loss_sum / seen, lr, seen / (tool_now() - t0));
        }
        double secs = tool_now() - t0;
        double vacc = NAN;
        if (vl && evaluate(t, vl, ss_dataset_len(dva), &vacc, &e)) tool_die_err(&e);
        char row[256];
        snprintf(row, sizeof row, "%d\t%.6g\t%.6f\t%.4f\t%s\t%.1f\t%.1f\n", ep + 1, lr, loss_sum / seen,
                 (double)correct / seen, "", seen / secs, secs);
        if (dva) {
            char vs[32];
            snprintf(vs, sizeof vs, "%.4f", vacc);
            snprintf(row, sizeof row, "%d\t%.6g\t%.6f\t%.4f\t%s\t%.1f\t%.1f\n", ep + 1, lr, loss_sum / seen,
                     (double)correct / seen, vs, seen / secs, secs);
        } else {
            snprintf(row, sizeof row, "%d\t%.6g\t%.6f\t%.4f\t-\t%.1f\t%.1f\n", ep + 1, lr, loss_sum / seen,
                     (double)correct / seen, seen / secs, secs);
        }
        size_t rl = strlen(row);
        char *nr = realloc(rows, rows_len + rl + 1);
        if (!nr) tool_die("out of memory");
        rows = nr;
        memcpy(rows + rows_len, row, rl + 1);
        rows_len += rl;

        /* checkpoint: weights, optimizer state, identity, log — atomically */
        ss_record r;
        ss_record_init(&r);
        char *ck_rows = log_timing(rows, 1);
        if (ss_vit_save(&m, &r, "", m.params, &e) || ss_trainer_save_state(t, &r, &e) ||
            ss_vit_cfg_to_meta(&c, &r, &e) || ss_record_set_meta(&r, "ssta.mean", meanbuf, &e) ||
            ss_record_set_meta(&r, "ssta.std", stdbuf, &e) ||
            ss_record_set_meta(&r, "ssta.data", ss_dataset_spec(dtr), &e) ||
            ss_record_set_meta(&r, "ssta.run", ident, &e) ||
            ss_record_set_metaf(&r, &e, "ssta.epoch", "%d", ep + 1) ||
            ss_record_set_metaf(&r, &e, "ssta.seed", "%llu", (unsigned long long)o.seed) ||
            ss_record_set_meta(&r, "ssta.log", ck_rows, &e) ||
            ss_record_set_meta(&r, "ssta.producer", PRODUCER, &e) || ss_st_save(o.out, &r, &e))
            tool_die_err(&e);
        ss_record_free(&r);
        free(ck_rows);
        if (o.log) write_log(o.log, rows);
        tool_progress_end();
        fputs(row, stdout);
        fflush(stdout);
    }
done:
    for (int k = 0; k < 2; k++) {   /* --skip-corrupt's count */
        ss_err first;
        ss_loader *l = k ? vl : tl;
        if (l) tool_report_skipped(ss_dataset_spec(k ? dva : dtr), ss_loader_skipped(l, &first), &first);
    }
    free(rows);
    ss_loader_free(tl);
    ss_loader_free(vl);
    ss_trainer_free(t);
    ss_vit_free(&m);
    ss_transform_free(tf);
    ss_transform_free(tfv);
    ss_dataset_close(dtr);
    if (dva) ss_dataset_close(dva);
    ss_record_free(&init);
    return 0;
}
