/* The AVX-512 kernels' final store of one output vector by runs of lanes (fc_spmm_store), for
 * layouts whose rows carry padding columns: the kernel writes the output rows itself instead of a
 * padded copy that a second pass compacts (ResNet-50's 7×7/2 stem spent 0.37 ms compacting after
 * 0.5 ms of kernel). Included by spmm_avx512.c and spmm_avx512_shift.c after <immintrin.h>. */
#ifndef FC_KERNELS_SPARSE_SPMM_AVX512_STORE_H
#define FC_KERNELS_SPARSE_SPMM_AVX512_STORE_H
#include "kernels/sparse/spmm.h"

/* v (+ the residual at the same pixels), clamped to [lo, hi], to its runs of row op. Lanes outside
 * every run are neither read nor written (masked), so a run's base may lie before the row. */
static inline __attribute__((always_inline, target("avx512f"))) void fc_spmm_store_runs(
    const fc_spmm_store *s, __m512 v, float *op, const float *rp, __m512 lo, __m512 hi) {
  for (int k = 0; k < FC_SPMM_RUNS && s->mask[k]; k++) {
    const __mmask16 m = s->mask[k];
    __m512 y = v;
    if (rp) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, rp + s->off[k]));
    _mm512_mask_storeu_ps(op + s->off[k], m, _mm512_min_ps(_mm512_max_ps(y, lo), hi));
  }
}
#endif
