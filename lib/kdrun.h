/* kdrun.h — a training run's distillation terms, from their description to
 * the running objective: opening the teachers and caches, checking them
 * against the student, feeding each step's cached maps.
 *
 * The description (ss_kd_desc) is plain data, what the user asked for:
 *   - attention sources (up to SS_KD_MAX_SOURCES), each a name, a source
 *     — an attn-dump cache file, "-" for standard input, or "online:CKPT@SEL"
 *     (the teacher CKPT run in every step, SEL a head selection as
 *     ss_headsel_parse reads it: "3:2,4:0,5:5", "3:avg,...", "avg") —, the
 *     student head that imitates it and its weight;
 *   - logits KD: a teacher file, tau and weight;
 *   - attention transfer: a teacher file, its layers and weight;
 *   - the direction of the attention KL.
 *
 * ss_kdrun_open turns it into an ss_distill objective (distill.h) installed
 * in the trainer, for epochs [epoch_from, epoch_to) of the student run:
 *   - an online teacher is loaded once per file (modelfile.h) and joins the
 *     trainer's pass (ss_trainer_add_model). It sees the student's inputs, so
 *     its token grid and channels must be the student's, and so must its
 *     normalisation when its checkpoint records one;
 *   - a cache is opened (attncache.h) and checked against the identity of
 *     the student's views (ss_views_ident: "field seed is 1, expected 2")
 *     and the epochs it must cover; its selection (header field ssta.heads)
 *     gives the layers, and its maps must have the student's token count.
 * Every step, ss_kdrun_feed reads each cache's next batch, checks that it is
 * the student's batch (epoch, step, dataset indices) and hands its maps to
 * the objective. ss_kdrun_stop is the early stop.
 *
 * Errors name the file and what is wrong ("sl.sts: maps of 50 tokens, the
 * student has 17"). ss_kdrun_open returns -1 on a data error (a file that
 * is missing, corrupt, or made for another run or model) and SS_KD_EUSAGE
 * when the description does not fit (a student head or layer set out of
 * range, a malformed source, a selection the teacher does not have): a
 * tool reports that as a usage error. An attention source's errors about
 * its source string start with its label ("LABEL: head selection '9:0':
 * block 9, ..."; the cache's errors "LABEL: sl.sts: field seed is 1, ...").
 *
 * Run identity: what only the opened files tell is in ss_kdrun_ident —
 * kd.NAME.teacher_md5 and kd.NAME.heads (the canonical selection) per
 * attention source, logit_kd.teacher_md5, at_kd.teacher_md5 — so a run
 * resumed with another teacher or cache is refused.
 *
 * Not here: the terms' math (kd.h), the objective (distill.h), the cache
 * format (attncache.h), option parsing and messages (distill-step).
 */
#ifndef SS_KDRUN_H
#define SS_KDRUN_H

#include <stdint.h>

#include "distill.h"
#include "err.h"
#include "ident.h"
#include "kd.h"
#include "loader.h"
#include "train.h"
#include "vit.h"

/* ss_kdrun_open's return for a description that does not fit. */
#define SS_KD_EUSAGE (-2)

/* One attention source. */
typedef struct ss_kd_attn_desc {
    char name[32];        /* logs (kd_NAME) and identity (kd.NAME.*) */
    const char *label;    /* how errors name it (e.g. "--attn-kd sl"); NULL: name */
    const char *source;   /* cache file, "-" (standard input), or "online:CKPT@SEL" */
    int student_head;     /* 0..NH-1 */
    double weight;        /* beta, lambda */
} ss_kd_attn_desc;

typedef struct ss_kd_desc {
    ss_kl_dir dir;
    int nattn;
    ss_kd_attn_desc attn[SS_KD_MAX_SOURCES];
    const char *logit_teacher;   /* logits KD: checkpoint, NULL = off */
    double logit_tau, logit_weight;
    const char *at_teacher;      /* attention transfer: checkpoint, NULL = off */
    const char *at_layers;       /* ss_layers_parse set; NULL: the first attention
                                    source's layers, without one "last" */
    double at_weight;
} ss_kd_desc;

/* 1 if d asks for any term. */
int ss_kd_desc_any(const ss_kd_desc *d);

/* The file source a reads (the cache, or the checkpoint of
 * "online:CKPT@SEL"), copied into buf of n bytes; NULL for standard input
 * ("-"), for an online source without '@SEL', or when the path does not fit. */
const char *ss_kd_attn_file(const ss_kd_attn_desc *a, char *buf, size_t n);

typedef struct ss_kdrun ss_kdrun;

/* Opens every term of d for epochs [epoch_from, epoch_to) of the run of
 * `student` (the trainer's model, inputs normalised with mean/std, per
 * channel), whose views have identity `views` (caches are checked against
 * it; NULL: not checked), and installs the objective in t. The strings of
 * d need not outlive the call. 0 and *out set, or -1 / SS_KD_EUSAGE with
 * *out NULL. On failure the trainer may keep frozen models this call added
 * (switched off, their weights freed): it is only fit to be freed. */
int ss_kdrun_open(ss_kdrun **out, const ss_kd_desc *d, ss_trainer *t, const ss_vit *student,
                  const float mean[3], const float std[3], const ss_ident *views, uint32_t epoch_from,
                  uint32_t epoch_to, ss_err *e);
/* Before the step on batch b: every cache's next batch, checked to be b
 * ("PATH: ends before epoch 1 step 0", "PATH: record 7: ..."), handed to
 * the objective. No-op without caches or after ss_kdrun_stop. */
int ss_kdrun_feed(ss_kdrun *k, const ss_batch *b, ss_err *e);
/* The early stop: every term off, the online teachers no longer run, the
 * caches closed. */
void ss_kdrun_stop(ss_kdrun *k);
/* The identity fields known once the files are open (see above). */
const ss_ident *ss_kdrun_ident(const ss_kdrun *k);
/* The objective (its statistics: ss_distill_nstats, ss_distill_stat_name). */
const ss_distill *ss_kdrun_distill(const ss_kdrun *k);
/* Closes caches and teachers and frees the objective: the trainer, which
 * still points at them, must not step again (free it next). NULL: no-op. */
void ss_kdrun_close(ss_kdrun *k);

#endif
