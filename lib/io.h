/* io.h — small file helpers shared by the library: atomic output files and
 * whole-file reads with clear errors.
 *
 * Atomic output: ss_afile_open creates "<dir>/.<base>.tmp.<pid>" beside the
 * target; ss_afile_commit flushes, fsyncs and renames it over the target;
 * ss_afile_abort removes it. "-" means standard output (commit only flushes).
 */
#ifndef SS_IO_H
#define SS_IO_H

#include <stdio.h>
#include <stdint.h>

#include "err.h"

typedef struct ss_afile {
    FILE *f;
    char *path;   /* final name */
    char *tmp;    /* temporary name, NULL for stdout */
} ss_afile;

int ss_afile_open(ss_afile *a, const char *path, ss_err *e);
int ss_afile_commit(ss_afile *a, ss_err *e);
void ss_afile_abort(ss_afile *a);

/* Reads a whole file (or "-" = stdin) into a malloc'd buffer; refuses files
 * larger than max_bytes. */
int ss_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len, ss_err *e);

#endif
