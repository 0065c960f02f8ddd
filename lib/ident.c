/* ident.c — run identity fields (ident.h). */
#define _GNU_SOURCE
#include "ident.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ss_ident_init(ss_ident *id) { memset(id, 0, sizeof *id); }

void ss_ident_free(ss_ident *id)
{
    for (int i = 0; i < id->n; i++) free(id->val[i]);
    memset(id, 0, sizeof *id);
}

int ss_ident_add(ss_ident *id, ss_err *e, const char *key, const char *fmt, ...)
{
    if (strlen(key) >= sizeof id->key[0]) return ss_fail(e, "identity field name '%s' too long", key);
    va_list ap;
    va_start(ap, fmt);
    char *v = NULL;
    int len = vasprintf(&v, fmt, ap);
    va_end(ap);
    if (len < 0) return ss_fail(e, "out of memory");
    for (int i = 0; i < id->n; i++)
        if (!strcmp(id->key[i], key)) {
            free(id->val[i]);
            id->val[i] = v;
            return 0;
        }
    if (id->n >= SS_IDENT_MAX) {
        free(v);
        return ss_fail(e, "too many identity fields");
    }
    snprintf(id->key[id->n], sizeof id->key[0], "%s", key);
    id->val[id->n++] = v;
    return 0;
}

const char *ss_ident_get(const ss_ident *id, const char *key)
{
    for (int i = 0; i < id->n; i++)
        if (!strcmp(id->key[i], key)) return id->val[i];
    return NULL;
}

int ss_ident_to_meta(const ss_ident *id, ss_record *r, const char *prefix, ss_err *e)
{
    char k[128];
    for (int i = 0; i < id->n; i++) {
        snprintf(k, sizeof k, "%s.%s", prefix, id->key[i]);
        if (ss_record_set_meta(r, k, id->val[i], e)) return -1;
    }
    return 0;
}

int ss_ident_mismatch(ss_err *e, const char *key, const char *is, const char *expected)
{
    if (!is) return ss_fail(e, "field %s is missing, expected %s", key, expected);
    return ss_fail(e, "field %s is %s, expected %s", key, is, expected);
}

int ss_ident_check(const ss_ident *want, const ss_record *r, const char *prefix, ss_err *e)
{
    char k[128];
    for (int i = 0; i < want->n; i++) {
        snprintf(k, sizeof k, "%s.%s", prefix, want->key[i]);
        const char *v = ss_record_meta(r, k);
        if (!v || strcmp(v, want->val[i])) return ss_ident_mismatch(e, want->key[i], v, want->val[i]);
    }
    return 0;
}
