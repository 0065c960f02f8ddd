/* dino-train — self-supervised DINO training of a ViT backbone (a student,
 * its EMA teacher and the DINO projection head over multi-crop views),
 * resumable and deterministic, with a k-NN monitor of the teacher after
 * every epoch. See dino-train(1); the algorithm is lib/dino.h.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "data.h"
#include "dino.h"
#include "io.h"
#include "knn.h"
#include "md5.h"
#include "rng.h"
#include "runner.h"
#include "safetensors.h"
#include "tool.h"
#include "vit.h"

#define PRODUCER "dino-train 0.1"

typedef struct opts {
    const char *train, *val, *knn_train, *out, *teacher_out, *log, *crops, *init;
    tool_arch arch;
    int global, local, nlocal;
    int out_dim, hidden, bottleneck, norm_last;
    double student_temp, teacher_temp, warm_tt, center_m, momentum;
    int warm_tt_epochs;
    double lr, min_lr, wd, wd_end, clip, drop_path, warmup;
    double freeze_last;
    int epochs, stop_after, batch, threads, loader_threads, steps_per_epoch, knn_k, eval_batch;
    long save_every, stop_at_step;
    double knn_t;
    uint64_t seed;
    int bench, bench_steps, bench_parts;
} opts;

static void usage(void)
{
    printf(
        "Usage: dino-train [OPTIONS] --train SPEC -o STATE\n"
        "Self-supervised DINO training of a ViT backbone (no labels used), writing\n"
        "STATE (student, teacher, heads, centre, optimizer) after every epoch.\n"
        "Restarted with the same command, it resumes from STATE and ends with the\n"
        "same bytes as an uninterrupted run. A TSV table goes to stdout: epoch, lr,\n"
        "wd, momentum, teacher_temp, loss, t_entropy, t_kl_uniform, t_mean_entropy,\n"
        "knn_top1, knn_pool_top1, img_s, seconds.\n"
        "\n"
        "Data and views:\n"
        "  --train SPEC         training images (labels are ignored)\n"
        "  --crops RECIPE       multi-crop recipe [dino] (ssta-data(5)), e.g.\n"
        "                       dino,global-scale=0.5:1,local-scale=0.2:0.5,blur=0\n"
        "  --global N           global view side [the model's img_size]\n"
        "  --local N [16]       local view side   --local-crops N [2]\n"
        "k-NN monitor (teacher class token, and the mean of its patch tokens; cosine,\n"
        "DINO's weighted vote):\n"
        "  --val SPEC           queries, evaluated before training and after each epoch\n"
        "  --knn-train SPEC     memory [--train]  --knn-k N [20]  --knn-t X [0.07]\n"
        "Model:\n"
        "  --preset NAME        fmnist-teacher, fmnist-student, deit-small, ... (the\n"
        "                       classifier is dropped)\n"
        "  --img N --patch N --chans N --dim N --depth N --heads N --mlp-ratio X\n"
        "  --init CKPT          start student and teacher from this backbone (timm\n"
        "                       names; its classifier or probe is ignored, the DINO\n"
        "                       head starts fresh); architecture and normalisation\n"
        "                       from the file\n"
        "Head (DINOHead):\n"
        "  --out-dim K [4096]  --head-hidden N [2048]  --head-bottleneck N [256]\n"
        "  --norm-last-layer 0|1 [1]  (1: weight_g fixed at 1)\n"
        "Loss and teacher:\n"
        "  --student-temp X [0.1]  --teacher-temp X [0.04]\n"
        "  --warmup-teacher-temp X [= --teacher-temp]  --warmup-teacher-temp-epochs N [0]\n"
        "  --center-momentum X [0.9]  --momentum-teacher X [0.996] (cosine to 1)\n"
        "Optimisation (AdamW; lr is absolute, not scaled by the batch):\n"
        "  --epochs N [100]  --batch N [64]  --lr X [5e-4]  --min-lr X [1e-6]\n"
        "  --stop-after N       leave (status 0) once epoch N's state is written; the\n"
        "                       schedules stay those of --epochs, and the same command\n"
        "                       without it (or with a larger N) continues the run\n"
        "  --stop-at-step N     the same after the run's step N (counted from its start),\n"
        "                       mid-epoch too\n"
        "  --warmup-epochs X [10]  --wd X [0.04]  --wd-end X [0.4]  --clip X [3.0]\n"
        "  --freeze-last-layer X [1] (epochs)  --drop-path X [0.1]\n"
        "  --seed N [0]  --threads N [2]  --loader-threads N [1]\n"
        "  --steps-per-epoch N  (cap, for quick runs)  --eval-batch N [256]\n"
        "Output:\n"
        "  -o, --out STATE      full training state (safetensors), rewritten each epoch\n"
        "  --save-every N       also rewrite it after every N-th step [0: at epoch ends\n"
        "                       only]; a resume continues from there, with the same bytes\n"
        "  --teacher-out FILE   the teacher backbone alone (timm names, no classifier)\n"
        "  --log FILE           the TSV table, rewritten atomically each epoch\n"
        "  --bench              time one step and its parts on random views\n"
        "                       (--bench-steps N [5], --bench-parts 0|1 [1]); TSV to stdout\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error (incl. NaN loss), 2 usage error.\n");
}

enum {
    O_TRAIN = 256, O_VAL, O_KNNTR, O_TOUT, O_LOG, O_CROPS, O_GLOBAL, O_LOCAL, O_NLOCAL, O_OUTDIM, O_HID, O_BOT,
    O_NORMLAST, O_STEMP,
    O_TTEMP, O_WTT, O_WTTE, O_CM, O_MOM, O_LR, O_MINLR, O_WD, O_WDE, O_CLIP, O_DP, O_WARM, O_FREEZE,
    O_EPOCHS, O_BATCH, O_THREADS, O_LTHREADS, O_SPE, O_KNNK, O_KNNT, O_EVB, O_SEED, O_BENCH, O_BSTEPS, O_BPARTS, O_STOP,
    O_INIT, O_SAVEEV, O_STOPSTEP
};

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"train", 1, 0, O_TRAIN}, {"val", 1, 0, O_VAL}, {"knn-train", 1, 0, O_KNNTR},
        {"out", 1, 0, 'o'}, {"teacher-out", 1, 0, O_TOUT}, {"log", 1, 0, O_LOG},
        TOOL_ARCH_OPTIONS, {"init", 1, 0, O_INIT}, {"crops", 1, 0, O_CROPS},
        {"global", 1, 0, O_GLOBAL}, {"local", 1, 0, O_LOCAL}, {"local-crops", 1, 0, O_NLOCAL},
        {"out-dim", 1, 0, O_OUTDIM}, {"head-hidden", 1, 0, O_HID}, {"head-bottleneck", 1, 0, O_BOT},
        {"norm-last-layer", 1, 0, O_NORMLAST}, {"student-temp", 1, 0, O_STEMP},
        {"teacher-temp", 1, 0, O_TTEMP}, {"warmup-teacher-temp", 1, 0, O_WTT},
        {"warmup-teacher-temp-epochs", 1, 0, O_WTTE}, {"center-momentum", 1, 0, O_CM},
        {"momentum-teacher", 1, 0, O_MOM}, {"lr", 1, 0, O_LR}, {"min-lr", 1, 0, O_MINLR},
        {"wd", 1, 0, O_WD}, {"wd-end", 1, 0, O_WDE}, {"clip", 1, 0, O_CLIP},
        {"drop-path", 1, 0, O_DP}, {"warmup-epochs", 1, 0, O_WARM},
        {"freeze-last-layer", 1, 0, O_FREEZE}, {"epochs", 1, 0, O_EPOCHS}, {"batch", 1, 0, O_BATCH},
        {"stop-after", 1, 0, O_STOP}, {"stop-at-step", 1, 0, O_STOPSTEP}, {"save-every", 1, 0, O_SAVEEV},
        {"threads", 1, 0, O_THREADS}, {"loader-threads", 1, 0, O_LTHREADS},
        {"steps-per-epoch", 1, 0, O_SPE}, {"knn-k", 1, 0, O_KNNK}, {"knn-t", 1, 0, O_KNNT},
        {"eval-batch", 1, 0, O_EVB}, {"seed", 1, 0, O_SEED}, {"bench", 0, 0, O_BENCH},
        {"bench-steps", 1, 0, O_BSTEPS}, {"bench-parts", 1, 0, O_BPARTS}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->crops = "dino";
    o->local = 16; o->nlocal = 2;
    o->out_dim = 4096; o->hidden = 2048; o->bottleneck = 256; o->norm_last = 1;
    o->student_temp = 0.1; o->teacher_temp = 0.04; o->warm_tt = -1; o->center_m = 0.9; o->momentum = 0.996;
    o->lr = 5e-4; o->min_lr = 1e-6; o->wd = 0.04; o->wd_end = 0.4; o->clip = 3.0; o->drop_path = 0.1;
    o->warmup = 10; o->freeze_last = 1;
    o->epochs = 100; o->batch = 64; o->threads = 2; o->loader_threads = 1; o->knn_k = 20; o->knn_t = 0.07;
    o->eval_batch = 256; o->bench_steps = 5; o->bench_parts = 1;
    int c;
    while ((c = tool_getopt(argc, argv, "o:h", lo)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case 'o': o->out = optarg; break;
        case O_TRAIN: o->train = optarg; break;
        case O_VAL: o->val = optarg; break;
        case O_INIT: o->init = optarg; break;
        case O_KNNTR: o->knn_train = optarg; break;
        case O_TOUT: o->teacher_out = optarg; break;
        case O_LOG: o->log = optarg; break;
        case O_CROPS: o->crops = optarg; break;
        case O_GLOBAL: o->global = (int)tool_parse_long("--global", optarg, 1, 8192); break;
        case O_LOCAL: o->local = (int)tool_parse_long("--local", optarg, 1, 8192); break;
        case O_NLOCAL: o->nlocal = (int)tool_parse_long("--local-crops", optarg, 0, SS_PASS_MAX - 4); break;
        case O_OUTDIM: o->out_dim = (int)tool_parse_long("--out-dim", optarg, 1, 1 << 20); break;
        case O_HID: o->hidden = (int)tool_parse_long("--head-hidden", optarg, 1, 65536); break;
        case O_BOT: o->bottleneck = (int)tool_parse_long("--head-bottleneck", optarg, 1, 65536); break;
        case O_NORMLAST: o->norm_last = (int)tool_parse_long("--norm-last-layer", optarg, 0, 1); break;
        case O_STEMP: o->student_temp = tool_parse_double("--student-temp", optarg, 1e-4, 100); break;
        case O_TTEMP: o->teacher_temp = tool_parse_double("--teacher-temp", optarg, 1e-4, 100); break;
        case O_WTT: o->warm_tt = tool_parse_double("--warmup-teacher-temp", optarg, 1e-4, 100); break;
        case O_WTTE: o->warm_tt_epochs = (int)tool_parse_long("--warmup-teacher-temp-epochs", optarg, 0, 100000); break;
        case O_CM: o->center_m = tool_parse_double("--center-momentum", optarg, 0, 1); break;
        case O_MOM: o->momentum = tool_parse_double("--momentum-teacher", optarg, 0, 1); break;
        case O_LR: o->lr = tool_parse_double("--lr", optarg, 0, 10); break;
        case O_MINLR: o->min_lr = tool_parse_double("--min-lr", optarg, 0, 10); break;
        case O_WD: o->wd = tool_parse_double("--wd", optarg, 0, 10); break;
        case O_WDE: o->wd_end = tool_parse_double("--wd-end", optarg, 0, 10); break;
        case O_CLIP: o->clip = tool_parse_double("--clip", optarg, 0, 1e9); break;
        case O_DP: o->drop_path = tool_parse_double("--drop-path", optarg, 0, 0.99); break;
        case O_WARM: o->warmup = tool_parse_double("--warmup-epochs", optarg, 0, 100000); break;
        case O_FREEZE: o->freeze_last = tool_parse_double("--freeze-last-layer", optarg, 0, 100000); break;
        case O_EPOCHS: o->epochs = (int)tool_parse_long("--epochs", optarg, 1, 100000); break;
        case O_STOP: o->stop_after = (int)tool_parse_long("--stop-after", optarg, 1, 100000); break;
        case O_STOPSTEP: o->stop_at_step = tool_parse_long("--stop-at-step", optarg, 1, 1L << 40); break;
        case O_SAVEEV: o->save_every = tool_parse_long("--save-every", optarg, 0, 1L << 40); break;
        case O_BATCH: o->batch = (int)tool_parse_long("--batch", optarg, 1, 65536); break;
        case O_THREADS: o->threads = (int)tool_parse_long("--threads", optarg, 1, SS_MAX_WORKERS); break;
        case O_LTHREADS: o->loader_threads = (int)tool_parse_long("--loader-threads", optarg, 1, 64); break;
        case O_SPE: o->steps_per_epoch = (int)tool_parse_long("--steps-per-epoch", optarg, 1, 100000000); break;
        case O_KNNK: o->knn_k = (int)tool_parse_long("--knn-k", optarg, 1, 100000); break;
        case O_KNNT: o->knn_t = tool_parse_double("--knn-t", optarg, 1e-6, 1e6); break;
        case O_EVB: o->eval_batch = (int)tool_parse_long("--eval-batch", optarg, 1, 65536); break;
        case O_SEED: o->seed = tool_parse_u64("--seed", optarg); break;
        case O_BENCH: o->bench = 1; break;
        case O_BSTEPS: o->bench_steps = (int)tool_parse_long("--bench-steps", optarg, 1, 100000); break;
        case O_BPARTS: o->bench_parts = (int)tool_parse_long("--bench-parts", optarg, 0, 1); break;
        default:
            if (!tool_arch_option(&o->arch, c, optarg)) tool_usage_error("unknown option");
        }
    }
    if (optind < argc) tool_usage_error("unexpected argument '%s'", argv[optind]);
    if (o->warm_tt < 0) o->warm_tt = o->teacher_temp;
    if (o->bench && o->init) tool_usage_error("--bench times random weights: --init has no use there");
    if (o->bench) return;
    if (!o->train) tool_usage_error("--train SPEC is required");
    if (!o->out) tool_usage_error("-o STATE is required");
    if (o->knn_train && !o->val) tool_usage_error("--knn-train needs --val (the k-NN queries)");
}

/* Architecture: --preset, then --init's file (a plain timm file takes its
 * head count from the preset), then explicit options; never a classifier. */
static void build_cfg(const opts *o, const ss_record *init, ss_vit_cfg *c)
{
    ss_err e;
    tool_arch_start(&o->arch, c);
    if (init) {
        if (ss_vit_cfg_from_record(init, c, &e)) tool_die("%s: %s", o->init, e.msg);
        c->head_pool = 0;
    }
    tool_arch_override(&o->arch, c);
    c->num_classes = 0;
    c->head_blocks = 1;
    if (!c->in_chans) c->in_chans = 1;   /* before the defaults, which would make it 3 */
    tool_arch_finish(c);
}

static void fill_dino_cfg(const opts *o, const ss_vit_cfg *c, ss_dino_cfg *dc)
{
    memset(dc, 0, sizeof *dc);
    dc->workers = o->threads;
    dc->batch = o->batch;
    dc->global = o->global ? o->global : c->img_size;
    dc->local = o->local;
    dc->nlocal = o->nlocal;
    dc->head = (ss_dino_head_cfg){.in_dim = c->embed_dim, .hidden = o->hidden, .bottleneck = o->bottleneck,
                                  .out_dim = o->out_dim, .norm_last_layer = o->norm_last};
    dc->student_temp = (float)o->student_temp;
    dc->center_momentum = (float)o->center_m;
    dc->drop_path = (float)o->drop_path;
    dc->clip = (float)o->clip;
    dc->seed = o->seed;
    ss_adamw_defaults(&dc->opt);
}

/* ---------------------------------------------------------------- k-NN monitor */

typedef struct knn_eval {
    ss_dataset *dm, *dq;      /* memory, queries */
    ss_loader *lm, *lq;
    float *fm, *fq;           /* class tokens */
    float *pm, *pq;           /* pooled patch tokens */
    int32_t *ym, *yq;
    int slot, nclasses;
} knn_eval;

/* The monitor's feature passes on a terminal: "k-NN memory 4096/10000". */
static void knn_progress(void *what, size_t done, size_t n)
{
    tool_progress("k-NN %s %zu/%zu", (const char *)what, done, n);
}

/* k-NN top-1 of the class token (acc[0]) and of the pooled patch tokens
 * (acc[1]), from the same forward passes. */
static void knn_top1(const opts *o, knn_eval *k, ss_runner *r, const ss_vit *m, const float *params,
                     double acc[2])
{
    ss_err e;
    size_t nm = ss_dataset_len(k->dm), nq = ss_dataset_len(k->dq);
    if (ss_knn_features(r, k->slot, m, params, k->lm, nm, k->fm, k->pm, k->ym, knn_progress, (void *)"memory", &e) ||
        ss_knn_features(r, k->slot, m, params, k->lq, nq, k->fq, k->pq, k->yq, knn_progress, (void *)"queries", &e))
        tool_die("k-NN features: %s", e.msg);
    tool_progress_end();
    for (int i = 0; i < 2; i++) {
        long hits;
        if (ss_knn_classify(i ? k->pm : k->fm, k->ym, nm, i ? k->pq : k->fq, k->yq, nq, m->cfg.embed_dim,
                            k->nclasses, o->knn_k, o->knn_t, NULL, &hits, &e))
            tool_die("k-NN%s: %s", i ? " (pooled patch tokens)" : "", e.msg);
        acc[i] = (double)hits / (double)nq;
    }
}

/* ---------------------------------------------------------------- bench */

static int bench(const opts *o)
{
    ss_vit_cfg c;
    build_cfg(o, NULL, &c);
    ss_err e;
    ss_vit m;
    if (ss_vit_new(&m, &c, &e)) tool_die_err(&e);
    ss_vit_init_weights(&m, o->seed);
    ss_dino_cfg dc;
    fill_dino_cfg(o, &c, &dc);
    ss_dino *d = ss_dino_new(&m, &dc, &e);
    if (!d) tool_die_err(&e);
    int V = 2 + o->nlocal, B = o->batch;
    float *views[SS_PASS_MAX];
    ss_rng rng = ss_rng_key(1, 99, 0, 0, 0);
    for (int v = 0; v < V; v++) {
        int s = v < 2 ? dc.global : dc.local;
        size_t n = (size_t)B * c.in_chans * s * s;
        if (!(views[v] = malloc(n * sizeof(float)))) tool_die("out of memory");
        for (size_t i = 0; i < n; i++) views[v][i] = (float)ss_rng_normal(&rng);
    }
    ss_dino_sched s = {.lr = 1e-5, .wd = 0.04, .teacher_temp = 0.04, .momentum = 0.996};
    ss_dino_stats st;
    if (ss_dino_step(d, views, B, &s, &st, &e)) tool_die_err(&e);
    double t0 = tool_now();
    for (int i = 0; i < o->bench_steps; i++)
        if (ss_dino_step(d, views, B, &s, &st, &e)) tool_die_err(&e);
    double step = (tool_now() - t0) / o->bench_steps;
    /* parts, on the same runner: teacher forwards, student globals fwd+bwd,
     * student locals fwd+bwd (no objective: backward from a zero gradient
     * costs what the real one does) */
    ss_runner *r = ss_dino_runner(d);
    int sg = ss_runner_slot(r, &m, B, dc.global, dc.global, -1, &e);
    if (sg < 0) tool_die_err(&e);
    double part[3] = {0, 0, 0};
    for (int k = 0; k < 3 && o->bench_parts; k++) {
        ss_pass p;
        memset(&p, 0, sizeof p);
        p.B = B;
        p.run = (ss_vit_run){.train = 1, .drop_path = dc.drop_path, .seed = 1};
        if (k == 0) {
            p.item[p.nitems++] = (ss_pass_item){.slot = sg, .params = ss_dino_teacher(d), .x = views[0]};
        } else {
            /* slots 0..V-1 are the student's views (ss_dino_new creates them first) */
            for (int v = (k == 1 ? 0 : 2); v < (k == 1 ? 2 : V); v++)
                p.item[p.nitems++] = (ss_pass_item){.slot = v, .x = views[v], .train = 1, .backward = 1,
                                                    .key = (uint32_t)v};
        }
        if (p.nitems == 0) continue;
        double t1 = tool_now();
        for (int i = 0; i < o->bench_steps; i++)
            if (ss_runner_pass(r, &p, &e)) tool_die_err(&e);
        part[k] = (tool_now() - t1) / o->bench_steps * (k == 0 ? 2 : 1);
    }
    double head = o->bench_parts ? step - part[0] - part[1] - part[2] : 0;
    printf("impl\tdim\tdepth\theads\tglobal\tlocal\tnlocal\tout_dim\thidden\tbatch\tthreads\tstep_s\timg_s\t"
           "teacher_fwd_s\tstudent_global_s\tstudent_local_s\thead_loss_optim_s\n");
    printf("ssta\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.4f\t%.1f\t%.4f\t%.4f\t%.4f\t%.4f\n", c.embed_dim, c.depth,
           c.num_heads, dc.global, dc.local, o->nlocal, o->out_dim, o->hidden, B, o->threads, step, B / step,
           part[0], part[1], part[2], head);
    for (int v = 0; v < V; v++) free(views[v]);
    ss_dino_free(d);
    ss_vit_free(&m);
    return 0;
}

/* ---------------------------------------------------------------- log */

/* The settings that determine the result; a resumed run must match.
 * version: 2 = the log has knn_pool_top1 and drop path is drawn per view;
 * a state without it (written before) is refused, as it cannot continue
 * into the same bytes as an uninterrupted run of this version. */
static void run_identity(const opts *o, const char *train, const char *val, const char *knntr,
                         const ss_vit_cfg *c, const char *init_md5, char *buf, size_t n)
{
    snprintf(buf, n,
             "train=%s;val=%s;knn_train=%s;crops=%s;arch=%d/%d/%d/%d/%d/%g/%d;global=%d;local=%d;nlocal=%d;"
             "out_dim=%d;hidden=%d;bottleneck=%d;norm_last=%d;student_temp=%.9g;teacher_temp=%.9g;"
             "warm_tt=%.9g;warm_tt_epochs=%d;center_m=%.9g;momentum=%.9g;epochs=%d;batch=%d;lr=%.9g;"
             "min_lr=%.9g;warmup=%.9g;wd=%.9g;wd_end=%.9g;clip=%.9g;drop_path=%.9g;freeze_last=%.9g;"
             "knn=%d/%.9g;seed=%llu;threads=%d;steps_per_epoch=%d;version=2",
             train, val ? val : "", knntr ? knntr : "", o->crops, c->img_size, c->patch, c->in_chans,
             c->embed_dim, c->depth, (double)c->mlp_ratio, c->num_heads, o->global ? o->global : c->img_size,
             o->local, o->nlocal, o->out_dim, o->hidden, o->bottleneck, o->norm_last, o->student_temp,
             o->teacher_temp, o->warm_tt, o->warm_tt_epochs, o->center_m, o->momentum, o->epochs, o->batch,
             o->lr, o->min_lr, o->warmup, o->wd, o->wd_end, o->clip, o->drop_path, o->freeze_last, o->knn_k,
             o->knn_t, (unsigned long long)o->seed, o->threads, o->steps_per_epoch);
    /* a run from --init names the backbone it started from by the md5 of its
     * parameters as loaded (a field only such runs have) */
    if (*init_md5) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, ";init=%s", init_md5);
    }
}

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
    if (*a || *b) {   /* a field only one side has */
        const char *x = *a ? a : b, *ex = strchr(x, ';');
        snprintf(out, n, "'%.*s' %s", ex ? (int)(ex - x) : (int)strlen(x), x,
                 *a ? "is not in this command's settings" : "is missing from the state (an older version)");
        return;
    }
    snprintf(out, n, "settings differ");
}

static const char *LOG_HEADER = "epoch\tlr\twd\tmomentum\tteacher_temp\tloss\tt_entropy\tt_kl_uniform\t"
                                "t_mean_entropy\tknn_top1\tknn_pool_top1\timg_s\tseconds\n";

/* A growing text buffer. */
typedef struct sbuf {
    char *s;
    size_t n;
} sbuf;

static void sb_add(sbuf *b, const char *t)
{
    size_t l = strlen(t);
    char *ns = realloc(b->s, b->n + l + 1);
    if (!ns) tool_die("out of memory");
    b->s = ns;
    memcpy(b->s + b->n, t, l + 1);
    b->n += l;
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

/* The checkpoint keeps the deterministic columns only (a resumed run must
 * end with the same bytes); the table adds img_s and seconds. On resume
 * the timings of earlier epochs come from --log when its rows match. */
static void resume_rows(const char *det, const char *logpath, sbuf *full)
{
    char *old = NULL;
    if (logpath) {
        uint8_t *buf;
        size_t len;
        ss_err e;
        if (ss_read_file(logpath, 1 << 24, &buf, &len, &e) == 0) {
            old = realloc(buf, len + 1);
            if (old) old[len] = 0;
            else free(buf);
        }
    }
    const char *p = det;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        char row[1024];
        snprintf(row, sizeof row, "%.*s\t-\t-\n", (int)l, p);
        if (old) {
            char *q = old;
            while ((q = strstr(q, "\n"))) {
                q++;
                if (!strncmp(q, p, l) && q[l] == '\t') {
                    char *qe = strchr(q, '\n');
                    size_t ql = qe ? (size_t)(qe - q) : strlen(q);
                    snprintf(row, sizeof row, "%.*s\n", (int)ql, q);
                    break;
                }
            }
        }
        sb_add(full, row);
        p += l + (nl ? 1 : 0);
    }
    free(old);
}

static void add_meta(ss_record *r, const ss_vit_cfg *c, const char *meanbuf, const char *stdbuf,
                     const char *data, const char *ident, const char *init, int epoch, uint64_t seed)
{
    ss_err e;
    if (init && ss_record_set_meta(r, "ssta.init", init, &e)) tool_die_err(&e);
    if (ss_vit_cfg_to_meta(c, r, &e) || ss_record_set_meta(r, "ssta.mean", meanbuf, &e) ||
        ss_record_set_meta(r, "ssta.std", stdbuf, &e) || ss_record_set_meta(r, "ssta.data", data, &e) ||
        ss_record_set_meta(r, "ssta.run", ident, &e) ||
        ss_record_set_metaf(r, &e, "ssta.epoch", "%d", epoch) ||
        ss_record_set_metaf(r, &e, "ssta.seed", "%llu", (unsigned long long)seed) ||
        ss_record_set_meta(r, "ssta.producer", PRODUCER, &e))
        tool_die_err(&e);
}

/* What an epoch has summed so far: a state written mid-epoch keeps it
 * (ssta.epoch_partial, doubles in %a so that they come back bit for bit), so the
 * resumed epoch's row is the uninterrupted one's. */
typedef struct epoch_sums {
    double loss, ent, ment, secs;   /* secs: training time, for the img_s column */
    long seen;
} epoch_sums;

/* The state after `epochs` whole epochs and `step` steps of the next (0:
 * at an epoch's end), atomically. */
static void save_state(const opts *o, ss_dino *d, const ss_vit_cfg *c, const char *meanbuf, const char *stdbuf,
                       const char *data, const char *ident, int epochs, size_t step, const epoch_sums *sum,
                       const char *log)
{
    ss_err e;
    ss_record r;
    ss_record_init(&r);
    if (ss_dino_save(d, &r, &e)) tool_die_err(&e);
    add_meta(&r, c, meanbuf, stdbuf, data, ident, o->init, epochs, o->seed);
    if (step && (ss_record_set_metaf(&r, &e, "ssta.epoch_step", "%zu", step) ||
                 ss_record_set_metaf(&r, &e, "ssta.epoch_partial", "%a %a %a %ld %a", sum->loss, sum->ent, sum->ment,
                                     sum->seen, sum->secs)))
        tool_die_err(&e);
    if (ss_record_set_meta(&r, "ssta.log", log, &e) || ss_st_save(o->out, &r, &e)) tool_die_err(&e);
    ss_record_free(&r);
}

/* ssta.epoch_step and ssta.epoch_partial of a state written mid-epoch. */
static void read_partial(const opts *o, const ss_record *r, size_t spe, size_t *step, epoch_sums *sum)
{
    const char *st = ss_record_meta(r, "ssta.epoch_step"), *pa = ss_record_meta(r, "ssta.epoch_partial");
    *step = 0;
    memset(sum, 0, sizeof *sum);
    if (!st) return;
    char *end;
    unsigned long long k = strtoull(st, &end, 10);
    if (*end || k == 0 || k >= spe)
        tool_die("%s: ssta.epoch_step '%s' is not a step within an epoch of %zu", o->out, st, spe);
    if (!pa || sscanf(pa, "%la %la %la %ld %la", &sum->loss, &sum->ent, &sum->ment, &sum->seen, &sum->secs) != 5)
        tool_die("%s: ssta.epoch_step without a readable ssta.epoch_partial", o->out);
    *step = (size_t)k;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    tool_init("dino-train");
    opts o;
    parse(argc, argv, &o);
    if (o.bench) return bench(&o);
    ss_err e;

    ss_dataset *dtr = ss_dataset_open(o.train, &e);
    if (!dtr) tool_die("--train: %s", e.msg);
    /* --init: the backbone to start from, with its architecture and the
     * normalisation it was trained with (the data set's when it has none) */
    ss_record init;
    ss_record_init(&init);
    if (o.init && ss_st_load(o.init, &init, &e)) tool_die("--init: %s", e.msg);
    const char *iprod = o.init ? ss_record_meta(&init, "ssta.producer") : NULL;
    if (iprod && !strncmp(iprod, "dino-train", 10) && ss_record_meta(&init, "ssta.log"))   /* only its state has a log */
        tool_die("%s is a dino-train state; --init takes a backbone (such as its --teacher-out file)", o.init);
    ss_vit_cfg c;
    build_cfg(&o, o.init ? &init : NULL, &c);
    float mean[3], stdv[3];
    int have_norm = o.init ? ss_norm_from_meta(&init, mean, stdv, &e) : 0;
    if (have_norm < 0) tool_die("%s: %s", o.init, e.msg);
    if (!have_norm) {
        ss_dataset_norm(dtr, mean, stdv);
        int h, w, dch;
        ss_dataset_geometry(dtr, &h, &w, &dch);
        if (c.in_chans == 3 && dch == 1)
            for (int i = 1; i < 3; i++) mean[i] = mean[0], stdv[i] = stdv[0];
    }
    ss_dino_cfg dc;
    fill_dino_cfg(&o, &c, &dc);
    ss_multicrop *mc = ss_multicrop_new(o.crops, dc.global, dc.local, o.nlocal, c.in_chans, mean, stdv, &e);
    if (!mc) tool_usage_error("--crops: %s", e.msg);

    ss_vit m;
    if (ss_vit_new(&m, &c, &e)) tool_die_err(&e);
    ss_vit_init_weights(&m, o.seed);
    char init_md5[33] = "";
    if (o.init) {
        /* the record's classifier or probe is ignored (2); the DINO head is new */
        if (ss_vit_load(&m, &init, "", m.params, 2, &e)) tool_die("%s: %s", o.init, e.msg);
        ss_md5_buf_hex(m.params, m.nparams * sizeof(float), init_md5);
    }
    ss_record_free(&init);
    ss_dino *d = ss_dino_new(&m, &dc, &e);   /* the teacher starts as a copy of m */
    if (!d) tool_die_err(&e);

    ss_loader_cfg lc = {.batch = o.batch, .seed = o.seed, .shuffle = 1, .drop_last = 1, .threads = o.loader_threads};
    ss_loader *tl = ss_loader_new_multicrop(dtr, mc, &lc, &e);
    if (!tl) tool_die_err(&e);
    size_t spe = ss_loader_batches(tl);
    if (spe == 0) tool_die("%s: %zu samples, fewer than one batch of %d", ss_dataset_spec(dtr), ss_dataset_len(dtr), o.batch);
    if (o.steps_per_epoch && (size_t)o.steps_per_epoch < spe) spe = (size_t)o.steps_per_epoch;
    uint64_t total = spe * (uint64_t)o.epochs, warm = (uint64_t)llround(o.warmup * spe);
    uint64_t freeze_steps = (uint64_t)llround(o.freeze_last * spe);

    /* k-NN monitor */
    knn_eval kn;
    memset(&kn, 0, sizeof kn);
    ss_transform *tfe = NULL;
    if (o.val) {
        if (!(kn.dq = ss_dataset_open(o.val, &e))) tool_die("--val: %s", e.msg);
        if (o.knn_train) {
            if (!(kn.dm = ss_dataset_open(o.knn_train, &e))) tool_die("--knn-train: %s", e.msg);
        } else if (!(kn.dm = ss_dataset_open(o.train, &e))) tool_die("--train: %s", e.msg);
        if (!(tfe = ss_transform_new("eval", dc.global, dc.global, c.in_chans, mean, stdv, &e))) tool_die_err(&e);
        ss_loader_cfg ec = {.batch = o.eval_batch, .seed = o.seed, .threads = o.loader_threads};
        if (!(kn.lm = ss_loader_new(kn.dm, tfe, &ec, dc.global, dc.global, c.in_chans, &e)) ||
            !(kn.lq = ss_loader_new(kn.dq, tfe, &ec, dc.global, dc.global, c.in_chans, &e)))
            tool_die_err(&e);
        size_t nm = ss_dataset_len(kn.dm), nq = ss_dataset_len(kn.dq);
        kn.fm = malloc(sizeof(float) * nm * c.embed_dim);
        kn.fq = malloc(sizeof(float) * nq * c.embed_dim);
        kn.pm = malloc(sizeof(float) * nm * c.embed_dim);
        kn.pq = malloc(sizeof(float) * nq * c.embed_dim);
        kn.ym = malloc(sizeof(int32_t) * nm);
        kn.yq = malloc(sizeof(int32_t) * nq);
        if (!kn.fm || !kn.fq || !kn.pm || !kn.pq || !kn.ym || !kn.yq) tool_die("out of memory for k-NN features");
        kn.nclasses = ss_dataset_nclasses(kn.dm);
        if (ss_dataset_nclasses(kn.dq) > kn.nclasses) kn.nclasses = ss_dataset_nclasses(kn.dq);
        if ((kn.slot = ss_runner_slot(ss_dino_runner(d), &m, o.eval_batch, dc.global, dc.global, -1, &e)) < 0)
            tool_die_err(&e);
    }

    char ident[4096];
    run_identity(&o, ss_dataset_spec(dtr), kn.dq ? ss_dataset_spec(kn.dq) : NULL,
                 kn.dm ? ss_dataset_spec(kn.dm) : NULL, &c, init_md5, ident, sizeof ident);
    char meanbuf[64], stdbuf[64];
    if (c.in_chans == 1) {
        snprintf(meanbuf, sizeof meanbuf, "%.6g", mean[0]);
        snprintf(stdbuf, sizeof stdbuf, "%.6g", stdv[0]);
    } else {
        snprintf(meanbuf, sizeof meanbuf, "%.6g,%.6g,%.6g", mean[0], mean[1], mean[2]);
        snprintf(stdbuf, sizeof stdbuf, "%.6g,%.6g,%.6g", stdv[0], stdv[1], stdv[2]);
    }

    /* resume */
    sbuf det = {calloc(1, 1), 0}, full = {calloc(1, 1), 0};
    if (!det.s || !full.s) tool_die("out of memory");
    int start_epoch = 0;
    size_t start_step = 0;   /* steps of epoch start_epoch + 1 already made (a state written mid-epoch) */
    epoch_sums start_sums = {0};
    if (tool_resume_from(o.out)) {
        ss_record r;
        ss_record_init(&r);
        if (ss_st_load(o.out, &r, &e)) tool_die("cannot resume: %s", e.msg);
        const char *id = ss_record_meta(&r, "ssta.run");
        const char *prod = ss_record_meta(&r, "ssta.producer");
        if (!id || !prod || strncmp(prod, "dino-train", 10))
            tool_die("%s exists and is not a dino-train state; remove it or choose another -o", o.out);
        if (strcmp(id, ident)) {
            char df[512];
            first_diff(id, ident, df, sizeof df);
            tool_die("%s is from a different run (%s); remove it or choose another -o", o.out, df);
        }
        if (ss_dino_load(d, &r, &e)) tool_die("%s: %s", o.out, e.msg);
        const char *ep = ss_record_meta(&r, "ssta.epoch"), *lg = ss_record_meta(&r, "ssta.log");
        start_epoch = ep ? atoi(ep) : 0;
        read_partial(&o, &r, spe, &start_step, &start_sums);
        if (lg) {
            sb_add(&det, lg);
            resume_rows(lg, o.log, &full);
        }
        ss_record_free(&r);
    }
    printf("%s%s", LOG_HEADER, full.s);
    fflush(stdout);
    /* --stop-after ends this process early; it is not part of the run's
     * identity, since the schedules and so the bytes do not depend on it */
    int end_epoch = o.stop_after && o.stop_after < o.epochs ? o.stop_after : o.epochs;
    uint64_t end_step = (uint64_t)end_epoch * spe;   /* --stop-at-step likewise */
    if (o.stop_at_step && (uint64_t)o.stop_at_step < end_step) end_step = (uint64_t)o.stop_at_step;
    if ((uint64_t)start_epoch * spe + start_step >= end_step) {
        if (tool_isatty(2))
            tool_warn("%s: already trained for %d epochs and %zu steps", o.out, start_epoch, start_step);
        goto done;
    }
    double lnK = log((double)o.out_dim);
    if (start_epoch == 0 && kn.dq && det.n == 0) {
        /* epoch 0: the untrained teacher, the floor any run must clear */
        double t0 = tool_now();
        double acc[2];
        knn_top1(&o, &kn, ss_dino_runner(d), &m, ss_dino_teacher(d), acc);
        char row[512];
        snprintf(row, sizeof row, "0\t-\t-\t-\t-\t-\t-\t-\t-\t%.4f\t%.4f", acc[0], acc[1]);
        sb_add(&det, row);
        sb_add(&det, "\n");
        sb_add(&full, row);
        char tail[64];
        snprintf(tail, sizeof tail, "\t-\t%.1f\n", tool_now() - t0);
        sb_add(&full, tail);
        printf("%s%s", row, tail);
        fflush(stdout);
    }

    for (int ep = start_epoch; ep < end_epoch; ep++) {
        size_t first = ep == start_epoch ? start_step : 0;
        epoch_sums sum = first ? start_sums : (epoch_sums){0};
        double t0 = tool_now();
        long seen_here = 0;
        ss_dino_sched s = {0};
        s.teacher_temp = ss_dino_teacher_temp(o.warm_tt, o.teacher_temp, o.warm_tt_epochs, ep);
        if (ss_loader_start_epoch_at(tl, (uint32_t)ep, first, &e)) tool_die_err(&e);
        for (size_t i = first; i < spe; i++) {
            ss_batch b;
            int rc = ss_loader_next(tl, &b, &e);
            if (rc < 0) tool_die_err(&e);
            if (rc == 0) tool_die("internal error: the loader's epoch ended early");
            uint64_t it = (uint64_t)ep * spe + i;
            s.lr = ss_dino_cosine(o.lr, o.min_lr, it, warm, total, 0.0);
            s.wd = ss_dino_cosine(o.wd, o.wd_end, it, 0, total, 0.0);
            s.momentum = ss_dino_cosine(o.momentum, 1.0, it, 0, total, 0.0);
            s.freeze_last = it < freeze_steps;
            ss_dino_stats st;
            if (ss_dino_step(d, b.views, b.n, &s, &st, &e)) tool_die("epoch %d, step %zu: %s", ep + 1, i + 1, e.msg);
            sum.loss += st.loss;
            sum.ent += st.t_entropy;
            sum.ment += st.t_mean_entropy;
            sum.seen += b.n;
            seen_here += b.n;
            double el = tool_now() - t0;
            char left[32];
            tool_time_left(left, sizeof left, (double)(i + 1 - first), el, (double)(end_step - it - 1));
            tool_progress("epoch %d/%d  step %zu/%zu  loss %.4f  H(t) %.3f  lr %.2e  %.0f img/s  left %s", ep + 1,
                          o.epochs, i + 1, spe, sum.loss / (i + 1), sum.ent / (i + 1), s.lr, seen_here / el, left);
            if (i + 1 < spe && (it + 1 == end_step || (o.save_every && (it + 1) % (uint64_t)o.save_every == 0))) {
                epoch_sums part = sum;
                part.secs += el;
                save_state(&o, d, &c, meanbuf, stdbuf, ss_dataset_spec(dtr), ident, ep, i + 1, &part, det.s);
                if (it + 1 == end_step) {   /* --stop-at-step, mid-epoch */
                    tool_progress_end();
                    goto done;
                }
            }
        }
        double t_train = tool_now() - t0, secs_train = sum.secs + t_train;   /* the epoch's, over resumes */
        double ent = sum.ent / spe, ment = sum.ment / spe;
        if (ent > 0.95 * lnK)
            tool_warn("epoch %d: teacher output entropy %.3f is near ln K = %.3f (uniform collapse)", ep + 1, ent, lnK);
        if (ment < 0.05 * lnK)
            tool_warn("epoch %d: entropy of the mean teacher output %.3f is near 0 (one-dimension collapse)", ep + 1, ment);
        char knn[32] = "-", knnp[32] = "-";
        if (kn.dq) {
            double acc[2];
            knn_top1(&o, &kn, ss_dino_runner(d), &m, ss_dino_teacher(d), acc);
            snprintf(knn, sizeof knn, "%.4f", acc[0]);
            snprintf(knnp, sizeof knnp, "%.4f", acc[1]);
        }
        double secs = secs_train + (tool_now() - t0 - t_train);   /* and the k-NN's */
        char row[512];
        snprintf(row, sizeof row, "%d\t%.6g\t%.6g\t%.6g\t%.6g\t%.6f\t%.4f\t%.4f\t%.4f\t%s\t%s", ep + 1, s.lr,
                 s.wd, s.momentum, s.teacher_temp, sum.loss / spe, ent, lnK - ent, ment, knn, knnp);
        sb_add(&det, row);
        sb_add(&det, "\n");
        char tail[64];
        snprintf(tail, sizeof tail, "\t%.1f\t%.1f\n", sum.seen / secs_train, secs);
        sb_add(&full, row);
        sb_add(&full, tail);

        /* state, then the teacher backbone — each atomically */
        save_state(&o, d, &c, meanbuf, stdbuf, ss_dataset_spec(dtr), ident, ep + 1, 0, NULL, det.s);
        if (o.teacher_out) {
            ss_record r;
            ss_record_init(&r);
            if (ss_vit_save(&m, &r, "", ss_dino_teacher(d), &e)) tool_die_err(&e);
            add_meta(&r, &c, meanbuf, stdbuf, ss_dataset_spec(dtr), ident, o.init, ep + 1, o.seed);
            if (ss_record_set_meta(&r, "ssta.knn_top1", knn, &e) ||
                ss_record_set_meta(&r, "ssta.knn_pool_top1", knnp, &e) || ss_st_save(o.teacher_out, &r, &e))
                tool_die_err(&e);
            ss_record_free(&r);
        }
        if (o.log) write_log(o.log, full.s);
        tool_progress_end();
        printf("%s%s", row, tail);
        fflush(stdout);
        if ((uint64_t)(ep + 1) * spe >= end_step) break;   /* --stop-at-step at an epoch's end */
    }
done:
    free(det.s);
    free(full.s);
    ss_loader_free(tl);
    ss_loader_free(kn.lm);
    ss_loader_free(kn.lq);
    free(kn.fm);
    free(kn.fq);
    free(kn.pm);
    free(kn.pq);
    free(kn.ym);
    free(kn.yq);
    if (kn.dm) ss_dataset_close(kn.dm);
    if (kn.dq) ss_dataset_close(kn.dq);
    ss_transform_free(tfe);
    ss_dino_free(d);
    ss_vit_free(&m);
    ss_multicrop_free(mc);
    ss_dataset_close(dtr);
    return 0;
}
