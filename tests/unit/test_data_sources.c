/* test_data_sources.c — every dataset source on fixtures this test builds
 * itself with the library's encoders and libarchive: class folders as a
 * directory, a tar, a tar.gz and a zip (same pixels, labels, class order);
 * a classes file; CIFAR-10/100 binary tarballs; gzip IDX; image streams;
 * subsets and held-out splits; and the corrupt-image suite (fail by
 * default naming the path, or skip and count).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

#include "../check.h"
#include "codec.h"
#include "data.h"
#include "stream.h"

static char tmpdir[4096];

static void put_file(const char *rel, const void *buf, size_t len)
{
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    for (char *s = p + strlen(tmpdir) + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    FILE *f = fopen(p, "wb");
    CHECK_MSG(f != NULL, "cannot write %s", p);
    if (f) {
        fwrite(buf, 1, len, f);
        fclose(f);
    }
}

typedef struct member {
    char name[256];
    uint8_t *buf;
    size_t len;
} member;

/* kind: 0 tar (pax restricted), 1 tar.gz, 2 zip, 3 GNU tar, 4 pax */
static void put_archive(const char *rel, int kind, const member *m, int n)
{
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    struct archive *a = archive_write_new();
    if (kind == 2) archive_write_set_format_zip(a);
    else if (kind == 3) archive_write_set_format_gnutar(a);
    else if (kind == 4) archive_write_set_format_pax(a);
    else archive_write_set_format_pax_restricted(a);
    if (kind == 1) archive_write_add_filter_gzip(a);
    CHECK(archive_write_open_filename(a, p) == ARCHIVE_OK);
    for (int i = 0; i < n; i++) {
        struct archive_entry *en = archive_entry_new();
        archive_entry_set_pathname(en, m[i].name);
        archive_entry_set_size(en, (la_int64_t)m[i].len);
        archive_entry_set_filetype(en, AE_IFREG);
        archive_entry_set_perm(en, 0644);
        CHECK(archive_write_header(a, en) == ARCHIVE_OK);
        CHECK(archive_write_data(a, m[i].buf, m[i].len) == (la_ssize_t)m[i].len);
        archive_entry_free(en);
    }
    CHECK(archive_write_close(a) == ARCHIVE_OK);
    archive_write_free(a);
}

/* Image j of class k: a PNG whose pixels encode (k, j) exactly. */
static void class_png(int k, int j, int c, uint8_t **buf, size_t *len)
{
    ss_image im;
    ss_err e;
    ss_image_alloc(&im, 10 + j, 12, c, &e);
    for (size_t i = 0; i < (size_t)im.h * im.w * c; i++) im.pix[i] = (uint8_t)(40 * k + 7 * j + i % 5);
    ss_png_encode(&im, buf, len, &e);
    ss_image_free(&im);
}

static void class_jpeg(int k, int j, int cmyk, int gray, uint8_t **buf, size_t *len)
{
    ss_image im;
    ss_err e;
    ss_image_alloc(&im, 16, 16, gray ? 1 : 3, &e);
    memset(im.pix, 40 * k + 7 * j, (size_t)16 * 16 * im.c);
    if (cmyk) ss_jpeg_encode_cmyk(&im, 95, buf, len, &e);
    else ss_jpeg_encode(&im, 95, buf, len, &e);
    ss_image_free(&im);
}

static int mean_pixel(const ss_image *im)
{
    double s = 0;
    size_t n = (size_t)im->h * im->w * im->c;
    for (size_t i = 0; i < n; i++) s += im->pix[i];
    return (int)(s / n + 0.5);
}

/* Same samples, labels and pixels in two data sets. */
static int same_data(ss_dataset *a, ss_dataset *b)
{
    ss_err e;
    if (ss_dataset_len(a) != ss_dataset_len(b) || ss_dataset_nclasses(a) != ss_dataset_nclasses(b)) return 0;
    for (int k = 0; k < ss_dataset_nclasses(a); k++)
        if (strcmp(ss_dataset_class_name(a, k), ss_dataset_class_name(b, k))) return 0;
    for (size_t i = 0; i < ss_dataset_len(a); i++) {
        ss_image x, y;
        int la, lb;
        if (ss_dataset_get(a, i, &x, &la, &e) || ss_dataset_get(b, i, &y, &lb, &e)) return 0;
        int ok = la == lb && x.h == y.h && x.w == y.w && x.c == y.c &&
                 !memcmp(x.pix, y.pix, (size_t)x.h * x.w * x.c);
        ss_image_free(&x), ss_image_free(&y);
        if (!ok) return 0;
    }
    return 1;
}

static ss_dataset *open_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static ss_dataset *open_ok(const char *fmt, ...)
{
    char spec[8192];
    ss_err e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(spec, sizeof spec, fmt, ap);
    va_end(ap);
    ss_dataset *d = ss_dataset_open(spec, &e);
    CHECK_MSG(d != NULL, "%s: %s", spec, e.msg);
    return d;
}

static void test_folders(void)
{
    ss_err e;
    /* classes written out of order; sorted: ant, cat, dog */
    const char *cls[3] = {"dog", "cat", "ant"};
    const int rank[3] = {2, 1, 0};
    member m[16];
    int nm = 0;
    for (int c = 0; c < 3; c++)
        for (int j = 0; j < 4; j++) {
            uint8_t *buf;
            size_t len;
            const char *ext = j < 2 ? "png" : "jpg";
            if (j < 2) class_png(rank[c], j, j == 1 ? 1 : 3, &buf, &len);
            else class_jpeg(rank[c], j, c == 0 && j == 3, c == 1 && j == 3, &buf, &len);
            snprintf(m[nm].name, sizeof m[nm].name, "train/%s/%simg%d.%s", cls[c],
                     j == 3 ? "sub/" : "", j, c == 2 && j == 2 ? "JPEG" : ext);
            m[nm].buf = buf, m[nm].len = len;
            char rel[512];
            snprintf(rel, sizeof rel, "dir/%s", m[nm].name);
            put_file(rel, buf, len);
            nm++;
        }
    put_file("dir/train/README.txt", "x", 1);          /* not in a class: ignored */
    put_file("dir/train/cat/notes.txt", "x", 1);       /* not an image: ignored */
    m[nm].buf = (uint8_t *)"readme";
    m[nm].len = 6;
    snprintf(m[nm].name, sizeof m[nm].name, "train/README.txt");
    nm++;
    put_archive("imgs.tar", 0, m, nm);
    put_archive("imgs.tar.gz", 1, m, nm);
    put_archive("imgs.zip", 2, m, nm);

    char p[8192];
    snprintf(p, sizeof p, "%s/dir/train", tmpdir);
    ss_dataset *dd = open_ok("folder:%s", p);
    if (!dd) return;
    CHECK(ss_dataset_len(dd) == 12 && ss_dataset_nclasses(dd) == 3);
    CHECK(!strcmp(ss_dataset_class_name(dd, 0), "ant") && !strcmp(ss_dataset_class_name(dd, 2), "dog"));
    int h, w, c;
    ss_dataset_geometry(dd, &h, &w, &c);
    CHECK(h == 0 && w == 0 && c == 0);
    /* Sample order is (class, path); pixels encode (class, j). */
    for (size_t i = 0; i < 12; i++) {
        ss_image im;
        int label;
        CHECK_MSG(ss_dataset_get(dd, i, &im, &label, &e) == 0, "%s", e.msg);
        CHECK(label == (int)(i / 4));
        int j = (int)(i % 4);   /* img0.png img1.png img2.jpg sub/img3.jpg sorted by path */
        int want = 40 * label + 7 * j + (j < 2 ? 2 : 0);
        CHECK_MSG(abs(mean_pixel(&im) - want) <= 2, "sample %zu: mean %d want %d", i, mean_pixel(&im), want);
        CHECK(im.c == (j == 1 || (label == 1 && j == 3) ? 1 : 3));
        ss_image_free(&im);
    }
    /* Canonical spec: the absolute path, whatever the working directory. */
    {
        char cwd[4096], real[4096], want[8300];
        CHECK(getcwd(cwd, sizeof cwd) != NULL);
        CHECK(realpath(tmpdir, real) != NULL);
        CHECK(chdir(tmpdir) == 0);
        ss_dataset *rel = ss_dataset_open("folder:dir/train", &e);
        CHECK_MSG(rel != NULL, "%s", e.msg);
        snprintf(want, sizeof want, "folder:%s/dir/train", real);
        if (rel) CHECK_MSG(!strcmp(ss_dataset_spec(rel), want), "%s", ss_dataset_spec(rel));
        CHECK(!strcmp(ss_dataset_spec(dd), want));
        ss_dataset_close(rel);
        CHECK(chdir(cwd) == 0);
    }
    char name[512];
    ss_dataset_item_name(dd, 5, name, sizeof name);
    CHECK_MSG(strstr(name, "/cat/img1.png"), "%s", name);
    /* Archives: same data as the directory. */
    const char *arcs[3] = {"imgs.tar", "imgs.tar.gz", "imgs.zip"};
    for (int a = 0; a < 3; a++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, arcs[a]);
        ss_dataset *da = open_ok("folder:%s", p);
        CHECK_MSG(da && same_data(dd, da), "%s differs from the directory", arcs[a]);
        if (da && a == 1) {
            ss_dataset_item_name(da, 0, name, sizeof name);
            CHECK_MSG(strstr(name, "imgs.tar.gz: train/ant/img0.png"), "%s", name);
        }
        ss_dataset_close(da);
    }
    /* Plain tars are read in place: long names (pax and GNU headers) work,
     * and a member damaged after open is noticed at read time. */
    for (int kind = 3; kind <= 4; kind++) {
        member lm[4];
        for (int j = 0; j < 4; j++) {
            char lcls[200];
            memset(lcls, 'a' + (j & 1), 130);
            lcls[130] = 0;
            snprintf(lm[j].name, sizeof lm[j].name, "x/%s/very-long-file-name-%d-%s.png", lcls, j,
                     "padding-padding-padding-padding-padding-padding-padding-padding");
            class_png(j & 1, j, 3, &lm[j].buf, &lm[j].len);
        }
        put_archive("long.tar", kind, lm, 4);
        snprintf(p, sizeof p, "%s/long.tar", tmpdir);
        ss_dataset *dl = open_ok("folder:%s", p);
        if (dl) {
            CHECK(ss_dataset_len(dl) == 4 && ss_dataset_nclasses(dl) == 2);
            CHECK(strlen(ss_dataset_class_name(dl, 1)) == 130 && ss_dataset_class_name(dl, 1)[0] == 'b');
            ss_image im;
            int label;
            CHECK(ss_dataset_get(dl, 3, &im, &label, &e) == 0 && label == 1);
            CHECK(im.h == 13 && im.pix[0] == 40 * 1 + 7 * 3);   /* j = 3 sorts last */
            ss_image_free(&im);
        }
        ss_dataset_close(dl);
        for (int j = 0; j < 4; j++) free(lm[j].buf);
    }
    {
        snprintf(p, sizeof p, "%s/imgs.tar", tmpdir);
        ss_dataset *dt = open_ok("folder:%s", p);
        FILE *fp = fopen(p, "r+b");
        CHECK(fp != NULL);
        if (dt && fp) {
            /* Damage the header chunk of every PNG member in the file. */
            uint8_t blk[512];
            long at[64];
            int na = 0;
            for (long off = 0; na < 64 && fread(blk, 1, 512, fp) == 512; off += 512)
                if (!memcmp(blk, "\x89PNG", 4)) at[na++] = off;
            CHECK(na == 6);
            for (int k = 0; k < na; k++) {
                fseek(fp, at[k] + 16, SEEK_SET);
                fwrite("\xff\xff\xff\xff", 1, 4, fp);
            }
            fclose(fp);
            fp = NULL;
            ss_image im;
            int label;
            CHECK(ss_dataset_get(dt, 0, &im, &label, &e) == -1);
            CHECK_MSG(strstr(e.msg, "imgs.tar: train/ant/img0.png: bad PNG"), "%s", e.msg);
        }
        if (fp) fclose(fp);
        ss_dataset_close(dt);
        /* A tar cut in the middle of a member. */
        put_archive("cut.tar", 0, m, 1);
        snprintf(p, sizeof p, "%s/cut.tar", tmpdir);
        FILE *ct = fopen(p, "r+b");
        if (ct) {
            CHECK(ftruncate(fileno(ct), 512 + 100) == 0);
            fclose(ct);
        }
        snprintf(p, sizeof p, "folder:%s/cut.tar", tmpdir);
        CHECK(ss_dataset_open(p, &e) == NULL);
        CHECK_MSG(strstr(e.msg, "cut.tar: corrupt or truncated tar header at byte 0"), "%s", e.msg);
    }
    /* Classes file: fixes the order and may list more classes. */
    put_file("classes.txt", "dog\ncat\nbee\nant\n", 16);
    snprintf(p, sizeof p, "%s/dir/train,classes=%s/classes.txt", tmpdir, tmpdir);
    ss_dataset *dc = open_ok("folder:%s", p);
    if (dc) {
        CHECK(ss_dataset_nclasses(dc) == 4 && ss_dataset_label(dc, 0) == 3 && ss_dataset_label(dc, 11) == 0);
        snprintf(p, sizeof p, "%s/written.txt", tmpdir);
        CHECK(ss_dataset_write_classes(dc, p, &e) == 0);
        FILE *f = fopen(p, "r");
        char got[64] = {0};
        if (f) {
            size_t r = fread(got, 1, sizeof got - 1, f);
            (void)r;
            fclose(f);
        }
        CHECK_MSG(!strcmp(got, "dog\ncat\nbee\nant\n"), "%s", got);
    }
    ss_dataset_close(dc);
    put_file("classes2.txt", "dog\ncat\n", 8);
    snprintf(p, sizeof p, "folder:%s/dir/train,classes=%s/classes2.txt", tmpdir, tmpdir);
    CHECK(ss_dataset_open(p, &e) == NULL);
    CHECK_MSG(strstr(e.msg, "'ant' is not in"), "%s", e.msg);

    /* Subsets and held-out split on a folder. */
    snprintf(p, sizeof p, "%s/dir/train", tmpdir);
    ss_dataset *s1 = open_ok("folder:%s,per-class=2,seed=1", p);
    ss_dataset *s2 = open_ok("folder:%s,seed=1,per-class=2", p);
    ss_dataset *s3 = open_ok("folder:%s,per-class=2,seed=2", p);
    ss_dataset *hv = open_ok("folder:%s,holdout=1,part=val", p);
    ss_dataset *ht = open_ok("folder:%s,holdout=1,part=train", p);
    ss_dataset *n5 = open_ok("folder:%s,n=5", p);
    if (s1 && s2 && s3 && hv && ht && n5) {
        CHECK(ss_dataset_len(s1) == 6 && same_data(s1, s2));
        int cnt[3] = {0};
        for (size_t i = 0; i < 6; i++) cnt[ss_dataset_label(s1, i)]++;
        CHECK(cnt[0] == 2 && cnt[1] == 2 && cnt[2] == 2);
        CHECK(!strcmp(ss_dataset_spec(s2), ss_dataset_spec(s1)));
        int differs = 0;
        for (size_t i = 0; i < 6; i++) differs |= ss_dataset_source_index(s1, i) != ss_dataset_source_index(s3, i);
        CHECK(differs);   /* another seed, another subset (C(4,2)^3 choices) */
        CHECK(ss_dataset_len(hv) == 3 && ss_dataset_len(ht) == 9);
        unsigned char seen[12] = {0};
        for (size_t i = 0; i < 3; i++) seen[ss_dataset_source_index(hv, i)]++;
        for (size_t i = 0; i < 9; i++) seen[ss_dataset_source_index(ht, i)]++;
        int part = 1;
        for (int i = 0; i < 12; i++) part &= seen[i] == 1;
        CHECK(part);
        CHECK(ss_dataset_len(n5) == 5);
        CHECK_MSG(strstr(ss_dataset_spec(hv), ",holdout=1,part=val"), "%s", ss_dataset_spec(hv));
    }
    ss_dataset_close(s1), ss_dataset_close(s2), ss_dataset_close(s3);
    ss_dataset_close(hv), ss_dataset_close(ht), ss_dataset_close(n5);

    /* Image stream round trip (written from the folder data set). */
    snprintf(p, sizeof p, "%s/imgs.sts.zst", tmpdir);
    ss_swriter *wr = ss_swriter_open(p, 3, &e);
    CHECK_MSG(wr != NULL, "%s", e.msg);
    if (wr) {
        ss_record r;
        ss_record_init(&r);
        CHECK(ss_imgstream_header(&r, "test_data_sources", dd, &e) == 0);
        CHECK(ss_swriter_put(wr, &r, &e) == 0);
        ss_record_free(&r);
        for (size_t i = 0; i < ss_dataset_len(dd); i++) {
            ss_image im;
            int label;
            ss_dataset_get(dd, i, &im, &label, &e);
            CHECK(ss_imgstream_put(wr, &im, label, &e) == 0);
            ss_image_free(&im);
        }
        CHECK_MSG(ss_swriter_close(wr, &e) == 0, "%s", e.msg);
        ss_dataset *ds = open_ok("stream:%s", p);
        CHECK(ds && same_data(dd, ds));
        if (ds) {
            ss_dataset_item_name(ds, 3, name, sizeof name);
            CHECK_MSG(strstr(name, "record 4"), "%s", name);
        }
        ss_dataset_close(ds);
    }
    ss_dataset_close(dd);
    for (int i = 0; i < nm - 1; i++) free(m[i].buf);
}

static void cifar_record(uint8_t *rec, int hundred, int coarse, int fine, int seed)
{
    int o = 0;
    if (hundred) rec[o++] = (uint8_t)coarse;
    rec[o++] = (uint8_t)fine;
    for (int q = 0; q < 3072; q++) rec[o + q] = (uint8_t)(seed * 31 + q * 7 + (q / 1024) * 50);
}

static void test_cifar(void)
{
    ss_err e;
    member m[8];
    int nm = 0, rec = 0;
    for (int b = 1; b <= 5; b++) {
        snprintf(m[nm].name, sizeof m[nm].name, "cifar-10-batches-bin/data_batch_%d.bin", b);
        m[nm].len = 3 * 3073;
        m[nm].buf = malloc(m[nm].len);
        for (int j = 0; j < 3; j++, rec++) cifar_record(m[nm].buf + j * 3073, 0, 0, rec % 10, rec);
        nm++;
    }
    snprintf(m[nm].name, sizeof m[nm].name, "cifar-10-batches-bin/test_batch.bin");
    m[nm].len = 4 * 3073;
    m[nm].buf = malloc(m[nm].len);
    for (int j = 0; j < 4; j++) cifar_record(m[nm].buf + j * 3073, 0, 0, 9 - j, 100 + j);
    nm++;
    const char *meta = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    snprintf(m[nm].name, sizeof m[nm].name, "cifar-10-batches-bin/batches.meta.txt");
    m[nm].len = strlen(meta);
    m[nm].buf = (uint8_t *)strdup(meta);
    nm++;
    /* Shuffle member order: batches 5 first. */
    member t = m[0];
    m[0] = m[4], m[4] = t;
    put_archive("cifar-10-binary.tar.gz", 1, m, nm);
    char p[8192];
    snprintf(p, sizeof p, "%s/cifar-10-binary.tar.gz", tmpdir);
    ss_dataset *tr = open_ok("cifar10:%s:train", p);
    char spec[8300];
    snprintf(spec, sizeof spec, "cifar10:%s:test", p);
    ss_dataset *te = ss_dataset_open(spec, &e);
    CHECK_MSG(te != NULL, "%s", e.msg);
    if (tr && te) {
        CHECK(ss_dataset_len(tr) == 15 && ss_dataset_len(te) == 4 && ss_dataset_nclasses(tr) == 10);
        CHECK(!strcmp(ss_dataset_class_name(tr, 9), "truck"));
        int h, w, c;
        ss_dataset_geometry(tr, &h, &w, &c);
        CHECK(h == 32 && w == 32 && c == 3);
        ss_image im;
        int label;
        /* Record 7 = data_batch_3 record 1: label 7, planes -> HWC. */
        CHECK(ss_dataset_get(tr, 7, &im, &label, &e) == 0 && label == 7);
        int ok = 1;
        for (int q = 0; q < 1024; q++)
            for (int ch = 0; ch < 3; ch++)
                ok &= im.pix[3 * q + ch] == (uint8_t)(7 * 31 + (ch * 1024 + q) * 7 + ch * 50);
        CHECK(ok);
        ss_image_free(&im);
        CHECK(ss_dataset_label(te, 0) == 9 && ss_dataset_label(te, 3) == 6);
        float mean[3], std[3];
        ss_dataset_norm(tr, mean, std);
        CHECK_CLOSE(mean[0], 0.4914, 0, 1e-6);
    }
    ss_dataset_close(tr), ss_dataset_close(te);
    /* A tarball missing a batch names what it found. */
    put_archive("cifar-broken.tar", 0, m + 1, nm - 1);
    snprintf(spec, sizeof spec, "cifar10:%s/cifar-broken.tar:train", tmpdir);
    CHECK(ss_dataset_open(spec, &e) == NULL);
    CHECK_MSG(strstr(e.msg, "found 4 of the 5"), "%s", e.msg);
    snprintf(spec, sizeof spec, "cifar10:%s/nonexistent.tar.gz:train", tmpdir);
    CHECK(ss_dataset_open(spec, &e) == NULL);
    CHECK_MSG(strstr(e.msg, "nonexistent.tar.gz"), "%s", e.msg);
    for (int i = 0; i < nm; i++) free(m[i].buf);

    /* CIFAR-100: fine and coarse labels. */
    nm = 0;
    snprintf(m[nm].name, sizeof m[nm].name, "cifar-100-binary/train.bin");
    m[nm].len = 5 * 3074;
    m[nm].buf = malloc(m[nm].len);
    for (int j = 0; j < 5; j++) cifar_record(m[nm].buf + j * 3074, 1, j, 90 + j, j);
    nm++;
    char names[2000] = "";
    for (int k = 0; k < 100; k++) sprintf(names + strlen(names), "fine%d\n", k);
    snprintf(m[nm].name, sizeof m[nm].name, "cifar-100-binary/fine_label_names.txt");
    m[nm].buf = (uint8_t *)strdup(names);
    m[nm].len = strlen(names);
    nm++;
    put_archive("cifar-100-binary.tar.gz", 1, m, nm);
    snprintf(p, sizeof p, "%s/cifar-100-binary.tar.gz", tmpdir);
    ss_dataset *f = open_ok("cifar100:%s:train", p);
    ss_dataset *cc = open_ok("cifar100:%s:train,labels=coarse", p);
    if (f && cc) {
        CHECK(ss_dataset_nclasses(f) == 100 && ss_dataset_nclasses(cc) == 20);
        CHECK(ss_dataset_label(f, 2) == 92 && ss_dataset_label(cc, 2) == 2);
        CHECK(!strcmp(ss_dataset_class_name(f, 92), "fine92"));
        CHECK_MSG(strstr(ss_dataset_spec(cc), ",labels=coarse"), "%s", ss_dataset_spec(cc));
    }
    ss_dataset_close(f), ss_dataset_close(cc);
    for (int i = 0; i < nm; i++) free(m[i].buf);
}

static void put_idx_gz(const char *rel, const uint8_t *hdr, size_t hlen, const uint8_t *data, size_t n)
{
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    gzFile g = gzopen(p, "wb");
    gzwrite(g, hdr, (unsigned)hlen);
    gzwrite(g, data, (unsigned)n);
    gzclose(g);
}

static void test_idx(void)
{
    ss_err e;
    uint8_t ih[16] = {0, 0, 8, 3, 0, 0, 0, 20, 0, 0, 0, 5, 0, 0, 0, 4};
    uint8_t lh[8] = {0, 0, 8, 1, 0, 0, 0, 20};
    uint8_t img[400], lab[20];
    for (int i = 0; i < 400; i++) img[i] = (uint8_t)(i * 3);
    for (int i = 0; i < 20; i++) lab[i] = (uint8_t)(i % 4);
    put_idx_gz("i.idx.gz", ih, 16, img, 400);
    put_idx_gz("l.idx.gz", lh, 8, lab, 20);
    put_idx_gz("short.idx.gz", ih, 16, img, 399);
    char p[8192];
    snprintf(p, sizeof p, "%s/i.idx.gz:%s/l.idx.gz", tmpdir, tmpdir);
    ss_dataset *d = open_ok("idx:%s", p);
    if (d) {
        CHECK(ss_dataset_len(d) == 20 && ss_dataset_nclasses(d) == 4);
        ss_image im;
        int label;
        CHECK(ss_dataset_get(d, 3, &im, &label, &e) == 0 && label == 3);
        CHECK(im.h == 5 && im.w == 4 && im.c == 1 && im.pix[0] == (uint8_t)(60 * 3) && im.pix[19] == (uint8_t)(79 * 3));
        ss_image_free(&im);
    }
    ss_dataset_close(d);
    char spec[8300];
    snprintf(spec, sizeof spec, "idx:%s/short.idx.gz:%s/l.idx.gz", tmpdir, tmpdir);
    CHECK(ss_dataset_open(spec, &e) == NULL);
    CHECK_MSG(strstr(e.msg, "short.idx.gz") && strstr(e.msg, "truncated"), "%s", e.msg);
}

static void test_corrupt(void)
{
    ss_err e;
    uint8_t *buf;
    size_t len;
    /* 6 good images in two classes, one truncated JPEG, one garbage PNG. */
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 3; j++) {
            char rel[256];
            class_jpeg(k, j, 0, 0, &buf, &len);
            snprintf(rel, sizeof rel, "bad/c%d/g%d.jpg", k, j);
            put_file(rel, buf, len);
            if (k == 0 && j == 0) put_file("bad/c0/truncated.jpg", buf, len / 2);
            free(buf);
        }
    put_file("bad/c1/garbage.png", "\x89PNG\r\n\x1a\nnot really a png at all", 32);
    char p[8192];
    snprintf(p, sizeof p, "%s/bad", tmpdir);
    ss_dataset *d = open_ok("folder:%s", p);
    if (!d) return;
    CHECK(ss_dataset_len(d) == 8);
    const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.25f, 0.25f, 0.25f};
    ss_transform *t = ss_transform_new("eval", 16, 16, 3, mean, std, &e);
    for (int skip = 0; skip < 2; skip++)
        for (int threads = 1; threads <= 2; threads++) {
            ss_loader_cfg cfg = {.batch = 3, .seed = 1, .shuffle = 1, .threads = threads, .skip_corrupt = skip};
            ss_loader *l = ss_loader_new(d, t, &cfg, 16, 16, 3, &e);
            CHECK_MSG(l != NULL, "%s", e.msg);
            if (!l) continue;
            ss_loader_start_epoch(l, 0, &e);
            ss_batch b;
            int rc;
            size_t got = 0;
            while ((rc = ss_loader_next(l, &b, &e)) == 1) got += (size_t)b.n;
            if (skip) {
                ss_err first;
                CHECK_MSG(rc == 0, "%s", e.msg);
                CHECK(got == 6);
                CHECK(ss_loader_skipped(l, &first) == 2);
                CHECK_MSG(strstr(first.msg, "/bad/c"), "%s", first.msg);
            } else {
                CHECK(rc == -1);
                CHECK_MSG((strstr(e.msg, "truncated.jpg") || strstr(e.msg, "garbage.png")) &&
                              (strstr(e.msg, "JPEG") || strstr(e.msg, "PNG")),
                          "%s", e.msg);
                CHECK(ss_loader_next(l, &b, &e) == 0);   /* the epoch is over */
            }
            ss_loader_free(l);
        }
    ss_transform_free(t);
    ss_dataset_close(d);
    /* Missing folder / unknown source. */
    snprintf(p, sizeof p, "folder:%s/nothing-here", tmpdir);
    CHECK(ss_dataset_open(p, &e) == NULL);
    CHECK_MSG(strstr(e.msg, "nothing-here: No such file"), "%s", e.msg);
    CHECK(ss_dataset_open("mnist:foo", &e) == NULL);
    CHECK_MSG(strstr(e.msg, "unknown source"), "%s", e.msg);
}

int main(void)
{
    const char *base = getenv("SSTA_BUILD");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_data_sources.XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/test_data_sources.XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    test_folders();
    test_cifar();
    test_idx();
    test_corrupt();
    int rc = check_summary("test_data_sources");
    if (!rc) {
        char cmd[8300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return rc;
}
