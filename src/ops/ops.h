/* The op table: one row per ONNX op, with its shape rule (which also folds constants) and its
 * cost rule. Each op family lives in its own file and contributes rows. */
#ifndef FC_OPS_OPS_H
#define FC_OPS_OPS_H
#include "flopcut.h"
#include "graph/graph.h"

typedef struct fc_op_def {
  const char *op_type;
  /* Sets the dtype and shape of every output; computes the outputs' data when all inputs are
   * constant and the op is cheap to evaluate (constant folding). */
  fc_status (*infer)(fc_graph *g, fc_node *n, fc_err *err);
  /* Fills macs and flops of c (other fields are filled generically). NULL: zero FLOPs (data movement). */
  void (*cost)(const fc_graph *g, const fc_node *n, fc_node_cost *c);
} fc_op_def;

const fc_op_def *fc_op_find(const char *op_type);

/* Rows contributed by each family, terminated by a row with op_type NULL. */
extern const fc_op_def fc_ops_conv[];
extern const fc_op_def fc_ops_gemm[];
extern const fc_op_def fc_ops_eltwise[];
extern const fc_op_def fc_ops_norm[];
extern const fc_op_def fc_ops_shape[];
extern const fc_op_def fc_ops_resize[];
#endif
