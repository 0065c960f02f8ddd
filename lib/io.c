/* io.c — atomic output files and whole-file reads (see io.h). */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ss_afile_open(ss_afile *a, const char *path, ss_err *e)
{
    memset(a, 0, sizeof *a);
    if (!path || strcmp(path, "-") == 0) {
        a->f = stdout;
        a->path = strdup("-");
        if (!a->path) return ss_fail(e, "out of memory");
        return 0;
    }
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = slash ? slash + 1 : path;
    if (!*base) return ss_fail(e, "%s: is a directory name, not a file name", path);
    size_t n = strlen(path) + 64;
    a->path = strdup(path);
    a->tmp = malloc(n);
    if (!a->path || !a->tmp) {
        free(a->path);
        free(a->tmp);
        return ss_fail(e, "out of memory");
    }
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        snprintf(a->tmp, n, "%.*s.%s.tmp.%ld%s%.0d", (int)dirlen, path, base, (long)getpid(),
                 attempt ? "." : "", attempt);
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        ss_fail(e, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
        free(a->path);
        free(a->tmp);
        memset(a, 0, sizeof *a);
        return -1;
    }
    if (!(a->f = fdopen(fd, "wb"))) {
        ss_fail(e, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(a->tmp);
        free(a->path);
        free(a->tmp);
        memset(a, 0, sizeof *a);
        return -1;
    }
    return 0;
}

int ss_afile_commit(ss_afile *a, ss_err *e)
{
    int rc = 0;
    if (!a->tmp) {
        if (fflush(a->f) != 0 || ferror(a->f)) rc = ss_fail(e, "standard output: write error: %s", strerror(errno));
        free(a->path);
        memset(a, 0, sizeof *a);
        return rc;
    }
    int err = 0;
    if (fflush(a->f) != 0 || ferror(a->f)) err = errno ? errno : EIO;
    if (!err && fsync(fileno(a->f)) != 0) err = errno;
    if (fclose(a->f) != 0 && !err) err = errno ? errno : EIO;
    if (!err && rename(a->tmp, a->path) != 0) err = errno;
    if (err) {
        unlink(a->tmp);
        rc = ss_fail(e, "%s: write error: %s", a->path, strerror(err));
    }
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
    return rc;
}

void ss_afile_abort(ss_afile *a)
{
    if (a->tmp) {
        if (a->f) fclose(a->f);
        unlink(a->tmp);
    } else if (a->f) {
        fflush(a->f);
    }
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
}

int ss_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len, ss_err *e)
{
    int is_stdin = !path || strcmp(path, "-") == 0;
    const char *name = is_stdin ? "-" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) return ss_fail(e, "%s: %s", name, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        if ((uint64_t)st.st_size > max_bytes) {
            if (!is_stdin) fclose(f);
            return ss_fail(e, "%s: file of %lld bytes exceeds the limit of %zu", name, (long long)st.st_size, max_bytes);
        }
        cap = (size_t)st.st_size + 1;
    }
    uint8_t *b = malloc(cap);
    if (!b) {
        if (!is_stdin) fclose(f);
        return ss_fail(e, "%s: out of memory", name);
    }
    for (;;) {
        if (n == cap) {
            size_t nc = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
            uint8_t *nb = nc > cap ? realloc(b, nc) : NULL;
            if (!nb) {
                free(b);
                if (!is_stdin) fclose(f);
                return ss_fail(e, "%s: out of memory", name);
            }
            b = nb;
            cap = nc;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (n > max_bytes) {
            free(b);
            if (!is_stdin) fclose(f);
            return ss_fail(e, "%s: exceeds the limit of %zu bytes", name, max_bytes);
        }
        if (got == 0) break;
    }
    int bad = ferror(f);
    if (!is_stdin) fclose(f);
    if (bad) {
        free(b);
        return ss_fail(e, "%s: read error", name);
    }
    *buf = b;
    *len = n;
    return 0;
}
