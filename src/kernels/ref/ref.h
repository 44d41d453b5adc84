/* Scalar reference kernels for the dense ops (Conv, ConvTranspose, Gemm, MatMul) and their fused
 * post-ops: the oracle the oneDNN path is tested against, and its fallback for shapes it refuses. */
#ifndef FC_KERNELS_REF_REF_H
#define FC_KERNELS_REF_REF_H
#include <stdbool.h>
#include <stdint.h>
#include "runtime/kernel.h"

#define FC_CONV_MAX_SP 3

/* A convolution with everything resolved: spatial rank 1..3, explicit pads (auto_pad applied). */
typedef struct fc_conv_params {
  int nsp;
  bool transpose;
  int64_t n, ic, oc, group;
  int64_t in[FC_CONV_MAX_SP], out[FC_CONV_MAX_SP], k[FC_CONV_MAX_SP];
  int64_t stride[FC_CONV_MAX_SP], dil[FC_CONV_MAX_SP], pad_b[FC_CONV_MAX_SP], pad_e[FC_CONV_MAX_SP];
} fc_conv_params;

/* Element strides of an [N, C, spatial...] tensor in a layout (plain or NHWC). */
typedef struct fc_strides {
  int64_t n, c, sp[FC_CONV_MAX_SP];
} fc_strides;

/* Reads a Conv/ConvTranspose node's attributes and shapes into p; fails naming the node. */
fc_status fc_conv_params_read(const fc_exec_node *en, fc_conv_params *p, fc_err *err);
void fc_conv_strides(const fc_conv_params *p, bool output, int layout, fc_strides *s);

/* y = conv(x, w) + b. w is ONNX-ordered ([OC, IC/g, k...], or [IC, OC/g, k...] transposed). */
void fc_ref_conv(const fc_conv_params *p, const float *x, const fc_strides *xs, const float *w, const float *b,
                 float *y, const fc_strides *ys);

/* Gemm: Y[M,N] = alpha op(A) op(B) + beta C, C unidirectionally broadcast to [M, N] (c_rank 0..2). */
typedef struct fc_gemm_params {
  int64_t m, n, k;
  bool trans_a, trans_b;
  float alpha, beta;
  int c_rank;
  int64_t c_dims[2];
} fc_gemm_params;
fc_status fc_gemm_params_read(const fc_exec_node *en, fc_gemm_params *p, fc_err *err);
void fc_ref_gemm(const fc_gemm_params *p, const float *a, const float *b, const float *c, float *y);

/* MatMul with numpy semantics, operands already promoted to rank ≥ 2 and broadcast to `rank`. */
typedef struct fc_matmul_params {
  int rank;                       /* of the broadcast output, ≥ 2 */
  int64_t a_dims[FC_MAX_RANK], b_dims[FC_MAX_RANK], y_dims[FC_MAX_RANK]; /* each of rank `rank` */
  int64_t m, n, k, batch;
} fc_matmul_params;
fc_status fc_matmul_params_read(const fc_exec_node *en, fc_matmul_params *p, fc_err *err);
void fc_ref_matmul(const fc_matmul_params *p, const float *a, const float *b, float *y);

/* Post-ops of a fused node (passes/passes.h), applied in place to y. The operand of a binary
 * post-op is either y's full shape (in y's layout) or a vector along `axis` (numel = dims[axis]). */
#define FC_REF_MAX_POST 12 /* the fused post-ops plus the ones a kernel adds itself (Gemm's C) */
typedef struct fc_post_ops {
  int n;
  int kinds[FC_REF_MAX_POST];
  float alpha[FC_REF_MAX_POST], beta[FC_REF_MAX_POST];
  int64_t operand_numel[FC_REF_MAX_POST]; /* binary post-ops only */
  int rank;                 /* of y */
  int64_t dims[FC_MAX_RANK];
  int axis;                 /* 1 for conv outputs, rank-1 for gemm/matmul */
  int layout;               /* of y */
} fc_post_ops;
/* Reads the node's post-ops and checks each binary operand's shape; operands start at input `first`. */
fc_status fc_post_ops_read(const fc_exec_node *en, int first, int axis, fc_post_ops *po, fc_err *err);
/* One post-op on one value (x) with operand value z (ignored for unary kinds). */
float fc_post_apply1(int kind, float alpha, float beta, float x, float z);
void fc_ref_post_ops(const fc_post_ops *po, float *y, const float *const *operands, int threads);
#endif
