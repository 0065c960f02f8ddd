/* tool.c — user-facing messages and option parsing for the tools (tool.h). */
#include "tool.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *g_name = "ssta";
static int g_progress_open;

void tool_init(const char *name) { g_name = name; }
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
    exit(2);
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

uint64_t tool_parse_u64(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    if (*s == '-') tool_usage_error("%s: '%s' must not be negative", opt, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end) tool_usage_error("%s: '%s' is not a non-negative integer", opt, s);
    return (uint64_t)v;
}

int tool_isatty(int fd) { return isatty(fd); }

void tool_progress(const char *fmt, ...)
{
    if (!isatty(2)) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\r\033[K%s: ", g_name);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    g_progress_open = 1;
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
