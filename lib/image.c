/* image.c — uint8/float image buffers, channel conversion, and the
 * per-thread scratch memory. See image.h for the contracts.
 *
 * Not here: codecs (codec.c), resampling and pixel operations (pixops.c),
 * where images come from (idx.c, cifar.c, imgfolder.c, imgstream.c).
 */
#include "image.h"

#include <pthread.h>
#include <stdlib.h>

int ss_image_alloc(ss_image *im, int h, int w, int c, ss_err *e)
{
    size_t n;
    im->pix = NULL;
    im->h = im->w = im->c = 0;
    if (h <= 0 || w <= 0 || c < 1 || c > 4)
        return ss_fail(e, "bad image size %dx%dx%d", h, w, c);
    if (ss_mul_size((size_t)h, (size_t)w, &n) || n > SS_IMG_MAX_PIXELS || ss_mul_size(n, (size_t)c, &n))
        return ss_fail(e, "image too large: %dx%dx%d", h, w, c);
    im->pix = malloc(n);
    if (!im->pix) return ss_fail(e, "out of memory for a %dx%dx%d image", h, w, c);
    im->h = h, im->w = w, im->c = c;
    return 0;
}

void ss_image_free(ss_image *im)
{
    if (!im) return;
    free(im->pix);
    im->pix = NULL;
    im->h = im->w = im->c = 0;
}

int ss_fimage_alloc(ss_fimage *im, int h, int w, int c, ss_err *e)
{
    size_t n;
    im->p = NULL;
    im->h = im->w = im->c = 0;
    if (h <= 0 || w <= 0 || c < 1 || c > 4)
        return ss_fail(e, "bad image size %dx%dx%d", h, w, c);
    if (ss_mul_size((size_t)h, (size_t)w, &n) || n > SS_IMG_MAX_PIXELS ||
        ss_mul_size(n, (size_t)c * sizeof(float), &n))
        return ss_fail(e, "image too large: %dx%dx%d", h, w, c);
    im->p = malloc(n);
    if (!im->p) return ss_fail(e, "out of memory for a %dx%dx%d float image", h, w, c);
    im->h = h, im->w = w, im->c = c;
    return 0;
}

void ss_fimage_free(ss_fimage *im)
{
    if (!im) return;
    free(im->p);
    im->p = NULL;
    im->h = im->w = im->c = 0;
}

/* ---------------------------------------------------------------- scratch */

typedef struct scratch_set {
    void *p[SS_SCRATCH_SLOTS];
    size_t n[SS_SCRATCH_SLOTS];
} scratch_set;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_destroy(void *v)
{
    scratch_set *s = v;
    for (int k = 0; k < SS_SCRATCH_SLOTS; k++) free(s->p[k]);
    free(s);
}

static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_destroy); }

void *ss_scratch(int slot, size_t bytes)
{
    if (slot < 0 || slot >= SS_SCRATCH_SLOTS) return NULL;
    pthread_once(&scratch_once, scratch_init);
    scratch_set *s = pthread_getspecific(scratch_key);
    if (!s) {
        if (!(s = calloc(1, sizeof *s))) return NULL;
        if (pthread_setspecific(scratch_key, s)) {
            free(s);
            return NULL;
        }
    }
    if (s->n[slot] < bytes) {
        size_t want = bytes + bytes / 4 + 64;
        void *q = realloc(s->p[slot], want);
        if (!q) return NULL;
        s->p[slot] = q, s->n[slot] = want;
    }
    return s->p[slot];
}

int ss_image_to_channels(ss_image *im, int c, ss_err *e)
{
    if (c == im->c) return 0;
    size_t n = (size_t)im->h * im->w;
    if (im->c == 3 && c == 1) {
        /* L = (R*299 + G*587 + B*114) / 1000, rounded (Pillow convert("L")). */
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = im->pix + 3 * i;
            im->pix[i] = (uint8_t)((p[0] * 299u + p[1] * 587u + p[2] * 114u + 500u) / 1000u);
        }
        im->c = 1;
        return 0;
    }
    if (im->c == 1 && c == 3) {
        uint8_t *q = malloc(n * 3);
        if (!q) return ss_fail(e, "out of memory converting to RGB");
        for (size_t i = 0; i < n; i++) q[3 * i] = q[3 * i + 1] = q[3 * i + 2] = im->pix[i];
        free(im->pix);
        im->pix = q;
        im->c = 3;
        return 0;
    }
    return ss_fail(e, "cannot convert a %d-channel image to %d channels", im->c, c);
}
