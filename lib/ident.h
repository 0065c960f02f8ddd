/* ident.h — run identity: the settings that determine a result, as fields.
 *
 * One mechanism for three checks: a training run resuming from its own
 * checkpoint, a consumer checking a stream's provenance, and a student
 * checking a teacher-attention cache against its own run. Each writes its
 * fields as metadata keys PREFIX.FIELD (string values) and each check fails
 * with the same message:
 *     field seed is 1, expected 2
 * ("is" = what the file says, "expected" = what this command needs), or
 *     field seed is missing, expected 2
 *
 * The metadata keys of streams and checkpoints are defined here once.
 */
#ifndef SS_IDENT_H
#define SS_IDENT_H

#include "err.h"
#include "safetensors.h"

/* Stream kinds (the header's ssta.kind). */
#define SS_KIND_LOGITS "logits"          /* vit-fwd: logits only */
#define SS_KIND_FEATURES "features"      /* vit-fwd: + features / block_cls */
#define SS_KIND_ATTN "attn"              /* vit-fwd --attn: chosen heads of chosen blocks */
#define SS_KIND_TEACHER_ATTN "teacher-attn" /* attn-dump: a KD cache (attncache.h) */
#define SS_KIND_GRADS "grads"            /* distill-step --dump-grads */
#define SS_KIND_IMAGES "images"          /* image streams (imgstream.h) */

/* Metadata keys shared by tools. */
#define SS_META_KIND "ssta.kind"
#define SS_META_PRODUCER "ssta.producer"
#define SS_META_DATA "ssta.data"         /* canonical dataset spec */
#define SS_META_SEED "ssta.seed"
#define SS_META_MODEL "ssta.model"       /* model file as given */
#define SS_META_MODEL_MD5 "ssta.model_md5" /* md5 of the F32 parameters as loaded */
#define SS_META_MEAN "ssta.mean"
#define SS_META_STD "ssta.std"
#define SS_META_EPOCH "ssta.epoch"
#define SS_META_LOG "ssta.log"

#define SS_IDENT_MAX 64

typedef struct ss_ident {
    int n;
    char key[SS_IDENT_MAX][40];
    char *val[SS_IDENT_MAX];
} ss_ident;

void ss_ident_init(ss_ident *id);
void ss_ident_free(ss_ident *id);
/* Adds (or replaces) field key = printf(fmt, ...). */
int ss_ident_add(ss_ident *id, ss_err *e, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
const char *ss_ident_get(const ss_ident *id, const char *key);   /* NULL if absent */
/* Writes every field as metadata prefix.key. */
int ss_ident_to_meta(const ss_ident *id, ss_record *r, const char *prefix, ss_err *e);
/* Checks every field of want against r's metadata prefix.key; the first
 * difference fails with the standard message. */
int ss_ident_check(const ss_ident *want, const ss_record *r, const char *prefix, ss_err *e);
/* The standard message for one field, for checks that are not equality
 * (e.g. a cache that holds fewer epochs than needed). Returns -1. */
int ss_ident_mismatch(ss_err *e, const char *key, const char *is, const char *expected);

#endif
