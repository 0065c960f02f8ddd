/* tool.c — user-facing messages and option parsing for the tools (tool.h). */
#include "tool.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "image.h"
#include "io.h"

static const char *g_name = "ssta";
static const char *g_cmd;
static int g_progress_open;

/* At exit: drop outputs never committed, then flush and close stdout and
 * turn a write error into exit status 1 (as gnulib's close_stdout). A
 * closed stdout (">&-") with nothing written to it is not an error. */
static void at_exit(void)
{
    ss_afile_abort_pending();
    int pending = __fpending(stdout) != 0;
    int prev_fail = ferror(stdout) != 0;
    errno = 0;
    int close_fail = fclose(stdout) != 0;
    if (prev_fail || (close_fail && (pending || errno != EBADF))) {
        int er = errno;
        fprintf(stderr, "%s: standard output: write error%s%s\n", g_name, er ? ": " : "", er ? strerror(er) : "");
        _exit(1);
    }
}

static void on_fatal_signal(int sig)
{
    ss_afile_abort_pending();
    raise(sig);   /* SA_RESETHAND: the default action now */
}

void tool_init(const char *name)
{
    g_name = name;
    atexit(at_exit);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction old, sa;
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN) continue;  /* keep "ignored" */
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sa.sa_flags = SA_RESETHAND | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}
const char *tool_name(void) { return g_name; }

static void vsay(const char *fmt, va_list ap)
{
    if (g_progress_open) tool_progress_end();
    fprintf(stderr, "%s: ", g_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void tool_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    ss_afile_abort_pending();
    exit(1);
}

void tool_die_err(const ss_err *e) { tool_die("%s", e->msg); }

void tool_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help'.\n", g_name);
    ss_afile_abort_pending();
    exit(2);
}

void tool_set_command(const char *cmd) { g_cmd = cmd; }

/* Long option of longopts whose name starts with the n bytes at w: the
 * exact match, else the only prefix match; *count gets the number of
 * prefix matches. */
static const struct option *find_long(const struct option *lo, const char *w, size_t n, int *count)
{
    const struct option *hit = NULL;
    *count = 0;
    for (; lo && lo->name; lo++) {
        if (strncmp(lo->name, w, n)) continue;
        if (strlen(lo->name) == n) {
            *count = 1;
            return lo;
        }
        if (!hit) hit = lo;
        ++*count;
    }
    return hit;
}

int tool_getopt(int argc, char *const argv[], const char *shortopts, const struct option *longopts)
{
    static const struct option none[] = {{0, 0, 0, 0}};
    char so[256];
    snprintf(so, sizeof so, ":%s", shortopts[0] == ':' ? shortopts + 1 : shortopts);
    opterr = 0;
    optopt = 0;
    int c = getopt_long(argc, argv, so, longopts ? longopts : none, NULL);
    if (c != '?' && c != ':') return c;
    /* Long option (the word before optind starts with "--" and names one
     * whose value is optopt, or optopt is 0), else a short one. */
    const char *w = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    const char *pre = g_cmd ? g_cmd : "", *sep = g_cmd ? ": " : "";
    if (w[0] == '-' && w[1] == '-' && w[2]) {
        const char *nm = w + 2, *eq = strchr(nm, '=');
        size_t n = eq ? (size_t)(eq - nm) : strlen(nm);
        int count;
        const struct option *o = find_long(longopts, nm, n, &count);
        if (optopt == 0 || (o && count == 1 && o->val == optopt && !o->flag)) {
            if (count > 1) tool_usage_error("%s%soption '--%.*s' is ambiguous", pre, sep, (int)n, nm);
            if (!o || count == 0) tool_usage_error("%s%sunknown option '--%.*s'", pre, sep, (int)n, nm);
            if (c == ':') tool_usage_error("%s%soption '--%s' needs a value", pre, sep, o->name);
            tool_usage_error("%s%soption '--%s' takes no value", pre, sep, o->name);
        }
    }
    if (c == ':') tool_usage_error("%s%soption '-%c' needs a value", pre, sep, optopt);
    if (optopt > 32 && optopt < 127) tool_usage_error("%s%sunknown option '-%c'", pre, sep, optopt);
    tool_usage_error("%s%sunknown option '%s'", pre, sep, w);
}

/* Marks the items of a comma list (s, n bytes) in sel: "all" or indices in
 * [0, max). */
static void parse_index_list(const char *opt, const char *whole, const char *what, const char *s, size_t n,
                             int max, uint8_t *sel)
{
    if (n == 0) tool_usage_error("%s: no %s in '%s'", opt, what, whole);
    if (n == 3 && !strncmp(s, "all", 3)) {
        memset(sel, 1, (size_t)max);
        return;
    }
    const char *p = s, *end = s + n;
    for (;;) {
        char *q;
        errno = 0;
        long v = (*p >= '0' && *p <= '9') ? strtol(p, &q, 10) : -1;
        if (v < 0 || errno || q > end) tool_usage_error("%s: bad %s list in '%s'", opt, what, whole);
        if (v >= max) tool_usage_error("%s: bad %s %ld in '%s' (0..%d)", opt, what, v, whole, max - 1);
        sel[v] = 1;
        p = q;
        if (p == end) return;
        if (*p != ',' || ++p == end) tool_usage_error("%s: bad %s list in '%s'", opt, what, whole);
    }
}

void tool_parse_block_heads(const char *opt, const char *s, int L, int NH, uint8_t *blk, uint8_t *hd)
{
    const char *colon = strchr(s, ':');
    size_t lb = colon ? (size_t)(colon - s) : strlen(s);
    parse_index_list(opt, s, "block", s, lb, L, blk);
    if (!colon) memset(hd, 1, (size_t)NH);
    else parse_index_list(opt, s, "head", colon + 1, strlen(colon + 1), NH, hd);
}

void tool_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
}

long tool_parse_long(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) tool_usage_error("%s: '%s' is not an integer", opt, s);
    if (v < lo || v > hi) tool_usage_error("%s: %ld is out of range [%ld, %ld]", opt, v, lo, hi);
    return v;
}

double tool_parse_double(const char *opt, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) tool_usage_error("%s: '%s' is not a number", opt, s);
    if (v < lo || v > hi) tool_usage_error("%s: %g is out of range [%g, %g]", opt, v, lo, hi);
    return v;
}

int tool_parse_doubles(const char *opt, const char *s, double lo, double hi, double *out, int max)
{
    int n = 0;
    const char *p = s;
    char item[64];
    while (1) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item) tool_usage_error("%s: bad list '%s' (comma-separated numbers)", opt, s);
        if (n == max) tool_usage_error("%s: more than %d values in '%s'", opt, max, s);
        memcpy(item, p, len);
        item[len] = 0;
        out[n] = tool_parse_double(opt, item, lo, hi);
        for (int i = 0; i < n; i++)
            if (out[i] == out[n]) tool_usage_error("%s: %g given twice", opt, out[n]);
        n++;
        if (!p[len]) return n;
        p += len + 1;
    }
}

uint64_t tool_parse_u64(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    if (*s == '-') tool_usage_error("%s: '%s' must not be negative", opt, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end) tool_usage_error("%s: '%s' is not a non-negative integer", opt, s);
    return (uint64_t)v;
}

void tool_report_skipped(const char *what, size_t n, const ss_err *first)
{
    if (n) tool_warn("%s: %zu unreadable samples left out (--skip-corrupt), the first: %s", what, n, first->msg);
}

int tool_isatty(int fd) { return isatty(fd); }

/* SSTA_PROGRESS=SECONDS: the interval of progress lines when stderr is not
 * a terminal (-1: none, the default). Read once; a bad value is said once
 * and ignored. */
static double progress_interval(void)
{
    static int read;
    static double every = -1;
    if (read) return every;
    read = 1;
    const char *v = getenv("SSTA_PROGRESS");
    if (!v || !*v) return every;
    char *end;
    errno = 0;
    double s = strtod(v, &end);
    if (errno || *end || !(s >= 0) || s > 1e9)
        fprintf(stderr, "%s: SSTA_PROGRESS=%s: not a number of seconds, ignored\n", g_name, v);
    else
        every = s;
    return every;
}

void tool_progress(const char *fmt, ...)
{
    if (!isatty(2)) {   /* a log: a plain line every SSTA_PROGRESS seconds */
        static double last = -1;
        double every = progress_interval(), now = tool_now();
        if (every < 0 || (last >= 0 && now - last < every)) return;
        last = now;
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: ", g_name);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        fflush(stderr);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\r\033[K%s: ", g_name);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    g_progress_open = 1;
}

int tool_resume_from(const char *path)
{
    struct stat st;
    if (stat(path, &st)) {
        if (errno == ENOENT) return 0;
        tool_die("%s: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) tool_die("%s is a directory", path);
    return S_ISREG(st.st_mode);
}

const char *tool_time_left(char *buf, size_t n, double done, double secs, double left)
{
    if (!(done > 0) || !(secs >= 0) || !(left >= 0)) {
        snprintf(buf, n, "?");
        return buf;
    }
    double t = secs / done * left;
    if (t < 90)
        snprintf(buf, n, "~%.0f s", t);
    else if (t < 3600)
        snprintf(buf, n, "~%.0f min", t / 60);
    else {
        long m = lround(t / 60);
        snprintf(buf, n, "~%ld h %02ld min", m / 60, m % 60);
    }
    return buf;
}

void tool_progress_end(void)
{
    if (g_progress_open && isatty(2)) fputc('\n', stderr);
    g_progress_open = 0;
}

void tool_refuse_tty_stdout(const char *path)
{
    if (path && strcmp(path, "-") == 0 && isatty(1))
        tool_die("refusing to write binary data to a terminal (use -o FILE or a pipe)");
}

double tool_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void tool_put_png(ss_afile *a, const char *path, const ss_image *im)
{
    ss_err e;
    uint8_t *buf;
    size_t len;
    if (ss_png_encode(im, &buf, &len, &e)) tool_die("%s: %s", path, e.msg);
    size_t put = fwrite(buf, 1, len, a->f);
    free(buf);
    if (put != len) tool_die("%s: write error", path);
}
