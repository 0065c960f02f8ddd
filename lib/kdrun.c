/* kdrun.c — a run's distillation terms opened from their description (kdrun.h). */
#include "kdrun.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attncache.h"
#include "headrank.h"
#include "modelfile.h"
#include "runner.h"

#define MAX_TEACHERS (SS_KD_MAX_SOURCES + 2)

typedef struct teacher {
    char *path;
    ss_modelfile mf;
    int item;             /* its item in the trainer's pass */
} teacher;

struct ss_kdrun {
    ss_trainer *t;
    ss_distill_cfg cfg;
    ss_distill *d;
    int nteach;
    teacher teach[MAX_TEACHERS];
    int ncache;
    int cache_src[SS_KD_MAX_SOURCES];     /* source index of cache k */
    char *cache_path[SS_KD_MAX_SOURCES];
    ss_attncache *cache[SS_KD_MAX_SOURCES];
    ss_ident late;
};

int ss_kd_desc_any(const ss_kd_desc *d) { return d->nattn > 0 || d->logit_teacher || d->at_teacher; }

static const char *label_of(const ss_kd_attn_desc *a) { return a->label ? a->label : a->name; }

/* An online teacher (loaded once per path): the student's token grid,
 * channels and normalisation, since it sees the student's inputs. */
static int load_teacher(ss_kdrun *k, const char *path, const ss_vit_cfg *sc, const float *mean, const float *stdv,
                        teacher **out, ss_err *e)
{
    for (int i = 0; i < k->nteach; i++)
        if (!strcmp(k->teach[i].path, path)) {
            *out = &k->teach[i];
            return 0;
        }
    if (k->nteach >= MAX_TEACHERS) {
        ss_fail(e, "too many online teachers");
        return SS_KD_EUSAGE;
    }
    teacher *th = &k->teach[k->nteach];
    if (ss_modelfile_open(&th->mf, path, NULL, NULL, 0, e)) return -1;
    /* from here on th is closed by ss_kdrun_close */
    if (!(th->path = strdup(path))) {
        ss_modelfile_close(&th->mf);
        return ss_fail(e, "out of memory");
    }
    k->nteach++;
    const ss_vit_cfg *tc = &th->mf.m.cfg;
    if (tc->img_size / tc->patch != sc->img_size / sc->patch || tc->in_chans != sc->in_chans)
        return ss_fail(e, "%s: takes %dx%d inputs in %d-pixel patches (%d channels); the student's %d px views in "
                       "%d-pixel patches (%d channels) give other tokens", path, tc->img_size, tc->img_size,
                       tc->patch, tc->in_chans, sc->img_size, sc->patch, sc->in_chans);
    if (th->mf.has_norm)
        for (int c = 0; c < sc->in_chans; c++)
            if (fabsf(th->mf.mean[c] - mean[c]) > 1e-5f || fabsf(th->mf.std[c] - stdv[c]) > 1e-5f)
                return ss_fail(e, "%s: normalised with mean %g std %g, the student's views with %g %g: an online "
                               "teacher sees the student's inputs (use an attn-dump cache, which renormalises)",
                               path, th->mf.mean[c], th->mf.std[c], mean[c], stdv[c]);
    th->item = ss_trainer_add_model(k->t, &th->mf.m, NULL, e);
    if (th->item < 0) return ss_prefix(e, "%s", path);
    *out = th;
    return 0;
}

const char *ss_kd_attn_file(const ss_kd_attn_desc *a, char *buf, size_t n)
{
    const char *src = a->source, *at;
    int len;
    if (!strcmp(src, "-")) return NULL;
    if (!strncmp(src, "online:", 7)) {
        if (!(at = strrchr(src, '@'))) return NULL;
        len = snprintf(buf, n, "%.*s", (int)(at - src - 7), src + 7);
    } else
        len = snprintf(buf, n, "%s", src);
    return len >= 0 && (size_t)len < n ? buf : NULL;
}

/* Source a: online:CKPT@SEL. */
static int open_online(ss_kdrun *k, const ss_kd_attn_desc *a, ss_kd_source *src, const ss_vit_cfg *sc,
                       const float *mean, const float *stdv, char *sel, size_t seln, const char **md5, ss_err *e)
{
    const char *at = strrchr(a->source, '@');
    char path[4096];
    if (!at || at == a->source + 7 || !at[1]) {
        ss_fail(e, "%s: expected online:CKPT@SELECTION, got '%s'", label_of(a), a->source);
        return SS_KD_EUSAGE;
    }
    if (!ss_kd_attn_file(a, path, sizeof path)) return ss_fail(e, "%s: checkpoint path too long", label_of(a));
    teacher *th;
    int rc = load_teacher(k, path, sc, mean, stdv, &th, e);
    if (rc) return rc;
    ss_headsel hsel;
    if (ss_headsel_parse(at + 1, th->mf.m.cfg.depth, th->mf.m.cfg.num_heads, &hsel, e)) {
        ss_prefix(e, "%s", label_of(a));
        return SS_KD_EUSAGE;
    }
    src->item = th->item;
    src->teacher = &th->mf.m;
    src->nlayers = hsel.n;
    for (int l = 0; l < hsel.n; l++) {
        src->layer[l] = hsel.layer[l];
        src->teacher_head[l] = hsel.head[l] == SS_HEAD_AVG ? -1 : hsel.head[l];
    }
    ss_headsel_format(&hsel, sel, seln);
    *md5 = th->mf.md5;
    return 0;
}

/* Source a (index i): a cache, read from epoch e0. */
static int open_cache(ss_kdrun *k, int i, const ss_kd_attn_desc *a, ss_kd_source *src, const ss_vit_cfg *sc,
                      const ss_ident *views, uint32_t e0, uint32_t e1, char *sel, size_t seln, const char **md5,
                      ss_err *e)
{
    const char *path = a->source;
    ss_attncache *c = ss_attncache_open(path, views, e0, e1, e);
    if (!c) return ss_prefix(e, "%s", label_of(a));
    char *copy = strdup(path);
    if (!copy) {
        ss_attncache_close(c);
        return ss_fail(e, "out of memory");
    }
    k->cache_src[k->ncache] = i;
    k->cache_path[k->ncache] = copy;
    k->cache[k->ncache++] = c;
    /* the layers: the cache's selection */
    const ss_record *h = ss_attncache_header(c);
    const char *hs = ss_record_meta(h, "ssta.heads");
    ss_headsel hsel;
    if (!hs) return ss_fail(e, "%s: the header has no ssta.heads", path);
    if (ss_headsel_parse(hs, sc->depth, 1 << 20, &hsel, e)) return ss_prefix(e, "%s: ssta.heads", path);
    if (hsel.n > SS_KD_MAX_LAYERS) return ss_fail(e, "%s: too many layers", path);
    src->nlayers = hsel.n;
    for (int l = 0; l < hsel.n; l++) src->layer[l] = hsel.layer[l];
    snprintf(sel, seln, "%s", hs);
    int N = (sc->img_size / sc->patch) * (sc->img_size / sc->patch) + 1;
    if (ss_attncache_tokens(c) != N)
        return ss_fail(e, "%s: maps of %d tokens, the student has %d", path, ss_attncache_tokens(c), N);
    *md5 = ss_record_meta(h, SS_META_MODEL_MD5);
    if (!*md5) return ss_fail(e, "%s: the header has no %s", path, SS_META_MODEL_MD5);
    return 0;
}

static int open_terms(ss_kdrun *k, const ss_kd_desc *kd, const ss_vit *s, const float *mean, const float *stdv,
                      const ss_ident *views, uint32_t e0, uint32_t e1, ss_err *e)
{
    const ss_vit_cfg *sc = &s->cfg;
    ss_distill_cfg *dc = &k->cfg;
    dc->student = s;
    dc->workers = ss_runner_workers(ss_trainer_runner(k->t));
    dc->batch = ss_trainer_batch(k->t);
    dc->dir = kd->dir;
    if (kd->nattn < 0 || kd->nattn > SS_KD_MAX_SOURCES) {
        ss_fail(e, "%d attention sources (at most %d)", kd->nattn, SS_KD_MAX_SOURCES);
        return SS_KD_EUSAGE;
    }
    int stdin_users = 0;
    for (int i = 0; i < kd->nattn; i++) stdin_users += !strcmp(kd->attn[i].source, "-");
    if (stdin_users > 1) {
        ss_fail(e, "only one cache can come from standard input");
        return SS_KD_EUSAGE;
    }
    char key[64], sel[1024];
    for (int i = 0; i < kd->nattn; i++) {
        const ss_kd_attn_desc *a = &kd->attn[i];
        ss_kd_source *src = &dc->src[dc->nsrc++];
        snprintf(src->name, sizeof src->name, "%s", a->name);
        src->student_head = a->student_head;
        src->weight = (float)a->weight;
        if (a->student_head < 0 || a->student_head >= sc->num_heads) {
            ss_fail(e, "%s: student head %d, the student has heads 0..%d", label_of(a), a->student_head,
                    sc->num_heads - 1);
            return SS_KD_EUSAGE;
        }
        const char *md5;
        int rc = !strncmp(a->source, "online:", 7)
                     ? open_online(k, a, src, sc, mean, stdv, sel, sizeof sel, &md5, e)
                     : open_cache(k, i, a, src, sc, views, e0, e1, sel, sizeof sel, &md5, e);
        if (rc) return rc;
        snprintf(key, sizeof key, "kd.%s.teacher_md5", a->name);
        if (ss_ident_add(&k->late, e, key, "%s", md5)) return -1;
        snprintf(key, sizeof key, "kd.%s.heads", a->name);
        if (ss_ident_add(&k->late, e, key, "%s", sel)) return -1;
    }
    if (kd->logit_teacher) {
        teacher *th;
        int rc = load_teacher(k, kd->logit_teacher, sc, mean, stdv, &th, e);
        if (rc) return rc;
        if (th->mf.m.cfg.num_classes != sc->num_classes)
            return ss_fail(e, "%s: %d classes, the student %d: no logits KD", kd->logit_teacher,
                           th->mf.m.cfg.num_classes, sc->num_classes);
        dc->logit_item = th->item;
        dc->logit_tau = (float)kd->logit_tau;
        dc->logit_weight = (float)kd->logit_weight;
        if (ss_ident_add(&k->late, e, "logit_kd.teacher_md5", "%s", th->mf.md5)) return -1;
    }
    if (kd->at_teacher) {
        teacher *th;
        int rc = load_teacher(k, kd->at_teacher, sc, mean, stdv, &th, e);
        if (rc) return rc;
        dc->at_item = th->item;
        dc->at_teacher = &th->mf.m;
        dc->at_weight = (float)kd->at_weight;
        if (kd->at_layers) {
            if (ss_layers_parse(kd->at_layers, sc->depth, dc->at_layer, &dc->at_nlayers, e)) {
                ss_prefix(e, "attention transfer layers");
                return SS_KD_EUSAGE;
            }
        } else if (dc->nsrc) {
            dc->at_nlayers = dc->src[0].nlayers;
            memcpy(dc->at_layer, dc->src[0].layer, sizeof dc->at_layer);
        } else if (ss_layers_parse("last", sc->depth, dc->at_layer, &dc->at_nlayers, e)) {
            return -1;
        }
        if (ss_ident_add(&k->late, e, "at_kd.teacher_md5", "%s", th->mf.md5)) return -1;
    }
    if (!(k->d = ss_distill_new(dc, e))) return -1;
    return ss_trainer_set_objective(k->t, ss_distill_objective, k->d, ss_distill_nstats(k->d), e);
}

int ss_kdrun_open(ss_kdrun **out, const ss_kd_desc *d, ss_trainer *t, const ss_vit *student,
                  const float mean[3], const float std[3], const ss_ident *views, uint32_t epoch_from,
                  uint32_t epoch_to, ss_err *e)
{
    *out = NULL;
    ss_kdrun *k = calloc(1, sizeof *k);
    if (!k) return ss_fail(e, "out of memory");
    k->t = t;
    ss_ident_init(&k->late);
    int rc = open_terms(k, d, student, mean, std, views, epoch_from, epoch_to, e);
    if (rc) {
        if (k->nteach) ss_trainer_run_models(t, 0);
        ss_kdrun_close(k);
        return rc;
    }
    *out = k;
    return 0;
}

int ss_kdrun_feed(ss_kdrun *k, const ss_batch *b, ss_err *e)
{
    for (int i = 0; i < k->ncache; i++) {
        ss_attn_batch ab;
        const char *path = k->cache_path[i];
        int rc = ss_attncache_next(k->cache[i], &ab, e);
        if (rc < 0) return -1;
        if (rc == 0) return ss_fail(e, "%s: ends before epoch %u step %u", path, b->epoch, b->step);
        if (ss_attncache_match(&ab, b->epoch, b->step, b->n, b->index, e)) return ss_prefix(e, "%s", path);
        ss_distill_set_maps(k->d, k->cache_src[i], ab.maps);
    }
    return 0;
}

static void close_caches(ss_kdrun *k)
{
    for (int i = 0; i < k->ncache; i++) {
        ss_attncache_close(k->cache[i]);
        free(k->cache_path[i]);
    }
    k->ncache = 0;
}

void ss_kdrun_stop(ss_kdrun *k)
{
    ss_distill_enable(k->d, 0);
    ss_trainer_run_models(k->t, 0);
    close_caches(k);
}

const ss_ident *ss_kdrun_ident(const ss_kdrun *k) { return &k->late; }
const ss_distill *ss_kdrun_distill(const ss_kdrun *k) { return k->d; }

void ss_kdrun_close(ss_kdrun *k)
{
    if (!k) return;
    close_caches(k);
    ss_distill_free(k->d);
    for (int i = 0; i < k->nteach; i++) {
        ss_modelfile_close(&k->teach[i].mf);
        free(k->teach[i].path);
    }
    ss_ident_free(&k->late);
    free(k);
}
