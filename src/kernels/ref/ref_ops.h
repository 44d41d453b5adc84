/* Scalar reference implementations of the non-matrix kernels whose fast paths differ (vector math,
 * collapsed broadcasting, row-wise pooling, grouped reductions): the oracle of their unit tests. */
#ifndef FC_KERNELS_REF_REF_OPS_H
#define FC_KERNELS_REF_REF_OPS_H
#include <stdbool.h>
#include <stdint.h>

/* y = op(x) in double precision with libm; alpha/beta as the ONNX attributes (LeakyRelu, Elu,
 * HardSigmoid); "GeluTanh" selects Gelu's tanh approximation. */
void fc_ref_unary(const char *op, const float *x, float *y, int64_t n, float alpha, float beta);

/* y = a op b with numpy broadcasting, one output element at a time from its coordinates. ops:
 * Add Sub Mul Div Pow Max Min Mod(fmod) Equal Less Greater LessOrEqual GreaterOrEqual (bool out). */
void fc_ref_binary(const char *op, int rank, const int64_t *ydims, const float *a, int ra, const int64_t *da,
                   const float *b, int rb, const int64_t *db, void *y);

/* Pooling over [N, C, spatial(k)...] with explicit pads; output dims given. */
typedef struct fc_ref_pool_params {
  int k;
  bool is_max, include_pad;
  int64_t n, c, in[3], out[3], kernel[3], stride[3], dil[3], pad[3], pad_end[3];
} fc_ref_pool_params;
void fc_ref_pool(const fc_ref_pool_params *p, const float *x, float *y);

/* Softmax / LogSoftmax of x viewed as [outer, len, inner] along the middle axis. */
void fc_ref_softmax(const float *x, float *y, int64_t outer, int64_t len, int64_t inner, bool log);

/* Each of `rows` rows of d elements normalised, then scaled and shifted per element. */
void fc_ref_layernorm(const float *x, const float *scale, const float *bias, float *y, int64_t rows, int64_t d,
                      float eps);

/* Reduce{Sum,Mean,Max,Min,Prod,L2} over the flagged axes; y has the kept axes in order. */
void fc_ref_reduce(const char *op, const float *x, int rank, const int64_t *dims, const bool *reduced, float *y);

/* y = x transposed by perm, elements of `es` bytes. */
void fc_ref_transpose(const void *x, int rank, const int64_t *dims, const int64_t *perm, int es, void *y);
#endif
