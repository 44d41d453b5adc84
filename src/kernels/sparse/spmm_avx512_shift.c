/* AVX-512 sparse microkernel for aligned phase planes (one output channel per block): every input
 * load is vector-aligned, and the column shift of a kernel tap is applied to the sums instead.
 *
 * In phase planes a tap reads its window at a base offset plus a column shift s (0..3 for a 3×3
 * stride-1 conv: s = kw). With plane rows a multiple of 16 floats apart, base is aligned and only s
 * misaligns the load; a misaligned 64-byte load spans two cache lines and costs two L1 accesses,
 * which made this kernel load-bound (30-40 GFLOP/s on nonzeros vs 70-105 aligned in isolation).
 * So a block's columns are packed grouped by shift (cls_n[i·4 + s] columns of shift s), each group
 * summed into its own accumulators from aligned loads at base, one extra vector wide (pixel j of
 * the tile needs sum_s[j + s]), and the groups are combined once per block visit with valignd:
 *   y[t] = sum_0[t] + Σ_s alignr(sum_s[t + 1], sum_s[t], s). */
#include "kernels/sparse/spmm.h"
#ifdef FC_HAVE_X86_KERNELS
#include <immintrin.h>
#include "kernels/sparse/spmm_avx512_store.h"

#define TGT __attribute__((target("avx512f")))
#define INL static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

/* Adds the n columns (values v, offsets o, each offset = aligned base + shift S) into s[0..NS).
 * Under 8 accumulators, two nonzeros per step into two sets, so that 2·NS FMA chains cover the
 * FMA latency; from 8 on, NS chains already do, and one nonzero per step has no second set to
 * clear and add and no odd-count branch (3×3 layers at 56/28/14 pixels, 90 %: 0.93-0.98 of the
 * time alone with cold operands, 0.95 at 2 threads; 0.96-1.0 at 50-70 %). */
#define SUM_GROUP(S, NS, s, n)                                                                      \
  do {                                                                                              \
    __m512 e_[9];                                                                                   \
    UNROLL for (int t = 0; t < (NS); t++) e_[t] = _mm512_setzero_ps();                              \
    int32_t k_ = 0;                                                                                 \
    for (; (NS) < 8 && k_ + 1 < (n); k_ += 2) {                                                     \
      const __m512 w0 = _mm512_set1_ps(v[k_]), w1 = _mm512_set1_ps(v[k_ + 1]);                     \
      const float *p0 = x + o[k_] - (S), *p1 = x + o[k_ + 1] - (S);                                 \
      UNROLL for (int t = 0; t < (NS); t++) s[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(p0 + 16 * t), s[t]); \
      UNROLL for (int t = 0; t < (NS); t++) e_[t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(p1 + 16 * t), e_[t]); \
    }                                                                                               \
    for (; k_ < (n); k_++) { /* every column from 8 accumulators on, else the odd one left */      \
      const __m512 w0 = _mm512_set1_ps(v[k_]);                                                      \
      const float *p0 = x + o[k_] - (S);                                                            \
      UNROLL for (int t = 0; t < (NS); t++) s[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(p0 + 16 * t), s[t]); \
    }                                                                                               \
    if ((NS) < 8) UNROLL for (int t = 0; t < (NS); t++) s[t] = _mm512_add_ps(s[t], e_[t]);          \
    v += (n);                                                                                       \
    o += (n);                                                                                       \
  } while (0)

/* Shift group K (when the layer has one): its sums, one vector wider, added to c shifted by K
 * lanes (valignd takes the shift as an immediate, hence a macro rather than a loop over K). When
 * every tile ends at a row's end (RE), the lanes the extra vector would feed are the last row's
 * padding columns, so it is left at zero: one vector in nine fewer for each shifted column (3×3
 * at 56/28/14 pixels, 90 %: 0.955-0.983 of the time; 0.92 at 50-70 %; ResNet-50 90 % about 0.99). */
#define ADD_SHIFTED(K)                                                                             \
  do {                                                                                             \
    if (NC > (K)) {                                                                                \
      UNROLL for (int t = 0; t <= NV; t++) sh[t] = _mm512_setzero_ps();                            \
      SUM_GROUP(K, NV + !RE, sh, cn[K]);                                                           \
      UNROLL for (int t = 0; t < NV; t++)                                                          \
        c[t] = _mm512_add_ps(c[t], _mm512_castsi512_ps(_mm512_alignr_epi32(                        \
                                       _mm512_castps_si512(sh[t + 1]), _mm512_castps_si512(sh[t]), K))); \
    }                                                                                              \
  } while (0)

/* NV vectors per tile, NC shift groups (max shift NC - 1), RE: all compile-time after inlining. */
INL TGT void shift_tile(const fc_spmm_args *a, const int NV, const int NC, const int RE) {
  const float *v = a->vals;
  const int32_t *o = a->offs;
  const float *x = a->x;
  const __m512 vlo = _mm512_set1_ps(a->lo), vhi = _mm512_set1_ps(a->hi);
  for (int64_t i = 0; i < a->npairs; i++) {
    const int64_t co = a->pair_co[i];
    const int32_t *cn = a->cls_n + 4 * i;
    __m512 c[8], sh[9]; /* sh: one shift group's sums at a time */
    if (a->init) {
      const __m512 b = _mm512_set1_ps(a->bias ? a->bias[co] : 0.0f);
      UNROLL for (int t = 0; t < NV; t++) c[t] = b;
    } else {
      const float *ap = a->acc + co * a->acc_stride;
      UNROLL for (int t = 0; t < NV; t++) c[t] = _mm512_loadu_ps(ap + 16 * t);
    }
    SUM_GROUP(0, NV, c, cn[0]);
    ADD_SHIFTED(1);
    ADD_SHIFTED(2);
    ADD_SHIFTED(3);
    /* aligned phase planes always carry padding columns: full vectors (stored by runs) */
    fc_spmm_finish_row(a, co, c, NV, (__mmask16)0xffff, vlo, vhi);
  }
}

#define INST(NV, NC, RE) \
  static TGT void shift##NV##_c##NC##_e##RE(const fc_spmm_args *a) { shift_tile(a, NV, NC, RE); }
#define INST_NC(NC, RE) \
  INST(1, NC, RE) INST(2, NC, RE) INST(3, NC, RE) INST(4, NC, RE) INST(5, NC, RE) INST(6, NC, RE) INST(7, NC, RE) INST(8, NC, RE)
INST_NC(1, 0) INST_NC(2, 0) INST_NC(3, 0) INST_NC(4, 0) INST_NC(2, 1) INST_NC(3, 1) INST_NC(4, 1)

void fc_spmm_avx512_shift(const fc_spmm_args *a) {
#define ROW(C, E) \
  {shift1_c##C##_e##E, shift2_c##C##_e##E, shift3_c##C##_e##E, shift4_c##C##_e##E, \
   shift5_c##C##_e##E, shift6_c##C##_e##E, shift7_c##C##_e##E, shift8_c##C##_e##E}
  /* one shift group needs no row end: with NC = 1 there is nothing to shift */
  static void (*const k[2][4][8])(const fc_spmm_args *) = {{ROW(1, 0), ROW(2, 0), ROW(3, 0), ROW(4, 0)},
                                                          {ROW(1, 0), ROW(2, 1), ROW(3, 1), ROW(4, 1)}};
  int nv = a->nvec < 1 ? 1 : a->nvec > 8 ? 8 : a->nvec, nc = a->ncls < 1 ? 1 : a->ncls > 4 ? 4 : a->ncls;
  k[a->row_end != 0][nc - 1][nv - 1](a);
}
#endif
