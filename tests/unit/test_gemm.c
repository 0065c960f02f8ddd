/* test_gemm.c — ss_sgemm and ss_sgemm_bias against the naive double
 * product, on shapes that cross every block and tile edge (MR 12, NR 32,
 * KC 256, MC 120, NC 512), both transpositions, padded strides, alpha and
 * beta; plus what the contract promises beyond the values: C's padding and
 * the rows past M untouched, beta 0 not reading C, NaN propagated, bias
 * fused exactly as bias rows + beta 1, and a row's result independent of
 * which other rows and columns are in the call. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "gemm.h"

static uint64_t rs = 88172645463325252ull;
static float frand(void)
{
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (float)((rs >> 40) * (1.0 / 16777216.0)) - 0.5f;
}
static float *rnd(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

#define SENT 12345.0f

/* One call of every kind on one shape; returns the number of bad elements. */
static int one(int ta, int tb, int M, int N, int K, float alpha, float beta, int pad)
{
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    float *A = rnd((size_t)lda * (ta ? K : M)), *B = rnd((size_t)ldb * (tb ? N : K));
    size_t nc = (size_t)ldc * (M + 1);   /* one row past M: must stay as it was */
    float *C = rnd(nc), *R = malloc(nc * sizeof *R), *bias = rnd((size_t)N);
    for (int i = 0; i < M + 1; i++)
        for (int j = 0; j < ldc; j++)
            if (i == M || j >= N) C[(size_t)i * ldc + j] = SENT;
    memcpy(R, C, nc * sizeof *R);
    ss_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    ss_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    int bad = 0;
    for (int i = 0; i < M + 1; i++)
        for (int j = 0; j < ldc; j++) {
            size_t o = (size_t)i * ldc + j;
            if (i == M || j >= N) {
                bad += C[o] != SENT;
                continue;
            }
            /* |error| <= K eps sum|a b| (+ beta's rounding), eps 2^-24 */
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += fabs(a * b);
            }
            double tol = 6e-8 * (K + 3) * (fabs(alpha) * s + 2.0) + 1e-30;
            if (!(fabs((double)C[o] - R[o]) <= tol)) {
                if (!bad)
                    fprintf(stderr, "ta %d tb %d M %d N %d K %d alpha %g beta %g: C[%d,%d] %.9g vs %.9g\n", ta, tb, M,
                            N, K, alpha, beta, i, j, C[o], R[o]);
                bad++;
            }
        }
    /* bias: bit-identical to the bias rows written first and beta 1 */
    for (int i = 0; i < M; i++) memcpy(R + (size_t)i * ldc, bias, (size_t)N * sizeof *R);
    ss_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, R, ldc);
    ss_sgemm_bias(ta, tb, M, N, K, A, lda, B, ldb, bias, C, ldc);
    for (int i = 0; i < M; i++) bad += memcmp(C + (size_t)i * ldc, R + (size_t)i * ldc, (size_t)N * sizeof *C) != 0;
    free(A), free(B), free(C), free(R), free(bias);
    return bad;
}

int main(void)
{
#if defined(__AVX512F__) && !defined(SS_GEMM_BLAS)
    CHECK(strcmp(ss_sgemm_impl(), "avx512") == 0);
#else
    CHECK(strcmp(ss_sgemm_impl(), "openblas") == 0);
#endif
    const int Ms[] = {1, 11, 12, 13, 50, 121, 250}, Ns[] = {1, 15, 17, 32, 33, 50, 513},
              Ks[] = {1, 7, 32, 256, 257, 600};
    int n = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
                for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++)
                    for (size_t c = 0; c < sizeof Ks / sizeof *Ks; c++, n++) {
                        if (Ms[a] * Ns[b] * Ks[c] > 6000000) continue;
                        float alpha = n % 3 ? 1.0f : 0.37f, beta = (float[]){0.0f, 1.0f, -0.5f}[n % 3];
                        CHECK_MSG(one(ta, tb, Ms[a], Ns[b], Ks[c], alpha, beta, n % 4) == 0, "ta %d tb %d M %d N %d K %d",
                                  ta, tb, Ms[a], Ns[b], Ks[c]);
                    }

    /* the layer shapes (192-wide ViT, 32 samples x 50 tokens) */
    CHECK(one(0, 1, 1600, 576, 192, 1.0f, 0.0f, 0) == 0);   /* qkv forward */
    CHECK(one(0, 0, 1600, 192, 768, 1.0f, 1.0f, 0) == 0);   /* fc1 input gradient */
    CHECK(one(1, 0, 768, 192, 1600, 1.0f, 1.0f, 0) == 0);   /* fc1 weight gradient */
    CHECK(one(0, 1, 50, 50, 32, 0.17677669f, 0.0f, 544) == 0);   /* q k^T of one head, in qkv rows */

    /* beta 0 does not read C; NaN in A reaches its row, and only it */
    {
        int M = 30, N = 40, K = 300;
        float *A = rnd((size_t)M * K), *B = rnd((size_t)K * N), *C = malloc((size_t)M * N * sizeof *C);
        for (int i = 0; i < M * N; i++) C[i] = NAN;
        ss_sgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
        int finite = 1;
        for (int i = 0; i < M * N; i++) finite &= isfinite(C[i]);
        CHECK(finite);
        A[(size_t)17 * K + 280] = NAN;   /* row 17, in the second k slice */
        ss_sgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
        int nan_row = 1, others = 1;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                if (i == 17) nan_row &= isnan(C[i * N + j]);
                else others &= isfinite(C[i * N + j]);
            }
        CHECK(nan_row);
        CHECK(others);
        free(A), free(B), free(C);
    }

#if defined(__AVX512F__) && !defined(SS_GEMM_BLAS)
    /* a row's result does not depend on the other rows or columns in the
     * call (tile position, edge panels, masks): rows 13..49 alone, and
     * columns 5..44 alone, give the same bits as the whole product (our
     * kernel's promise, gemm.h; OpenBLAS does not make it) */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int M = 50, N = 70, K = 300;
            int lda = ta ? M : K, ldb = tb ? K : N;
            float *A = rnd((size_t)M * K), *B = rnd((size_t)K * N);
            float *C = calloc((size_t)M * N, sizeof *C), *D = calloc((size_t)M * N, sizeof *D);
            ss_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
            const float *Ar = ta ? A + 13 : A + (size_t)13 * lda;
            ss_sgemm(ta, tb, M - 13, N, K, 1.0f, Ar, lda, B, ldb, 0.0f, D + (size_t)13 * N, N);
            CHECK(memcmp(C + (size_t)13 * N, D + (size_t)13 * N, (size_t)(M - 13) * N * sizeof *C) == 0);
            const float *Bc = tb ? B + (size_t)5 * ldb : B + 5;
            memset(D, 0, (size_t)M * N * sizeof *D);
            ss_sgemm(ta, tb, M, 40, K, 1.0f, A, lda, Bc, ldb, 0.0f, D + 5, N);
            int same = 1;
            for (int i = 0; i < M; i++) same &= memcmp(C + (size_t)i * N + 5, D + (size_t)i * N + 5, 40 * sizeof *C) == 0;
            CHECK(same);
            free(A), free(B), free(C), free(D);
        }
#endif
    return check_summary("test_gemm");
}
