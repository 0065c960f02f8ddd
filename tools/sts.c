/* sts — list, verify, concatenate, cut, and convert tensor streams.
 *
 * A thin command-line layer over lib/stream.h and lib/npy.h: every
 * subcommand opens its inputs (FILE, or standard input for "-" or none),
 * loops over records, and writes data to -o FILE or standard output.
 * Specification of the format: sts(5); of the tool: sts(1).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"
#include "stream.h"
#include "tool.h"

static const char usage_main[] =
    "Usage: sts COMMAND [OPTION...] [FILE...]\n"
    "List, verify, concatenate, cut and convert ssta tensor streams (sts(5)).\n"
    "A FILE of '-' (or none) is standard input; binary output goes to -o OUT or\n"
    "standard output (never to a terminal).\n"
    "\n"
    "Commands:\n"
    "  ls [-m] [FILE...]                 one TSV line per tensor (-m: per metadata entry)\n"
    "  verify [FILE...]                  read every record; summary on stderr\n"
    "  cat [-l LEVEL|-u] [-o OUT] [FILE...]   concatenate / recompress\n"
    "  head -n N [-l LEVEL|-u] [-o OUT] [FILE]  stream header record + first N records\n"
    "  get -r RECORD -t TENSOR [-R] [-o OUT.npy] [FILE]   one tensor as .npy\n"
    "  pack [-k KIND] [-H KEY=VALUE]... [-m KEY=VALUE]... [-l LEVEL|-u] [-o OUT]\n"
    "       NAME=FILE.npy...             one record (after a header record with -k)\n"
    "\n"
    "'sts COMMAND --help' describes each command. Exit status: 0 success,\n"
    "1 bad or unreadable data, 2 usage error.\n";

static const char usage_ls[] =
    "Usage: sts ls [-m] [FILE...]\n"
    "Prints a TSV table on standard output, header line first:\n"
    "  record  name  dtype  shape  bytes      (one line per tensor)\n"
    "  record  key   value                    (with -m: one line per metadata entry)\n"
    "Records are numbered from 0 across all FILEs, as if concatenated; a 0-rank\n"
    "shape prints as 'scalar'. Tabs, newlines and backslashes in names and values\n"
    "print as \\t, \\n and \\\\.\n"
    "  -m, --meta   list metadata instead of tensors\n"
    "  -h, --help   show this help\n";

static const char usage_verify[] =
    "Usage: sts verify [FILE...]\n"
    "Reads and validates every record of each FILE. Prints one summary line per\n"
    "FILE on standard error:  FILE: N records, M tensors, B bytes, compressed|plain\n"
    "(B counts uncompressed record bytes). Stops at the first bad record, naming it,\n"
    "and exits 1.\n"
    "  -q, --quiet  no summary\n"
    "  -h, --help   show this help\n";

static const char usage_cat[] =
    "Usage: sts cat [-l LEVEL | -u] [-o OUT] [FILE...]\n"
    "Writes every record of every FILE, in order, as one stream. Records are\n"
    "validated and re-encoded (same tensors, order and metadata); stream header\n"
    "records are passed through like any other record. Memory: one record.\n"
    "  -l, --level LEVEL  zstd level 1..19 (default 3)\n"
    "  -u, --uncompressed write plain records\n"
    "  -o, --output OUT   output file (default: standard output); written to a\n"
    "                     temporary file and renamed when complete\n"
    "  -h, --help         show this help\n";

static const char usage_head[] =
    "Usage: sts head -n N [-l LEVEL | -u] [-o OUT] [FILE]\n"
    "Writes the stream header record (the first record, when it has no tensors and\n"
    "an 'ssta.format' field) and then the first N data records. N = 0 keeps only\n"
    "the header. Stops reading after them.\n"
    "  -n, --records N    data records to keep\n"
    "  -l, --level LEVEL  zstd level 1..19 (default 3)\n"
    "  -u, --uncompressed write plain records\n"
    "  -o, --output OUT   output file (default: standard output)\n"
    "  -h, --help         show this help\n";

static const char usage_get[] =
    "Usage: sts get -r RECORD -t TENSOR [-R] [-o OUT.npy] [FILE]\n"
    "Writes tensor TENSOR of record RECORD (0-based, as numbered by 'sts ls'; the\n"
    "stream header is record 0) as a .npy file. F16 is written as '<f2'; BF16,\n"
    "which NumPy lacks, is converted exactly to '<f4' (a note says so), or with -R\n"
    "written as its raw 16-bit patterns, '<u2'. BOOL is '|b1'.\n"
    "  -r, --record RECORD  record number\n"
    "  -t, --tensor NAME    tensor name\n"
    "  -R, --raw            BF16 as raw '<u2' instead of '<f4'\n"
    "  -o, --output OUT     output file (default: standard output)\n"
    "  -h, --help           show this help\n";

static const char usage_pack[] =
    "Usage: sts pack [-k KIND] [-H KEY=VALUE]... [-m KEY=VALUE]... [-l LEVEL | -u]\n"
    "                [-o OUT] NAME=FILE.npy...\n"
    "Builds one record whose tensors are the .npy files (in argument order) and\n"
    "writes it as a stream. With -k, a stream header record comes first\n"
    "(ssta.format=sts/1, ssta.kind=KIND, ssta.producer=sts pack, plus -H fields).\n"
    "  -k, --kind KIND      write a stream header record of this kind first\n"
    "  -H, --header KEY=VALUE   extra stream header field (needs -k)\n"
    "  -m, --meta KEY=VALUE metadata of the data record\n"
    "  -l, --level LEVEL    zstd level 1..19 (default 3)\n"
    "  -u, --uncompressed   write plain records\n"
    "  -o, --output OUT     output file (default: standard output)\n"
    "  -h, --help           show this help\n";

/* ---------------------------------------------------------------- helpers */

static _Noreturn void help(const char *text)
{
    fputs(text, stdout);
    exit(0);   /* a failed write to stdout: see tool_init */
}

static _Noreturn void bad_option(const char *cmd, char *const *argv)
{
    /* getopt has advanced optind past the offending word */
    if (optopt) tool_usage_error("%s: unknown option or missing value: '-%c'", cmd, optopt);
    tool_usage_error("%s: unknown option or missing value: '%s'", cmd, argv[optind - 1]);
}

/* Prints s with \t, \n, \r and \\ escaped (TSV-safe). */
static void tsv(const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\t': fputs("\\t", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        default: putchar(*s);
        }
    }
}

static void print_shape(const ss_tensor *t)
{
    if (t->ndim == 0) fputs("scalar", stdout);
    for (int d = 0; d < t->ndim; d++) printf("%s%lld", d ? "x" : "", (long long)t->shape[d]);
}

static ss_sreader *open_in(const char *path)
{
    ss_err e;
    ss_sreader *s = ss_sreader_open(path, &e);
    if (!s) tool_die_err(&e);
    return s;
}

/* Level from -l / -u, shared by the writing commands. */
typedef struct wopts {
    int level;
    const char *out;
} wopts;

static ss_swriter *open_out(const wopts *w)
{
    ss_err e;
    tool_refuse_tty_stdout(w->out);
    ss_swriter *sw = ss_swriter_open(w->out, w->level, &e);
    if (!sw) tool_die_err(&e);
    return sw;
}

static _Noreturn void die_abort(ss_swriter *w, const ss_err *e)
{
    ss_swriter_abort(w);
    tool_die_err(e);
}

static void close_out(ss_swriter *w)
{
    ss_err e;
    if (ss_swriter_close(w, &e) < 0) tool_die_err(&e);
}

/* ---------------------------------------------------------------- commands */

static int cmd_ls(int argc, char **argv)
{
    static const struct option lo[] = {{"meta", 0, 0, 'm'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int meta = 0, c;
    while ((c = tool_getopt(argc, argv, "mh", lo)) != -1) {
        if (c == 'm') meta = 1;
        else if (c == 'h') help(usage_ls);
        else bad_option("ls", argv);
    }
    int nin = argc - optind;
    char *def[] = {"-"};
    char **in = nin ? argv + optind : def;
    if (!nin) nin = 1;
    puts(meta ? "record\tkey\tvalue" : "record\tname\tdtype\tshape\tbytes");
    long recno = 0;
    ss_record r;
    ss_record_init(&r);
    ss_err e;
    for (int i = 0; i < nin; i++) {
        ss_sreader *s = open_in(in[i]);
        int rc;
        while ((rc = ss_sreader_next(s, &r, &e)) == 1) {
            if (meta)
                for (int k = 0; k < r.nmeta; k++) {
                    printf("%ld\t", recno);
                    tsv(r.mkey[k]);
                    putchar('\t');
                    tsv(r.mval[k]);
                    putchar('\n');
                }
            else
                for (int k = 0; k < r.ntensors; k++) {
                    const ss_tensor *t = &r.t[k];
                    printf("%ld\t", recno);
                    tsv(t->name);
                    printf("\t%s\t", ss_dtype_name(t->dtype));
                    print_shape(t);
                    printf("\t%zu\n", t->nbytes);
                }
            recno++;
        }
        if (rc < 0) {
            fflush(stdout);
            tool_die_err(&e);
        }
        ss_sreader_close(s);
    }
    ss_record_free(&r);
    return 0;   /* a failed write to stdout: see tool_init */
}

static int cmd_verify(int argc, char **argv)
{
    static const struct option lo[] = {{"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int quiet = 0, c;
    while ((c = tool_getopt(argc, argv, "qh", lo)) != -1) {
        if (c == 'q') quiet = 1;
        else if (c == 'h') help(usage_verify);
        else bad_option("verify", argv);
    }
    int nin = argc - optind;
    char *def[] = {"-"};
    char **in = nin ? argv + optind : def;
    if (!nin) nin = 1;
    ss_record r;
    ss_record_init(&r);
    ss_err e;
    for (int i = 0; i < nin; i++) {
        ss_sreader *s = open_in(in[i]);
        long tensors = 0;
        int rc;
        double t0 = tool_now();
        while ((rc = ss_sreader_next(s, &r, &e)) == 1) {
            tensors += r.ntensors;
            if ((ss_sreader_count(s) & 1023) == 0)
                tool_progress("%s: %ld records", ss_sreader_path(s), ss_sreader_count(s));
        }
        tool_progress_end();
        if (rc < 0) tool_die_err(&e);
        double dt = tool_now() - t0;
        if (!quiet)
            fprintf(stderr, "sts: %s: %ld records, %ld tensors, %llu bytes, %s (%.1f MB/s)\n", ss_sreader_path(s),
                    ss_sreader_count(s), tensors, (unsigned long long)ss_sreader_bytes(s),
                    ss_sreader_compressed(s) ? "compressed" : "plain",
                    dt > 0 ? ss_sreader_bytes(s) / dt / 1e6 : 0.0);
        ss_sreader_close(s);
    }
    ss_record_free(&r);
    return 0;
}

/* Parses -l/-u/-o for the writing commands; returns 1 if c was one of them. */
static int write_opt(wopts *w, int c, const char *arg)
{
    if (c == 'l') w->level = (int)tool_parse_long("-l", arg, 1, 19);
    else if (c == 'u') w->level = 0;
    else if (c == 'o') w->out = arg;
    else return 0;
    return 1;
}

static int cmd_cat(int argc, char **argv)
{
    static const struct option lo[] = {{"level", 1, 0, 'l'}, {"uncompressed", 0, 0, 'u'}, {"output", 1, 0, 'o'},
                                       {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    wopts w = {SS_ZSTD_DEFAULT, "-"};
    int c;
    while ((c = tool_getopt(argc, argv, "l:uo:h", lo)) != -1) {
        if (c == 'h') help(usage_cat);
        if (!write_opt(&w, c, optarg)) bad_option("cat", argv);
    }
    int nin = argc - optind;
    char *def[] = {"-"};
    char **in = nin ? argv + optind : def;
    if (!nin) nin = 1;
    ss_swriter *out = open_out(&w);
    ss_record r;
    ss_record_init(&r);
    ss_err e;
    for (int i = 0; i < nin; i++) {
        ss_sreader *s = ss_sreader_open(in[i], &e);
        if (!s) die_abort(out, &e);
        int rc;
        while ((rc = ss_sreader_next(s, &r, &e)) == 1)
            if (ss_swriter_put(out, &r, &e) < 0) die_abort(out, &e);
        if (rc < 0) die_abort(out, &e);
        ss_sreader_close(s);
    }
    ss_record_free(&r);
    close_out(out);
    return 0;
}

static int cmd_head(int argc, char **argv)
{
    static const struct option lo[] = {{"records", 1, 0, 'n'}, {"level", 1, 0, 'l'}, {"uncompressed", 0, 0, 'u'},
                                       {"output", 1, 0, 'o'},  {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    wopts w = {SS_ZSTD_DEFAULT, "-"};
    long n = -1;
    int c;
    while ((c = tool_getopt(argc, argv, "n:l:uo:h", lo)) != -1) {
        if (c == 'h') help(usage_head);
        if (c == 'n') n = tool_parse_long("-n", optarg, 0, __LONG_MAX__);
        else if (!write_opt(&w, c, optarg)) bad_option("head", argv);
    }
    if (n < 0) tool_usage_error("head: -n N is required");
    if (argc - optind > 1) tool_usage_error("head: at most one FILE");
    const char *path = argc - optind == 1 ? argv[optind] : "-";
    ss_swriter *out = open_out(&w);
    ss_sreader *s = NULL;
    ss_record r;
    ss_record_init(&r);
    ss_err e;
    if (!(s = ss_sreader_open(path, &e))) die_abort(out, &e);
    long kept = 0;
    int rc = 1;
    while (kept < n || ss_sreader_count(s) == 0) {
        if ((rc = ss_sreader_next(s, &r, &e)) != 1) break;
        int hdr = ss_sreader_count(s) == 1 && ss_stream_is_header(&r);
        if (!hdr && kept == n) break; /* n == 0 and no header record */
        if (ss_swriter_put(out, &r, &e) < 0) die_abort(out, &e);
        if (!hdr) kept++;
    }
    if (rc < 0) die_abort(out, &e);
    ss_sreader_close(s);
    ss_record_free(&r);
    close_out(out);
    return 0;
}

static int cmd_get(int argc, char **argv)
{
    static const struct option lo[] = {{"record", 1, 0, 'r'}, {"tensor", 1, 0, 't'}, {"raw", 0, 0, 'R'},
                                       {"output", 1, 0, 'o'}, {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    long rec = -1;
    const char *name = NULL, *outp = "-";
    int raw = 0, c;
    while ((c = tool_getopt(argc, argv, "r:t:Ro:h", lo)) != -1) {
        if (c == 'h') help(usage_get);
        else if (c == 'r') rec = tool_parse_long("-r", optarg, 0, __LONG_MAX__);
        else if (c == 't') name = optarg;
        else if (c == 'R') raw = 1;
        else if (c == 'o') outp = optarg;
        else bad_option("get", argv);
    }
    if (rec < 0 || !name) tool_usage_error("get: -r RECORD and -t TENSOR are required");
    if (argc - optind > 1) tool_usage_error("get: at most one FILE");
    const char *path = argc - optind == 1 ? argv[optind] : "-";
    tool_refuse_tty_stdout(outp);
    ss_sreader *s = open_in(path);
    ss_record r;
    ss_record_init(&r);
    ss_err e;
    int rc;
    while ((rc = ss_sreader_next(s, &r, &e)) == 1 && ss_sreader_count(s) <= rec) {}
    if (rc < 0) tool_die_err(&e);
    if (rc == 0) tool_die("%s: record %ld: no such record (the stream has %ld)", ss_sreader_path(s), rec, ss_sreader_count(s));
    const ss_tensor *t = ss_record_find(&r, name);
    if (!t) tool_die("%s: record %ld: no tensor '%s' (%d tensors; see 'sts ls')", ss_sreader_path(s), rec, name, r.ntensors);
    if (t->dtype == SS_BF16 && !raw) tool_warn("note: BF16 tensor '%s' written as float32 '<f4' (-R: raw '<u2')", name);
    if (ss_npy_save(outp, t, raw, &e) < 0) tool_die_err(&e);
    ss_sreader_close(s);
    ss_record_free(&r);
    return 0;
}

/* "KEY=VALUE" -> key (NUL-terminated in place) and value; usage error if no '='. */
static char *split_kv(const char *opt, char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg) tool_usage_error("%s: '%s' is not KEY=VALUE", opt, arg);
    *eq = 0;
    return eq + 1;
}

static int cmd_pack(int argc, char **argv)
{
    static const struct option lo[] = {{"kind", 1, 0, 'k'},   {"header", 1, 0, 'H'}, {"meta", 1, 0, 'm'},
                                       {"level", 1, 0, 'l'},  {"uncompressed", 0, 0, 'u'},
                                       {"output", 1, 0, 'o'}, {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    wopts w = {SS_ZSTD_DEFAULT, "-"};
    const char *kind = NULL;
    ss_record hdr, r;
    ss_record_init(&hdr);
    ss_record_init(&r);
    ss_err e;
    int c, nh = 0;
    while ((c = tool_getopt(argc, argv, "k:H:m:l:uo:h", lo)) != -1) {
        if (c == 'h') help(usage_pack);
        else if (c == 'k') kind = optarg;
        else if (c == 'H' || c == 'm') {
            char *v = split_kv(c == 'H' ? "-H" : "-m", optarg);
            if (ss_record_set_meta(c == 'H' ? &hdr : &r, optarg, v, &e) < 0) tool_die_err(&e);
            nh += c == 'H';
        } else if (!write_opt(&w, c, optarg))
            bad_option("pack", argv);
    }
    if (nh && !kind) tool_usage_error("pack: -H needs -k KIND");
    if (optind == argc) tool_usage_error("pack: no NAME=FILE.npy given");
    for (int i = optind; i < argc; i++) {
        char *file = split_kv("pack", argv[i]);
        if (ss_record_find(&r, argv[i])) tool_usage_error("pack: tensor '%s' given twice", argv[i]);
        if (ss_npy_load(file, &r, argv[i], &e) < 0) tool_die_err(&e);
    }
    ss_swriter *out = open_out(&w);
    if (kind) {
        ss_record h2;
        ss_record_init(&h2);
        if (ss_stream_header(&h2, kind, "sts pack", &e) < 0) die_abort(out, &e);
        for (int i = 0; i < hdr.nmeta; i++)
            if (ss_record_set_meta(&h2, hdr.mkey[i], hdr.mval[i], &e) < 0) die_abort(out, &e);
        if (ss_swriter_put(out, &h2, &e) < 0) die_abort(out, &e);
        ss_record_free(&h2);
    }
    if (ss_swriter_put(out, &r, &e) < 0) die_abort(out, &e);
    close_out(out);
    ss_record_free(&hdr);
    ss_record_free(&r);
    return 0;
}

int main(int argc, char **argv)
{
    tool_init("sts");
    if (argc < 2) tool_usage_error("no command given (ls, verify, cat, head, get, pack)");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) help(usage_main);
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"ls", cmd_ls}, {"verify", cmd_verify}, {"cat", cmd_cat},
                {"head", cmd_head}, {"get", cmd_get}, {"pack", cmd_pack}};
    opterr = 0;
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (!strcmp(cmd, cmds[i].name)) {
            tool_set_command(cmd);
            return cmds[i].fn(argc - 1, argv + 1);
        }
    if (cmd[0] == '-') tool_usage_error("unknown option '%s' (options follow the COMMAND)", cmd);
    tool_usage_error("unknown command '%s' (ls, verify, cat, head, get, pack)", cmd);
}
