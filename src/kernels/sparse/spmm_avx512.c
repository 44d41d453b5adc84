/* AVX-512 sparse microkernels: a tile of up to 4 vectors (64 pixels; 8 for blocks of one output
 * channel) per block of 1, 2 or 4 output channels, accumulating packed nonzeros in registers; and a
 * gather-based sparse matrix × vector.
 * A tile whose last vector has at most 8 pixels that matter (3×3 on 7×7 in phase planes: 56
 * pixels) loads that vector as 32 bytes (`half`): a 64-byte load that spans two cache lines costs
 * two L1 accesses, and most of these taps' loads start within a line's first half. 512×512 at
 * 80-95 %: 0.85-0.92 of the time (one process, both in turn). */
#include "kernels/sparse/spmm.h"
#ifdef FC_HAVE_X86_KERNELS
#include <immintrin.h>
#include "kernels/sparse/spmm_avx512_store.h"

#define TGT __attribute__((target("avx512f,prfchw")))
#define INL static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")
/* vector t of a tile's input row; the last one masked when XM (no read past the row's end), or
 * only its low 8 lanes read when HF (the upper ones zero) */
#define XLOAD(p, t)                                                                                \
  (XM && (t) == NV - 1   ? _mm512_maskz_loadu_ps(mlast, (p) + 16 * (t))                            \
   : HF && (t) == NV - 1 ? _mm512_zextps256_ps512(_mm256_loadu_ps((p) + 16 * (t)))                 \
                         : _mm512_loadu_ps((p) + 16 * (t)))

/* R rows per block, NV vectors per tile: both compile-time constants after inlining, so the
 * accumulators live in registers (R·NV ≤ 16 of the 32 zmm). */
INL TGT void tile_kernel(const fc_spmm_args *a, const int R, const int NV, const int XM, const int HF) {
  const float *v = a->vals;
  const int32_t *o = a->offs;
  const float *x = a->x;
  const __mmask16 mlast = (__mmask16)((1u << a->rem) - 1u);
  const __m512 vlo = _mm512_set1_ps(a->lo), vhi = _mm512_set1_ps(a->hi);
  /* the prefetch walks pf_rows × pf_lines lines, a fixed-point share per block (no divisions) */
  const int64_t pfl = a->pf ? a->pf_rows * a->pf_lines : 0;
  const int64_t pstep = a->npairs ? (pfl << 16) / a->npairs + 1 : 0;
  int64_t pacc = 0, pj = 0, pcol = 0;
  const char *prow = (const char *)a->pf;
  for (int64_t i = 0; i < a->npairs; i++) {
    const int64_t co = a->pair_co[i];
    const int32_t n = a->pair_n[i];
    if (pfl) {
      pacc += pstep;
      int64_t pe = pacc >> 16;
      if (pe > pfl) pe = pfl;
      for (; pj < pe; pj++) {
        _mm_prefetch(prow + pcol * 64, _MM_HINT_T1);
        if (++pcol == a->pf_lines) pcol = 0, prow += a->pf_stride * (int64_t)sizeof(float);
      }
    }
    if (a->final && a->out_next) { /* the next tile's output and residual lines, ahead of their stores */
      UNROLL for (int r = 0; r < R; r++) {
        const float *np = a->out + (co + r) * a->out_stride + a->out_next;
        UNROLL for (int t = 0; t < NV; t++) _mm_prefetch((const char *)(np + 16 * t), _MM_HINT_ET0);
        if (a->res) {
          const float *rp = a->res + (co + r) * a->res_stride + a->out_next;
          UNROLL for (int t = 0; t < NV; t++) _mm_prefetch((const char *)(rp + 16 * t), _MM_HINT_T0);
        }
      }
    }
    __m512 c[4][8], d[8];
    UNROLL for (int r = 0; r < R; r++) {
      if (a->init) {
        __m512 b = _mm512_set1_ps(a->bias ? a->bias[co + r] : 0.0f);
        UNROLL for (int t = 0; t < NV; t++) c[r][t] = b;
      } else {
        const float *ap = a->acc + (co + r) * a->acc_stride;
        UNROLL for (int t = 0; t < NV; t++) c[r][t] = _mm512_loadu_ps(ap + 16 * t);
      }
    }
    UNROLL for (int t = 0; t < NV; t++) d[t] = _mm512_setzero_ps();
    int32_t k = 0;
    if (R == 1) {
      /* under 8 vectors, two nonzeros per step into two accumulator sets (2·NV independent FMA
       * chains); from 8 on the NV chains cover the latency: one nonzero per step, as the shift kernel */
      for (; NV < 8 && k + 1 < n; k += 2) {
        const __m512 w0 = _mm512_set1_ps(v[k]), w1 = _mm512_set1_ps(v[k + 1]);
        const float *p0 = x + o[k], *p1 = x + o[k + 1];
        UNROLL for (int t = 0; t < NV; t++) c[0][t] = _mm512_fmadd_ps(w0, XLOAD(p0, t), c[0][t]);
        UNROLL for (int t = 0; t < NV; t++) d[t] = _mm512_fmadd_ps(w1, XLOAD(p1, t), d[t]);
      }
      for (; k < n; k++) {
        const __m512 w0 = _mm512_set1_ps(v[k]);
        const float *p0 = x + o[k];
        UNROLL for (int t = 0; t < NV; t++) c[0][t] = _mm512_fmadd_ps(w0, XLOAD(p0, t), c[0][t]);
      }
      if (NV < 8) UNROLL for (int t = 0; t < NV; t++) c[0][t] = _mm512_add_ps(c[0][t], d[t]);
    } else {
      for (; k < n; k++) {
        const float *p = x + o[k];
        __m512 xv[4];
        UNROLL for (int t = 0; t < NV; t++) xv[t] = XLOAD(p, t);
        UNROLL for (int r = 0; r < R; r++) {
          const __m512 w = _mm512_set1_ps(v[(int64_t)k * R + r]);
          UNROLL for (int t = 0; t < NV; t++) c[r][t] = _mm512_fmadd_ps(w, xv[t], c[r][t]);
        }
      }
    }
    v += (int64_t)n * R;
    o += n;
    UNROLL for (int r = 0; r < R; r++) fc_spmm_finish_row(a, co + r, c[r], NV, mlast, vlo, vhi);
  }
}

#define INST(NV, R, XM) \
  static TGT void tile##NV##_r##R##_x##XM(const fc_spmm_args *a) { tile_kernel(a, R, NV, XM, 0); }
#define INST_HALF(NV, R) \
  static TGT void tile##NV##_r##R##_half(const fc_spmm_args *a) { tile_kernel(a, R, NV, 0, 1); }
#define INST_R(R)                                                                                  \
  INST(1, R, 0) INST(2, R, 0) INST(3, R, 0) INST(4, R, 0) INST(1, R, 1) INST(2, R, 1) INST(3, R, 1) INST(4, R, 1) \
  INST_HALF(1, R) INST_HALF(2, R) INST_HALF(3, R) INST_HALF(4, R)
INST_R(1) INST_R(2) INST_R(4)
#define DEF(R)                                                                                     \
  void fc_spmm_avx512_r##R(const fc_spmm_args *a) {                                               \
    static void (*const k[3][4])(const fc_spmm_args *) = {                                         \
        {tile1_r##R##_x0, tile2_r##R##_x0, tile3_r##R##_x0, tile4_r##R##_x0},                       \
        {tile1_r##R##_x1, tile2_r##R##_x1, tile3_r##R##_x1, tile4_r##R##_x1},                       \
        {tile1_r##R##_half, tile2_r##R##_half, tile3_r##R##_half, tile4_r##R##_half}};              \
    k[a->xmask ? 1 : a->half ? 2 : 0][(a->nvec < 1 ? 1 : a->nvec > 4 ? 4 : a->nvec) - 1](a);       \
  }
DEF(2) DEF(4)
INST(5, 1, 0) INST(6, 1, 0) INST(7, 1, 0) INST(8, 1, 0) INST(5, 1, 1) INST(6, 1, 1) INST(7, 1, 1) INST(8, 1, 1)
INST_HALF(5, 1) INST_HALF(6, 1) INST_HALF(7, 1) INST_HALF(8, 1)
void fc_spmm_avx512_r1(const fc_spmm_args *a) {
  static void (*const k[3][8])(const fc_spmm_args *) = {
      {tile1_r1_x0, tile2_r1_x0, tile3_r1_x0, tile4_r1_x0, tile5_r1_x0, tile6_r1_x0, tile7_r1_x0, tile8_r1_x0},
      {tile1_r1_x1, tile2_r1_x1, tile3_r1_x1, tile4_r1_x1, tile5_r1_x1, tile6_r1_x1, tile7_r1_x1, tile8_r1_x1},
      {tile1_r1_half, tile2_r1_half, tile3_r1_half, tile4_r1_half, tile5_r1_half, tile6_r1_half, tile7_r1_half,
       tile8_r1_half}};
  k[a->xmask ? 1 : a->half ? 2 : 0][(a->nvec < 1 ? 1 : a->nvec > 8 ? 8 : a->nvec) - 1](a);
}

TGT void fc_spmv_avx512(int64_t n, const int64_t *rowptr, const int32_t *idx, const float *val, const float *x,
                        const float *bias, float lo, float hi, float *y) {
  for (int64_t j = 0; j < n; j++) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t p = rowptr[j], e = rowptr[j + 1];
    for (; p + 32 <= e; p += 32) {
      __m512i i0 = _mm512_loadu_si512(idx + p), i1 = _mm512_loadu_si512(idx + p + 16);
      acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(val + p), _mm512_i32gather_ps(i0, x, 4), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(val + p + 16), _mm512_i32gather_ps(i1, x, 4), acc1);
    }
    for (; p < e; p += 16) {
      int64_t left = e - p;
      __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
      __m512i ii = _mm512_maskz_loadu_epi32(m, idx + p);
      __m512 xv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, ii, x, 4);
      acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, val + p), xv, acc0);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + (bias ? bias[j] : 0.0f);
    s = s < lo ? lo : s;
    y[j] = s > hi ? hi : s;
  }
}
#endif
