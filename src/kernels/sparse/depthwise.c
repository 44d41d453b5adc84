/* Depthwise convolution (one filter per channel) in plain NCHW with its activation fused: between
 * sparse convolutions, which work in NCHW, it saves two layout conversions that would cost more
 * than the depthwise conv itself. Row by row, each nonzero tap adds a shifted (strided) input row;
 * zero taps are skipped, so pruned depthwise filters run faster too. */
#include "kernels/sparse/depthwise.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kutil.h"
#include "util/mem.h"

#define SIMD_LOOP _Pragma("omp simd")

/* y = clamp(acc (+ res), lo, hi) over n values */
FC_SIMD_CLONES static void store_clamped(float *y, const float *acc, const float *res, int64_t n, float lo, float hi) {
  if (res) {
    SIMD_LOOP for (int64_t i = 0; i < n; i++) {
      float v = acc[i] + res[i];
      v = v < lo ? lo : v;
      y[i] = v > hi ? hi : v;
    }
  } else {
    SIMD_LOOP for (int64_t i = 0; i < n; i++) {
      float v = acc[i] < lo ? lo : acc[i];
      y[i] = v > hi ? hi : v;
    }
  }
}

FC_SIMD_CLONES static void dw_channel(const fc_dw *d, int64_t ch, const float *x, const float *res, float *y,
                                      float *acc) {
  const float b = d->bias ? d->bias[ch] : 0.0f, lo = d->lo, hi = d->hi;
  const int64_t t0 = d->tap_start[ch], t1 = d->tap_start[ch + 1], sw = d->sw;
  for (int64_t oh = 0; oh < d->out_h; oh++) {
    SIMD_LOOP for (int64_t ow = 0; ow < d->out_w; ow++) acc[ow] = b;
    for (int64_t t = t0; t < t1; t++) {
      int64_t ih = oh * d->sh + d->tap_row[t];
      if (ih < 0 || ih >= d->in_h) continue;
      const int64_t ow0 = d->tap_ow0[t], ow1 = d->tap_ow1[t];
      const float w = d->tap_w[t], *src = x + ih * d->in_w + d->tap_col[t]; /* input column = ow·sw + tap_col */
      if (sw == 1) {
        SIMD_LOOP for (int64_t ow = ow0; ow < ow1; ow++) acc[ow] += w * src[ow];
      } else if (sw == 2) { /* a constant stride vectorises with permutes, a variable one with gathers */
        SIMD_LOOP for (int64_t ow = ow0; ow < ow1; ow++) acc[ow] += w * src[2 * ow];
      } else {
        SIMD_LOOP for (int64_t ow = ow0; ow < ow1; ow++) acc[ow] += w * src[ow * sw];
      }
    }
    store_clamped(y + oh * d->out_w, acc, res ? res + oh * d->out_w : NULL, d->out_w, lo, hi);
  }
}

/* One channel of a flat-plane layer: every tap is one loop over the plane. */
FC_SIMD_CLONES static void dw_channel_flat(const fc_dw *d, int64_t ch, const float *x, const float *res, float *y,
                                           float *acc) {
  const float b = d->bias ? d->bias[ch] : 0.0f, lo = d->lo, hi = d->hi;
  const int64_t P = d->out_h * d->out_w, t0 = d->tap_start[ch], t1 = d->tap_start[ch + 1];
  SIMD_LOOP for (int64_t p = 0; p < P; p++) acc[p] = b;
  for (int64_t t = t0; t < t1; t++) {
    const float w = d->tap_w[t], *src = x + d->tap_off[t];
    const int64_t p0 = d->tap_p0[t], p1 = d->tap_p1[t];
    if (d->tap_col[t] == 0) {
      SIMD_LOOP for (int64_t p = p0; p < p1; p++) acc[p] += w * src[p];
    } else {
      const float *m = d->col_mask + (d->tap_col[t] + d->kw) * P;
      SIMD_LOOP for (int64_t p = p0; p < p1; p++) acc[p] += w * src[p] * m[p];
    }
  }
  store_clamped(y, acc, res, P, lo, hi);
}

/* The flat-plane form's per-tap ranges and column masks (see fc_dw). */
static fc_status plan_flat(fc_dw *d) {
  const int64_t W = d->in_w, H = d->in_h, P = H * W, nz = d->nnz;
  d->tap_p0 = fc_calloc((size_t)nz + 1, sizeof(int64_t));
  d->tap_p1 = fc_calloc((size_t)nz + 1, sizeof(int64_t));
  d->tap_off = fc_calloc((size_t)nz + 1, sizeof(int64_t));
  d->col_mask = fc_calloc((size_t)(2 * d->kw + 1) * (size_t)P, sizeof(float));
  if (!d->tap_p0 || !d->tap_p1 || !d->tap_off || !d->col_mask) return FC_ERR_NOMEM;
  for (int64_t s = -d->kw; s <= d->kw; s++)
    for (int64_t p = 0; p < P; p++) {
      int64_t col = p % W + s;
      d->col_mask[(s + d->kw) * P + p] = col >= 0 && col < W ? 1.0f : 0.0f;
    }
  for (int64_t t = 0; t < nz; t++) {
    int64_t dy = d->tap_row[t], dx = d->tap_col[t];
    /* output rows whose input row lies in the plane */
    int64_t r0 = dy < 0 ? -dy : 0, r1 = dy > 0 ? H - dy : H;
    if (r1 < r0) r1 = r0;
    int64_t p0 = r0 * W, p1 = r1 * W;
    /* the first -dx pixels of a negative shift and the last dx of a positive one are masked out
     * anyway; leaving them out keeps every read inside the plane */
    if (dx < 0) p0 -= dx;
    if (dx > 0) p1 -= dx;
    if (p1 < p0) p1 = p0;
    d->tap_p0[t] = p0;
    d->tap_p1[t] = p1;
    d->tap_off[t] = dy * W + dx;
  }
  return FC_OK;
}

fc_status fc_dw_create(fc_dw *d, const float *w, const float *bias, const char *name, fc_err *err) {
  const int64_t lim = (int64_t)1 << 24;
  if (d->c < 1 || d->in_h < 1 || d->in_w < 1 || d->kh < 1 || d->kw < 1 || d->sh < 1 || d->sw < 1 || d->dh < 1 ||
      d->dw < 1 || d->pt < 0 || d->pl < 0 || d->out_h < 1 || d->out_w < 1 || d->threads < 1 || d->n < 1)
    return fc_fail(err, FC_ERR_ARG, "%s: bad depthwise geometry", name);
  if (d->c > lim || d->in_h > lim || d->in_w > lim || d->out_w > lim || d->kh > 64 || d->kw > 64 || d->sh > 64 ||
      d->sw > 64 || d->dh > 64 || d->dw > 64 || d->pt > lim || d->pl > lim)
    return fc_fail(err, FC_ERR_UNSUPPORTED, "%s: depthwise geometry beyond the supported range", name);
  int64_t kk = d->kh * d->kw, nz = 0;
  for (int64_t i = 0; i < d->c * kk; i++) nz += w[i] != 0.0f;
  d->tap_start = fc_calloc((size_t)d->c + 1, sizeof(int64_t));
  d->tap_row = fc_calloc((size_t)nz + 1, sizeof(int64_t));
  d->tap_col = fc_calloc((size_t)nz + 1, sizeof(int64_t));
  d->tap_ow0 = fc_calloc((size_t)nz + 1, sizeof(int64_t));
  d->tap_ow1 = fc_calloc((size_t)nz + 1, sizeof(int64_t));
  d->tap_w = fc_calloc((size_t)nz + 1, sizeof(float));
  d->bias = bias ? fc_malloc((size_t)d->c * sizeof(float)) : NULL;
  if (!d->tap_start || !d->tap_row || !d->tap_col || !d->tap_ow0 || !d->tap_ow1 || !d->tap_w || (bias && !d->bias))
    return fc_fail(err, FC_ERR_NOMEM, "%s: out of memory", name);
  if (bias) memcpy(d->bias, bias, (size_t)d->c * sizeof(float));
  int64_t t = 0;
  for (int64_t ch = 0; ch < d->c; ch++) {
    d->tap_start[ch] = t;
    for (int64_t kh = 0; kh < d->kh; kh++)
      for (int64_t kw = 0; kw < d->kw; kw++) {
        float v = w[ch * kk + kh * d->kw + kw];
        if (v == 0.0f) continue;
        int64_t col = kw * d->dw - d->pl, ow0 = 0, ow1 = d->out_w;
        /* output columns whose input column ow·sw + col lies in [0, in_w) */
        while (ow0 < ow1 && ow0 * d->sw + col < 0) ow0++;
        while (ow1 > ow0 && (ow1 - 1) * d->sw + col >= d->in_w) ow1--;
        d->tap_row[t] = kh * d->dh - d->pt;
        d->tap_col[t] = col;
        d->tap_ow0[t] = ow0;
        d->tap_ow1[t] = ow1;
        d->tap_w[t++] = v;
      }
  }
  d->tap_start[d->c] = t;
  d->nnz = nz;
  /* planes of a 7×7 or 14×14 map spent more on row loops of 7-14 floats than on arithmetic (960
   * channels at 7×7: 0.13 -> 0.04 ms; MobileNetV2 at 90 %, 1 thread: 6.8 -> 5.4 ms) */
  d->flat = d->sh == 1 && d->sw == 1 && d->dh == 1 && d->dw == 1 && d->out_h == d->in_h && d->out_w == d->in_w &&
            d->in_h * d->in_w <= 4096 && d->kw <= 64;
  if (d->flat && plan_flat(d) != FC_OK) return fc_fail(err, FC_ERR_NOMEM, "%s: out of memory", name);
  int64_t acc_floats = d->flat ? d->out_h * d->out_w : d->out_w;
  d->per_thread = (size_t)((acc_floats + 16) * (int64_t)sizeof(float) + 63) / 64 * 64;
  return FC_OK;
}

void fc_dw_free(fc_dw *d) {
  free(d->tap_start), free(d->tap_row), free(d->tap_col), free(d->tap_ow0), free(d->tap_ow1);
  free(d->tap_w), free(d->bias), free(d->tap_p0), free(d->tap_p1), free(d->tap_off), free(d->col_mask);
  d->tap_start = d->tap_row = d->tap_col = d->tap_ow0 = d->tap_ow1 = d->tap_p0 = d->tap_p1 = d->tap_off = NULL;
  d->tap_w = d->bias = d->col_mask = NULL;
}

void fc_dw_run(const fc_dw *d, const float *x, const float *res, float *y, void *scratch) {
  const int64_t items = d->n * d->c, xs = d->in_h * d->in_w, ys = d->out_h * d->out_w;
  const int nt = d->threads > 1 && items >= 2 * d->threads ? d->threads : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    float *acc = (float *)((char *)scratch + d->per_thread * (size_t)omp_get_thread_num());
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; it++) {
      const float *r = res ? res + it * ys : NULL;
      if (d->flat) dw_channel_flat(d, it % d->c, x + it * xs, r, y + it * ys, acc);
      else dw_channel(d, it % d->c, x + it * xs, r, y + it * ys, acc);
    }
  }
}
