/* tool.h — what every ssta command-line tool shares: how it talks to the user.
 *
 * Messages go to stderr as "NAME: text". Exit status is the same in every tool:
 *   0  success
 *   1  runtime or data error (bad file, corrupt stream, NaN loss, ...)
 *   2  usage error (unknown option, bad value, missing argument)
 * --help prints the usage to stdout and exits 0.
 *
 * This is the only place outside the tool sources that prints; lib/ never does.
 */
#ifndef SS_TOOL_H
#define SS_TOOL_H

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

/* Option value parsers: on a malformed or out-of-range value they call
 * tool_usage_error naming the option. */
long tool_parse_long(const char *opt, const char *s, long lo, long hi);
double tool_parse_double(const char *opt, const char *s, double lo, double hi);
uint64_t tool_parse_u64(const char *opt, const char *s);

/* 1 if fd is a terminal. */
int tool_isatty(int fd);

/* Progress line on stderr, redrawn in place, only when stderr is a terminal
 * (quiet otherwise so logs stay parseable). tool_progress_end() ends the line. */
void tool_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tool_progress_end(void);

/* Refuse to write binary data to a terminal (as zstd does): exits 1 with a
 * message when path is "-" and stdout is a tty. */
void tool_refuse_tty_stdout(const char *path);

/* Seconds since an arbitrary point (monotonic). */
double tool_now(void);

#endif
