// Kernels written in C because they must vectorise whatever the Swift optimiser decides:
// the transforms of Winograd F(4×4, 3×3) (Lavin & Gray 2016), for float and double.
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

#endif
