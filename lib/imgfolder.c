/* imgfolder.c — ImageNet-style image sets: one subfolder per class holding
 * JPEG or PNG files, given as a directory or as an archive read in place
 * (.tar, .tar.gz/.tgz, .tar.zst, .zip, anything libarchive reads).
 *
 * Class order is the byte-wise sorted list of class folder names (the same
 * as Python's sorted() and torchvision's ImageFolder), unless a classes
 * file (one name a line) fixes it: then every class folder must be listed.
 * Files are found recursively below each class folder, by extension
 * (.jpg .jpeg .png, any case), and sorted by path: sample order is
 * (class, path).
 *
 * Directory: files are read and decoded on demand, from any thread.
 * Uncompressed tar (ustar/pax/GNU, detected by its header, not its name):
 * indexed at open by walking the 512-byte headers, members read on demand
 * with pread, nothing held in memory: large archives work in place.
 * Other archives (compressed tar, zip, ...; libarchive): read once at open;
 * the encoded bytes of every image member are kept in memory (a compressed
 * archive has no random access) and decoded on demand. Memory is then the
 * size of the encoded images; use a plain .tar or a directory for sets
 * larger than memory. In an archive, a leading folder shared by every
 * member (e.g. "train/") is not a class. A class folder whose name holds a
 * line break is refused at open (class lists are one name a line).
 */
#include "data_src.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "codec.h"

#define FOLDER_MAX_FILE ((size_t)256 << 20)

typedef struct item {
    char *path;      /* file path, or member name */
    char *cls;       /* class folder name (points into a names pool) */
    size_t off, len; /* archive: bytes in blob, or file offset in a plain tar */
} item;

typedef struct folder {
    char *root;
    int archive;
    item *items;
    size_t n, cap;
    uint8_t *blob;   /* archive members back to back */
    size_t blob_len, blob_cap;
    int fd;          /* plain tar read in place, or -1 */
} folder;

static int is_image_name(const char *p)
{
    const char *dot = strrchr(p, '.');
    if (!dot) return 0;
    return !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png");
}

static int push_item(folder *f, const char *path, const char *cls, ss_err *e)
{
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 1024;
        item *ni = realloc(f->items, nc * sizeof *ni);
        if (!ni) return ss_fail(e, "out of memory");
        f->items = ni, f->cap = nc;
    }
    item *it = &f->items[f->n];
    memset(it, 0, sizeof *it);
    it->path = strdup(path);
    it->cls = strdup(cls);
    if (!it->path || !it->cls) {
        free(it->path), free(it->cls);
        return ss_fail(e, "out of memory");
    }
    f->n++;
    return 0;
}

/* Recursively lists image files below dir into f, all with class cls. */
static int walk(folder *f, const char *dir, const char *cls, int depth, ss_err *e)
{
    if (depth > 32) return ss_fail(e, "%s: folders nested too deep", dir);
    DIR *dh = opendir(dir);
    if (!dh) return ss_fail(e, "%s: %s", dir, strerror(errno));
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(dh))) {
        if (de->d_name[0] == '.') continue;
        size_t pl = strlen(dir) + strlen(de->d_name) + 2;
        char *p = malloc(pl);
        if (!p) {
            rc = ss_fail(e, "out of memory");
            break;
        }
        snprintf(p, pl, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) != 0) {
            rc = ss_fail(e, "%s: %s", p, strerror(errno));
            free(p);
            break;
        }
        if (S_ISDIR(st.st_mode)) rc = walk(f, p, cls, depth + 1, e);
        else if (S_ISREG(st.st_mode) && is_image_name(p)) rc = push_item(f, p, cls, e);
        free(p);
        if (rc) break;
    }
    closedir(dh);
    return rc;
}

static int list_dir(folder *f, const char *root, ss_err *e)
{
    DIR *dh = opendir(root);
    if (!dh) return ss_fail(e, "%s: %s", root, strerror(errno));
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(dh))) {
        if (de->d_name[0] == '.') continue;
        size_t pl = strlen(root) + strlen(de->d_name) + 2;
        char *p = malloc(pl);
        if (!p) {
            rc = ss_fail(e, "out of memory");
            break;
        }
        snprintf(p, pl, "%s/%s", root, de->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) rc = walk(f, p, de->d_name, 0, e);
        free(p);
        if (rc) break;
    }
    closedir(dh);
    return rc;
}

static int assign_archive_classes(folder *f, ss_err *e);

/* ---- plain tar, indexed in place ---- */

static uint64_t tar_num(const uint8_t *p, int n, int *ok)
{
    if (p[0] & 0x80) {   /* GNU base-256 */
        uint64_t v = p[0] & 0x7f;
        for (int i = 1; i < n; i++) {
            if (v >> 55) return *ok = 0, 0;
            v = v << 8 | p[i];
        }
        return v;
    }
    uint64_t v = 0;
    int i = 0;
    while (i < n && (p[i] == ' ' || p[i] == 0)) i++;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
        if (v >> 60) return *ok = 0, 0;
        v = v * 8 + (uint64_t)(p[i] - '0');
    }
    for (; i < n; i++)
        if (p[i] != ' ' && p[i] != 0) *ok = 0;
    return v;
}

static int tar_header_ok(const uint8_t *h)
{
    int ok = 1;
    uint64_t want = tar_num(h + 148, 8, &ok), sum = 0;
    for (int i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return ok && sum == want;
}

static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Returns 1 if path is an uncompressed tar and was indexed, 0 if it is not a
 * plain tar (use libarchive), -1 on error. */
static int index_plain_tar(folder *f, const char *path, ss_err *e)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ss_fail(e, "%s: %s", path, strerror(errno));
    struct stat st;
    uint8_t h[512];
    if (fstat(fd, &st) || st.st_size < 512 || pread_full(fd, h, 512, 0) || memcmp(h + 257, "ustar", 5) ||
        !tar_header_ok(h)) {
        close(fd);
        return 0;
    }
    uint64_t size = (uint64_t)st.st_size, pos = 0;
    char *longname = NULL;
    int rc = 0;
    while (pos + 512 <= size) {
        if (pread_full(fd, h, 512, pos)) {
            rc = ss_fail(e, "%s: read error at byte %llu", path, (unsigned long long)pos);
            break;
        }
        int zero = 1;
        for (int i = 0; i < 512 && zero; i++) zero = h[i] == 0;
        if (zero) break;   /* end-of-archive marker */
        int ok = 1;
        uint64_t len = tar_num(h + 124, 12, &ok);
        if (!tar_header_ok(h) || !ok || len > size || pos + 512 + len > size) {
            rc = ss_fail(e, "%s: corrupt or truncated tar header at byte %llu", path, (unsigned long long)pos);
            break;
        }
        uint64_t data = pos + 512;
        char type = (char)h[156];
        if (type == 'x' || type == 'L') {
            /* pax extended header (path=...) or GNU long name for the next member. */
            if (len > (1u << 20)) {
                rc = ss_fail(e, "%s: oversized extended header at byte %llu", path, (unsigned long long)pos);
                break;
            }
            char *buf = malloc((size_t)len + 1);
            if (!buf || pread_full(fd, buf, (size_t)len, data)) {
                free(buf);
                rc = ss_fail(e, "%s: cannot read extended header at byte %llu", path, (unsigned long long)pos);
                break;
            }
            buf[len] = 0;
            if (type == 'L') {
                free(longname);
                longname = buf;
            } else {
                for (char *p = buf; p < buf + len;) {
                    char *sp = strchr(p, ' ');
                    long rl = strtol(p, NULL, 10);
                    if (!sp || rl <= 0 || p + rl > buf + len) break;
                    if (!strncmp(sp + 1, "path=", 5)) {
                        free(longname);
                        longname = strndup(sp + 6, (size_t)(p + rl - 1 - (sp + 6)));
                    }
                    p += rl;
                }
                free(buf);
            }
        } else if (type == '0' || type == 0 || type == '7') {
            char name[4096];
            if (longname) snprintf(name, sizeof name, "%s", longname);
            else {
                char nm[101], pre[156];
                memcpy(nm, h, 100), nm[100] = 0;
                memcpy(pre, h + 345, 155), pre[155] = 0;
                if (pre[0]) snprintf(name, sizeof name, "%s/%s", pre, nm);
                else snprintf(name, sizeof name, "%s", nm);
            }
            free(longname);
            longname = NULL;
            if (is_image_name(name)) {
                if (len > FOLDER_MAX_FILE) {
                    rc = ss_fail(e, "%s: %s: member size %llu unsupported", path, name, (unsigned long long)len);
                    break;
                }
                if (push_item(f, name, "", e)) {
                    rc = -1;
                    break;
                }
                f->items[f->n - 1].off = (size_t)data;
                f->items[f->n - 1].len = (size_t)len;
            }
        } else {
            free(longname);   /* directories, links, globals: skipped */
            longname = NULL;
        }
        pos = data + (len + 511) / 512 * 512;
    }
    free(longname);
    if (rc) {
        close(fd);
        return -1;
    }
    f->fd = fd;
    return 1;
}

static int read_archive(folder *f, const char *path, ss_err *e)
{
    int plain = index_plain_tar(f, path, e);
    if (plain < 0) return -1;
    if (plain) return assign_archive_classes(f, e);
    struct archive *a = archive_read_new();
    if (!a) return ss_fail(e, "out of memory");
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        ss_fail(e, "%s: %s", path, archive_error_string(a));
        archive_read_free(a);
        return -1;
    }
    struct archive_entry *ent;
    int r, rc = 0;
    while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        const char *name = archive_entry_pathname(ent);
        if (!name || archive_entry_filetype(ent) != AE_IFREG || !is_image_name(name)) continue;
        la_int64_t sz = archive_entry_size(ent);
        if (sz < 0 || (size_t)sz > FOLDER_MAX_FILE) {
            rc = ss_fail(e, "%s: %s: member size %lld unsupported", path, name, (long long)sz);
            break;
        }
        if (push_item(f, name, "", e)) {
            rc = -1;
            break;
        }
        size_t need = f->blob_len + (size_t)sz;
        if (need > f->blob_cap) {
            size_t nc = f->blob_cap ? f->blob_cap : (1 << 20);
            while (nc < need) nc *= 2;
            uint8_t *nb = realloc(f->blob, nc);
            if (!nb) {
                rc = ss_fail(e, "%s: out of memory holding %zu bytes of images (unpack it to a directory)", path, need);
                break;
            }
            f->blob = nb, f->blob_cap = nc;
        }
        la_ssize_t got = archive_read_data(a, f->blob + f->blob_len, (size_t)sz);
        if (got < 0 || got != (la_ssize_t)sz) {
            rc = ss_fail(e, "%s: %s: %s", path, name, got < 0 ? archive_error_string(a) : "truncated member");
            break;
        }
        item *it = &f->items[f->n - 1];
        it->off = f->blob_len, it->len = (size_t)sz;
        f->blob_len += (size_t)sz;
    }
    if (!rc && r != ARCHIVE_EOF) rc = ss_fail(e, "%s: %s", path, archive_error_string(a));
    archive_read_free(a);
    if (rc) return -1;
    return assign_archive_classes(f, e);
}

/* Class = first path component after a leading folder common to all
 * members; members at the root are dropped. */
static int assign_archive_classes(folder *f, ss_err *e)
{
    size_t strip = 0;
    if (f->n) {
        const char *p0 = f->items[0].path;
        while (*p0 == '.' && p0[1] == '/') p0 += 2;
        const char *sl = strchr(p0, '/');
        if (sl) {
            size_t len = (size_t)(sl - p0) + 1;
            int common = 1;
            for (size_t i = 0; i < f->n && common; i++) {
                const char *p = f->items[i].path;
                while (*p == '.' && p[1] == '/') p += 2;
                /* Common only if every member has that prefix and at least
                 * one more folder below it. */
                common = !strncmp(p, p0, len) && strchr(p + len, '/');
            }
            if (common) strip = len;
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < f->n; i++) {
        item *it = &f->items[i];
        const char *p = it->path;
        while (*p == '.' && p[1] == '/') p += 2;
        p += strip;
        const char *sl = strchr(p, '/');
        if (!sl) {   /* a file at the root: not in any class */
            free(it->path), free(it->cls);
            continue;
        }
        free(it->cls);
        it->cls = strndup(p, (size_t)(sl - p));
        if (!it->cls) return ss_fail(e, "out of memory");
        f->items[k++] = *it;
    }
    f->n = k;
    return 0;
}

static int cmp_item(const void *a, const void *b)
{
    const item *x = a, *y = b;
    int c = strcmp(x->cls, y->cls);
    return c ? c : strcmp(x->path, y->path);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void folder_close(ss_src *s)
{
    folder *f = s->impl;
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free(f->items[i].path), free(f->items[i].cls);
    free(f->items);
    free(f->blob);
    if (f->fd >= 0) close(f->fd);
    free(f->root);
    free(f);
    s->impl = NULL;
}

static void folder_item_name(const ss_src *s, size_t i, char *buf, size_t n)
{
    const folder *f = s->impl;
    if (f->archive) snprintf(buf, n, "%s: %s", f->root, f->items[i].path);
    else snprintf(buf, n, "%s", f->items[i].path);
}

static int read_file(const char *path, uint8_t **buf, size_t *len, ss_err *e)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ss_fail(e, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 0 || (size_t)st.st_size > FOLDER_MAX_FILE) {
        close(fd);
        return ss_fail(e, "%s: unreadable or larger than %zu bytes", path, FOLDER_MAX_FILE);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        close(fd);
        return ss_fail(e, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int er = errno;
            free(b);
            close(fd);
            return ss_fail(e, "%s: %s", path, r < 0 ? strerror(er) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    *buf = b, *len = n;
    return 0;
}

static int folder_get(ss_src *s, size_t i, int min_side, int want_c, ss_image *im, ss_err *e)
{
    folder *f = s->impl;
    const item *it = &f->items[i];
    if (f->archive && f->fd >= 0) {
        uint8_t *buf = malloc(it->len ? it->len : 1);
        if (!buf) return ss_fail(e, "%s: %s: out of memory", f->root, it->path);
        if (pread_full(f->fd, buf, it->len, it->off)) {
            free(buf);
            return ss_fail(e, "%s: %s: read error", f->root, it->path);
        }
        int rc = ss_image_decode(buf, it->len, min_side, want_c, im, e);
        free(buf);
        if (rc) return ss_prefix(e, "%s: %s", f->root, it->path);
        return 0;
    }
    if (f->archive) {
        if (ss_image_decode(f->blob + it->off, it->len, min_side, want_c, im, e))
            return ss_prefix(e, "%s: %s", f->root, it->path);
        return 0;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (read_file(it->path, &buf, &len, e)) return -1;
    int rc = ss_image_decode(buf, len, min_side, want_c, im, e);
    free(buf);
    if (rc) return ss_prefix(e, "%s", it->path);
    return 0;
}

/* Reads a classes file: one name a line, no empty lines, no duplicates. */
static int read_classes(const char *path, char ***names, int *n, ss_err *e)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return ss_fail(e, "%s: %s", path, strerror(errno));
    char line[1024];
    char **v = NULL;
    int k = 0, cap = 0, rc = 0;
    while (fgets(line, sizeof line, fp)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = 0;
        if (!l) {
            rc = ss_fail(e, "%s: line %d: empty class name", path, k + 1);
            break;
        }
        if (k == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(v, sizeof(char *) * (size_t)cap);
            if (!nv) {
                rc = ss_fail(e, "out of memory");
                break;
            }
            v = nv;
        }
        if (!(v[k] = strdup(line))) {
            rc = ss_fail(e, "out of memory");
            break;
        }
        for (int j = 0; j < k && !rc; j++)
            if (!strcmp(v[j], line)) rc = ss_fail(e, "%s: line %d: class '%s' listed twice", path, k + 1, line);
        k++;
        if (rc) break;
    }
    fclose(fp);
    if (!rc && k == 0) rc = ss_fail(e, "%s: no class names", path);
    if (rc) {
        for (int j = 0; j < k; j++) free(v[j]);
        free(v);
        return -1;
    }
    *names = v, *n = k;
    return 0;
}

int ss_src_folder(ss_src *s, const char *path, const char *classes_file, ss_err *e)
{
    struct stat st;
    if (stat(path, &st) != 0) return ss_fail(e, "folder: %s: %s", path, strerror(errno));
    folder *f = calloc(1, sizeof *f);
    if (!f || !(f->root = strdup(path))) {
        free(f);
        return ss_fail(e, "out of memory");
    }
    f->fd = -1;
    s->impl = f;
    s->close = folder_close;
    s->get = folder_get;
    s->item_name = folder_item_name;
    f->archive = !S_ISDIR(st.st_mode);
    if (f->archive ? read_archive(f, path, e) : list_dir(f, path, e)) goto fail;
    if (f->n == 0) {
        ss_fail(e, "folder: %s: no JPEG or PNG images in class subfolders", path);
        goto fail;
    }
    qsort(f->items, f->n, sizeof *f->items, cmp_item);
    /* Class names travel as lines (classes files, ssta.classes, `ssta-data
     * classes`): a line break inside one would shift every later label. */
    for (size_t i = 0; i < f->n; i++)
        if (strpbrk(f->items[i].cls, "\n\r")) {
            char esc[512];
            size_t k = 0;
            for (const char *p = f->items[i].cls; *p && k + 3 < sizeof esc; p++) {
                if (*p == '\n' || *p == '\r') esc[k++] = '\\', esc[k++] = *p == '\n' ? 'n' : 'r';
                else esc[k++] = *p;
            }
            esc[k] = 0;
            ss_fail(e, "folder: %s: class folder '%s' has a line break in its name (class lists are one name a line); rename it",
                    path, esc);
            goto fail;
        }
    /* Classes: sorted distinct folder names, or the classes file. */
    char **names = NULL;
    int nc = 0;
    if (classes_file) {
        if (read_classes(classes_file, &names, &nc, e)) goto fail;
    } else {
        names = malloc(sizeof(char *) * f->n);
        if (!names) {
            ss_fail(e, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < f->n; i++)
            if (!nc || strcmp(names[nc - 1], f->items[i].cls)) names[nc++] = f->items[i].cls;
        for (int k = 0; k < nc; k++) names[k] = strdup(names[k]);
    }
    s->class_names = names;
    s->nclasses = nc;
    for (int k = 0; k < nc; k++)
        if (!names[k]) {
            ss_fail(e, "out of memory");
            goto fail;
        }
    /* Labels: binary search in a sorted copy of the names. */
    char **sorted = malloc(sizeof(char *) * (size_t)nc);
    int *rank = malloc(sizeof(int) * (size_t)nc);
    s->labels = malloc(sizeof(int32_t) * f->n);
    if (!sorted || !rank || !s->labels) {
        free(sorted), free(rank);
        ss_fail(e, "out of memory");
        goto fail;
    }
    memcpy(sorted, names, sizeof(char *) * (size_t)nc);
    qsort(sorted, (size_t)nc, sizeof(char *), cmp_str);
    for (int k = 0; k < nc; k++)
        for (int j = 0; j < nc; j++)
            if (sorted[k] == names[j]) rank[k] = j;
    for (size_t i = 0; i < f->n; i++) {
        const char *key = f->items[i].cls;
        char **hit = bsearch(&key, sorted, (size_t)nc, sizeof(char *), cmp_str);
        if (!hit) {
            ss_fail(e, "folder: %s: class folder '%s' is not in %s", path, key, classes_file);
            free(sorted), free(rank);
            goto fail;
        }
        s->labels[i] = rank[hit - sorted];
    }
    free(sorted), free(rank);
    s->n = f->n;
    s->h = s->w = s->c = 0;
    const float m[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    memcpy(s->mean, m, sizeof m), memcpy(s->std, sd, sizeof sd);
    return 0;
fail:
    ss_src_free(s);
    return -1;
}
