/* distill-step — train a ViT: supervised; with head-level attention
 * distillation from cached (attn-dump) or online teachers, logits KD and
 * attention transfer, switched off at an early-stop epoch; or a linear probe
 * of a frozen backbone. Resumable, deterministic. See distill-step(1).
 *
 * Not here: the views (lib/views.c, shared with attn-dump), opening the KD
 * teachers and caches (lib/kdrun.c), the KD terms (lib/distill.c over
 * lib/kd.c), the caches (lib/attncache.c).
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "arch.h"
#include "data.h"
#include "distill.h"
#include "headrank.h"
#include "ident.h"
#include "io.h"
#include "kdrun.h"
#include "rng.h"
#include "safetensors.h"
#include "stream.h"
#include "tool.h"
#include "train.h"
#include "views.h"
#include "vit.h"

#define PRODUCER "distill-step 0.2"

typedef struct opts {
    const char *train, *val, *out, *log, *init, *aug, *dump_grads;
    tool_arch arch;
    int classes, head_blocks, head_pool;
    int epochs, batch, threads, loader_threads, steps_per_epoch;
    double lr, min_lr, wd, warmup, smoothing, drop_path, dropout, clip;
    uint64_t seed;
    int freeze, decay_tokens, bench, bench_steps, skip_corrupt;
    int sgd;            /* --optim sgd */
    double momentum;    /* SGD momentum */
    /* distillation: the terms (--attn-kd NAME=SOURCE with its --kd-head,
     * --kd-weight; --logit-kd, --tau, --logit-weight; --at-kd, --at-layers,
     * --at-weight), how messages name each source, --kd-dir as given */
    ss_kd_desc kd;
    char kd_label[SS_KD_MAX_SOURCES][48];
    const char *kd_dir;
    int kd_stop;
    double alpha;
} opts;

static void usage(void)
{
    printf(
        "Usage: distill-step [OPTIONS] --train SPEC -o CKPT\n"
        "Train a ViT on a dataset, supervised or with knowledge distillation, writing\n"
        "CKPT after every epoch. Restarted with the same command, it resumes from CKPT\n"
        "and ends with the same weights as an uninterrupted run. A TSV table (epoch, lr,\n"
        "loss, [ce, one column per KD term,] train_acc, val_acc, img_s, seconds) goes to\n"
        "stdout.\n"
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
        "  --head-pool avg|none [none]  the head also reads the mean of the last block's\n"
        "                       final-norm patch tokens (DINO's --avgpool_patchtokens;\n"
        "                       with --freeze-backbone and one block)\n"
        "Optimisation (defaults in brackets):\n"
        "  --epochs N [40]  --batch N [128]  --lr X [1e-3]  --min-lr X [1e-5]\n"
        "  --wd X [0.05]  --warmup EPOCHS [5]  --smoothing X [0.1]  --drop-path X [0.1]\n"
        "  --dropout X [0] (after pos-embed, attn.proj, GELU, fc2, as timm drop_rate)\n"
        "  --clip X [0 = off]   --decay-tokens (weight-decay cls_token/pos_embed)\n"
        "  --optim adamw|sgd [adamw]  --momentum X [0.9] (SGD; DINO's linear evaluation:\n"
        "                       --optim sgd --wd 0 --warmup 0 --min-lr 0 --smoothing 0)\n"
        "  --seed N [0]  --threads N [2]  --steps-per-epoch N (cap, for quick runs)\n"
        "  --loader-threads N [1]  threads decoding/augmenting batches ahead (no\n"
        "                       effect on the result)\n"
        "  --skip-corrupt       leave out samples that cannot be decoded (counted on\n"
        "                       stderr at the end)\n"
        "Distillation (loss = alpha*CE + sum of the terms; see distill-step(1)):\n"
        "  --attn-kd NAME=SRC   head-level attention KD from a teacher (up to %d): SRC is\n"
        "                       an attn-dump cache (FILE, or - for stdin) made for this\n"
        "                       run, or online:CKPT@SEL (the teacher run in each step,\n"
        "                       SEL as head-rank writes it: 3:2,4:0,5:5 or avg)\n"
        "  --kd-head NAME=H     the student head that imitates NAME's heads [the\n"
        "                       source's position: 0 for the first, 1 for the second]\n"
        "  --kd-weight NAME=W   its weight (beta, lambda) [1]\n"
        "  --kd-dir ts|st       KL(teacher||student) or KL(student||teacher) [ts]\n"
        "  --kd-stop E          the early stop: KD terms only in epochs 1..E [0 = all]\n"
        "  --alpha A            weight of the cross-entropy [1]\n"
        "  --logit-kd CKPT      logits KD (Hinton) from an online teacher:\n"
        "                       --tau T [4]  --logit-weight W [1]\n"
        "  --at-kd CKPT         attention transfer from an online teacher's block outputs:\n"
        "                       --at-layers L,L.. [the attention KD layers, else the last 3]\n"
        "                       --at-weight W [1000] (times the mean squared map distance)\n"
        "Output:\n"
        "  -o, --out CKPT       checkpoint (safetensors, timm names + optimizer state)\n"
        "  --log FILE           the TSV table, rewritten atomically each epoch\n"
        "  --dump-grads FILE    write the loss and all gradients of the first step as\n"
        "                       a stream (kind \"grads\") and exit\n"
        "  --bench              time training and inference steps on random inputs\n"
        "                       (--preset/--batch/--threads; --bench-steps N [20])\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error (incl. NaN loss), 2 usage error.\n",
        SS_KD_MAX_SOURCES);
}

enum {
    O_TRAIN = 256, O_VAL, O_LOG, O_INIT, O_AUG, O_DUMP,
    O_CLASSES, O_HEADBLK, O_HEADPOOL, O_EPOCHS, O_BATCH, O_THREADS, O_LTHREADS, O_SPE, O_LR,
    O_MINLR, O_WD, O_WARMUP, O_SMOOTH, O_DP, O_DO, O_CLIP, O_SEED, O_FREEZE, O_DECTOK, O_BENCH, O_BSTEPS,
    O_OPTIM, O_MOMENTUM, O_ATTNKD, O_KDHEAD, O_KDWEIGHT, O_KDDIR, O_KDSTOP, O_ALPHA, O_LOGITKD, O_TAU,
    O_LOGITW, O_ATKD, O_ATLAYERS, O_ATW, O_SKIP
};

/* NAME=VALUE of --attn-kd, --kd-head, --kd-weight: NAME is [a-z0-9_]+. */
static const char *split_name(const char *opt, const char *arg, char name[32])
{
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : 0;
    if (!eq || n == 0 || n >= 32 || !eq[1]) tool_usage_error("%s: expected NAME=VALUE, got '%s'", opt, arg);
    for (size_t i = 0; i < n; i++)
        if (!((arg[i] >= 'a' && arg[i] <= 'z') || (arg[i] >= '0' && arg[i] <= '9') || arg[i] == '_'))
            tool_usage_error("%s: name '%.*s' (letters a-z, digits, _)", opt, (int)n, arg);
    memcpy(name, arg, n);
    name[n] = 0;
    return eq + 1;
}

static ss_kd_attn_desc *find_kd(opts *o, const char *opt, const char *name)
{
    for (int i = 0; i < o->kd.nattn; i++)
        if (!strcmp(o->kd.attn[i].name, name)) return &o->kd.attn[i];
    tool_usage_error("%s: no --attn-kd %s=... before it", opt, name);
}

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"train", 1, 0, O_TRAIN}, {"val", 1, 0, O_VAL}, {"out", 1, 0, 'o'}, {"log", 1, 0, O_LOG},
        {"init", 1, 0, O_INIT}, TOOL_ARCH_OPTIONS, {"aug", 1, 0, O_AUG},
        {"dump-grads", 1, 0, O_DUMP}, {"classes", 1, 0, O_CLASSES}, {"head-blocks", 1, 0, O_HEADBLK},
        {"head-pool", 1, 0, O_HEADPOOL}, {"epochs", 1, 0, O_EPOCHS}, {"batch", 1, 0, O_BATCH},
        {"threads", 1, 0, O_THREADS}, {"loader-threads", 1, 0, O_LTHREADS}, {"steps-per-epoch", 1, 0, O_SPE}, {"lr", 1, 0, O_LR},
        {"min-lr", 1, 0, O_MINLR}, {"wd", 1, 0, O_WD}, {"warmup", 1, 0, O_WARMUP},
        {"smoothing", 1, 0, O_SMOOTH}, {"drop-path", 1, 0, O_DP}, {"dropout", 1, 0, O_DO}, {"clip", 1, 0, O_CLIP},
        {"seed", 1, 0, O_SEED}, {"freeze-backbone", 0, 0, O_FREEZE},
        {"decay-tokens", 0, 0, O_DECTOK}, {"bench", 0, 0, O_BENCH}, {"bench-steps", 1, 0, O_BSTEPS},
        {"optim", 1, 0, O_OPTIM}, {"momentum", 1, 0, O_MOMENTUM},
        {"attn-kd", 1, 0, O_ATTNKD}, {"kd-head", 1, 0, O_KDHEAD}, {"kd-weight", 1, 0, O_KDWEIGHT},
        {"kd-dir", 1, 0, O_KDDIR}, {"kd-stop", 1, 0, O_KDSTOP}, {"alpha", 1, 0, O_ALPHA},
        {"logit-kd", 1, 0, O_LOGITKD}, {"tau", 1, 0, O_TAU}, {"logit-weight", 1, 0, O_LOGITW},
        {"at-kd", 1, 0, O_ATKD}, {"at-layers", 1, 0, O_ATLAYERS}, {"at-weight", 1, 0, O_ATW},
        {"skip-corrupt", 0, 0, O_SKIP},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->epochs = 40; o->batch = 128; o->threads = 2; o->loader_threads = 1; o->lr = 1e-3; o->min_lr = 1e-5; o->wd = 0.05;
    o->warmup = 5; o->smoothing = 0.1; o->drop_path = 0.1; o->bench_steps = 20; o->head_blocks = 0;
    o->momentum = 0.9;
    o->kd_dir = "ts"; o->alpha = 1; o->kd.logit_tau = 4; o->kd.logit_weight = 1; o->kd.at_weight = 1000;
    int c;
    char name[32];
    while ((c = tool_getopt(argc, argv, "o:h", lo)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case 'o': o->out = optarg; break;
        case O_TRAIN: o->train = optarg; break;
        case O_VAL: o->val = optarg; break;
        case O_LOG: o->log = optarg; break;
        case O_INIT: o->init = optarg; break;
        case O_AUG: o->aug = optarg; break;
        case O_DUMP: o->dump_grads = optarg; break;
        case O_CLASSES: o->classes = (int)tool_parse_long("--classes", optarg, 1, 1000000); break;
        case O_HEADBLK: o->head_blocks = (int)tool_parse_long("--head-blocks", optarg, 1, 256); break;
        case O_HEADPOOL:
            if ((o->head_pool = ss_vit_pool_parse(optarg)) < 0)
                tool_usage_error("--head-pool: '%s' is not avg or none", optarg);
            break;
        case O_EPOCHS: o->epochs = (int)tool_parse_long("--epochs", optarg, 1, 100000); break;
        case O_BATCH: o->batch = (int)tool_parse_long("--batch", optarg, 1, 65536); break;
        case O_THREADS: o->threads = (int)tool_parse_long("--threads", optarg, 1, SS_MAX_WORKERS); break;
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
        case O_BSTEPS: o->bench_steps = (int)tool_parse_long("--bench-steps", optarg, 1, 100000); break;
        case O_OPTIM:
            if (!strcmp(optarg, "sgd")) o->sgd = 1;
            else if (!strcmp(optarg, "adamw")) o->sgd = 0;
            else tool_usage_error("--optim: '%s' (adamw or sgd)", optarg);
            break;
        case O_MOMENTUM: o->momentum = tool_parse_double("--momentum", optarg, 0, 1); break;
        case O_ATTNKD: {
            const char *src = split_name("--attn-kd", optarg, name);
            for (int i = 0; i < o->kd.nattn; i++)
                if (!strcmp(o->kd.attn[i].name, name)) tool_usage_error("--attn-kd: '%s' given twice", name);
            if (o->kd.nattn >= SS_KD_MAX_SOURCES) tool_usage_error("--attn-kd: at most %d teachers", SS_KD_MAX_SOURCES);
            ss_kd_attn_desc *k = &o->kd.attn[o->kd.nattn];
            snprintf(k->name, sizeof k->name, "%s", name);
            snprintf(o->kd_label[o->kd.nattn], sizeof o->kd_label[0], "--attn-kd %s", name);
            k->label = o->kd_label[o->kd.nattn++];
            k->source = src;
            k->student_head = -1;   /* defaults, resolved after parsing */
            k->weight = -1;
            break;
        }
        case O_KDHEAD: {
            const char *v = split_name("--kd-head", optarg, name);
            find_kd(o, "--kd-head", name)->student_head = (int)tool_parse_long("--kd-head", v, 0, 1023);
            break;
        }
        case O_KDWEIGHT: {
            const char *v = split_name("--kd-weight", optarg, name);
            find_kd(o, "--kd-weight", name)->weight = tool_parse_double("--kd-weight", v, 0, 1e6);
            break;
        }
        case O_KDDIR: o->kd_dir = optarg; break;
        case O_KDSTOP: o->kd_stop = (int)tool_parse_long("--kd-stop", optarg, 0, 100000); break;
        case O_ALPHA: o->alpha = tool_parse_double("--alpha", optarg, 1e-6, 1e6); break;
        case O_LOGITKD: o->kd.logit_teacher = optarg; break;
        case O_TAU: o->kd.logit_tau = tool_parse_double("--tau", optarg, 1e-3, 1e3); break;
        case O_LOGITW: o->kd.logit_weight = tool_parse_double("--logit-weight", optarg, 0, 1e6); break;
        case O_ATKD: o->kd.at_teacher = optarg; break;
        case O_ATLAYERS: o->kd.at_layers = optarg; break;
        case O_ATW: o->kd.at_weight = tool_parse_double("--at-weight", optarg, 0, 1e9); break;
        case O_SKIP: o->skip_corrupt = 1; break;
        default:
            if (!tool_arch_option(&o->arch, c, optarg)) tool_usage_error("unknown option");
        }
    }
    if (optind < argc) tool_usage_error("unexpected argument '%s'", argv[optind]);
    ss_err e;
    if (ss_kl_dir_parse(o->kd_dir, &o->kd.dir, &e)) tool_usage_error("--kd-dir: %s", e.msg);
    for (int i = 0; i < o->kd.nattn; i++) {   /* a source's head: its position; weight 1 */
        ss_kd_attn_desc *k = &o->kd.attn[i];
        if (k->student_head < 0) k->student_head = i;
        if (k->weight < 0) k->weight = 1;
    }
    if (o->bench) return;
    if (!o->train) tool_usage_error("--train SPEC is required");
    if (!o->out && !o->dump_grads) tool_usage_error("-o CKPT is required");
    if (o->freeze && !o->init) tool_usage_error("--freeze-backbone needs --init CKPT");
    if (o->head_blocks > 1 && !o->freeze) tool_usage_error("--head-blocks > 1 is for linear probing (--freeze-backbone)");
    if (o->head_pool && !o->freeze) tool_usage_error("--head-pool avg is for linear probing (--freeze-backbone)");
    if (o->head_pool && o->head_blocks > 1)
        tool_usage_error("--head-pool avg reads one block's class token (as DINO's eval_linear), not --head-blocks %d",
                         o->head_blocks);
    int kd = ss_kd_desc_any(&o->kd);
    if (kd && o->freeze) tool_usage_error("distillation and --freeze-backbone do not go together");
    if (o->kd_stop && !kd) tool_usage_error("--kd-stop without a distillation term");
    if (o->kd_stop > o->epochs) tool_usage_error("--kd-stop %d is beyond --epochs %d", o->kd_stop, o->epochs);
    int stdin_users = 0;
    for (int i = 0; i < o->kd.nattn; i++) stdin_users += !strcmp(o->kd.attn[i].source, "-");
    if (stdin_users > 1) tool_usage_error("--attn-kd: only one cache can come from standard input");
}

/* Architecture: preset, then --init's file, then explicit options. */
static void build_cfg(const opts *o, const ss_record *init, int data_classes, ss_vit_cfg *c)
{
    ss_err e;
    tool_arch_start(&o->arch, c);
    if (init) {
        if (ss_vit_cfg_from_record(init, c, &e)) tool_die("%s: %s", o->init, e.msg);
        if (o->freeze) {   /* a new head follows */
            c->num_classes = 0;
            c->head_pool = 0;
        } else if (c->head_pool) {
            tool_usage_error("%s has a head on pooled patch tokens, a linear probe: train it with --freeze-backbone",
                             o->init);
        }
    }
    tool_arch_override(&o->arch, c);
    if (o->classes) c->num_classes = o->classes;
    if (o->head_blocks) c->head_blocks = o->head_blocks;
    if (o->freeze && o->head_pool) {
        c->head_pool = 1;
        if (!o->head_blocks) c->head_blocks = 1;
    }
    if (c->num_classes <= 0) c->num_classes = data_classes;
    tool_arch_finish(c);
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
        if (ss_trainer_eval(t, x, NULL, o->batch, NULL, NULL, &e)) tool_die_err(&e);
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

/* ---------------------------------------------------------------- validation */

/* Validation batches: dataset order, the eval transform, the last batch short. */
static ss_loader *open_val(ss_dataset *d, const ss_transform *tf, const ss_vit_cfg *c, int batch, int threads,
                           int skip, ss_err *e)
{
    size_t n = ss_dataset_len(d);
    if (n == 0 || n > UINT32_MAX) {
        ss_fail(e, "%s: %s", ss_dataset_spec(d), n ? "too many samples" : "empty dataset");
        return NULL;
    }
    ss_loader_cfg lc = {.batch = batch, .seed = 0, .shuffle = 0, .drop_last = 0, .threads = threads,
                        .skip_corrupt = skip};
    return ss_loader_new(d, tf, &lc, c->img_size, c->img_size, c->in_chans, e);
}

/* Accuracy over the whole validation set (shared top-k rule, metrics.h). */
static int evaluate(ss_trainer *t, ss_loader *vl, double *acc, ss_err *e)
{
    if (ss_loader_start_epoch(vl, 0, e)) return -1;
    int rc;
    ss_topk tk;
    ss_topk_init(&tk);
    ss_batch b;
    while ((rc = ss_loader_next(vl, &b, e)) == 1)
        if (b.n && ss_trainer_eval(t, b.x, b.y, b.n, NULL, &tk, e)) return -1;
    if (rc < 0) return -1;
    if (tk.nonfinite) return ss_fail(e, "validation: non-finite logits for %ld images (first: image %ld)", tk.nonfinite, tk.first_bad);
    *acc = tk.n ? (double)tk.top1 / (double)tk.n : NAN;
    return 0;
}

/* ---------------------------------------------------------------- distillation */

/* Opens the KD terms for epochs [e0, e1) (lib/kdrun.h). The student heads
 * and --at-layers are checked here first, so that those usage errors name
 * the option as the user wrote it. */
static ss_kdrun *kd_open(const opts *o, ss_trainer *t, const ss_vit *s, const float *mean, const float *stdv,
                         const ss_ident *vid, uint32_t e0, uint32_t e1)
{
    ss_err e;
    const ss_vit_cfg *sc = &s->cfg;
    for (int i = 0; i < o->kd.nattn; i++)
        if (o->kd.attn[i].student_head >= sc->num_heads)
            tool_usage_error("--kd-head %s=%d: the student has heads 0..%d", o->kd.attn[i].name,
                             o->kd.attn[i].student_head, sc->num_heads - 1);
    if (o->kd.at_teacher && o->kd.at_layers) {
        int layers[SS_KD_MAX_LAYERS], nl;
        if (ss_layers_parse(o->kd.at_layers, sc->depth, layers, &nl, &e)) tool_usage_error("--at-layers: %s", e.msg);
    }
    ss_kdrun *k;
    int rc = ss_kdrun_open(&k, &o->kd, t, s, mean, stdv, vid, e0, e1, &e);
    if (rc == SS_KD_EUSAGE) tool_usage_error("%s", e.msg);
    if (rc) tool_die_err(&e);
    return k;
}

/* 1 if every file the distillation terms read exists (a cache from standard
 * input counts as absent: it cannot be read twice). */
static int kd_files_present(const opts *o)
{
    const ss_kd_desc *kd = &o->kd;
    char path[4096];
    for (int i = 0; i < kd->nattn; i++)
        if (!ss_kd_attn_file(&kd->attn[i], path, sizeof path) || access(path, R_OK)) return 0;
    return (!kd->logit_teacher || !access(kd->logit_teacher, R_OK)) &&
           (!kd->at_teacher || !access(kd->at_teacher, R_OK));
}

/* ---------------------------------------------------------------- identity */

/* The settings that determine the result: a resumed run must match them
 * ("field seed is 7, expected 8"). Loader threads are not among them. */
static void run_ident(const opts *o, const ss_ident *views, const char *val_spec, ss_ident *id)
{
    ss_err e;
    ss_ident_init(id);
    for (int i = 0; i < views->n; i++)
        if (ss_ident_add(id, &e, views->key[i], "%s", views->val[i])) tool_die_err(&e);
    int bad = ss_ident_add(id, &e, "val", "%s", val_spec ? val_spec : "") ||
              ss_ident_add(id, &e, "init", "%s", o->init ? o->init : "") ||
              ss_ident_add(id, &e, "epochs", "%d", o->epochs) || ss_ident_add(id, &e, "lr", "%.9g", o->lr) ||
              ss_ident_add(id, &e, "min_lr", "%.9g", o->min_lr) || ss_ident_add(id, &e, "wd", "%.9g", o->wd) ||
              ss_ident_add(id, &e, "warmup", "%.9g", o->warmup) ||
              ss_ident_add(id, &e, "smoothing", "%.9g", o->smoothing) ||
              ss_ident_add(id, &e, "drop_path", "%.9g", o->drop_path) ||
              ss_ident_add(id, &e, "dropout", "%.9g", o->dropout) || ss_ident_add(id, &e, "clip", "%.9g", o->clip) ||
              ss_ident_add(id, &e, "threads", "%d", o->threads) || ss_ident_add(id, &e, "freeze", "%d", o->freeze) ||
              ss_ident_add(id, &e, "decay_tokens", "%d", o->decay_tokens) ||
              ss_ident_add(id, &e, "optim", "%s", o->sgd ? "sgd" : "adamw") ||
              (o->sgd && ss_ident_add(id, &e, "momentum", "%.9g", o->momentum)) ||
              ss_ident_add(id, &e, "alpha", "%.9g", o->alpha);
    if (!bad && o->head_pool) bad = ss_ident_add(id, &e, "head_pool", "avg");
    if (!bad && o->skip_corrupt) bad = ss_ident_add(id, &e, "skip_corrupt", "1");
    const ss_kd_desc *kd = &o->kd;
    if (!bad && ss_kd_desc_any(kd))
        bad = ss_ident_add(id, &e, "kd_dir", "%s", o->kd_dir) || ss_ident_add(id, &e, "kd_stop", "%d", o->kd_stop);
    for (int i = 0; !bad && i < kd->nattn; i++) {
        char key[64];
        snprintf(key, sizeof key, "kd.%s", kd->attn[i].name);
        bad = ss_ident_add(id, &e, key, "head=%d weight=%.9g %s", kd->attn[i].student_head, kd->attn[i].weight,
                           strncmp(kd->attn[i].source, "online:", 7) ? "cache" : "online");
    }
    if (!bad && kd->logit_teacher)
        bad = ss_ident_add(id, &e, "logit_kd", "tau=%.9g weight=%.9g", kd->logit_tau, kd->logit_weight);
    if (!bad && kd->at_teacher)
        bad = ss_ident_add(id, &e, "at_kd", "layers=%s weight=%.9g", kd->at_layers ? kd->at_layers : "", kd->at_weight);
    if (bad) tool_die_err(&e);
}

#define RUN_PREFIX "ssta.run"

/* ---------------------------------------------------------------- the log */

typedef struct logtab {
    char header[512];
    char *rows;           /* the table so far (no header) */
    size_t len;
} logtab;

/* The KD columns, in the order of the distillation statistics (distill.h):
 * one per --attn-kd, then logits KD, then attention transfer. */
static int kd_columns(const opts *o) { return o->kd.nattn + !!o->kd.logit_teacher + !!o->kd.at_teacher; }

static void log_init(logtab *lt, const opts *o)
{
    size_t n = (size_t)snprintf(lt->header, sizeof lt->header, "epoch\tlr\tloss");
    if (kd_columns(o)) {
        n += (size_t)snprintf(lt->header + n, sizeof lt->header - n, "\tce");
        for (int k = 0; k < o->kd.nattn; k++)
            n += (size_t)snprintf(lt->header + n, sizeof lt->header - n, "\tkd_%s", o->kd.attn[k].name);
        if (o->kd.logit_teacher) n += (size_t)snprintf(lt->header + n, sizeof lt->header - n, "\tkd_logits");
        if (o->kd.at_teacher) n += (size_t)snprintf(lt->header + n, sizeof lt->header - n, "\tkd_at");
    }
    snprintf(lt->header + n, sizeof lt->header - n, "\ttrain_acc\tval_acc\timg_s\tseconds\n");
    lt->rows = calloc(1, 1);
    lt->len = 0;
    if (!lt->rows) tool_die("out of memory");
}

static void log_add(logtab *lt, const char *row)
{
    size_t rl = strlen(row);
    char *nr = realloc(lt->rows, lt->len + rl + 1);
    if (!nr) tool_die("out of memory");
    lt->rows = nr;
    memcpy(lt->rows + lt->len, row, rl + 1);
    lt->len += rl;
}

/* The checkpoint's ssta.log keeps the table without its timing columns
 * (img_s, seconds, always the last two), so that the same command writes
 * the same bytes; a resumed run shows '-' there for the epochs it did not
 * run. strip = 1: each row without its last two fields; strip = 0: each
 * row with "\t-\t-" appended. Returns a malloc'd copy. */
static char *log_timing(const char *rows, int strip)
{
    size_t n = strlen(rows), lines = 1;
    for (const char *p = rows; *p; p++) lines += *p == '\n';
    char *out = malloc(n + 4 * lines + 1), *q = out;
    if (!out) tool_die("out of memory");
    while (*rows) {
        const char *eol = strchr(rows, '\n');
        size_t len = eol ? (size_t)(eol - rows) : strlen(rows), keep = len;
        if (strip) {
            for (int cut = 0; cut < 2 && keep > 0; cut++)
                while (keep > 0 && rows[--keep] != '\t') {}
        }
        memcpy(q, rows, keep);
        q += keep;
        if (!strip) memcpy(q, "\t-\t-", 4), q += 4;
        if (eol) *q++ = '\n';
        rows += len + (eol ? 1 : 0);
    }
    *q = 0;
    return out;
}

static void log_write(const logtab *lt, const char *path)
{
    ss_afile a;
    ss_err e;
    if (ss_afile_open(&a, path, &e)) tool_die_err(&e);
    fputs(lt->header, a.f);
    fputs(lt->rows, a.f);
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);
}

/* ---------------------------------------------------------------- main */

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

    /* the training views (shared with attn-dump) and the validation batches */
    ss_views_cfg vc = {.aug = o.aug, .seed = o.seed, .batch = o.batch, .img = c.img_size, .chans = c.in_chans,
                       .steps_per_epoch = o.steps_per_epoch, .threads = o.loader_threads,
                       .skip_corrupt = o.skip_corrupt};
    memcpy(vc.mean, mean, sizeof mean);
    memcpy(vc.std, stdv, sizeof stdv);
    ss_views views;
    if (ss_views_open(&views, dtr, &vc, &e)) tool_die_err(&e);
    ss_ident vid;
    ss_ident_init(&vid);
    if (ss_views_ident(&views, &vc, &vid, &e) ||
        ss_ident_add(&vid, &e, "aug_params", "%s", ss_transform_describe(views.tf)))
        tool_die_err(&e);
    ss_transform *tfv = ss_transform_new("eval", c.img_size, c.img_size, c.in_chans, mean, stdv, &e);
    if (!tfv) tool_die_err(&e);
    ss_loader *vl = NULL;
    if (dva && !(vl = open_val(dva, tfv, &c, o.batch, o.loader_threads, o.skip_corrupt, &e))) tool_die_err(&e);

    ss_vit m;
    if (ss_vit_new(&m, &c, &e)) tool_die_err(&e);
    ss_vit_init_weights(&m, o.seed);
    if (o.init && ss_vit_load(&m, &init, "", m.params, o.freeze ? 2 : 1, &e)) tool_die("%s: %s", o.init, e.msg);

    ss_trainer_cfg tc = {0};
    tc.workers = o.threads; tc.batch = o.batch; tc.hin = tc.win = c.img_size;
    tc.label_smoothing = (float)o.smoothing; tc.ce_weight = (float)o.alpha; tc.drop_path = (float)o.drop_path;
    tc.drop_rate = (float)o.dropout;
    tc.clip = (float)o.clip; tc.freeze_backbone = o.freeze; tc.decay_tokens = o.decay_tokens;
    tc.seed = o.seed;
    ss_adamw_defaults(&tc.opt);
    tc.opt.wd = (float)o.wd;
    tc.sgd = o.sgd;
    tc.sgd_momentum = (float)o.momentum;
    ss_trainer *t = ss_trainer_new(&m, &tc, &e);
    if (!t) tool_die_err(&e);

    size_t spe = views.steps;
    uint64_t total = spe * (uint64_t)o.epochs, warm = (uint64_t)llround(o.warmup * spe);
    int has_kd = ss_kd_desc_any(&o.kd);
    int kd_end = has_kd ? (o.kd_stop ? o.kd_stop : o.epochs) : 0;   /* KD in epochs [0, kd_end) */
    ss_kdrun *kd = NULL;
    logtab lt = {0};

    if (o.dump_grads) {
        if (has_kd) kd = kd_open(&o, t, &m, mean, stdv, &vid, 0, 1);
        ss_batch b;
        if (ss_views_start_epoch(&views, 0, &e) || ss_views_next(&views, &b, &e) != 1) tool_die_err(&e);
        if (kd && ss_kdrun_feed(kd, &b, &e)) tool_die_err(&e);
        ss_step_stats st;
        if (ss_trainer_grad(t, b.x, b.y, b.n, &st, &e)) tool_die_err(&e);
        ss_record r;
        ss_record_init(&r);
        if (ss_stream_header(&r, SS_KIND_GRADS, PRODUCER, &e) ||
            ss_record_set_meta(&r, SS_META_DATA, ss_dataset_spec(dtr), &e) ||
            ss_record_set_metaf(&r, &e, SS_META_SEED, "%llu", (unsigned long long)o.seed) ||
            ss_vit_cfg_to_meta(&c, &r, &e))
            tool_die_err(&e);
        tool_refuse_tty_stdout(o.dump_grads);
        ss_swriter *w = ss_swriter_open(o.dump_grads, SS_ZSTD_DEFAULT, &e);
        if (!w || ss_swriter_put(w, &r, &e)) tool_die_err(&e);
        ss_record_free(&r);
        ss_record_init(&r);
        float lossf = (float)st.loss;
        int64_t noshape[1] = {0};
        if (!ss_record_add(&r, "loss", SS_F32, 0, noshape, &lossf, &e)) tool_die_err(&e);
        for (int k = 0; kd && k < ss_distill_nstats(ss_kdrun_distill(kd)); k++) {
            float v = (float)(st.user[k] / b.n);
            if (!ss_record_add(&r, ss_distill_stat_name(ss_kdrun_distill(kd), k), SS_F32, 0, noshape, &v, &e))
                tool_die_err(&e);
        }
        if (ss_vit_save(&m, &r, "grad.", ss_trainer_grads(t), &e) || ss_swriter_put(w, &r, &e) ||
            ss_swriter_close(w, &e))
            tool_die_err(&e);
        ss_record_free(&r);
        goto done;
    }

    /* resume: the checkpoint must be this run's */
    ss_ident id;
    run_ident(&o, &vid, dva ? ss_dataset_spec(dva) : NULL, &id);
    ss_record prev;
    ss_record_init(&prev);
    int start_epoch = 0, resumed = 0;
    const char *prev_log = NULL;
    if (tool_resume_from(o.out)) {
        if (ss_st_load(o.out, &prev, &e)) tool_die("cannot resume: %s", e.msg);
        if (!ss_record_meta(&prev, RUN_PREFIX ".data"))
            tool_die("%s exists and is not a distill-step checkpoint of this version; remove it or choose another -o", o.out);
        if (ss_ident_check(&id, &prev, RUN_PREFIX, &e))
            tool_die("%s is from a different run (%s); remove it or choose another -o", o.out, e.msg);
        const char *pp = ss_record_meta(&prev, SS_META_HEADPOOL);
        if ((pp ? ss_vit_pool_parse(pp) : 0) != c.head_pool)
            tool_die("%s is from a different run (its head %s pooled patch tokens, this command's %s); remove it or "
                     "choose another -o", o.out, pp ? "reads" : "does not read", c.head_pool ? "does" : "does not");
        if (ss_vit_load(&m, &prev, "", m.params, 0, &e) || ss_trainer_load_state(t, &prev, &e))
            tool_die("%s: %s", o.out, e.msg);
        const char *ep = ss_record_meta(&prev, SS_META_EPOCH);
        start_epoch = ep ? atoi(ep) : 0;
        prev_log = ss_record_meta(&prev, SS_META_LOG);
        resumed = 1;
    }
    /* the teachers' identity: from the files opened now, and for the teachers
     * of epochs this process does not run, as the checkpoint has it */
    ss_ident late;
    ss_ident_init(&late);
    /* Past the distillation's epochs (a finished run, or one resumed after
     * the early stop) the teachers are not needed; when their files are all
     * still there they are opened for their last epoch anyway, so that a
     * finished run handed another teacher or cache says so instead of
     * printing the old result. The objective is switched off before any
     * step (the early stop in the loop, or no loop at all). */
    int kd_check_only = has_kd && start_epoch >= kd_end && kd_files_present(&o);
    if (has_kd && (start_epoch < kd_end || kd_check_only)) {
        uint32_t e0 = kd_check_only ? (uint32_t)kd_end - 1 : (uint32_t)start_epoch;
        kd = kd_open(&o, t, &m, mean, stdv, &vid, e0, (uint32_t)kd_end);
        const ss_ident *ki = ss_kdrun_ident(kd);
        if (resumed && ss_ident_check(ki, &prev, RUN_PREFIX, &e))
            tool_die("%s is from a different run (%s); remove it or choose another -o", o.out, e.msg);
        for (int i = 0; i < ki->n; i++)
            if (ss_ident_add(&late, &e, ki->key[i], "%s", ki->val[i])) tool_die_err(&e);
    }
    for (int i = 0; i < prev.nmeta; i++)
        if (!strncmp(prev.mkey[i], RUN_PREFIX ".kd.", strlen(RUN_PREFIX ".kd.")) ||
            !strncmp(prev.mkey[i], RUN_PREFIX ".logit_kd.", strlen(RUN_PREFIX ".logit_kd.")) ||
            !strncmp(prev.mkey[i], RUN_PREFIX ".at_kd.", strlen(RUN_PREFIX ".at_kd."))) {
            const char *k = prev.mkey[i] + strlen(RUN_PREFIX) + 1;
            if (!ss_ident_get(&late, k) && !ss_ident_get(&id, k) && ss_ident_add(&late, &e, k, "%s", prev.mval[i]))
                tool_die_err(&e);
        }
    for (int i = 0; i < late.n; i++)
        if (ss_ident_add(&id, &e, late.key[i], "%s", late.val[i])) tool_die_err(&e);
    ss_ident_free(&late);

    log_init(&lt, &o);
    if (prev_log) {
        char *full = log_timing(prev_log, 0);
        log_add(&lt, full);
        free(full);
    }
    printf("%s%s", lt.header, lt.rows);
    fflush(stdout);
    if (start_epoch >= o.epochs) {
        if (start_epoch > 0 && tool_isatty(2)) tool_warn("%s: already trained for %d epochs", o.out, start_epoch);
        ss_ident_free(&id);
        goto done_resume;
    }

    int nterm = kd_columns(&o);   /* the distillation's statistics, when it runs */
    for (int ep = start_epoch; ep < o.epochs; ep++) {
        if (kd && ep >= kd_end) ss_kdrun_stop(kd);   /* the early stop */
        double t0 = tool_now(), loss_sum = 0, lr = 0, term[SS_STATS_MAX] = {0};
        long correct = 0, seen = 0;
        if (ss_views_start_epoch(&views, (uint32_t)ep, &e)) tool_die_err(&e);
        for (size_t s = 0; s < spe; s++) {
            ss_batch b;
            int rc = ss_views_next(&views, &b, &e);
            if (rc < 0) tool_die_err(&e);
            if (rc == 0) tool_die("internal error: epoch %d ended after %zu of %zu batches", ep + 1, s, spe);
            if (!b.n) continue;   /* every sample left out by --skip-corrupt */
            if (kd && ss_kdrun_feed(kd, &b, &e)) tool_die_err(&e);
            lr = ss_lr_cosine(o.lr, o.min_lr, ss_trainer_steps(t), warm, total);
            ss_step_stats st;
            if (ss_trainer_step(t, b.x, b.y, b.n, lr, &st, &e))
                tool_die("epoch %d, step %zu: %s", ep + 1, s + 1, e.msg);
            loss_sum += st.loss * b.n;
            for (int k = 0; k < nterm; k++) term[k] += st.user[k];
            correct += st.correct;
            seen += b.n;
            double el = tool_now() - t0;
            char left[32];
            tool_time_left(left, sizeof left, (double)(s + 1), el,
                           (double)(spe - s - 1) + (double)(o.epochs - ep - 1) * spe);
            tool_progress("epoch %d/%d  step %zu/%zu  loss %.4f  lr %.2e  %.0f img/s  left %s", ep + 1, o.epochs, s + 1,
                          spe, loss_sum / seen, lr, seen / el, left);
        }
        double secs = tool_now() - t0;
        double vacc = NAN;
        if (vl && evaluate(t, vl, &vacc, &e)) tool_die_err(&e);
        char row[1024], vs[32];
        size_t n = (size_t)snprintf(row, sizeof row, "%d\t%.6g\t%.6f", ep + 1, lr, loss_sum / seen);
        if (nterm) {
            double kdsum = 0;
            for (int k = 0; k < nterm; k++) kdsum += term[k];
            n += (size_t)snprintf(row + n, sizeof row - n, "\t%.6f", (loss_sum - kdsum) / seen);
            for (int k = 0; k < nterm; k++) n += (size_t)snprintf(row + n, sizeof row - n, "\t%.6f", term[k] / seen);
        }
        if (dva) snprintf(vs, sizeof vs, "%.4f", vacc);
        else snprintf(vs, sizeof vs, "-");
        snprintf(row + n, sizeof row - n, "\t%.4f\t%s\t%.1f\t%.1f\n", (double)correct / seen, vs, seen / secs, secs);
        log_add(&lt, row);

        /* checkpoint: weights, optimizer state, identity, log — atomically */
        ss_record r;
        ss_record_init(&r);
        char *ck_rows = log_timing(lt.rows, 1);
        if (ss_vit_save(&m, &r, "", m.params, &e) || ss_trainer_save_state(t, &r, &e) ||
            ss_vit_cfg_to_meta(&c, &r, &e) || ss_norm_to_meta(&r, c.in_chans, mean, stdv, &e) ||
            ss_record_set_meta(&r, SS_META_DATA, ss_dataset_spec(dtr), &e) ||
            ss_ident_to_meta(&id, &r, RUN_PREFIX, &e) ||
            ss_record_set_metaf(&r, &e, SS_META_EPOCH, "%d", ep + 1) ||
            ss_record_set_metaf(&r, &e, SS_META_SEED, "%llu", (unsigned long long)o.seed) ||
            ss_record_set_meta(&r, SS_META_LOG, ck_rows, &e) ||
            ss_record_set_meta(&r, SS_META_PRODUCER, PRODUCER, &e) || ss_st_save(o.out, &r, &e))
            tool_die_err(&e);
        free(ck_rows);
        ss_record_free(&r);
        if (o.log) log_write(&lt, o.log);
        tool_progress_end();
        fputs(row, stdout);
        fflush(stdout);
    }
    ss_ident_free(&id);
done_resume:
    ss_record_free(&prev);
done:
    if (o.skip_corrupt) {   /* --skip-corrupt's count */
        ss_err first;
        tool_report_skipped(ss_dataset_spec(dtr), ss_loader_skipped(views.loader, &first), &first);
        if (vl) tool_report_skipped(ss_dataset_spec(dva), ss_loader_skipped(vl, &first), &first);
    }
    ss_kdrun_close(kd);
    free(lt.rows);
    ss_ident_free(&vid);
    ss_views_close(&views);
    ss_loader_free(vl);
    ss_trainer_free(t);
    ss_vit_free(&m);
    ss_transform_free(tfv);
    ss_dataset_close(dtr);
    if (dva) ss_dataset_close(dva);
    ss_record_free(&init);
    return 0;
}
