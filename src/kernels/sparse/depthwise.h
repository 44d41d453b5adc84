/* Depthwise convolution in plain NCHW with fused bias, residual and clamp (depthwise.c), for the
 * sparse runtime rows: plan once (taps of each channel, zero taps dropped), run without allocating. */
#ifndef FC_KERNELS_SPARSE_DEPTHWISE_H
#define FC_KERNELS_SPARSE_DEPTHWISE_H
#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

typedef struct fc_dw {
  /* set by the caller */
  int64_t n, c, in_h, in_w, out_h, out_w, kh, kw, sh, sw, dh, dw, pt, pl;
  float lo, hi;
  int threads;
  /* set by fc_dw_create: per channel ch, taps [tap_start[ch], tap_start[ch+1]), each reading input
   * row oh·sh + tap_row and columns ow·sw + tap_col for ow in [tap_ow0, tap_ow1) */
  int64_t nnz;
  int64_t *tap_start, *tap_row, *tap_col, *tap_ow0, *tap_ow1;
  float *tap_w, *bias;
  size_t per_thread; /* scratch bytes per thread */
  /* flat planes (stride 1, dilation 1, output as large as the input, planes of ≤ 4096 pixels): a
   * tap adds the whole shifted plane at once, pixels p in [tap_p0, tap_p1) of tap t reading p +
   * tap_off, columns that fall outside the row zeroed by the mask of its column shift (col_mask +
   * (tap_col + kw_max)·out_h·out_w, all ones for shift 0) */
  int flat;
  int64_t *tap_p0, *tap_p1, *tap_off;
  float *col_mask;
} fc_dw;

/* w: [c, 1, kh, kw]; bias [c] or NULL. */
fc_status fc_dw_create(fc_dw *d, const float *w, const float *bias, const char *name, fc_err *err);
void fc_dw_free(fc_dw *d);
/* x [n, c, in_h, in_w] → y [n, c, out_h, out_w] = clamp(dwconv + bias + res); scratch: per_thread ×
 * threads bytes, 64-byte aligned. */
void fc_dw_run(const fc_dw *d, const float *x, const float *res, float *y, void *scratch);
#endif
