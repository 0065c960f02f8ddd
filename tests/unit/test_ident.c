/* test_ident.c — identity fields: round trip through metadata, the standard message. */
#include <string.h>

#include "../check.h"
#include "ident.h"

int main(void)
{
    ss_err e;
    ss_ident a, b;
    ss_ident_init(&a);
    ss_ident_init(&b);
    CHECK(ss_ident_add(&a, &e, "seed", "%d", 1) == 0);
    CHECK(ss_ident_add(&a, &e, "data", "%s", "fashion-mnist:train") == 0);
    CHECK(ss_ident_add(&a, &e, "seed", "%d", 3) == 0);   /* replaces */
    CHECK(a.n == 2 && !strcmp(ss_ident_get(&a, "seed"), "3"));
    ss_record r;
    ss_record_init(&r);
    CHECK(ss_ident_to_meta(&a, &r, "ssta.run", &e) == 0);
    CHECK(!strcmp(ss_record_meta(&r, "ssta.run.seed"), "3"));
    CHECK(ss_ident_check(&a, &r, "ssta.run", &e) == 0);
    CHECK(ss_ident_add(&b, &e, "data", "%s", "fashion-mnist:train") == 0);
    CHECK(ss_ident_add(&b, &e, "seed", "%d", 2) == 0);
    CHECK(ss_ident_check(&b, &r, "ssta.run", &e) == -1);
    CHECK_MSG(!strcmp(e.msg, "field seed is 3, expected 2"), "%s", e.msg);
    CHECK(ss_ident_add(&b, &e, "batch", "%d", 64) == 0);
    CHECK(ss_ident_add(&b, &e, "seed", "%d", 3) == 0);
    CHECK(ss_ident_check(&b, &r, "ssta.run", &e) == -1);
    CHECK_MSG(!strcmp(e.msg, "field batch is missing, expected 64"), "%s", e.msg);
    char longkey[80];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[79] = 0;
    CHECK(ss_ident_add(&b, &e, longkey, "x") == -1);
    ss_record_free(&r);
    ss_ident_free(&a);
    ss_ident_free(&b);
    return check_summary("test_ident");
}
