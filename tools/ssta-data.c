/* ssta-data — inspect data set specs, export them as image streams, look at
 * augmented views, and measure the loader's throughput.
 *
 * A thin layer over lib/data.h: every subcommand opens one SPEC
 * (ssta-data(5)), does its job, and reports errors as
 * "ssta-data: <what>: <why>". Manual: ssta-data(1).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "codec.h"
#include "data.h"
#include "io.h"
#include "knn.h"
#include "logreg.h"
#include "stream.h"
#include "tool.h"

static const char usage_main[] =
    "Usage: ssta-data COMMAND [OPTION...] SPEC\n"
    "Inspect and export the data sets that every ssta tool reads (SPEC: see ssta-data(5),\n"
    "e.g. fashion-mnist:train, cifar10:FILE.tar.gz:test, folder:DIR_OR_ARCHIVE).\n"
    "\n"
    "Commands:\n"
    "  info SPEC                      canonical spec, size, classes, geometry (TSV)\n"
    "  classes [-o FILE] SPEC         class names in label order, one a line\n"
    "  export [-n N] [-l LEVEL|-u] [-o OUT] SPEC   the images as an image stream\n"
    "  view -i INDEX [-p PRESET] [-s SIZE] [--seed S] [--epoch E] -o OUT.png SPEC\n"
    "                                 one augmented view, de-normalised, as PNG\n"
    "  bench [-p PRESET] [-s SIZE] [-t THREADS] [-b BATCH] [-k BATCHES] SPEC\n"
    "                                 loader throughput (TSV on stdout)\n"
    "  check SPEC                     decode every sample; name each unreadable one\n"
    "  knn [-k K] [-T TEMP] [-s SIZE] MEMORY QUERY\n"
    "                                 raw-pixel k-NN top-1 of QUERY against MEMORY\n"
    "  linear [--l2 LIST] [-s SIZE] TRAIN VAL TEST\n"
    "                                 raw-pixel linear-probe top-1 (as linear-probe)\n"
    "\n"
    "'ssta-data COMMAND --help' describes each command. Exit status: 0 success,\n"
    "1 bad or unreadable data, 2 usage error.\n";

static const char usage_info[] =
    "Usage: ssta-data info SPEC\n"
    "Prints 'key<TAB>value' lines: spec (canonical), samples, classes, height,\n"
    "width, channels (0 where it varies between samples), mean, std (the data\n"
    "set's customary normalisation, comma-separated), and per_class (the count of\n"
    "each class, comma-separated, in label order).\n";

static const char usage_classes[] =
    "Usage: ssta-data classes [-o FILE] SPEC\n"
    "Writes the class names in label order, one a line, to standard output or\n"
    "atomically to FILE. Give FILE to other runs as ',classes=FILE' so that they\n"
    "agree on the label of every class.\n";

static const char usage_export[] =
    "Usage: ssta-data export [-n N] [-l LEVEL | -u] [-o OUT] SPEC\n"
    "Writes the data set as an image stream (sts(5), kind \"images\"): a header\n"
    "record with ssta.classes and ssta.data, then one record per sample with\n"
    "\"image\" U8 [H,W,C] and \"label\" I64. Read it back with the spec\n"
    "stream:OUT (or stream:- from a pipe).\n"
    "  -n, --count N      only the first N samples\n"
    "  -l, --level LEVEL  zstd level 1..19 (default 3)\n"
    "  -u, --uncompressed plain records\n"
    "  -o, --output OUT   output file (default: standard output, never a terminal)\n";

static const char usage_view[] =
    "Usage: ssta-data view -i INDEX [-p PRESET] [-s SIZE] [--seed S] [--epoch E] -o OUT.png SPEC\n"
    "Computes the view of sample INDEX in epoch E for seed S exactly as the\n"
    "loader would, un-normalises it and writes it as a PNG.\n"
    "  -p, --preset P   transform preset (default eval; see ssta-data(5))\n"
    "  -s, --size N     view side in pixels (default: the data's height, else 224)\n";

static const char usage_bench[] =
    "Usage: ssta-data bench [-p PRESET] [-s SIZE] [-t THREADS] [-b BATCH] [-k BATCHES] SPEC\n"
    "Runs the loader for BATCHES batches (default 20) of BATCH views (default 128)\n"
    "with THREADS workers (default 1) and prints one TSV line (with a header):\n"
    "  preset size threads batch images seconds img_per_s img_per_s_per_thread ms_per_batch\n"
    "  cpu_seconds img_per_cpu_s\n"
    "seconds counts from the start of the epoch to the last batch received, so it\n"
    "includes decoding, augmentation and hand-over, but no model. cpu_seconds is\n"
    "the process's user+system CPU time over the same span (all threads), so\n"
    "img_per_cpu_s is the per-core rate even on a busy machine.\n"
    "  --seed S         augmentation seed (default 0)\n";

static const char usage_check[] =
    "Usage: ssta-data check SPEC\n"
    "Decodes every sample of SPEC. Each one that cannot be read or decoded is\n"
    "reported on standard error as 'ssta-data: <file or member or record>: <why>';\n"
    "a summary line 'SPEC: N samples, K unreadable' follows. Exit status 1 if K > 0.\n";

static const char usage_knn[] =
    "Usage: ssta-data knn [-k K] [-T TEMP] [-s SIZE] [-o FILE] MEMORY QUERY\n"
    "The raw-pixel baseline of a feature k-NN: every image of both labelled data\n"
    "sets at SIZE x SIZE (default: MEMORY's height; eval transform), pixels scaled\n"
    "to [0,1] with no other normalisation, as a vector; DINO's weighted k-NN rule\n"
    "(rows L2-normalised, cosine similarity, the K most similar MEMORY images vote\n"
    "with weight exp(sim/TEMP), lowest class on a tie), the rule vit-fwd --knn\n"
    "applies to a model's features. Prints a TSV table (memory, query, n, k, t,\n"
    "top1) to standard output or atomically to FILE.\n"
    "  -k, --k K        neighbours (default 20)\n"
    "  -T, --temp TEMP  vote temperature (default 0.07)\n";

static const char usage_linear[] =
    "Usage: ssta-data linear [--l2 LIST] [--max-iter N] [-s SIZE] [-o FILE] TRAIN VAL TEST\n"
    "The raw-pixel baseline of a linear probe: every image at SIZE x SIZE (default:\n"
    "TRAIN's height; eval transform), pixels in [0,1] as a vector, standardised\n"
    "with TRAIN's statistics, then the protocol of linear-probe(1): multinomial\n"
    "logistic regression by L-BFGS for each L2 strength (strongest first, warm-\n"
    "started), the one with the best top-1 on VAL kept and measured once on TEST.\n"
    "Each fit goes to standard error; a TSV table (train, val, test, l2, iters,\n"
    "train_top1, val_top1, test_top1) to standard output or atomically to FILE.\n"
    "  --l2 LIST        comma-separated strengths (default 1e-5,1e-4,1e-3,1e-2,1e-1)\n"
    "  --max-iter N     L-BFGS iterations per strength (default 1000)\n"
    "  -s, --size SIZE  image side\n"
    "  -o, --output FILE\n";

static ss_dataset *open_spec(const char *spec)
{
    ss_err e;
    ss_dataset *d = ss_dataset_open(spec, &e);
    if (!d) tool_die_err(&e);
    return d;
}

static int want_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

static const char *one_spec(int argc, char **argv)
{
    if (optind != argc - 1) tool_usage_error(optind >= argc ? "missing SPEC" : "more than one SPEC");
    return argv[optind];
}

static int cmd_info(int argc, char **argv)
{
    if (want_help(argc, argv)) return fputs(usage_info, stdout), 0;
    optind = 1;
    if (tool_getopt(argc, argv, "", NULL) != -1) tool_usage_error("unknown option");
    ss_dataset *d = open_spec(one_spec(argc, argv));
    int h, w, c, K = ss_dataset_nclasses(d);
    float mean[3], std[3];
    ss_dataset_geometry(d, &h, &w, &c);
    ss_dataset_norm(d, mean, std);
    int nc = c ? c : 3;
    printf("spec\t%s\nsamples\t%zu\nclasses\t%d\nheight\t%d\nwidth\t%d\nchannels\t%d\n",
           ss_dataset_spec(d), ss_dataset_len(d), K, h, w, c);
    printf("mean\t");
    for (int k = 0; k < nc; k++) printf("%s%.4f", k ? "," : "", mean[k]);
    printf("\nstd\t");
    for (int k = 0; k < nc; k++) printf("%s%.4f", k ? "," : "", std[k]);
    size_t *cnt = calloc((size_t)K, sizeof(size_t));
    if (!cnt) tool_die("out of memory");
    for (size_t i = 0; i < ss_dataset_len(d); i++) cnt[ss_dataset_label(d, i)]++;
    printf("\nper_class\t");
    for (int k = 0; k < K; k++) printf("%s%zu", k ? "," : "", cnt[k]);
    printf("\n");
    free(cnt);
    ss_dataset_close(d);
    return 0;
}

static int cmd_classes(int argc, char **argv)
{
    if (want_help(argc, argv)) return fputs(usage_classes, stdout), 0;
    const char *out = NULL;
    int opt;
    static const struct option lo[] = {{"output", required_argument, 0, 'o'}, {0, 0, 0, 0}};
    optind = 1;
    while ((opt = tool_getopt(argc, argv, "o:", lo)) != -1) {
        if (opt == 'o') out = optarg;
        else tool_usage_error("unknown option");
    }
    ss_dataset *d = open_spec(one_spec(argc, argv));
    ss_err e;
    if (out && strcmp(out, "-")) {
        if (ss_dataset_write_classes(d, out, &e)) tool_die_err(&e);
    } else {
        for (int k = 0; k < ss_dataset_nclasses(d); k++) printf("%s\n", ss_dataset_class_name(d, k));
    }
    ss_dataset_close(d);
    return 0;
}

static int cmd_export(int argc, char **argv)
{
    if (want_help(argc, argv)) return fputs(usage_export, stdout), 0;
    const char *out = "-";
    long count = -1, level = 3;
    int opt;
    static const struct option lo[] = {{"count", required_argument, 0, 'n'},
                                       {"level", required_argument, 0, 'l'},
                                       {"uncompressed", no_argument, 0, 'u'},
                                       {"output", required_argument, 0, 'o'},
                                       {0, 0, 0, 0}};
    optind = 1;
    while ((opt = tool_getopt(argc, argv, "n:l:uo:", lo)) != -1) {
        switch (opt) {
        case 'n': count = tool_parse_long("--count", optarg, 0, 1L << 40); break;
        case 'l': level = tool_parse_long("--level", optarg, 1, 19); break;
        case 'u': level = 0; break;
        case 'o': out = optarg; break;
        default: tool_usage_error("unknown option");
        }
    }
    const char *spec = one_spec(argc, argv);
    tool_refuse_tty_stdout(out);
    ss_dataset *d = open_spec(spec);
    ss_err e;
    ss_swriter *w = ss_swriter_open(out, (int)level, &e);
    if (!w) tool_die_err(&e);
    ss_record r;
    ss_record_init(&r);
    if (ss_imgstream_header(&r, "ssta-data export", d, &e) || ss_swriter_put(w, &r, &e)) {
        ss_swriter_abort(w);
        tool_die_err(&e);
    }
    ss_record_free(&r);
    size_t n = ss_dataset_len(d);
    if (count >= 0 && (size_t)count < n) n = (size_t)count;
    for (size_t i = 0; i < n; i++) {
        ss_image im;
        int label;
        if (ss_dataset_get(d, i, &im, &label, &e) || ss_imgstream_put(w, &im, label, &e)) {
            ss_swriter_abort(w);
            tool_die_err(&e);
        }
        ss_image_free(&im);
        if (i % 1000 == 0) tool_progress("exported %zu/%zu", i, n);
    }
    tool_progress_end();
    if (ss_swriter_close(w, &e)) tool_die_err(&e);
    ss_dataset_close(d);
    return 0;
}

static int cmd_view(int argc, char **argv)
{
    if (want_help(argc, argv)) return fputs(usage_view, stdout), 0;
    const char *out = NULL, *preset = "eval";
    long index = -1, size = 0;
    uint64_t seed = 0;
    long epoch = 0;
    int opt;
    static const struct option lo[] = {{"index", required_argument, 0, 'i'}, {"preset", required_argument, 0, 'p'},
                                       {"size", required_argument, 0, 's'},  {"seed", required_argument, 0, 'S'},
                                       {"epoch", required_argument, 0, 'E'}, {"output", required_argument, 0, 'o'},
                                       {0, 0, 0, 0}};
    optind = 1;
    while ((opt = tool_getopt(argc, argv, "i:p:s:o:", lo)) != -1) {
        switch (opt) {
        case 'i': index = tool_parse_long("--index", optarg, 0, 1L << 40); break;
        case 'p': preset = optarg; break;
        case 's': size = tool_parse_long("--size", optarg, 1, 4096); break;
        case 'S': seed = tool_parse_u64("--seed", optarg); break;
        case 'E': epoch = tool_parse_long("--epoch", optarg, 0, 0xffffffffL); break;
        case 'o': out = optarg; break;
        default: tool_usage_error("unknown option");
        }
    }
    if (index < 0) tool_usage_error("missing -i INDEX");
    if (!out) tool_usage_error("missing -o OUT.png");
    ss_dataset *d = open_spec(one_spec(argc, argv));
    if ((size_t)index >= ss_dataset_len(d))
        tool_die("%s: index %ld out of range (%zu samples)", ss_dataset_spec(d), index, ss_dataset_len(d));
    int h, w, c;
    ss_dataset_geometry(d, &h, &w, &c);
    if (!size) size = h ? h : 224;
    if (!c) c = 3;
    float mean[3], std[3];
    ss_dataset_norm(d, mean, std);
    ss_err e;
    ss_transform *t = ss_transform_new(preset, (int)size, (int)size, c, mean, std, &e);
    if (!t) tool_usage_error("%s", e.msg);
    ss_image im, o;
    int label;
    if (ss_dataset_get_ex(d, (size_t)index, ss_transform_min_side(t), c, &im, &label, &e)) tool_die_err(&e);
    size_t per = (size_t)c * size * size;
    float *v = malloc(sizeof(float) * per);
    if (!v || ss_image_alloc(&o, (int)size, (int)size, c, &e)) tool_die("out of memory");
    if (ss_transform_apply(t, &im, seed, (uint32_t)epoch, (uint64_t)index, v, &e)) tool_die_err(&e);
    for (int k = 0; k < c; k++)
        for (long p = 0; p < size * size; p++) {
            float x = (v[k * size * size + p] * std[k] + mean[k]) * 255.0f + 0.5f;
            o.pix[p * c + k] = (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x);
        }
    ss_afile a;
    tool_refuse_tty_stdout(out);
    if (ss_afile_open(&a, out, &e)) tool_die_err(&e);
    tool_put_png(&a, out, &o);
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);
    fprintf(stderr, "ssta-data: %s: sample %ld (label %d, %s), %s\n", out, index, label,
            ss_dataset_class_name(d, label), ss_transform_describe(t));
    free(v);
    ss_image_free(&im), ss_image_free(&o);
    ss_transform_free(t);
    ss_dataset_close(d);
    return 0;
}

/* User + system CPU time of the whole process (all threads), seconds. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int cmd_bench(int argc, char **argv)
{
    if (want_help(argc, argv)) return fputs(usage_bench, stdout), 0;
    const char *preset = "rrc";
    long size = 224, threads = 1, batch = 128, batches = 20;
    uint64_t seed = 0;
    int opt;
    static const struct option lo[] = {{"preset", required_argument, 0, 'p'}, {"size", required_argument, 0, 's'},
                                       {"threads", required_argument, 0, 't'}, {"batch", required_argument, 0, 'b'},
                                       {"batches", required_argument, 0, 'k'}, {"seed", required_argument, 0, 'S'},
                                       {0, 0, 0, 0}};
    optind = 1;
    while ((opt = tool_getopt(argc, argv, "p:s:t:b:k:", lo)) != -1) {
        switch (opt) {
        case 'p': preset = optarg; break;
        case 's': size = tool_parse_long("--size", optarg, 1, 4096); break;
        case 't': threads = tool_parse_long("--threads", optarg, 1, 64); break;
        case 'b': batch = tool_parse_long("--batch", optarg, 1, 65536); break;
        case 'k': batches = tool_parse_long("--batches", optarg, 1, 1L << 30); break;
        case 'S': seed = tool_parse_u64("--seed", optarg); break;
        default: tool_usage_error("unknown option");
        }
    }
    ss_dataset *d = open_spec(one_spec(argc, argv));
    int h, w, c;
    ss_dataset_geometry(d, &h, &w, &c);
    if (!c) c = 3;
    float mean[3], std[3];
    ss_dataset_norm(d, mean, std);
    ss_err e;
    ss_transform *t = ss_transform_new(preset, (int)size, (int)size, c, mean, std, &e);
    if (!t) tool_usage_error("%s", e.msg);
    ss_loader_cfg cfg = {.batch = (int)batch, .seed = seed, .shuffle = 1, .threads = (int)threads,
                         .prefetch = 2 * (int)threads};
    ss_loader *l = ss_loader_new(d, t, &cfg, (int)size, (int)size, c, &e);
    if (!l) tool_die_err(&e);
    size_t images = 0;
    long got = 0;
    double t0 = tool_now(), c0 = cpu_seconds();
    for (uint32_t ep = 0; got < batches; ep++) {
        if (ss_loader_start_epoch(l, ep, &e)) tool_die_err(&e);
        ss_batch b;
        int rc = 0;
        while (got < batches && (rc = ss_loader_next(l, &b, &e)) == 1) {
            images += (size_t)b.n;
            got++;
        }
        if (got < batches && rc < 0) tool_die_err(&e);
        if (ep > 1000000) break;
    }
    double secs = tool_now() - t0, cpu = cpu_seconds() - c0;
    printf("preset\tsize\tthreads\tbatch\timages\tseconds\timg_per_s\timg_per_s_per_thread\tms_per_batch"
           "\tcpu_seconds\timg_per_cpu_s\n");
    printf("%s\t%ld\t%ld\t%ld\t%zu\t%.3f\t%.1f\t%.1f\t%.2f\t%.3f\t%.1f\n", preset, size, threads, batch, images,
           secs, images / secs, images / secs / threads, 1000.0 * secs / got, cpu, cpu > 0 ? images / cpu : 0.0);
    ss_loader_free(l);
    ss_transform_free(t);
    ss_dataset_close(d);
    return 0;
}

static int cmd_check(int argc, char **argv)
{
    if (want_help(argc, argv)) return fputs(usage_check, stdout), 0;
    optind = 1;
    if (tool_getopt(argc, argv, "", NULL) != -1) tool_usage_error("unknown option");
    ss_dataset *d = open_spec(one_spec(argc, argv));
    size_t n = ss_dataset_len(d), bad = 0;
    for (size_t i = 0; i < n; i++) {
        ss_image im;
        int label;
        ss_err e;
        if (ss_dataset_get(d, i, &im, &label, &e)) {
            tool_warn("%s", e.msg);
            bad++;
        } else {
            ss_image_free(&im);
        }
        if (i % 1000 == 0) tool_progress("checked %zu/%zu", i, n);
    }
    tool_progress_end();
    fprintf(stderr, "ssta-data: %s: %zu samples, %zu unreadable\n", ss_dataset_spec(d), n, bad);
    ss_dataset_close(d);
    return bad ? 1 : 0;
}

/* Every image of d as a [0,1] pixel vector (n, c*size*size), L2-normalised
 * when unit is set, labels into y. */
static float *pixel_rows(ss_dataset *d, int size, int c, int32_t *y, int unit)
{
    ss_err e;
    float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    ss_transform *t = ss_transform_new("eval", size, size, c, zero, one, &e);
    if (!t) tool_die_err(&e);
    ss_loader_cfg cfg = {.batch = 256, .seed = 0, .shuffle = 0, .threads = 1};
    ss_loader *l = ss_loader_new(d, t, &cfg, size, size, c, &e);
    if (!l || ss_loader_start_epoch(l, 0, &e)) tool_die_err(&e);
    size_t n = ss_dataset_len(d), D = (size_t)c * size * size, off = 0;
    float *x = malloc(sizeof(float) * (n ? n : 1) * D);
    if (!x) tool_die("out of memory for %zu images of %zu pixels", n, D);
    ss_batch b;
    int rc;
    while ((rc = ss_loader_next(l, &b, &e)) == 1) {
        memcpy(x + off * D, b.x, sizeof(float) * (size_t)b.n * D);
        for (int i = 0; i < b.n; i++) {
            if (b.y[i] < 0) tool_die("%s: sample %zu has no label", ss_dataset_spec(d), off + i);
            y[off + i] = b.y[i];
        }
        off += (size_t)b.n;
        tool_progress("%s: %zu/%zu images", ss_dataset_spec(d), off, n);
    }
    tool_progress_end();
    if (rc < 0) tool_die_err(&e);
    ss_loader_free(l);
    ss_transform_free(t);
    if (unit) ss_l2_normalize_rows(x, off, (int)D);
    return x;
}

static int cmd_knn(int argc, char **argv)
{
    if (want_help(argc, argv)) return fputs(usage_knn, stdout), 0;
    long k = 20, size = 0;
    double temp = 0.07;
    const char *out = "-";
    int opt;
    static const struct option lo[] = {{"k", required_argument, 0, 'k'}, {"temp", required_argument, 0, 'T'},
                                       {"size", required_argument, 0, 's'}, {"output", required_argument, 0, 'o'},
                                       {0, 0, 0, 0}};
    optind = 1;
    while ((opt = tool_getopt(argc, argv, "k:T:s:o:", lo)) != -1) {
        switch (opt) {
        case 'k': k = tool_parse_long("--k", optarg, 1, 100000); break;
        case 'T': temp = tool_parse_double("--temp", optarg, 1e-6, 1e6); break;
        case 's': size = tool_parse_long("--size", optarg, 1, 4096); break;
        case 'o': out = optarg; break;
        default: tool_usage_error("unknown option");
        }
    }
    if (argc - optind != 2) tool_usage_error("need MEMORY and QUERY");
    ss_dataset *dm = open_spec(argv[optind]), *dq = open_spec(argv[optind + 1]);
    int h, w, c, hq, wq, cq;
    ss_dataset_geometry(dm, &h, &w, &c);
    ss_dataset_geometry(dq, &hq, &wq, &cq);
    if (!c) c = 3;
    if (cq && cq != c) tool_die("%s has %d channels, %s %d", ss_dataset_spec(dm), c, ss_dataset_spec(dq), cq);
    if (!size) size = h > 0 ? h : 224;
    size_t nm = ss_dataset_len(dm), nq = ss_dataset_len(dq);
    if (!nm || !nq) tool_die("%s: empty", nm ? ss_dataset_spec(dq) : ss_dataset_spec(dm));
    int32_t *ym = malloc(sizeof(int32_t) * nm), *yq = malloc(sizeof(int32_t) * nq);
    if (!ym || !yq) tool_die("out of memory");
    float *xm = pixel_rows(dm, (int)size, c, ym, 1), *xq = pixel_rows(dq, (int)size, c, yq, 1);
    int ncl = ss_dataset_nclasses(dm) > ss_dataset_nclasses(dq) ? ss_dataset_nclasses(dm) : ss_dataset_nclasses(dq);
    ss_err e;
    long hits;
    if (ss_knn_classify(xm, ym, nm, xq, yq, nq, c * (int)size * (int)size, ncl, (int)k, temp, NULL, &hits, &e))
        tool_die_err(&e);
    ss_afile a;
    if (ss_afile_open(&a, out, &e)) tool_die_err(&e);
    fprintf(a.f, "memory\tquery\tn\tk\tt\ttop1\n%s\t%s\t%zu\t%ld\t%g\t%.4f\n", ss_dataset_spec(dm),
            ss_dataset_spec(dq), nq, k, temp, (double)hits / (double)nq);
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);
    free(xm); free(xq); free(ym); free(yq);
    ss_dataset_close(dm);
    ss_dataset_close(dq);
    return 0;
}

static double *to_double(float *x, size_t n)
{
    double *d = malloc(sizeof(double) * (n ? n : 1));
    if (!d) tool_die("out of memory");
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    free(x);
    return d;
}

static void linear_progress(void *ctx, double l2, int iter, double f)
{
    (void)ctx;
    tool_progress("l2 %g: iteration %d  loss %.6f", l2, iter, f);
}

static int cmd_linear(int argc, char **argv)
{
    if (want_help(argc, argv)) return fputs(usage_linear, stdout), 0;
    long size = 0, max_iter = 1000;
    double l2[16];
    int nl2 = tool_parse_doubles("--l2", "1e-5,1e-4,1e-3,1e-2,1e-1", 0, 1e6, l2, 16);
    const char *out = "-";
    int opt;
    enum { O_L2 = 256, O_ITER };
    static const struct option lo[] = {{"l2", required_argument, 0, O_L2}, {"max-iter", required_argument, 0, O_ITER},
                                       {"size", required_argument, 0, 's'}, {"output", required_argument, 0, 'o'},
                                       {0, 0, 0, 0}};
    optind = 1;
    while ((opt = tool_getopt(argc, argv, "s:o:", lo)) != -1) {
        switch (opt) {
        case O_L2: nl2 = tool_parse_doubles("--l2", optarg, 0, 1e6, l2, 16); break;
        case O_ITER: max_iter = tool_parse_long("--max-iter", optarg, 1, 1000000); break;
        case 's': size = tool_parse_long("--size", optarg, 1, 4096); break;
        case 'o': out = optarg; break;
        default: tool_usage_error("unknown option");
        }
    }
    if (argc - optind != 3) tool_usage_error("need TRAIN, VAL and TEST");
    ss_dataset *d[3];
    int c = 0, h = 0;
    for (int k = 0; k < 3; k++) {
        d[k] = open_spec(argv[optind + k]);
        int hk, wk, ck;
        ss_dataset_geometry(d[k], &hk, &wk, &ck);
        if (k == 0) c = ck ? ck : 3, h = hk;
        else if (ck && ck != c) tool_die("%s has %d channels, %s %d", ss_dataset_spec(d[0]), c, ss_dataset_spec(d[k]), ck);
        if (!ss_dataset_len(d[k])) tool_die("%s: empty", ss_dataset_spec(d[k]));
    }
    if (!size) size = h > 0 ? h : 224;
    int K = ss_dataset_nclasses(d[0]), D = c * (int)size * (int)size;
    if (K < 2) tool_die("%s: %d classes; a classifier needs 2 or more", ss_dataset_spec(d[0]), K);
    ss_err e;
    ss_afile a;   /* opened now: a bad path fails before the work */
    if (ss_afile_open(&a, out, &e)) tool_die_err(&e);
    size_t n[3];
    int32_t *y[3];
    double *x[3];
    for (int k = 0; k < 3; k++) {
        n[k] = ss_dataset_len(d[k]);
        if (!(y[k] = malloc(sizeof(int32_t) * n[k]))) tool_die("out of memory");
        x[k] = to_double(pixel_rows(d[k], (int)size, c, y[k], 0), n[k] * D);
        for (size_t i = 0; i < n[k]; i++)
            if (y[k][i] >= K) tool_die("%s: sample %zu has label %d, %s has %d classes", ss_dataset_spec(d[k]), i,
                                       (int)y[k][i], ss_dataset_spec(d[0]), K);
    }
    double *mu = malloc(sizeof(double) * D), *sd = malloc(sizeof(double) * D);
    double *W = malloc(sizeof(double) * (size_t)K * D), *b = malloc(sizeof(double) * K);
    double *z = malloc(sizeof(double) * n[2] * K);
    ss_logreg_row *rows = malloc(sizeof(ss_logreg_row) * nl2);
    if (!mu || !sd || !W || !b || !z || !rows) tool_die("out of memory");
    ss_logreg_standardize(x[0], n[0], D, mu, sd);
    ss_logreg_apply(x[1], n[1], D, mu, sd);
    ss_logreg_apply(x[2], n[2], D, mu, sd);
    int best;
    if (ss_logreg_sweep(x[0], y[0], n[0], x[1], y[1], n[1], D, K, l2, nl2, (int)max_iter, W, b, rows, &best,
                        linear_progress, NULL, &e))
        tool_die("%s: %s", ss_dataset_spec(d[0]), e.msg);
    tool_progress_end();
    for (int i = 0; i < nl2; i++)
        tool_warn("l2 %g: %d iterations%s, loss %.6f, train %.2f %%, val %.2f %%%s", rows[i].l2, rows[i].info.iters,
                  rows[i].info.converged ? "" : " (not converged)", rows[i].info.loss,
                  100.0 * rows[i].train_hits / n[0], 100.0 * rows[i].val_hits / n[1], i == best ? " (kept)" : "");
    size_t hits = ss_logreg_predict(x[2], y[2], n[2], D, K, W, b, NULL, z);
    fprintf(a.f, "train\tval\ttest\tl2\titers\ttrain_top1\tval_top1\ttest_top1\n%s\t%s\t%s\t%g\t%d\t%.4f\t%.4f\t%.4f\n",
            ss_dataset_spec(d[0]), ss_dataset_spec(d[1]), ss_dataset_spec(d[2]), rows[best].l2, rows[best].info.iters,
            (double)rows[best].train_hits / n[0], (double)rows[best].val_hits / n[1], (double)hits / n[2]);
    if (ss_afile_commit(&a, &e)) tool_die_err(&e);
    for (int k = 0; k < 3; k++) free(x[k]), free(y[k]), ss_dataset_close(d[k]);
    free(mu), free(sd), free(W), free(b), free(z), free(rows);
    return 0;
}

int main(int argc, char **argv)
{
    tool_init("ssta-data");
    opterr = 0;   /* tool_usage_error reports bad options */
    if (argc < 2) tool_usage_error("missing COMMAND");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) return fputs(usage_main, stdout), 0;
    argc--, argv++;
    tool_set_command(cmd);
    if (!strcmp(cmd, "info")) return cmd_info(argc, argv);
    if (!strcmp(cmd, "classes")) return cmd_classes(argc, argv);
    if (!strcmp(cmd, "export")) return cmd_export(argc, argv);
    if (!strcmp(cmd, "view")) return cmd_view(argc, argv);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc, argv);
    if (!strcmp(cmd, "check")) return cmd_check(argc, argv);
    if (!strcmp(cmd, "knn")) return cmd_knn(argc, argv);
    if (!strcmp(cmd, "linear")) return cmd_linear(argc, argv);
    if (cmd[0] == '-') tool_usage_error("unknown option '%s' (options follow the COMMAND)", cmd);
    tool_usage_error("unknown command '%s'", cmd);
}
