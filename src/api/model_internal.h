/* What a public fc_model handle holds. */
#ifndef FC_API_MODEL_INTERNAL_H
#define FC_API_MODEL_INTERNAL_H
#include "cost/cost.h"
#include "graph/graph.h"
#include "graph/infer.h"

struct fc_ctx {
  fc_err err;
};

struct fc_model {
  fc_graph *graph;
  fc_node_state *states;
  fc_node_cost *costs;
  fc_cost_totals totals;
};
#endif
