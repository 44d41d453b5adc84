/* The cost model: per-node MACs, FLOPs, params, activations, weight bytes and nonzero MACs,
 * with the conventions in docs/COSTS.md. */
#ifndef FC_COST_COST_H
#define FC_COST_COST_H
#include "flopcut.h"
#include "graph/infer.h"

/* Index of the node's weight input that sparsity is counted on (constant operand of Conv,
 * ConvTranspose, Gemm, MatMul), or -1. */
int fc_cost_weight_input(const fc_graph *g, const fc_node *n);
/* Fills costs[0..n_nodes) (topological order) and the totals. */
void fc_cost_compute(const fc_graph *g, const fc_node_state *states, fc_node_cost *costs, fc_cost_totals *totals);
#endif
