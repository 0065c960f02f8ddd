/* check.h — the assertion macros of the C unit tests.
 *
 * Each test program includes this, runs its checks, and ends with
 * `return check_summary("test_name");`, which prints a one-line summary and
 * returns non-zero when any check failed. A failing check prints the file,
 * line and the values involved. (Header-only on purpose: one small set of
 * macros, no library of its own.)
 */
#ifndef SS_CHECK_H
#define SS_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_total, check_failed;

#define CHECK(cond)                                                              \
    do {                                                                         \
        check_total++;                                                           \
        if (!(cond)) {                                                           \
            check_failed++;                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_MSG(cond, ...)                                                     \
    do {                                                                         \
        check_total++;                                                           \
        if (!(cond)) {                                                           \
            check_failed++;                                                      \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
        }                                                                        \
    } while (0)

/* |a-b| <= atol + rtol*|b| */
#define CHECK_CLOSE(a, b, rtol, atol)                                            \
    do {                                                                         \
        double ca_ = (a), cb_ = (b);                                             \
        check_total++;                                                           \
        if (!(fabs(ca_ - cb_) <= (atol) + (rtol) * fabs(cb_))) {                 \
            check_failed++;                                                      \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %s = %.9g\n", __FILE__,  \
                    __LINE__, #a, ca_, #b, cb_);                                 \
        }                                                                        \
    } while (0)

static inline int check_summary(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_total, check_failed);
    return check_failed ? 1 : 0;
}

#endif
