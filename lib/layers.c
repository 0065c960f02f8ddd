/* layers.c — ViT layer kernels on ss_sgemm (contracts in layers.h). */
#include "layers.h"

#include "gemm.h"

#pragma GCC optimize("tree-vectorize")

#include <math.h>
#include <string.h>

void ss_im2col(float *cols, const float *img, int B, int CI, int Hi, int Wi, int P)
{
    // img (B,CI,Hi,Wi) -> cols (B*T, CI*P*P)
    int gh = Hi / P, gw = Wi / P, K = CI * P * P;
    for (int b = 0; b < B; b++)
        for (int py = 0; py < gh; py++)
            for (int px = 0; px < gw; px++) {
                float *row = cols + ((size_t)b * gh * gw + (size_t)py * gw + px) * K;
                for (int c = 0; c < CI; c++)
                    for (int ky = 0; ky < P; ky++) {
                        const float *src = img + (((size_t)b * CI + c) * Hi + (size_t)py * P + ky) * Wi
                                           + (size_t)px * P;
                        memcpy(row + (c * P + ky) * P, src, (size_t)P * sizeof(float));
                    }
            }
}

void ss_linear_forward(float *out, const float *inp, const float *w, const float *b,
                       int M, int C, int OC)
{
    // out (M,OC) = inp (M,C) . w(OC,C)^T + b
    if (b)
        ss_sgemm_bias(0, 1, M, OC, C, inp, C, w, C, b, out, OC);
    else
        ss_sgemm(0, 1, M, OC, C, 1.0f, inp, C, w, C, 0.0f, out, OC);
}

void ss_linear_forward_ref(float *out, const float *inp, const float *w, const float *b,
                           int M, int C, int OC)
{
    for (int m = 0; m < M; m++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)inp[(size_t)m * C + c] * w[(size_t)o * C + c];
            out[(size_t)m * OC + o] = (float)s;
        }
}

void ss_linear_backward(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, int M, int C, int OC)
{
    // dout (M,OC), inp (M,C), w (OC,C)
    if (dinp)
        ss_sgemm(0, 0, M, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
    if (dw)
        ss_sgemm(1, 0, OC, C, M, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (db)
        for (int m = 0; m < M; m++) {
            const float *d = dout + (size_t)m * OC;
            for (int o = 0; o < OC; o++) db[o] += d[o];
        }
}

/* Row reductions in SS_LANES lanes: lane l sums elements l, l + 16,
 * l + 32, ... in order, then the lanes are added pairwise (lane_fold).
 * The order depends on the length alone (results are the same on every
 * run), and the lane loops vectorise, where one running float sum could
 * not: the compiler may not reorder float additions. */
#define SS_LANES 16

static inline float lane_fold(float *s)
{
    for (int w = SS_LANES / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++) s[l] += s[l + w];
    return s[0];
}

static inline float lane_sum(const float *x, int n)
{
    float s[SS_LANES] = {0};
    int c = 0;
    for (; c + SS_LANES <= n; c += SS_LANES)
        for (int l = 0; l < SS_LANES; l++) s[l] += x[c + l];
    for (; c < n; c++) s[c % SS_LANES] += x[c];
    return lane_fold(s);
}

static inline float lane_dot(const float *x, const float *y, int n)
{
    float s[SS_LANES] = {0};
    int c = 0;
    for (; c + SS_LANES <= n; c += SS_LANES)
        for (int l = 0; l < SS_LANES; l++) s[l] += x[c + l] * y[c + l];
    for (; c < n; c++) s[c % SS_LANES] += x[c] * y[c];
    return lane_fold(s);
}

/* A row's mean and 1/sqrt(variance + eps) (biased variance), the one
 * definition both LayerNorm forwards use. */
static inline void ln_stats(const float *x, int C, float eps, float *mu_out, float *rs_out)
{
    float mu = lane_sum(x, C) / C;
    float s[SS_LANES] = {0};
    int c = 0;
    for (; c + SS_LANES <= C; c += SS_LANES)
        for (int l = 0; l < SS_LANES; l++) {
            float d = x[c + l] - mu;
            s[l] += d * d;
        }
    for (; c < C; c++) {
        float d = x[c] - mu;
        s[c % SS_LANES] += d * d;
    }
    float var = lane_fold(s) / C;
    *mu_out = mu;
    *rs_out = 1.0f / sqrtf(var + eps);
}

/* sum_c g_c and sum_c g_c xh_c of a LayerNorm backward row, g = dy w (or
 * dy inv w when dy is a mean's gradient), xh = (x - mu) rs */
static inline void ln_grad_sums(const float *x, const float *dy, const float *w, float inv, float mu, float rs,
                                int C, float *g_sum, float *gx_sum)
{
    float s1[SS_LANES] = {0}, s2[SS_LANES] = {0};
    int c = 0;
    for (; c + SS_LANES <= C; c += SS_LANES)
        for (int l = 0; l < SS_LANES; l++) {
            float xh = (x[c + l] - mu) * rs, g = dy[c + l] * inv * w[c + l];
            s1[l] += g;
            s2[l] += g * xh;
        }
    for (; c < C; c++) {
        float xh = (x[c] - mu) * rs, g = dy[c] * inv * w[c];
        s1[c % SS_LANES] += g;
        s2[c % SS_LANES] += g * xh;
    }
    *g_sum = lane_fold(s1);
    *gx_sum = lane_fold(s2);
}

void ss_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int M, int C, float eps)
{
    for (int m = 0; m < M; m++) {
        const float *x = inp + (size_t)m * C;
        float *y = out + (size_t)m * C;
        float mu, rs;
        ln_stats(x, C, eps, &mu, &rs);
        for (int c = 0; c < C; c++) y[c] = (x[c] - mu) * rs * w[c] + b[c];
        mean[m] = mu;
        rstd[m] = rs;
    }
}

void ss_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean,
                           const float *rstd, int M, int C)
{
    for (int m = 0; m < M; m++) {
        const float *x = inp + (size_t)m * C, *dy = dout + (size_t)m * C;
        float *dx = dinp + (size_t)m * C;
        float mu = mean[m], rs = rstd[m];
        float g_mean, gx_mean;
        ln_grad_sums(x, dy, w, 1.0f, mu, rs, C, &g_mean, &gx_mean);
        g_mean /= C;
        gx_mean /= C;
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - mu) * rs, g = dy[c] * w[c];
            if (dw) dw[c] += dy[c] * xh;
            if (db) db[c] += dy[c];
            dx[c] += rs * (g - g_mean - xh * gx_mean);
        }
    }
}

void ss_layernorm_mean_forward(float *out, float *mean, float *rstd, const float *inp,
                               const float *w, const float *b, int M, int C, float eps)
{
    for (int c = 0; c < C; c++) out[c] = 0.0f;
    for (int m = 0; m < M; m++) {
        const float *x = inp + (size_t)m * C;
        float mu, rs;   /* the statistics exactly as ss_layernorm_forward */
        ln_stats(x, C, eps, &mu, &rs);
        for (int c = 0; c < C; c++) out[c] += (x[c] - mu) * rs;
        if (mean) mean[m] = mu;
        if (rstd) rstd[m] = rs;
    }
    float inv = 1.0f / (float)M;
    for (int c = 0; c < C; c++) out[c] = out[c] * inv * w[c] + b[c];
}

void ss_layernorm_mean_backward(float *dinp, float *dw, float *db, const float *dout,
                                const float *inp, const float *w, const float *mean,
                                const float *rstd, int M, int C)
{
    float inv = 1.0f / (float)M;
    for (int m = 0; m < M; m++) {
        const float *x = inp + (size_t)m * C;
        float *dx = dinp + (size_t)m * C;
        float mu = mean[m], rs = rstd[m];
        float g_mean, gx_mean;
        ln_grad_sums(x, dout, w, inv, mu, rs, C, &g_mean, &gx_mean);
        g_mean /= C;
        gx_mean /= C;
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - mu) * rs, dy = dout[c] * inv, g = dy * w[c];
            if (dw) dw[c] += dy * xh;
            dx[c] += rs * (g - g_mean - xh * gx_mean);
        }
    }
    if (db)
        for (int c = 0; c < C; c++) db[c] += dout[c];
}

#define SS_SQRT1_2 0.70710678118654752440f
#define SS_INV_SQRT_2PI 0.39894228040143267794f

/* exp(x) for x <= 0 (GELU and softmax only need that range), branch-free
 * so that the loops below vectorise: x = k ln2 + r, |r| <= ln2/2, exp(r) by
 * a degree-6 Taylor polynomial (relative error <= 1.2e-7, about one float
 * ulp), 2^k by building the exponent bits. Inputs below -87 are clamped
 * (result ~1.6e-38); NaN is returned as NaN so that a NaN anywhere still
 * reaches the loss. */
static inline float exp_neg(float x)
{
    float xc = x > -87.0f ? x : -87.0f;   /* also maps NaN to -87; restored below */
    xc = xc < 0.0f ? xc : 0.0f;
    /* round to nearest by the 1.5*2^23 trick (no libm call, vectorises) */
    float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - k * 0.693145751953125f - k * 1.42860682030941723212e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    union { float f; uint32_t i; } u;
    u.i = (uint32_t)(k + 127.0f) << 23;   /* k in [-126, 0]: a normal power of two */
    float y = p * u.f;
    return x == x ? y : x;
}

/* Phi(x) = 0.5 (1 + erf(x/sqrt2)) with erf from Abramowitz & Stegun 7.1.26
 * (|error| <= 1.5e-7 absolute), t = 1/(1 + p|z|):
 *   erf(|z|) = 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-z^2).
 * Also returns phi(x) = exp(-x^2/2)/sqrt(2 pi) through *pdf. */
static inline float phi_cdf(float x, float *pdf)
{
    float z = x * SS_SQRT1_2, az = __builtin_fabsf(z);
    float e = exp_neg(-z * z);
    float t = 1.0f / (1.0f + 0.3275911f * az);
    float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    float erfa = 1.0f - poly * e;
    float erfz = z < 0 ? -erfa : erfa;
    *pdf = SS_INV_SQRT_2PI * e;
    return 0.5f * (1.0f + erfz);
}

void ss_gelu_forward(float *out, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float pdf, x = inp[i];
        out[i] = x * phi_cdf(x, &pdf);
    }
}

void ss_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float pdf, x = inp[i];
        float cdf = phi_cdf(x, &pdf);
        dinp[i] = dout[i] * (cdf + x * pdf);
    }
}

void ss_gelu_forward_ref(float *out, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = (float)(0.5 * inp[i] * (1.0 + erf(inp[i] / sqrt(2.0))));
}

static void softmax_row(float *p, int K)
{
    float m[SS_LANES];
    int k = 0;
    for (int l = 0; l < SS_LANES; l++) m[l] = p[0];
    for (; k + SS_LANES <= K; k += SS_LANES)
        for (int l = 0; l < SS_LANES; l++) m[l] = p[k + l] > m[l] ? p[k + l] : m[l];
    for (; k < K; k++) m[k % SS_LANES] = p[k] > m[k % SS_LANES] ? p[k] : m[k % SS_LANES];
    float mx = m[0];
    for (int l = 1; l < SS_LANES; l++) mx = m[l] > mx ? m[l] : mx;
    for (k = 0; k < K; k++) p[k] = exp_neg(p[k] - mx);   /* arguments <= 0 */
    float inv = 1.0f / lane_sum(p, K);
    for (k = 0; k < K; k++) p[k] *= inv;
}

void ss_softmax_rows(float *p, const float *logits, int M, int K)
{
    for (int m = 0; m < M; m++) {
        if (p != logits) memcpy(p + (size_t)m * K, logits + (size_t)m * K, (size_t)K * sizeof(float));
        softmax_row(p + (size_t)m * K, K);
    }
}

void ss_attention_forward(float *out, float *att, const float *qkv, const uint8_t *head_off,
                          int B, int N, int C, int NH)
{
    // qkv (B,N,3C) -> att (B,NH,N,N), out (B,N,C)
    int hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * N * C3 + h * hd;
            const float *k = q + C, *v = q + 2 * C;
            float *P = att + ((size_t)b * NH + h) * N * N;
            float *o = out + (size_t)b * N * C + h * hd;
            // S = scale * q k^T  (N,N)
            ss_sgemm(0, 1, N, N, hd, scale, q, C3, k, C3, 0.0f, P, N);
            for (int i = 0; i < N; i++) softmax_row(P + (size_t)i * N, N);
            if (head_off && head_off[h]) {
                for (int i = 0; i < N; i++) memset(o + (size_t)i * C, 0, (size_t)hd * sizeof(float));
                continue;
            }
            // o = P v  (N,hd)
            ss_sgemm(0, 0, N, hd, N, 1.0f, P, N, v, C3, 0.0f, o, C);
        }
}

void ss_attention_forward_ref(float *out, float *att, const float *qkv, const uint8_t *head_off,
                              int B, int N, int C, int NH)
{
    int hd = C / NH, C3 = 3 * C;
    double scale = 1.0 / sqrt((double)hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            float *P = att + ((size_t)b * NH + h) * N * N;
            for (int i = 0; i < N; i++) {
                const float *q = qkv + ((size_t)b * N + i) * C3 + h * hd;
                double mx = -INFINITY, s = 0.0;
                for (int j = 0; j < N; j++) {
                    const float *k = qkv + ((size_t)b * N + j) * C3 + C + h * hd;
                    double d = 0.0;
                    for (int t = 0; t < hd; t++) d += (double)q[t] * k[t];
                    P[(size_t)i * N + j] = (float)(d * scale);
                    if (d * scale > mx) mx = d * scale;
                }
                for (int j = 0; j < N; j++) s += exp(P[(size_t)i * N + j] - mx);
                for (int j = 0; j < N; j++)
                    P[(size_t)i * N + j] = (float)(exp(P[(size_t)i * N + j] - mx) / s);
                float *o = out + ((size_t)b * N + i) * C + h * hd;
                for (int t = 0; t < hd; t++) {
                    double a = 0.0;
                    if (!(head_off && head_off[h]))
                        for (int j = 0; j < N; j++)
                            a += (double)P[(size_t)i * N + j] * qkv[((size_t)b * N + j) * C3 + 2 * C + h * hd + t];
                    o[t] = (float)a;
                }
            }
        }
}

void ss_attention_backward(float *dqkv, float *scratch, const float *dout,
                           const float *datt_ext, const float *qkv, const float *att,
                           const uint8_t *head_off, int B, int N, int C, int NH)
{
    int hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    float *dP = scratch;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * N * C3 + h * hd;
            const float *k = q + C, *v = q + 2 * C;
            float *dq = dqkv + (size_t)b * N * C3 + h * hd;
            float *dk = dq + C, *dv = dq + 2 * C;
            const float *P = att + ((size_t)b * NH + h) * N * N;
            const float *dy = dout + (size_t)b * N * C + h * hd;
            const float *dext = datt_ext ? datt_ext + ((size_t)b * NH + h) * N * N : NULL;
            int off = head_off && head_off[h];
            if (off && !dext) continue;  // no gradient reaches q, k or v
            if (!off) {
                // dP = dy v^T (N,N); dv += P^T dy (N,hd)
                ss_sgemm(0, 1, N, N, hd, 1.0f, dy, C, v, C3, 0.0f, dP, N);
                ss_sgemm(1, 0, N, hd, N, 1.0f, P, N, dy, C, 1.0f, dv, C3);
                if (dext)
                    for (size_t i = 0; i < (size_t)N * N; i++) dP[i] += dext[i];
            } else {
                memcpy(dP, dext, (size_t)N * N * sizeof(float));
            }
            // softmax backward, in place: dS = P * (dP - sum_j dP*P)
            for (int i = 0; i < N; i++) {
                const float *p = P + (size_t)i * N;
                float *d = dP + (size_t)i * N;
                float s = lane_dot(d, p, N);
                for (int j = 0; j < N; j++) d[j] = p[j] * (d[j] - s);
            }
            // dq += scale dS k ; dk += scale dS^T q
            ss_sgemm(0, 0, N, hd, N, scale, dP, N, k, C3, 1.0f, dq, C3);
            ss_sgemm(1, 0, N, hd, N, scale, dP, N, q, C3, 1.0f, dk, C3);
        }
}

void ss_residual_forward(float *out, const float *x, const float *f, const float *s,
                         int B, size_t R)
{
    for (int b = 0; b < B; b++) {
        float sb = s ? s[b] : 1.0f;
        const float *xb = x + (size_t)b * R, *fb = f + (size_t)b * R;
        float *ob = out + (size_t)b * R;
        if (sb == 1.0f)
            for (size_t i = 0; i < R; i++) ob[i] = xb[i] + fb[i];
        else
            for (size_t i = 0; i < R; i++) ob[i] = xb[i] + sb * fb[i];
    }
}
