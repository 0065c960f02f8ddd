/* vit-fwd — run a ViT checkpoint over a dataset or an image stream; write
 * logits (and on request features and attention) as a tensor stream; report
 * top-1/top-5 when labels are known. See vit-fwd(1).
 *
 * Not here: training (distill-step), head importance (head-rank).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "ident.h"
#include "io.h"
#include "knn.h"
#include "modelfile.h"
#include "metrics.h"
#include "safetensors.h"
#include "stream.h"
#include "tool.h"
#include "runner.h"
#include "vit.h"

#define PRODUCER "vit-fwd 0.1"

typedef struct opts {
    const char *model, *data, *out, *report, *attn, *zero, *preset, *knn;
    int knn_k;
    double knn_t;
    int batch, threads, loader_threads, features, block_cls, pool, eval_only, img, heads, level, skip_corrupt;
} opts;

static void usage(void)
{
    printf(
        "Usage: vit-fwd --model CKPT [--data SPEC] [OPTIONS]\n"
        "Run a ViT over images and write, per batch, one record of a tensor stream:\n"
        "  logits [n,classes], index I64 [n] (dataset index), label I64 [n] (-1 unknown)\n"
        "  and on request features [n,D] (class token after the final norm),\n"
        "  pooled [n,D] (mean of the last block's patch tokens after the final norm),\n"
        "  block_cls [n,depth,D] (class token after each block, before the norm),\n"
        "  attn.<l> [n,heads,N,N] (attention probabilities of block l, chosen heads).\n"
        "With labels, top-1/top-5 go to stderr and as a TSV table (data, n, top1, top5)\n"
        "to stdout when the stream goes to a file, or to --report FILE.\n"
        "With --knn, also DINO's weighted k-NN top-1 of the class token and of the\n"
        "pooled patch tokens against a labelled memory (the table gains knn_memory,\n"
        "knn_top1, knn_pool_top1), as dino-train's monitor computes it.\n"
        "\n"
        "  --model CKPT        safetensors checkpoint (timm names; ssta metadata or --preset)\n"
        "  --data SPEC         dataset (default stream:- = image records on stdin)\n"
        "  -o, --out FILE      output stream (default -, stdout; refused on a terminal)\n"
        "  --eval-only         no stream, only the accuracy\n"
        "  --features          add features\n"
        "  --pool avg          add pooled (DINO's avgpool_patchtokens)\n"
        "  --block-cls         add block_cls\n"
        "  --attn SEL          add attention: blocks[:heads], e.g. 9,10,11 or 11:0,2 or all\n"
        "  --zero-heads L:H,.. switch heads off (their attention output set to 0)\n"
        "  --knn SPEC          k-NN memory (labelled dataset), e.g. fashion-mnist:train\n"
        "  --knn-k N [20]  --knn-t X [0.07]  neighbours, temperature of the votes\n"
        "  --img N             input side (position embedding interpolated; default the model's)\n"
        "  --preset NAME, --heads N  architecture for a checkpoint without ssta metadata\n"
        "  --batch N [128]  --threads N [2]  --level N (zstd level, 0 = none) [3]\n"
        "  --loader-threads N [1]  threads decoding images ahead (no effect on the output)\n"
        "  --skip-corrupt      leave out images that cannot be decoded (counted on stderr)\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error, 2 usage error.\n");
}

enum { O_MODEL = 256, O_DATA, O_REPORT, O_ATTN, O_ZERO, O_PRESET, O_BATCH, O_THREADS, O_LTHREADS, O_FEAT, O_POOL, O_BCLS, O_EVAL, O_IMG, O_HEADS, O_LEVEL, O_SKIP, O_KNN, O_KNNK, O_KNNT };

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"model", 1, 0, O_MODEL}, {"data", 1, 0, O_DATA}, {"out", 1, 0, 'o'}, {"report", 1, 0, O_REPORT},
        {"attn", 1, 0, O_ATTN}, {"zero-heads", 1, 0, O_ZERO}, {"preset", 1, 0, O_PRESET},
        {"batch", 1, 0, O_BATCH}, {"threads", 1, 0, O_THREADS}, {"loader-threads", 1, 0, O_LTHREADS},
        {"features", 0, 0, O_FEAT}, {"pool", 1, 0, O_POOL},
        {"block-cls", 0, 0, O_BCLS}, {"eval-only", 0, 0, O_EVAL}, {"img", 1, 0, O_IMG},
        {"heads", 1, 0, O_HEADS}, {"level", 1, 0, O_LEVEL}, {"skip-corrupt", 0, 0, O_SKIP},
        {"knn", 1, 0, O_KNN}, {"knn-k", 1, 0, O_KNNK}, {"knn-t", 1, 0, O_KNNT}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->batch = 128; o->threads = 2; o->loader_threads = 1; o->out = "-"; o->data = "stream:-"; o->level = 3;
    o->knn_k = 20; o->knn_t = 0.07;
    int c;
    while ((c = tool_getopt(argc, argv, "o:h", lo)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case 'o': o->out = optarg; break;
        case O_MODEL: o->model = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_REPORT: o->report = optarg; break;
        case O_ATTN: o->attn = optarg; break;
        case O_ZERO: o->zero = optarg; break;
        case O_PRESET: o->preset = optarg; break;
        case O_BATCH: o->batch = (int)tool_parse_long("--batch", optarg, 1, 65536); break;
        case O_THREADS: o->threads = (int)tool_parse_long("--threads", optarg, 1, 64); break;
        case O_LTHREADS: o->loader_threads = (int)tool_parse_long("--loader-threads", optarg, 1, 64); break;
        case O_FEAT: o->features = 1; break;
        case O_POOL:
            if (strcmp(optarg, "avg")) tool_usage_error("--pool: '%s' is not a pooling (avg)", optarg);
            o->pool = 1;
            break;
        case O_BCLS: o->block_cls = 1; break;
        case O_EVAL: o->eval_only = 1; break;
        case O_IMG: o->img = (int)tool_parse_long("--img", optarg, 1, 8192); break;
        case O_HEADS: o->heads = (int)tool_parse_long("--heads", optarg, 1, 1024); break;
        case O_LEVEL: o->level = (int)tool_parse_long("--level", optarg, 0, 19); break;
        case O_SKIP: o->skip_corrupt = 1; break;
        case O_KNN: o->knn = optarg; break;
        case O_KNNK: o->knn_k = (int)tool_parse_long("--knn-k", optarg, 1, 100000); break;
        case O_KNNT: o->knn_t = tool_parse_double("--knn-t", optarg, 1e-6, 1e6); break;
        default: tool_usage_error("unknown option");
        }
    }
    if (optind < argc) tool_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->model) tool_usage_error("--model CKPT is required");
}

/* What the per-worker objective fills: the record's tensors (each worker
 * writes its own rows), the accuracy counts per worker, and the first row
 * with a non-finite logit. */
typedef struct gather {
    const ss_vit *m;
    const uint8_t *selb, *selh;
    int nsh, K, L, D, N;
    float *logits, *feat, *pool, *bcls;
    float *attn[256];     /* per selected block: (B, nsh, N, N) */
    const int32_t *y;
    ss_topk tk[SS_MAX_WORKERS];
    long bad[SS_MAX_WORKERS];   /* batch row of the worker's first non-finite logit, -1 */
} gather;

static int gather_outputs(void *arg, ss_objio *io, ss_err *e)
{
    (void)e;
    gather *g = arg;
    const ss_vit_acts *a = io->acts[0];
    int lo = io->lo, n = io->n, K = g->K, D = g->D, L = g->L;
    size_t NN = (size_t)g->N * g->N;
    if (K > 0) {
        long bad = ss_first_nonfinite_row(ss_vit_logits(a), n, K);
        g->bad[io->worker] = bad < 0 ? -1 : lo + bad;
        ss_topk_add(&g->tk[io->worker], ss_vit_logits(a), g->y + lo, n, K);
        if (g->logits) memcpy(g->logits + (size_t)lo * K, ss_vit_logits(a), sizeof(float) * n * K);
    }
    if (g->feat) ss_vit_get_features(g->m, a, n, g->feat + (size_t)lo * D);
    if (g->pool) ss_vit_get_pooled(g->m, a, n, g->pool + (size_t)lo * D);
    if (g->bcls) ss_vit_get_block_cls(g->m, a, n, g->bcls + (size_t)lo * L * D);
    for (int l = 0; l < L; l++) {
        if (!g->attn[l]) continue;
        for (int b = 0; b < n; b++)
            for (int h = 0, j = 0; h < g->m->cfg.num_heads; h++) {
                if (!g->selh[h]) continue;
                memcpy(g->attn[l] + ((size_t)(lo + b) * g->nsh + j) * NN, ss_vit_attn_map(g->m, a, l, h, b),
                       sizeof(float) * NN);
                j++;
            }
    }
    return 0;
}

/* --knn's memory pass (54,000 images take minutes) on a terminal. */
static void knn_progress(void *spec, size_t done, size_t n)
{
    tool_progress("k-NN memory %s: %zu/%zu images", (const char *)spec, done, n);
}

int main(int argc, char **argv)
{
    tool_init("vit-fwd");
    opts o;
    parse(argc, argv, &o);
    ss_err e;
    if (o.preset) {   /* a bad preset name is a usage error */
        ss_vit_cfg pc;
        if (ss_vit_preset(o.preset, &pc, &e)) tool_usage_error("--preset: %s", e.msg);
    }
    ss_modelfile mf;   /* weights, parameter md5, normalisation */
    if (ss_modelfile_open(&mf, o.model, NULL, o.preset, o.heads, &e)) tool_die_err(&e);
    ss_vit *m = &mf.m;
    ss_vit_cfg c = m->cfg;
    int L = c.depth, NH = c.num_heads, K = c.num_classes, D = c.embed_dim;
    if (K <= 0 && !o.features && !o.pool && !o.block_cls && !o.attn && !o.knn)
        tool_usage_error("%s has no classification head: ask for --features, --pool, --block-cls, --attn or --knn",
                         o.model);
    uint8_t *selb = calloc((size_t)L, 1), *selh = calloc((size_t)NH, 1);
    if (!selb || !selh) tool_die("out of memory");
    if (o.attn) tool_parse_block_heads("--attn", o.attn, L, NH, selb, selh);
    int nsh = 0;
    for (int h = 0; h < NH; h++) nsh += selh[h];
    if (o.zero) {
        const char *p = o.zero;
        while (*p) {
            char *end;
            long l = strtol(p, &end, 10);
            if (end == p || *end != ':' || l < 0 || l >= L) tool_usage_error("--zero-heads: bad item in '%s' (L:H)", o.zero);
            p = end + 1;
            long h = strtol(p, &end, 10);
            if (end == p || h < 0 || h >= NH) tool_usage_error("--zero-heads: bad head in '%s' (0..%d)", o.zero, NH - 1);
            m->head_off[l * NH + h] = 1;
            p = end;
            if (*p == ',') p++;
            else if (*p) tool_usage_error("--zero-heads: bad list '%s'", o.zero);
        }
    }
    const char *hex = mf.md5;   /* md5 of the parameters as loaded */

    ss_dataset *d = ss_dataset_open(o.data, &e);
    if (!d) tool_die("--data: %s", e.msg);
    int side = o.img ? o.img : c.img_size;
    float mean[3], stdv[3];
    ss_modelfile_norm(&mf, d, mean, stdv);
    if (K > 0 && (o.eval_only || o.report) && ss_dataset_nclasses(d) > K)
        tool_die("%s has %d classes, the model's head has %d: top-1 would leave out the images of classes >= %d",
                 ss_dataset_spec(d), ss_dataset_nclasses(d), K, K);
    ss_transform *tf = ss_transform_new("eval", side, side, c.in_chans, mean, stdv, &e);
    if (!tf) tool_die_err(&e);

    ss_runner *run = ss_runner_new(o.threads, &e);
    int slot = run ? ss_runner_slot(run, m, o.batch, side, side, -1, &e) : -1;
    if (slot < 0) tool_die_err(&e);
    int N = ss_runner_acts(run, slot, 0)->N;
    int64_t *idx = malloc(sizeof(int64_t) * o.batch), *lab = malloc(sizeof(int64_t) * o.batch);
    if (!idx || !lab) tool_die("out of memory");
    /* Batches in dataset order (epoch 0, seed 0: index = dataset index), the
     * last one short, decoded ahead by the loader (JPEGs with DCT scaling
     * to the transform's minimum side, see ssta-data(5)). A stream:- dataset
     * is read whole at open, so the loader serves it like any other. */
    size_t n = ss_dataset_len(d), done = 0;
    if (n > UINT32_MAX) tool_die("%s: too many samples", ss_dataset_spec(d));
    ss_loader_cfg lc = {.batch = o.batch, .seed = 0, .shuffle = 0, .drop_last = 0,
                        .threads = o.loader_threads, .skip_corrupt = o.skip_corrupt};
    ss_loader *ld = ss_loader_new(d, tf, &lc, side, side, c.in_chans, &e);
    if (!ld || ss_loader_start_epoch(ld, 0, &e)) tool_die_err(&e);

    /* --knn: the memory's features first (same transform, same model), the
     * queries' are gathered during the main pass */
    ss_dataset *dm = NULL;
    float *mf_cls = NULL, *mf_pool = NULL, *qf_cls = NULL, *qf_pool = NULL;
    int32_t *my = NULL, *qy = NULL;
    size_t nmem = 0;
    if (o.knn) {
        if (!(dm = ss_dataset_open(o.knn, &e))) tool_die("--knn: %s", e.msg);
        nmem = ss_dataset_len(dm);
        if (nmem == 0) tool_die("--knn: %s is empty", ss_dataset_spec(dm));
        mf_cls = malloc(sizeof(float) * nmem * D);
        mf_pool = malloc(sizeof(float) * nmem * D);
        my = malloc(sizeof(int32_t) * nmem);
        qf_cls = malloc(sizeof(float) * (n ? n : 1) * D);
        qf_pool = malloc(sizeof(float) * (n ? n : 1) * D);
        qy = malloc(sizeof(int32_t) * (n ? n : 1));
        if (!mf_cls || !mf_pool || !my || !qf_cls || !qf_pool || !qy) tool_die("out of memory for k-NN features");
        ss_loader_cfg mc = {.batch = o.batch, .seed = 0, .shuffle = 0, .drop_last = 0, .threads = o.loader_threads};
        ss_loader *lm = ss_loader_new(dm, tf, &mc, side, side, c.in_chans, &e);
        if (!lm) tool_die("--knn: %s", e.msg);
        tool_warn("k-NN memory %s: features of %zu images", ss_dataset_spec(dm), nmem);
        double tm = tool_now();
        if (ss_knn_features(run, slot, m, NULL, lm, nmem, mf_cls, mf_pool, my, knn_progress,
                            (void *)ss_dataset_spec(dm), &e))
            tool_die("--knn: %s: %s", ss_dataset_spec(dm), e.msg);
        tool_progress_end();
        ss_loader_free(lm);
        for (size_t i = 0; i < nmem; i++)
            if (my[i] < 0) tool_die("--knn: %s has unlabelled images (index %zu): a k-NN memory needs labels",
                                    ss_dataset_spec(dm), i);
        tool_warn("k-NN memory: %zu images in %.1f s", nmem, tool_now() - tm);
    }

    ss_swriter *out = NULL;
    if (!o.eval_only) {
        tool_refuse_tty_stdout(o.out);
        ss_record h;
        ss_record_init(&h);
        const char *kind = o.attn ? SS_KIND_ATTN : (o.features || o.pool || o.block_cls) ? SS_KIND_FEATURES : SS_KIND_LOGITS;
        if (ss_stream_header(&h, kind, PRODUCER, &e) || ss_record_set_meta(&h, "ssta.model", o.model, &e) ||
            ss_record_set_meta(&h, "ssta.model_md5", hex, &e) ||
            ss_record_set_meta(&h, "ssta.data", ss_dataset_spec(d), &e) ||
            ss_record_set_metaf(&h, &e, "ssta.img", "%d", side) ||
            ss_record_set_metaf(&h, &e, "ssta.tokens", "%d", N) ||
            ss_record_set_meta(&h, "ssta.attn", o.attn ? o.attn : "", &e) ||
            ss_record_set_meta(&h, "ssta.zero_heads", o.zero ? o.zero : "", &e) || ss_vit_cfg_to_meta(&c, &h, &e))
            tool_die_err(&e);
        out = ss_swriter_open(o.out, o.level == 0 ? 0 : o.level, &e);
        if (!out || ss_swriter_put(out, &h, &e)) tool_die_err(&e);
        ss_record_free(&h);
    }

    gather g = {.m = m, .selb = selb, .selh = selh, .nsh = nsh, .K = K, .L = L, .D = D, .N = N};
    for (int w = 0; w < SS_MAX_WORKERS; w++) ss_topk_init(&g.tk[w]);
    if (L > 256) tool_die("%s: more than 256 blocks", o.model);
    double t0 = tool_now();
    ss_batch bt;
    int rc;
    while ((rc = ss_loader_next(ld, &bt, &e)) == 1) {
        int B = bt.n;
        for (int j = 0; j < B; j++) {
            idx[j] = bt.index[j];
            lab[j] = bt.y[j];
        }
        ss_record r;
        ss_record_init(&r);
        int64_t s1[1] = {B}, s2[2] = {B, K}, sf[2] = {B, D}, sb[3] = {B, L, D}, sa[4] = {B, nsh, N, N};
        ss_tensor *tl = NULL, *tfe = NULL, *tpo = NULL, *tb = NULL;
        if ((K > 0 && !(tl = ss_record_add(&r, "logits", SS_F32, 2, s2, NULL, &e))) ||
            !ss_record_add(&r, "index", SS_I64, 1, s1, idx, &e) || !ss_record_add(&r, "label", SS_I64, 1, s1, lab, &e) ||
            (o.features && !(tfe = ss_record_add(&r, "features", SS_F32, 2, sf, NULL, &e))) ||
            (o.pool && !(tpo = ss_record_add(&r, "pooled", SS_F32, 2, sf, NULL, &e))) ||
            (o.block_cls && !(tb = ss_record_add(&r, "block_cls", SS_F32, 3, sb, NULL, &e))))
            tool_die_err(&e);
        g.logits = tl ? tl->data : NULL;
        g.feat = tfe ? tfe->data : qf_cls ? qf_cls + done * D : NULL;
        g.pool = tpo ? tpo->data : qf_pool ? qf_pool + done * D : NULL;
        g.bcls = tb ? tb->data : NULL;
        for (int l = 0; l < L; l++) {
            g.attn[l] = NULL;
            if (!selb[l]) continue;
            char nm[32];
            snprintf(nm, sizeof nm, "attn.%d", l);
            ss_tensor *ta = ss_record_add(&r, nm, SS_F32, 4, sa, NULL, &e);
            if (!ta) tool_die_err(&e);
            g.attn[l] = ta->data;
        }
        g.y = bt.y;
        ss_pass p = {.B = B, .nitems = 1, .obj = gather_outputs, .obj_ctx = &g};
        p.item[0] = (ss_pass_item){.slot = slot, .x = bt.x};
        for (int w = 0; w < SS_MAX_WORKERS; w++) g.bad[w] = -1;
        if (ss_runner_pass(run, &p, &e)) tool_die_err(&e);
        for (int w = 0; w < o.threads; w++)   /* a non-finite logit stops the run, naming the image */
            if (g.bad[w] >= 0) {
                char item[512];
                ss_dataset_item_name(d, (size_t)idx[g.bad[w]], item, sizeof item);
                tool_die("%s: non-finite logits for %s (index %lld)", o.model, item, (long long)idx[g.bad[w]]);
            }
        if (qy) {   /* the queries' k-NN features and labels */
            if (tfe) memcpy(qf_cls + done * D, tfe->data, sizeof(float) * (size_t)B * D);
            if (tpo) memcpy(qf_pool + done * D, tpo->data, sizeof(float) * (size_t)B * D);
            for (int j = 0; j < B; j++) {
                if (bt.y[j] < 0) {
                    char item[512];
                    ss_dataset_item_name(d, (size_t)idx[j], item, sizeof item);
                    tool_die("--knn: %s has no label (%s): k-NN accuracy needs labelled --data", item,
                             ss_dataset_spec(d));
                }
                qy[done + j] = bt.y[j];
            }
        }
        if (out && ss_swriter_put(out, &r, &e)) tool_die_err(&e);
        ss_record_free(&r);
        done += (size_t)B;
        tool_progress("%zu/%zu images  %.0f img/s", done, n, done / (tool_now() - t0));
    }
    if (rc < 0) tool_die_err(&e);
    ss_err skip1;
    size_t skipped = ss_loader_skipped(ld, &skip1);
    ss_loader_free(ld);
    tool_progress_end();
    if (out && ss_swriter_close(out, &e)) tool_die_err(&e);
    ss_topk tk;
    ss_topk_init(&tk);
    for (int w = 0; w < o.threads; w++) ss_topk_merge(&tk, &g.tk[w]);
    tool_report_skipped(ss_dataset_spec(d), skipped, &skip1);
    double kacc[2] = {0, 0};
    if (o.knn) {   /* class token, pooled patch tokens */
        if (done == 0) tool_die("--knn: %s gave no images", ss_dataset_spec(d));
        int ncl = ss_dataset_nclasses(dm) > ss_dataset_nclasses(d) ? ss_dataset_nclasses(dm) : ss_dataset_nclasses(d);
        ss_l2_normalize_rows(qf_cls, done, D);
        ss_l2_normalize_rows(qf_pool, done, D);
        for (int i = 0; i < 2; i++) {
            long hits;
            if (ss_knn_classify(i ? mf_pool : mf_cls, my, nmem, i ? qf_pool : qf_cls, qy, done, D, ncl, o.knn_k, o.knn_t,
                                NULL, &hits, &e))
                tool_die("--knn: %s", e.msg);
            kacc[i] = (double)hits / (double)done;
        }
        tool_warn("%s: k-NN top-1 %.2f%% (class token), %.2f%% (pooled patch tokens); memory %s (%zu images), "
                  "k %d, T %g", ss_dataset_spec(d), 100 * kacc[0], 100 * kacc[1], ss_dataset_spec(dm), nmem, o.knn_k,
                  o.knn_t);
    }
    int have_top = 0;
    double a1 = 0, a5 = 0;
    if (tk.outside > 0) {
        tool_warn("%s: %ld of %ld labelled images have labels >= %d, the model's class count: no accuracy reported",
                  ss_dataset_spec(d), tk.outside, tk.outside + tk.n, K);
    } else if (tk.n > 0) {
        have_top = 1;
        a1 = 100.0 * tk.top1 / tk.n;
        a5 = 100.0 * tk.top5 / tk.n;
        tool_warn("%s: top-1 %.2f%%  top-5 %.2f%%  (%ld labelled images, %.0f img/s)", ss_dataset_spec(d), a1, a5,
                  tk.n, done / (tool_now() - t0));
    }
    const char *rp = o.report ? o.report : (o.eval_only || strcmp(o.out, "-")) ? "-" : NULL;
    if (rp && (have_top || o.knn)) {   /* the table: --report FILE atomically, else stdout */
        ss_afile a;
        if (ss_afile_open(&a, rp, &e)) tool_die_err(&e);
        fprintf(a.f, "data\tn\ttop1\ttop5%s\n%s\t%ld", o.knn ? "\tknn_memory\tknn_top1\tknn_pool_top1" : "",
                ss_dataset_spec(d), have_top ? tk.n : (long)done);
        if (have_top) fprintf(a.f, "\t%.4f\t%.4f", a1 / 100, a5 / 100);
        else fprintf(a.f, "\t-\t-");
        if (o.knn) fprintf(a.f, "\t%s\t%.4f\t%.4f", ss_dataset_spec(dm), kacc[0], kacc[1]);
        fprintf(a.f, "\n");
        if (ss_afile_commit(&a, &e)) tool_die_err(&e);
    }
    ss_runner_free(run);
    free(idx); free(lab); free(selb); free(selh);
    free(mf_cls); free(mf_pool); free(my); free(qf_cls); free(qf_pool); free(qy);
    if (dm) ss_dataset_close(dm);
    ss_transform_free(tf);
    ss_dataset_close(d);
    ss_modelfile_close(&mf);
    return 0;
}
