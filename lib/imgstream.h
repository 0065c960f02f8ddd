/* imgstream.h — image streams, the writer side: the header and the data
 * records that the "stream:" source (imgstream.c, dataset.h) reads back.
 * Both functions return 0/-1 and fill *e.
 *
 * Not here: reading image streams (the "stream:" source of dataset.h),
 * writing records (stream.h).
 */
#ifndef SS_IMGSTREAM_H
#define SS_IMGSTREAM_H

#include "dataset.h"
#include "err.h"
#include "image.h"

/* Image streams (source "stream:"): the writer side. The header record is
 * a stream header of kind "images" carrying the class names of d
 * ("ssta.classes", '\n'-separated) and its spec ("ssta.data"); d may be
 * NULL. Each data record holds "image" U8 [H,W,C] and "label" I64 []. */
typedef struct ss_swriter ss_swriter;
int ss_imgstream_header(ss_record *r, const char *producer, const ss_dataset *d, ss_err *e);
int ss_imgstream_put(ss_swriter *w, const ss_image *im, int label, ss_err *e);

#endif
