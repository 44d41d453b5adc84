/* Internal layout of a planned sparse convolution: geometry of the prepared input, the packed
 * nonzeros by (thread group, input-channel chunk), and the scratch map. */
#ifndef FC_KERNELS_SPARSE_INTERNAL_H
#define FC_KERNELS_SPARSE_INTERNAL_H
#include "kernels/sparse/sparse.h"
#include "kernels/sparse/spmm.h"

/* Bytes of L1 one chunk of input rows may occupy per pixel tile (48 KB L1d here: the rest holds
 * partial sums and the weight stream). */
#define FC_SPARSE_L1_BUDGET (24 * 1024)

struct fc_sparse_conv {
  fc_sparse_conv_desc d;
  fc_isa isa;
  int vw, T, R;
  int64_t tw; /* tile width in floats: T · vw */
  int64_t out_h, out_w;
  /* Input as the kernel reads it. direct: the input tensor itself (1×1, stride 1, no padding, rows
   * vector-aligned). Otherwise per input channel nph_h·nph_w planes [hq][wq]: plane (a, b) holds
   * padded input rows s_h·i + a, columns s_w·j + b, so every tap reads a contiguous window. */
  int direct;
  int64_t nph_h, nph_w;
  int64_t ph_h[8], ph_w[8]; /* phases used (≤ stride, capped at 8 per axis) */
  int64_t hq, wq, plane_stride, ci_stride, xbuf_floats;
  /* Output pixel q = oh·wq + ow. out_direct: wq == out_w, so the kernel writes y itself; else it
   * writes yq [cout][qpad] and a pass drops the wq - out_w extra columns. */
  int out_direct;
  int64_t q, ntiles, qpad;
  /* Packed nonzeros: segment s = g·nchunks + c covers pairs [seg_pair[s], seg_pair[s+1]) and
   * columns [seg_col[s], seg_col[s+1]). */
  int64_t kc, nchunks, ngroups;
  int64_t *seg_pair, *seg_col;
  int32_t *pair_co, *pair_n;
  float *vals;
  int32_t *offs;
  float *bias;
  int64_t nnz, ncols;
  fc_spmm_fn fn;
  size_t off_xbuf, off_yq, off_acc, acc_bytes, scratch;
};

/* The two halves of fc_sparse_conv_run: lay x out in the scratch's input buffer (not needed when
 * direct), then compute from an input already in the kernel's layout (x itself when direct, else
 * scratch + off_xbuf: channel ci at ci·ci_stride). */
void fc_sparse_conv_prepare(const fc_sparse_conv *c, const float *x, void *scratch);
void fc_sparse_conv_run_prepared(const fc_sparse_conv *c, const float *xs, const float *res, float *y, void *scratch);
#endif
