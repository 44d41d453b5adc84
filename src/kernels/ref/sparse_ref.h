/* Scalar reference convolution and Gemm: the oracle the sparse (and any fast) kernels are tested
 * against. Straightforward loops in double precision; speed is not a goal. */
#ifndef FC_KERNELS_REF_SPARSE_REF_H
#define FC_KERNELS_REF_SPARSE_REF_H
#include "kernels/sparse/sparse.h"

/* One image: y = clamp(conv(x, w) + bias + res) with the geometry of d (groups = 1). */
void fc_sparse_ref_conv(const fc_sparse_conv_desc *d, const float *x, const float *w, const float *bias,
                   const float *res, float *y);
/* y[m, n] = clamp(alpha · x[m, :] · B[:, n] + beta · bias[n]), B as described by d. */
void fc_sparse_ref_gemm(const fc_sparse_gemm_desc *d, const float *x, const float *b, const float *bias, float *y);
#endif
