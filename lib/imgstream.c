/* imgstream.c — image records in sts streams (stub). */
#include "data_src.h"
int ss_src_stream(ss_src *s, const char *path, ss_err *e)
{
    return ss_fail(e, "%s: image streams are not implemented yet", path);
}
