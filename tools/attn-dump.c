/* attn-dump — a teacher's attention maps for the selected heads on exactly
 * the training views of a student run, in the order distill-step reads
 * them, as a teacher-attention cache (teacher-attn(5)). See attn-dump(1).
 *
 * Not here: which views come when (lib/views.c, shared with distill-step),
 * the cache format and its codecs (lib/attncache.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "attncache.h"
#include "data.h"
#include "headrank.h"
#include "modelfile.h"
#include "runner.h"
#include "stream.h"
#include "tool.h"
#include "views.h"

#define PRODUCER "attn-dump 0.1"

typedef struct opts {
    const char *model, *select, *train, *aug, *out, *encoding, *preset, *verify;
    int batch, threads, loader_threads, img, chans, heads, level, steps_per_epoch;
    long epochs, first_epoch;
    uint64_t seed;
} opts;

static void usage(void)
{
    printf(
        "Usage: attn-dump --model TEACHER --select SEL --train SPEC --epochs N [OPTIONS] [-o OUT]\n"
        "Write the teacher's attention maps of the selected heads for every training view\n"
        "of a student run's first N epochs, in the order distill-step reads its batches,\n"
        "as a teacher-attention cache (teacher-attn(5)): one record per student batch\n"
        "with attn [batch, layers, N, N] and the views' dataset indices. The header\n"
        "records the teacher's checksum, the selection and the student's data, augmentation,\n"
        "seed, batch size, epochs, encoding; distill-step refuses a cache that differs.\n"
        "\n"
        "Teacher:\n"
        "  --model CKPT        the teacher (a backbone is enough: no classifier needed)\n"
        "  --select SEL        one head per layer, 3:2,4:0,5:5; L:avg = the mean of block L's\n"
        "                      heads; avg = the mean in each of the last 3 blocks\n"
        "  --preset NAME, --heads N  architecture for a checkpoint without ssta metadata\n"
        "The student run (give what distill-step is given):\n"
        "  --train SPEC        training data\n"
        "  --aug PRESET        its augmentation (default fmnist-light for fashion-mnist, else eval)\n"
        "  --seed N [0]  --batch N [128]  --steps-per-epoch N (cap, 0 = none) [0]\n"
        "  --img N, --chans N  the student's input side and channels: must equal the teacher's\n"
        "  --epochs N          KD epochs to cover (epochs first..first+N-1)\n"
        "  --first-epoch E [0] first epoch (0-based)\n"
        "Output:\n"
        "  -o, --out FILE      the cache (default -, stdout; refused on a terminal)\n"
        "  --encoding NAME     map encoding: f32, bf16, sqrt63, sqrt47, sqrt31, sqrt15 [bf16] (teacher-attn(5))\n"
        "  --level N [3]       zstd level, 0 = uncompressed\n"
        "  --threads N [2]  --loader-threads N [1]\n"
        "  --verify CACHE      write nothing: check that CACHE is this command's output (every\n"
        "                      header field but the file name; every record in order, with the\n"
        "                      views' dataset indices); names the first difference\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error, 2 usage error.\n");
}

enum { O_MODEL = 256, O_SELECT, O_TRAIN, O_AUG, O_SEED, O_BATCH, O_SPE, O_IMG, O_EPOCHS, O_FIRST, O_ENC, O_LEVEL,
       O_THREADS, O_LTHREADS, O_PRESET, O_HEADS, O_VERIFY, O_CHANS };

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"model", 1, 0, O_MODEL}, {"select", 1, 0, O_SELECT}, {"train", 1, 0, O_TRAIN}, {"aug", 1, 0, O_AUG},
        {"seed", 1, 0, O_SEED}, {"batch", 1, 0, O_BATCH}, {"steps-per-epoch", 1, 0, O_SPE}, {"img", 1, 0, O_IMG}, {"chans", 1, 0, O_CHANS},
        {"epochs", 1, 0, O_EPOCHS}, {"first-epoch", 1, 0, O_FIRST}, {"encoding", 1, 0, O_ENC},
        {"level", 1, 0, O_LEVEL}, {"out", 1, 0, 'o'}, {"threads", 1, 0, O_THREADS},
        {"loader-threads", 1, 0, O_LTHREADS}, {"preset", 1, 0, O_PRESET}, {"heads", 1, 0, O_HEADS},
        {"verify", 1, 0, O_VERIFY}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->batch = 128;
    o->threads = 2;
    o->loader_threads = 1;
    o->level = 3;
    o->out = "-";
    o->encoding = "bf16";
    o->epochs = -1;
    int c;
    while ((c = tool_getopt(argc, argv, "o:h", lo)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case 'o': o->out = optarg; break;
        case O_MODEL: o->model = optarg; break;
        case O_SELECT: o->select = optarg; break;
        case O_TRAIN: o->train = optarg; break;
        case O_AUG: o->aug = optarg; break;
        case O_SEED: o->seed = tool_parse_u64("--seed", optarg); break;
        case O_BATCH: o->batch = (int)tool_parse_long("--batch", optarg, 1, 65536); break;
        case O_SPE: o->steps_per_epoch = (int)tool_parse_long("--steps-per-epoch", optarg, 0, 100000000); break;
        case O_IMG: o->img = (int)tool_parse_long("--img", optarg, 1, 8192); break;
        case O_CHANS: o->chans = (int)tool_parse_long("--chans", optarg, 1, 64); break;
        case O_EPOCHS: o->epochs = tool_parse_long("--epochs", optarg, 1, 1000000); break;
        case O_FIRST: o->first_epoch = tool_parse_long("--first-epoch", optarg, 0, 1000000); break;
        case O_ENC: o->encoding = optarg; break;
        case O_LEVEL: o->level = (int)tool_parse_long("--level", optarg, 0, 19); break;
        case O_THREADS: o->threads = (int)tool_parse_long("--threads", optarg, 1, SS_MAX_WORKERS); break;
        case O_LTHREADS: o->loader_threads = (int)tool_parse_long("--loader-threads", optarg, 1, 64); break;
        case O_PRESET: o->preset = optarg; break;
        case O_HEADS: o->heads = (int)tool_parse_long("--heads", optarg, 1, 1024); break;
        case O_VERIFY: o->verify = optarg; break;
        default: tool_usage_error("unknown option");
        }
    }
    if (optind < argc) tool_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->model) tool_usage_error("--model CKPT is required");
    if (!o->select) tool_usage_error("--select SEL is required (e.g. 3:2,4:0,5:5, or avg)");
    if (!o->train) tool_usage_error("--train SPEC is required (the student's training data)");
    if (o->epochs < 0) tool_usage_error("--epochs N is required (the KD epochs to cover)");
    if (!ss_attn_codec_find(o->encoding))
        tool_usage_error("--encoding: '%s' is not one of %s", o->encoding, ss_attn_codec_names());
}

/* Per worker: the selected maps of its samples into the batch buffer
 * (B, nl, N, N), through ss_vit_get_attn (h = -1: the layer's head mean). */
typedef struct gather {
    const ss_vit *m;
    const ss_headsel *sel;
    int N;
    float *maps;
    float *tmp[SS_MAX_WORKERS];   /* (per-worker samples, N, N) */
} gather;

static int gather_maps(void *arg, ss_objio *io, ss_err *e)
{
    (void)e;
    gather *g = arg;
    size_t NN = (size_t)g->N * g->N, nl = (size_t)g->sel->n;
    float *tmp = g->tmp[io->worker];
    for (size_t k = 0; k < nl; k++) {
        int h = g->sel->head[k];
        ss_vit_get_attn(g->m, io->acts[0], g->sel->layer[k], h == SS_HEAD_AVG ? -1 : h, io->n, tmp);
        for (int b = 0; b < io->n; b++)
            memcpy(g->maps + (((size_t)(io->lo + b)) * nl + k) * NN, tmp + (size_t)b * NN, NN * sizeof(float));
    }
    return 0;
}

/* --verify: the cache must be what this command would write (every field
 * of id but the file name; every record in order with the views' indices). */
static int verify(const opts *o, ss_views *v, const ss_ident *id)
{
    ss_err e;
    ss_ident want;
    ss_ident_init(&want);
    for (int i = 0; i < id->n; i++)
        if (strcmp(id->key[i], "model") && ss_ident_add(&want, &e, id->key[i], "%s", id->val[i])) tool_die_err(&e);
    if (ss_ident_add(&want, &e, "encoding", "%s", o->encoding)) tool_die_err(&e);
    uint32_t e0 = (uint32_t)o->first_epoch, e1 = (uint32_t)(o->first_epoch + o->epochs);
    ss_attncache *c = ss_attncache_open(o->verify, &want, e0, e1, &e);
    if (!c) tool_die_err(&e);
    long records = 0;
    for (uint32_t ep = e0; ep < e1; ep++) {
        if (ss_views_start_epoch(v, ep, &e)) tool_die_err(&e);
        ss_batch b;
        int rc;
        while ((rc = ss_views_next(v, &b, &e)) == 1) {
            ss_attn_batch ab;
            int cr = ss_attncache_next(c, &ab, &e);
            if (cr < 0) tool_die_err(&e);
            if (cr == 0) tool_die("%s: ends before epoch %u step %u", o->verify, ep, b.step);
            if (ss_attncache_match(&ab, ep, b.step, b.n, b.index, &e)) tool_die("%s: %s", o->verify, e.msg);
            records++;
        }
        if (rc < 0) tool_die_err(&e);
    }
    ss_attn_batch ab;
    int cr = ss_attncache_next(c, &ab, &e);
    if (cr < 0) tool_die_err(&e);
    ss_attncache_close(c);
    ss_ident_free(&want);
    tool_warn("%s: ok: %ld batches of epochs %u-%u match this run", o->verify, records, e0, e1 - 1);
    return 0;
}

int main(int argc, char **argv)
{
    tool_init("attn-dump");
    opts o;
    parse(argc, argv, &o);
    ss_err e;

    ss_modelfile mf;
    if (ss_modelfile_open(&mf, o.model, NULL, o.preset, o.heads, &e)) tool_die_err(&e);
    const ss_vit *m = &mf.m;
    ss_headsel sel;
    if (ss_headsel_parse(o.select, m->cfg.depth, m->cfg.num_heads, &sel, &e)) tool_usage_error("--select: %s", e.msg);
    char selbuf[1024];
    ss_headsel_format(&sel, selbuf, sizeof selbuf);
    int side = m->cfg.img_size;
    if (o.img && o.img != side)
        tool_die("%s takes %d px inputs, the student %d px: the maps would not be the student's views", o.model, side,
                 o.img);
    if (o.chans && o.chans != m->cfg.in_chans)
        tool_die("%s takes %d-channel inputs, the student %d: the maps would not be the student's views", o.model,
                 m->cfg.in_chans, o.chans);

    ss_dataset *d = ss_dataset_open(o.train, &e);
    if (!d) tool_die("--train: %s", e.msg);
    ss_views_cfg vc = {.aug = o.aug, .seed = o.seed, .batch = o.batch, .img = side, .chans = m->cfg.in_chans,
                       .steps_per_epoch = o.steps_per_epoch, .threads = o.loader_threads};
    ss_modelfile_norm(&mf, d, vc.mean, vc.std);   /* the teacher's normalisation */
    ss_views v;
    if (ss_views_open(&v, d, &vc, &e)) tool_die_err(&e);

    ss_runner *run = ss_runner_new(o.threads, &e);
    int slot = run ? ss_runner_slot(run, m, o.batch, side, side, -1, &e) : -1;
    if (slot < 0) tool_die_err(&e);
    int N = ss_runner_acts(run, slot, 0)->N;

    ss_ident id;
    ss_ident_init(&id);
    char meanbuf[64], stdbuf[64];
    if (m->cfg.in_chans == 1) {
        snprintf(meanbuf, sizeof meanbuf, "%.6g", vc.mean[0]);
        snprintf(stdbuf, sizeof stdbuf, "%.6g", vc.std[0]);
    } else {
        snprintf(meanbuf, sizeof meanbuf, "%.6g,%.6g,%.6g", vc.mean[0], vc.mean[1], vc.mean[2]);
        snprintf(stdbuf, sizeof stdbuf, "%.6g,%.6g,%.6g", vc.std[0], vc.std[1], vc.std[2]);
    }
    if (ss_views_ident(&v, &vc, &id, &e) || ss_ident_add(&id, &e, "model", "%s", o.model) ||
        ss_ident_add(&id, &e, "model_md5", "%s", mf.md5) || ss_ident_add(&id, &e, "heads", "%s", selbuf) ||
        ss_ident_add(&id, &e, "mean", "%s", meanbuf) || ss_ident_add(&id, &e, "std", "%s", stdbuf) ||
        ss_ident_add(&id, &e, "aug_params", "%s", ss_transform_describe(v.tf)))
        tool_die_err(&e);
    if (o.verify) {
        int rc = verify(&o, &v, &id);
        ss_ident_free(&id);
        ss_runner_free(run);
        ss_views_close(&v);
        ss_dataset_close(d);
        ss_modelfile_close(&mf);
        return rc;
    }
    tool_refuse_tty_stdout(o.out);
    ss_attncache_w *w = ss_attncache_w_open(o.out, PRODUCER, &id, o.encoding, sel.n, N, (uint32_t)o.first_epoch,
                                            (uint32_t)o.epochs, o.level == 0 ? 0 : o.level, &e);
    if (!w) tool_die_err(&e);

    size_t per;
    if (ss_mul_size((size_t)o.batch * sel.n, (size_t)N * N, &per)) tool_die("batch too large");
    float *maps = malloc(sizeof(float) * per);
    if (!maps) tool_die("out of memory for a batch of maps (%zu MB)", per * sizeof(float) >> 20);
    gather g = {.m = m, .sel = &sel, .N = N, .maps = maps};
    int per_w = (o.batch + o.threads - 1) / o.threads;
    for (int wk = 0; wk < o.threads; wk++)
        if (!(g.tmp[wk] = malloc(sizeof(float) * (size_t)per_w * N * N))) tool_die("out of memory");

    double t0 = tool_now();
    long views = 0, total = (long)v.steps * o.epochs * o.batch;
    for (long ep = o.first_epoch; ep < o.first_epoch + o.epochs; ep++) {
        if (ss_views_start_epoch(&v, (uint32_t)ep, &e)) tool_die_err(&e);
        for (size_t s = 0; s < v.steps; s++) {
            ss_batch b;
            int rc = ss_views_next(&v, &b, &e);
            if (rc < 0) tool_die_err(&e);
            if (rc == 0) tool_die("internal error: epoch %ld ended after %zu of %zu batches", ep, s, v.steps);
            ss_pass p = {.B = b.n, .nitems = 1, .obj = gather_maps, .obj_ctx = &g};
            p.item[0] = (ss_pass_item){.slot = slot, .x = b.x};
            if (ss_runner_pass(run, &p, &e)) tool_die_err(&e);
            if (ss_attncache_w_put(w, b.epoch, b.step, b.n, b.index, maps, &e)) {
                ss_attncache_w_abort(w);
                tool_die_err(&e);
            }
            views += b.n;
            tool_progress("epoch %ld  batch %zu/%zu  %ld/%ld views  %.0f img/s", ep, s + 1, v.steps, views, total,
                          views / (tool_now() - t0));
        }
    }
    uint64_t bytes;
    if (ss_attncache_w_close(w, &bytes, &e)) tool_die_err(&e);
    double secs = tool_now() - t0;
    tool_progress_end();
    char after[64] = "";
    struct stat sb;
    if (strcmp(o.out, "-") && !stat(o.out, &sb) && S_ISREG(sb.st_mode) && views)
        snprintf(after, sizeof after, ", %.0f in the file", (double)sb.st_size / views);
    tool_warn("%s: %ld views (epochs %ld-%ld, %zu batches of %d each) of heads %s, %s: %.0f bytes per view "
              "before zstd%s; %.1f s, %.0f img/s",
              strcmp(o.out, "-") ? o.out : "stdout", views, o.first_epoch, o.first_epoch + o.epochs - 1, v.steps,
              o.batch, selbuf, o.encoding, views ? (double)bytes / views : 0.0, after, secs, views / secs);

    free(maps);
    for (int wk = 0; wk < o.threads; wk++) free(g.tmp[wk]);
    ss_ident_free(&id);
    ss_runner_free(run);
    ss_views_close(&v);
    ss_dataset_close(d);
    ss_modelfile_close(&mf);
    return 0;
}
