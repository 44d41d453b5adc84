/* Data-movement and shape ops: Shape, Reshape, Flatten, Transpose, Concat, Split, Slice, Squeeze,
 * Unsqueeze, Gather, Cast, Constant, ConstantOfShape, Expand, Range, Identity, Dropout, Pad, Tile.
 * They cost zero FLOPs; every one of them folds when its inputs are constant, which is what makes
 * exporters' run-time shape computations (Shape → Gather → Concat → Reshape) concrete. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ops/infer_util.h"
#include "util/mem.h"

/* Copies element src_index(e) of input `in` into element e of output `out` (same dtype). */
static void copy_elem(const fc_value *in, int64_t src, fc_value *out, int64_t dst) {
  size_t es = fc_dtype_size(out->dtype);
  memcpy((char *)out->data + (size_t)dst * es, (const char *)in->data + (size_t)src * es, es);
}

/* Folds an op whose output is its input's data re-shaped (Reshape, Flatten, Squeeze, ...). */
static fc_status fold_same_data(fc_graph *g, fc_node *n) {
  fc_value *x = fc_node_in(g, n, 0);
  if (!x->data || !fc_alloc_output_data(g, n, 0)) return FC_OK;
  fc_value *y = fc_node_out(g, n, 0);
  memcpy(y->data, x->data, (size_t)fc_value_numel(y) * fc_dtype_size(y->dtype));
  return FC_OK;
}

static fc_status infer_identity(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, strcmp(n->op_type, "Dropout") == 0 ? 3 : 1, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  if ((st = fc_set_output(g, n, 0, x->dtype, x->rank, x->dims, err))) return st;
  if (n->n_outputs > 1 && (st = fc_set_output(g, n, 1, FC_DT_BOOL, x->rank, x->dims, err))) return st;
  if (n->n_outputs > 1 && fc_alloc_output_data(g, n, 1)) memset(fc_node_out(g, n, 1)->data, 1, (size_t)fc_value_numel(x));
  return fold_same_data(g, n);
}

static fc_status infer_shape(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 1, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  int64_t start = fc_attr_int(n, "start", 0), end = fc_attr_int(n, "end", x->rank);
  if (start < 0) start += x->rank;
  if (end < 0) end += x->rank;
  start = start < 0 ? 0 : start > x->rank ? x->rank : start;
  end = end < start ? start : end > x->rank ? x->rank : end;
  int64_t len = end - start;
  if ((st = fc_set_output(g, n, 0, FC_DT_INT64, 1, &len, err))) return st;
  if (fc_alloc_output_data(g, n, 0))
    memcpy(fc_node_out(g, n, 0)->data, x->dims + start, (size_t)len * sizeof(int64_t));
  return FC_OK;
}

static fc_status infer_reshape(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 2, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  int64_t spec[FC_MAX_RANK];
  int r = 0;
  if (n->n_inputs == 2) {
    if ((st = fc_const_ints(g, n, 1, spec, FC_MAX_RANK, &r, err))) return st;
  } else { /* opset < 5: shape attribute */
    const fc_attr *a = fc_node_attr(n, "shape");
    if (!a || a->n_ints > FC_MAX_RANK) return fc_fail(err, FC_ERR_INVALID, "node '%s' (Reshape): bad shape", n->name);
    memcpy(spec, a->ints, a->n_ints * sizeof(int64_t));
    r = (int)a->n_ints;
  }
  bool allowzero = fc_attr_int(n, "allowzero", 0) != 0;
  int64_t known = 1, infer_at = -1, dims[FC_MAX_RANK];
  for (int d = 0; d < r; d++) {
    dims[d] = spec[d];
    if (spec[d] == 0 && !allowzero) {
      if (d >= x->rank) return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Reshape): 0 at axis %d copies a missing dim", n->name, d);
      dims[d] = x->dims[d];
    }
    if (dims[d] == -1) {
      if (infer_at >= 0) return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Reshape): more than one -1", n->name);
      infer_at = d;
      continue;
    }
    if (dims[d] < 0 || !fc_mul_i64(known, dims[d], &known))
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Reshape): invalid target dim %lld", n->name, (long long)dims[d]);
  }
  int64_t total = fc_value_numel(x);
  if (infer_at >= 0) {
    if (known == 0 || total % known)
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Reshape): %lld elements cannot fill the target shape", n->name,
                     (long long)total);
    dims[infer_at] = total / known;
  } else if (known != total) {
    return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Reshape): target shape has %lld elements, input has %lld", n->name,
                   (long long)known, (long long)total);
  }
  if ((st = fc_set_output(g, n, 0, x->dtype, r, dims, err))) return st;
  return fold_same_data(g, n);
}

static fc_status infer_flatten(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 1, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  int64_t axis = fc_attr_int(n, "axis", 1);
  if (axis < 0) axis += x->rank;
  if (axis < 0 || axis > x->rank) return fc_fail(err, FC_ERR_INVALID, "node '%s' (Flatten): axis out of range", n->name);
  int64_t dims[2] = {1, 1};
  for (int d = 0; d < x->rank; d++) dims[d < axis ? 0 : 1] *= x->dims[d];
  if ((st = fc_set_output(g, n, 0, x->dtype, 2, dims, err))) return st;
  return fold_same_data(g, n);
}

static fc_status squeeze_unsqueeze(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 2, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  int64_t axes[FC_MAX_RANK];
  int na;
  bool given;
  if ((st = fc_axes_arg(g, n, 1, axes, &na, &given, err))) return st;
  int64_t dims[FC_MAX_RANK];
  int r = 0;
  if (!strcmp(n->op_type, "Unsqueeze")) {
    int out_rank = x->rank + na;
    if (out_rank > FC_MAX_RANK || !given)
      return fc_fail(err, FC_ERR_INVALID, "node '%s' (Unsqueeze): needs axes and a result rank ≤ %d", n->name, FC_MAX_RANK);
    bool ins[FC_MAX_RANK] = {false};
    for (int i = 0; i < na; i++) {
      int64_t a;
      if ((st = fc_norm_axis(n, axes[i], out_rank, &a, err))) return st;
      if (ins[a]) return fc_fail(err, FC_ERR_INVALID, "node '%s' (Unsqueeze): axis %lld repeated", n->name, (long long)a);
      ins[a] = true;
    }
    for (int d = 0, k = 0; d < out_rank; d++) dims[r++] = ins[d] ? 1 : x->dims[k++];
  } else {
    bool drop[FC_MAX_RANK] = {false};
    for (int i = 0; i < na; i++) {
      int64_t a;
      if ((st = fc_norm_axis(n, axes[i], x->rank, &a, err))) return st;
      if (x->dims[a] != 1)
        return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Squeeze): axis %lld has size %lld, not 1", n->name, (long long)a,
                       (long long)x->dims[a]);
      drop[a] = true;
    }
    for (int d = 0; d < x->rank; d++)
      if (!(na ? drop[d] : x->dims[d] == 1)) dims[r++] = x->dims[d];
  }
  if ((st = fc_set_output(g, n, 0, x->dtype, r, dims, err))) return st;
  return fold_same_data(g, n);
}

static fc_status infer_transpose(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 1, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  int64_t perm[FC_MAX_RANK];
  const fc_attr *p = fc_node_attr(n, "perm");
  bool seen[FC_MAX_RANK] = {false};
  for (int d = 0; d < x->rank; d++) perm[d] = x->rank - 1 - d;
  if (p && p->type == FC_ATTR_INTS) {
    if ((int)p->n_ints != x->rank) return fc_fail(err, FC_ERR_INVALID, "node '%s' (Transpose): perm has %zu entries for rank %d", n->name, p->n_ints, x->rank);
    for (int d = 0; d < x->rank; d++) {
      int64_t a;
      if ((st = fc_norm_axis(n, p->ints[d], x->rank, &a, err))) return st;
      if (seen[a]) return fc_fail(err, FC_ERR_INVALID, "node '%s' (Transpose): perm is not a permutation", n->name);
      seen[a] = true;
      perm[d] = a;
    }
  }
  int64_t dims[FC_MAX_RANK];
  for (int d = 0; d < x->rank; d++) dims[d] = x->dims[perm[d]];
  if ((st = fc_set_output(g, n, 0, x->dtype, x->rank, dims, err))) return st;
  if (!x->data || !fc_alloc_output_data(g, n, 0)) return FC_OK;
  fc_value *y = fc_node_out(g, n, 0);
  int64_t in_stride[FC_MAX_RANK], s = 1, numel = fc_value_numel(y);
  for (int d = x->rank - 1; d >= 0; d--) { in_stride[d] = s; s *= x->dims[d]; }
  for (int64_t e = 0; e < numel; e++) {
    int64_t rem = e, src = 0;
    for (int d = x->rank - 1; d >= 0; d--) { src += (rem % dims[d]) * in_stride[perm[d]]; rem /= dims[d]; }
    copy_elem(x, src, y, e);
  }
  return FC_OK;
}

static fc_status infer_concat(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 1 << 16, err);
  fc_value *x0;
  if (st || (st = fc_need_input(g, n, 0, &x0, err))) return st;
  int64_t axis;
  if ((st = fc_norm_axis(n, fc_attr_int(n, "axis", 0), x0->rank, &axis, err))) return st;
  int64_t dims[FC_MAX_RANK];
  memcpy(dims, x0->dims, sizeof dims);
  dims[axis] = 0;
  for (int i = 0; i < n->n_inputs; i++) {
    fc_value *x;
    if ((st = fc_need_input(g, n, i, &x, err))) return st;
    if (x->rank != x0->rank || x->dtype != x0->dtype)
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Concat): input '%s' differs in rank or type", n->name, x->name);
    for (int d = 0; d < x->rank; d++)
      if (d != axis && x->dims[d] != x0->dims[d])
        return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Concat): input '%s' differs at axis %d (%lld vs %lld)", n->name,
                       x->name, d, (long long)x->dims[d], (long long)x0->dims[d]);
    if (!fc_add_i64(dims[axis], x->dims[axis], &dims[axis]))
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Concat): too large", n->name);
  }
  if ((st = fc_set_output(g, n, 0, x0->dtype, x0->rank, dims, err))) return st;
  /* (an empty result is not folded: its loops could still spin over huge outer dims) */
  if (!fc_all_inputs_const(g, n) || fc_numel(x0->rank, dims) == 0 || !fc_alloc_output_data(g, n, 0)) return FC_OK;
  fc_value *y = fc_node_out(g, n, 0);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; d++) outer *= dims[d];
  for (int d = (int)axis + 1; d < x0->rank; d++) inner *= dims[d];
  int64_t at = 0;
  for (int64_t o = 0; o < outer; o++)
    for (int i = 0; i < n->n_inputs; i++) {
      fc_value *x = fc_node_in(g, n, i);
      int64_t chunk = x->dims[axis] * inner;
      for (int64_t k = 0; k < chunk; k++) copy_elem(x, o * chunk + k, y, at++);
    }
  return FC_OK;
}

static fc_status infer_split(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 2, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  int64_t axis;
  if ((st = fc_norm_axis(n, fc_attr_int(n, "axis", 0), x->rank, &axis, err))) return st;
  int no = n->n_outputs;
  if (no < 1 || no > 4096) return fc_fail(err, FC_ERR_INVALID, "node '%s' (Split): %d outputs", n->name, no);
  int64_t *sizes = fc_calloc((size_t)no, sizeof(int64_t));
  if (!sizes) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  const fc_attr *sa = fc_node_attr(n, "split");
  int ns = 0;
  if (sa && sa->type == FC_ATTR_INTS) {
    ns = (int)sa->n_ints;
    for (int i = 0; i < ns && i < no; i++) sizes[i] = sa->ints[i];
  } else if (fc_node_in(g, n, 1)) {
    int64_t tmp[4096];
    if ((st = fc_const_ints(g, n, 1, tmp, 4096, &ns, err))) { free(sizes); return st; }
    for (int i = 0; i < ns && i < no; i++) sizes[i] = tmp[i];
  } else { /* equal parts; opset 18 num_outputs lets the last be smaller */
    int64_t part = (x->dims[axis] + no - 1) / no;
    for (int i = 0; i < no; i++) sizes[i] = part;
    sizes[no - 1] = x->dims[axis] - part * (no - 1);
    ns = no;
  }
  int64_t sum = 0;
  bool sizes_ok = ns == no;
  for (int i = 0; i < no && sizes_ok; i++) { /* each size in [0, dim]: the sum cannot overflow */
    sizes_ok = sizes[i] >= 0 && sizes[i] <= x->dims[axis];
    sum += sizes_ok ? sizes[i] : 0;
  }
  if (!sizes_ok || sum != x->dims[axis]) {
    free(sizes);
    return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Split): split sizes do not add up to %lld", n->name, (long long)x->dims[axis]);
  }
  int64_t start = 0;
  for (int i = 0; i < no && !st; i++) {
    int64_t dims[FC_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = sizes[i];
    st = fc_set_output(g, n, i, x->dtype, x->rank, dims, err);
    if (!st && x->data && fc_value_numel(x) > 0 && fc_alloc_output_data(g, n, i)) {
      fc_value *y = fc_node_out(g, n, i);
      int64_t outer = 1, inner = 1;
      for (int d = 0; d < axis; d++) outer *= x->dims[d];
      for (int d = (int)axis + 1; d < x->rank; d++) inner *= x->dims[d];
      int64_t at = 0;
      for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < sizes[i] * inner; k++)
          copy_elem(x, (o * x->dims[axis] + start) * inner + k, y, at++);
    }
    start += sizes[i];
  }
  free(sizes);
  return st;
}

/* Clamps a Slice start/end the way ONNX does: [0, dim] for a positive step; for a negative one
 * starts to [0, dim-1] and ends to [-1, dim-1] (-1 = "past the front", so index 0 is included). */
static int64_t clamp_index(int64_t v, int64_t dim, bool positive_step, bool is_end) {
  if (v < 0) v += dim;
  if (positive_step) return v < 0 ? 0 : v > dim ? dim : v;
  int64_t lo = is_end ? -1 : 0;
  return v < lo ? lo : v > dim - 1 ? dim - 1 : v;
}

static fc_status infer_slice(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 5, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  int64_t starts[FC_MAX_RANK], ends[FC_MAX_RANK], axes[FC_MAX_RANK], steps[FC_MAX_RANK];
  int ns = 0, ne = 0, na = 0, nst = 0;
  if (n->n_inputs == 1) { /* opset < 10: attributes */
    const fc_attr *s = fc_node_attr(n, "starts"), *e = fc_node_attr(n, "ends"), *a = fc_node_attr(n, "axes");
    if (!s || !e || s->n_ints != e->n_ints || s->n_ints > FC_MAX_RANK)
      return fc_fail(err, FC_ERR_INVALID, "node '%s' (Slice): starts/ends attributes missing or mismatched", n->name);
    ns = ne = (int)s->n_ints;
    memcpy(starts, s->ints, s->n_ints * 8);
    memcpy(ends, e->ints, e->n_ints * 8);
    if (a && a->n_ints == s->n_ints) { na = (int)a->n_ints; memcpy(axes, a->ints, a->n_ints * 8); }
  } else {
    if ((st = fc_const_ints(g, n, 1, starts, FC_MAX_RANK, &ns, err)) ||
        (st = fc_const_ints(g, n, 2, ends, FC_MAX_RANK, &ne, err)))
      return st;
    if (fc_node_in(g, n, 3) && (st = fc_const_ints(g, n, 3, axes, FC_MAX_RANK, &na, err))) return st;
    if (fc_node_in(g, n, 4) && (st = fc_const_ints(g, n, 4, steps, FC_MAX_RANK, &nst, err))) return st;
  }
  if (ns != ne || (na && na != ns) || (nst && nst != ns))
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (Slice): starts, ends, axes and steps differ in length", n->name);
  int64_t begin[FC_MAX_RANK], step[FC_MAX_RANK], dims[FC_MAX_RANK];
  bool seen[FC_MAX_RANK] = {false};
  for (int d = 0; d < x->rank; d++) { begin[d] = 0; step[d] = 1; dims[d] = x->dims[d]; }
  for (int i = 0; i < ns; i++) {
    int64_t a;
    if ((st = fc_norm_axis(n, na ? axes[i] : i, x->rank, &a, err))) return st;
    if (seen[a]) return fc_fail(err, FC_ERR_INVALID, "node '%s' (Slice): axis %lld repeated", n->name, (long long)a);
    seen[a] = true;
    int64_t sp = nst ? steps[i] : 1, dim = x->dims[a];
    if (sp == 0) return fc_fail(err, FC_ERR_INVALID, "node '%s' (Slice): step 0", n->name);
    /* a step longer than the axis takes at most one element: clamping it keeps the arithmetic in range */
    if (sp > dim) sp = dim > 0 ? dim : 1;
    if (sp < -dim) sp = dim > 0 ? -dim : -1;
    int64_t b = clamp_index(starts[i], dim, sp > 0, false), e = clamp_index(ends[i], dim, sp > 0, true);
    int64_t len = sp > 0 ? (e > b ? (e - b - 1) / sp + 1 : 0) : (b > e ? (b - e - 1) / -sp + 1 : 0);
    begin[a] = b;
    step[a] = sp;
    dims[a] = len;
  }
  if ((st = fc_set_output(g, n, 0, x->dtype, x->rank, dims, err))) return st;
  if (!x->data || !fc_alloc_output_data(g, n, 0)) return FC_OK;
  fc_value *y = fc_node_out(g, n, 0);
  int64_t in_stride[FC_MAX_RANK], s = 1, numel = fc_value_numel(y);
  for (int d = x->rank - 1; d >= 0; d--) { in_stride[d] = s; s *= x->dims[d]; }
  for (int64_t e = 0; e < numel; e++) {
    int64_t rem = e, src = 0;
    for (int d = x->rank - 1; d >= 0; d--) {
      src += (begin[d] + (rem % dims[d]) * step[d]) * in_stride[d];
      rem /= dims[d];
    }
    copy_elem(x, src, y, e);
  }
  return FC_OK;
}

static fc_status infer_gather(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 2, 2, err);
  fc_value *x, *idx;
  if (st || (st = fc_need_input(g, n, 0, &x, err)) || (st = fc_need_input(g, n, 1, &idx, err))) return st;
  if (!fc_dtype_is_int(idx->dtype)) return fc_fail(err, FC_ERR_INVALID, "node '%s' (Gather): indices must be integers", n->name);
  int64_t axis;
  if ((st = fc_norm_axis(n, fc_attr_int(n, "axis", 0), x->rank, &axis, err))) return st;
  int r = x->rank - 1 + idx->rank;
  if (r > FC_MAX_RANK) return fc_fail(err, FC_ERR_UNSUPPORTED, "node '%s' (Gather): result rank %d too large", n->name, r);
  int64_t dims[FC_MAX_RANK];
  int k = 0;
  for (int d = 0; d < axis; d++) dims[k++] = x->dims[d];
  for (int d = 0; d < idx->rank; d++) dims[k++] = idx->dims[d];
  for (int d = (int)axis + 1; d < x->rank; d++) dims[k++] = x->dims[d];
  int64_t ni = fc_value_numel(idx);
  if (idx->data) /* constant indices are checked now, whatever happens at run time */
    for (int64_t i = 0; i < ni; i++) {
      int64_t v = fc_data_get_i64(idx->dtype, idx->data, i);
      if (v < -x->dims[axis] || v >= x->dims[axis])
        return fc_fail(err, FC_ERR_INVALID, "node '%s' (Gather): index %lld is out of range for size %lld", n->name,
                       (long long)v, (long long)x->dims[axis]);
    }
  if ((st = fc_set_output(g, n, 0, x->dtype, r, dims, err))) return st;
  if (!x->data || !idx->data || fc_numel(r, dims) == 0 || !fc_alloc_output_data(g, n, 0)) return FC_OK;
  fc_value *y = fc_node_out(g, n, 0);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; d++) outer *= x->dims[d];
  for (int d = (int)axis + 1; d < x->rank; d++) inner *= x->dims[d];
  int64_t at = 0;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < ni; i++) {
      int64_t v = fc_data_get_i64(idx->dtype, idx->data, i);
      if (v < 0) v += x->dims[axis];
      for (int64_t q = 0; q < inner; q++) copy_elem(x, (o * x->dims[axis] + v) * inner + q, y, at++);
    }
  return FC_OK;
}

static fc_status infer_cast(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 1, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  int to = (int)fc_attr_int(n, "to", 0);
  if (fc_dtype_size(to) == 0 || to == FC_DT_FLOAT16)
    return fc_fail(err, FC_ERR_UNSUPPORTED, "node '%s' (Cast): target type %s is not supported", n->name, fc_dtype_name(to));
  if ((st = fc_set_output(g, n, 0, to, x->rank, x->dims, err))) return st;
  if (!x->data || !fc_alloc_output_data(g, n, 0)) return FC_OK;
  fc_value *y = fc_node_out(g, n, 0);
  int64_t numel = fc_value_numel(y);
  for (int64_t e = 0; e < numel; e++) {
    if (fc_dtype_is_int(to) && fc_dtype_is_int(x->dtype)) fc_data_set_i64(to, y->data, e, fc_data_get_i64(x->dtype, x->data, e));
    else fc_data_set_f64(to, y->data, e, fc_data_get_f64(x->dtype, x->data, e));
  }
  return FC_OK;
}

static fc_status infer_constant(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 0, 0, err);
  if (st) return st;
  fc_value *y = fc_node_out(g, n, 0);
  if (n->n_attrs != 1) return fc_fail(err, FC_ERR_INVALID, "node '%s' (Constant): needs exactly one attribute", n->name);
  const fc_attr *a = &n->attrs[0];
  fc_tensor t = {0};
  int64_t one = 1;
  if (a->t) {
    t = *a->t;
  } else if (!strcmp(a->name, "value_float") || !strcmp(a->name, "value_int")) {
    t.dtype = a->name[6] == 'f' ? FC_DT_FLOAT : FC_DT_INT64;
    t.rank = 0;
  } else if (!strcmp(a->name, "value_floats") || !strcmp(a->name, "value_ints")) {
    t.dtype = a->name[6] == 'f' ? FC_DT_FLOAT : FC_DT_INT64;
    t.rank = 1;
    t.dims[0] = (int64_t)(t.dtype == FC_DT_FLOAT ? a->n_floats : a->n_ints);
  } else {
    return fc_fail(err, FC_ERR_UNSUPPORTED, "node '%s' (Constant): attribute '%s' is not supported", n->name, a->name);
  }
  if ((st = fc_set_output(g, n, 0, t.dtype, t.rank, t.dims, err))) return st;
  int64_t numel = fc_value_numel(y);
  size_t bytes = (size_t)numel * fc_dtype_size(t.dtype);
  free(y->data);
  y->data = fc_malloc(bytes);
  if (!y->data) return fc_fail(err, FC_ERR_NOMEM, "node '%s' (Constant): out of memory", n->name);
  y->from_constant_node = true;
  if (bytes == 0) return FC_OK; /* empty list: nothing to copy (and the source may be NULL) */
  if (a->t) memcpy(y->data, a->t->data, bytes);
  else if (t.dtype == FC_DT_FLOAT && t.rank == 0) ((float *)y->data)[0] = a->f;
  else if (t.rank == 0) ((int64_t *)y->data)[0] = a->i;
  else if (t.dtype == FC_DT_FLOAT) memcpy(y->data, a->floats, bytes);
  else memcpy(y->data, a->ints, bytes);
  (void)one;
  return FC_OK;
}

static fc_status infer_constant_of_shape(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 1, err);
  int64_t dims[FC_MAX_RANK];
  int r = 0;
  if (st || (st = fc_const_ints(g, n, 0, dims, FC_MAX_RANK, &r, err))) return st;
  const fc_attr *a = fc_node_attr(n, "value");
  int dtype = a && a->t ? a->t->dtype : FC_DT_FLOAT;
  if ((st = fc_set_output(g, n, 0, dtype, r, dims, err))) return st;
  if (!fc_alloc_output_data(g, n, 0)) return FC_OK;
  fc_value *y = fc_node_out(g, n, 0);
  int64_t numel = fc_value_numel(y);
  if (a && a->t && fc_numel(a->t->rank, a->t->dims) >= 1)
    for (int64_t e = 0; e < numel; e++) memcpy((char *)y->data + (size_t)e * fc_dtype_size(dtype), a->t->data, fc_dtype_size(dtype));
  return FC_OK;
}

static fc_status infer_expand(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 2, 2, err);
  fc_value *x;
  int64_t shape[FC_MAX_RANK];
  int r;
  if (st || (st = fc_need_input(g, n, 0, &x, err)) || (st = fc_const_ints(g, n, 1, shape, FC_MAX_RANK, &r, err))) return st;
  fc_value target = {.name = "shape", .rank = r};
  memcpy(target.dims, shape, sizeof(int64_t) * (size_t)r);
  int rank;
  int64_t dims[FC_MAX_RANK];
  if ((st = fc_broadcast(n, x, &target, &rank, dims, err))) return st;
  if ((st = fc_set_output(g, n, 0, x->dtype, rank, dims, err))) return st;
  if (!x->data || !fc_alloc_output_data(g, n, 0)) return FC_OK;
  fc_value *y = fc_node_out(g, n, 0);
  int64_t strides[FC_MAX_RANK], numel = fc_value_numel(y);
  fc_broadcast_strides(x, rank, dims, strides);
  for (int64_t e = 0; e < numel; e++) {
    int64_t rem = e, src = 0;
    for (int d = rank - 1; d >= 0; d--) { src += (rem % dims[d]) * strides[d]; rem /= dims[d]; }
    copy_elem(x, src, y, e);
  }
  return FC_OK;
}

static fc_status infer_tile(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 2, 2, err);
  fc_value *x;
  int64_t reps[FC_MAX_RANK];
  int r;
  if (st || (st = fc_need_input(g, n, 0, &x, err)) || (st = fc_const_ints(g, n, 1, reps, FC_MAX_RANK, &r, err))) return st;
  if (r != x->rank) return fc_fail(err, FC_ERR_INVALID, "node '%s' (Tile): repeats must have %d entries", n->name, x->rank);
  int64_t dims[FC_MAX_RANK];
  for (int d = 0; d < r; d++) {
    if (reps[d] < 0 || !fc_mul_i64(x->dims[d], reps[d], &dims[d]))
      return fc_fail(err, FC_ERR_INVALID, "node '%s' (Tile): bad repeat %lld", n->name, (long long)reps[d]);
  }
  if ((st = fc_set_output(g, n, 0, x->dtype, r, dims, err))) return st;
  if (!x->data || !fc_alloc_output_data(g, n, 0)) return FC_OK;
  fc_value *y = fc_node_out(g, n, 0);
  int64_t in_stride[FC_MAX_RANK], s = 1, numel = fc_value_numel(y);
  for (int d = r - 1; d >= 0; d--) { in_stride[d] = s; s *= x->dims[d]; }
  for (int64_t e = 0; e < numel; e++) {
    int64_t rem = e, src = 0;
    for (int d = r - 1; d >= 0; d--) { src += ((rem % dims[d]) % x->dims[d]) * in_stride[d]; rem /= dims[d]; }
    copy_elem(x, src, y, e);
  }
  return FC_OK;
}

static fc_status infer_range(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 3, 3, err);
  fc_value *in[3];
  for (int i = 0; i < 3 && !st; i++) st = fc_need_input(g, n, i, &in[i], err);
  if (st) return st;
  for (int i = 0; i < 3; i++)
    if (!in[i]->data || fc_value_numel(in[i]) != 1)
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Range): start, limit and delta must be constant scalars", n->name);
  int dt = in[0]->dtype;
  if (in[1]->dtype != dt || in[2]->dtype != dt)
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (Range): start, limit and delta must have the same type", n->name);
  double start = fc_data_get_f64(dt, in[0]->data, 0), limit = fc_data_get_f64(dt, in[1]->data, 0),
         delta = fc_data_get_f64(dt, in[2]->data, 0);
  if (delta == 0 || !isfinite(start) || !isfinite(limit) || !isfinite(delta))
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (Range): delta must be nonzero and values finite", n->name);
  double cnt = ceil((limit - start) / delta);
  int64_t len = cnt > 0 ? (int64_t)(cnt < 1e15 ? cnt : 1e15) : 0;
  if ((st = fc_set_output(g, n, 0, dt, 1, &len, err))) return st;
  if (!fc_alloc_output_data(g, n, 0)) return FC_OK;
  fc_value *y = fc_node_out(g, n, 0);
  for (int64_t e = 0; e < len; e++) {
    if (fc_dtype_is_int(dt))
      fc_data_set_i64(dt, y->data, e, (int64_t)((uint64_t)fc_data_get_i64(dt, in[0]->data, 0) +
                                                (uint64_t)e * (uint64_t)fc_data_get_i64(dt, in[2]->data, 0)));
    else
      fc_data_set_f64(dt, y->data, e, start + (double)e * delta);
  }
  return FC_OK;
}

static fc_status infer_pad(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 4, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  int64_t pads[2 * FC_MAX_RANK], axes[FC_MAX_RANK];
  int np = 0, na = 0;
  const fc_attr *pa = fc_node_attr(n, "pads");
  if (pa && pa->type == FC_ATTR_INTS) {
    if (pa->n_ints > 2 * FC_MAX_RANK) return fc_fail(err, FC_ERR_INVALID, "node '%s' (Pad): too many pads", n->name);
    np = (int)pa->n_ints;
    memcpy(pads, pa->ints, pa->n_ints * 8);
  } else if ((st = fc_const_ints(g, n, 1, pads, 2 * FC_MAX_RANK, &np, err))) {
    return st;
  }
  if (fc_node_in(g, n, 3) && (st = fc_const_ints(g, n, 3, axes, FC_MAX_RANK, &na, err))) return st;
  if (!na) { na = x->rank; for (int d = 0; d < na; d++) axes[d] = d; }
  if (np != 2 * na) return fc_fail(err, FC_ERR_INVALID, "node '%s' (Pad): %d pads for %d axes", n->name, np, na);
  int64_t dims[FC_MAX_RANK];
  memcpy(dims, x->dims, sizeof dims);
  for (int i = 0; i < na; i++) {
    int64_t a;
    if ((st = fc_norm_axis(n, axes[i], x->rank, &a, err))) return st;
    /* bounds first, so the sum below cannot overflow; negative pads crop */
    if (pads[i] > (1 << 24) || pads[na + i] > (1 << 24) || pads[i] < -x->dims[a] || pads[na + i] < -x->dims[a])
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Pad): pads make axis %lld invalid", n->name, (long long)a);
    dims[a] += pads[i] + pads[na + i];
    if (dims[a] < 0)
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Pad): pads make axis %lld invalid", n->name, (long long)a);
  }
  return fc_set_output(g, n, 0, x->dtype, x->rank, dims, err);
}

static void cost_pad(const fc_graph *g, const fc_node *n, fc_node_cost *c) { (void)g; (void)n; (void)c; }

const fc_op_def fc_ops_shape[] = {
    {"Identity", infer_identity, NULL},
    {"Dropout", infer_identity, NULL},
    {"Shape", infer_shape, NULL},
    {"Reshape", infer_reshape, NULL},
    {"Flatten", infer_flatten, NULL},
    {"Squeeze", squeeze_unsqueeze, NULL},
    {"Unsqueeze", squeeze_unsqueeze, NULL},
    {"Transpose", infer_transpose, NULL},
    {"Concat", infer_concat, NULL},
    {"Split", infer_split, NULL},
    {"Slice", infer_slice, NULL},
    {"Gather", infer_gather, NULL},
    {"Cast", infer_cast, NULL},
    {"Constant", infer_constant, NULL},
    {"ConstantOfShape", infer_constant_of_shape, NULL},
    {"Expand", infer_expand, NULL},
    {"Tile", infer_tile, NULL},
    {"Range", infer_range, NULL},
    {"Pad", infer_pad, cost_pad},
    {NULL, NULL, NULL},
};
