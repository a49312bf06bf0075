// Kernels written in C because they must vectorise whatever the Swift optimiser decides:
// the transforms of Winograd F(4×4, 3×3) (Lavin & Gray 2016) and the direct memory-bound layers,
// for float and double; and the bf16 matrix product (AMX tiles or AVX512-BF16).
//
// Maps are NHWC. A tile (ti, tj) of one sample covers output rows 4·ti … 4·ti+3 and columns
// 4·tj … 4·tj+3 and reads the 6×6 input patch starting one row and one column earlier (SAME
// padding: positions outside the map read `zeros`, a row of at least c zeros). Transformed
// tiles are laid out [position 0..35][channel], positions row-major over the 6×6 transform.
#ifndef SER_CKERNELS_H
#define SER_CKERNELS_H

#define SER_WINO4_DECLARE(T, S)                                                                     \
    /* V = Bᵀ d B for the tile's 6×6 input patch: out is 36·c. */                                  \
    void ser_wino4_input_##S(const T *x, long h, long w, long c, long ti, long tj,                  \
                             const T *zeros, T *out);                                               \
    /* Y = Aᵀ M A (+ bias, ReLU) for the tile, written into y (one sample, h×w×c). */              \
    void ser_wino4_output_##S(const T *m, T *y, long h, long w, long c, long ti, long tj,           \
                              const T *bias, int relu);                                             \
    /* Z = A dY Aᵀ for the tile's 4×4 block of the output gradient: out is 36·c. */                \
    void ser_wino4_gradient_##S(const T *dy, long h, long w, long c, long ti, long tj, T *out);     \
    /* U = G g Gᵀ for input channel ci of a kernel g: (3, 3, cin, cout) into u: [36][cin][cout];   \
       with rotate, g is turned 180° (the input gradient's kernel, used transposed). */             \
    void ser_wino4_kernel_##S(const T *g, T *u, long cin, long cout, long ci, int rotate);          \
    /* dg = Gᵀ Ŵ G for input channel ci: acc [36][cin][cout] into dg (3, 3, cin, cout). */          \
    void ser_wino4_kernel_gradient_##S(const T *acc, T *dg, long cin, long cout, long ci);

SER_WINO4_DECLARE(float, f32)
SER_WINO4_DECLARE(double, f64)
#undef SER_WINO4_DECLARE

#define SER_DIRECT_DECLARE(T, S)                                                                    \
    /* y = conv3×3(x) + bias (ReLU if relu), one sample, x (h, w, 1), k (3, 3, 1, cout), SAME. */   \
    void ser_conv3x3_c1_forward_##S(const T *x, const T *k, const T *bias, T *y, long h, long w,    \
                                    long cout, int relu);                                           \
    /* dk += Σ window(x) ⊗ dy over one sample's positions. */                                      \
    void ser_conv3x3_c1_backward_weights_##S(const T *x, const T *dy, T *dk, long h, long w, long cout); \
    /* 2×2 / 2 max pool of one sample (h, w, c) → (h/2, w/2, c). */                                \
    /* With idx (may be NULL): where each maximum came from, 4 = no gradient (ReLU). */              \
    void ser_maxpool2_forward_##S(const T *x, T *y, unsigned char *idx, long h, long w, long c,      \
                                  int relu);                                                        \
    /* Its backward from those indices; dx (h, w, c) is overwritten. */                              \
    void ser_maxpool2_backward_##S(const T *dy, const unsigned char *idx, T *dx, long h, long w,     \
                                   long c);

SER_DIRECT_DECLARE(float, f32)
SER_DIRECT_DECLARE(double, f64)
#undef SER_DIRECT_DECLARE

#define SER_BN_DECLARE(T, S)                                                                        \
    void ser_bn_sums_squares_##S(const T *x, long positions, long channels, double *out);           \
    void ser_bn_apply_##S(const T *x, T *y, const T *mean, const T *istd, const T *gamma,          \
                          const T *beta, long rows, long channels, int relu);                       \
    void ser_bn_backward_sums_##S(T *dy, const T *x, const T *mean, const T *istd, const T *gamma,  \
                                  const T *beta, long positions, long channels, double *out);       \
    void ser_bn_backward_data_##S(const T *dy, const T *x, T *dx, const T *a, const T *b,          \
                                  const T *k, long rows, long channels);

SER_BN_DECLARE(float, f32)
SER_BN_DECLARE(double, f64)
#undef SER_BN_DECLARE

// Adam's update over n parameters (adam.inc); prev (may be NULL) receives the old values.
#define SER_ADAM_DECLARE(T, S)                                                                      \
    void ser_adam_update_##S(T *p, const T *g, T *m, T *v, T *prev, long n, T b1, T b2, T c1, T c2,  \
                             T lr, T eps);
SER_ADAM_DECLARE(float, f32)
SER_ADAM_DECLARE(double, f64)
#undef SER_ADAM_DECLARE

// The bf16 path's matrix product (gemm_bf16.c) and its kernels, best last.
#define SER_BF16_NONE 0
#define SER_BF16_VECTOR 1 /* AVX512-BF16 VDPBF16PS (AMD Zen 4/5, Intel Cooper Lake and later) */
#define SER_BF16_AMX 2    /* AMX-BF16 tiles (Intel Sapphire Rapids and later, Linux 5.16+) */
// The best kernel this CPU and OS run (asks Linux for the tile state once). Call once before
// any thread multiplies.
int ser_bf16_kernel_supported(void);
// The kernel ser_sgemm_bf16 uses: the best supported unless ser_bf16_use_kernel chose another.
int ser_bf16_kernel(void);
// Chooses a supported kernel (to compare or test them); 0 when this CPU cannot run it.
int ser_bf16_use_kernel(int kernel);
/* C = alpha·op(A)·op(B) + beta·C, row-major, op(A) m×k, op(B) k×n; A and B rounded to bf16,
   float32 accumulation. Single-threaded; only when ser_bf16_kernel() is not SER_BF16_NONE. */
void ser_sgemm_bf16(int transA, int transB, long m, long n, long k, float alpha, const float *A, long lda,
                    const float *B, long ldb, float beta, float *C, long ldc);

#endif
