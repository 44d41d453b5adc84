/* Finds the kernel row for an op type across the kernel families' tables (first match wins, so the
 * order below is the preference order). */
#include <string.h>
#include "runtime/kernel.h"

static const fc_kernel *find_in(const fc_kernel *const *tables, size_t n, const char *op_type) {
  for (size_t t = 0; t < n; t++)
    for (const fc_kernel *k = tables[t]; k->op_type; k++)
      if (!strcmp(k->op_type, op_type)) return k;
  return NULL;
}

const fc_kernel *fc_kernel_find(const char *op_type) {
  static const fc_kernel *const tables[] = {
      fc_kernels_dense, fc_kernels_eltwise, fc_kernels_norm, fc_kernels_pool, fc_kernels_shape, fc_kernels_resize,
  };
  return find_in(tables, sizeof tables / sizeof tables[0], op_type);
}

const fc_kernel *fc_kernel_find_nhwc(const char *op_type) {
  static const fc_kernel *const tables[] = {fc_kernels_nhwc};
  return find_in(tables, 1, op_type);
}
