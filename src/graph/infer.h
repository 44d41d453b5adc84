/* Whole-graph shape inference with constant folding, driven by the op table. */
#ifndef FC_GRAPH_INFER_H
#define FC_GRAPH_INFER_H
#include "flopcut.h"
#include "graph/graph.h"

typedef enum fc_node_state {
  FC_NODE_OK = 0,
  FC_NODE_UNSUPPORTED = 1, /* op unknown to flopcut */
  FC_NODE_UNREACHED = 2,   /* an input comes from an unsupported node: shape unknown */
} fc_node_state;

/* Fixes the graph inputs' shapes from the user's list, then infers every node in topological order.
 * Unsupported ops do not fail: their state is recorded in states[] (n_nodes entries, may be NULL). */
fc_status fc_graph_infer(fc_graph *g, const fc_input_shape *shapes, size_t n_shapes, fc_node_state *states,
                         fc_err *err);
#endif
