/* gemm.h — the single-precision matrix product the ViT kernels use.
 *
 *   C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C      (row-major)
 *
 * op(X) is X when its flag is 0 and X^T when it is 1; lda, ldb, ldc are the
 * row strides of the arrays as stored (A is (M,K) or, transposed, (K,M)).
 * beta 0 overwrites C without reading it (NaN in C does not survive).
 *
 * Built with AVX-512F (-march=native on such a CPU) this is the project's
 * own blocked product (gemm.c): op(B) packed into 32-column panels, A read
 * in place, a 12 x 32 register tile; every output element is summed over k
 * in increasing order within slices of 256 and the slices in order, so its
 * value depends on its row of op(A), its column of op(B), K, alpha, beta
 * and its old value only — not on the other rows and columns in the call,
 * nor on threads or timing. This machine's OpenBLAS must run its Haswell
 * (AVX2) kernels (DESIGN.md), which reach half of what the cores' 512-bit
 * FMA units do; docs/engine.md has the figures. Without AVX-512F, or built
 * with -DSS_GEMM_BLAS, it is cblas_sgemm (which makes no such promise
 * about rows).
 *
 * Single-threaded: the callers split batches across workers (runner.h).
 * Packing buffers are per thread (static thread-local storage); the call
 * neither allocates nor fails. */
#ifndef SS_GEMM_H
#define SS_GEMM_H

void ss_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);

/* C (M,N) = op(A) op(B) + bias, bias (N) added to every row; C is not
 * read. The same sums as ss_sgemm with alpha 1 into a C holding the bias
 * rows (beta 1), without writing those rows first. */
void ss_sgemm_bias(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B,
                   int ldb, const float *bias, float *C, int ldc);

/* The same contract computed naively in double (tests). */
void ss_sgemm_ref(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);

/* "avx512" or "openblas": which implementation ss_sgemm is (benchmarks
 * print it). */
const char *ss_sgemm_impl(void);

#endif
