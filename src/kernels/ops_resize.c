/* Resize and Upsample on float32: nearest (4 rounding modes), N-linear and cubic interpolation with
 * every coordinate_transformation_mode, as per-axis tap tables built at plan time. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kutil.h"
#include "util/mem.h"

enum { M_NEAREST, M_LINEAR, M_CUBIC };
enum { C_HALF_PIXEL, C_HALF_PIXEL_SYM, C_PYTORCH_HALF_PIXEL, C_ALIGN_CORNERS, C_ASYMMETRIC, C_TF_HALF_PIXEL_NN,
       C_TF_CROP };
enum { N_ROUND_PREFER_FLOOR, N_ROUND_PREFER_CEIL, N_FLOOR, N_CEIL };

#define MAX_COMBOS 256

typedef struct rs_axis {
  int taps;        /* 1 (nearest or untouched axis), 2 (linear) or 4 (cubic) */
  int64_t *idx;    /* out_dim × taps input coordinates */
  float *w;        /* out_dim × taps weights */
  uint8_t *outside;/* out_dim flags: tf_crop_and_resize sampled outside the input */
} rs_axis;

typedef struct rs_state {
  int rank;
  int64_t in[FC_MAX_RANK], out[FC_MAX_RANK], istr[FC_MAX_RANK];
  rs_axis ax[FC_MAX_RANK];
  float extrapolation;
  int64_t rows;
  int64_t tmp_stride; /* floats of scratch per thread (0: none) */
} rs_state;

/* m is the integer output length. For align_corners, pytorch_half_pixel and tf_crop_and_resize the
 * ONNX reference divides by the fractional scale·n instead; ONNX Runtime and PyTorch (whose exports
 * these are) use m, and so do we: they differ only when scale·n is not an integer. */
static double source_coord(int ctm, int64_t o, double scale, int64_t n, int64_t m, double roi_lo, double roi_hi) {
  double x = (double)o;
  switch (ctm) {
    case C_HALF_PIXEL_SYM: {
      double adj = (double)m / (scale * (double)n), center = (double)n / 2;
      return center * (1 - adj) + (x + 0.5) / scale - 0.5;
    }
    case C_PYTORCH_HALF_PIXEL: return m > 1 ? (x + 0.5) / scale - 0.5 : 0;
    case C_ALIGN_CORNERS: return m == 1 ? 0 : x * (double)(n - 1) / (double)(m - 1);
    case C_ASYMMETRIC: return x / scale;
    case C_TF_HALF_PIXEL_NN: return (x + 0.5) / scale;
    case C_TF_CROP:
      return m > 1 ? roi_lo * (double)(n - 1) + x * (roi_hi - roi_lo) * (double)(n - 1) / (double)(m - 1)
                   : 0.5 * (roi_lo + roi_hi) * (double)(n - 1);
    default: return (x + 0.5) / scale - 0.5;
  }
}

static int64_t clamp_i(int64_t v, int64_t n) { return v < 0 ? 0 : v >= n ? n - 1 : v; }

static int64_t nearest_index(int nm, double x) {
  double f = floor(x);
  switch (nm) {
    case N_FLOOR: return (int64_t)f;
    case N_CEIL: return (int64_t)ceil(x);
    case N_ROUND_PREFER_CEIL: return x - f == 0.5 ? (int64_t)f + 1 : (int64_t)floor(x + 0.5);
    default: return x - f == 0.5 ? (int64_t)f : (int64_t)floor(x + 0.5);
  }
}

/* Keys' cubic convolution weights for the taps at floor-1 .. floor+2, t = x - floor(x). */
static void cubic_weights(double t, double a, double *w) {
  double t1 = t + 1, u = 1 - t, u1 = u + 1;
  w[0] = ((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a;
  w[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
  w[2] = ((a + 2) * u - (a + 3)) * u * u + 1;
  w[3] = ((a * u1 - 5 * a) * u1 + 8 * a) * u1 - 4 * a;
}

typedef struct rs_opts {
  int mode, ctm, nearest;
  double cubic_a;
  bool exclude_outside;
} rs_opts;

static void build_axis(rs_axis *a, const rs_opts *op, int64_t n, int64_t m, double scale, double roi_lo, double roi_hi,
                       bool identity) {
  for (int64_t o = 0; o < m; o++) {
    int64_t *idx = a->idx + o * a->taps;
    float *w = a->w + o * a->taps;
    if (identity) {
      idx[0] = o;
      w[0] = 1;
      continue;
    }
    double x = source_coord(op->ctm, o, scale, n, m, roi_lo, roi_hi);
    if (op->ctm == C_TF_CROP && (x < 0 || x > (double)(n - 1))) {
      a->outside[o] = 1;
      for (int t = 0; t < a->taps; t++) idx[t] = 0, w[t] = 0;
      continue;
    }
    if (op->mode == M_NEAREST) {
      idx[0] = clamp_i(nearest_index(op->nearest, x), n);
      w[0] = 1;
    } else if (op->mode == M_LINEAR) {
      double xc = x < 0 ? 0 : x > (double)(n - 1) ? (double)(n - 1) : x;
      int64_t f = (int64_t)floor(xc);
      double t = xc - (double)f;
      idx[0] = clamp_i(f, n);
      idx[1] = clamp_i(f + 1, n);
      w[0] = (float)(1 - t);
      w[1] = (float)t;
    } else {
      int64_t f = (int64_t)floor(x);
      double ww[4], sum = 0;
      cubic_weights(x - (double)f, op->cubic_a, ww);
      for (int t = 0; t < 4; t++) {
        int64_t i = f - 1 + t;
        if (op->exclude_outside && (i < 0 || i >= n)) ww[t] = 0;
        sum += ww[t];
        idx[t] = clamp_i(i, n);
      }
      for (int t = 0; t < 4; t++) w[t] = (float)(op->exclude_outside && sum != 0 ? ww[t] / sum : ww[t]);
    }
  }
}

typedef struct rs_run {
  const rs_state *s;
  const float *x;
  float *y;
  float *scratch; /* per thread: one input row, for linear/cubic (NULL: taps read the input directly) */
} rs_run;

/* tmp[w] = sum_c ws[c] * x[offs[c] + w]: the outer axes' interpolation of one input row */
FC_SIMD_CLONES static void combine_rows(float *tmp, const float *x, const int64_t *offs, const float *ws, int nc,
                                        int64_t w) {
  const float *x0 = x + offs[0];
  float w0 = ws[0];
  FC_SIMD for (int64_t i = 0; i < w; i++) tmp[i] = w0 * x0[i];
  for (int c = 1; c < nc; c++) {
    const float *xc = x + offs[c];
    float wc = ws[c];
    FC_SIMD for (int64_t i = 0; i < w; i++) tmp[i] += wc * xc[i];
  }
}

static void rs_rows(void *ctx, int64_t r0, int64_t r1) {
  const rs_run *r = ctx;
  const rs_state *s = r->s;
  int R = s->rank;
  const rs_axis *la = &s->ax[R - 1];
  int64_t L = s->out[R - 1], T = la->taps, W = s->in[R - 1];
  int64_t offs[MAX_COMBOS], prev_offs[MAX_COMBOS];
  float ws[MAX_COMBOS], prev_ws[MAX_COMBOS];
  int prev_nc = -1;
  float *tmp = r->scratch ? r->scratch + (size_t)omp_get_thread_num() * (size_t)s->tmp_stride : NULL;
  for (int64_t row = r0; row < r1; row++) {
    float *y = r->y + row * L;
    /* the taps of every outer axis multiply out into (offset, weight) combinations */
    int nc = 1;
    offs[0] = 0;
    ws[0] = 1;
    bool outside = false;
    int64_t rem = row, coord[FC_MAX_RANK] = {0};
    for (int d = R - 2; d >= 0; d--) {
      coord[d] = rem % s->out[d];
      rem /= s->out[d];
    }
    for (int d = 0; d < R - 1; d++) {
      const rs_axis *a = &s->ax[d];
      int64_t o = coord[d];
      if (a->outside && a->outside[o]) outside = true;
      int prev = nc;
      for (int t = a->taps - 1; t >= 0; t--)
        for (int c = 0; c < prev; c++) {
          offs[t * prev + c] = offs[c] + a->idx[o * a->taps + t] * s->istr[d];
          ws[t * prev + c] = ws[c] * a->w[o * a->taps + t];
        }
      nc = prev * a->taps;
    }
    if (outside) {
      for (int64_t o = 0; o < L; o++) y[o] = s->extrapolation;
      prev_nc = -1;
      continue;
    }
    /* upsampling repeats source rows: the same combinations give the row just written */
    if (nc == prev_nc && !memcmp(offs, prev_offs, (size_t)nc * sizeof offs[0]) &&
        !memcmp(ws, prev_ws, (size_t)nc * sizeof ws[0])) {
      memcpy(y, y - L, (size_t)L * sizeof(float));
      continue;
    }
    prev_nc = nc;
    memcpy(prev_offs, offs, (size_t)nc * sizeof offs[0]);
    memcpy(prev_ws, ws, (size_t)nc * sizeof ws[0]);
    if (nc == 1 && T == 1) { /* nearest (or untouched) on every axis: a gather */
      const float *x = r->x + offs[0];
      for (int64_t o = 0; o < L; o++) y[o] = x[la->idx[o]];
    } else if (tmp) { /* separable: interpolate the outer axes into one row, then along the last */
      combine_rows(tmp, r->x, offs, ws, nc, W);
      for (int64_t o = 0; o < L; o++) {
        const int64_t *li = la->idx + o * T;
        const float *lw = la->w + o * T;
        float acc = 0;
        for (int64_t t = 0; t < T; t++) acc += lw[t] * tmp[li[t]];
        y[o] = acc;
      }
    } else {
      for (int64_t o = 0; o < L; o++) {
        const int64_t *li = la->idx + o * T;
        const float *lw = la->w + o * T;
        float acc = 0;
        for (int c = 0; c < nc; c++) {
          const float *x = r->x + offs[c];
          float part = 0;
          for (int64_t t = 0; t < T; t++) part += lw[t] * x[li[t]];
          acc += ws[c] * part;
        }
        y[o] = acc;
      }
    }
    if (la->outside)
      for (int64_t o = 0; o < L; o++)
        if (la->outside[o]) y[o] = s->extrapolation;
  }
}

static void rs_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const rs_state *s = en->state;
  rs_run r = {s, io->in[0], io->out[0], s->tmp_stride ? io->scratch : NULL};
  int64_t L = s->out[s->rank - 1];
  if (!L || !s->rows) return;
  int64_t grain = FC_PAR_GRAIN / L;
  fc_parallel_range(en->threads, s->rows, grain < 1 ? 1 : grain, rs_rows, &r);
}

static int parse_enum(const char *s, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (!strcmp(s, names[i])) return i;
  return -1;
}

static fc_status rs_prepare(fc_exec_node *en, fc_err *err) {
  const fc_node *n = en->node;
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  if (x->dtype != FC_DT_FLOAT) return fc_kfail(en, err, "only float32 is supported");
  int R = x->rank;
  if (R < 1 || y->rank != R) return fc_kfail(en, err, "rank must be >= 1");
  bool upsample = !strcmp(n->op_type, "Upsample"), legacy = upsample || en->g->opset < 11;
  rs_opts op = {0};
  static const char *const modes[] = {"nearest", "linear", "cubic"};
  static const char *const ctms[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                     "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
  static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  const char *mode = fc_attr_str(n, "mode", "nearest");
  op.mode = !strcmp(mode, "bilinear") || !strcmp(mode, "trilinear") ? M_LINEAR : parse_enum(mode, modes, 3);
  /* Upsample and opset-10 Resize: asymmetric coordinates, nearest rounds down (pixel replication) */
  const char *ctm = legacy ? "asymmetric" : fc_attr_str(n, "coordinate_transformation_mode", "half_pixel");
  const char *nm = legacy ? "floor" : fc_attr_str(n, "nearest_mode", "round_prefer_floor");
  op.ctm = parse_enum(ctm, ctms, 7);
  op.nearest = parse_enum(nm, nms, 4);
  op.cubic_a = fc_attr_float(n, "cubic_coeff_a", -0.75f);
  op.exclude_outside = fc_attr_int(n, "exclude_outside", 0) != 0;
  if (op.mode < 0 || op.ctm < 0 || op.nearest < 0)
    return fc_kfail(en, err, "mode '%s' / coordinate_transformation_mode '%s' / nearest_mode '%s' is not supported",
                    mode, ctm, nm);
  if (fc_attr_int(n, "antialias", 0)) return fc_kfail(en, err, "antialias is not supported");
  /* axes the scales/sizes/roi entries refer to */
  int64_t axes[FC_MAX_RANK];
  int na;
  fc_status st = fc_kconst_ints(en, -1, "axes", axes, FC_MAX_RANK, &na, err);
  if (st) return st;
  if (na < 0) {
    na = R;
    for (int d = 0; d < R; d++) axes[d] = d;
  }
  for (int i = 0; i < na; i++) {
    if (axes[i] < 0) axes[i] += R;
    if (axes[i] < 0 || axes[i] >= R) return fc_kfail(en, err, "axis out of range");
  }
  double scale[FC_MAX_RANK], roi_lo[FC_MAX_RANK], roi_hi[FC_MAX_RANK];
  for (int d = 0; d < R; d++) scale[d] = 1, roi_lo[d] = 0, roi_hi[d] = 1;
  const fc_value *scales = fc_en_in(en, legacy ? 1 : 2), *sizes = legacy ? NULL : fc_en_in(en, 3);
  if (scales && fc_value_numel(scales) == 0) scales = NULL;
  if (sizes && fc_value_numel(sizes) == 0) sizes = NULL;
  if (sizes) {
    const char *policy = fc_attr_str(n, "keep_aspect_ratio_policy", "stretch");
    bool keep = strcmp(policy, "stretch") != 0;
    double common = 0;
    for (int i = 0; i < na; i++) {
      double r = x->dims[axes[i]] ? (double)y->dims[axes[i]] / (double)x->dims[axes[i]] : 1;
      if (keep) { /* the output was rounded from one common scale: recover it from the requested sizes */
        double want = x->dims[axes[i]] ? (double)fc_data_get_i64(sizes->dtype, sizes->data, i) / (double)x->dims[axes[i]] : 1;
        if (i == 0 || (!strcmp(policy, "not_larger") ? want < common : want > common)) common = want;
      }
      scale[axes[i]] = r;
    }
    if (keep) {
      if (!sizes->data) return fc_kfail(en, err, "sizes must be constant");
      for (int i = 0; i < na; i++) scale[axes[i]] = common;
    }
  } else if (scales) {
    if (!scales->data || !fc_dtype_is_float(scales->dtype) || fc_value_numel(scales) != na)
      return fc_kfail(en, err, "scales must be a constant float tensor with one entry per axis");
    for (int i = 0; i < na; i++) scale[axes[i]] = fc_data_get_f64(scales->dtype, scales->data, i);
  } else {
    const fc_attr *sa = fc_node_attr(n, "scales");
    if (!sa || sa->n_floats != (size_t)R) return fc_kfail(en, err, "needs scales or sizes");
    for (int d = 0; d < R; d++) scale[d] = sa->floats[d];
  }
  if (op.ctm == C_TF_CROP) {
    const fc_value *roi = fc_en_in(en, 1);
    if (!roi || !roi->data || fc_value_numel(roi) != 2 * na) return fc_kfail(en, err, "roi must be a constant with 2 entries per axis");
    for (int i = 0; i < na; i++) {
      roi_lo[axes[i]] = fc_data_get_f64(roi->dtype, roi->data, i);
      roi_hi[axes[i]] = fc_data_get_f64(roi->dtype, roi->data, na + i);
    }
  }
  rs_state *s = fc_kstate(en, sizeof *s, err);
  if (!s) return err->status;
  s->rank = R;
  s->extrapolation = fc_attr_float(n, "extrapolation_value", 0.0f);
  int64_t acc = 1;
  for (int d = R - 1; d >= 0; d--) {
    s->in[d] = x->dims[d];
    s->out[d] = y->dims[d];
    s->istr[d] = acc;
    acc *= x->dims[d];
  }
  s->rows = fc_kdims_numel(R - 1, y->dims);
  bool identity[FC_MAX_RANK];
  int combos = 1;
  for (int d = 0; d < R; d++) {
    if (s->in[d] == 0 && s->out[d] > 0) return fc_kfail(en, err, "cannot resize an empty axis");
    if (!(scale[d] > 0)) return fc_kfail(en, err, "scale must be positive");
    identity[d] = s->in[d] == s->out[d] && scale[d] == 1.0 && op.ctm != C_TF_CROP;
    s->ax[d].taps = identity[d] || op.mode == M_NEAREST ? 1 : op.mode == M_LINEAR ? 2 : 4;
    if (d < R - 1) combos *= s->ax[d].taps;
  }
  if (combos > MAX_COMBOS) return fc_kfail(en, err, "too many interpolated axes");
  if (s->ax[R - 1].taps > 1 || combos > 1) { /* a row of scratch per thread, 64-byte aligned */
    s->tmp_stride = (s->in[R - 1] + 15) & ~(int64_t)15;
    en->scratch_bytes = (size_t)s->tmp_stride * sizeof(float) * (size_t)(en->threads > 0 ? en->threads : 1);
  }
  for (int d = 0; d < R; d++) {
    rs_axis *a = &s->ax[d];
    size_t cnt = (size_t)s->out[d] * (size_t)a->taps + 1;
    a->idx = fc_calloc(cnt, sizeof(int64_t));
    a->w = fc_calloc(cnt, sizeof(float));
    a->outside = op.ctm == C_TF_CROP ? fc_calloc((size_t)s->out[d] + 1, 1) : NULL;
    if (!a->idx || !a->w || (op.ctm == C_TF_CROP && !a->outside)) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
    build_axis(a, &op, s->in[d], s->out[d], scale[d], roi_lo[d], roi_hi[d], identity[d]);
  }
  return FC_OK;
}

static void rs_release(fc_exec_node *en) {
  rs_state *s = en->state;
  for (int d = 0; s && d < FC_MAX_RANK; d++) {
    free(s->ax[d].idx);
    free(s->ax[d].w);
    free(s->ax[d].outside);
  }
  fc_kstate_release(en);
}

const fc_kernel fc_kernels_resize[] = {
    {.op_type = "Resize", .prepare = rs_prepare, .run = rs_run_fn, .release = rs_release},
    {.op_type = "Upsample", .prepare = rs_prepare, .run = rs_run_fn, .release = rs_release},
    {.op_type = NULL},
};
