/* test_tool.c — the shared helpers of the tools (tools/common/tool.c) that
 * compute rather than talk: the time left a progress line shows. */
#include <string.h>

#include "../check.h"
#include "tool.h"

static int left_is(double done, double secs, double left, const char *want)
{
    char buf[32];
    const char *got = tool_time_left(buf, sizeof buf, done, secs, left);
    if (got != buf || strcmp(got, want)) {
        fprintf(stderr, "tool_time_left(%g, %g, %g) = \"%s\", want \"%s\"\n", done, secs, left, got, want);
        return 0;
    }
    return 1;
}

int main(void)
{
    /* nothing measured yet, or nonsense: "?" */
    CHECK(left_is(0, 5, 10, "?"));
    CHECK(left_is(3, -1, 10, "?"));
    CHECK(left_is(3, 1, -1, "?"));
    CHECK(left_is(3, NAN, 10, "?"));
    /* the pace of the steps done times the steps left */
    CHECK(left_is(10, 10, 0, "~0 s"));
    CHECK(left_is(10, 10, 30, "~30 s"));
    CHECK(left_is(10, 5, 30, "~15 s"));
    CHECK(left_is(2, 10, 17, "~85 s"));          /* under 90 s: seconds */
    CHECK(left_is(1, 1, 100, "~2 min"));         /* 100 s */
    CHECK(left_is(1, 1, 3599, "~60 min"));
    CHECK(left_is(1, 1, 3600, "~1 h 00 min"));
    CHECK(left_is(1, 1, 7500, "~2 h 05 min"));
    CHECK(left_is(100, 200, 843 * 23, "~10 h 46 min")); /* 38,778 s = 646.3 min */
    /* a small buffer is cut, never overrun */
    char small[4];
    tool_time_left(small, sizeof small, 1, 1, 7500);
    CHECK(strlen(small) == 3 && !strcmp(small, "~2 "));
    return check_summary("test_tool");
}
