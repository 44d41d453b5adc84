/* Helpers the shape rules share: checked access to inputs and attributes, output setup,
 * broadcasting, and reading small constant integer tensors. */
#ifndef FC_OPS_INFER_UTIL_H
#define FC_OPS_INFER_UTIL_H
#include "graph/graph.h"
#include "ops/ops.h"

/* Folding evaluates ops on constants up to this many output elements (shape subgraphs are tiny;
 * bigger constant results are left to the runtime). */
#define FC_FOLD_MAX_ELEMS (1 << 20)
/* ... and up to this many elements over the whole graph, so that thousands of folding nodes in a
 * small hostile file cannot take gigabytes or minutes (beyond it, results are left unfolded). */
#define FC_FOLD_BUDGET_ELEMS ((int64_t)1 << 24)

/* Input i, failing with a message naming the node if it is absent or its shape unknown. */
fc_status fc_need_input(const fc_graph *g, const fc_node *n, int i, fc_value **out, fc_err *err);
/* Fails unless the node has between lo and hi inputs. */
fc_status fc_need_arity(const fc_node *n, int lo, int hi, fc_err *err);
/* Sets output i's dtype and shape (checked for size). */
fc_status fc_set_output(fc_graph *g, const fc_node *n, int i, int dtype, int rank, const int64_t *dims,
                        fc_err *err);
/* Allocates zeroed data for output i (shape must be set); false if too large to fold. */
bool fc_alloc_output_data(fc_graph *g, const fc_node *n, int i);
/* True when every present input has constant data. */
bool fc_all_inputs_const(const fc_graph *g, const fc_node *n);
/* Normalises axis into [0, rank) (rank+1 when allow_end) or fails naming the node. */
fc_status fc_norm_axis(const fc_node *n, int64_t axis, int rank, int64_t *out, fc_err *err);
/* Reads a constant 1-D (or scalar) integer input into ints (at most max); fails if not constant. */
fc_status fc_const_ints(const fc_graph *g, const fc_node *n, int i, int64_t *ints, int max, int *count,
                        fc_err *err);
/* Axes from the attribute (older opsets) or from input `input_index` (newer), whichever exists. */
fc_status fc_axes_arg(const fc_graph *g, const fc_node *n, int input_index, int64_t *axes, int *count,
                      bool *given, fc_err *err);
/* Numpy broadcasting of shapes a and b into out; fails naming the node. */
fc_status fc_broadcast(const fc_node *n, const fc_value *a, const fc_value *b, int *rank, int64_t *dims,
                       fc_err *err);
/* Strides of `dims` broadcast into a rank-`rank` output (0 stride where broadcast). */
void fc_broadcast_strides(const fc_value *v, int rank, const int64_t *out_dims, int64_t *strides);
int64_t fc_numel(int rank, const int64_t *dims);
/* Saturating arithmetic for cost counts: absurd shapes give INT64_MAX, never overflow. */
int64_t fc_sat_mul(int64_t a, int64_t b);
int64_t fc_sat_add(int64_t a, int64_t b);
#endif
