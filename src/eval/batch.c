/* flopcut eval, the pure part: how an image file maps onto a model input, label checks,
 * normalisation and batch filling, top-k ranks. No model is run here, so all of it is unit-tested. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "eval/eval.h"
#include "util/mem.h"

void fc_eval_options_default(fc_eval_options *o) {
  memset(o, 0, sizeof *o);
  o->scale = -1;
  o->batch = 64;
}

static const char *dims_str(int rank, const int64_t *dims, char *buf, size_t n) {
  size_t at = 0;
  buf[0] = '\0';
  for (int d = 0; d < rank && at + 1 < n; d++) {
    int w = dims[d] < 0 ? snprintf(buf + at, n - at, "%s?", d ? "x" : "")
                        : snprintf(buf + at, n - at, "%s%lld", d ? "x" : "", (long long)dims[d]);
    if (w < 0) break;
    at += (size_t)w;
  }
  return buf;
}

static bool fits(int64_t model_dim, int64_t file_dim) { return model_dim < 0 || model_dim == file_dim; }

/* Product of dims[from..to) if every one is known and it does not overflow; else -1. The dims come
 * straight from the model file, before any inference has bounded them. */
static int64_t known_product(const int64_t *dims, int from, int to) {
  int64_t p = 1;
  for (int d = from; d < to; d++)
    if (dims[d] < 0 || !fc_mul_i64(p, dims[d], &p)) return -1;
  return p;
}

fc_status fc_eval_geom_match(const fc_array *im, const char *path, int rank, const int64_t *dims,
                             fc_eval_layout layout, fc_eval_geom *g, fc_err *err) {
  memset(g, 0, sizeof *g);
  char fbuf[96], mbuf[96];
  if (rank < 2 || rank > 8)
    return fc_fail(err, FC_ERR_UNSUPPORTED, "eval needs a model input of rank 2 to 8 with the batch first; it has rank %d", rank);
  if (im->rank < 2)
    return fc_fail(err, FC_ERR_ARG, "'%s' holds a %d-D array; eval needs images as NxHxW, NxCxHxW or NxHxWxC", path, im->rank);
  g->n = im->dims[0];
  g->per_image = im->count / im->dims[0];
  g->model_rank = rank;
  g->model_dims[0] = dims[0];
  const int64_t *f = im->dims + 1;
  int fr = im->rank - 1;
  bool ok = false, nhwc_fits = false;
  if (rank == 4) {
    if (fr == 2 && layout != FC_EVAL_LAYOUT_NHWC) { /* N×H×W: one channel */
      ok = fits(dims[1], 1) && fits(dims[2], f[0]) && fits(dims[3], f[1]);
      g->c = 1, g->h = f[0], g->w = f[1];
    } else if (fr == 3) {
      bool as_nchw = fits(dims[1], f[0]) && fits(dims[2], f[1]) && fits(dims[3], f[2]);
      bool as_nhwc = fits(dims[1], f[2]) && fits(dims[2], f[0]) && fits(dims[3], f[1]);
      nhwc_fits = as_nhwc;
      if (layout == FC_EVAL_LAYOUT_NHWC || (layout == FC_EVAL_LAYOUT_AUTO && !as_nchw && as_nhwc)) {
        ok = as_nhwc;
        g->nhwc = true;
        g->c = f[2], g->h = f[0], g->w = f[1];
      } else {
        ok = as_nchw;
        g->c = f[0], g->h = f[1], g->w = f[2];
      }
    }
    if (!ok && fr == 1 && known_product(dims, 1, 4) == g->per_image) { /* N×784 rows, 1×28×28 input */
      ok = true;
      g->nhwc = false;
      g->c = dims[1], g->h = dims[2], g->w = dims[3];
    }
    if (ok) g->model_dims[1] = g->c, g->model_dims[2] = g->h, g->model_dims[3] = g->w;
  } else {
    if (layout == FC_EVAL_LAYOUT_NHWC)
      return fc_fail(err, FC_ERR_ARG, "--layout nhwc needs a model input of rank 4 (NxCxHxW); it has rank %d", rank);
    bool known = true;
    for (int d = 1; d < rank; d++) known = known && dims[d] >= 0;
    if (known && known_product(dims, 1, rank) == g->per_image) {
      ok = true;
      for (int d = 1; d < rank; d++) g->model_dims[d] = dims[d];
    } else if (!known && fr == rank - 1) {
      ok = true;
      for (int d = 1; d < rank; d++) {
        ok = ok && fits(dims[d], f[d - 1]);
        g->model_dims[d] = f[d - 1];
      }
    }
    g->c = 1, g->h = 1, g->w = g->per_image;
  }
  if (!ok)
    return fc_fail(err, FC_ERR_SHAPE, "images in '%s' are %s (N first) but the model's input is %s%s", path,
                   dims_str(im->rank, im->dims, fbuf, sizeof fbuf), dims_str(rank, dims, mbuf, sizeof mbuf),
                   nhwc_fits && layout == FC_EVAL_LAYOUT_NCHW ? " (try --layout nhwc)" : "");
  return FC_OK;
}

static bool is_int_dtype(int dt) {
  return dt == FC_DT_UINT8 || dt == FC_DT_INT8 || dt == FC_DT_INT16 || dt == FC_DT_UINT16 ||
         dt == FC_DT_INT32 || dt == FC_DT_UINT32 || dt == FC_DT_INT64 || dt == FC_DT_UINT64;
}

int64_t fc_eval_label(const fc_array *labels, int64_t i) { return fc_data_get_i64(labels->dtype, labels->data, i); }

fc_status fc_eval_check_labels(const fc_array *lab, const char *path, int64_t n_images, int64_t classes,
                               fc_err *err) {
  if (!(lab->rank == 1 || (lab->rank == 2 && lab->dims[1] == 1)))
    return fc_fail(err, FC_ERR_ARG, "labels in '%s' must be one integer per image (N or Nx1); the array has rank %d",
                   path, lab->rank);
  if (!is_int_dtype(lab->dtype))
    return fc_fail(err, FC_ERR_ARG, "labels in '%s' are %s; eval needs integer class indices", path,
                   fc_dtype_name(lab->dtype));
  if (lab->dims[0] != n_images)
    return fc_fail(err, FC_ERR_ARG, "'%s' holds %lld labels for %lld images", path, (long long)lab->dims[0],
                   (long long)n_images);
  if (classes > 0)
    for (int64_t i = 0; i < lab->dims[0]; i++) {
      int64_t v = fc_eval_label(lab, i);
      if (v < 0 || v >= classes || (lab->dtype == FC_DT_UINT64 && ((const uint64_t *)lab->data)[i] > INT64_MAX))
        return fc_fail(err, FC_ERR_ARG, "label %lld of '%s' is %lld, outside the model's %lld classes",
                       (long long)i, path, (long long)v, (long long)classes);
    }
  return FC_OK;
}

fc_status fc_eval_check_norm(const fc_eval_options *o, const fc_array *im, const fc_eval_geom *g, double *scale,
                             fc_err *err) {
  *scale = o->scale < 0 ? (im->dtype == FC_DT_UINT8 ? 1.0 / 255.0 : 1.0) : o->scale;
  if (!isfinite(*scale)) return fc_fail(err, FC_ERR_ARG, "--scale must be a finite number");
  if (o->n_mean != 0 && o->n_mean != 1 && o->n_mean != g->c)
    return fc_fail(err, FC_ERR_ARG, "--mean has %d values; give 1 or one per channel (%lld)", o->n_mean,
                   (long long)g->c);
  if (o->n_std != 0 && o->n_std != 1 && o->n_std != g->c)
    return fc_fail(err, FC_ERR_ARG, "--std has %d values; give 1 or one per channel (%lld)", o->n_std,
                   (long long)g->c);
  for (int i = 0; i < o->n_mean; i++)
    if (!isfinite(o->mean[i])) return fc_fail(err, FC_ERR_ARG, "--mean values must be finite numbers");
  for (int i = 0; i < o->n_std; i++)
    if (!isfinite(o->std[i]) || o->std[i] == 0)
      return fc_fail(err, FC_ERR_ARG, "--std values must be finite and nonzero");
  return FC_OK;
}

void fc_eval_fill_batch(const fc_array *im, const fc_eval_geom *g, double scale, const fc_eval_options *o,
                        int64_t first, int64_t count, int64_t batch, float *out) {
  const int64_t c = g->c, hw = g->h * g->w, per = g->per_image;
  const bool plain = o->n_mean == 0 && o->n_std == 0;
  for (int64_t b = 0; b < count; b++) {
    const int64_t base = (first + b) * per;
    float *dst = out + b * per;
    for (int64_t ch = 0; ch < c; ch++) {
      const double m = o->n_mean ? o->mean[o->n_mean == 1 ? 0 : ch] : 0.0;
      const double s = o->n_std ? o->std[o->n_std == 1 ? 0 : ch] : 1.0;
      for (int64_t p = 0; p < hw; p++) {
        const int64_t src = g->nhwc ? base + p * c + ch : base + ch * hw + p;
        double v = im->dtype == FC_DT_UINT8 ? (double)((const uint8_t *)im->data)[src]
                                             : fc_data_get_f64(im->dtype, im->data, src);
        /* scale first, then (x - mean) / std, as torchvision's ToTensor + Normalize do; the
         * plain path rounds once, matching numpy's float32 x / 255 bit for bit */
        dst[ch * hw + p] = plain ? (float)(v * scale) : (float)((v * scale - m) / s);
      }
    }
  }
  if (count < batch) memset(out + count * per, 0, (size_t)((batch - count) * per) * sizeof(float));
}

int64_t fc_eval_rank(const float *logits, int64_t classes, int64_t label) {
  if (label < 0 || label >= classes) return classes;
  const float x = logits[label];
  if (isnan(x)) return classes;
  int64_t rank = 0;
  for (int64_t j = 0; j < classes; j++)
    if (logits[j] > x || (j < label && logits[j] == x) || isnan(logits[j])) rank++;
  return rank;
}
