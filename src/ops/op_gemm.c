/* Matrix products: Gemm (with transA/transB and broadcast C) and MatMul (numpy semantics:
 * 1-D promotion and broadcast batch dimensions). MACs = output elements × K. */
#include <string.h>
#include "ops/infer_util.h"

static fc_status infer_gemm(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 2, 3, err);
  fc_value *a, *b;
  if (st || (st = fc_need_input(g, n, 0, &a, err)) || (st = fc_need_input(g, n, 1, &b, err))) return st;
  if (a->rank != 2 || b->rank != 2)
    return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Gemm): inputs must be 2-D, got rank %d and %d", n->name, a->rank, b->rank);
  if (a->dtype != b->dtype)
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (Gemm): input '%s' is %s but '%s' is %s", n->name, a->name,
                   fc_dtype_name(a->dtype), b->name, fc_dtype_name(b->dtype));
  bool ta = fc_attr_int(n, "transA", 0) != 0, tb = fc_attr_int(n, "transB", 0) != 0;
  int64_t m = ta ? a->dims[1] : a->dims[0], ka = ta ? a->dims[0] : a->dims[1];
  int64_t kb = tb ? b->dims[1] : b->dims[0], nn = tb ? b->dims[0] : b->dims[1];
  if (ka != kb)
    return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Gemm): inner dimensions differ (%lld vs %lld)", n->name, (long long)ka,
                   (long long)kb);
  int64_t dims[2] = {m, nn};
  fc_value *c = fc_node_in(g, n, 2);
  if (c) {
    fc_value *cv;
    if ((st = fc_need_input(g, n, 2, &cv, err))) return st;
    fc_value outv = {.name = "output", .rank = 2, .dims = {m, nn}};
    int r;
    int64_t bd[FC_MAX_RANK];
    if ((st = fc_broadcast(n, &outv, cv, &r, bd, err))) return st;
    if (r != 2 || bd[0] != m || bd[1] != nn)
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Gemm): C does not broadcast to %lldx%lld", n->name, (long long)m,
                     (long long)nn);
  }
  return fc_set_output(g, n, 0, a->dtype, 2, dims, err);
}

static fc_status infer_matmul(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 2, 2, err);
  fc_value *a, *b;
  if (st || (st = fc_need_input(g, n, 0, &a, err)) || (st = fc_need_input(g, n, 1, &b, err))) return st;
  if (a->rank < 1 || b->rank < 1)
    return fc_fail(err, FC_ERR_SHAPE, "node '%s' (MatMul): inputs must have rank ≥ 1", n->name);
  if (a->dtype != b->dtype)
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (MatMul): input '%s' is %s but '%s' is %s", n->name, a->name,
                   fc_dtype_name(a->dtype), b->name, fc_dtype_name(b->dtype));
  int64_t ka = a->dims[a->rank - 1], kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
  if (ka != kb)
    return fc_fail(err, FC_ERR_SHAPE, "node '%s' (MatMul): inner dimensions differ (%lld vs %lld)", n->name,
                   (long long)ka, (long long)kb);
  /* batch dims broadcast; matrix dims drop where an input was 1-D */
  fc_value ab = {.name = a->name, .rank = a->rank > 2 ? a->rank - 2 : 0};
  fc_value bb = {.name = b->name, .rank = b->rank > 2 ? b->rank - 2 : 0};
  memcpy(ab.dims, a->dims, sizeof(int64_t) * (size_t)ab.rank);
  memcpy(bb.dims, b->dims, sizeof(int64_t) * (size_t)bb.rank);
  int r;
  int64_t dims[FC_MAX_RANK + 2];
  if ((st = fc_broadcast(n, &ab, &bb, &r, dims, err))) return st;
  if (a->rank > 1) dims[r++] = a->dims[a->rank - 2];
  if (b->rank > 1) dims[r++] = b->dims[b->rank - 1];
  return fc_set_output(g, n, 0, a->dtype, r, dims, err);
}

static void cost_gemm(const fc_graph *g, const fc_node *n, fc_node_cost *c) {
  const fc_value *a = fc_node_in(g, n, 0);
  int64_t out = fc_value_numel(fc_node_out(g, n, 0));
  int64_t k = fc_attr_int(n, "transA", 0) ? a->dims[0] : a->dims[1];
  c->macs = fc_sat_mul(out, k); /* saturating: absurd sizes never overflow */
  /* Y = alpha·AB + beta·C: one multiply per output when alpha ≠ 1, one add for C (ignored when
   * beta = 0), one more multiply when beta ∉ {0, 1} */
  float alpha = fc_attr_float(n, "alpha", 1.0f), beta = fc_attr_float(n, "beta", 1.0f);
  bool bias = fc_node_in(g, n, 2) && beta != 0.0f;
  int64_t per_out = (alpha != 1.0f) + bias + (bias && beta != 1.0f);
  c->flops = fc_sat_add(fc_sat_mul(2, c->macs), fc_sat_mul(out, per_out));
  c->activations = out;
}

static void cost_matmul(const fc_graph *g, const fc_node *n, fc_node_cost *c) {
  const fc_value *a = fc_node_in(g, n, 0);
  int64_t out = fc_value_numel(fc_node_out(g, n, 0));
  c->macs = fc_sat_mul(out, a->dims[a->rank - 1]);
  c->flops = fc_sat_mul(2, c->macs);
  c->activations = out;
}

const fc_op_def fc_ops_gemm[] = {
    {"Gemm", infer_gemm, cost_gemm},
    {"MatMul", infer_matmul, cost_matmul},
    {NULL, NULL, NULL},
};
