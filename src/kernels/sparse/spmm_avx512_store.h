/* The AVX-512 kernels' stores at the end of a block row: partial sums, or the output, for layouts
 * whose rows carry padding columns by runs of lanes (fc_spmm_store), so that the kernel writes the
 * output rows itself instead of a padded copy that a second pass compacts (ResNet-50's 7×7/2 stem
 * spent 0.37 ms compacting after 0.5 ms of kernel). Included by spmm_avx512.c and
 * spmm_avx512_shift.c after <immintrin.h>. */
#ifndef FC_KERNELS_SPARSE_SPMM_AVX512_STORE_H
#define FC_KERNELS_SPARSE_SPMM_AVX512_STORE_H
#include "kernels/sparse/spmm.h"
#include "kernels/sparse/sparse.h"
#include "kernels/x86/vmath_avx512.h"

/* The fused activation after the clamp (act is the same for a whole run: a predicted branch). */
static inline __attribute__((always_inline, target("avx512f"))) __m512 fc_spmm_act(__m512 y, int act) {
  if (act == FC_SPARSE_ACT_SWISH) return _mm512_mul_ps(y, fc_sigmoid512(y));
  if (act == FC_SPARSE_ACT_HARDSWISH) return fc_hardswish512(y);
  return y;
}

/* v (+ the residual at the same pixels), clamped to [lo, hi], activated, to its runs of row op.
 * Lanes outside every run are neither read nor written (masked), so a run's base may lie before the
 * row. */
static inline __attribute__((always_inline, target("avx512f"))) void fc_spmm_store_runs(
    const fc_spmm_store *s, __m512 v, float *op, const float *rp, __m512 lo, __m512 hi, int act) {
  for (int k = 0; k < FC_SPMM_RUNS && s->mask[k]; k++) {
    const __mmask16 m = s->mask[k];
    __m512 y = v;
    if (rp) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, rp + s->off[k]));
    _mm512_mask_storeu_ps(op + s->off[k], m, fc_spmm_act(_mm512_min_ps(_mm512_max_ps(y, lo), hi), act));
  }
}

/* The end of one block row's K chunk, its NV sums in c: to the partial sums (not the last chunk),
 * else (+ residual, clamped, activated) to the output, by runs (a->store) or as whole vectors, the last one
 * masked by `last` (lanes past an input read in place; all 16 otherwise). */
static inline __attribute__((always_inline, target("avx512f"))) void fc_spmm_finish_row(
    const fc_spmm_args *a, int64_t co, const __m512 *c, const int NV, __mmask16 last, __m512 lo, __m512 hi) {
  if (!a->final) {
    float *ap = a->acc + co * a->acc_stride;
    _Pragma("GCC unroll 16") for (int t = 0; t < NV; t++) _mm512_storeu_ps(ap + 16 * t, c[t]);
    return;
  }
  float *op = a->out + co * a->out_stride;
  const float *rp = a->res ? a->res + co * a->res_stride : 0;
  if (a->store) {
    _Pragma("GCC unroll 16") for (int t = 0; t < NV; t++) fc_spmm_store_runs(&a->store[t], c[t], op, rp, lo, hi, a->act);
    return;
  }
  _Pragma("GCC unroll 16") for (int t = 0; t < NV; t++) {
    const __mmask16 m = t < NV - 1 ? (__mmask16)0xffff : last;
    __m512 y = c[t];
    if (rp) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, rp + 16 * t));
    _mm512_mask_storeu_ps(op + 16 * t, m, fc_spmm_act(_mm512_min_ps(_mm512_max_ps(y, lo), hi), a->act));
  }
}
#endif
