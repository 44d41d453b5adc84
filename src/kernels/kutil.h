/* Helpers the non-matrix kernel families share: thread splitting, numpy broadcasting plans,
 * node/attribute access at plan time, and vectorisable float math (exp, tanh, erf). */
#ifndef FC_KERNELS_KUTIL_H
#define FC_KERNELS_KUTIL_H
#include <stdint.h>
#include <string.h>
#include "runtime/kernel.h"

/* Hot float loops are compiled three times (AVX-512, AVX2+FMA, baseline SSE2); the loader picks one
 * from cpuid, so release builds stay generic while this machine runs 16-wide. a*b+c may fuse into one
 * FMA there (-std=c11 forbids it otherwise): ~30% off exp-heavy loops. GCC only: clang's
 * target_clones does not accept the arch= levels. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FC_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("fp-contract=fast")))
#else
#define FC_SIMD_CLONES
#endif

#define FC_PRAGMA(x) _Pragma(#x)
#define FC_SIMD FC_PRAGMA(omp simd)

/* Below this many elements a kernel runs on one thread: waking the pool costs more than it saves. */
#define FC_PAR_GRAIN 16384

/* Calls fn(ctx, begin, end) over [0, n) split into contiguous ranges, one per thread, using at most
 * `threads` threads and giving each at least `grain` items. */
typedef void (*fc_range_fn)(void *ctx, int64_t begin, int64_t end);
void fc_parallel_range(int threads, int64_t n, int64_t grain, fc_range_fn fn, void *ctx);

/* --- numpy broadcasting ------------------------------------------------------------------- */

#define FC_BCAST_MAX_IN 3

/* Output dims with adjacent dims merged wherever every input walks them as one; per input an
 * element stride per dim (0 where broadcast). The innermost stride of each input is 0 or 1. */
typedef struct fc_bcast {
  int rank;
  int n_in;
  int64_t numel;
  int64_t dims[FC_MAX_RANK];
  int64_t str[FC_BCAST_MAX_IN][FC_MAX_RANK];
} fc_bcast;

/* Plans broadcasting the inputs (rank/dims each) into the output shape (which must be their
 * broadcast). A rank-0 output becomes one dim of size 1. */
void fc_bcast_init(fc_bcast *b, int out_rank, const int64_t *out_dims, int n_in, const int *in_rank,
                   const int64_t *const *in_dims);

/* One contiguous run of `len` output elements starting at output element `out_off`; input i starts
 * at element in_off[i] and advances by inner[i] (0 or 1) per element. */
typedef void (*fc_bcast_row_fn)(void *ctx, int64_t out_off, const int64_t *in_off, const int64_t *inner,
                                int64_t len);
/* Walks the output in runs, in parallel over disjoint element ranges. */
void fc_bcast_run(const fc_bcast *b, int threads, fc_bcast_row_fn fn, void *ctx);

/* --- plan-time access to the node --------------------------------------------------------- */

static inline const fc_value *fc_en_in(const fc_exec_node *en, int i) { return fc_node_in(en->g, en->node, i); }
static inline const fc_value *fc_en_out(const fc_exec_node *en, int i) { return fc_node_out(en->g, en->node, i); }
/* Fails naming the node: "node 'n' (Op): <reason>". */
fc_status fc_kfail(const fc_exec_node *en, fc_err *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Allocates zeroed kernel state of `size` bytes into en->state, failing with the node's name. */
void *fc_kstate(fc_exec_node *en, size_t size, fc_err *err);
void fc_kstate_release(fc_exec_node *en);
/* Element count of the shape (no overflow: shapes were checked by inference). */
int64_t fc_kdims_numel(int rank, const int64_t *dims);
/* Reads a small 1-D constant integer input or ints attribute; count -1 when neither is present. */
fc_status fc_kconst_ints(const fc_exec_node *en, int input, const char *attr, int64_t *out, int max, int *count,
                         fc_err *err);

/* --- 16-lane reductions --------------------------------------------------------------------
 * Reductions keep 16 partial results (one zmm, or 2 ymm / 4 xmm) and fold them in a fixed tree at
 * the end: `omp simd reduction` instead spills to the stack and folds serially, which costs as much
 * as the loop itself on 200-element rows. The fixed order also makes results ISA-independent. */

#define FC_LANES 16

static inline float fc_fold_sum(float *a) {
  for (int w = FC_LANES / 2; w; w >>= 1)
    for (int j = 0; j < w; j++) a[j] += a[j + w];
  return a[0];
}
static inline float fc_fold_max(float *a) {
  for (int w = FC_LANES / 2; w; w >>= 1)
    for (int j = 0; j < w; j++) a[j] = a[j + w] > a[j] ? a[j + w] : a[j];
  return a[0];
}
static inline float fc_fold_min(float *a) {
  for (int w = FC_LANES / 2; w; w >>= 1)
    for (int j = 0; j < w; j++) a[j] = a[j + w] < a[j] ? a[j + w] : a[j];
  return a[0];
}
static inline float fc_fold_prod(float *a) {
  for (int w = FC_LANES / 2; w; w >>= 1)
    for (int j = 0; j < w; j++) a[j] *= a[j + w];
  return a[0];
}
/* Sum and maximum of n floats in 16 lanes (ISA-independent order; -inf for n = 0). */
float fc_vsum(const float *x, int64_t n);
float fc_vmax(const float *x, int64_t n);

/* --- vectorisable float math -------------------------------------------------------------- */

/* exp(x) to ~1 ulp on [-87, 88]: 2^n·e^r with r in [-ln2/2, ln2/2], e^r by its Taylor series to
 * r^7 (truncation < 6e-9). Inputs are clamped so the result never goes subnormal (slow on x86). */
static inline float fc_expf(float x) {
  /* written as x86 max/min (`a > b ? a : b`) so they compile to one instruction each */
  x = x > -87.0f ? x : -87.0f;
  x = x < 88.0f ? x : 88.0f;
  /* round-to-nearest without SSE4.1: adding 1.5·2^23 pushes the fraction out of the mantissa */
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f; /* ln2 split in two so n·ln2 is exact in the first step */
  r = r + n * 2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float s;
  memcpy(&s, &bits, sizeof s);
  return p * s;
}

static inline float fc_sigmoidf(float x) {
  x = x > -87.0f ? x : -87.0f; /* keeps 1/(1+e^-x) out of subnormals */
  return 1.0f / (1.0f + fc_expf(-x));
}

/* tanh: Taylor series near 0 (where 1 - e^-2|x| would cancel), the exp form elsewhere. */
static inline float fc_tanhf(float x) {
  float ax = x < 0 ? -x : x;
  float e = fc_expf(-2.0f * ax);
  float big = (1.0f - e) / (1.0f + e);
  float z = x * x;
  float small = ax * (1.0f + z * (-1.0f / 3.0f + z * (2.0f / 15.0f + z * (-17.0f / 315.0f + z * (62.0f / 2835.0f)))));
  float t = ax < 0.25f ? small : big;
  return x < 0 ? -t : t;
}

/* erf: Maclaurin series for |x| < 0.5; above, Abramowitz & Stegun 7.1.26 (abs. error < 1.5e-7). */
static inline float fc_erff(float x) {
  float ax = x < 0 ? -x : x;
  float z = x * x;
  float small = ax * 1.1283791670955126f *
                (1.0f + z * (-1.0f / 3.0f + z * (1.0f / 10.0f + z * (-1.0f / 42.0f + z * (1.0f / 216.0f + z * (-1.0f / 1320.0f))))));
  float t = 1.0f / (1.0f + 0.3275911f * ax);
  float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  float big = 1.0f - poly * fc_expf(-z);
  float r = ax < 0.5f ? small : big;
  return x < 0 ? -r : r;
}
#endif
