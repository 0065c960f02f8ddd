/* cifar.c — CIFAR-10 and CIFAR-100 read straight from the official binary
 * tarballs (cifar-10-binary.tar.gz, cifar-100-binary.tar.gz) with
 * libarchive: no unpacking step. Decoded once into memory (32x32x3 uint8).
 *
 * CIFAR-10:  members DIR/data_batch_1..5.bin (train, in that order),
 *            DIR/test_batch.bin, DIR/batches.meta.txt (class names);
 *            record = 1 label byte + 3072 bytes (R, G, B planes, 32x32).
 * CIFAR-100: members DIR/train.bin, DIR/test.bin, DIR/fine_label_names.txt,
 *            DIR/coarse_label_names.txt; record = coarse byte, fine byte,
 *            3072 bytes. labels=fine (default) or coarse.
 * Member order inside the tarball does not matter. The record count is
 * whatever the members hold (10000 per CIFAR-10 batch in the official
 * files); a member that is not a whole number of records is an error.
 */
#include "data_src.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#define CIFAR_MAX_MEMBER ((size_t)512 << 20)

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Which train/test member a name is: 0 none, else 1-based order. */
static int member_rank(const char *base, int hundred, int test)
{
    if (hundred) return !strcmp(base, test ? "test.bin" : "train.bin") ? 1 : 0;
    if (test) return !strcmp(base, "test_batch.bin") ? 1 : 0;
    if (!strncmp(base, "data_batch_", 11) && base[11] >= '1' && base[11] <= '5' && !strcmp(base + 12, ".bin"))
        return base[11] - '0';
    return 0;
}

int ss_src_cifar(ss_src *s, const char *tarball, int hundred, int test, int coarse, ss_err *e)
{
    const char *what = hundred ? "cifar100" : "cifar10";
    const char *names_member = hundred ? (coarse ? "coarse_label_names.txt" : "fine_label_names.txt")
                                       : "batches.meta.txt";
    int nclasses = hundred ? (coarse ? 20 : 100) : 10;
    size_t reclen = hundred ? 3074 : 3073;
    uint8_t *parts[6] = {0};
    size_t plen[6] = {0};
    char *names_txt = NULL;
    size_t names_len = 0;
    int rc = -1;

    struct archive *a = archive_read_new();
    if (!a) return ss_fail(e, "out of memory");
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    if (archive_read_open_filename(a, tarball, 1 << 16) != ARCHIVE_OK) {
        ss_fail(e, "%s: %s: %s (download the binary version from https://www.cs.toronto.edu/~kriz/cifar.html)",
                what, tarball, archive_error_string(a));
        archive_read_free(a);
        return -1;
    }
    struct archive_entry *ent;
    int r;
    while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        if (archive_entry_filetype(ent) != AE_IFREG) continue;
        const char *name = archive_entry_pathname(ent), *base = base_name(name ? name : "");
        int rank = member_rank(base, hundred, test);
        int is_names = !strcmp(base, names_member);
        if (!rank && !is_names) continue;
        la_int64_t sz = archive_entry_size(ent);
        if (sz < 0 || (size_t)sz > CIFAR_MAX_MEMBER) {
            ss_fail(e, "%s: %s: %s: bad member size %lld", what, tarball, name, (long long)sz);
            goto out;
        }
        uint8_t *buf = malloc((size_t)sz + 1);
        if (!buf) {
            ss_fail(e, "%s: out of memory", what);
            goto out;
        }
        la_ssize_t got = archive_read_data(a, buf, (size_t)sz);
        if (got != (la_ssize_t)sz) {
            ss_fail(e, "%s: %s: %s: %s", what, tarball, name, got < 0 ? archive_error_string(a) : "truncated member");
            free(buf);
            goto out;
        }
        if (is_names) {
            free(names_txt);
            names_txt = (char *)buf, names_len = (size_t)sz;
            names_txt[names_len] = 0;
        } else {
            if (parts[rank]) {
                ss_fail(e, "%s: %s: member %s appears twice", what, tarball, base);
                free(buf);
                goto out;
            }
            if ((size_t)sz % reclen) {
                ss_fail(e, "%s: %s: %s: %lld bytes is not a whole number of %zu-byte records", what,
                        tarball, name, (long long)sz, reclen);
                free(buf);
                goto out;
            }
            parts[rank] = buf, plen[rank] = (size_t)sz;
        }
    }
    if (r != ARCHIVE_EOF) {
        ss_fail(e, "%s: %s: %s", what, tarball, archive_error_string(a));
        goto out;
    }
    size_t n = 0;
    int nparts = 0;
    for (int k = 1; k <= 5; k++)
        if (parts[k]) n += plen[k] / reclen, nparts++;
    int want_parts = (hundred || test) ? 1 : 5;
    if (nparts != want_parts) {
        ss_fail(e, "%s: %s: found %d of the %d %s members (is this the *binary* tarball?)", what,
                tarball, nparts, want_parts, test ? "test" : "train");
        goto out;
    }
    if (!n) {
        ss_fail(e, "%s: %s: no records", what, tarball);
        goto out;
    }
    /* Class names: one a line (blank lines ignored), exactly nclasses. */
    char **cn = calloc((size_t)nclasses, sizeof(char *));
    if (!cn) {
        ss_fail(e, "out of memory");
        goto out;
    }
    s->class_names = cn;
    s->nclasses = nclasses;
    int k = 0;
    if (names_txt) {
        for (char *line = strtok(names_txt, "\r\n"); line && k < nclasses; line = strtok(NULL, "\r\n")) {
            while (*line == ' ') line++;
            if (!*line) continue;
            if (!(cn[k++] = strdup(line))) {
                ss_fail(e, "out of memory");
                goto out_src;
            }
        }
    }
    for (; k < nclasses; k++) {
        char b[16];
        snprintf(b, sizeof b, "%d", k);
        if (!(cn[k] = strdup(b))) {
            ss_fail(e, "out of memory");
            goto out_src;
        }
    }
    s->pix = malloc(n * 3072);
    s->labels = malloc(sizeof(int32_t) * n);
    if (!s->pix || !s->labels) {
        ss_fail(e, "%s: out of memory for %zu images", what, n);
        goto out_src;
    }
    size_t i = 0;
    for (int p = 1; p <= 5; p++) {
        if (!parts[p]) continue;
        for (size_t j = 0; j < plen[p] / reclen; j++, i++) {
            const uint8_t *rec = parts[p] + j * reclen;
            int label = hundred ? rec[coarse ? 0 : 1] : rec[0];
            if (label >= nclasses) {
                ss_fail(e, "%s: %s: record %zu: label %d out of range (%d classes)", what, tarball, i, label, nclasses);
                goto out_src;
            }
            s->labels[i] = label;
            const uint8_t *pl = rec + (hundred ? 2 : 1);
            uint8_t *dst = s->pix + i * 3072;
            for (int q = 0; q < 1024; q++) {
                dst[3 * q] = pl[q];
                dst[3 * q + 1] = pl[1024 + q];
                dst[3 * q + 2] = pl[2048 + q];
            }
        }
    }
    s->n = n;
    s->h = s->w = 32, s->c = 3;
    if (hundred) {
        const float m[3] = {0.5071f, 0.4865f, 0.4409f}, sd[3] = {0.2673f, 0.2564f, 0.2762f};
        memcpy(s->mean, m, sizeof m), memcpy(s->std, sd, sizeof sd);
    } else {
        const float m[3] = {0.4914f, 0.4822f, 0.4465f}, sd[3] = {0.2470f, 0.2435f, 0.2616f};
        memcpy(s->mean, m, sizeof m), memcpy(s->std, sd, sizeof sd);
    }
    rc = 0;
    goto out;
out_src:
    ss_src_free(s);
out:
    archive_read_free(a);
    for (int p = 0; p < 6; p++) free(parts[p]);
    free(names_txt);
    return rc;
}
