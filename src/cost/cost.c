/* Per-node cost: op rules give MACs and FLOPs; params, weight bytes and sparsity are generic. */
#include "cost/cost.h"
#include <stdlib.h>
#include <string.h>
#include "ops/infer_util.h"
#include "ops/ops.h"

int fc_cost_weight_input(const fc_graph *g, const fc_node *n) {
  bool conv = !strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "ConvTranspose");
  bool mm = !strcmp(n->op_type, "Gemm") || !strcmp(n->op_type, "MatMul");
  if (!conv && !mm) return -1;
  const fc_value *w = fc_node_in(g, n, 1);
  if (w && w->data && fc_dtype_is_float(w->dtype)) return 1;
  const fc_value *a = fc_node_in(g, n, 0);
  if (mm && a && a->data && fc_dtype_is_float(a->dtype)) return 0;
  return -1;
}

/* A parameter is a float constant stored in the model (initializer or Constant node), not one
 * computed by folding; rank-0 scalars are hyper-parameters (clip bounds, epsilons), not weights. */
static bool is_param(const fc_value *v) {
  return v->data && !v->folded && (v->is_initializer || v->from_constant_node) && fc_dtype_is_float(v->dtype) &&
         v->rank > 0;
}

static int64_t count_nonzeros(const fc_value *v) {
  int64_t n = fc_value_numel(v), nz = 0;
  if (v->dtype == FC_DT_FLOAT) {
    const float *p = v->data;
    for (int64_t i = 0; i < n; i++) nz += p[i] != 0.0f;
  } else {
    for (int64_t i = 0; i < n; i++) nz += fc_data_get_f64(v->dtype, v->data, i) != 0.0;
  }
  return nz;
}

/* A node whose outputs were all computed by constant folding (shape arithmetic, constant
 * preprocessing) never runs, so it costs no MACs or FLOPs; its stored inputs still count as params. */
static bool folded_at_load(const fc_graph *g, const fc_node *n) {
  int outs = 0;
  for (int o = 0; o < n->n_outputs; o++) {
    const fc_value *v = fc_node_out(g, n, o);
    if (!v) continue;
    if (!v->folded) return false;
    outs++;
  }
  return outs > 0;
}

void fc_cost_compute(const fc_graph *g, const fc_node_state *states, fc_node_cost *costs, fc_cost_totals *t) {
  bool *counted = calloc((size_t)g->n_values + 1, 1); /* each parameter tensor counted once */
  /* nonzeros per value, counted once: a weight shared by thousands of nodes is scanned once */
  int64_t *nonzeros = malloc(sizeof(int64_t) * ((size_t)g->n_values + 1));
  for (int v = 0; nonzeros && v < g->n_values; v++) nonzeros[v] = -1;
  memset(t, 0, sizeof *t);
  for (int i = 0; i < g->n_nodes; i++) {
    const fc_node *n = &g->nodes[i];
    fc_node_cost *c = &costs[i];
    memset(c, 0, sizeof *c);
    c->name = n->name;
    c->op_type = n->op_type;
    if (states && states[i] != FC_NODE_OK) continue;
    c->costed = 1;
    if (n->def->cost && !folded_at_load(g, n)) n->def->cost(g, n, c);
    bool bn = !strcmp(n->op_type, "BatchNormalization");
    for (int k = 0; k < n->n_inputs; k++) {
      const fc_value *v = fc_node_in(g, n, k);
      if (!v || !is_param(v) || (bn && k >= 3)) continue;
      int idx = n->inputs[k];
      if (counted && counted[idx]) continue;
      if (counted) counted[idx] = true;
      int64_t numel = fc_value_numel(v);
      c->params = fc_sat_add(c->params, numel);
      c->weight_bytes = fc_sat_add(c->weight_bytes, fc_sat_mul(numel, (int64_t)fc_dtype_size(v->dtype)));
    }
    c->nonzero_macs = c->macs;
    int w = fc_cost_weight_input(g, n);
    if (w >= 0) {
      const fc_value *wv = fc_node_in(g, n, w);
      c->weight_elems = fc_value_numel(wv);
      int wi = n->inputs[w];
      if (!nonzeros) c->weight_nonzeros = count_nonzeros(wv);
      else if (nonzeros[wi] >= 0) c->weight_nonzeros = nonzeros[wi];
      else c->weight_nonzeros = nonzeros[wi] = count_nonzeros(wv);
      /* every weight element is used macs/numel times (uniform broadcasting), so this is exact */
      if (c->weight_elems > 0) c->nonzero_macs = c->macs / c->weight_elems * c->weight_nonzeros;
    }
    t->macs = fc_sat_add(t->macs, c->macs); /* saturating: hostile sizes never overflow */
    t->flops = fc_sat_add(t->flops, c->flops);
    t->params = fc_sat_add(t->params, c->params);
    t->activations = fc_sat_add(t->activations, c->activations);
    t->weight_bytes = fc_sat_add(t->weight_bytes, c->weight_bytes);
    t->nonzero_macs = fc_sat_add(t->nonzero_macs, c->nonzero_macs);
  }
  free(nonzeros);
  free(counted);
}
