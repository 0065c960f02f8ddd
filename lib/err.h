/* err.h — how the ssta library reports failure.
 *
 * The library never prints and never exits. A function that can fail returns
 * an int (0 on success, -1 on failure; functions that also signal "end", such
 * as stream readers, document their positive returns) and fills a caller-owned
 * ss_err with one line of text that names what went wrong and where (file,
 * record number, tensor name). Tools print that line prefixed with their name.
 *
 * Size arithmetic on anything read from a file goes through ss_mul_size /
 * ss_add_size so that a hostile header cannot wrap an allocation size.
 */
#ifndef SS_ERR_H
#define SS_ERR_H

#include <stddef.h>
#include <stdint.h>

typedef struct ss_err {
    char msg[1024];
} ss_err;

/* Formats the message into e (if e is non-NULL) and returns -1, so that
 * `return ss_fail(e, "...")` is the idiom at every error site. */
int ss_fail(ss_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to an existing message (used to add a file name or a
 * record number as an error travels up). Returns -1. */
int ss_prefix(ss_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* *out = a*b or a+b; return 0, or -1 on overflow (out untouched). */
int ss_mul_size(size_t a, size_t b, size_t *out);
int ss_add_size(size_t a, size_t b, size_t *out);

#endif
