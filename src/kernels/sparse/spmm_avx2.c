/* AVX2+FMA sparse microkernels: the AVX-512 design at 8 floats per vector with 16 registers, so
 * blocks of 4 output channels use 2-vector tiles (8 accumulators) instead of 4. */
#include "kernels/sparse/spmm.h"
#ifdef FC_HAVE_X86_KERNELS
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma")))
#define INL static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")
#define XLOAD(p, t) (XM && (t) == NV - 1 ? _mm256_maskload_ps((p) + 8 * (t), mlast) : _mm256_loadu_ps((p) + 8 * (t)))

INL TGT __m256 clamp8(__m256 y, __m256 lo, __m256 hi) { return _mm256_min_ps(_mm256_max_ps(y, lo), hi); }

INL TGT void tile_kernel(const fc_spmm_args *a, const int R, const int NV, const int XM) {
  const float *v = a->vals;
  const int32_t *o = a->offs;
  const float *x = a->x;
  const __m256i mlast = _mm256_cmpgt_epi32(_mm256_set1_epi32(a->rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256 vlo = _mm256_set1_ps(a->lo), vhi = _mm256_set1_ps(a->hi);
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
        UNROLL for (int t = 0; t < (NV + 1) / 2; t++) _mm_prefetch((const char *)(np + 16 * t), _MM_HINT_T0);
        if (a->res) {
          const float *rp = a->res + (co + r) * a->res_stride + a->out_next;
          UNROLL for (int t = 0; t < (NV + 1) / 2; t++) _mm_prefetch((const char *)(rp + 16 * t), _MM_HINT_T0);
        }
      }
    }
    __m256 c[4][4], d[4];
    UNROLL for (int r = 0; r < R; r++) {
      if (a->init) {
        __m256 b = _mm256_set1_ps(a->bias ? a->bias[co + r] : 0.0f);
        UNROLL for (int t = 0; t < NV; t++) c[r][t] = b;
      } else {
        const float *ap = a->acc + (co + r) * a->acc_stride;
        UNROLL for (int t = 0; t < NV; t++) c[r][t] = _mm256_loadu_ps(ap + 8 * t);
      }
    }
    UNROLL for (int t = 0; t < NV; t++) d[t] = _mm256_setzero_ps();
    int32_t k = 0;
    if (R == 1) {
      for (; k + 1 < n; k += 2) {
        const __m256 w0 = _mm256_broadcast_ss(v + k), w1 = _mm256_broadcast_ss(v + k + 1);
        const float *p0 = x + o[k], *p1 = x + o[k + 1];
        UNROLL for (int t = 0; t < NV; t++) c[0][t] = _mm256_fmadd_ps(w0, XLOAD(p0, t), c[0][t]);
        UNROLL for (int t = 0; t < NV; t++) d[t] = _mm256_fmadd_ps(w1, XLOAD(p1, t), d[t]);
      }
      if (k < n) {
        const __m256 w0 = _mm256_broadcast_ss(v + k);
        const float *p0 = x + o[k];
        UNROLL for (int t = 0; t < NV; t++) c[0][t] = _mm256_fmadd_ps(w0, XLOAD(p0, t), c[0][t]);
      }
      UNROLL for (int t = 0; t < NV; t++) c[0][t] = _mm256_add_ps(c[0][t], d[t]);
    } else {
      for (; k < n; k++) {
        const float *p = x + o[k];
        __m256 xv[4];
        UNROLL for (int t = 0; t < NV; t++) xv[t] = XLOAD(p, t);
        UNROLL for (int r = 0; r < R; r++) {
          const __m256 w = _mm256_broadcast_ss(v + (int64_t)k * R + r);
          UNROLL for (int t = 0; t < NV; t++) c[r][t] = _mm256_fmadd_ps(w, xv[t], c[r][t]);
        }
      }
    }
    v += (int64_t)n * R;
    o += n;
    UNROLL for (int r = 0; r < R; r++) {
      if (a->final) {
        float *op = a->out + (co + r) * a->out_stride;
        const float *rp = a->res ? a->res + (co + r) * a->res_stride : 0;
        UNROLL for (int t = 0; t < NV; t++) {
          __m256 y = c[r][t];
          if (t < NV - 1) {
            if (rp) y = _mm256_add_ps(y, _mm256_loadu_ps(rp + 8 * t));
            _mm256_storeu_ps(op + 8 * t, clamp8(y, vlo, vhi));
          } else {
            if (rp) y = _mm256_add_ps(y, _mm256_maskload_ps(rp + 8 * t, mlast));
            _mm256_maskstore_ps(op + 8 * t, mlast, clamp8(y, vlo, vhi));
          }
        }
      } else {
        float *ap = a->acc + (co + r) * a->acc_stride;
        UNROLL for (int t = 0; t < NV; t++) _mm256_storeu_ps(ap + 8 * t, c[r][t]);
      }
    }
  }
}

#define INST(NV, R, XM) \
  static TGT void tile##NV##_r##R##_x##XM(const fc_spmm_args *a) { tile_kernel(a, R, NV, XM); }
#define INST_R(R) INST(1, R, 0) INST(2, R, 0) INST(3, R, 0) INST(4, R, 0) INST(1, R, 1) INST(2, R, 1) INST(3, R, 1) INST(4, R, 1)
INST_R(1) INST_R(2) INST(1, 4, 0) INST(2, 4, 0) INST(1, 4, 1) INST(2, 4, 1)

#define DEF(R)                                                                                     \
  void fc_spmm_avx2_r##R(const fc_spmm_args *a) {                                                 \
    static void (*const k[2][4])(const fc_spmm_args *) = {                                         \
        {tile1_r##R##_x0, tile2_r##R##_x0, tile3_r##R##_x0, tile4_r##R##_x0},                       \
        {tile1_r##R##_x1, tile2_r##R##_x1, tile3_r##R##_x1, tile4_r##R##_x1}};                      \
    k[a->xmask != 0][(a->nvec < 1 ? 1 : a->nvec > 4 ? 4 : a->nvec) - 1](a);                         \
  }
DEF(1) DEF(2)
/* blocks of 4 rows use 2-vector tiles here (16 registers) */
void fc_spmm_avx2_r4(const fc_spmm_args *a) {
  if (a->nvec <= 1) a->xmask ? tile1_r4_x1(a) : tile1_r4_x0(a);
  else a->xmask ? tile2_r4_x1(a) : tile2_r4_x0(a);
}
#endif
