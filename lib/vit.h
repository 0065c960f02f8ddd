/* vit.h — the Vision Transformer every ssta tool runs.
 *
 * Architecture exactly as timm's VisionTransformer (DeiT without the
 * distillation token): Conv2d PxP/stride P patch embedding, class token
 * prepended, learned position embedding added, `depth` pre-norm blocks
 * (x += Attn(LN1 x); x += MLP(LN2 x); LayerNorm eps 1e-6; qkv bias;
 * scale hd^-0.5; exact-erf GELU), final LayerNorm, linear head on the class
 * token. With head_blocks = k > 1 the head reads the concatenation of the
 * final-norm class tokens of the last k blocks (DINO linear evaluation);
 * with head_pool (k = 1) it reads the final-norm class token and the mean
 * of the final-norm patch tokens, interleaved as DINO's eval_linear
 * --avgpool_patchtokens lays them out (cls_0, avg_0, cls_1, avg_1, ...).
 *
 * Not here: the threaded training step and checkpoints with optimizer state
 * (train.h), losses (loss.h), the optimizer (optim.h).
 *
 * Memory (llm.c style): parameters are ONE contiguous float buffer; the
 * table `tab` names each tensor (timm name, shape, offset). Gradients and
 * Adam moments use the same layout, so ss_vit_point() gives named pointers
 * into any of them. Activations live in an ss_vit_acts allocated once for a
 * maximal batch and one input size.
 *
 * Dimension letters as in layers.h (B, N, T, C, NH, H, P, CI).
 */
#ifndef SS_VIT_H
#define SS_VIT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "safetensors.h"

typedef struct ss_vit_cfg {
    int img_size;     /* training input side (square) */
    int patch;        /* P */
    int in_chans;     /* CI */
    int embed_dim;    /* C */
    int depth;        /* L */
    int num_heads;    /* NH, divides C */
    float mlp_ratio;  /* H = (int)(C * mlp_ratio) */
    int num_classes;  /* 0: no head (backbone only, as DINO files) */
    int head_blocks;  /* k >= 1: head on the last k class tokens (1 = timm) */
    int head_pool;    /* 1: the head also reads the average-pooled patch tokens
                         (needs k = 1 and a head; linear probing); 0: timm */
    float ln_eps;     /* 1e-6 */
} ss_vit_cfg;

/* Metadata keys of the architecture in a checkpoint's __metadata__. */
#define SS_META_IMG "ssta.img_size"
#define SS_META_PATCH "ssta.patch"
#define SS_META_CHANS "ssta.in_chans"
#define SS_META_DIM "ssta.embed_dim"
#define SS_META_DEPTH "ssta.depth"
#define SS_META_HEADS "ssta.num_heads"
#define SS_META_MLP "ssta.mlp_ratio"
#define SS_META_CLASSES "ssta.num_classes"
#define SS_META_HEADBLK "ssta.head_blocks"
#define SS_META_HEADPOOL "ssta.head_pool"   /* "avg"; written only when head_pool */

/* Fills c with a named preset: fmnist-student (28x28x1, P4, C96, L6, NH3, 10
 * classes), fmnist-teacher (C192, NH6), deit-tiny, deit-small, deit-base
 * (224, P16, 1000 classes). -1 with the list of names if unknown. */
int ss_vit_preset(const char *name, ss_vit_cfg *c, ss_err *e);
const char *ss_vit_preset_names(void);
/* Defaults for the fields a preset does not fix (mlp 4, eps 1e-6, k 1). */
void ss_vit_cfg_defaults(ss_vit_cfg *c);
int ss_vit_cfg_check(const ss_vit_cfg *c, ss_err *e);
/* Width F of the head input: (head_blocks + head_pool) * embed_dim. */
int ss_vit_head_in(const ss_vit_cfg *c);
/* A pooling name: "avg" -> 1, "none" -> 0 (SS_META_HEADPOOL's values, the
 * tools' pooling options); -1 for anything else. */
int ss_vit_pool_parse(const char *s);

/* Reads the architecture from a record: ssta.* metadata where present, the
 * rest inferred from tensor shapes (embed_dim, depth, patch, in_chans,
 * classes, grid -> img_size); num_heads and mlp_ratio cannot be inferred
 * from shapes: without metadata they are kept from *c (pass a preset), and
 * every field of *c that the record determines is overwritten. */
int ss_vit_cfg_from_record(const ss_record *r, ss_vit_cfg *c, ss_err *e);
int ss_vit_cfg_to_meta(const ss_vit_cfg *c, ss_record *r, ss_err *e);

typedef struct ss_vit_tensor {
    char name[48];
    int ndim;
    int64_t shape[4];
    size_t off, n;       /* offset and element count in the flat buffer */
    int no_decay;        /* 1: biases, norms, cls_token, pos_embed (DeiT) */
    int backbone;        /* 0 for head.* */
} ss_vit_tensor;

typedef struct ss_vit_block_w {
    float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    float *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} ss_vit_block_w;

/* Named pointers into a buffer with the parameter layout. */
typedef struct ss_vit_w {
    float *cls, *pos, *pe_w, *pe_b;
    ss_vit_block_w *blk;   /* depth entries (owned by the ss_vit_w) */
    float *norm_w, *norm_b, *head_w, *head_b;
} ss_vit_w;

typedef struct ss_vit {
    ss_vit_cfg cfg;
    int G;               /* patch grid side at img_size */
    int H;               /* MLP hidden */
    size_t nparams;      /* floats in the flat buffer */
    size_t nbackbone;    /* floats before head.* (head is last) */
    int ntensors;
    ss_vit_tensor *tab;
    float *params;       /* owned, nparams floats */
    ss_vit_w w;          /* pointers into params */
    uint8_t *head_off;   /* depth*NH, 1 = that head's attention output zeroed */
} ss_vit;

/* Builds the layout and allocates zeroed parameters. */
int ss_vit_new(ss_vit *m, const ss_vit_cfg *c, ss_err *e);
void ss_vit_free(ss_vit *m);
/* timm/DeiT initialisation keyed by (seed, SS_RNG_INIT, tensor index):
 * linear weights and pos_embed, cls_token trunc_normal(0.02); biases 0;
 * LayerNorm 1/0; patch conv as PyTorch's default U(+-1/sqrt(fan_in)). */
void ss_vit_init_weights(ss_vit *m, uint64_t seed);
/* Named pointers into buf (same layout as m->params); free with ss_vit_w_free. */
int ss_vit_point(const ss_vit *m, float *buf, ss_vit_w *w, ss_err *e);
void ss_vit_w_free(ss_vit_w *w);
/* Index of tensor `name` in tab, or -1. */
int ss_vit_find(const ss_vit *m, const char *name);

/* Copies tensors `prefix`+name from r into buf (layout of m). With
 * allow_missing_head = 1, a record without head.* (a DINO backbone) leaves the
 * head untouched; with 2 the record's head is ignored (linear probing); any other missing tensor or wrong shape is an error:
 * "blocks.0.attn.qkv.weight: shape 576x192, expected 288x96". Position
 * embeddings of another grid are refused (they are interpolated at run time
 * for other INPUT sizes, not at load). */
int ss_vit_load(const ss_vit *m, const ss_record *r, const char *prefix, float *buf,
                int allow_missing_head, ss_err *e);
/* Adds every tensor of buf as F32 `prefix`+name to r. */
int ss_vit_save(const ss_vit *m, ss_record *r, const char *prefix, const float *buf, ss_err *e);

/* How a forward pass runs. Drop path (per-block rate linspace(0, drop_path,
 * depth)) is active when train && drop_path > 0; the keep/drop decision of
 * sample s (global position in the batch: sample0 + local index) in block l,
 * branch r is keyed by (seed, SS_RNG_DROP, step, s, (2l+r) | key<<32), so it
 * does not depend on how the batch is split over workers; key (0 unless a
 * caller sets it) tells apart several forwards of the same samples in one
 * step, e.g. DINO's views. Dropout masks carry the key the same way. */
typedef struct ss_vit_run {
    int train;
    float drop_path;
    uint64_t seed, step;
    int sample0;
    uint32_t key;      /* see above; 0 = the keys every single-view run uses */
    float drop_rate;   /* dropout (timm drop_rate): after the position embedding,
                          after attn.proj, after the GELU and after fc2 */
    const uint8_t *head_off; /* depth*NH mask of heads switched off for this
                                forward (NULL: the model's m->head_off); lets
                                workers zero different heads at once */
} ss_vit_run;

/* Activations for batches of up to Bmax inputs of side hin x win.
 * With grads = 0 only what inference needs is kept (block scratch shared
 * between blocks); ss_vit_backward needs grads = 1. */
typedef struct ss_vit_acts {
    int Bmax, hin, win, gh, gw, T, N, grads;
    int B;                         /* samples of the last forward */
    float *mem;                    /* one allocation for everything below */
    float *cols;                   /* (B*T, CI*P*P) */
    float *pos;                    /* (N,C) position embedding used (interpolated) */
    float *interp;                 /* (T, G*G) bicubic map, NULL at native size */
    float *x0;                     /* (B,N,C) block 0 input */
    float **ln1, **ln1_mean, **ln1_rstd, **qkv, **att, **atty, **x1;
    float **ln2, **ln2_mean, **ln2_rstd, **fc1, **gel, **x2;   /* per block */
    float *tmp;                    /* (B,N,C) */
    float *fin, *fout, *fmean, *frstd;  /* (k,B,C) (k,B,C) (k,B) (k,B) final norm of cls */
    float *pool, *pmean, *prstd;   /* head_pool only: (B,C) pooled patch tokens, (B,N-1)
                                      (B,N-1) their final-norm statistics */
    float *feat;                   /* (B,F) head input, F = ss_vit_head_in */
    float *logits;                 /* (B, classes) */
    float *dp;                     /* (B, L, 2) drop path scales */
    ss_vit_run run;                /* how the last forward ran (backward needs it) */
    const float *params;           /* the parameters of the last forward (readers that
                                      recompute from tokens: ss_vit_get_pooled) */
    /* backward scratch */
    float *dres, *dln, *dC, *dqkv, *dH, *dattn_scr, *dfeat, *dfin, *dpos;
    float **datt;   /* per block: an objective's (B,NH,N,N) gradient on att, or NULL */
    float **dx2;    /* per block: an objective's (B,N,C) gradient on the block output, or NULL */
    float *dfeat_ext; /* an objective's (B,F) gradient on the head input, or NULL */
    float *dinput;  /* caller may point at a (B,CI,hin,win) buffer: backward adds d/dx */
    float *dcols;   /* scratch for dinput */
} ss_vit_acts;

int ss_vit_acts_new(ss_vit_acts *a, const ss_vit *m, int Bmax, int hin, int win, int grads,
                    ss_err *e);
void ss_vit_acts_free(ss_vit_acts *a);


/* x (B,CI,hin,win) -> logits (B,classes), head input, attention and block
 * outputs of every block, kept in a. B <= a->Bmax. params: a buffer with m's
 * layout (m->params, or an EMA copy's). */
void ss_vit_forward(const ss_vit *m, const float *params, ss_vit_acts *a, const float *x, int B,
                    const ss_vit_run *run);
/* Recomputes blocks [l0, l1) (and, when l1 == depth, the final norm and the
 * head) from the block outputs of the last forward on a, with heads
 * head_off (depth*NH mask, NULL: the model's) switched off. The last forward
 * must have run in eval mode on inference activations (grads = 0). Head
 * ranking uses it to share the blocks below a zeroed layer between
 * combinations. */
int ss_vit_forward_from(const ss_vit *m, const float *params, ss_vit_acts *a, int l0, int l1,
                        const uint8_t *head_off, ss_err *e);
/* Backward of the last forward: grads (m's layout) += d(loss)/d(params)
 * given dlogits (B,classes) (NULL when the model has no head) and the
 * objective gradients attached with ss_vit_grad_* below. head_only: only
 * head.* gradients (frozen backbone); otherwise everything. */
void ss_vit_backward(const ss_vit *m, const float *params, float *grads, ss_vit_acts *a,
                     const float *dlogits, int B, int head_only);

/* What an objective or a tool reads of the last forward (sample b < a->B).
 * Nothing outside vit.c needs the layout of ss_vit_acts. */
/* Head h's (N,N) attention probabilities in block l for sample b (no copy). */
const float *ss_vit_attn_map(const ss_vit *m, const ss_vit_acts *a, int l, int h, int b);
/* Copies n samples' (N,N) maps of head h of block l to out (n,N,N);
 * h = -1: the mean over the block's heads (the paper's "avg" selection). */
void ss_vit_get_attn(const ss_vit *m, const ss_vit_acts *a, int l, int h, int n, float *out);
/* (n,C): the last block's class token after the final norm (DINO features). */
void ss_vit_get_features(const ss_vit *m, const ss_vit_acts *a, int n, float *out);
/* (n,C): the mean of the last block's patch tokens (1..N-1), each after the
 * final norm (DINO's avgpool_patchtokens), computed from the last forward's
 * tokens with the parameters it ran with (ss_layernorm_mean_forward: the
 * same values as the pooled part of a head_pool head input). */
void ss_vit_get_pooled(const ss_vit *m, const ss_vit_acts *a, int n, float *out);
/* (n,L,C): the class token after each block, before the final norm. */
void ss_vit_get_block_cls(const ss_vit *m, const ss_vit_acts *a, int n, float *out);
const float *ss_vit_tokens(const ss_vit_acts *a, int l);   /* (B,N,C) output of block l */
const float *ss_vit_logits(const ss_vit_acts *a);          /* (B,classes) */
const float *ss_vit_head_input(const ss_vit_acts *a);      /* (B,F), F = ss_vit_head_in */

/* Gradients an objective attaches before ss_vit_backward (the buffers stay
 * the caller's; backward adds them in): on the attention probabilities of
 * block l (B,NH,N,N), on block l's output tokens (B,N,C), on the head input
 * (B,F). ss_vit_grad_clear detaches all. With head_pool the backward takes
 * the pooled part's gradient through the final norm into every patch token
 * of the last block (and norm.*), unless head_only. */
void ss_vit_grad_attn(ss_vit_acts *a, int l, float *datt);
void ss_vit_grad_tokens(ss_vit_acts *a, int l, float *dx);
void ss_vit_grad_head_input(ss_vit_acts *a, float *dfeat);
void ss_vit_grad_clear(ss_vit_acts *a, int depth);

/* Bicubic (A=-0.75, align_corners=False) interpolation map from a GxG grid
 * to gh x gw, as DINO's interpolate_pos_encoding: scale factor
 * (g+0.1)/G per axis. map (gh*gw, G*G). */
void ss_vit_interp_map(float *map, int G, int gh, int gw);

#endif
