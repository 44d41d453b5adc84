/* Finds an op's row across the families' tables. */
#include <string.h>
#include "ops/ops.h"

const fc_op_def *fc_op_find(const char *op_type) {
  const fc_op_def *tables[] = {fc_ops_conv, fc_ops_gemm, fc_ops_eltwise, fc_ops_norm, fc_ops_shape, fc_ops_resize};
  for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
    for (const fc_op_def *d = tables[t]; d->op_type; d++)
      if (strcmp(d->op_type, op_type) == 0) return d;
  return NULL;
}
