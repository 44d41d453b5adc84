/* Resize (and the older Upsample): output size from `sizes` (opset 18: kept to the input's aspect
 * ratio on request), or floor(input × scale). Cost per output element and per resized axis:
 * nearest 0, linear 3 (one lerp: subtract, multiply, add), cubic 8 (four taps). */
#include <math.h>
#include <string.h>
#include "ops/infer_util.h"

static fc_status infer_resize(fc_graph *g, fc_node *n, fc_err *err) {
  bool upsample = !strcmp(n->op_type, "Upsample");
  fc_status st = fc_need_arity(n, 1, 4, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  int64_t axes[FC_MAX_RANK];
  int na = 0;
  const fc_attr *aa = fc_node_attr(n, "axes");
  if (aa && aa->type == FC_ATTR_INTS && aa->n_ints <= FC_MAX_RANK) {
    na = (int)aa->n_ints;
    for (int i = 0; i < na; i++)
      if ((st = fc_norm_axis(n, aa->ints[i], x->rank, &axes[i], err))) return st;
  } else {
    na = x->rank;
    for (int i = 0; i < na; i++) axes[i] = i;
  }
  int64_t dims[FC_MAX_RANK];
  memcpy(dims, x->dims, sizeof dims);
  /* input positions: opset 10 Resize and Upsample-9 take scales at 1; opset ≥ 11 at 2, sizes at 3 */
  int scales_at = (upsample || g->opset < 11) ? 1 : 2, sizes_at = 3;
  fc_value *sizes = upsample ? NULL : fc_node_in(g, n, sizes_at);
  fc_value *scales = fc_node_in(g, n, scales_at);
  if (scales && fc_value_numel(scales) == 0) scales = NULL; /* an empty placeholder */
  if (sizes && fc_value_numel(sizes) == 0) sizes = NULL;
  if (sizes) {
    int64_t sz[FC_MAX_RANK];
    int ns;
    if ((st = fc_const_ints(g, n, sizes_at, sz, FC_MAX_RANK, &ns, err))) return st;
    if (ns != na) return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): sizes has %d entries for %d axes", n->name, n->op_type, ns, na);
    for (int i = 0; i < na; i++) dims[axes[i]] = sz[i];
    /* opset 18: one scale for all resized axes, the smallest (not_larger) or largest (not_smaller)
     * of sizes/input, and each axis rounded from it */
    const char *policy = fc_attr_str(n, "keep_aspect_ratio_policy", "stretch");
    bool not_larger = !strcmp(policy, "not_larger"), not_smaller = !strcmp(policy, "not_smaller");
    if (not_larger || not_smaller) {
      double scale = 0;
      for (int i = 0; i < na; i++) {
        if (x->dims[axes[i]] < 1 || sz[i] < 0)
          return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): cannot keep the aspect ratio of an empty axis",
                         n->name, n->op_type);
        double r = (double)sz[i] / (double)x->dims[axes[i]];
        if (i == 0 || (not_larger ? r < scale : r > scale)) scale = r;
      }
      for (int i = 0; i < na; i++) {
        double v = floor(scale * (double)x->dims[axes[i]] + 0.5);
        if (!(v < 1e12)) return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): sizes are too large", n->name, n->op_type);
        dims[axes[i]] = (int64_t)v;
      }
    }
  } else {
    double sc[FC_MAX_RANK];
    int ns = 0;
    if (scales) {
      if (!scales->data || !fc_dtype_is_float(scales->dtype))
        return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): scales must be a constant float tensor", n->name, n->op_type);
      int64_t cnt = fc_value_numel(scales);
      if (cnt > FC_MAX_RANK) return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): too many scales", n->name, n->op_type);
      ns = (int)cnt;
      for (int i = 0; i < ns; i++) sc[i] = fc_data_get_f64(scales->dtype, scales->data, i);
    } else {
      const fc_attr *sa = fc_node_attr(n, "scales");
      if (!sa || sa->n_floats > FC_MAX_RANK)
        return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): needs scales or sizes", n->name, n->op_type);
      ns = (int)sa->n_floats;
      for (int i = 0; i < ns; i++) sc[i] = sa->floats[i];
    }
    if (ns != na) return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): scales has %d entries for %d axes", n->name, n->op_type, ns, na);
    for (int i = 0; i < na; i++) {
      double v = floor((double)x->dims[axes[i]] * sc[i]);
      if (!(sc[i] > 0) || !(v < 1e12))
        return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): scale %g is invalid", n->name, n->op_type, sc[i]);
      dims[axes[i]] = (int64_t)v;
    }
  }
  return fc_set_output(g, n, 0, x->dtype, x->rank, dims, err);
}

static void cost_resize(const fc_graph *g, const fc_node *n, fc_node_cost *c) {
  const fc_value *x = fc_node_in(g, n, 0), *y = fc_node_out(g, n, 0);
  const char *mode = fc_attr_str(n, "mode", "nearest");
  int per_axis = !strcmp(mode, "linear") || !strcmp(mode, "bilinear") ? 3 : !strcmp(mode, "cubic") ? 8 : 0;
  int axes = 0;
  for (int d = 0; d < x->rank; d++) axes += x->dims[d] != y->dims[d];
  c->flops = fc_sat_mul(fc_value_numel(y), per_axis * axes);
}

const fc_op_def fc_ops_resize[] = {
    {"Resize", infer_resize, cost_resize},
    {"Upsample", infer_resize, cost_resize},
    {NULL, NULL, NULL},
};
