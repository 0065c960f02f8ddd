/* tool.h — what every ssta command-line tool shares: how it talks to the user.
 *
 * Messages go to stderr as "NAME: text". Exit status is the same in every tool:
 *   0  success
 *   1  runtime or data error (bad file, corrupt stream, NaN loss, ...)
 *   2  usage error (unknown option, bad value, missing argument)
 * --help prints the usage to stdout and exits 0.
 *
 * This is the only place outside the tool sources that prints; lib/ never does.
 *
 * Exits: tool_init arranges that every way out removes the temporaries of
 * outputs not yet committed (lib/io.h: tool_die, tool_usage_error, a return
 * from main or exit() with a file half written, and SIGINT, SIGTERM, SIGHUP,
 * SIGPIPE unless they are ignored), and that standard output is flushed and
 * closed at exit with its errors checked: a failed write to stdout ("> /dev/full",
 * a full disk) prints "NAME: standard output: write error: ..." and makes
 * the exit status 1, whatever the tool printed.
 */
#ifndef SS_TOOL_H
#define SS_TOOL_H

#include <getopt.h>
#include <stdint.h>

#include "err.h"

void tool_init(const char *name);
const char *tool_name(void);

/* Print "NAME: msg" and exit 1. */
_Noreturn void tool_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "NAME: <e->msg>" and exit 1. */
_Noreturn void tool_die_err(const ss_err *e);
/* Print "NAME: msg" and "Try 'NAME --help'." and exit 2. */
_Noreturn void tool_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "NAME: msg" without exiting. */
void tool_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* getopt_long for every tool (opterr off, a leading ':' added to the short
 * options): returns what getopt_long returns, except that an unknown or
 * ambiguous option, a missing value, or a value given to an option that takes
 * none is a usage error naming the option as the user wrote it:
 *     NAME: option '--lr' needs a value
 *     NAME: unknown option '--no-such'
 * longopts may be NULL. Reset optind to 0 before parsing a new argv. */
int tool_getopt(int argc, char *const argv[], const char *shortopts, const struct option *longopts);
/* Subcommand named in tool_getopt's messages ("NAME: CMD: option ..."). */
void tool_set_command(const char *cmd);

/* Parses a block/head selection "BLOCKS[:HEADS]" for option `opt`: each part
 * is "all" or a comma list of 0-based indices (blocks < L, heads < NH); no
 * heads part means all heads. Sets blk[l] / hd[h] to 1 for the chosen ones.
 * An empty selection, an empty part ("1:", ":1"), an empty list item or an
 * index out of range is a usage error. */
void tool_parse_block_heads(const char *opt, const char *s, int L, int NH, uint8_t *blk, uint8_t *hd);

/* Option value parsers: on a malformed or out-of-range value they call
 * tool_usage_error naming the option. */
long tool_parse_long(const char *opt, const char *s, long lo, long hi);
double tool_parse_double(const char *opt, const char *s, double lo, double hi);
uint64_t tool_parse_u64(const char *opt, const char *s);
/* A comma-separated list of at most max numbers in [lo, hi], none twice,
 * into out; returns how many. */
int tool_parse_doubles(const char *opt, const char *s, double lo, double hi, double *out, int max);

/* --skip-corrupt's report: when n > 0, "NAME: WHAT: N unreadable samples
 * left out (--skip-corrupt), the first: <first->msg>" on stderr. n counts
 * every time a sample failed (once per epoch that read it). */
void tool_report_skipped(const char *what, size_t n, const ss_err *first);

/* 1 if fd is a terminal. */
int tool_isatty(int fd);

/* Progress line on stderr, redrawn in place when stderr is a terminal.
 * Otherwise quiet, unless SSTA_PROGRESS=SECONDS is set: then the line is
 * written whole, at most once every SECONDS seconds (0: every call), so a
 * background run's log shows where it is. tool_progress_end() ends the
 * terminal's line. */
void tool_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tool_progress_end(void);

/* Whether a trainer's output path holds a state to resume from: 1 for an
 * existing regular file (or a link to one); 0 when nothing is there, or
 * when it is a device or FIFO, which outputs are written through and never
 * read back (reading /dev/zero would not end). Dies naming the path when
 * it is a directory or cannot be examined. */
int tool_resume_from(const char *path);

/* The time a run has left, for a progress line: `left` more steps at the
 * pace of the `done` steps that took `secs` seconds, written into buf as
 * "~2 h 05 min", "~7 min" or "~40 s" ("?" while done is 0). Returns buf. */
const char *tool_time_left(char *buf, size_t n, double done, double secs, double left);

/* Encodes im as PNG into the opened output a (named path in messages);
 * exits 1 on an encoding or write error. The caller commits a. */
struct ss_afile;
struct ss_image;
void tool_put_png(struct ss_afile *a, const char *path, const struct ss_image *im);

/* Refuse to write binary data to a terminal (as zstd does): exits 1 with a
 * message when path is "-" and stdout is a tty. */
void tool_refuse_tty_stdout(const char *path);

/* Seconds since an arbitrary point (monotonic). */
double tool_now(void);

#endif
