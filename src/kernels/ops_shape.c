/* Data-movement kernels, dtype-agnostic (they move elements by size): Identity/Dropout/Reshape/
 * Flatten/Squeeze/Unsqueeze, Transpose, Concat, Split, Slice, Gather, Cast, Expand, Tile, Pad, ... */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kutil.h"
#include "util/mem.h"

static size_t esize(const fc_value *v) { return fc_dtype_size(v->dtype); }

static fc_status need_holdable(const fc_exec_node *en, const fc_value *v, fc_err *err) {
  if (!v) return fc_kfail(en, err, "a required input is missing");
  if (fc_dtype_size(v->dtype) == 0) return fc_kfail(en, err, "dtype %s is not supported", fc_dtype_name(v->dtype));
  return FC_OK;
}

/* ------------------------------------------------------------------ plain copies */

typedef struct copy_run {
  char *dst;
  const char *src;
} copy_run;

static void copy_range(void *ctx, int64_t b, int64_t e) {
  const copy_run *r = ctx;
  memcpy(r->dst + b, r->src + b, (size_t)(e - b));
}

/* memcpy split over threads for big tensors (one thread saturates neither the caches nor DRAM). */
static void par_memcpy(int threads, void *dst, const void *src, size_t bytes) {
  if (dst == src || !bytes) return;
  copy_run r = {dst, src};
  fc_parallel_range(threads, (int64_t)bytes, 1 << 20, copy_range, &r);
}

static fc_status copy_prepare(fc_exec_node *en, fc_err *err) {
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  fc_status st = need_holdable(en, x, err);
  if (st) return st;
  if (fc_value_numel(x) != fc_value_numel(y) || x->dtype != y->dtype) return fc_kfail(en, err, "size mismatch");
  if (!strcmp(en->node->op_type, "Dropout") && en->node->n_inputs > 2) {
    const fc_value *t = fc_en_in(en, 2);
    if (t && (!t->data || fc_data_get_i64(t->dtype, t->data, 0)))
      return fc_kfail(en, err, "training_mode must be a constant false: training-mode dropout is not supported");
  }
  return FC_OK;
}

static void copy_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const fc_value *y = fc_en_out(en, 0);
  if (io->out[0]) par_memcpy(en->threads, io->out[0], io->in[0], (size_t)fc_value_numel(y) * esize(y));
  const fc_node *n = en->node;
  if (n->n_outputs > 1 && n->outputs[1] >= 0 && io->out[1]) { /* Dropout's mask: all kept */
    const fc_value *m = fc_en_out(en, 1);
    if (!m->data) memset(io->out[1], 1, (size_t)fc_value_numel(m));
  }
}

static void no_release(fc_exec_node *en) { fc_kstate_release(en); }

/* ------------------------------------------------------------------ Shape */

static fc_status shape_prepare(fc_exec_node *en, fc_err *err) { return FC_OK; }

static void shape_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  int64_t start = fc_attr_int(en->node, "start", 0);
  if (start < 0) start += x->rank;
  if (start < 0) start = 0;
  int64_t n = fc_value_numel(y);
  for (int64_t i = 0; i < n && start + i < x->rank; i++) ((int64_t *)io->out[0])[i] = x->dims[start + i];
}

/* ------------------------------------------------------------------ Transpose */

typedef struct tr_state {
  int rank;                    /* after dropping 1s and merging runs that stay adjacent */
  size_t es;
  int64_t odims[FC_MAX_RANK];  /* output dims */
  int64_t istr[FC_MAX_RANK];   /* input stride (elements) of each output dim */
  int64_t ostr[FC_MAX_RANK];   /* output stride of each output dim */
  int q;                       /* output position of the input's innermost dim, or rank-1 */
  int64_t numel;
} tr_state;

enum { TILE = 32 };

#define TR_TILE(NAME, T)                                                                                   \
  static void NAME(char *o_, const char *i_, int64_t na, int64_t nb, int64_t sa, int64_t ob) {             \
    T *o = (T *)o_;                                                                                        \
    const T *in = (const T *)i_;                                                                           \
    for (int64_t a0 = 0; a0 < na; a0 += TILE)                                                              \
      for (int64_t b0 = 0; b0 < nb; b0 += TILE) {                                                          \
        int64_t a1 = a0 + TILE < na ? a0 + TILE : na, b1 = b0 + TILE < nb ? b0 + TILE : nb;                \
        for (int64_t b = b0; b < b1; b++)                                                                  \
          for (int64_t a = a0; a < a1; a++) o[b * ob + a] = in[a * sa + b];                                \
      }                                                                                                    \
  }
TR_TILE(tile1, uint8_t)
TR_TILE(tile2, uint16_t)
TR_TILE(tile4, uint32_t)
TR_TILE(tile8, uint64_t)

typedef struct tr_run {
  const tr_state *s;
  const char *x;
  char *y;
} tr_run;

/* Work item u = one combination of the output dims other than the innermost and q. */
static void tr_items(void *ctx, int64_t u0, int64_t u1) {
  const tr_run *r = ctx;
  const tr_state *s = r->s;
  int R = s->rank, last = R - 1;
  size_t es = s->es;
  for (int64_t u = u0; u < u1; u++) {
    int64_t rem = u, ioff = 0, ooff = 0;
    for (int d = R - 1; d >= 0; d--) {
      if (d == last || d == s->q) continue;
      int64_t c = rem % s->odims[d];
      rem /= s->odims[d];
      ioff += c * s->istr[d];
      ooff += c * s->ostr[d];
    }
    const char *src = r->x + (size_t)ioff * es;
    char *dst = r->y + (size_t)ooff * es;
    if (s->q == last) { /* innermost stays innermost: contiguous rows */
      memcpy(dst, src, (size_t)s->odims[last] * es);
      continue;
    }
    int64_t na = s->odims[last], nb = s->odims[s->q], sa = s->istr[last], ob = s->ostr[s->q];
    switch (es) {
      case 1: tile1(dst, src, na, nb, sa, ob); break;
      case 2: tile2(dst, src, na, nb, sa, ob); break;
      case 4: tile4(dst, src, na, nb, sa, ob); break;
      default: tile8(dst, src, na, nb, sa, ob); break;
    }
  }
}

static void tr_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const tr_state *s = en->state;
  tr_run r = {s, io->in[0], io->out[0]};
  int64_t per = s->odims[s->rank - 1] * (s->q == s->rank - 1 ? 1 : s->odims[s->q]);
  int64_t items = per ? s->numel / per : 0;
  int64_t grain = per ? FC_PAR_GRAIN / per : 1;
  fc_parallel_range(en->threads, items, grain < 1 ? 1 : grain, tr_items, &r);
}

static fc_status tr_prepare(fc_exec_node *en, fc_err *err) {
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  fc_status st = need_holdable(en, x, err);
  if (st) return st;
  if (esize(x) != 1 && esize(x) != 2 && esize(x) != 4 && esize(x) != 8) return fc_kfail(en, err, "unsupported dtype");
  tr_state *s = fc_kstate(en, sizeof *s, err);
  if (!s) return err->status;
  s->es = esize(x);
  s->numel = fc_value_numel(y);
  int r = x->rank;
  int64_t perm[FC_MAX_RANK];
  int np;
  if ((st = fc_kconst_ints(en, -1, "perm", perm, FC_MAX_RANK, &np, err))) return st;
  if (np < 0) {
    np = r;
    for (int d = 0; d < r; d++) perm[d] = r - 1 - d;
  }
  if (np != r) return fc_kfail(en, err, "perm has %d entries for rank %d", np, r);
  int64_t istr[FC_MAX_RANK], acc = 1;
  for (int d = r - 1; d >= 0; d--) {
    istr[d] = acc;
    acc *= x->dims[d];
  }
  /* output dims in order, dropping size 1, merging an output dim into the previous one when the
   * input holds them contiguously in the same order */
  int k = 0;
  int prev_in = 0;
  for (int d = 0; d < r; d++) {
    int64_t p = perm[d];
    if (p < 0 || p >= r) return fc_kfail(en, err, "bad perm");
    if (x->dims[p] == 1) continue;
    if (k > 0 && istr[prev_in] == istr[p] * x->dims[p]) {
      s->odims[k - 1] *= x->dims[p];
      s->istr[k - 1] = istr[p];
    } else {
      s->odims[k] = x->dims[p];
      s->istr[k] = istr[p];
      k++;
    }
    prev_in = (int)p;
  }
  if (k == 0) {
    s->odims[0] = 1;
    s->istr[0] = 1;
    k = 1;
  }
  s->rank = k;
  acc = 1;
  for (int d = k - 1; d >= 0; d--) {
    s->ostr[d] = acc;
    acc *= s->odims[d];
  }
  s->q = k - 1;
  for (int d = 0; d < k; d++)
    if (s->istr[d] == 1) s->q = d;
  return FC_OK;
}

/* ------------------------------------------------------------------ Concat / Split */

typedef struct cat_state {
  int64_t outer;
  int n;                /* inputs (Concat) or outputs (Split) */
  size_t total;         /* bytes per outer step of the big tensor */
  size_t chunk[];       /* bytes per outer step of each piece */
} cat_state;

typedef struct cat_run {
  const cat_state *s;
  const fc_exec_io *io;
  bool split;
} cat_run;

static void cat_items(void *ctx, int64_t u0, int64_t u1) {
  const cat_run *r = ctx;
  const cat_state *s = r->s;
  for (int64_t u = u0; u < u1; u++) {
    int64_t o = u / s->n;
    int i = (int)(u % s->n);
    size_t at = 0;
    for (int k = 0; k < i; k++) at += s->chunk[k];
    if (!s->chunk[i]) continue;
    if (r->split) {
      if (r->io->out[i])
        memcpy((char *)r->io->out[i] + (size_t)o * s->chunk[i], (const char *)r->io->in[0] + (size_t)o * s->total + at,
               s->chunk[i]);
    } else {
      memcpy((char *)r->io->out[0] + (size_t)o * s->total + at, (const char *)r->io->in[i] + (size_t)o * s->chunk[i],
             s->chunk[i]);
    }
  }
}

static void cat_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const cat_state *s = en->state;
  cat_run r = {s, io, !strcmp(en->node->op_type, "Split")};
  int64_t items = s->outer * s->n;
  int64_t per = s->n ? (int64_t)(s->total / (size_t)s->n) / 4 : 1;
  int64_t grain = per > 0 ? FC_PAR_GRAIN / per : 1;
  fc_parallel_range(en->threads, items, grain < 1 ? 1 : grain, cat_items, &r);
}

static fc_status cat_prepare(fc_exec_node *en, fc_err *err) {
  const fc_node *n = en->node;
  bool split = !strcmp(n->op_type, "Split");
  const fc_value *big = split ? fc_en_in(en, 0) : fc_en_out(en, 0);
  fc_status st = need_holdable(en, big, err);
  if (st) return st;
  int pieces = split ? n->n_outputs : n->n_inputs;
  cat_state *s = fc_kstate(en, sizeof(cat_state) + (size_t)pieces * sizeof(size_t), err);
  if (!s) return err->status;
  int64_t axis = fc_attr_int(n, "axis", 0);
  if (axis < 0) axis += big->rank;
  if (axis < 0 || axis >= big->rank) return fc_kfail(en, err, "axis out of range");
  s->outer = fc_kdims_numel((int)axis, big->dims);
  int64_t inner = fc_kdims_numel(big->rank - (int)axis - 1, big->dims + axis + 1);
  s->n = pieces;
  s->total = (size_t)(big->dims[axis] * inner) * esize(big);
  size_t sum = 0;
  for (int i = 0; i < pieces; i++) {
    const fc_value *p = split ? fc_en_out(en, i) : fc_en_in(en, i);
    if (!p) { /* an omitted Split output still occupies its share of the input */
      return fc_kfail(en, err, "omitted outputs are not supported");
    }
    s->chunk[i] = (size_t)(p->dims[axis] * inner) * esize(big);
    sum += s->chunk[i];
  }
  if (sum != s->total) return fc_kfail(en, err, "pieces do not add up");
  return FC_OK;
}

/* ------------------------------------------------------------------ Slice */

typedef struct slice_state {
  int rank;
  size_t es;
  int64_t odims[FC_MAX_RANK], begin[FC_MAX_RANK], step[FC_MAX_RANK], istr[FC_MAX_RANK];
  int64_t rows; /* output rows (all dims but the last) */
} slice_state;

typedef struct slice_run {
  const slice_state *s;
  const char *x;
  char *y;
} slice_run;

static void slice_rows(void *ctx, int64_t r0, int64_t r1) {
  const slice_run *r = ctx;
  const slice_state *s = r->s;
  int R = s->rank;
  int64_t L = s->odims[R - 1], st = s->step[R - 1] * s->istr[R - 1];
  size_t es = s->es;
  for (int64_t row = r0; row < r1; row++) {
    int64_t rem = row, src = s->begin[R - 1] * s->istr[R - 1];
    for (int d = R - 2; d >= 0; d--) {
      src += (s->begin[d] + (rem % s->odims[d]) * s->step[d]) * s->istr[d];
      rem /= s->odims[d];
    }
    char *dst = r->y + (size_t)(row * L) * es;
    const char *in = r->x + (size_t)src * es;
    if (st == 1) {
      memcpy(dst, in, (size_t)L * es);
    } else {
      for (int64_t i = 0; i < L; i++) memcpy(dst + (size_t)i * es, in + (i * st) * (int64_t)es, es);
    }
  }
}

static void slice_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const slice_state *s = en->state;
  slice_run r = {s, io->in[0], io->out[0]};
  int64_t L = s->odims[s->rank - 1];
  int64_t grain = L ? FC_PAR_GRAIN / L : 1;
  if (L) fc_parallel_range(en->threads, s->rows, grain < 1 ? 1 : grain, slice_rows, &r);
}

static int64_t clamp_index(int64_t v, int64_t dim, bool positive_step) {
  if (v < 0) v += dim;
  if (positive_step) return v < 0 ? 0 : v > dim ? dim : v;
  return v < -1 ? -1 : v > dim - 1 ? dim - 1 : v;
}

static fc_status slice_prepare(fc_exec_node *en, fc_err *err) {
  const fc_node *n = en->node;
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  fc_status st = need_holdable(en, x, err);
  if (st) return st;
  slice_state *s = fc_kstate(en, sizeof *s, err);
  if (!s) return err->status;
  int64_t starts[FC_MAX_RANK], ends[FC_MAX_RANK], axes[FC_MAX_RANK], steps[FC_MAX_RANK];
  int ns, ne, na, nst = -1;
  bool inputs = n->n_inputs > 1;
  if ((st = fc_kconst_ints(en, inputs ? 1 : -1, "starts", starts, FC_MAX_RANK, &ns, err)) ||
      (st = fc_kconst_ints(en, inputs ? 2 : -1, "ends", ends, FC_MAX_RANK, &ne, err)) ||
      (st = fc_kconst_ints(en, inputs ? 3 : -1, "axes", axes, FC_MAX_RANK, &na, err)))
    return st;
  if (inputs && (st = fc_kconst_ints(en, 4, NULL, steps, FC_MAX_RANK, &nst, err))) return st;
  if (ns < 0 || ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
    return fc_kfail(en, err, "starts, ends, axes and steps differ in length");
  int R = x->rank ? x->rank : 1;
  int64_t acc = 1;
  for (int d = R - 1; d >= 0; d--) {
    s->istr[d] = acc;
    s->begin[d] = 0;
    s->step[d] = 1;
    s->odims[d] = x->rank ? y->dims[d] : 1;
    acc *= x->rank ? x->dims[d] : 1;
  }
  for (int i = 0; i < ns; i++) {
    int64_t a = na >= 0 ? axes[i] : i;
    if (a < 0) a += x->rank;
    if (a < 0 || a >= x->rank) return fc_kfail(en, err, "axis out of range");
    int64_t sp = nst >= 0 ? steps[i] : 1;
    if (sp == 0) return fc_kfail(en, err, "step 0");
    s->begin[a] = clamp_index(starts[i], x->dims[a], sp > 0);
    s->step[a] = sp;
  }
  s->rank = R;
  s->es = esize(x);
  s->rows = fc_kdims_numel(R - 1, s->odims);
  return FC_OK;
}

/* ------------------------------------------------------------------ Gather */

typedef struct gather_state {
  int64_t outer, axis_dim, inner, ni;
  size_t es;
  int idx_dtype;
} gather_state;

typedef struct gather_run {
  const gather_state *s;
  const char *x;
  const void *idx;
  char *y;
} gather_run;

static void gather_items(void *ctx, int64_t u0, int64_t u1) {
  const gather_run *r = ctx;
  const gather_state *s = r->s;
  size_t row = (size_t)s->inner * s->es;
  for (int64_t u = u0; u < u1; u++) {
    int64_t o = u / s->ni, i = u % s->ni;
    int64_t v = fc_data_get_i64(s->idx_dtype, r->idx, i);
    if (v < 0) v += s->axis_dim;
    char *dst = r->y + (size_t)u * row;
    if (v < 0 || v >= s->axis_dim) { /* run-time index out of range: zeros, never a wild read */
      memset(dst, 0, row);
      continue;
    }
    memcpy(dst, r->x + (size_t)(o * s->axis_dim + v) * row, row);
  }
}

static void gather_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const gather_state *s = en->state;
  gather_run r = {s, io->in[0], io->in[1], io->out[0]};
  int64_t grain = s->inner ? FC_PAR_GRAIN / s->inner : 1;
  fc_parallel_range(en->threads, s->outer * s->ni, grain < 1 ? 1 : grain, gather_items, &r);
}

static fc_status gather_prepare(fc_exec_node *en, fc_err *err) {
  const fc_value *x = fc_en_in(en, 0), *idx = fc_en_in(en, 1);
  fc_status st = need_holdable(en, x, err);
  if (!st) st = need_holdable(en, idx, err);
  if (st) return st;
  if (!fc_dtype_is_int(idx->dtype)) return fc_kfail(en, err, "indices must be integers");
  gather_state *s = fc_kstate(en, sizeof *s, err);
  if (!s) return err->status;
  int64_t axis = fc_attr_int(en->node, "axis", 0);
  if (axis < 0) axis += x->rank;
  if (axis < 0 || axis >= x->rank) return fc_kfail(en, err, "axis out of range");
  s->outer = fc_kdims_numel((int)axis, x->dims);
  s->axis_dim = x->dims[axis];
  s->inner = fc_kdims_numel(x->rank - (int)axis - 1, x->dims + axis + 1);
  s->ni = fc_value_numel(idx);
  s->es = esize(x);
  s->idx_dtype = idx->dtype;
  return FC_OK;
}

/* ------------------------------------------------------------------ Cast */

typedef struct cast_run {
  int from, to;
  const void *x;
  void *y;
} cast_run;

static void cast_range(void *ctx, int64_t b, int64_t e) {
  const cast_run *r = ctx;
  if (r->from == FC_DT_FLOAT && r->to == FC_DT_DOUBLE) {
    for (int64_t i = b; i < e; i++) ((double *)r->y)[i] = ((const float *)r->x)[i];
  } else if (r->from == FC_DT_DOUBLE && r->to == FC_DT_FLOAT) {
    for (int64_t i = b; i < e; i++) ((float *)r->y)[i] = (float)((const double *)r->x)[i];
  } else if (r->to == FC_DT_FLOAT && r->from == FC_DT_INT64) {
    for (int64_t i = b; i < e; i++) ((float *)r->y)[i] = (float)((const int64_t *)r->x)[i];
  } else if (r->to == FC_DT_FLOAT && r->from == FC_DT_INT32) {
    for (int64_t i = b; i < e; i++) ((float *)r->y)[i] = (float)((const int32_t *)r->x)[i];
  } else if (r->to == FC_DT_FLOAT && (r->from == FC_DT_BOOL || r->from == FC_DT_UINT8)) {
    for (int64_t i = b; i < e; i++) ((float *)r->y)[i] = (float)((const uint8_t *)r->x)[i];
  } else if (r->from == FC_DT_FLOAT && r->to == FC_DT_BOOL) {
    for (int64_t i = b; i < e; i++) ((uint8_t *)r->y)[i] = ((const float *)r->x)[i] != 0;
  } else if (fc_dtype_is_int(r->from) && fc_dtype_is_int(r->to)) {
    for (int64_t i = b; i < e; i++) fc_data_set_i64(r->to, r->y, i, fc_data_get_i64(r->from, r->x, i));
  } else {
    /* float -> int: truncation toward zero, saturated (the C conversion of an out-of-range value
     * is undefined); NaN becomes 0 */
    for (int64_t i = b; i < e; i++) {
      double v = fc_data_get_f64(r->from, r->x, i);
      if (fc_dtype_is_int(r->to) && r->to != FC_DT_BOOL && isnan(v)) v = 0;
      fc_data_set_f64(r->to, r->y, i, v);
    }
  }
}

static void cast_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  if (x->dtype == y->dtype) {
    par_memcpy(en->threads, io->out[0], io->in[0], (size_t)fc_value_numel(y) * esize(y));
    return;
  }
  cast_run r = {x->dtype, y->dtype, io->in[0], io->out[0]};
  fc_parallel_range(en->threads, fc_value_numel(y), FC_PAR_GRAIN, cast_range, &r);
}

static fc_status cast_prepare(fc_exec_node *en, fc_err *err) {
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  fc_status st = need_holdable(en, x, err);
  if (!st) st = need_holdable(en, y, err);
  if (st) return st;
  if (y->dtype == FC_DT_FLOAT16 && x->dtype != FC_DT_FLOAT16) return fc_kfail(en, err, "casting to float16 is not supported");
  return FC_OK;
}

/* ------------------------------------------------------------------ ConstantOfShape / Range */

static void fill_bytes(char *dst, const void *elem, size_t es, int64_t n) {
  for (int64_t i = 0; i < n; i++) memcpy(dst + (size_t)i * es, elem, es);
}

static fc_status cos_prepare(fc_exec_node *en, fc_err *err) {
  const fc_value *y = fc_en_out(en, 0);
  const fc_attr *a = fc_node_attr(en->node, "value");
  if (a && (!a->t || a->t->dtype != y->dtype || fc_kdims_numel(a->t->rank, a->t->dims) != 1))
    return fc_kfail(en, err, "value must be a one-element tensor of the output's type");
  return need_holdable(en, y, err);
}

static void cos_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const fc_value *y = fc_en_out(en, 0);
  const fc_attr *a = fc_node_attr(en->node, "value");
  size_t es = esize(y);
  if (a && a->t) fill_bytes(io->out[0], a->t->data, es, fc_value_numel(y));
  else memset(io->out[0], 0, (size_t)fc_value_numel(y) * es);
}

static fc_status range_prepare(fc_exec_node *en, fc_err *err) { return need_holdable(en, fc_en_out(en, 0), err); }

static void range_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const fc_value *y = fc_en_out(en, 0);
  int dt = y->dtype;
  int64_t n = fc_value_numel(y);
  for (int64_t i = 0; i < n; i++) {
    if (fc_dtype_is_int(dt)) {
      int64_t st = fc_data_get_i64(dt, io->in[0], 0), d = fc_data_get_i64(dt, io->in[2], 0);
      fc_data_set_i64(dt, io->out[0], i, st + i * d);
    } else {
      double st = fc_data_get_f64(dt, io->in[0], 0), d = fc_data_get_f64(dt, io->in[2], 0);
      fc_data_set_f64(dt, io->out[0], i, st + (double)i * d);
    }
  }
}

/* ------------------------------------------------------------------ Expand */

typedef struct expand_state {
  fc_bcast plan;
  size_t es;
} expand_state;

typedef struct expand_run {
  const expand_state *s;
  const char *x;
  char *y;
} expand_run;

static void expand_row(void *ctx, int64_t out_off, const int64_t *in_off, const int64_t *inner, int64_t len) {
  const expand_run *r = ctx;
  size_t es = r->s->es;
  char *dst = r->y + (size_t)out_off * es;
  const char *src = r->x + (size_t)in_off[0] * es;
  if (inner[0]) memcpy(dst, src, (size_t)len * es);
  else if (es == 4) for (int64_t i = 0; i < len; i++) memcpy(dst + 4 * i, src, 4);
  else fill_bytes(dst, src, es, len);
}

static void expand_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const expand_state *s = en->state;
  expand_run r = {s, io->in[0], io->out[0]};
  fc_bcast_run(&s->plan, en->threads, expand_row, &r);
}

static fc_status expand_prepare(fc_exec_node *en, fc_err *err) {
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  fc_status st = need_holdable(en, x, err);
  if (st) return st;
  expand_state *s = fc_kstate(en, sizeof *s, err);
  if (!s) return err->status;
  s->es = esize(x);
  int ranks[1] = {x->rank};
  const int64_t *dims[1] = {x->dims};
  fc_bcast_init(&s->plan, y->rank, y->dims, 1, ranks, dims);
  return FC_OK;
}

/* ------------------------------------------------------------------ Tile */

typedef struct tile_run {
  const fc_value *x, *y;
  const char *xd;
  char *yd;
  size_t es;
} tile_run;

static void tile_rows(void *ctx, int64_t r0, int64_t r1) {
  const tile_run *r = ctx;
  const fc_value *x = r->x, *y = r->y;
  int R = y->rank;
  int64_t L = y->dims[R - 1], xl = x->dims[R - 1];
  size_t es = r->es;
  for (int64_t row = r0; row < r1; row++) {
    int64_t rem = row, src = 0, mul = xl;
    for (int d = R - 2; d >= 0; d--) {
      src += ((rem % y->dims[d]) % x->dims[d]) * mul;
      rem /= y->dims[d];
      mul *= x->dims[d];
    }
    char *dst = r->yd + (size_t)(row * L) * es;
    for (int64_t k = 0; k < L; k += xl) memcpy(dst + (size_t)k * es, r->xd + (size_t)src * es, (size_t)xl * es);
  }
}

static fc_status tile_prepare(fc_exec_node *en, fc_err *err) {
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  fc_status st = need_holdable(en, x, err);
  if (st) return st;
  if (x->rank != y->rank) return fc_kfail(en, err, "rank mismatch");
  for (int d = 0; d < x->rank; d++)
    if (x->dims[d] == 0 ? y->dims[d] != 0 : y->dims[d] % x->dims[d]) return fc_kfail(en, err, "bad repeats");
  return FC_OK;
}

static void tile_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  if (fc_value_numel(y) == 0) return;
  if (y->rank == 0) {
    memcpy(io->out[0], io->in[0], esize(y));
    return;
  }
  tile_run r = {x, y, io->in[0], io->out[0], esize(y)};
  int64_t L = y->dims[y->rank - 1];
  int64_t grain = L ? FC_PAR_GRAIN / L : 1;
  fc_parallel_range(en->threads, fc_value_numel(y) / L, grain < 1 ? 1 : grain, tile_rows, &r);
}

/* ------------------------------------------------------------------ Pad */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

typedef struct pad_state {
  int rank, mode;
  size_t es;
  int64_t idims[FC_MAX_RANK], odims[FC_MAX_RANK], istr[FC_MAX_RANK];
  int64_t *map[FC_MAX_RANK]; /* per dim: output coordinate -> input coordinate, -1 = constant */
  int64_t mid_lo, mid_hi;    /* innermost outputs that map linearly onto the input */
  int64_t rows;
  char value[8];             /* the constant, in the tensor's type */
  int value_input;           /* constant_value comes from this input at run time (-1: fixed) */
  int64_t maps[];
} pad_state;

typedef struct pad_run {
  const pad_state *s;
  const char *x;
  char *y;
  char value[8];
} pad_run;

static void pad_rows(void *ctx, int64_t r0, int64_t r1) {
  const pad_run *r = ctx;
  const pad_state *s = r->s;
  int R = s->rank;
  size_t es = s->es;
  int64_t L = s->odims[R - 1];
  const int64_t *lm = s->map[R - 1];
  for (int64_t row = r0; row < r1; row++) {
    int64_t rem = row, src = 0;
    bool outside = false;
    for (int d = R - 2; d >= 0; d--) {
      int64_t i = s->map[d][rem % s->odims[d]];
      rem /= s->odims[d];
      if (i < 0) outside = true;
      src += i * s->istr[d];
    }
    char *dst = r->y + (size_t)(row * L) * es;
    if (outside) {
      fill_bytes(dst, r->value, es, L);
      continue;
    }
    const char *in = r->x + (size_t)src * es;
    for (int64_t o = 0; o < L; o++) {
      if (o == s->mid_lo && s->mid_hi > s->mid_lo) {
        memcpy(dst + (size_t)o * es, in + (size_t)lm[o] * es, (size_t)(s->mid_hi - s->mid_lo) * es);
        o = s->mid_hi - 1;
        continue;
      }
      if (lm[o] < 0) memcpy(dst + (size_t)o * es, r->value, es);
      else memcpy(dst + (size_t)o * es, in + (size_t)lm[o] * es, es);
    }
  }
}

static void pad_run_fn(const fc_exec_node *en, const fc_exec_io *io) {
  const pad_state *s = en->state;
  pad_run r = {s, io->in[0], io->out[0], {0}};
  memcpy(r.value, s->value, sizeof r.value);
  if (s->value_input >= 0 && io->in[s->value_input]) {
    const fc_value *v = fc_en_in(en, s->value_input);
    memcpy(r.value, io->in[s->value_input], s->es < fc_dtype_size(v->dtype) ? s->es : fc_dtype_size(v->dtype));
  }
  if (s->rows == 0 || s->odims[s->rank - 1] == 0) return;
  int64_t L = s->odims[s->rank - 1];
  int64_t grain = FC_PAR_GRAIN / L;
  fc_parallel_range(en->threads, s->rows, grain < 1 ? 1 : grain, pad_rows, &r);
}

static int64_t pad_source(int mode, int64_t i, int64_t n) {
  if (i >= 0 && i < n) return i;
  if (n <= 0) return -1;
  switch (mode) {
    case PAD_EDGE: return i < 0 ? 0 : n - 1;
    case PAD_WRAP: return ((i % n) + n) % n;
    case PAD_REFLECT: {
      if (n == 1) return 0;
      int64_t period = 2 * (n - 1), m = ((i % period) + period) % period;
      return m < n ? m : period - m;
    }
    default: return -1;
  }
}

static fc_status pad_prepare(fc_exec_node *en, fc_err *err) {
  const fc_node *n = en->node;
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  fc_status st = need_holdable(en, x, err);
  if (st) return st;
  if (esize(x) > 8) return fc_kfail(en, err, "unsupported dtype");
  int R = x->rank;
  if (R == 0) return fc_kfail(en, err, "cannot pad a scalar");
  int64_t total = 0;
  for (int d = 0; d < R; d++) total += y->dims[d];
  pad_state *s = fc_kstate(en, sizeof(pad_state) + (size_t)total * sizeof(int64_t), err);
  if (!s) return err->status;
  const char *mode = fc_attr_str(n, "mode", "constant");
  s->mode = !strcmp(mode, "reflect") ? PAD_REFLECT : !strcmp(mode, "edge") ? PAD_EDGE : !strcmp(mode, "wrap") ? PAD_WRAP
          : PAD_CONSTANT;
  if (s->mode == PAD_CONSTANT && strcmp(mode, "constant")) return fc_kfail(en, err, "mode '%s' is not supported", mode);
  int64_t pads[2 * FC_MAX_RANK], axes[FC_MAX_RANK];
  int np, na;
  if ((st = fc_kconst_ints(en, n->n_inputs > 1 ? 1 : -1, "pads", pads, 2 * FC_MAX_RANK, &np, err))) return st;
  if ((st = fc_kconst_ints(en, 3, NULL, axes, FC_MAX_RANK, &na, err))) return st;
  if (na < 0) {
    na = R;
    for (int d = 0; d < R; d++) axes[d] = d;
  }
  if (np != 2 * na) return fc_kfail(en, err, "%d pads for %d axes", np, na);
  int64_t begin[FC_MAX_RANK] = {0};
  for (int i = 0; i < na; i++) begin[axes[i] < 0 ? axes[i] + R : axes[i]] = pads[i];
  s->rank = R;
  s->es = esize(x);
  int64_t acc = 1, *m = s->maps;
  for (int d = R - 1; d >= 0; d--) {
    s->istr[d] = acc;
    acc *= x->dims[d];
  }
  for (int d = 0; d < R; d++) {
    s->idims[d] = x->dims[d];
    s->odims[d] = y->dims[d];
    s->map[d] = m;
    for (int64_t o = 0; o < y->dims[d]; o++) m[o] = pad_source(s->mode, o - begin[d], x->dims[d]);
    m += y->dims[d];
  }
  /* the straight run of the innermost dim: outputs whose source is o - begin inside the input */
  int64_t lo = begin[R - 1] < 0 ? 0 : begin[R - 1], hi = begin[R - 1] + x->dims[R - 1];
  if (hi > y->dims[R - 1]) hi = y->dims[R - 1];
  s->mid_lo = lo;
  s->mid_hi = hi > lo ? hi : lo;
  s->rows = fc_kdims_numel(R - 1, y->dims);
  s->value_input = -1;
  if (n->n_inputs > 2 && fc_en_in(en, 2)) {
    const fc_value *v = fc_en_in(en, 2);
    if (v->dtype != x->dtype) return fc_kfail(en, err, "constant_value must have the input's type");
    s->value_input = 2;
  } else if (fc_node_attr(n, "value")) { /* opset < 11 */
    fc_data_set_f64(x->dtype, s->value, 0, fc_attr_float(n, "value", 0));
  }
  return FC_OK;
}

/* ------------------------------------------------------------------ table */

const fc_kernel fc_kernels_shape[] = {
    {.op_type = "Identity", .prepare = copy_prepare, .run = copy_run_fn, .release = no_release},
    {.op_type = "Dropout", .prepare = copy_prepare, .run = copy_run_fn, .release = no_release},
    {.op_type = "Reshape", .prepare = copy_prepare, .run = copy_run_fn, .release = no_release},
    {.op_type = "Flatten", .prepare = copy_prepare, .run = copy_run_fn, .release = no_release},
    {.op_type = "Squeeze", .prepare = copy_prepare, .run = copy_run_fn, .release = no_release},
    {.op_type = "Unsqueeze", .prepare = copy_prepare, .run = copy_run_fn, .release = no_release},
    {.op_type = "Shape", .prepare = shape_prepare, .run = shape_run_fn, .release = no_release},
    {.op_type = "Transpose", .prepare = tr_prepare, .run = tr_run_fn, .release = no_release},
    {.op_type = "Concat", .prepare = cat_prepare, .run = cat_run_fn, .release = no_release},
    {.op_type = "Split", .prepare = cat_prepare, .run = cat_run_fn, .release = no_release},
    {.op_type = "Slice", .prepare = slice_prepare, .run = slice_run_fn, .release = no_release},
    {.op_type = "Gather", .prepare = gather_prepare, .run = gather_run_fn, .release = no_release},
    {.op_type = "Cast", .prepare = cast_prepare, .run = cast_run_fn, .release = no_release},
    {.op_type = "ConstantOfShape", .prepare = cos_prepare, .run = cos_run_fn, .release = no_release},
    {.op_type = "Range", .prepare = range_prepare, .run = range_run_fn, .release = no_release},
    {.op_type = "Expand", .prepare = expand_prepare, .run = expand_run_fn, .release = no_release},
    {.op_type = "Tile", .prepare = tile_prepare, .run = tile_run_fn, .release = no_release},
    {.op_type = "Pad", .prepare = pad_prepare, .run = pad_run_fn, .release = no_release},
    {.op_type = NULL},
};
