/* arch.c — the training tools' architecture options (arch.h). */
#include "arch.h"

#include <string.h>

#include "tool.h"

int tool_arch_option(tool_arch *a, int c, const char *arg)
{
    switch (c) {
    case TOOL_O_PRESET: a->preset = arg; return 1;
    case TOOL_O_IMG: a->img = (int)tool_parse_long("--img", arg, 1, 8192); return 1;
    case TOOL_O_PATCH: a->patch = (int)tool_parse_long("--patch", arg, 1, 1024); return 1;
    case TOOL_O_CHANS: a->chans = (int)tool_parse_long("--chans", arg, 1, 64); return 1;
    case TOOL_O_DIM: a->dim = (int)tool_parse_long("--dim", arg, 1, 16384); return 1;
    case TOOL_O_DEPTH: a->depth = (int)tool_parse_long("--depth", arg, 1, 256); return 1;
    case TOOL_O_HEADS: a->heads = (int)tool_parse_long("--heads", arg, 1, 1024); return 1;
    case TOOL_O_MLP: a->mlp_ratio = (float)tool_parse_double("--mlp-ratio", arg, 0.01, 64); return 1;
    default: return 0;
    }
}

void tool_arch_start(const tool_arch *a, ss_vit_cfg *c)
{
    ss_err e;
    memset(c, 0, sizeof *c);
    if (a->preset && ss_vit_preset(a->preset, c, &e)) tool_usage_error("--preset: %s", e.msg);
    if (a->heads) c->num_heads = a->heads;
}

void tool_arch_override(const tool_arch *a, ss_vit_cfg *c)
{
    if (a->img) c->img_size = a->img;
    if (a->patch) c->patch = a->patch;
    if (a->chans) c->in_chans = a->chans;
    if (a->dim) c->embed_dim = a->dim;
    if (a->depth) c->depth = a->depth;
    if (a->heads) c->num_heads = a->heads;
    if (a->mlp_ratio > 0) c->mlp_ratio = a->mlp_ratio;
}

void tool_arch_finish(ss_vit_cfg *c)
{
    ss_err e;
    ss_vit_cfg_defaults(c);
    if (!c->img_size || !c->patch || !c->embed_dim || !c->depth || !c->num_heads)
        tool_usage_error("the architecture is incomplete: give --preset, --init, or "
                         "--img/--patch/--dim/--depth/--heads");
    if (ss_vit_cfg_check(c, &e)) tool_usage_error("%s", e.msg);
}
