/* Shared checks and helpers for shape rules. */
#include "ops/infer_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/mem.h"

int64_t fc_numel(int rank, const int64_t *dims) {
  int64_t n = 1;
  for (int d = 0; d < rank; d++)
    if (!fc_mul_i64(n, dims[d], &n)) return -1;
  return n;
}

int64_t fc_sat_mul(int64_t a, int64_t b) {
  int64_t r;
  if (a <= 0 || b <= 0) return 0; /* counts are never negative */
  return fc_mul_i64(a, b, &r) ? r : INT64_MAX;
}

int64_t fc_sat_add(int64_t a, int64_t b) {
  int64_t r;
  return fc_add_i64(a, b, &r) ? r : (b > 0 ? INT64_MAX : INT64_MIN);
}

fc_status fc_need_arity(const fc_node *n, int lo, int hi, fc_err *err) {
  if (n->n_inputs < lo || n->n_inputs > hi)
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): has %d inputs, expected %d to %d", n->name, n->op_type,
                   n->n_inputs, lo, hi);
  if (n->n_outputs < 1 || n->outputs[0] < 0)
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): has no output", n->name, n->op_type);
  return FC_OK;
}

fc_status fc_need_input(const fc_graph *g, const fc_node *n, int i, fc_value **out, fc_err *err) {
  fc_value *v = fc_node_in(g, n, i);
  if (!v) return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): required input #%d is missing", n->name, n->op_type, i);
  if (!fc_value_known(v)) {
    char first_dyn[64] = "";
    for (int d = 0; d < v->rank; d++)
      if (v->dims[d] < 0) {
        snprintf(first_dyn, sizeof first_dyn, " (dimension %d%s%s is dynamic)", d, v->dim_param[d] ? " " : "",
                 v->dim_param[d] ? v->dim_param[d] : "");
        break;
      }
    return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): shape of input '%s' is unknown%s", n->name, n->op_type,
                   v->name, first_dyn);
  }
  if (v->dtype == FC_DT_UNDEFINED)
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): input '%s' has no element type", n->name, n->op_type, v->name);
  *out = v;
  return FC_OK;
}

fc_status fc_set_output(fc_graph *g, const fc_node *n, int i, int dtype, int rank, const int64_t *dims, fc_err *err) {
  fc_value *v = fc_node_out(g, n, i);
  if (!v) return FC_OK; /* omitted optional output */
  if (rank < 0 || rank > FC_MAX_RANK)
    return fc_fail(err, FC_ERR_UNSUPPORTED, "node '%s' (%s): output rank %d exceeds %d", n->name, n->op_type, rank,
                   FC_MAX_RANK);
  int64_t span = 1; /* 0 counts as 1: an empty tensor must not carry absurd dims either */
  for (int d = 0; d < rank; d++) {
    if (dims[d] < 0)
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): output dimension %d is negative (%lld)", n->name, n->op_type,
                     d, (long long)dims[d]);
    if (!fc_mul_i64(span, dims[d] ? dims[d] : 1, &span) || span > FC_MAX_TENSOR_BYTES / 8)
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): output '%s' would be too large", n->name, n->op_type, v->name);
  }
  v->dtype = dtype;
  v->rank = rank;
  for (int d = 0; d < FC_MAX_RANK; d++) v->dims[d] = d < rank ? dims[d] : 0;
  return FC_OK;
}

bool fc_alloc_output_data(fc_graph *g, const fc_node *n, int i) {
  fc_value *v = fc_node_out(g, n, i);
  if (!v) return false;
  int64_t numel = fc_value_numel(v);
  size_t es = fc_dtype_size(v->dtype);
  if (numel < 0 || numel > FC_FOLD_MAX_ELEMS || es == 0 || g->folded_elems + numel > FC_FOLD_BUDGET_ELEMS) return false;
  g->folded_elems += numel;
  free(v->data);
  v->data = fc_calloc((size_t)numel, es);
  v->folded = v->data != NULL;
  return v->data != NULL;
}

bool fc_all_inputs_const(const fc_graph *g, const fc_node *n) {
  for (int i = 0; i < n->n_inputs; i++) {
    const fc_value *v = fc_node_in(g, n, i);
    if (v && !v->data) return false;
  }
  return true;
}

fc_status fc_norm_axis(const fc_node *n, int64_t axis, int rank, int64_t *out, fc_err *err) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): axis %lld is out of range for rank %d", n->name, n->op_type,
                   (long long)axis, rank);
  *out = a;
  return FC_OK;
}

fc_status fc_const_ints(const fc_graph *g, const fc_node *n, int i, int64_t *ints, int max, int *count, fc_err *err) {
  fc_value *v = fc_node_in(g, n, i);
  if (!v) return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): input #%d is missing", n->name, n->op_type, i);
  if (!v->data)
    return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): input '%s' must be a constant (or fold to one) to know the "
                   "output shape", n->name, n->op_type, v->name);
  if (!fc_dtype_is_int(v->dtype))
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): input '%s' must be integer, is %s", n->name, n->op_type,
                   v->name, fc_dtype_name(v->dtype));
  int64_t numel = fc_value_numel(v);
  if (v->rank > 1 || numel > max)
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): input '%s' must be a 1-D list of at most %d values",
                   n->name, n->op_type, v->name, max);
  for (int64_t k = 0; k < numel; k++) ints[k] = fc_data_get_i64(v->dtype, v->data, k);
  *count = (int)numel;
  return FC_OK;
}

fc_status fc_axes_arg(const fc_graph *g, const fc_node *n, int input_index, int64_t *axes, int *count, bool *given,
                      fc_err *err) {
  const fc_attr *a = fc_node_attr(n, "axes");
  *given = false;
  *count = 0;
  if (a && a->type == FC_ATTR_INTS) {
    if (a->n_ints > FC_MAX_RANK)
      return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): too many axes", n->name, n->op_type);
    memcpy(axes, a->ints, a->n_ints * sizeof(int64_t));
    *count = (int)a->n_ints;
    *given = true;
    return FC_OK;
  }
  if (input_index >= 0 && fc_node_in(g, n, input_index)) {
    *given = true;
    return fc_const_ints(g, n, input_index, axes, FC_MAX_RANK, count, err);
  }
  return FC_OK;
}

fc_status fc_broadcast(const fc_node *n, const fc_value *a, const fc_value *b, int *rank, int64_t *dims, fc_err *err) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  for (int d = 0; d < r; d++) {
    int da = d - (r - a->rank), db = d - (r - b->rank);
    int64_t x = da >= 0 ? a->dims[da] : 1, y = db >= 0 ? b->dims[db] : 1;
    if (x != y && x != 1 && y != 1)
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): shapes of '%s' and '%s' do not broadcast (%lld vs %lld at "
                     "axis %d)", n->name, n->op_type, a->name, b->name, (long long)x, (long long)y, d);
    dims[d] = x == 1 ? y : x;
  }
  *rank = r;
  return FC_OK;
}

void fc_broadcast_strides(const fc_value *v, int rank, const int64_t *out_dims, int64_t *strides) {
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; d--) {
    int dv = d - (rank - v->rank);
    if (dv < 0) {
      strides[d] = 0;
      continue;
    }
    strides[d] = (v->dims[dv] == 1 && out_dims[d] != 1) ? 0 : s;
    s *= v->dims[dv];
  }
}
