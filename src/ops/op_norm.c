/* Normalisations and reductions: BatchNormalization, LayerNormalization, InstanceNormalization,
 * Softmax, LogSoftmax, Reduce{Mean,Sum,Max,Min,Prod,L2}. Reductions fold on constants. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ops/infer_util.h"

static fc_status same_shape_output(fc_graph *g, fc_node *n, int lo, int hi, fc_err *err, fc_value **xo) {
  fc_status st = fc_need_arity(n, lo, hi, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  if (xo) *xo = x;
  return fc_set_output(g, n, 0, x->dtype, x->rank, x->dims, err);
}

static fc_status infer_batchnorm(fc_graph *g, fc_node *n, fc_err *err) {
  fc_value *x;
  fc_status st = same_shape_output(g, n, 5, 5, err, &x);
  if (st) return st;
  if (x->rank < 2) return fc_fail(err, FC_ERR_SHAPE, "node '%s' (BatchNormalization): input rank must be ≥ 2", n->name);
  for (int i = 1; i < 5; i++) {
    fc_value *p;
    if ((st = fc_need_input(g, n, i, &p, err))) return st;
    if (p->rank != 1 || p->dims[0] != x->dims[1])
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (BatchNormalization): '%s' must have %lld elements", n->name, p->name,
                     (long long)x->dims[1]);
  }
  return FC_OK;
}

static fc_status infer_layernorm(fc_graph *g, fc_node *n, fc_err *err) {
  fc_value *x;
  fc_status st = same_shape_output(g, n, 2, 3, err, &x);
  if (st) return st;
  int64_t axis;
  if ((st = fc_norm_axis(n, fc_attr_int(n, "axis", -1), x->rank, &axis, err))) return st;
  int64_t stat_dims[FC_MAX_RANK];
  for (int d = 0; d < x->rank; d++) stat_dims[d] = d < axis ? x->dims[d] : 1;
  for (int o = 1; o < n->n_outputs && o < 3; o++)
    if ((st = fc_set_output(g, n, o, FC_DT_FLOAT, x->rank, stat_dims, err))) return st;
  return FC_OK;
}

static fc_status infer_softmax(fc_graph *g, fc_node *n, fc_err *err) {
  fc_value *x;
  fc_status st = same_shape_output(g, n, 1, 1, err, &x);
  if (st) return st;
  int64_t axis;
  return fc_norm_axis(n, fc_attr_int(n, "axis", g->opset >= 13 ? -1 : 1), x->rank, &axis, err);
}

static fc_status infer_instancenorm(fc_graph *g, fc_node *n, fc_err *err) {
  return same_shape_output(g, n, 3, 3, err, NULL);
}

static double reduce_init(const char *op) {
  if (!strcmp(op, "ReduceMax")) return -INFINITY;
  if (!strcmp(op, "ReduceMin")) return INFINITY;
  if (!strcmp(op, "ReduceProd")) return 1;
  return 0;
}

static double reduce_step(const char *op, double acc, double x) {
  if (!strcmp(op, "ReduceMax")) return x > acc ? x : acc;
  if (!strcmp(op, "ReduceMin")) return x < acc ? x : acc;
  if (!strcmp(op, "ReduceProd")) return acc * x;
  if (!strcmp(op, "ReduceL2")) return acc + x * x;
  return acc + x;
}

static fc_status infer_reduce(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 2, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  int64_t axes[FC_MAX_RANK];
  int na = 0;
  bool given;
  /* ReduceSum takes axes as an input from opset 13, the others from 18 */
  if ((st = fc_axes_arg(g, n, 1, axes, &na, &given, err))) return st;
  bool reduced[FC_MAX_RANK] = {false};
  if (na == 0) {
    if (fc_attr_int(n, "noop_with_empty_axes", 0)) return fc_set_output(g, n, 0, x->dtype, x->rank, x->dims, err);
    for (int d = 0; d < x->rank; d++) reduced[d] = true;
  }
  for (int i = 0; i < na; i++) {
    int64_t a;
    if ((st = fc_norm_axis(n, axes[i], x->rank, &a, err))) return st;
    reduced[a] = true;
  }
  bool keep = fc_attr_int(n, "keepdims", 1) != 0;
  int64_t dims[FC_MAX_RANK];
  int r = 0;
  for (int d = 0; d < x->rank; d++) {
    if (!reduced[d]) dims[r++] = x->dims[d];
    else if (keep) dims[r++] = 1;
  }
  if ((st = fc_set_output(g, n, 0, x->dtype, r, dims, err))) return st;
  /* the fold walks the whole input: bounded like an output, or a 256 MB constant would take seconds */
  if (!x->data || fc_value_numel(x) > FC_FOLD_MAX_ELEMS || !fc_alloc_output_data(g, n, 0)) return FC_OK;
  /* fold: walk the input, accumulate into the output slot its non-reduced coordinates name */
  fc_value *y = fc_node_out(g, n, 0);
  int64_t out_n = fc_value_numel(y), in_n = fc_value_numel(x), count = out_n ? in_n / out_n : 0;
  double *acc = calloc((size_t)(out_n ? out_n : 1), sizeof(double));
  if (!acc) return FC_OK;
  for (int64_t o = 0; o < out_n; o++) acc[o] = reduce_init(n->op_type);
  for (int64_t e = 0; e < in_n; e++) {
    int64_t rem = e, o = 0, mul = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
      int64_t c = rem % x->dims[d];
      rem /= x->dims[d];
      if (!reduced[d]) {
        o += c * mul;
        mul *= x->dims[d];
      }
    }
    acc[o] = reduce_step(n->op_type, acc[o], fc_data_get_f64(x->dtype, x->data, e));
  }
  for (int64_t o = 0; o < out_n; o++) {
    double v = acc[o];
    if (!strcmp(n->op_type, "ReduceMean") && count) v /= (double)count;
    if (!strcmp(n->op_type, "ReduceL2")) v = sqrt(v);
    fc_data_set_f64(y->dtype, y->data, o, v);
  }
  free(acc);
  return FC_OK;
}

static void cost_per_elem(const fc_graph *g, const fc_node *n, fc_node_cost *c) {
  int64_t out = fc_value_numel(fc_node_out(g, n, 0));
  int per = 2; /* BatchNormalization at inference: one multiply, one add */
  if (!strcmp(n->op_type, "LayerNormalization") || !strcmp(n->op_type, "InstanceNormalization")) per = 8;
  if (!strcmp(n->op_type, "Softmax") || !strcmp(n->op_type, "LogSoftmax")) per = 5;
  c->flops = fc_sat_mul(out, per);
}

static void cost_reduce(const fc_graph *g, const fc_node *n, fc_node_cost *c) {
  int64_t in = fc_value_numel(fc_node_in(g, n, 0)), out = fc_value_numel(fc_node_out(g, n, 0));
  const fc_attr *axes_attr = fc_node_attr(n, "axes");
  const fc_value *axes_in = fc_node_in(g, n, 1);
  bool no_axes = (!axes_attr || axes_attr->n_ints == 0) && (!axes_in || fc_value_numel(axes_in) == 0);
  if (no_axes && fc_attr_int(n, "noop_with_empty_axes", 0)) return; /* the output is the input */
  c->flops = fc_sat_add(fc_sat_add(in, !strcmp(n->op_type, "ReduceMean") || !strcmp(n->op_type, "ReduceL2") ? out : 0),
                        !strcmp(n->op_type, "ReduceL2") ? in : 0);
}

const fc_op_def fc_ops_norm[] = {
    {"BatchNormalization", infer_batchnorm, cost_per_elem},
    {"LayerNormalization", infer_layernorm, cost_per_elem},
    {"InstanceNormalization", infer_instancenorm, cost_per_elem},
    {"Softmax", infer_softmax, cost_per_elem},
    {"LogSoftmax", infer_softmax, cost_per_elem},
    {"ReduceMean", infer_reduce, cost_reduce},
    {"ReduceSum", infer_reduce, cost_reduce},
    {"ReduceMax", infer_reduce, cost_reduce},
    {"ReduceMin", infer_reduce, cost_reduce},
    {"ReduceProd", infer_reduce, cost_reduce},
    {"ReduceL2", infer_reduce, cost_reduce},
    {NULL, NULL, NULL},
};
