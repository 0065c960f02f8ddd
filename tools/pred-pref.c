/* pred-pref — the prediction preference of two models (the paper's §5.1,
 * Figure 5): from two vit-fwd logit streams over the same labelled images,
 * how often each model predicts each class, and which images one gets right
 * and the other wrong. See pred-pref(1).
 *
 * Not here: running the models (vit-fwd), counting a hit (lib/metrics.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "ident.h"
#include "io.h"
#include "metrics.h"
#include "stream.h"
#include "tool.h"

typedef struct opts {
    const char *path[2], *out;
    int top;
} opts;

static void usage(void)
{
    printf(
        "Usage: pred-pref [OPTIONS] A.sts B.sts\n"
        "Compare the predictions of two models on the same labelled images, from the\n"
        "logit streams vit-fwd wrote for each (same --data, same order): per class, how\n"
        "often each model predicts it, its top-1 under each, and the images only A\n"
        "gets right (a_only) and only B (b_only). Writes a TSV table, one row per\n"
        "class; the totals, their 95 %% intervals and McNemar's test go to stderr.\n"
        "\n"
        "  -o, --out FILE  the table (default -, stdout)\n"
        "  --top N [3]     classes named in the summary for a_only and b_only\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error, 2 usage error.\n");
}

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {{"out", 1, 0, 'o'}, {"top", 1, 0, 't'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->out = "-";
    o->top = 3;
    int c;
    while ((c = tool_getopt(argc, argv, "o:h", lo)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case 'o': o->out = optarg; break;
        case 't': o->top = (int)tool_parse_long("--top", optarg, 0, 1000); break;
        default: tool_usage_error("unknown option");
        }
    }
    if (argc - optind != 2) tool_usage_error("two logit streams are needed (A.sts B.sts), %d given", argc - optind);
    o->path[0] = argv[optind];
    o->path[1] = argv[optind + 1];
    if (!strcmp(o->path[0], "-") && !strcmp(o->path[1], "-")) tool_usage_error("only one stream can be standard input");
}

/* One input: its reader, header, and the current record's tensors. */
typedef struct input {
    const char *path;
    ss_sreader *sr;
    ss_record hdr, rec;
    int K;
} input;

static void input_open(input *in, const char *path)
{
    ss_err e;
    in->path = path;
    in->K = 0;
    ss_record_init(&in->hdr);
    ss_record_init(&in->rec);
    if (!(in->sr = ss_sreader_open(path, &e))) tool_die_err(&e);
    int rc = ss_sreader_next(in->sr, &in->hdr, &e);
    if (rc < 0) tool_die_err(&e);
    if (rc == 0) tool_die("%s: empty stream, expected vit-fwd logits", path);
    if (!ss_stream_is_header(&in->hdr)) tool_die("%s: record 0 is not a stream header", path);
    if (ss_stream_expect(&in->hdr, SS_META_KIND, SS_KIND_LOGITS, &e))
        tool_die("%s: %s (vit-fwd without --features, --pool, --block-cls or --attn writes logits)", path, e.msg);
    if (!ss_record_meta(&in->hdr, SS_META_DATA)) tool_die("%s: the header has no %s", path, SS_META_DATA);
}

/* The next record's logits (n,K), index and label, checked; 0 at the end. */
static int input_next(input *in, const float **z, const int64_t **idx, const int64_t **y, int *n)
{
    ss_err e;
    long recno = ss_sreader_count(in->sr);
    int rc = ss_sreader_next(in->sr, &in->rec, &e);
    if (rc < 0) tool_die_err(&e);
    if (rc == 0) return 0;
    const ss_tensor *tl = ss_record_find(&in->rec, "logits"), *ti = ss_record_find(&in->rec, "index"),
                    *ty = ss_record_find(&in->rec, "label");
    if (!tl || tl->dtype != SS_F32 || tl->ndim != 2) tool_die("%s: record %ld: no F32 [n,classes] logits", in->path, recno);
    int rows = (int)tl->shape[0], K = (int)tl->shape[1];
    if (!ti || ti->dtype != SS_I64 || ti->ndim != 1 || ti->shape[0] != rows || !ty || ty->dtype != SS_I64 ||
        ty->ndim != 1 || ty->shape[0] != rows)
        tool_die("%s: record %ld: index and label must be I64 [%d]", in->path, recno, rows);
    if (in->K && K != in->K) tool_die("%s: record %ld: %d classes, earlier records %d", in->path, recno, K, in->K);
    in->K = K;
    *z = (const float *)tl->data;
    *idx = (const int64_t *)ti->data;
    *y = (const int64_t *)ty->data;
    *n = rows;
    return 1;
}

static void input_close(input *in)
{
    ss_sreader_close(in->sr);
    ss_record_free(&in->hdr);
    ss_record_free(&in->rec);
}

/* Per true class. */
typedef struct cls_count {
    long n, hit[2], pred[2], only[2];
} cls_count;

static cls_count *grow(cls_count *c, int *cap, int need)
{
    if (need <= *cap) return c;
    cls_count *nc = realloc(c, sizeof *nc * (size_t)need);
    if (!nc) tool_die("out of memory");
    memset(nc + *cap, 0, sizeof *nc * (size_t)(need - *cap));
    *cap = need;
    return nc;
}

/* The classes with the largest count f (a_only or b_only), in order. */
static void top_classes(const cls_count *c, int ncls, int which, int top, const char *const *names, char *buf,
                        size_t len)
{
    int *used = calloc((size_t)ncls, sizeof *used);
    if (!used) tool_die("out of memory");
    size_t o = 0;
    buf[0] = 0;
    for (int t = 0; t < top && t < ncls; t++) {
        int best = -1;
        for (int k = 0; k < ncls; k++)
            if (!used[k] && c[k].only[which] > 0 && (best < 0 || c[k].only[which] > c[best].only[which])) best = k;
        if (best < 0) break;
        used[best] = 1;
        o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s (%ld)", t ? ", " : "", names[best],
                              c[best].only[which]);
    }
    if (!buf[0]) snprintf(buf, len, "none");
    free(used);
}

int main(int argc, char **argv)
{
    tool_init("pred-pref");
    opts o;
    parse(argc, argv, &o);
    ss_err e;
    input in[2];
    for (int m = 0; m < 2; m++) input_open(&in[m], o.path[m]);
    const char *spec = ss_record_meta(&in[0].hdr, SS_META_DATA);
    if (ss_stream_expect(&in[1].hdr, SS_META_DATA, spec, &e))
        tool_die("%s: %s: not the images of %s", o.path[1], e.msg, o.path[0]);

    ss_afile a;   /* opened now: a bad path fails before reading the streams */
    if (ss_afile_open(&a, o.out, &e)) tool_die_err(&e);
    cls_count *c = NULL;
    int cap = 0;
    long n = 0, both = 0, neither = 0, rec = 0;
    for (;;) {
        const float *z[2];
        const int64_t *idx[2], *y[2];
        int rows[2], more[2];
        for (int m = 0; m < 2; m++) more[m] = input_next(&in[m], &z[m], &idx[m], &y[m], &rows[m]);
        rec++;
        if (!more[0] || !more[1]) {
            if (more[0] != more[1])
                tool_die("%s ends at record %ld, %s goes on: not the same images", o.path[more[0] ? 1 : 0], rec,
                         o.path[more[0] ? 0 : 1]);
            break;
        }
        if (rows[0] != rows[1]) tool_die("record %ld: %d images in %s, %d in %s", rec, rows[0], o.path[0], rows[1], o.path[1]);
        if (in[0].K != in[1].K)
            tool_die("%s has %d classes, %s %d: not comparable", o.path[0], in[0].K, o.path[1], in[1].K);
        int K = in[0].K;
        c = grow(c, &cap, K);
        for (int i = 0; i < rows[0]; i++) {
            if (idx[0][i] != idx[1][i] || y[0][i] != y[1][i])
                tool_die("record %ld, row %d: image %lld (label %lld) in %s, %lld (label %lld) in %s", rec, i,
                         (long long)idx[0][i], (long long)y[0][i], o.path[0], (long long)idx[1][i],
                         (long long)y[1][i], o.path[1]);
            long lab = (long)y[0][i];
            if (lab < 0) tool_die("%s: image %lld has no label: a comparison needs labelled images", o.path[0], (long long)idx[0][i]);
            if (lab >= K) tool_die("image %lld: label %ld, the models have %d classes", (long long)idx[0][i], lab, K);
            int p[2], hit[2];
            for (int m = 0; m < 2; m++) {
                p[m] = ss_argmax(z[m] + (size_t)i * K, K);
                if (p[m] < 0) tool_die("%s: image %lld: a non-finite logit", o.path[m], (long long)idx[m][i]);
                hit[m] = p[m] == lab;
                c[p[m]].pred[m]++;
                c[lab].hit[m] += hit[m];
            }
            c[lab].n++;
            if (hit[0] && !hit[1]) c[lab].only[0]++;
            if (hit[1] && !hit[0]) c[lab].only[1]++;
            both += hit[0] && hit[1];
            neither += !hit[0] && !hit[1];
            n++;
        }
    }
    if (n == 0) tool_die("%s: no images", o.path[0]);
    int K = in[0].K;

    /* class names from the data set the streams name, when it opens here */
    const char **names = calloc((size_t)K, sizeof *names);
    char (*num)[16] = calloc((size_t)K, sizeof *num);
    if (!names || !num) tool_die("out of memory");
    /* not a stream: its images would be read again (stream:- from our own stdin) */
    ss_dataset *d = strncmp(spec, "stream:", 7) ? ss_dataset_open(spec, &e) : NULL;
    for (int k = 0; k < K; k++) {
        snprintf(num[k], sizeof num[k], "%d", k);
        names[k] = d && k < ss_dataset_nclasses(d) && ss_dataset_class_name(d, k) ? ss_dataset_class_name(d, k) : num[k];
    }

    fprintf(a.f, "class\tname\tn\ttop1_a\ttop1_b\tpred_a\tpred_b\ta_only\tb_only\n");
    long hits[2] = {0, 0}, only[2] = {0, 0};
    for (int k = 0; k < K; k++) {
        fprintf(a.f, "%d\t%s\t%ld\t", k, names[k], c[k].n);
        for (int m = 0; m < 2; m++) {
            if (c[k].n) fprintf(a.f, "%.4f\t", (double)c[k].hit[m] / c[k].n);
            else fprintf(a.f, "-\t");
        }
        fprintf(a.f, "%ld\t%ld\t%ld\t%ld\n", c[k].pred[0], c[k].pred[1], c[k].only[0], c[k].only[1]);
        for (int m = 0; m < 2; m++) hits[m] += c[k].hit[m], only[m] += c[k].only[m];
    }
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);

    double lo, hi;
    tool_warn("%ld images of %s: top-1 A %.2f%%, B %.2f%% (A = %s, B = %s)", n, spec, 100.0 * hits[0] / n,
              100.0 * hits[1] / n, o.path[0], o.path[1]);
    ss_wilson95(only[0] + only[1], n, &lo, &hi);
    tool_warn("one right, the other wrong: %ld (%.2f%%, 95%% CI [%.2f, %.2f]); both right %ld, both wrong %ld",
              only[0] + only[1], 100.0 * (only[0] + only[1]) / n, 100 * lo, 100 * hi, both, neither);
    for (int m = 0; m < 2; m++) {
        ss_wilson95(only[m], n, &lo, &hi);
        char buf[1024];
        top_classes(c, K, m, o.top, names, buf, sizeof buf);
        tool_warn("only %s right: %ld (%.2f%%, [%.2f, %.2f]); most in: %s", m ? "B" : "A", only[m],
                  100.0 * only[m] / n, 100 * lo, 100 * hi, buf);
    }
    tool_warn("McNemar's exact test, A vs B top-1: p = %.3g", ss_mcnemar_exact_p(only[0], only[1]));

    if (d) ss_dataset_close(d);
    free(names), free(num), free(c);
    for (int m = 0; m < 2; m++) input_close(&in[m]);
    return 0;
}
