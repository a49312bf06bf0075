// The bf16 matrix product of the engine's bf16 path: C = alpha·op(A)·op(B) + beta·C with float32
// operands and result. Each operand is rounded to bfloat16 (round to nearest even) while it is
// packed; products accumulate in float32 over the whole of K, so only the inputs are rounded, as
// with TensorFlow's and PyTorch's bf16 autocast on CPU. Two kernels share the packed layouts:
//   - AMX tiles (Intel Sapphire Rapids and later): TDPBF16PS on 16×32 tiles;
//   - AVX512-BF16 vectors (AMD Zen 4 and Zen 5, Intel Cooper Lake): VDPBF16PS, which does twice
//     the multiply-adds of a float32 FMA per instruction, so these CPUs get the bf16 path too.
//
// One call is single-threaded, like the engine's OpenBLAS calls (every chunk of a batch runs its
// own GEMMs on its own thread). Packed layouts (bf16, K padded to a multiple of 32 with zeros):
//   A: 32-row blocks, each row Kp values: the tile rows of TDPBF16PS's first operand, and the
//      (k, k+1) pairs VDPBF16PS broadcasts;
//   B: 16-column panels, each Kp/2 rows of 16 (k, k+1) pairs: the "VNNI" layout of TDPBF16PS's
//      second operand, and one zmm register of VDPBF16PS's per pair row.
// The AMX C block of one step is 32×32: four accumulator tiles fed by two A and two B tiles.
#include "ckernels.h"

#include <stdlib.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
#define TARGET_VEC __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16")))

int ser_bf16_kernel_supported(void) {
    static int state = -1;  // -1: not asked yet; set once, before any thread uses it (Precision.swift)
    if (state >= 0) return state;
    unsigned a, b, c, d;
    state = SER_BF16_NONE;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return state;
    int avx512 = (b >> 16) & (b >> 17) & (b >> 30) & (b >> 31) & 1;  // F, DQ, BW, VL
    int amx = (d >> 22) & (d >> 24) & 1;                              // AMX-BF16, AMX-TILE
    unsigned a1, b1, c1, d1;
    if (!__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) return state;
    int avx512bf16 = (a1 >> 5) & 1;
    if (!(avx512 && avx512bf16)) return state;
    state = SER_BF16_VECTOR;
    // Linux hands out the 8 KB of tile state per process on request (kernel 5.16 and later).
    if (amx && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0) state = SER_BF16_AMX;
    return state;
}

// The kernel ser_sgemm_bf16 runs: the best supported, unless ser_bf16_use_kernel chose another.
static int chosen = -1;

int ser_bf16_kernel(void) {
    if (chosen < 0) chosen = ser_bf16_kernel_supported();
    return chosen;
}

int ser_bf16_use_kernel(int kernel) {
    int best = ser_bf16_kernel_supported();
    if (kernel < SER_BF16_NONE || kernel > best) return 0;
    chosen = kernel;
    return 1;
}

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

// (lo[i], hi[i]) pairs: the bf16 of a row k (lo) and of row k+1 (hi) side by side, one dword each.
TARGET_VEC static inline __m512i pairs(__m512 lo, __m512 hi) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // lo in elements 0–15, hi in 16–31
    return _mm512_permutexvar_epi16(idx, both);
}

// 32 floats of a row (the first n valid, the rest zero) as 32 bf16.
TARGET_VEC static inline __m512i row32(const float *p, long n) {
    __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1);
    long n1 = n - 16;
    __mmask16 m1 = n1 >= 16 ? 0xFFFF : (__mmask16)((1u << (n1 > 0 ? n1 : 0)) - 1);
    __m512 lo = _mm512_maskz_loadu_ps(m0, p), hi = _mm512_maskz_loadu_ps(m1, p + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

TARGET_VEC static inline __m512 load16(const float *p, long n) {
    __mmask16 m = n >= 16 ? 0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1);
    return _mm512_maskz_loadu_ps(m, p);
}

// Transposes a 16×16 matrix of dwords held in r[0..15] (row i in r[i]).
TARGET_VEC static inline void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // s[4g + c], lane L: column 4L + c of rows 4g … 4g+3.
    for (int g = 0; g < 4; g++) {
        r[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
        r[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
        r[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        r[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    // A 4×4 transpose of 128-bit lanes for each c.
    for (int c = 0; c < 4; c++) {
        __m512i a = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x44), b = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xEE);
        __m512i e = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x44), f = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xEE);
        t[c] = _mm512_shuffle_i32x4(a, e, 0x88);
        t[4 + c] = _mm512_shuffle_i32x4(a, e, 0xDD);
        t[8 + c] = _mm512_shuffle_i32x4(b, f, 0x88);
        t[12 + c] = _mm512_shuffle_i32x4(b, f, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

// Rows m0 … m0+mb−1 of op(A) (mb ≤ 32) into a 32 × kp block; rows past mb are zero.
TARGET_VEC static void pack_a(int trans, const float *A, long lda, long m0, long mb, long k, long kp, uint16_t *out) {
    if (!trans) {
        for (long i = 0; i < 32; i++) {
            uint16_t *o = out + i * kp;
            if (i >= mb) { memset(o, 0, (size_t)kp * 2); continue; }
            const float *row = A + (m0 + i) * lda;
            for (long k0 = 0; k0 < kp; k0 += 32) _mm512_storeu_si512((void *)(o + k0), row32(row + k0, k - k0));
        }
        return;
    }
    // A is stored k × m: pair rows (k, k+1), then transpose 16 × 16 dwords into 16 rows of 32 k.
    for (long h = 0; h < 2; h++) {
        long valid = mb - 16 * h;
        for (long k0 = 0; k0 < kp; k0 += 32) {
            __m512i r[16];
            for (int p = 0; p < 16; p++) {
                long ka = k0 + 2 * p, kb = ka + 1;
                const float *base = A + m0 + 16 * h;
                __m512 lo = ka < k && valid > 0 ? load16(base + ka * lda, valid) : _mm512_setzero_ps();
                __m512 hi = kb < k && valid > 0 ? load16(base + kb * lda, valid) : _mm512_setzero_ps();
                r[p] = pairs(lo, hi);
            }
            transpose16(r);
            for (int i = 0; i < 16; i++) _mm512_storeu_si512((void *)(out + (16 * h + i) * kp + k0), r[i]);
        }
    }
}

// op(B) (k × n) into 16-column panels of kp/2 pair rows; columns past n are zero.
TARGET_VEC static void pack_b(int trans, const float *B, long ldb, long k, long n, long kp, long np, uint16_t *out) {
    if (!trans) {
        // Row pairs outermost: B is read in order (a panel-first walk reads with a stride of
        // whole rows, which maps every line to the same few L1 sets).
        for (long p = 0; p < kp / 2; p++) {
            long ka = 2 * p, kb = ka + 1;
            for (long n0 = 0; n0 < np; n0 += 16) {
                long valid = n - n0;
                __m512 lo = ka < k && valid > 0 ? load16(B + ka * ldb + n0, valid) : _mm512_setzero_ps();
                __m512 hi = kb < k && valid > 0 ? load16(B + kb * ldb + n0, valid) : _mm512_setzero_ps();
                _mm512_storeu_si512((void *)(out + n0 * kp + p * 32), pairs(lo, hi));
            }
        }
        return;
    }
    for (long n0 = 0; n0 < np; n0 += 16) {
        uint16_t *panel = out + n0 * kp;
        long valid = n - n0;
        // B is stored n × k: a row of B's storage is already k-contiguous pairs; transpose 16 × 16.
        for (long k0 = 0; k0 < kp; k0 += 32) {
            __m512i r[16];
            for (int j = 0; j < 16; j++) r[j] = j < valid ? row32(B + (n0 + j) * ldb + k0, k - k0) : _mm512_setzero_si512();
            transpose16(r);
            for (int p = 0; p < 16; p++) _mm512_storeu_si512((void *)(panel + (k0 / 2 + p) * 32), r[p]);
        }
    }
}

// Per-thread scratch for the packed operands, grown as needed and kept for the next call.
static __thread uint16_t *scratch = NULL;
static __thread size_t scratch_count = 0;

// Room for op(B) packed whole and one 32-row block of op(A).
static uint16_t *packing_scratch(long kp, long np) {
    size_t need = (size_t)(np + 32) * (size_t)kp;
    if (need > scratch_count) {
        free(scratch);
        scratch = aligned_alloc(64, ((need * 2 + 63) / 64) * 64);
        scratch_count = need;
    }
    return scratch;
}

TARGET static void gemm_amx(int transA, int transB, long m, long n, long k, float alpha, const float *A, long lda,
                            const float *B, long ldb, float beta, float *C, long ldc) {
    long kp = (k + 31) & ~31L, np = (n + 31) & ~31L;
    uint16_t *bp = packing_scratch(kp, np), *ap = bp + np * kp;
    pack_b(transB, B, ldb, k, n, kp, np, bp);

    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
    float tmp[32 * 32] __attribute__((aligned(64)));
    const long as = kp * 2;  // A tile row stride in bytes
    for (long m0 = 0; m0 < m; m0 += 32) {
        long mb = m - m0 < 32 ? m - m0 : 32;
        pack_a(transA, A, lda, m0, mb, k, kp, ap);
        for (long j = 0; j < np; j += 32) {
            long nb = n - j < 32 ? n - j : 32;
            float *c = C + m0 * ldc + j;
            int direct = mb == 32 && nb == 32 && alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
            if (direct && beta == 1.0f) {
                _tile_loadd(0, c, ldc * 4);
                _tile_loadd(1, c + 16, ldc * 4);
                _tile_loadd(2, c + 16 * ldc, ldc * 4);
                _tile_loadd(3, c + 16 * ldc + 16, ldc * 4);
            } else {
                _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
            }
            const uint16_t *b0 = bp + j * kp, *b1 = bp + (j + 16) * kp;
            for (long k0 = 0; k0 < kp; k0 += 32) {
                _tile_loadd(4, ap + k0, as);
                _tile_loadd(5, ap + 16 * kp + k0, as);
                _tile_loadd(6, b0 + k0 * 16, 64);
                _tile_loadd(7, b1 + k0 * 16, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            if (direct) {
                _tile_stored(0, c, ldc * 4);
                _tile_stored(1, c + 16, ldc * 4);
                _tile_stored(2, c + 16 * ldc, ldc * 4);
                _tile_stored(3, c + 16 * ldc + 16, ldc * 4);
                continue;
            }
            _tile_stored(0, tmp, 128);
            _tile_stored(1, tmp + 16, 128);
            _tile_stored(2, tmp + 16 * 32, 128);
            _tile_stored(3, tmp + 16 * 32 + 16, 128);
            for (long i = 0; i < mb; i++) {
                float *ci = c + i * ldc;
                const float *ti = tmp + i * 32;
                if (beta == 0.0f) {
                    for (long jj = 0; jj < nb; jj++) ci[jj] = alpha * ti[jj];
                } else {
                    for (long jj = 0; jj < nb; jj++) ci[jj] = alpha * ti[jj] + beta * ci[jj];
                }
            }
        }
    }
    _tile_release();
}

// One register block of the vector kernel: MR rows of a packed A block × 32 columns (two B
// panels), over the pair rows p0 … p1−1. The first K block writes C = beta·C + alpha·AB, later
// ones add alpha·AB to it, so every block starts from zero accumulators (24 of the 32 registers
// at MR = 12, plus the two B rows and a broadcast).
TARGET_VEC static inline __attribute__((always_inline)) void vec_block(const int MR, const uint16_t *a, long kp,
        const uint16_t *b0, const uint16_t *b1, long p0, long p1, float *c, long ldc, long nb, float alpha,
        float beta, int first) {
    __m512 acc0[12], acc1[12];
    for (int r = 0; r < MR; r++) { acc0[r] = _mm512_setzero_ps(); acc1[r] = _mm512_setzero_ps(); }
    for (long p = p0; p < p1; p++) {
        __m512bh x0 = (__m512bh)_mm512_loadu_si512((const void *)(b0 + p * 32));
        __m512bh x1 = (__m512bh)_mm512_loadu_si512((const void *)(b1 + p * 32));
        for (int r = 0; r < MR; r++) {
            int32_t pair;
            memcpy(&pair, a + r * kp + 2 * p, 4);
            __m512bh y = (__m512bh)_mm512_set1_epi32(pair);
            acc0[r] = _mm512_dpbf16_ps(acc0[r], y, x0);
            acc1[r] = _mm512_dpbf16_ps(acc1[r], y, x1);
        }
    }
    __mmask16 m0 = nb >= 16 ? 0xFFFF : (__mmask16)((1u << nb) - 1);
    __mmask16 m1 = nb >= 32 ? 0xFFFF : nb <= 16 ? 0 : (__mmask16)((1u << (nb - 16)) - 1);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        __m512 v0 = alpha == 1.0f ? acc0[r] : _mm512_mul_ps(va, acc0[r]);
        __m512 v1 = alpha == 1.0f ? acc1[r] : _mm512_mul_ps(va, acc1[r]);
        if (!first) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
        } else if (beta != 0.0f) {  // beta = 0 never reads C, which may hold NaN
            v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), v0);
            v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), v1);
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

// K is cut into blocks of this many values so that a block's two B panels (16 KB) and the A
// rows it meets stay in L1 while every row block of the 32-row A block passes over them.
#define VEC_KC 256L

TARGET_VEC static void gemm_vec(int transA, int transB, long m, long n, long k, float alpha, const float *A, long lda,
                                const float *B, long ldb, float beta, float *C, long ldc) {
    long kp = (k + 31) & ~31L, np = (n + 31) & ~31L;
    uint16_t *bp = packing_scratch(kp, np), *ap = bp + np * kp;
    pack_b(transB, B, ldb, k, n, kp, np, bp);
    for (long m0 = 0; m0 < m; m0 += 32) {
        long mb = m - m0 < 32 ? m - m0 : 32;
        pack_a(transA, A, lda, m0, mb, k, kp, ap);
        for (long k0 = 0; k0 < kp; k0 += VEC_KC) {
            long p0 = k0 / 2, p1 = (k0 + VEC_KC < kp ? k0 + VEC_KC : kp) / 2;
            int first = k0 == 0;
            for (long j = 0; j < np; j += 32) {
                long nb = n - j < 32 ? n - j : 32;
                const uint16_t *b0 = bp + j * kp, *b1 = bp + (j + 16) * kp;
                for (long r0 = 0; r0 < mb; r0 += 12) {
                    long rows = mb - r0 < 12 ? mb - r0 : 12;
                    const uint16_t *a = ap + r0 * kp;
                    float *c = C + (m0 + r0) * ldc + j;
                    // Constant row counts, so that each case keeps its accumulators in registers.
                    switch (rows) {
#define ROWS(R) case R: vec_block(R, a, kp, b0, b1, p0, p1, c, ldc, nb, alpha, beta, first); break;
                        ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) ROWS(6)
                        ROWS(7) ROWS(8) ROWS(9) ROWS(10) ROWS(11) ROWS(12)
#undef ROWS
                    }
                }
            }
        }
    }
}

void ser_sgemm_bf16(int transA, int transB, long m, long n, long k, float alpha, const float *A, long lda,
                    const float *B, long ldb, float beta, float *C, long ldc) {
    if (m <= 0 || n <= 0) return;
    switch (ser_bf16_kernel()) {
    case SER_BF16_AMX: gemm_amx(transA, transB, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc); return;
    case SER_BF16_VECTOR: gemm_vec(transA, transB, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc); return;
    default: abort();  // unreachable: callers check ser_bf16_kernel() first
    }
}

#else
int ser_bf16_kernel_supported(void) { return SER_BF16_NONE; }
int ser_bf16_kernel(void) { return SER_BF16_NONE; }
int ser_bf16_use_kernel(int kernel) { return kernel == SER_BF16_NONE; }
void ser_sgemm_bf16(int transA, int transB, long m, long n, long k, float alpha, const float *A, long lda,
                    const float *B, long ldb, float beta, float *C, long ldc) {
    (void)transA; (void)transB; (void)m; (void)n; (void)k; (void)alpha; (void)A; (void)lda;
    (void)B; (void)ldb; (void)beta; (void)C; (void)ldc;
    abort();  // unreachable: callers check ser_bf16_kernel() first
}
#endif
