/* attn-map — where a ViT's heads look: the class token's attention over the
 * image patches, per head, as a figure (the paper's Figure 1) and as a
 * measure — the share of that attention on the object's patches against the
 * share of the image the object covers. See attn-map(1).
 *
 * Not here: the attention itself (lib/vit.h), other outputs of the forward
 * (vit-fwd --attn writes the full maps as a stream).
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "data.h"
#include "io.h"
#include "modelfile.h"
#include "runner.h"
#include "tool.h"
#include "vit.h"

typedef struct opts {
    const char *model, *data, *heads, *out, *sheet;
    int batch, threads, loader_threads, nsheet;
    double thresh;
} opts;

static void usage(void)
{
    printf(
        "Usage: attn-map --model CKPT [--data SPEC] [--heads SEL] [-o TABLE] [--sheet OUT.png]\n"
        "Where each chosen head's class token attends: per head, the mean share of its\n"
        "attention over the patches that falls on the object (patches brighter than\n"
        "--thresh of the image's brightest pixel), against the share of the patches\n"
        "the object covers; their difference with a 95%% interval over the images.\n"
        "Writes a TSV table (block, head, images, cls_self, object_attn, object_area,\n"
        "excess, excess_lo, excess_hi); --sheet draws the first images and their maps.\n"
        "\n"
        "  --model CKPT        the model (safetensors, ssta metadata)\n"
        "  --data SPEC         images [fashion-mnist:test]\n"
        "  --heads SEL         blocks[:heads], e.g. 3,4,5 or 5:0,2 or all [all]\n"
        "  -o, --out FILE      the table (default -, stdout)\n"
        "  --sheet OUT.png     images (first column) and each chosen head's map\n"
        "  -n N [8]            images on the sheet\n"
        "  --thresh X [0.1]    object patches: mean brightness > X x the image's maximum\n"
        "  --batch N [128]  --threads N [2]  --loader-threads N [1]\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error, 2 usage error.\n");
}

enum { O_MODEL = 256, O_DATA, O_HEADS, O_SHEET, O_THRESH, O_BATCH, O_THREADS, O_LTHREADS };

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"model", 1, 0, O_MODEL}, {"data", 1, 0, O_DATA}, {"heads", 1, 0, O_HEADS}, {"out", 1, 0, 'o'},
        {"sheet", 1, 0, O_SHEET}, {"thresh", 1, 0, O_THRESH}, {"batch", 1, 0, O_BATCH},
        {"threads", 1, 0, O_THREADS}, {"loader-threads", 1, 0, O_LTHREADS}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->data = "fashion-mnist:test"; o->heads = "all"; o->out = "-"; o->nsheet = 8; o->thresh = 0.1;
    o->batch = 128; o->threads = 2; o->loader_threads = 1;
    int c;
    while ((c = tool_getopt(argc, argv, "o:n:h", lo)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case 'o': o->out = optarg; break;
        case 'n': o->nsheet = (int)tool_parse_long("-n", optarg, 1, 64); break;
        case O_MODEL: o->model = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_HEADS: o->heads = optarg; break;
        case O_SHEET: o->sheet = optarg; break;
        case O_THRESH: o->thresh = tool_parse_double("--thresh", optarg, 0, 1); break;
        case O_BATCH: o->batch = (int)tool_parse_long("--batch", optarg, 1, 65536); break;
        case O_THREADS: o->threads = (int)tool_parse_long("--threads", optarg, 1, 64); break;
        case O_LTHREADS: o->loader_threads = (int)tool_parse_long("--loader-threads", optarg, 1, 64); break;
        default: tool_usage_error("unknown option");
        }
    }
    if (optind < argc) tool_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->model) tool_usage_error("--model CKPT is required");
}

/* Per chosen head and worker: sums over the worker's images. */
typedef struct acc {
    double n, self, attn, area, ex, ex2;
} acc;

typedef struct ctx {
    const ss_vit *m;
    int nsel, *sel_l, *sel_h;
    int C, side, P, gw, N;
    float mean[3], std[3];
    double thresh;
    const float *x;          /* the batch (B,C,side,side), normalised */
    size_t first;            /* dataset position of the batch's sample 0 */
    acc *acc;                /* [W][nsel] */
    long *flat;              /* [W] images without object or background, left out */
    int nsheet;
    float *sheet_img;        /* [nsheet][side*side] brightness in [0,1] */
    float *sheet_map;        /* [nsheet][nsel][N-1] */
} ctx;

/* Brightness in [0,1] of pixel (y, x) of sample b: the channels' mean after
 * undoing the normalisation. */
static float bright(const ctx *c, int b, int y, int x)
{
    size_t hw = (size_t)c->side * c->side;
    const float *s = c->x + (size_t)b * c->C * hw;
    float v = 0;
    for (int ch = 0; ch < c->C; ch++) v += s[ch * hw + (size_t)y * c->side + x] * c->std[ch] + c->mean[ch];
    return v / c->C;
}

static int objective(void *arg, ss_objio *io, ss_err *e)
{
    ctx *c = arg;
    int T = c->N - 1, P = c->P;
    unsigned char *obj = malloc((size_t)T);
    if (!obj) return ss_fail(e, "out of memory");
    for (int i = 0; i < io->n; i++) {
        int b = io->lo + i;   /* in the batch */
        size_t pos = c->first + (size_t)b;
        float mx = 0;
        for (int y = 0; y < c->side; y++)
            for (int x = 0; x < c->side; x++) mx = fmaxf(mx, bright(c, b, y, x));
        int nobj = 0;
        for (int t = 0; t < T; t++) {
            int py = t / c->gw, px = t % c->gw;
            double s = 0;
            for (int y = 0; y < P; y++)
                for (int x = 0; x < P; x++) s += bright(c, b, py * P + y, px * P + x);
            obj[t] = s / (P * P) > c->thresh * mx;
            nobj += obj[t];
        }
        if (pos < (size_t)c->nsheet)
            for (int y = 0; y < c->side; y++)
                for (int x = 0; x < c->side; x++)
                    c->sheet_img[pos * c->side * c->side + (size_t)y * c->side + x] = bright(c, b, y, x);
        int flat = nobj == 0 || nobj == T;
        if (flat) c->flat[io->worker]++;
        for (int k = 0; k < c->nsel; k++) {
            const float *row = ss_vit_attn_map(c->m, io->acts[0], c->sel_l[k], c->sel_h[k], i);   /* (N,N), row 0 */
            double tot = 0, on = 0;
            for (int t = 0; t < T; t++) {
                tot += row[1 + t];
                if (obj[t]) on += row[1 + t];
            }
            if (!isfinite(tot)) {
                free(obj);
                return ss_fail(e, "image %zu, block %d head %d: non-finite attention", pos, c->sel_l[k], c->sel_h[k]);
            }
            if (pos < (size_t)c->nsheet) memcpy(c->sheet_map + (pos * c->nsel + k) * T, row + 1, sizeof(float) * T);
            if (flat || !(tot > 0)) continue;
            acc *a = &c->acc[(size_t)io->worker * c->nsel + k];
            double share = on / tot, area = (double)nobj / T;
            a->n += 1;
            a->self += row[0];
            a->attn += share;
            a->area += area;
            a->ex += share - area;
            a->ex2 += (share - area) * (share - area);
        }
    }
    free(obj);
    return 0;
}

/* The "hot" colour map: black, red, yellow, white. */
static void hot(float v, unsigned char *rgb)
{
    float t[3] = {3 * v, 3 * v - 1, 3 * v - 2};
    for (int i = 0; i < 3; i++) rgb[i] = (unsigned char)lrintf(255 * fminf(1, fmaxf(0, t[i])));
}

/* Draws the sheet into a (opened before the passes, so a bad path fails
 * before the work and a failed run leaves neither output). */
static void write_sheet(const opts *o, const ctx *c, int nimg, ss_afile *a)
{
    ss_err e;
    int z = 1, gap = 2, s = c->side, T = c->N - 1, cols = 1 + c->nsel;
    while (s * z < 64) z++;
    int cw = s * z;
    ss_image sh;
    if (ss_image_alloc(&sh, gap + nimg * (cw + gap), gap + cols * (cw + gap), 3, &e)) tool_die_err(&e);
    memset(sh.pix, 96, (size_t)sh.h * sh.w * 3);
    for (int r = 0; r < nimg; r++)
        for (int col = 0; col < cols; col++) {
            const float *map = col ? c->sheet_map + ((size_t)r * c->nsel + col - 1) * T : NULL;
            float mx = 0;
            for (int t = 0; map && t < T; t++) mx = fmaxf(mx, map[t]);
            for (int y = 0; y < cw; y++)
                for (int x = 0; x < cw; x++) {
                    unsigned char *p = sh.pix + ((size_t)(gap + r * (cw + gap) + y) * sh.w + gap + col * (cw + gap) + x) * 3;
                    int iy = y / z, ix = x / z;
                    if (!map) {
                        float v = c->sheet_img[(size_t)r * s * s + (size_t)iy * s + ix];
                        p[0] = p[1] = p[2] = (unsigned char)lrintf(255 * fminf(1, fmaxf(0, v)));
                    } else {
                        int t = (iy / c->P) * c->gw + ix / c->P;
                        hot(mx > 0 ? map[t] / mx : 0, p);
                    }
                }
        }
    tool_put_png(a, o->sheet, &sh);
    ss_image_free(&sh);
}

int main(int argc, char **argv)
{
    tool_init("attn-map");
    opts o;
    parse(argc, argv, &o);
    ss_err e;
    ss_modelfile mf;
    if (ss_modelfile_open(&mf, o.model, NULL, NULL, 0, &e)) tool_die_err(&e);
    const ss_vit_cfg *cf = &mf.m.cfg;
    int L = cf->depth, NH = cf->num_heads;
    uint8_t *blk = calloc((size_t)L, 1), *hd = calloc((size_t)NH, 1);
    if (!blk || !hd) tool_die("out of memory");
    tool_parse_block_heads("--heads", o.heads, L, NH, blk, hd);
    ctx c;
    memset(&c, 0, sizeof c);
    c.sel_l = malloc(sizeof(int) * (size_t)L * NH);
    c.sel_h = malloc(sizeof(int) * (size_t)L * NH);
    if (!c.sel_l || !c.sel_h) tool_die("out of memory");
    for (int l = 0; l < L; l++)
        for (int h = 0; h < NH; h++)
            if (blk[l] && hd[h]) c.sel_l[c.nsel] = l, c.sel_h[c.nsel++] = h;

    ss_dataset *d = ss_dataset_open(o.data, &e);
    if (!d) tool_die("--data: %s", e.msg);
    ss_modelfile_norm(&mf, d, c.mean, c.std);
    c.m = &mf.m;
    c.C = cf->in_chans;
    c.side = cf->img_size;
    c.P = cf->patch;
    c.gw = c.side / c.P;
    c.thresh = o.thresh;
    ss_transform *tf = ss_transform_new("eval", c.side, c.side, c.C, c.mean, c.std, &e);
    if (!tf) tool_die_err(&e);
    ss_loader_cfg lc = {.batch = o.batch, .seed = 0, .shuffle = 0, .drop_last = 0, .threads = o.loader_threads};
    ss_loader *ld = ss_loader_new(d, tf, &lc, c.side, c.side, c.C, &e);
    if (!ld || ss_loader_start_epoch(ld, 0, &e)) tool_die("%s: %s", ss_dataset_spec(d), e.msg);
    ss_runner *run = ss_runner_new(o.threads, &e);
    int slot = run ? ss_runner_slot(run, &mf.m, o.batch, c.side, c.side, -1, &e) : -1;
    if (slot < 0) tool_die_err(&e);
    c.N = ss_runner_acts(run, slot, 0)->N;
    int W = ss_runner_workers(run), T = c.N - 1;
    size_t n = ss_dataset_len(d);
    c.nsheet = o.sheet ? (int)(n < (size_t)o.nsheet ? n : (size_t)o.nsheet) : 0;
    c.acc = calloc((size_t)W * c.nsel, sizeof *c.acc);
    c.flat = calloc((size_t)W, sizeof *c.flat);
    c.sheet_img = calloc((size_t)c.nsheet * c.side * c.side + 1, sizeof(float));
    c.sheet_map = calloc((size_t)c.nsheet * c.nsel * T + 1, sizeof(float));
    if (!c.acc || !c.flat || !c.sheet_img || !c.sheet_map) tool_die("out of memory");

    ss_afile a, as;
    if (ss_afile_open(&a, o.out, &e) || (o.sheet && ss_afile_open(&as, o.sheet, &e))) tool_die_err(&e);

    ss_batch b;
    int rc;
    double t0 = tool_now();
    while ((rc = ss_loader_next(ld, &b, &e)) == 1) {
        ss_pass p;
        memset(&p, 0, sizeof p);
        p.B = b.n;
        p.nitems = 1;
        p.item[0] = (ss_pass_item){.slot = slot, .x = b.x};
        p.obj = objective;
        p.obj_ctx = &c;
        c.x = b.x;
        if (ss_runner_pass(run, &p, &e)) tool_die_err(&e);
        c.first += (size_t)b.n;
        tool_progress("%zu/%zu images  %.0f img/s", c.first, n, c.first / (tool_now() - t0));
    }
    if (rc < 0) tool_die("%s: %s", ss_dataset_spec(d), e.msg);
    tool_progress_end();
    if (c.first == 0) tool_die("%s: no images", ss_dataset_spec(d));

    long flat = 0;
    for (int w = 0; w < W; w++) flat += c.flat[w];
    fprintf(a.f, "block\thead\timages\tcls_self\tobject_attn\tobject_area\texcess\texcess_lo\texcess_hi\n");
    for (int k = 0; k < c.nsel; k++) {
        acc s = {0};
        for (int w = 0; w < W; w++) {   /* worker order: the same sums for a thread count */
            const acc *q = &c.acc[(size_t)w * c.nsel + k];
            s.n += q->n, s.self += q->self, s.attn += q->attn, s.area += q->area, s.ex += q->ex, s.ex2 += q->ex2;
        }
        fprintf(a.f, "%d\t%d\t%.0f\t", c.sel_l[k], c.sel_h[k], s.n);
        if (s.n < 2) {
            fprintf(a.f, "-\t-\t-\t-\t-\t-\n");
            continue;
        }
        double m = s.ex / s.n, var = (s.ex2 - s.n * m * m) / (s.n - 1), h = 1.959963984540054 * sqrt(fmax(var, 0) / s.n);
        fprintf(a.f, "%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\n", s.self / s.n, s.attn / s.n, s.area / s.n, m, m - h, m + h);
    }
    if (o.sheet) write_sheet(&o, &c, c.nsheet, &as);
    if ((o.sheet && ss_afile_commit(&as, &e)) || ss_afile_commit(&a, &e)) tool_die_err(&e);
    tool_warn("%s on %zu images of %s: %d heads%s%s", o.model, c.first, ss_dataset_spec(d), c.nsel,
              o.sheet ? "; sheet " : "", o.sheet ? o.sheet : "");
    if (flat)
        tool_warn("%ld images without object patches or without background patches at --thresh %g are left out "
                  "of the shares", flat, o.thresh);

    ss_runner_free(run);
    ss_loader_free(ld);
    ss_transform_free(tf);
    ss_dataset_close(d);
    ss_modelfile_close(&mf);
    free(blk), free(hd), free(c.sel_l), free(c.sel_h), free(c.acc), free(c.flat), free(c.sheet_img), free(c.sheet_map);
    return 0;
}
