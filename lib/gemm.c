/* gemm.c — ss_sgemm (contract in gemm.h).
 *
 * The blocked product of Goto and van de Geijn ("Anatomy of high-performance
 * matrix multiplication", 2008), as BLIS lays it out: for each NC-column
 * block of C and KC-deep slice of k, op(B) is packed into NR-wide column
 * panels (zero past the last column); the kernel multiplies MR rows of
 * op(A) by one panel into an MR x NR tile held in 24 zmm registers. A B
 * panel (KC x NR floats, 32 KiB) stays in L1 while the kernel walks down
 * MC rows of A (MC x KC floats, 120 KiB, in L2). A is read where it lies,
 * not packed: only the last rows of an M that is not a multiple of MR go
 * through a zero-padded panel. Columns past N are masked at the store. */
#include "gemm.h"

#include <cblas.h>
#include <string.h>

void ss_sgemm_ref(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
            }
            float *c = C + (size_t)i * ldc + j;
            *c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}

#if defined(__AVX512F__) && !defined(SS_GEMM_BLAS)

#include <immintrin.h>

enum { MR = 12, NR = 32, KC = 256, MC = 10 * MR, NC = 16 * NR };

static _Thread_local _Alignas(64) float Apack[MR * KC];   /* one edge panel */
static _Thread_local _Alignas(64) float Bpack[KC * NC];

const char *ss_sgemm_impl(void) { return "avx512"; }

/* The lanes of the two 16-float halves of a 32-column row that hold the
 * first w columns (w <= 32). */
static inline void col_masks(int w, __mmask16 *m0, __mmask16 *m1)
{
    *m0 = w >= 16 ? 0xFFFF : (__mmask16)((1u << w) - 1);
    *m1 = w >= 32 ? 0xFFFF : w > 16 ? (__mmask16)((1u << (w - 16)) - 1) : 0;
}

/* op(B)[k0.., j0..] (kc x nc) into panels of NR columns: panel p holds
 * element (k, j0 + p*NR + jj) at p*kc*NR + k*NR + jj, zero past nc. */
static void pack_b(float *dst, const float *B, int ldb, int tb, int k0, int j0, int kc, int nc)
{
    for (int jp = 0; jp < nc; jp += NR) {
        float *d = dst + (size_t)jp * kc;
        __mmask16 m0, m1;
        col_masks(nc - jp < NR ? nc - jp : NR, &m0, &m1);
        if (!tb) {
            for (int k = 0; k < kc; k++) {
                const float *s = B + (size_t)(k0 + k) * ldb + j0 + jp;
                _mm512_store_ps(d + (size_t)k * NR, _mm512_maskz_loadu_ps(m0, s));
                _mm512_store_ps(d + (size_t)k * NR + 16, _mm512_maskz_loadu_ps(m1, s + 16));
            }
        } else {   /* B stored (N,K): column j of op(B) is row j of B; gather 16 rows at a time
                      (32-bit offsets: 15 ldb must fit in an int) */
            __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                             _mm512_set1_epi32(ldb));
            const float *s0 = B + (size_t)(j0 + jp) * ldb + k0, *s1 = m1 ? s0 + (size_t)16 * ldb : s0;
            for (int k = 0; k < kc; k++) {
                _mm512_store_ps(d + (size_t)k * NR,
                                _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m0, idx, s0 + k, 4));
                _mm512_store_ps(d + (size_t)k * NR + 16,
                                _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m1, idx, s1 + k, 4));
            }
        }
    }
}

/* Rows i0 .. i0+h-1 (h < MR) of op(A), columns k0 .. k0+kc-1, into one
 * panel: element (i0 + r, k) at k*MR + r, rows h .. MR-1 zero. */
static void pack_a_edge(float *d, const float *A, int lda, int ta, int i0, int k0, int h, int kc)
{
    if (!ta) {
        for (int r = 0; r < MR; r++) {
            if (r < h) {
                const float *s = A + (size_t)(i0 + r) * lda + k0;
                for (int k = 0; k < kc; k++) d[(size_t)k * MR + r] = s[k];
            } else {
                for (int k = 0; k < kc; k++) d[(size_t)k * MR + r] = 0.0f;
            }
        }
    } else {   /* the h values of one k are contiguous: a masked load, a 12-wide store */
        __mmask16 m = (__mmask16)((1u << h) - 1);
        for (int k = 0; k < kc; k++)
            _mm512_mask_storeu_ps(d + (size_t)k * MR, 0x0FFF,
                                  _mm512_maskz_loadu_ps(m, A + (size_t)(k0 + k) * lda + i0));
    }
}

/* One row of the tile into C: alpha*acc, plus C (accumulating), or, on the
 * first k slice, plus bias (a row vector, when given) or beta*C; beta 0
 * there does not read C. */
static inline __attribute__((always_inline)) void store_row(float *c, const float *bias, __m512 v0, __m512 v1,
                                                             __mmask16 m0, __mmask16 m1, __m512 va, float beta,
                                                             int first)
{
    __m512 o0, o1;
    if (!first) {
        o0 = _mm512_maskz_loadu_ps(m0, c);
        o1 = _mm512_maskz_loadu_ps(m1, c + 16);
    } else if (bias) {
        o0 = _mm512_maskz_loadu_ps(m0, bias);
        o1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    } else if (beta == 0.0f) {
        _mm512_mask_storeu_ps(c, m0, _mm512_mul_ps(va, v0));
        if (m1) _mm512_mask_storeu_ps(c + 16, m1, _mm512_mul_ps(va, v1));
        return;
    } else {
        __m512 vb = _mm512_set1_ps(beta);
        o0 = _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m0, c));
        o1 = _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16));
    }
    _mm512_mask_storeu_ps(c, m0, _mm512_fmadd_ps(va, v0, o0));
    if (m1) _mm512_mask_storeu_ps(c + 16, m1, _mm512_fmadd_ps(va, v1, o1));
}

/* The MR x NR tile: acc(i, j) = sum over k, in order, of op(A)(i, k) *
 * b[k*NR + j], then into C (mr x nr of it are real). Two ways to read A:
 * kernel_cols takes the 12 values of one k contiguous, the next k `as`
 * floats further (a packed panel: as = MR; A stored transposed: as = lda);
 * kernel_rows takes the 12 rows of A as stored (row i at a + i*lda, k
 * contiguous), which needs no packing: a whole tile's rows are read
 * straight from the caller's matrix. */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define DECL(i) __m512 c##i##a = _mm512_setzero_ps(), c##i##b = _mm512_setzero_ps();
#define STEP(i)                                        \
    {                                                  \
        __m512 ai = _mm512_set1_ps(FETCH(i));          \
        c##i##a = _mm512_fmadd_ps(ai, b0, c##i##a);    \
        c##i##b = _mm512_fmadd_ps(ai, b1, c##i##b);    \
    }
#define STORE(i) \
    if (i < mr) store_row(C + (size_t)i * ldc, bias, c##i##a, c##i##b, m0, m1, va, beta, first);
#define EPILOGUE                       \
    __mmask16 m0, m1;                  \
    col_masks(nr, &m0, &m1);           \
    __m512 va = _mm512_set1_ps(alpha); \
    ROWS(STORE)

static void kernel_cols(int kc, const float *restrict a, size_t as, const float *restrict b, float *C, int ldc,
                        int mr, int nr, float alpha, float beta, const float *bias, int first)
{
#define FETCH(i) a[i]
    ROWS(DECL)
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        ROWS(STEP)
        a += as;
        b += NR;
    }
    EPILOGUE
#undef FETCH
}

static void kernel_rows(int kc, const float *restrict a, size_t lda, const float *restrict b, float *C, int ldc,
                        int mr, int nr, float alpha, float beta, const float *bias, int first)
{
    /* four base pointers, each with rows +0, +lda, +2 lda: x86 addressing
     * reaches all 12 with one index register */
    const float *p0 = a, *p3 = a + 3 * lda, *p6 = a + 6 * lda, *p9 = a + 9 * lda;
#define FETCH(i) ((i) < 3 ? p0 : (i) < 6 ? p3 : (i) < 9 ? p6 : p9)[((i) % 3) * lda]
    ROWS(DECL)
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        ROWS(STEP)
        p0++, p3++, p6++, p9++;
        b += NR;
    }
    EPILOGUE
#undef FETCH
}
#undef ROWS
#undef DECL
#undef STEP
#undef STORE
#undef EPILOGUE

static void gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, const float *bias, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {   /* C = beta C, or bias */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float *c = C + (size_t)i * ldc + j;
                *c = bias ? bias[j] : beta == 0.0f ? 0.0f : beta * *c;
            }
        return;
    }
    float *Ap = Apack, *Bp = Bpack;
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC, first = pc == 0;
            pack_b(Bp, B, ldb, tb, pc, jc, kc, nc);
            for (int ic = 0; ic < M; ic += MC) {   /* MC rows of A at a time: they stay in L2 */
                int mc = M - ic < MC ? M - ic : MC;
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    const float *bp = Bp + (size_t)jr * kc;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR, i = ic + ir;
                        float *Ct = C + (size_t)i * ldc + jc + jr;
                        const float *bj = bias ? bias + jc + jr : NULL;
                        if (mr < MR) {   /* the last rows: a zero-padded panel */
                            pack_a_edge(Ap, A, lda, ta, i, pc, mr, kc);
                            kernel_cols(kc, Ap, MR, bp, Ct, ldc, mr, nr, alpha, beta, bj, first);
                        } else if (ta) {
                            kernel_cols(kc, A + (size_t)pc * lda + i, (size_t)lda, bp, Ct, ldc, mr, nr, alpha, beta,
                                        bj, first);
                        } else {
                            kernel_rows(kc, A + (size_t)i * lda + pc, (size_t)lda, bp, Ct, ldc, mr, nr, alpha, beta,
                                        bj, first);
                        }
                    }
                }
            }
        }
    }
}

void ss_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc)
{
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, NULL, C, ldc);
}

void ss_sgemm_bias(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   const float *bias, float *C, int ldc)
{
    gemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, bias, C, ldc);
}

#else

const char *ss_sgemm_impl(void) { return "openblas"; }

void ss_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

void ss_sgemm_bias(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   const float *bias, float *C, int ldc)
{
    for (int i = 0; i < M; i++) memcpy(C + (size_t)i * ldc, bias, (size_t)N * sizeof(float));
    ss_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C, ldc);
}

#endif
