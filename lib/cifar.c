/* cifar.c — CIFAR-10/100 from the official binary tarballs (stub). */
#include "data_src.h"
int ss_src_cifar(ss_src *s, const char *tarball, int hundred, int test, int coarse, ss_err *e)
{
    return ss_fail(e, "%s: CIFAR is not implemented yet", tarball);
}
