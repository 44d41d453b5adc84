/* Shape inference over the sorted graph: inputs fixed by the user, then one op rule per node. */
#include "graph/infer.h"
#include <stdio.h>
#include <string.h>
#include "ops/ops.h"
#include "util/mem.h"

static fc_status fix_inputs(fc_graph *g, const fc_input_shape *shapes, size_t n_shapes, fc_err *err) {
  for (size_t s = 0; s < n_shapes; s++) {
    int v = fc_graph_find(g, shapes[s].name);
    if (v < 0 || !g->values[v].is_graph_input) {
      char names[256] = "";
      for (int i = 0; i < g->n_inputs; i++) {
        size_t at = strlen(names);
        snprintf(names + at, sizeof names - at, "%s'%s'", i ? ", " : "", g->values[g->inputs[i]].name);
      }
      return fc_fail(err, FC_ERR_ARG, "--input-shape names '%s', which is not a graph input (inputs: %s)",
                     shapes[s].name, names);
    }
    fc_value *val = &g->values[v];
    if (shapes[s].rank < 0 || shapes[s].rank > FC_MAX_RANK)
      return fc_fail(err, FC_ERR_ARG, "--input-shape for '%s': bad rank", shapes[s].name);
    if (val->rank >= 0 && val->rank != shapes[s].rank)
      return fc_fail(err, FC_ERR_ARG, "--input-shape for '%s' has rank %d, the model says %d", val->name,
                     shapes[s].rank, val->rank);
    for (int d = 0; d < shapes[s].rank; d++) {
      if (shapes[s].dims[d] < 1)
        return fc_fail(err, FC_ERR_ARG, "--input-shape for '%s': dimension %d must be ≥ 1", val->name, d);
      if (val->rank >= 0 && val->dims[d] > 0 && val->dims[d] != shapes[s].dims[d])
        return fc_fail(err, FC_ERR_ARG, "--input-shape for '%s': dimension %d is fixed to %lld by the model, not %lld",
                       val->name, d, (long long)val->dims[d], (long long)shapes[s].dims[d]);
      val->dims[d] = shapes[s].dims[d];
    }
    val->rank = shapes[s].rank;
  }
  for (int i = 0; i < g->n_inputs; i++) {
    fc_value *val = &g->values[g->inputs[i]];
    char shape[128];
    if (fc_value_known(val)) {
      /* the same bound shape inference puts on every tensor (zero dims count as 1) */
      int64_t span = 1;
      for (int d = 0; d < val->rank; d++)
        if (!fc_mul_i64(span, val->dims[d] ? val->dims[d] : 1, &span) || span > FC_MAX_TENSOR_BYTES / 8)
          return fc_fail(err, FC_ERR_SHAPE, "input '%s': shape %s is too large", val->name,
                         fc_shape_str(val, shape, sizeof shape));
      continue;
    }
    fc_shape_str(val, shape, sizeof shape);
    /* suggest the model's own dims with the dynamic ones filled in: batch 1, others 224 */
    char hint[160] = "DIMxDIM...";
    if (val->rank > 0) {
      size_t at = 0;
      for (int d = 0; d < val->rank && at < sizeof hint; d++) {
        int w = snprintf(hint + at, sizeof hint - at, "%s%lld", d ? "x" : "",
                         (long long)(val->dims[d] >= 0 ? val->dims[d] : d == 0 ? 1 : 224));
        if (w < 0) break;
        at += (size_t)w;
      }
    }
    return fc_fail(err, FC_ERR_SHAPE, "input '%s' has a dynamic shape (%s): fix it with --input-shape %s=%s",
                   val->name, shape, val->name, hint);
  }
  return FC_OK;
}

fc_status fc_graph_infer(fc_graph *g, const fc_input_shape *shapes, size_t n_shapes, fc_node_state *states,
                         fc_err *err) {
  fc_status st = fc_graph_sort(g, err);
  if (!st) st = fix_inputs(g, shapes, n_shapes, err);
  if (st) return st;
  for (int i = 0; i < g->n_nodes; i++) {
    fc_node *n = &g->nodes[i];
    fc_node_state state = FC_NODE_OK;
    bool std_domain = !n->domain[0] || !strcmp(n->domain, "ai.onnx");
    n->def = std_domain ? fc_op_find(n->op_type) : NULL;
    if (!n->def) state = FC_NODE_UNSUPPORTED;
    for (int k = 0; k < n->n_inputs && state == FC_NODE_OK; k++) {
      const fc_value *v = fc_node_in(g, n, k);
      if (v && v->producer >= 0 && states && states[v->producer] != FC_NODE_OK) state = FC_NODE_UNREACHED;
    }
    if (states) states[i] = state;
    if (state != FC_NODE_OK) {
      if (!states)
        return fc_fail(err, FC_ERR_UNSUPPORTED, "node '%s': op %s%s%s is not supported", n->name,
                       n->domain[0] ? n->domain : "", n->domain[0] ? "." : "", n->op_type);
      continue;
    }
    if ((st = n->def->infer(g, n, err))) return st;
    for (int o = 0; o < n->n_outputs; o++) {
      fc_value *v = fc_node_out(g, n, o);
      if (v && !fc_value_known(v) && o == 0)
        return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): output shape could not be inferred", n->name, n->op_type);
    }
  }
  return FC_OK;
}
