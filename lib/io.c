/* io.c — output files (ss_afile) and whole-file reads (see io.h). */
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- pending */

/* Temporaries not yet committed or aborted, for ss_afile_abort_pending.
 * Lock-free slots so that a signal handler may read them; a process with
 * more open outputs than slots still works, the extra ones are just not
 * removed on a fatal exit. */
#define PENDING_SLOTS 64
static char *volatile g_pending[PENDING_SLOTS];

static void pending_add(char *tmp)
{
    for (int i = 0; i < PENDING_SLOTS; i++)
        if (__sync_bool_compare_and_swap(&g_pending[i], NULL, tmp)) return;
}

static void pending_del(char *tmp)
{
    if (!tmp) return;
    for (int i = 0; i < PENDING_SLOTS; i++)
        if (__sync_bool_compare_and_swap(&g_pending[i], tmp, NULL)) return;
}

void ss_afile_abort_pending(void)
{
    for (int i = 0; i < PENDING_SLOTS; i++) {
        char *p = g_pending[i];
        if (p) unlink(p);
    }
}

/* ---------------------------------------------------------------- helpers */

/* dirlen: length of the directory part of p including its '/', 0 if none. */
static size_t dir_len(const char *p)
{
    const char *slash = strrchr(p, '/');
    return slash ? (size_t)(slash - p) + 1 : 0;
}

int ss_sync_parent_dir(const char *path, ss_err *e)
{
    size_t dl = dir_len(path);
    char dir[PATH_MAX];
    if (dl == 0) snprintf(dir, sizeof dir, ".");
    else if (dl == 1) snprintf(dir, sizeof dir, "/");
    else if (dl >= sizeof dir) return ss_fail(e, "%s: path too long", path);
    else memcpy(dir, path, dl - 1), dir[dl - 1] = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ss_fail(e, "%s: cannot open its directory to sync it: %s", path, strerror(errno));
    int rc = 0;
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        rc = ss_fail(e, "%s: cannot sync its directory: %s", path, strerror(errno));
    close(fd);
    return rc;
}

/* Removes ".<base>.tmp.<pid>[.<n>]" beside dest whose process is gone. */
static void remove_stale(const char *dest)
{
    size_t dl = dir_len(dest);
    const char *base = dest + dl;
    char dir[PATH_MAX], pre[NAME_MAX + 8];
    if (dl >= sizeof dir) return;
    if (dl == 0) snprintf(dir, sizeof dir, ".");
    else memcpy(dir, dest, dl), dir[dl] = 0;
    int pl = snprintf(pre, sizeof pre, ".%s.tmp.", base);
    if (pl < 0 || (size_t)pl >= sizeof pre) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, pre, (size_t)pl)) continue;
        char *end;
        errno = 0;
        long pid = strtol(de->d_name + pl, &end, 10);
        if (errno || end == de->d_name + pl || pid <= 0 || pid == (long)getpid()) continue;
        if (*end == '.') {
            char *e2;
            strtol(end + 1, &e2, 10);
            if (e2 == end + 1) continue;
            end = e2;
        }
        if (*end) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;   /* alive, or not ours to judge */
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s%s", dl ? dir : "", de->d_name) >= (int)sizeof p) continue;
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) unlink(p);
    }
    closedir(d);
}

static void afile_free(ss_afile *a)
{
    free(a->path);
    free(a->dest);
    free(a->tmp);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------- ss_afile */

int ss_afile_open(ss_afile *a, const char *path, ss_err *e)
{
    memset(a, 0, sizeof *a);
    if (!path || strcmp(path, "-") == 0) {
        a->f = stdout;
        a->path = strdup("-");
        if (!a->path) return ss_fail(e, "out of memory");
        return 0;
    }
    if (!*path || !path[dir_len(path)]) return ss_fail(e, "%s: is a directory name, not a file name", path);
    if (!(a->path = strdup(path))) return ss_fail(e, "out of memory");

    /* What is there now decides how we write. */
    struct stat st;
    int exists = lstat(path, &st) == 0, direct = 0, creat_through = 0;
    if (!exists && errno != ENOENT) {
        ss_fail(e, "%s: %s", path, strerror(errno));
        afile_free(a);
        return -1;
    }
    if (exists && S_ISLNK(st.st_mode)) {
        a->dest = realpath(path, NULL);
        if (!a->dest) {
            if (errno != ENOENT) {
                ss_fail(e, "%s: %s", path, strerror(errno));
                afile_free(a);
                return -1;
            }
            direct = creat_through = 1;   /* dangling: write through, creating the target */
        } else if (stat(a->dest, &st) != 0) {
            ss_fail(e, "%s: %s", path, strerror(errno));
            afile_free(a);
            return -1;
        }
    }
    if (exists && !creat_through) {
        if (S_ISDIR(st.st_mode)) {
            ss_fail(e, "%s: is a directory", path);
            afile_free(a);
            return -1;
        }
        if (!S_ISREG(st.st_mode)) direct = 1;
    }
    if (direct) {
        int fd = open(path, O_WRONLY | O_CLOEXEC | (creat_through ? O_CREAT | O_TRUNC : 0), 0666);
        if (fd < 0 || !(a->f = fdopen(fd, "wb"))) {
            ss_fail(e, "%s: %s", path, strerror(errno));
            if (fd >= 0) close(fd);
            afile_free(a);
            return -1;
        }
        free(a->dest);
        a->dest = NULL;
        a->direct = 1;
        return 0;
    }
    if (!a->dest && !(a->dest = strdup(path))) {
        afile_free(a);
        return ss_fail(e, "out of memory");
    }
    remove_stale(a->dest);
    size_t dl = dir_len(a->dest), n = strlen(a->dest) + 64;
    const char *base = a->dest + dl;
    if (!(a->tmp = malloc(n))) {
        afile_free(a);
        return ss_fail(e, "out of memory");
    }
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        snprintf(a->tmp, n, "%.*s.%s.tmp.%ld%s%.0d", (int)dl, a->dest, base, (long)getpid(),
                 attempt ? "." : "", attempt);
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        ss_fail(e, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
        afile_free(a);
        return -1;
    }
    if (exists) fchmod(fd, st.st_mode & 07777);   /* keep the file's permissions */
    if (!(a->f = fdopen(fd, "wb"))) {
        ss_fail(e, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(a->tmp);
        afile_free(a);
        return -1;
    }
    pending_add(a->tmp);
    return 0;
}

int ss_afile_commit(ss_afile *a, ss_err *e)
{
    int rc = 0, err = 0;
    if (!a->tmp && !a->direct) {   /* standard output */
        if (fflush(a->f) != 0 || ferror(a->f)) rc = ss_fail(e, "standard output: write error: %s", strerror(errno));
        afile_free(a);
        return rc;
    }
    if (fflush(a->f) != 0 || ferror(a->f)) err = errno ? errno : EIO;
    if (a->direct) {
        /* a device or FIFO may not support fsync; a regular file reached
         * through a dangling link does */
        if (!err && fsync(fileno(a->f)) != 0 && errno != EINVAL && errno != EROFS) err = errno;
        if (fclose(a->f) != 0 && !err) err = errno ? errno : EIO;
        if (err) rc = ss_fail(e, "%s: write error: %s", a->path, strerror(err));
        afile_free(a);
        return rc;
    }
    if (!err && fsync(fileno(a->f)) != 0) err = errno;
    if (fclose(a->f) != 0 && !err) err = errno ? errno : EIO;
    if (!err && rename(a->tmp, a->dest) != 0) err = errno;
    pending_del(a->tmp);
    if (err) {
        unlink(a->tmp);
        rc = ss_fail(e, "%s: write error: %s", a->path, strerror(err));
    } else {
        rc = ss_sync_parent_dir(a->dest, e);
    }
    afile_free(a);
    return rc;
}

void ss_afile_abort(ss_afile *a)
{
    if (a->tmp) {
        if (a->f) fclose(a->f);
        pending_del(a->tmp);
        unlink(a->tmp);
    } else if (a->direct) {
        if (a->f) fclose(a->f);
    } else if (a->f) {
        fflush(a->f);
    }
    afile_free(a);
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
