/* libFuzzer target for the untrusted-input path: ONNX bytes → loader → shape inference with
 * constant folding → cost model. Built and run by tools/fuzz.sh (make fuzz). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cost/cost.h"
#include "graph/infer.h"
#include "onnx/onnx_load.h"
#include "util/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Dynamic inputs would stop inference at the first node; fill unknown dims with small numbers
 * (derived from the input's length so different values get exercised) so the op rules really run. */
static fc_input_shape *fix_dynamic_inputs(const fc_graph *g, size_t size, size_t *n_out) {
  *n_out = 0;
  fc_input_shape *shapes = fc_calloc((size_t)g->n_inputs, sizeof *shapes);
  if (!shapes) return NULL;
  size_t n = 0;
  for (int i = 0; i < g->n_inputs; i++) {
    const fc_value *v = &g->values[g->inputs[i]];
    if (fc_value_known(v)) continue;
    fc_input_shape *s = &shapes[n++];
    s->name = v->name;
    s->rank = v->rank >= 0 ? v->rank : 4;
    for (int d = 0; d < s->rank; d++)
      s->dims[d] = v->rank >= 0 && v->dims[d] > 0 ? v->dims[d] : (int64_t)(1 + (size + (size_t)d) % 3);
  }
  *n_out = n;
  return shapes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fc_err err;
  fc_err_clear(&err);
  fc_graph *g = NULL;
  if (fc_onnx_load_buffer(data, size, NULL, &g, &err) != FC_OK) return 0;
  size_t n_shapes = 0;
  fc_input_shape *shapes = fix_dynamic_inputs(g, size, &n_shapes);
  fc_node_state *states = fc_calloc((size_t)g->n_nodes, sizeof *states);
  fc_node_cost *costs = fc_calloc((size_t)g->n_nodes, sizeof *costs);
  if (shapes && states && costs && fc_graph_infer(g, shapes, n_shapes, states, &err) == FC_OK) {
    fc_cost_totals totals;
    fc_cost_compute(g, states, costs, &totals);
  }
  free(costs);
  free(states);
  free(shapes);
  fc_graph_free(g);
  return 0;
}
