/* AVX-512 activations shared by the post-op pass (post_ops.c) and the sparse kernels' epilogue
 * (spmm_avx512_store.h): fc_sigmoidf's arithmetic (kutil.h: the same clamps, range reduction and
 * series to r^7), with 2^n by scalef and the divide by rcp14 and one Newton step (relative error
 * < 1e-7). Include after <immintrin.h>, from functions with target("avx512f"). */
#ifndef FC_KERNELS_X86_VMATH_AVX512_H
#define FC_KERNELS_X86_VMATH_AVX512_H

static inline __attribute__((always_inline, target("avx512f"))) __m512 fc_sigmoid512(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  /* e = exp(z), z = -x clamped to [-87, 87] as fc_sigmoidf and fc_expf do */
  const __m512 z = _mm512_min_ps(_mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), x), _mm512_set1_ps(-87.0f)),
                                 _mm512_set1_ps(87.0f));
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(z, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), z);
  r = _mm512_fmadd_ps(k, _mm512_set1_ps(2.12194440e-4f), r);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 5040.0f), r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, one);
  p = _mm512_fmadd_ps(p, r, one);
  const __m512 d = _mm512_add_ps(one, _mm512_scalef_ps(p, k));
  const __m512 s = _mm512_rcp14_ps(d);
  return _mm512_fmadd_ps(s, _mm512_fnmadd_ps(d, s, one), s); /* s + s·(1 - d·s) */
}

/* x·clamp(x + 3, 0, 6)/6 */
static inline __attribute__((always_inline, target("avx512f"))) __m512 fc_hardswish512(__m512 x) {
  const __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(x, _mm512_set1_ps(3.0f)), _mm512_setzero_ps()),
                                 _mm512_set1_ps(6.0f));
  return _mm512_mul_ps(_mm512_mul_ps(x, t), _mm512_set1_ps(1.0f / 6.0f));
}
#endif
