/* Normalisation and reduction kernels: BatchNormalization (inference), LayerNormalization,
 * InstanceNormalization, Softmax/LogSoftmax (opset < 13 flattens to 2-D, >= 13 one axis), Reduce*. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kutil.h"
#include "util/mem.h"

/* ------------------------------------------------------------------ vector helpers */

FC_SIMD_CLONES static float vsum_sq_dev(const float *x, int64_t n, float mean) {
  float acc[FC_LANES] = {0};
  int64_t i = 0;
  for (; i + FC_LANES <= n; i += FC_LANES)
    FC_SIMD for (int j = 0; j < FC_LANES; j++) acc[j] += (x[i + j] - mean) * (x[i + j] - mean);
  for (; i < n; i++) acc[0] += (x[i] - mean) * (x[i] - mean);
  return fc_fold_sum(acc);
}

/* y = x·a + b */
FC_SIMD_CLONES static void vaxpb(float *y, const float *x, int64_t n, float a, float b) {
  FC_SIMD for (int64_t i = 0; i < n; i++) y[i] = x[i] * a + b;
}

/* y = (x - mean)·inv·scale + bias, per element scale/bias */
FC_SIMD_CLONES static void vnorm_affine(float *y, const float *x, int64_t n, float mean, float inv, const float *scale,
                                        const float *bias) {
  if (bias) {
    FC_SIMD for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * scale[i] + bias[i];
  } else {
    FC_SIMD for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * scale[i];
  }
}

/* exp(x - m) over exactly 16 lanes: the tail of a row goes through here from a padded copy, so a
 * 197-long attention row costs 13 vector steps instead of 12 and five scalar exps. */
static inline void exp16_tail(float *e, const float *x, int64_t k, float m) {
  float t[FC_LANES];
  memcpy(t, x, (size_t)k * sizeof(float));
  for (int64_t i = k; i < FC_LANES; i++) t[i] = m;
  FC_SIMD for (int i = 0; i < FC_LANES; i++) e[i] = fc_expf(t[i] - m);
}

/* y = exp(x - m) (y may be NULL: x stays untouched, so LogSoftmax may run in place); returns the
 * sum of the exponentials */
FC_SIMD_CLONES static float vexp_shift_sum(float *y, const float *x, int64_t n, float m) {
  float acc[FC_LANES] = {0}, e[FC_LANES];
  int64_t i = 0;
  if (y) {
    for (; i + FC_LANES <= n; i += FC_LANES)
      FC_SIMD for (int j = 0; j < FC_LANES; j++) {
        float v = fc_expf(x[i + j] - m);
        y[i + j] = v;
        acc[j] += v;
      }
  } else {
    for (; i + FC_LANES <= n; i += FC_LANES) FC_SIMD for (int j = 0; j < FC_LANES; j++) acc[j] += fc_expf(x[i + j] - m);
  }
  if (i < n) {
    exp16_tail(e, x + i, n - i, m);
    for (int64_t j = 0; j < n - i; j++) {
      if (y) y[i + j] = e[j];
      acc[j] += e[j];
    }
  }
  return fc_fold_sum(acc);
}

FC_SIMD_CLONES static void vscale(float *y, int64_t n, float k) {
  FC_SIMD for (int64_t i = 0; i < n; i++) y[i] *= k;
}

/* y = (x - m) - k: subtracting the max first keeps large inputs exact */
FC_SIMD_CLONES static void vsub2(float *y, const float *x, int64_t n, float m, float k) {
  FC_SIMD for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) - k;
}

static int64_t grain_for(int64_t per_item) {
  int64_t g = per_item > 0 ? FC_PAR_GRAIN / per_item : 1;
  return g < 1 ? 1 : g;
}

/* ------------------------------------------------------------------ BatchNormalization */

typedef struct bn_state {
  int64_t n, c, plane;
  float eps;
  bool folded; /* a/b precomputed: all four parameters are constants */
  float ab[];  /* a[c] then b[c] */
} bn_state;

static void bn_fold(const bn_state *s, const float *scale, const float *bias, const float *mean, const float *var,
                    float *a, float *b) {
  for (int64_t c = 0; c < s->c; c++) {
    float k = scale[c] / sqrtf(var[c] + s->eps);
    a[c] = k;
    b[c] = bias[c] - mean[c] * k;
  }
}

typedef struct bn_run {
  const bn_state *s;
  const float *x, *a, *b;
  float *y;
} bn_run;

static void bn_planes(void *ctx, int64_t p0, int64_t p1) {
  const bn_run *r = ctx;
  int64_t C = r->s->c, S = r->s->plane;
  for (int64_t p = p0; p < p1; p++) vaxpb(r->y + p * S, r->x + p * S, S, r->a[p % C], r->b[p % C]);
}

static void bn_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const bn_state *s = en->state;
  const float *a = s->ab, *b = s->ab + s->c;
  if (!s->folded) {
    float *t = io->scratch;
    bn_fold(s, io->in[1], io->in[2], io->in[3], io->in[4], t, t + s->c);
    a = t;
    b = t + s->c;
  }
  bn_run r = {s, io->in[0], a, b, io->out[0]};
  fc_parallel_range(en->threads, s->n * s->c, grain_for(s->plane), bn_planes, &r);
}

static fc_status bn_prepare(fc_exec_node *en, fc_err *err) {
  const fc_node *n = en->node;
  const fc_value *x = fc_en_in(en, 0);
  if (fc_attr_int(n, "training_mode", 0)) return fc_kfail(en, err, "training_mode=1 is not supported");
  for (int o = 1; o < n->n_outputs; o++)
    if (n->outputs[o] >= 0) return fc_kfail(en, err, "running-statistics outputs (training) are not supported");
  if (n->n_inputs != 5) return fc_kfail(en, err, "needs 5 inputs");
  for (int i = 0; i < 5; i++)
    if (!fc_en_in(en, i) || fc_en_in(en, i)->dtype != FC_DT_FLOAT) return fc_kfail(en, err, "only float32 is supported");
  if (x->rank < 2) return fc_kfail(en, err, "input rank must be >= 2");
  int64_t C = x->dims[1];
  bn_state *s = fc_kstate(en, sizeof(bn_state) + 2 * (size_t)C * sizeof(float), err);
  if (!s) return err->status;
  s->n = x->dims[0];
  s->c = C;
  s->plane = 1;
  for (int d = 2; d < x->rank; d++) s->plane *= x->dims[d];
  s->eps = fc_attr_float(n, "epsilon", 1e-5f);
  s->folded = true;
  for (int i = 1; i < 5; i++) s->folded = s->folded && fc_en_in(en, i)->data;
  if (s->folded)
    bn_fold(s, fc_en_in(en, 1)->data, fc_en_in(en, 2)->data, fc_en_in(en, 3)->data, fc_en_in(en, 4)->data, s->ab,
            s->ab + C);
  else
    en->scratch_bytes = 2 * (size_t)C * sizeof(float);
  return FC_OK;
}

/* ------------------------------------------------------------------ Layer/InstanceNormalization */

typedef struct ln_state {
  int64_t rows, d;      /* rows normalised independently, d elements each */
  int64_t channels;     /* InstanceNormalization: C (scale/bias per channel); 0 for LayerNorm */
  float eps;
  bool const_scale, const_bias, has_bias;
  float *scale, *bias;  /* LayerNorm: d values each, materialised from broadcasting; owned */
} ln_state;

typedef struct ln_run {
  const ln_state *s;
  const float *x, *scale, *bias;
  float *y, *mean_out, *inv_out;
} ln_run;

static void ln_rows(void *ctx, int64_t r0, int64_t r1) {
  const ln_run *r = ctx;
  const ln_state *s = r->s;
  int64_t D = s->d;
  for (int64_t row = r0; row < r1; row++) {
    const float *x = r->x + row * D;
    float *y = r->y + row * D;
    float mean = D ? fc_vsum(x, D) / (float)D : 0.0f;
    float var = D ? vsum_sq_dev(x, D, mean) / (float)D : 0.0f;
    float inv = 1.0f / sqrtf(var + s->eps);
    if (r->mean_out) r->mean_out[row] = mean;
    if (r->inv_out) r->inv_out[row] = inv;
    if (s->channels) { /* instance norm: one scale/bias per channel */
      int64_t c = row % s->channels;
      vaxpb(y, x, D, inv * r->scale[c], r->bias[c] - mean * inv * r->scale[c]);
    } else {
      vnorm_affine(y, x, D, mean, inv, r->scale, r->bias);
    }
  }
}

static void ln_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const ln_state *s = en->state;
  const fc_node *n = en->node;
  ln_run r = {s, io->in[0], s->const_scale ? s->scale : io->in[1], NULL, io->out[0], NULL, NULL};
  if (s->has_bias) r.bias = s->const_bias ? s->bias : io->in[2];
  if (!s->channels) {
    if (n->n_outputs > 1 && n->outputs[1] >= 0) r.mean_out = io->out[1];
    if (n->n_outputs > 2 && n->outputs[2] >= 0) r.inv_out = io->out[2];
  }
  fc_parallel_range(en->threads, s->rows, grain_for(s->d), ln_rows, &r);
}

/* Broadcasts a constant parameter into d floats (it may be a scalar or a suffix-shaped tensor). */
static bool ln_expand(const fc_value *p, const int64_t *norm_dims, int norm_rank, int64_t d, float **out) {
  *out = fc_calloc((size_t)(d ? d : 1), sizeof(float));
  if (!*out) return false;
  int64_t pstr[FC_MAX_RANK] = {0}, s = 1;
  for (int k = norm_rank - 1; k >= 0; k--) {
    int pk = k - (norm_rank - p->rank);
    int64_t dim = pk >= 0 ? p->dims[pk] : 1;
    pstr[k] = dim == 1 ? 0 : s;
    s *= dim;
  }
  for (int64_t e = 0; e < d; e++) {
    int64_t rem = e, off = 0;
    for (int k = norm_rank - 1; k >= 0; k--) {
      off += (rem % norm_dims[k]) * pstr[k];
      rem /= norm_dims[k];
    }
    (*out)[e] = ((const float *)p->data)[off];
  }
  return true;
}

static fc_status ln_prepare(fc_exec_node *en, fc_err *err) {
  const fc_node *n = en->node;
  const fc_value *x = fc_en_in(en, 0), *sc = fc_en_in(en, 1), *b = fc_en_in(en, 2);
  bool instance = !strcmp(n->op_type, "InstanceNormalization");
  for (int i = 0; i < n->n_inputs; i++)
    if (fc_en_in(en, i) && fc_en_in(en, i)->dtype != FC_DT_FLOAT) return fc_kfail(en, err, "only float32 is supported");
  if (!sc) return fc_kfail(en, err, "scale is missing");
  ln_state *s = fc_kstate(en, sizeof *s, err);
  if (!s) return err->status;
  s->eps = fc_attr_float(n, "epsilon", 1e-5f);
  s->has_bias = b != NULL;
  if (instance) {
    if (x->rank < 3 || !b) return fc_kfail(en, err, "needs rank >= 3 input, scale and bias");
    s->channels = x->dims[1];
    s->rows = x->dims[0] * x->dims[1];
    s->d = fc_kdims_numel(x->rank - 2, x->dims + 2);
    if (fc_value_numel(sc) != s->channels || fc_value_numel(b) != s->channels)
      return fc_kfail(en, err, "scale and bias must have one value per channel");
    return FC_OK;
  }
  int64_t axis = fc_attr_int(n, "axis", -1);
  if (axis < 0) axis += x->rank;
  if (axis < 0 || axis >= x->rank) return fc_kfail(en, err, "axis out of range");
  s->rows = fc_kdims_numel((int)axis, x->dims);
  s->d = fc_kdims_numel(x->rank - (int)axis, x->dims + axis);
  const fc_value *params[2] = {sc, b};
  for (int i = 0; i < 2; i++) {
    const fc_value *p = params[i];
    if (!p) continue;
    if (p->rank > x->rank - axis) return fc_kfail(en, err, "'%s' has more dims than the normalised shape", p->name);
    for (int k = 0; k < p->rank; k++) {
      int64_t nd = x->dims[x->rank - p->rank + k];
      if (p->dims[k] != 1 && p->dims[k] != nd) return fc_kfail(en, err, "'%s' does not broadcast", p->name);
    }
    if (p->data) {
      if (!ln_expand(p, x->dims + axis, x->rank - (int)axis, s->d, i ? &s->bias : &s->scale))
        return fc_fail(err, FC_ERR_NOMEM, "out of memory");
      if (i) s->const_bias = true;
      else s->const_scale = true;
    } else if (fc_value_numel(p) != s->d) {
      return fc_kfail(en, err, "a run-time '%s' must have the normalised shape", p->name);
    }
  }
  return FC_OK;
}

static void ln_release(fc_exec_node *en) {
  ln_state *s = en->state;
  if (s) {
    free(s->scale);
    free(s->bias);
  }
  fc_kstate_release(en);
}

/* ------------------------------------------------------------------ Softmax / LogSoftmax */

typedef struct sm_state {
  int64_t outer, len, inner;
  bool log;
} sm_state;

typedef struct sm_run {
  const sm_state *s;
  const float *x;
  float *y;
} sm_run;

static void sm_contig(void *ctx, int64_t r0, int64_t r1) {
  const sm_run *r = ctx;
  int64_t L = r->s->len;
  for (int64_t row = r0; row < r1; row++) {
    const float *x = r->x + row * L;
    float *y = r->y + row * L;
    float m = fc_vmax(x, L);
    if (r->s->log) {
      vsub2(y, x, L, m, logf(vexp_shift_sum(NULL, x, L, m)));
    } else {
      float sum = vexp_shift_sum(y, x, L, m);
      vscale(y, L, 1.0f / sum);
    }
  }
}

/* Softmax over a strided axis: `inner` positions at a time, in chunks that fit on the stack. */
static void sm_strided(void *ctx, int64_t o0, int64_t o1) {
  const sm_run *r = ctx;
  int64_t L = r->s->len, I = r->s->inner;
  enum { CH = 256 };
  float mx[CH], sm[CH];
  for (int64_t o = o0; o < o1; o++) {
    const float *x = r->x + o * L * I;
    float *y = r->y + o * L * I;
    for (int64_t i0 = 0; i0 < I; i0 += CH) {
      int64_t n = I - i0 < CH ? I - i0 : CH;
      for (int64_t i = 0; i < n; i++) mx[i] = -INFINITY, sm[i] = 0;
      for (int64_t l = 0; l < L; l++)
        for (int64_t i = 0; i < n; i++) mx[i] = x[l * I + i0 + i] > mx[i] ? x[l * I + i0 + i] : mx[i];
      for (int64_t l = 0; l < L; l++)
        for (int64_t i = 0; i < n; i++) {
          float e = fc_expf(x[l * I + i0 + i] - mx[i]);
          if (!r->s->log) y[l * I + i0 + i] = e; /* LogSoftmax keeps x intact: it may alias y */
          sm[i] += e;
        }
      for (int64_t i = 0; i < n; i++) sm[i] = r->s->log ? logf(sm[i]) : 1.0f / sm[i];
      for (int64_t l = 0; l < L; l++)
        for (int64_t i = 0; i < n; i++) {
          float *p = &y[l * I + i0 + i];
          *p = r->s->log ? (x[l * I + i0 + i] - mx[i]) - sm[i] : *p * sm[i];
        }
    }
  }
}

static void sm_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const sm_state *s = en->state;
  sm_run r = {s, io->in[0], io->out[0]};
  if (s->inner == 1) fc_parallel_range(en->threads, s->outer, grain_for(s->len), sm_contig, &r);
  else fc_parallel_range(en->threads, s->outer, grain_for(s->len * s->inner), sm_strided, &r);
}

static fc_status sm_prepare(fc_exec_node *en, fc_err *err) {
  const fc_value *x = fc_en_in(en, 0);
  if (x->dtype != FC_DT_FLOAT) return fc_kfail(en, err, "only float32 is supported");
  sm_state *s = fc_kstate(en, sizeof *s, err);
  if (!s) return err->status;
  s->log = !strcmp(en->node->op_type, "LogSoftmax");
  bool legacy = en->g->opset < 13;
  int64_t axis = fc_attr_int(en->node, "axis", legacy ? 1 : -1);
  int rank = x->rank ? x->rank : 1;
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return fc_kfail(en, err, "axis out of range");
  if (x->rank == 0) {
    s->outer = s->len = s->inner = 1;
  } else if (legacy) { /* opset < 13: the input is viewed as 2-D [prod(dims[:axis]), prod(dims[axis:])] */
    s->outer = fc_kdims_numel((int)axis, x->dims);
    s->len = fc_kdims_numel(x->rank - (int)axis, x->dims + axis);
    s->inner = 1;
  } else {
    s->outer = fc_kdims_numel((int)axis, x->dims);
    s->len = x->dims[axis];
    s->inner = fc_kdims_numel(x->rank - (int)axis - 1, x->dims + axis + 1);
  }
  return FC_OK;
}

/* ------------------------------------------------------------------ Reduce* */

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L2 };

typedef struct red_state {
  int op;
  bool copy;                /* noop_with_empty_axes with no axes: output = input */
  bool inner_reduced;       /* innermost group is reduced: contiguous segments */
  bool f32;
  int dtype;
  int n_kept, n_red;
  int64_t kept_size[FC_MAX_RANK], kept_str[FC_MAX_RANK];
  int64_t red_size[FC_MAX_RANK], red_str[FC_MAX_RANK];
  int64_t seg;              /* inner_reduced: segment length; else inner kept length */
  int64_t out_numel, count; /* count: input elements per output element */
} red_state;

static float red_init(int op) { return op == R_MAX ? -INFINITY : op == R_MIN ? INFINITY : op == R_PROD ? 1.0f : 0.0f; }

FC_SIMD_CLONES static float seg_reduce(int op, const float *x, int64_t n) {
  float acc[FC_LANES];
  for (int j = 0; j < FC_LANES; j++) acc[j] = red_init(op);
  int64_t i = 0;
  switch (op) {
    case R_MAX: return fc_vmax(x, n);
    case R_MIN:
      for (; i + FC_LANES <= n; i += FC_LANES)
        FC_SIMD for (int j = 0; j < FC_LANES; j++) acc[j] = x[i + j] < acc[j] ? x[i + j] : acc[j];
      for (; i < n; i++) acc[0] = x[i] < acc[0] ? x[i] : acc[0];
      return fc_fold_min(acc);
    case R_PROD:
      for (; i + FC_LANES <= n; i += FC_LANES) FC_SIMD for (int j = 0; j < FC_LANES; j++) acc[j] *= x[i + j];
      for (; i < n; i++) acc[0] *= x[i];
      return fc_fold_prod(acc);
    case R_L2:
      for (; i + FC_LANES <= n; i += FC_LANES) FC_SIMD for (int j = 0; j < FC_LANES; j++) acc[j] += x[i + j] * x[i + j];
      for (; i < n; i++) acc[0] += x[i] * x[i];
      return fc_fold_sum(acc);
    default: return fc_vsum(x, n);
  }
}

static float combine(int op, float acc, float v) {
  switch (op) {
    case R_MAX: return v > acc ? v : acc;
    case R_MIN: return v < acc ? v : acc;
    case R_PROD: return acc * v;
    default: return acc + v;
  }
}

FC_SIMD_CLONES static void row_combine(int op, float *acc, const float *x, int64_t n) {
  switch (op) {
    case R_MAX: FC_SIMD for (int64_t i = 0; i < n; i++) acc[i] = x[i] > acc[i] ? x[i] : acc[i]; break;
    case R_MIN: FC_SIMD for (int64_t i = 0; i < n; i++) acc[i] = x[i] < acc[i] ? x[i] : acc[i]; break;
    case R_PROD: FC_SIMD for (int64_t i = 0; i < n; i++) acc[i] *= x[i]; break;
    case R_L2: FC_SIMD for (int64_t i = 0; i < n; i++) acc[i] += x[i] * x[i]; break;
    default: FC_SIMD for (int64_t i = 0; i < n; i++) acc[i] += x[i]; break;
  }
}

static float red_final(const red_state *s, float v) {
  if (s->op == R_MEAN) return s->count ? v / (float)s->count : NAN;
  if (s->op == R_L2) return sqrtf(v);
  return v;
}

typedef struct red_run {
  const red_state *s;
  const void *x;
  void *y;
} red_run;

static int64_t kept_offset(const red_state *s, int64_t o, int upto) {
  int64_t off = 0;
  for (int k = upto - 1; k >= 0; k--) {
    off += (o % s->kept_size[k]) * s->kept_str[k];
    o /= s->kept_size[k];
  }
  return off;
}

/* Calls back for every combination of the reduced groups (all but the innermost when it is the
 * segment), with the combined input offset. */
#define FOR_RED_COMBOS(s, nred, off_var, BODY)                                                   \
  do {                                                                                           \
    int64_t rc_[FC_MAX_RANK] = {0}, off_var = 0;                                                 \
    for (;;) {                                                                                   \
      BODY;                                                                                      \
      int d_ = (nred) - 1;                                                                       \
      for (; d_ >= 0; d_--) {                                                                    \
        off_var += (s)->red_str[d_];                                                             \
        if (++rc_[d_] < (s)->red_size[d_]) break;                                                \
        off_var -= (s)->red_str[d_] * (s)->red_size[d_];                                         \
        rc_[d_] = 0;                                                                             \
      }                                                                                          \
      if (d_ < 0) break;                                                                         \
    }                                                                                            \
  } while (0)

static void red_segments(void *ctx, int64_t o0, int64_t o1) {
  const red_run *r = ctx;
  const red_state *s = r->s;
  const float *x = r->x;
  float *y = r->y;
  int outer_red = s->n_red - 1;
  for (int64_t o = o0; o < o1; o++) {
    int64_t base = kept_offset(s, o, s->n_kept);
    float acc = red_init(s->op);
    FOR_RED_COMBOS(s, outer_red, off, {
      float v = seg_reduce(s->op, x + base + off, s->seg);
      acc = s->op == R_L2 ? acc + v : combine(s->op, acc, v);
    });
    y[o] = red_final(s, acc);
  }
}

static void red_rows(void *ctx, int64_t r0, int64_t r1) {
  const red_run *r = ctx;
  const red_state *s = r->s;
  const float *x = r->x;
  float *y = r->y;
  int64_t L = s->seg;
  for (int64_t row = r0; row < r1; row++) {
    float *acc = y + row * L;
    int64_t base = kept_offset(s, row, s->n_kept - 1);
    float init = red_init(s->op);
    for (int64_t i = 0; i < L; i++) acc[i] = init;
    FOR_RED_COMBOS(s, s->n_red, off, row_combine(s->op, acc, x + base + off, L));
    for (int64_t i = 0; i < L; i++) acc[i] = red_final(s, acc[i]);
  }
}

/* Any dtype: one output element at a time, accumulated in double. */
static void red_generic(void *ctx, int64_t o0, int64_t o1) {
  const red_run *r = ctx;
  const red_state *s = r->s;
  for (int64_t o = o0; o < o1; o++) {
    int64_t base = 0, rem = o;
    int64_t inner_len = s->inner_reduced ? s->seg : 1;
    if (s->inner_reduced) {
      base = kept_offset(s, o, s->n_kept);
    } else {
      base = kept_offset(s, rem / s->seg, s->n_kept - 1) + rem % s->seg;
    }
    double acc = s->op == R_MAX ? -INFINITY : s->op == R_MIN ? INFINITY : s->op == R_PROD ? 1 : 0;
    int nred = s->inner_reduced ? s->n_red - 1 : s->n_red;
    FOR_RED_COMBOS(s, nred, off, {
      for (int64_t i = 0; i < inner_len; i++) {
        double v = fc_data_get_f64(s->dtype, r->x, base + off + i);
        switch (s->op) {
          case R_MAX: acc = v > acc ? v : acc; break;
          case R_MIN: acc = v < acc ? v : acc; break;
          case R_PROD: acc *= v; break;
          case R_L2: acc += v * v; break;
          default: acc += v; break;
        }
      }
    });
    if (s->op == R_MEAN) acc = s->count ? acc / (double)s->count : NAN;
    if (s->op == R_L2) acc = sqrt(acc);
    fc_data_set_f64(s->dtype, r->y, o, acc);
  }
}

static void red_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const red_state *s = en->state;
  const fc_value *x = fc_en_in(en, 0);
  if (s->copy) {
    if (io->out[0] != io->in[0])
      memcpy(io->out[0], io->in[0], (size_t)fc_value_numel(x) * fc_dtype_size(x->dtype));
    return;
  }
  red_run r = {s, io->in[0], io->out[0]};
  if (s->count == 0) { /* reducing an empty set: the identity of the reduction */
    double v = s->op == R_MAX ? -INFINITY : s->op == R_MIN ? INFINITY : s->op == R_PROD ? 1 : s->op == R_MEAN ? NAN : 0;
    for (int64_t o = 0; o < s->out_numel; o++) fc_data_set_f64(s->dtype, io->out[0], o, v);
    return;
  }
  if (!s->f32) {
    fc_parallel_range(en->threads, s->out_numel, grain_for(s->count), red_generic, &r);
  } else if (s->inner_reduced) {
    fc_parallel_range(en->threads, s->out_numel, grain_for(s->count), red_segments, &r);
  } else {
    int64_t rows = s->seg ? s->out_numel / s->seg : 0;
    fc_parallel_range(en->threads, rows, grain_for(s->count * s->seg), red_rows, &r);
  }
}

static fc_status red_prepare(fc_exec_node *en, fc_err *err) {
  const fc_node *n = en->node;
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  red_state *s = fc_kstate(en, sizeof *s, err);
  if (!s) return err->status;
  const char *op = n->op_type + 6;
  s->op = !strcmp(op, "Sum") ? R_SUM : !strcmp(op, "Mean") ? R_MEAN : !strcmp(op, "Max") ? R_MAX
        : !strcmp(op, "Min") ? R_MIN : !strcmp(op, "Prod") ? R_PROD : R_L2;
  if (fc_dtype_size(x->dtype) == 0 || x->dtype == FC_DT_FLOAT16 || x->dtype != y->dtype)
    return fc_kfail(en, err, "dtype %s is not supported", fc_dtype_name(x->dtype));
  s->dtype = x->dtype;
  s->f32 = x->dtype == FC_DT_FLOAT;
  int64_t axes[FC_MAX_RANK];
  int na;
  fc_status st = fc_kconst_ints(en, 1, "axes", axes, FC_MAX_RANK, &na, err);
  if (st) return st;
  bool red[FC_MAX_RANK] = {false};
  if (na <= 0) {
    if (fc_attr_int(n, "noop_with_empty_axes", 0)) {
      s->copy = true;
      return FC_OK;
    }
    for (int d = 0; d < x->rank; d++) red[d] = true;
  }
  for (int i = 0; i < na; i++) {
    int64_t a = axes[i] < 0 ? axes[i] + x->rank : axes[i];
    if (a < 0 || a >= x->rank) return fc_kfail(en, err, "axis %lld out of range", (long long)axes[i]);
    red[a] = true;
  }
  /* group adjacent dims with the same role; size-1 dims vanish */
  int64_t gsize[FC_MAX_RANK], gstr[FC_MAX_RANK];
  bool gred[FC_MAX_RANK];
  int m = 0;
  int64_t stride = 1;
  int64_t str[FC_MAX_RANK];
  for (int d = x->rank - 1; d >= 0; d--) {
    str[d] = stride;
    stride *= x->dims[d];
  }
  for (int d = 0; d < x->rank; d++) {
    if (x->dims[d] == 1) continue;
    if (m > 0 && gred[m - 1] == red[d]) {
      gsize[m - 1] *= x->dims[d];
      gstr[m - 1] = str[d];
    } else {
      gsize[m] = x->dims[d];
      gstr[m] = str[d];
      gred[m] = red[d];
      m++;
    }
  }
  if (m == 0) { /* every dim is 1: reduce one element */
    gsize[0] = 1, gstr[0] = 1, gred[0] = true;
    m = 1;
  }
  s->count = 1;
  for (int g = 0; g < m; g++) {
    if (gred[g]) {
      s->red_size[s->n_red] = gsize[g];
      s->red_str[s->n_red++] = gstr[g];
      s->count *= gsize[g];
    } else {
      s->kept_size[s->n_kept] = gsize[g];
      s->kept_str[s->n_kept++] = gstr[g];
    }
  }
  s->inner_reduced = gred[m - 1];
  s->seg = s->inner_reduced ? s->red_size[s->n_red - 1] : s->kept_size[s->n_kept - 1];
  s->out_numel = fc_value_numel(y);
  if (fc_value_numel(x) == 0) s->count = 0;
  return FC_OK;
}

static void plain_release(fc_exec_node *en) { fc_kstate_release(en); }

const fc_kernel fc_kernels_norm[] = {
    {.op_type = "BatchNormalization", .prepare = bn_prepare, .run = bn_run_fn, .release = plain_release},
    {.op_type = "LayerNormalization", .prepare = ln_prepare, .run = ln_run_fn, .release = ln_release},
    {.op_type = "InstanceNormalization", .prepare = ln_prepare, .run = ln_run_fn, .release = ln_release},
    {.op_type = "Softmax", .prepare = sm_prepare, .run = sm_run_fn, .release = plain_release},
    {.op_type = "LogSoftmax", .prepare = sm_prepare, .run = sm_run_fn, .release = plain_release},
    {.op_type = "ReduceMean", .prepare = red_prepare, .run = red_run_fn, .release = plain_release},
    {.op_type = "ReduceSum", .prepare = red_prepare, .run = red_run_fn, .release = plain_release},
    {.op_type = "ReduceMax", .prepare = red_prepare, .run = red_run_fn, .release = plain_release},
    {.op_type = "ReduceMin", .prepare = red_prepare, .run = red_run_fn, .release = plain_release},
    {.op_type = "ReduceProd", .prepare = red_prepare, .run = red_run_fn, .release = plain_release},
    {.op_type = "ReduceL2", .prepare = red_prepare, .run = red_run_fn, .release = plain_release},
    {.op_type = NULL},
};
