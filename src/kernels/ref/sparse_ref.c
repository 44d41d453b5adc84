/* Scalar reference convolution and Gemm (double accumulation), used only by tests and the
 * microbenchmark's correctness check. */
#include "kernels/ref/sparse_ref.h"
#include <math.h>

static float clampf(double v, float lo, float hi) {
  float f = (float)v;
  f = f < lo ? lo : f;
  return f > hi ? hi : f;
}

void fc_sparse_ref_conv(const fc_sparse_conv_desc *d, const float *x, const float *w, const float *bias,
                   const float *res, float *y) {
  int64_t out_h = (d->in_h + d->pad_t + d->pad_b - d->dil_h * (d->k_h - 1) - 1) / d->stride_h + 1;
  int64_t out_w = (d->in_w + d->pad_l + d->pad_r - d->dil_w * (d->k_w - 1) - 1) / d->stride_w + 1;
  for (int64_t co = 0; co < d->cout; co++)
    for (int64_t oh = 0; oh < out_h; oh++)
      for (int64_t ow = 0; ow < out_w; ow++) {
        double acc = bias ? bias[co] : 0.0;
        for (int64_t ci = 0; ci < d->cin; ci++)
          for (int64_t kh = 0; kh < d->k_h; kh++) {
            int64_t ih = oh * d->stride_h + kh * d->dil_h - d->pad_t;
            if (ih < 0 || ih >= d->in_h) continue;
            for (int64_t kw = 0; kw < d->k_w; kw++) {
              int64_t iw = ow * d->stride_w + kw * d->dil_w - d->pad_l;
              if (iw < 0 || iw >= d->in_w) continue;
              acc += (double)w[((co * d->cin + ci) * d->k_h + kh) * d->k_w + kw] *
                     x[(ci * d->in_h + ih) * d->in_w + iw];
            }
          }
        int64_t o = (co * out_h + oh) * out_w + ow;
        if (res) acc += res[o];
        double v = clampf(acc, d->act_lo, d->act_hi);
        if (d->act == FC_SPARSE_ACT_SWISH) v = v / (1.0 + exp(-v));
        if (d->act == FC_SPARSE_ACT_HARDSWISH) v = v * (v + 3.0 < 0.0 ? 0.0 : v + 3.0 > 6.0 ? 6.0 : v + 3.0) / 6.0;
        y[o] = (float)v;
      }
}

void fc_sparse_ref_gemm(const fc_sparse_gemm_desc *d, const float *x, const float *b, const float *bias, float *y) {
  for (int64_t i = 0; i < d->m; i++)
    for (int64_t j = 0; j < d->n; j++) {
      double acc = 0;
      for (int64_t k = 0; k < d->k; k++)
        acc += (double)x[i * d->k + k] * (d->trans_b ? b[j * d->k + k] : b[k * d->n + j]);
      acc = d->alpha * acc + (bias ? d->beta * (double)bias[j] : 0.0);
      y[i * d->n + j] = clampf(acc, d->act_lo, d->act_hi);
    }
}
