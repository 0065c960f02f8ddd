/* gemm_rate.c — the single-thread sgemm rate of this machine on the
 * shapes a ViT step multiplies, and the FLOPs of one DINO step, so that a
 * measured img/s can be read as a fraction of what the GEMMs allow.
 * docs/dino.md ("Speed") has the results.
 *
 *   make build/bench/gemm_rate
 *   build/bench/gemm_rate [--dim 192] [--depth 6] [--mlp 4] [--tokens 50]
 *                         [--local-tokens 17] [--nlocal 2] [--rows 1600] [--seconds 2]
 *
 * Prints TSV on stdout: for each linear layer of a block (qkv, proj, fc1,
 * fc2) in the three orientations a training step runs (forward y = x W^T,
 * input gradient dx = dy W, weight gradient dW = dy^T x), the rate in
 * GFLOP/s of OpenBLAS's sgemm with one thread and of the project's own
 * ss_sgemm (gemm.h; the runner's workers each multiply single-threaded),
 * M = --rows (a worker's samples x tokens); then a
 * large square sgemm (2048^3) as the machine's best case; a product whose
 * operands stay in cache (M 120, N 32, K 256: ss_sgemm's block of A and one
 * panel of B); the ceiling no kernel passes, a loop of independent
 * register-only FMAs with 512- and 256-bit vectors; then the FLOPs
 * of one DINO training sample (2 global views forward + backward, nlocal
 * local views forward + backward, 2 teacher forwards; linear layers and
 * attention products, 2 FLOPs per multiply-add, backward = 2 x forward).
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemm.h"
#include "runner.h"

#ifdef __AVX512F__
#include <immintrin.h>
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static float *randn(size_t n)
{
    float *p = malloc(sizeof(float) * n);
    if (!p) {
        fprintf(stderr, "gemm_rate: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

/* C (M,N) = op(A) op(B), repeated for `secs`, by OpenBLAS (own 0) or
 * ss_sgemm (own 1); GFLOP/s. */
static double rate(int own, int ta, int tb, int M, int N, int K, double secs)
{
    float *A = randn((size_t)M * K), *B = randn((size_t)K * N), *C = randn((size_t)M * N);
    int lda = ta ? M : K, ldb = tb ? K : N;
    long reps = -1;   /* the first call warms */
    double t0 = 0, t = 0;
    do {
        if (own)
            ss_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, reps < 0 ? 0.0f : 1.0f, C, N);
        else
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f,
                        A, lda, B, ldb, reps < 0 ? 0.0f : 1.0f, C, N);
        if (++reps == 0) t0 = now();
    } while (reps == 0 || (t = now() - t0) < secs);
    free(A); free(B); free(C);
    return 2.0 * M * N * K * reps / t / 1e9;
}

#ifdef __AVX512F__
/* GFLOP/s of 24 independent chains of register-only FMAs, 16-wide (zmm)
 * or 8-wide (ymm): what the FMA units do with no load in the way. One
 * function per width, made by FMA_RATE (the loops unroll into registers). */
#define FMA_RATE(NAME, V, SET1, FMADD, FIRST, LANES)                    \
    static double NAME(double secs)                                     \
    {                                                                   \
        V a[24], x = SET1(1.0000001f), y = SET1(1e-7f);                 \
        for (int i = 0; i < 24; i++) a[i] = SET1((float)i);             \
        long reps = 0;                                                  \
        double t0 = now(), t;                                           \
        do {                                                            \
            for (int r = 0; r < 100000; r++) {                          \
                _Pragma("GCC unroll 24") for (int i = 0; i < 24; i++)   \
                    a[i] = FMADD(a[i], x, y);                           \
            }                                                           \
            reps += 100000;                                             \
        } while ((t = now() - t0) < secs);                              \
        volatile float keep = 0;   /* the chains' results are used */   \
        for (int i = 0; i < 24; i++) keep += FIRST(a[i]);               \
        return 24.0 * 2 * LANES * reps / t / 1e9;                       \
    }
FMA_RATE(fma_rate_zmm, __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_cvtss_f32, 16)
FMA_RATE(fma_rate_ymm, __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_cvtss_f32, 8)
#endif

/* Forward multiply-adds of one view of n tokens through the blocks. */
static double view_macs(int n, int C, int L, double mlp)
{
    double H = mlp * C;
    return (double)L * n * (3.0 * C * C + C * C + 2.0 * C * H + 2.0 * n * C);
}

int main(int argc, char **argv)
{
    int C = 192, L = 6, n = 50, nl = 17, nlocal = 2, M = 1600;
    double mlp = 4, secs = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--dim")) C = atoi(v);
        else if (!strcmp(o, "--depth")) L = atoi(v);
        else if (!strcmp(o, "--mlp")) mlp = atof(v);
        else if (!strcmp(o, "--tokens")) n = atoi(v);
        else if (!strcmp(o, "--local-tokens")) nl = atoi(v);
        else if (!strcmp(o, "--nlocal")) nlocal = atoi(v);
        else if (!strcmp(o, "--rows")) M = atoi(v);
        else if (!strcmp(o, "--seconds")) secs = atof(v);
        else {
            fprintf(stderr, "gemm_rate: unknown option %s\n", o);
            return 2;
        }
    }
    if (C < 1 || L < 1 || n < 1 || M < 1 || mlp <= 0 || secs <= 0) {
        fprintf(stderr, "gemm_rate: bad sizes\n");
        return 2;
    }
    ss_blas_single_thread();
    int H = (int)(mlp * C);
    struct { const char *name; int in, out; } lin[] = {{"qkv", C, 3 * C}, {"proj", C, C}, {"fc1", C, H}, {"fc2", H, C}};
    printf("layer\tpass\tM\tN\tK\topenblas_gflops\tssta_gflops\n");
#define ROW(name, pass, ta, tb, m, nn, k) \
    printf("%s\t%s\t%d\t%d\t%d\t%.1f\t%.1f\n", name, pass, m, nn, k, rate(0, ta, tb, m, nn, k, secs), \
           rate(1, ta, tb, m, nn, k, secs))
    for (int i = 0; i < 4; i++) {
        int in = lin[i].in, out = lin[i].out;
        ROW(lin[i].name, "forward", 0, 1, M, out, in);
        ROW(lin[i].name, "dinput", 0, 0, M, in, out);
        ROW(lin[i].name, "dweight", 1, 0, out, in, M);
    }
    ROW("square", "forward", 0, 0, 2048, 2048, 2048);
    ROW("in-cache", "forward", 0, 0, 120, 32, 256);
#ifdef __AVX512F__
    printf("fma-only\tzmm\t-\t-\t-\t-\t%.1f\n", fma_rate_zmm(secs));
    printf("fma-only\tymm\t-\t-\t-\t-\t%.1f\n", fma_rate_ymm(secs));
#endif
    printf("# ss_sgemm: %s\n", ss_sgemm_impl());
    double g = view_macs(n, C, L, mlp), lo = view_macs(nl, C, L, mlp);
    double step = 2 * (2 * 3 * g + nlocal * 3 * lo + 2 * g);
    printf("# DINO sample (2 global x %d tokens, %d local x %d tokens, dim %d, depth %d): %.3f GFLOP "
           "(student global %.3f, local %.3f, teacher %.3f)\n",
           n, nlocal, nl, C, L, step / 1e9, 2 * 2 * 3 * g / 1e9, 2 * nlocal * 3 * lo / 1e9, 2 * 2 * g / 1e9);
    return 0;
}
