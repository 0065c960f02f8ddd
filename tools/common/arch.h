/* arch.h — the ViT architecture options of the training tools (distill-step,
 * dino-train): --preset NAME, and --img, --patch, --chans, --dim, --depth,
 * --heads, --mlp-ratio over it. A tool puts TOOL_ARCH_OPTIONS in its long
 * options, hands every option to tool_arch_option, and builds its ss_vit_cfg
 * in three steps with its own parts between them:
 *
 *     tool_arch_start(&o->arch, &cfg);      preset and --heads
 *     ... a checkpoint's shapes (--init), which keep the heads given ...
 *     tool_arch_override(&o->arch, &cfg);   the explicit options
 *     ... the tool's own fields (classes, head) ...
 *     tool_arch_finish(&cfg);               defaults, then checked
 *
 * Bad values and an incomplete or invalid architecture are usage errors
 * (exit 2). */
#ifndef SS_TOOL_ARCH_H
#define SS_TOOL_ARCH_H

#include <getopt.h>

#include "vit.h"

enum {
    TOOL_O_PRESET = 0x1000, TOOL_O_IMG, TOOL_O_PATCH, TOOL_O_CHANS, TOOL_O_DIM, TOOL_O_DEPTH,
    TOOL_O_HEADS, TOOL_O_MLP
};

#define TOOL_ARCH_OPTIONS                                                                     \
    {"preset", 1, 0, TOOL_O_PRESET}, {"img", 1, 0, TOOL_O_IMG}, {"patch", 1, 0, TOOL_O_PATCH}, \
        {"chans", 1, 0, TOOL_O_CHANS}, {"dim", 1, 0, TOOL_O_DIM}, {"depth", 1, 0, TOOL_O_DEPTH}, \
        {"heads", 1, 0, TOOL_O_HEADS}, {"mlp-ratio", 1, 0, TOOL_O_MLP}

/* What the options gave; 0 (NULL) = not given. */
typedef struct tool_arch {
    const char *preset;
    int img, patch, chans, dim, depth, heads;
    float mlp_ratio;
} tool_arch;

/* If c (tool_getopt's return) is one of TOOL_ARCH_OPTIONS, stores its value
 * and returns 1; otherwise returns 0. */
int tool_arch_option(tool_arch *a, int c, const char *arg);

/* c zeroed, then the preset's architecture, then --heads (a timm file read
 * next has no head count in its shapes and keeps this one). */
void tool_arch_start(const tool_arch *a, ss_vit_cfg *c);

/* The explicit options over c. */
void tool_arch_override(const tool_arch *a, ss_vit_cfg *c);

/* ss_vit_cfg_defaults, then: the sizes all known, and ss_vit_cfg_check. */
void tool_arch_finish(ss_vit_cfg *c);

#endif
