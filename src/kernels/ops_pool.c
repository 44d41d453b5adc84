/* Pooling kernels on NC<spatial> tensors: MaxPool (with optional argmax indices), AveragePool
 * (count_include_pad, ceil_mode, dilations), GlobalAveragePool and GlobalMaxPool. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kutil.h"

typedef struct pool_state {
  int k;                     /* spatial rank */
  bool is_max, include_pad, fast2d, f32;
  bool max2x2s2; /* 2-D MaxPool 2×2, stride 2, no padding or dilation, output inside the input */
  int storage_order;
  int dtype;
  int64_t planes;            /* N·C */
  int64_t in[FC_MAX_RANK], out[FC_MAX_RANK];
  int64_t kernel[FC_MAX_RANK], stride[FC_MAX_RANK], dil[FC_MAX_RANK], pad[FC_MAX_RANK], pad_end[FC_MAX_RANK];
  int64_t in_plane, out_plane, win; /* elements per input/output plane, window size */
} pool_state;

/* ------------------------------------------------------------------ 2-D fast path (float) */

/* Output columns [lo, hi) whose tap at offset `off` (= kw·dil - pad) lands inside [0, W). */
static void tap_range(int64_t off, int64_t stride, int64_t w, int64_t ow, int64_t *lo, int64_t *hi) {
  int64_t l = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int64_t h = w - 1 - off < 0 ? 0 : (w - 1 - off) / stride + 1;
  if (h > ow) h = ow;
  if (l > h) l = h;
  *lo = l;
  *hi = h;
}

/* Number of window taps along one axis for output position o: inside the input (exclude pad) or
 * inside the padded extent (include pad). */
static int64_t axis_count(const pool_state *s, int d, int64_t o, bool include_pad) {
  int64_t start = o * s->stride[d] - s->pad[d], cnt = 0;
  int64_t lo = include_pad ? -s->pad[d] : 0, hi = include_pad ? s->in[d] + s->pad_end[d] : s->in[d];
  for (int64_t t = 0; t < s->kernel[d]; t++) {
    int64_t i = start + t * s->dil[d];
    cnt += i >= lo && i < hi;
  }
  return cnt;
}

FC_SIMD_CLONES static void row_max(float *o, const float *in, int64_t stride, int64_t n) {
  if (stride == 1) {
    FC_SIMD for (int64_t i = 0; i < n; i++) o[i] = in[i] > o[i] ? in[i] : o[i];
  } else if (stride == 2) { /* a constant stride vectorises with permutes, a variable one with gathers */
    FC_SIMD for (int64_t i = 0; i < n; i++) o[i] = in[2 * i] > o[i] ? in[2 * i] : o[i];
  } else {
    FC_SIMD for (int64_t i = 0; i < n; i++) o[i] = in[i * stride] > o[i] ? in[i * stride] : o[i];
  }
}

FC_SIMD_CLONES static void row_add(float *o, const float *in, int64_t stride, int64_t n) {
  if (stride == 1) {
    FC_SIMD for (int64_t i = 0; i < n; i++) o[i] += in[i];
  } else if (stride == 2) {
    FC_SIMD for (int64_t i = 0; i < n; i++) o[i] += in[2 * i];
  } else {
    FC_SIMD for (int64_t i = 0; i < n; i++) o[i] += in[i * stride];
  }
}

/* widest input row the 2-D path folds on the stack */
#define POOL_ROW_MAX 2048

typedef struct pool_run {
  const pool_state *s;
  const void *x;
  void *y;
  int64_t *idx;
} pool_run;

/* 2×2 max pooling, stride 2, no padding (LeNet/VGG-style nets): a whole plane in one loop nest,
 * without the per-row calls of the general path, which cost more than the pooling on small maps
 * (32×28×28 -> 14×14: 25 µs). */
FC_SIMD_CLONES static void max2x2s2_plane(const float *x, float *y, int64_t W, int64_t oh0, int64_t oh1, int64_t OW) {
  for (int64_t oh = oh0; oh < oh1; oh++) {
    const float *a = x + 2 * oh * W, *b = a + W;
    float *o = y + oh * OW;
    FC_SIMD for (int64_t ow = 0; ow < OW; ow++) {
      float m0 = a[2 * ow] > a[2 * ow + 1] ? a[2 * ow] : a[2 * ow + 1];
      float m1 = b[2 * ow] > b[2 * ow + 1] ? b[2 * ow] : b[2 * ow + 1];
      o[ow] = m0 > m1 ? m0 : m1;
    }
  }
}

/* One input row's column taps into an output row: max or sum of irow[ow·sw + kw·dw - pw]. */
static void row_taps(const pool_state *s, float *orow, const float *irow) {
  const int64_t W = s->in[1], OW = s->out[1], sw = s->stride[1];
  for (int64_t kw = 0; kw < s->kernel[1]; kw++) {
    int64_t off = kw * s->dil[1] - s->pad[1], lo, hi;
    tap_range(off, sw, W, OW, &lo, &hi);
    if (hi <= lo) continue;
    if (s->is_max) row_max(orow + lo, irow + lo * sw + off, sw, hi - lo);
    else row_add(orow + lo, irow + lo * sw + off, sw, hi - lo);
  }
}

/* Output rows [oh0, oh1) of planes [p0, p1). */
static void pool2d_block(const pool_run *r, int64_t p0, int64_t p1, int64_t oh0, int64_t oh1) {
  const pool_state *s = r->s;
  if (s->max2x2s2) {
    for (int64_t p = p0; p < p1; p++)
      max2x2s2_plane((const float *)r->x + p * s->in_plane, (float *)r->y + p * s->out_plane, s->in[1], oh0, oh1,
                     s->out[1]);
    return;
  }
  int64_t H = s->in[0], W = s->in[1], OW = s->out[1];
  int64_t KH = s->kernel[0], KW = s->kernel[1], sh = s->stride[0], dh = s->dil[0], ph = s->pad[0];
  for (int64_t p = p0; p < p1; p++) {
    const float *x = (const float *)r->x + p * s->in_plane;
    float *y = (float *)r->y + p * s->out_plane;
    for (int64_t oh = oh0; oh < oh1; oh++) {
      float *orow = y + oh * OW;
      float init = s->is_max ? -INFINITY : 0.0f;
      for (int64_t ow = 0; ow < OW; ow++) orow[ow] = init;
      int64_t hs = oh * sh - ph;
      if (W <= POOL_ROW_MAX && KW > 1) {
        /* the window's rows folded into one first (contiguous, vectorised), then one strided pass
         * per column tap instead of one per tap: 3×3/2 max pooling of 112×112 planes 3× faster */
        float vrow[POOL_ROW_MAX];
        int rows = 0;
        for (int64_t kh = 0; kh < KH; kh++) {
          int64_t ih = hs + kh * dh;
          if (ih < 0 || ih >= H) continue;
          const float *irow = x + ih * W;
          if (!rows++) memcpy(vrow, irow, (size_t)W * sizeof(float));
          else if (s->is_max) row_max(vrow, irow, 1, W);
          else row_add(vrow, irow, 1, W);
        }
        if (rows) row_taps(s, orow, vrow);
      } else {
        for (int64_t kh = 0; kh < KH; kh++) {
          int64_t ih = hs + kh * dh;
          if (ih >= 0 && ih < H) row_taps(s, orow, x + ih * W);
        }
      }
      if (!s->is_max) {
        int64_t ch = axis_count(s, 0, oh, s->include_pad);
        for (int64_t ow = 0; ow < OW; ow++) {
          int64_t c = ch * axis_count(s, 1, ow, s->include_pad);
          orow[ow] = c ? orow[ow] / (float)c : NAN;
        }
      }
    }
  }
}

static void pool2d_planes(void *ctx, int64_t p0, int64_t p1) {
  const pool_run *r = ctx;
  pool2d_block(r, p0, p1, 0, r->s->out[0]);
}

/* Every plane, output rows [oh0, oh1): a sparse convolution before the pool leaves each thread's
 * rows of every channel in that core's L2 (sparse_run.c), and a split by planes made each thread
 * read half its input from the other core (ResNet-50's 64×112×112 max pool at 2 threads: 0.24 ms,
 * against 0.13 ms for oneDNN on channels-last data). */
static void pool2d_rows(void *ctx, int64_t oh0, int64_t oh1) {
  const pool_run *r = ctx;
  pool2d_block(r, 0, r->s->planes, oh0, oh1);
}

/* ------------------------------------------------------------------ general N-D path */

static void poolnd_planes(void *ctx, int64_t p0, int64_t p1) {
  const pool_run *r = ctx;
  const pool_state *s = r->s;
  int k = s->k;
  int64_t in_str[FC_MAX_RANK] = {0}, idx_str[FC_MAX_RANK] = {0};
  int64_t acc = 1;
  for (int d = k - 1; d >= 0; d--) {
    in_str[d] = acc;
    acc *= s->in[d];
  }
  acc = 1; /* storage_order 1: the indices output counts spatial axes column-major */
  for (int d = 0; d < k; d++) {
    idx_str[d] = s->storage_order ? acc : in_str[d];
    acc *= s->in[d];
  }
  for (int64_t p = p0; p < p1; p++) {
    int64_t o_coord[FC_MAX_RANK] = {0};
    for (int64_t oe = 0; oe < s->out_plane; oe++) {
      double best = -INFINITY, sum = 0;
      int64_t best_at = -1, cnt = 0, w_coord[FC_MAX_RANK] = {0};
      for (int64_t we = 0; we < s->win; we++) {
        int64_t off = 0, ioff = 0;
        bool inside = true;
        for (int d = 0; d < k && inside; d++) {
          int64_t i = o_coord[d] * s->stride[d] - s->pad[d] + w_coord[d] * s->dil[d];
          inside = i >= 0 && i < s->in[d];
          off += i * in_str[d];
          ioff += i * idx_str[d];
        }
        if (inside) {
          double v = fc_data_get_f64(s->dtype, r->x, p * s->in_plane + off);
          if (v > best || best_at < 0) {
            best = v;
            best_at = ioff;
          }
          sum += v;
          cnt++;
        }
        for (int d = k - 1; d >= 0 && ++w_coord[d] == s->kernel[d]; d--) w_coord[d] = 0;
      }
      double out;
      if (s->is_max) {
        out = best;
      } else {
        if (s->include_pad) {
          cnt = 1;
          for (int d = 0; d < k; d++) cnt *= axis_count(s, d, o_coord[d], true);
        }
        out = cnt ? sum / (double)cnt : NAN;
      }
      fc_data_set_f64(s->dtype, r->y, p * s->out_plane + oe, out);
      if (r->idx) r->idx[p * s->out_plane + oe] = p * s->in_plane + (best_at < 0 ? 0 : best_at);
      for (int d = k - 1; d >= 0 && ++o_coord[d] == s->out[d]; d--) o_coord[d] = 0;
    }
  }
}

static void pool_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const pool_state *s = en->state;
  pool_run r = {s, io->in[0], io->out[0], NULL};
  const fc_node *n = en->node;
  if (n->n_outputs > 1 && n->outputs[1] >= 0 && io->out[1]) r.idx = io->out[1];
  int64_t work = s->out_plane * s->win;
  int64_t grain = work > 0 ? FC_PAR_GRAIN / work : 1;
  if (!r.y) return;
  if (s->fast2d && en->threads > 1 && s->out[0] >= 4 * en->threads && s->planes * s->out_plane * s->win >= FC_PAR_GRAIN) {
    int64_t row_work = s->planes * s->out[1] * s->win, row_grain = row_work > 0 ? FC_PAR_GRAIN / row_work : 1;
    fc_parallel_range(en->threads, s->out[0], row_grain < 1 ? 1 : row_grain, pool2d_rows, &r);
    return;
  }
  fc_parallel_range(en->threads, s->planes, grain < 1 ? 1 : grain, s->fast2d ? pool2d_planes : poolnd_planes, &r);
}

static fc_status read_ints(const fc_exec_node *en, const char *name, int k, int64_t dflt, int64_t *out, fc_err *err) {
  for (int i = 0; i < k; i++) out[i] = dflt;
  const fc_attr *a = fc_node_attr(en->node, name);
  if (!a || a->type != FC_ATTR_INTS) return FC_OK;
  if ((int)a->n_ints != k) return fc_kfail(en, err, "attribute '%s' has %zu values, expected %d", name, a->n_ints, k);
  memcpy(out, a->ints, (size_t)k * sizeof(int64_t));
  return FC_OK;
}

static fc_status pool_prepare(fc_exec_node *en, fc_err *err) {
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  pool_state *s = fc_kstate(en, sizeof *s, err);
  if (!s) return err->status;
  const char *op = en->node->op_type;
  int k = x->rank - 2;
  if (k < 1) return fc_kfail(en, err, "input must have rank >= 3");
  if (x->dtype != FC_DT_FLOAT && (strcmp(op, "MaxPool") || !fc_dtype_is_int(x->dtype) || x->dtype == FC_DT_BOOL))
    return fc_kfail(en, err, "dtype %s is not supported", fc_dtype_name(x->dtype));
  s->k = k;
  s->dtype = x->dtype;
  s->f32 = x->dtype == FC_DT_FLOAT;
  s->is_max = !strcmp(op, "MaxPool");
  s->include_pad = fc_attr_int(en->node, "count_include_pad", 0) != 0;
  s->storage_order = (int)fc_attr_int(en->node, "storage_order", 0);
  s->planes = x->dims[0] * x->dims[1];
  fc_status st;
  if ((st = read_ints(en, "kernel_shape", k, 1, s->kernel, err)) || (st = read_ints(en, "strides", k, 1, s->stride, err)) ||
      (st = read_ints(en, "dilations", k, 1, s->dil, err)))
    return st;
  int64_t pads[2 * FC_MAX_RANK];
  if ((st = read_ints(en, "pads", 2 * k, 0, pads, err))) return st;
  const char *auto_pad = fc_attr_str(en->node, "auto_pad", "NOTSET");
  s->in_plane = s->out_plane = s->win = 1;
  for (int d = 0; d < k; d++) {
    s->in[d] = x->dims[2 + d];
    s->out[d] = y->dims[2 + d];
    s->pad[d] = pads[d];
    s->pad_end[d] = pads[k + d];
    if (!strcmp(auto_pad, "VALID")) s->pad[d] = s->pad_end[d] = 0;
    if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) {
      int64_t eff = (s->kernel[d] - 1) * s->dil[d] + 1, total = (s->out[d] - 1) * s->stride[d] + eff - s->in[d];
      if (total < 0) total = 0;
      s->pad[d] = !strcmp(auto_pad, "SAME_UPPER") ? total / 2 : total - total / 2;
      s->pad_end[d] = total - s->pad[d];
    }
    if (s->kernel[d] < 1 || s->stride[d] < 1 || s->dil[d] < 1) return fc_kfail(en, err, "bad window attributes");
    s->in_plane *= s->in[d];
    s->out_plane *= s->out[d];
    s->win *= s->kernel[d];
  }
  const fc_node *n = en->node;
  bool want_idx = n->n_outputs > 1 && n->outputs[1] >= 0;
  s->fast2d = s->f32 && k <= 2 && !want_idx;
  s->max2x2s2 = s->fast2d && k == 2 && s->is_max && s->kernel[0] == 2 && s->kernel[1] == 2 && s->stride[0] == 2 &&
                s->stride[1] == 2 && s->dil[0] == 1 && s->dil[1] == 1 && s->pad[0] == 0 && s->pad[1] == 0 &&
                2 * s->out[0] <= s->in[0] && 2 * s->out[1] <= s->in[1];
  if (s->fast2d && k == 1) { /* 1-D runs as 2-D with a 1-row window */
    s->in[1] = s->in[0], s->out[1] = s->out[0], s->kernel[1] = s->kernel[0], s->stride[1] = s->stride[0];
    s->dil[1] = s->dil[0], s->pad[1] = s->pad[0], s->pad_end[1] = s->pad_end[0];
    s->in[0] = s->out[0] = s->kernel[0] = s->stride[0] = s->dil[0] = 1;
    s->pad[0] = s->pad_end[0] = 0;
  }
  return FC_OK;
}

/* ------------------------------------------------------------------ global pools */

typedef struct gpool_run {
  const float *x;
  float *y;
  int64_t plane;
  bool is_max;
} gpool_run;

static void gpool_planes(void *ctx, int64_t p0, int64_t p1) {
  const gpool_run *r = ctx;
  for (int64_t p = p0; p < p1; p++) {
    const float *x = r->x + p * r->plane;
    r->y[p] = r->is_max ? fc_vmax(x, r->plane) : r->plane ? fc_vsum(x, r->plane) / (float)r->plane : NAN;
  }
}

static void gpool_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const fc_value *x = fc_en_in(en, 0);
  gpool_run r = {io->in[0], io->out[0], 1, !strcmp(en->node->op_type, "GlobalMaxPool")};
  for (int d = 2; d < x->rank; d++) r.plane *= x->dims[d];
  int64_t planes = x->dims[0] * x->dims[1];
  int64_t grain = r.plane > 0 ? FC_PAR_GRAIN / r.plane : 1;
  fc_parallel_range(en->threads, planes, grain < 1 ? 1 : grain, gpool_planes, &r);
}

static fc_status gpool_prepare(fc_exec_node *en, fc_err *err) {
  const fc_value *x = fc_en_in(en, 0);
  if (x->dtype != FC_DT_FLOAT) return fc_kfail(en, err, "dtype %s is not supported", fc_dtype_name(x->dtype));
  if (x->rank < 3) return fc_kfail(en, err, "input must have rank >= 3");
  return FC_OK;
}

static void pool_release(fc_exec_node *en) { fc_kstate_release(en); }

const fc_kernel fc_kernels_pool[] = {
    {.op_type = "MaxPool", .prepare = pool_prepare, .run = pool_run_fn, .release = pool_release},
    {.op_type = "AveragePool", .prepare = pool_prepare, .run = pool_run_fn, .release = pool_release},
    {.op_type = "GlobalAveragePool", .prepare = gpool_prepare, .run = gpool_run_fn, .release = pool_release},
    {.op_type = "GlobalMaxPool", .prepare = gpool_prepare, .run = gpool_run_fn, .release = pool_release},
    {.op_type = NULL},
};
