/* AVX-512 input layout (sparse_run.c) for plane rows of up to FC_ROW_CHUNKS vectors at column
 * stride 1 or 2: each 16-lane piece of a row is two masked loads, one permute that also zeroes the
 * padding lanes, one masked store. The portable path spends ~20 cycles per row on short rows (row
 * set-up, a clear of the plane, the compiler's 8-float permutes with a scalar tail): ResNet-50's
 * stride-2 layers spent a third of their time laying out their input. In-process A/B, 90 %, 1 thread:
 * alone with cold inputs, 3×3/2 at 56/28/14 0.93/0.89/0.94 of the time, downsample 1×1/2 0.94-0.96,
 * 3×3/1 0.98; in the network (per-step medians, both orders) 3×3/2 0.86-0.94, 3×3/1 at 28 and 14
 * 0.92-1.0. Rows of 4 vectors (56×56 planes) were 0-4 % slower this way: they keep the portable
 * copy, hence FC_ROW_CHUNKS = 2. */
#include "kernels/sparse/sparse_internal.h"
#ifdef FC_HAVE_X86_KERNELS
#include <immintrin.h>

#define TGT __attribute__((target("avx512f")))

TGT void fc_layout_rows_avx512(float *pl, int64_t wq, int64_t i0, int64_t i1, const float *src, int64_t in_h,
                               int64_t in_w, int64_t stride_h, int64_t ih0, const fc_row_chunk *ch, int nch) {
  __m512i idx[FC_ROW_CHUNKS];
  for (int k = 0; k < nch; k++) idx[k] = _mm512_loadu_si512(ch[k].idx);
  for (int64_t i = i0; i < i1; i++) {
    float *row = pl + i * wq;
    const int64_t ih = stride_h * i + ih0;
    if (ih < 0 || ih >= in_h) {
      for (int k = 0; k < nch; k++) _mm512_mask_storeu_ps(row + 16 * k, ch[k].mstore, _mm512_setzero_ps());
      continue;
    }
    const float *srow = src + ih * in_w;
    for (int k = 0; k < nch; k++) {
      const float *p = srow + ch[k].src_off;
      const __m512 lo = _mm512_maskz_loadu_ps(ch[k].mlo, p), hi = _mm512_maskz_loadu_ps(ch[k].mhi, p + 16);
      _mm512_mask_storeu_ps(row + 16 * k, ch[k].mstore, _mm512_maskz_permutex2var_ps(ch[k].mdata, lo, idx[k], hi));
    }
  }
}
#endif
