/* data.h — the whole data API in one include, for tools that use all of
 * it. Declares nothing itself; each part has its own header and contract:
 *   dataset.h    specs, ss_dataset_*, normalisation metadata (ss_norm_*),
 *                class lists, epoch order
 *   transform.h  transforms (presets), multi-crop, mixup/CutMix
 *   loader.h     ss_batch, ss_loader
 *   imgstream.h  the image-stream writer
 * Library files include the specific header they need, not this one.
 */
#ifndef SS_DATA_H
#define SS_DATA_H

#include "dataset.h"
#include "imgstream.h"
#include "loader.h"
#include "transform.h"

#endif
