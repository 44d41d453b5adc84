/* Portable sparse microkernel on the packed format (8 lanes per "vector"): the fallback for CPUs
 * without AVX2, and a second implementation the tests hold the packed layout against. */
#include "kernels/sparse/spmm.h"

#define VW 8

void fc_spmm_scalar(const fc_spmm_args *a, int r) {
  const float *v = a->vals;
  const int32_t *o = a->offs;
  const int lanes = (a->nvec - 1) * VW + a->rem, width = a->nvec * VW;
  for (int64_t i = 0; i < a->npairs; i++) {
    const int64_t co = a->pair_co[i];
    const int32_t n = a->pair_n[i];
    for (int rr = 0; rr < r; rr++) {
      float acc[4 * VW];
      const float *ap = a->acc + (co + rr) * a->acc_stride;
      for (int l = 0; l < width; l++) acc[l] = a->init ? (a->bias ? a->bias[co + rr] : 0.0f) : ap[l];
      for (int32_t k = 0; k < n; k++) {
        const float w = v[(int64_t)k * r + rr], *p = a->x + o[k];
        const int nread = a->xmask ? lanes : width; /* an input read in place ends at lanes */
        for (int l = 0; l < nread; l++) acc[l] += w * p[l];
      }
      if (a->final) {
        float *op = a->out + (co + rr) * a->out_stride;
        const float *rp = a->res ? a->res + (co + rr) * a->res_stride : 0;
        for (int l = 0; l < lanes; l++) {
          float y = acc[l] + (rp ? rp[l] : 0.0f);
          y = y < a->lo ? a->lo : y;
          op[l] = y > a->hi ? a->hi : y;
        }
      } else {
        float *aw = a->acc + (co + rr) * a->acc_stride;
        for (int l = 0; l < width; l++) aw[l] = acc[l];
      }
    }
    v += (int64_t)n * r;
    o += n;
  }
}

static void scalar_r1(const fc_spmm_args *a) { fc_spmm_scalar(a, 1); }
static void scalar_r2(const fc_spmm_args *a) { fc_spmm_scalar(a, 2); }
static void scalar_r4(const fc_spmm_args *a) { fc_spmm_scalar(a, 4); }

int fc_spmm_vw(fc_isa isa) { return isa == FC_ISA_AVX512 ? 16 : 8; }

int fc_spmm_tvec(fc_isa isa, int r) {
  if (isa == FC_ISA_SCALAR) return 2;
  if (isa == FC_ISA_AVX2 && r == 4) return 2;
  return 4;
}

fc_spmm_fn fc_spmm_kernel(fc_isa isa, int r) {
#ifdef FC_HAVE_X86_KERNELS
  if (isa == FC_ISA_AVX512) return r == 1 ? fc_spmm_avx512_r1 : r == 2 ? fc_spmm_avx512_r2 : fc_spmm_avx512_r4;
  if (isa == FC_ISA_AVX2) return r == 1 ? fc_spmm_avx2_r1 : r == 2 ? fc_spmm_avx2_r2 : fc_spmm_avx2_r4;
#endif
  return r == 1 ? scalar_r1 : r == 2 ? scalar_r2 : scalar_r4;
}
