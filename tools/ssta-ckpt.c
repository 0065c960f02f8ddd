/* ssta-ckpt — inspect a checkpoint, or export its model weights (without
 * optimizer state) with provenance metadata, as F32 or BF16: the files the
 * project ships as teachers. See ssta-ckpt(1).
 *
 * Not here: training (distill-step, dino-train), streams (sts).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ident.h"
#include "modelfile.h"
#include "safetensors.h"
#include "tool.h"
#include "vit.h"

static void usage(void)
{
    printf(
        "Usage: ssta-ckpt info [--heads N] CKPT\n"
        "       ssta-ckpt export [--bf16] [--set KEY=VALUE]... [--heads N] CKPT -o OUT\n"
        "info: the architecture, parameter count, md5 of the F32 parameters as\n"
        "loaded (the ssta.model_md5 other tools record) and the metadata, as TSV\n"
        "(key, value) on stdout.\n"
        "export: the model's tensors (timm names, head included when present),\n"
        "without optimizer state (optim.*) or training state, with the\n"
        "architecture and normalisation metadata kept, ssta.source_md5 (the md5\n"
        "of the parameters before any BF16 rounding) added, and every --set\n"
        "KEY=VALUE (e.g. ssta.command, ssta.commit, ssta.test_acc).\n"
        "  --bf16            store the weights as BF16 (round to nearest even)\n"
        "  --set KEY=VALUE   add or replace a metadata entry (repeatable)\n"
        "  --heads N         head count for a file without ssta metadata\n"
        "  -o, --out OUT     output file (written atomically)\n"
        "  -h, --help\n"
        "Exit status: 0 ok, 1 runtime/data error, 2 usage error.\n");
}

/* Metadata a shipped teacher keeps from the training checkpoint (a probe's
 * description and its backbone's md5 when linear-probe made it). */
static const char *KEEP[] = {SS_META_MEAN, SS_META_STD, SS_META_DATA, SS_META_SEED, SS_META_EPOCH, SS_META_LOG,
                             "ssta.producer", "ssta.run", "ssta.probe", "ssta.backbone_md5", NULL};

static void put_tsv(const char *k, const char *v)
{
    fputs(k, stdout);
    putchar('\t');
    for (const char *p = v; *p; p++) {   /* keep one line per entry */
        if (*p == '\n') fputs("\\n", stdout);
        else if (*p == '\t') fputs("\\t", stdout);
        else if (*p == '\\') fputs("\\\\", stdout);
        else putchar(*p);
    }
    putchar('\n');
}

int main(int argc, char **argv)
{
    tool_init("ssta-ckpt");
    if (argc < 2) tool_usage_error("a command is required: info or export");
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage();
        return 0;
    }
    const char *cmd = argv[1];
    if (cmd[0] == '-') tool_usage_error("unknown option '%s' (options follow the COMMAND)", cmd);
    if (strcmp(cmd, "info") && strcmp(cmd, "export")) tool_usage_error("unknown command '%s' (info, export)", cmd);
    tool_set_command(cmd);
    static const struct option lo[] = {{"bf16", 0, 0, 'b'}, {"set", 1, 0, 's'}, {"heads", 1, 0, 'H'},
                                       {"out", 1, 0, 'o'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int bf16 = 0, heads = 0, nset = 0, c;
    const char *out = NULL;
    char **sets = calloc((size_t)argc, sizeof *sets);
    if (!sets) tool_die("out of memory");
    argc--;
    argv++;
    optind = 0;
    while ((c = tool_getopt(argc, argv, "o:h", lo)) != -1) {
        switch (c) {
        case 'h': usage(); return 0;
        case 'b': bf16 = 1; break;
        case 'H': heads = (int)tool_parse_long("--heads", optarg, 1, 1024); break;
        case 'o': out = optarg; break;
        case 's':
            if (!strchr(optarg, '=') || optarg[0] == '=') tool_usage_error("--set: expected KEY=VALUE, got '%s'", optarg);
            sets[nset++] = optarg;
            break;
        default: tool_usage_error("unknown option");
        }
    }
    if (optind != argc - 1) tool_usage_error("exactly one checkpoint is required");
    const char *in = argv[optind];
    int is_export = !strcmp(cmd, "export");
    if (is_export && !out) tool_usage_error("export needs -o OUT");
    if (!is_export && (out || bf16 || nset)) tool_usage_error("-o, --bf16 and --set are for export");

    ss_err e;
    ss_modelfile mf;   /* weights, parameter md5 */
    if (ss_modelfile_open(&mf, in, NULL, NULL, heads, &e)) tool_die_err(&e);
    const ss_record *ckp = &mf.rec;
    const ss_vit *mp = &mf.m;
    const char *hex = mf.md5;
    if (!is_export) {
        const ss_vit_cfg *a = &mp->cfg;
        printf("key\tvalue\n");
        char buf[256];
        snprintf(buf, sizeof buf, "%d/%d/%d patch %d, %dx%dx%d input, %d classes, head on %d block(s)%s", a->embed_dim,
                 a->depth, a->num_heads, a->patch, a->img_size, a->img_size, a->in_chans, a->num_classes, a->head_blocks,
                 a->head_pool ? " + pooled patch tokens" : "");
        put_tsv("architecture", buf);
        snprintf(buf, sizeof buf, "%zu", mp->nparams);
        put_tsv("parameters", buf);
        put_tsv(SS_META_MODEL_MD5, hex);
        int nopt = 0;
        for (int i = 0; i < ckp->ntensors; i++) nopt += !strncmp(ckp->t[i].name, "optim.", 6);
        snprintf(buf, sizeof buf, "%d", nopt);
        put_tsv("optimizer_tensors", buf);
        for (int i = 0; i < ckp->nmeta; i++) put_tsv(ckp->mkey[i], ckp->mval[i]);
    } else {
        ss_record r;
        ss_record_init(&r);
        for (int i = 0; i < mp->ntensors; i++) {
            const ss_vit_tensor *t = &mp->tab[i];
            const float *src = mp->params + t->off;
            ss_tensor *dst = ss_record_add(&r, t->name, bf16 ? SS_BF16 : SS_F32, t->ndim, t->shape, bf16 ? NULL : src, &e);
            if (!dst) tool_die_err(&e);
            if (bf16)
                for (size_t j = 0; j < t->n; j++) ((uint16_t *)dst->data)[j] = ss_f32_to_bf16(src[j]);
        }
        if (ss_vit_cfg_to_meta(&mp->cfg, &r, &e)) tool_die_err(&e);
        for (const char **k = KEEP; *k; k++) {
            const char *v = ss_record_meta(ckp, *k);
            if (v && ss_record_set_meta(&r, *k, v, &e)) tool_die_err(&e);
        }
        if (ss_record_set_meta(&r, "ssta.source_md5", hex, &e) ||
            ss_record_set_meta(&r, "ssta.dtype", bf16 ? "bf16" : "f32", &e))
            tool_die_err(&e);
        for (int i = 0; i < nset; i++) {
            char *eq = strchr(sets[i], '=');
            *eq = 0;
            if (ss_record_set_meta(&r, sets[i], eq + 1, &e)) tool_die_err(&e);
            *eq = '=';
        }
        if (ss_st_save(out, &r, &e)) tool_die_err(&e);
        ss_record_free(&r);
    }
    if (fflush(stdout) || ferror(stdout)) tool_die("standard output: write error");
    ss_modelfile_close(&mf);
    free(sets);
    return 0;
}
