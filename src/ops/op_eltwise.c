/* Elementwise ops: unary activations, broadcasting binary arithmetic and comparisons, Where, Clip.
 * Cost: a fixed FLOP count per output element, listed in docs/COSTS.md. */
#include <math.h>
#include <string.h>
#include "ops/infer_util.h"

#define ELT_MAX_IN 64 /* operands of a variadic op (Sum, Max, Min, Mean) */

typedef struct elt_rule {
  const char *op;
  int flops_per_elem;
  int out_bool; /* comparison: output is bool */
  int min_in, max_in;
} elt_rule;

/* flops_per_elem of Clip, Gelu and the variadic Sum/Max/Min/Mean is refined per node (per_elem_flops) */
static const elt_rule rules[] = {
    {"Relu", 1, 0, 1, 1}, {"LeakyRelu", 2, 0, 1, 1}, {"Sigmoid", 4, 0, 1, 1}, {"HardSigmoid", 4, 0, 1, 1}, {"HardSwish", 5, 0, 1, 1},
    {"Tanh", 4, 0, 1, 1}, {"Erf", 4, 0, 1, 1}, {"Exp", 1, 0, 1, 1}, {"Log", 1, 0, 1, 1}, {"Sqrt", 1, 0, 1, 1}, {"Neg", 1, 0, 1, 1},
    {"Abs", 1, 0, 1, 1}, {"Reciprocal", 1, 0, 1, 1}, {"Floor", 1, 0, 1, 1}, {"Ceil", 1, 0, 1, 1}, {"Round", 1, 0, 1, 1}, {"Clip", 2, 0, 1, 3},
    {"Elu", 4, 0, 1, 1}, {"Softplus", 3, 0, 1, 1}, {"Gelu", 8, 0, 1, 1}, {"Sign", 1, 0, 1, 1}, {"Not", 1, 1, 1, 1},
    {"Add", 1, 0, 2, 2}, {"Sub", 1, 0, 2, 2}, {"Mul", 1, 0, 2, 2}, {"Div", 1, 0, 2, 2}, {"Pow", 1, 0, 2, 2}, {"Max", 1, 0, 1, 64},
    {"Min", 1, 0, 1, 64}, {"Mod", 1, 0, 2, 2}, {"Sum", 1, 0, 1, 64}, {"Mean", 1, 0, 1, 64},
    {"Equal", 1, 1, 2, 2}, {"Less", 1, 1, 2, 2}, {"Greater", 1, 1, 2, 2}, {"LessOrEqual", 1, 1, 2, 2}, {"GreaterOrEqual", 1, 1, 2, 2},
    {"And", 1, 1, 2, 2}, {"Or", 1, 1, 2, 2}, {"Xor", 1, 1, 2, 2}, {"Where", 1, 0, 3, 3},
};

static const elt_rule *rule_of(const char *op) {
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    if (strcmp(rules[i].op, op) == 0) return &rules[i];
  return NULL;
}

static double unary(const fc_node *n, const char *op, double x) {
  if (!strcmp(op, "Relu")) return x > 0 ? x : 0;
  if (!strcmp(op, "LeakyRelu")) return x >= 0 ? x : x * fc_attr_float(n, "alpha", 0.01f);
  if (!strcmp(op, "Sigmoid")) return 1.0 / (1.0 + exp(-x));
  if (!strcmp(op, "HardSigmoid")) {
    double y = fc_attr_float(n, "alpha", 0.2f) * x + fc_attr_float(n, "beta", 0.5f);
    return y < 0 ? 0 : y > 1 ? 1 : y;
  }
  if (!strcmp(op, "HardSwish")) {
    double y = x / 6.0 + 0.5;
    return x * (y < 0 ? 0 : y > 1 ? 1 : y);
  }
  if (!strcmp(op, "Tanh")) return tanh(x);
  if (!strcmp(op, "Erf")) return erf(x);
  if (!strcmp(op, "Exp")) return exp(x);
  if (!strcmp(op, "Log")) return log(x);
  if (!strcmp(op, "Sqrt")) return sqrt(x);
  if (!strcmp(op, "Neg")) return -x;
  if (!strcmp(op, "Abs")) return fabs(x);
  if (!strcmp(op, "Reciprocal")) return 1.0 / x;
  if (!strcmp(op, "Floor")) return floor(x);
  if (!strcmp(op, "Ceil")) return ceil(x);
  if (!strcmp(op, "Round")) return nearbyint(x);
  if (!strcmp(op, "Elu")) return x >= 0 ? x : fc_attr_float(n, "alpha", 1.0f) * (exp(x) - 1);
  if (!strcmp(op, "Softplus")) return log1p(exp(x));
  if (!strcmp(op, "Gelu") && !strcmp(fc_attr_str(n, "approximate", "none"), "tanh"))
    return 0.5 * x * (1 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
  if (!strcmp(op, "Gelu")) return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  if (!strcmp(op, "Sign")) return (x > 0) - (x < 0);
  if (!strcmp(op, "Not")) return x == 0;
  return x;
}

static double binary_f(const char *op, double a, double b) {
  if (!strcmp(op, "Add") || !strcmp(op, "Sum") || !strcmp(op, "Mean")) return a + b;
  if (!strcmp(op, "Sub")) return a - b;
  if (!strcmp(op, "Mul")) return a * b;
  if (!strcmp(op, "Div")) return a / b;
  if (!strcmp(op, "Pow")) return pow(a, b);
  if (!strcmp(op, "Max")) return a > b ? a : b;
  if (!strcmp(op, "Min")) return a < b ? a : b;
  if (!strcmp(op, "Mod")) return fmod(a, b);
  if (!strcmp(op, "Equal")) return a == b;
  if (!strcmp(op, "Less")) return a < b;
  if (!strcmp(op, "Greater")) return a > b;
  if (!strcmp(op, "LessOrEqual")) return a <= b;
  if (!strcmp(op, "GreaterOrEqual")) return a >= b;
  if (!strcmp(op, "And")) return (a != 0) && (b != 0);
  if (!strcmp(op, "Or")) return (a != 0) || (b != 0);
  if (!strcmp(op, "Xor")) return (a != 0) != (b != 0);
  return a;
}

/* Integer arithmetic stays exact (shape math in int64); division truncates like C and ONNX. */
static int64_t binary_i(const char *op, int64_t a, int64_t b) {
  if (!strcmp(op, "Add") || !strcmp(op, "Sum") || !strcmp(op, "Mean")) return (int64_t)((uint64_t)a + (uint64_t)b);
  if (!strcmp(op, "Sub")) return (int64_t)((uint64_t)a - (uint64_t)b);
  if (!strcmp(op, "Mul")) return (int64_t)((uint64_t)a * (uint64_t)b);
  if (!strcmp(op, "Div")) return b == 0 ? 0 : (a == INT64_MIN && b == -1) ? INT64_MIN : a / b;
  if (!strcmp(op, "Mod")) {
    if (b == 0 || (a == INT64_MIN && b == -1)) return 0;
    int64_t r = a % b; /* ONNX Mod with fmod=0 takes the divisor's sign */
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
  }
  if (!strcmp(op, "Pow")) {
    int64_t r = 1;
    for (int64_t k = 0; k < b && k < 64; k++) r = (int64_t)((uint64_t)r * (uint64_t)a);
    return r;
  }
  return (int64_t)binary_f(op, (double)a, (double)b);
}

static fc_status fold(fc_graph *g, fc_node *n, const elt_rule *r, int out_dtype) {
  /* every operand takes part (variadic Sum/Max/Min/Mean have up to ELT_MAX_IN, checked by arity) */
  if (n->n_inputs > ELT_MAX_IN || !fc_all_inputs_const(g, n) || !fc_alloc_output_data(g, n, 0)) return FC_OK;
  fc_value *out = fc_node_out(g, n, 0);
  int rank = out->rank;
  int64_t numel = fc_value_numel(out);
  int64_t strides[ELT_MAX_IN][FC_MAX_RANK] = {{0}};
  int nin = n->n_inputs;
  for (int i = 0; i < nin; i++) /* Clip's omitted min/max have no value */
    if (fc_node_in(g, n, i)) fc_broadcast_strides(fc_node_in(g, n, i), rank, out->dims, strides[i]);
  bool is_where = !strcmp(n->op_type, "Where"), is_clip = !strcmp(n->op_type, "Clip");
  bool c_fmod = !strcmp(n->op_type, "Mod") && fc_attr_int(n, "fmod", 0) != 0;
  for (int64_t e = 0; e < numel; e++) {
    int64_t off[ELT_MAX_IN] = {0}, rem = e;
    for (int d = rank - 1; d >= 0; d--) {
      int64_t c = rem % out->dims[d];
      rem /= out->dims[d];
      for (int i = 0; i < nin; i++) off[i] += c * strides[i][d];
    }
    const fc_value *a = fc_node_in(g, n, 0);
    if (is_where) {
      const fc_value *src = fc_data_get_i64(a->dtype, a->data, off[0]) ? fc_node_in(g, n, 1) : fc_node_in(g, n, 2);
      int k = src == fc_node_in(g, n, 1) ? 1 : 2;
      if (fc_dtype_is_int(out_dtype)) fc_data_set_i64(out_dtype, out->data, e, fc_data_get_i64(src->dtype, src->data, off[k]));
      else fc_data_set_f64(out_dtype, out->data, e, fc_data_get_f64(src->dtype, src->data, off[k]));
    } else if (is_clip) {
      double x = fc_data_get_f64(a->dtype, a->data, off[0]);
      const fc_value *lo = fc_node_in(g, n, 1), *hi = fc_node_in(g, n, 2);
      double l = lo ? fc_data_get_f64(lo->dtype, lo->data, 0) : fc_attr_float(n, "min", -INFINITY);
      double h = hi ? fc_data_get_f64(hi->dtype, hi->data, 0) : fc_attr_float(n, "max", INFINITY);
      fc_data_set_f64(out_dtype, out->data, e, x < l ? l : x > h ? h : x);
    } else if (nin == 1) {
      fc_data_set_f64(out_dtype, out->data, e, unary(n, n->op_type, fc_data_get_f64(a->dtype, a->data, off[0])));
    } else if (fc_dtype_is_int(a->dtype) && a->dtype != FC_DT_BOOL && !r->out_bool) {
      int64_t acc = fc_data_get_i64(a->dtype, a->data, off[0]);
      for (int i = 1; i < nin; i++) {
        const fc_value *b = fc_node_in(g, n, i);
        int64_t y = fc_data_get_i64(b->dtype, b->data, off[i]);
        if (c_fmod) acc = (y == 0 || y == -1) ? 0 : acc % y; /* Mod fmod=1: the dividend's sign */
        else acc = binary_i(n->op_type, acc, y);
      }
      if (!strcmp(n->op_type, "Mean")) acc /= nin;
      fc_data_set_i64(out_dtype, out->data, e, acc);
    } else {
      double acc = fc_data_get_f64(a->dtype, a->data, off[0]);
      for (int i = 1; i < nin; i++) {
        const fc_value *b = fc_node_in(g, n, i);
        acc = binary_f(n->op_type, acc, fc_data_get_f64(b->dtype, b->data, off[i]));
      }
      if (!strcmp(n->op_type, "Mean")) acc /= nin;
      fc_data_set_f64(out_dtype, out->data, e, acc);
    }
  }
  return FC_OK;
}

static fc_status infer_eltwise(fc_graph *g, fc_node *n, fc_err *err) {
  const elt_rule *r = rule_of(n->op_type);
  bool is_clip = !strcmp(n->op_type, "Clip"), is_where = !strcmp(n->op_type, "Where");
  fc_status st = fc_need_arity(n, r->min_in, r->max_in, err);
  if (st) return st;
  fc_value *a;
  if ((st = fc_need_input(g, n, 0, &a, err))) return st;
  int rank = a->rank;
  int64_t dims[FC_MAX_RANK];
  memcpy(dims, a->dims, sizeof dims);
  int shape_inputs = is_clip ? 1 : n->n_inputs; /* Clip's min/max are scalars */
  fc_value tmp;
  for (int i = 1; i < shape_inputs; i++) {
    fc_value *b;
    if ((st = fc_need_input(g, n, i, &b, err))) return st;
    memset(&tmp, 0, sizeof tmp);
    tmp.name = a->name;
    tmp.rank = rank;
    memcpy(tmp.dims, dims, sizeof dims);
    if ((st = fc_broadcast(n, &tmp, b, &rank, dims, err))) return st;
  }
  if (is_clip)
    for (int i = 1; i < n->n_inputs; i++) {
      fc_value *b = fc_node_in(g, n, i);
      if (b && fc_value_numel(b) != 1)
        return fc_fail(err, FC_ERR_INVALID, "node '%s' (Clip): '%s' must be a scalar", n->name, b->name);
    }
  /* operands share one element type (Pow's exponent and Where's condition excepted) */
  bool typed_same = !is_where && !is_clip && strcmp(n->op_type, "Pow") != 0;
  for (int i = 1; typed_same && i < n->n_inputs; i++) {
    fc_value *b = fc_node_in(g, n, i);
    if (b && b->dtype != a->dtype)
      return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): input '%s' is %s but '%s' is %s", n->name, n->op_type,
                     b->name, fc_dtype_name(b->dtype), a->name, fc_dtype_name(a->dtype));
  }
  if (is_where) {
    fc_value *y;
    if ((st = fc_need_input(g, n, 2, &y, err))) return st;
    if (y->dtype != fc_node_in(g, n, 1)->dtype)
      return fc_fail(err, FC_ERR_INVALID, "node '%s' (Where): inputs '%s' and '%s' differ in type", n->name,
                     fc_node_in(g, n, 1)->name, y->name);
  }
  int dtype = a->dtype;
  if (is_where) {
    fc_value *x;
    if ((st = fc_need_input(g, n, 1, &x, err))) return st;
    dtype = x->dtype;
  }
  if (r->out_bool) dtype = FC_DT_BOOL;
  if ((st = fc_set_output(g, n, 0, dtype, rank, dims, err))) return st;
  return fold(g, n, r, dtype);
}

/* FLOPs per output element: the table's fixed count, except where the node decides it. Variadic
 * ops do one op per operand beyond the first (Mean one divide more; a single operand is a copy),
 * Clip one comparison per bound given, Gelu's tanh approximation costs 12, its erf form 8. */
static int64_t per_elem_flops(const fc_graph *g, const fc_node *n, const elt_rule *r) {
  const char *op = n->op_type;
  if (!strcmp(op, "Sum") || !strcmp(op, "Max") || !strcmp(op, "Min") || !strcmp(op, "Mean")) {
    int k = 0;
    for (int i = 0; i < n->n_inputs; i++) k += fc_node_in(g, n, i) != NULL;
    return k < 2 ? 0 : k - 1 + (strcmp(op, "Mean") == 0);
  }
  if (!strcmp(op, "Clip")) /* bounds are inputs from opset 11, attributes before */
    return (fc_node_in(g, n, 1) != NULL) + (fc_node_in(g, n, 2) != NULL) + (fc_node_attr(n, "min") != NULL) +
           (fc_node_attr(n, "max") != NULL);
  if (!strcmp(op, "Gelu") && !strcmp(fc_attr_str(n, "approximate", "none"), "tanh")) return 12;
  return r->flops_per_elem;
}

static void cost_eltwise(const fc_graph *g, const fc_node *n, fc_node_cost *c) {
  int64_t out = fc_value_numel(fc_node_out(g, n, 0));
  c->flops = fc_sat_mul(out, per_elem_flops(g, n, rule_of(n->op_type)));
}

#define ROW(name) {name, infer_eltwise, cost_eltwise}
const fc_op_def fc_ops_eltwise[] = {
    ROW("Relu"), ROW("LeakyRelu"), ROW("Sigmoid"), ROW("HardSigmoid"), ROW("HardSwish"), ROW("Tanh"),
    ROW("Erf"), ROW("Exp"), ROW("Log"), ROW("Sqrt"), ROW("Neg"), ROW("Abs"), ROW("Reciprocal"),
    ROW("Floor"), ROW("Ceil"), ROW("Round"), ROW("Clip"), ROW("Elu"), ROW("Softplus"), ROW("Gelu"),
    ROW("Sign"), ROW("Not"), ROW("Add"), ROW("Sub"), ROW("Mul"), ROW("Div"), ROW("Pow"), ROW("Max"),
    ROW("Min"), ROW("Mod"), ROW("Sum"), ROW("Mean"), ROW("Equal"), ROW("Less"), ROW("Greater"),
    ROW("LessOrEqual"), ROW("GreaterOrEqual"), ROW("And"), ROW("Or"), ROW("Xor"), ROW("Where"),
    {NULL, NULL, NULL},
};
