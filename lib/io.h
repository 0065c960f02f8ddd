/* io.h — small file helpers shared by the library: output files that never
 * look complete before they are, and whole-file reads with clear errors.
 *
 * Output (ss_afile), by what the path names:
 *   "-"                   standard output; commit flushes and checks for a
 *                         write error.
 *   a new path, or an     written to "<dir>/.<base>.tmp.<pid>" beside it;
 *   existing regular file commit flushes, fsyncs, renames it over the path
 *                         and fsyncs the directory (so the new name survives
 *                         a power loss); abort removes it. An existing
 *                         file's permission bits are kept.
 *   a symbolic link       followed: the rules apply to the file it names
 *                         (a link to a regular file: the temporary goes
 *                         beside that file and is renamed onto it, so the
 *                         link stays a link); a dangling link is written
 *                         through, creating its target.
 *   a device, FIFO or     written through, in place (as `sort -o` and `cp`
 *   other non-regular     do): never replaced by a regular file. There is
 *                         nothing to undo, so abort only closes it.
 * A directory is refused.
 *
 * Stale temporaries: a process killed before its commit (SIGKILL, power
 * loss) leaves its temporary behind. ss_afile_open removes the temporaries
 * of the same output whose writer process no longer exists (the pid in the
 * name; a live pid is left alone).
 *
 * Pending temporaries are also listed process-wide, so that a tool's exit
 * path or signal handler can remove them all with ss_afile_abort_pending().
 */
#ifndef SS_IO_H
#define SS_IO_H

#include <stdio.h>
#include <stdint.h>

#include "err.h"

typedef struct ss_afile {
    FILE *f;
    char *path;   /* the name given (used in messages) */
    char *dest;   /* rename target: path, or the file a symbolic link names */
    char *tmp;    /* temporary name; NULL for stdout and in-place writes */
    int direct;   /* 1: written in place (device, FIFO, dangling link) */
} ss_afile;

int ss_afile_open(ss_afile *a, const char *path, ss_err *e);
int ss_afile_commit(ss_afile *a, ss_err *e);
void ss_afile_abort(ss_afile *a);

/* Unlinks the temporary of every ss_afile of this process that is neither
 * committed nor aborted. Async-signal-safe (only unlink(2)); the ss_afile
 * structs stay as they are, so call it only on the way out (exit paths,
 * fatal-signal handlers). */
void ss_afile_abort_pending(void);

/* Fsyncs the directory that holds `path` (after a rename into it), so the
 * new name survives a power loss. Filesystems that cannot sync a directory
 * (EINVAL) count as success. */
int ss_sync_parent_dir(const char *path, ss_err *e);

/* Reads a whole file (or "-" = stdin) into a malloc'd buffer; refuses files
 * larger than max_bytes. */
int ss_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len, ss_err *e);

#endif
