/* imgfolder.c — class-folder image sets (stub). */
#include "data_src.h"
int ss_src_folder(ss_src *s, const char *path, const char *classes_file, ss_err *e)
{
    return ss_fail(e, "%s: folders are not implemented yet", path);
}
