/* Post-op chains applied after a kernel that could not fuse them (a sparse conv with Swish, a oneDNN
 * primitive that refused a chain): the same arithmetic as fc_ref_post_ops, vectorised. The buffer
 * is walked in blocks that stay in L1, one SIMD loop per post-op over a block; exp, sigmoid, tanh
 * and erf use the vectorisable forms of kutil.h. The scalar reference evaluated 1.2 M SiLU outputs
 * of an EfficientNet-B0 layer in 9 ms (libm expf per element, a switch per op per element). */
#include "kernels/post_ops.h"
#include <math.h>
#include "kernels/kutil.h"
#include "kernels/x86/cpu.h"
#include "passes/passes.h"
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include "kernels/x86/vmath_avx512.h"
#define POST_AVX512 1
#endif

/* elements per block: 16 KB of y, so a chain of several ops re-reads it from L1 */
#define POST_BLOCK 4096

FC_SIMD_CLONES static void unary_block(int kind, float a, float b, float *y, int64_t n) {
  switch (kind) {
    case FC_POST_RELU:
      FC_SIMD for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0;
      break;
    case FC_POST_CLIP:
      FC_SIMD for (int64_t i = 0; i < n; i++) {
        float v = y[i] < a ? a : y[i];
        y[i] = v > b ? b : v;
      }
      break;
    case FC_POST_LINEAR:
      FC_SIMD for (int64_t i = 0; i < n; i++) y[i] = a * y[i] + b;
      break;
    case FC_POST_SIGMOID:
      FC_SIMD for (int64_t i = 0; i < n; i++) y[i] = fc_sigmoidf(y[i]);
      break;
    case FC_POST_SWISH:
      FC_SIMD for (int64_t i = 0; i < n; i++) y[i] = y[i] * fc_sigmoidf(y[i]);
      break;
    case FC_POST_HARDSWISH:
      FC_SIMD for (int64_t i = 0; i < n; i++) {
        float t = y[i] + 3.0f;
        t = t < 0 ? 0 : t;
        t = t > 6 ? 6 : t;
        y[i] = y[i] * t * (1.0f / 6.0f);
      }
      break;
    case FC_POST_GELU_ERF:
      FC_SIMD for (int64_t i = 0; i < n; i++) y[i] = 0.5f * y[i] * (1.0f + fc_erff(y[i] * 0.70710678118654752f));
      break;
    case FC_POST_TANH:
      FC_SIMD for (int64_t i = 0; i < n; i++) y[i] = fc_tanhf(y[i]);
      break;
    case FC_POST_LEAKY_RELU:
      FC_SIMD for (int64_t i = 0; i < n; i++) y[i] = y[i] >= 0 ? y[i] : a * y[i];
      break;
    default:
      break;
  }
}

#ifdef POST_AVX512
/* sigmoid(x), or x·sigmoid(x) (swish), over n floats with AVX-512 (vmath_avx512.h). The compiler's
 * loop spent a vdivps per vector, ~10 cycles here: SiLU passes were a third of EfficientNet-B0's
 * time at 90 % sparsity. */
__attribute__((target("avx512f"))) static void sigmoid_avx512(float *y, int64_t n, int swish) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
    const __m512 x = _mm512_maskz_loadu_ps(m, y + i), s = fc_sigmoid512(x);
    _mm512_mask_storeu_ps(y + i, m, swish ? _mm512_mul_ps(x, s) : s);
  }
}
#endif

void fc_post_unary(int kind, float a, float b, float *y, int64_t n) {
#ifdef POST_AVX512
  if ((kind == FC_POST_SWISH || kind == FC_POST_SIGMOID) && fc_cpu_isa() == FC_ISA_AVX512) {
    sigmoid_avx512(y, n, kind == FC_POST_SWISH);
    return;
  }
#endif
  unary_block(kind, a, b, y, n);
}

/* y[i] op= z[i] over a block (z already offset to the block) */
FC_SIMD_CLONES static void binary_block(int kind, float *y, const float *z, int64_t n) {
  if (kind == FC_POST_ADD) {
    FC_SIMD for (int64_t i = 0; i < n; i++) y[i] += z[i];
  } else if (kind == FC_POST_MUL) {
    FC_SIMD for (int64_t i = 0; i < n; i++) y[i] *= z[i];
  } else {
    FC_SIMD for (int64_t i = 0; i < n; i++) y[i] -= z[i];
  }
}

/* y[i] op= c (one operand value for a run of elements) */
FC_SIMD_CLONES static void binary_scalar(int kind, float *y, float c, int64_t n) {
  if (kind == FC_POST_ADD) {
    FC_SIMD for (int64_t i = 0; i < n; i++) y[i] += c;
  } else if (kind == FC_POST_MUL) {
    FC_SIMD for (int64_t i = 0; i < n; i++) y[i] *= c;
  } else {
    FC_SIMD for (int64_t i = 0; i < n; i++) y[i] -= c;
  }
}

typedef struct post_run {
  const fc_post_ops *po;
  float *y;
  const float *const *operands;
  int64_t numel, inner, axis_len;
} post_run;

/* Elements [b0, b1) (whole blocks), every post-op in order. */
static void post_range(void *ctx, int64_t b0, int64_t b1) {
  const post_run *r = ctx;
  const fc_post_ops *po = r->po;
  for (int64_t blk = b0; blk < b1; blk++) {
    int64_t i0 = blk * POST_BLOCK, i1 = i0 + POST_BLOCK < r->numel ? i0 + POST_BLOCK : r->numel;
    float *y = r->y + i0;
    int opnd = 0;
    for (int j = 0; j < po->n; j++) {
      int kind = po->kinds[j];
      if (!fc_post_is_binary(kind)) {
        fc_post_unary(kind, po->alpha[j], po->beta[j], y, i1 - i0);
        continue;
      }
      const float *z = r->operands[opnd++];
      if (po->operand_numel[j] == r->numel) {
        binary_block(kind, y, z + i0, i1 - i0);
      } else if (r->inner == 1) { /* channel innermost (NHWC, or the last axis): z repeats along the row */
        for (int64_t i = i0; i < i1;) {
          int64_t c = i % r->axis_len, len = r->axis_len - c < i1 - i ? r->axis_len - c : i1 - i;
          binary_block(kind, r->y + i, z + c, len);
          i += len;
        }
      } else { /* runs of `inner` elements share one operand value */
        for (int64_t i = i0; i < i1;) {
          int64_t run = r->inner - i % r->inner, len = run < i1 - i ? run : i1 - i;
          binary_scalar(kind, r->y + i, z[(i / r->inner) % r->axis_len], len);
          i += len;
        }
      }
    }
  }
}

void fc_post_ops_apply(const fc_post_ops *po, float *y, const float *const *operands, int threads) {
  if (!po->n) return;
  post_run r = {po, y, operands, 1, 1, po->dims[po->axis]};
  for (int d = 0; d < po->rank; d++) r.numel *= po->dims[d];
  if (po->layout != FC_LAYOUT_NHWC)
    for (int d = po->axis + 1; d < po->rank; d++) r.inner *= po->dims[d];
  if (r.numel <= 0 || r.axis_len <= 0) return;
  int64_t blocks = (r.numel + POST_BLOCK - 1) / POST_BLOCK;
  fc_parallel_range(threads, blocks, FC_PAR_GRAIN / POST_BLOCK > 0 ? FC_PAR_GRAIN / POST_BLOCK : 1, post_range, &r);
}
