/* Writing ONNX: the original file re-read and re-packed with some tensors' contents replaced, so
 * everything flopcut does not touch (metadata, doc strings, value_info, opsets) survives as is. */
#ifndef FC_ONNX_SAVE_H
#define FC_ONNX_SAVE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "graph/graph.h"

/* New contents for the tensor stored under `name` (an initializer, a sparse initializer or a
 * Constant node's value). dtype and dims must match the stored tensor. */
typedef struct fc_onnx_patch {
  const char *name;
  int dtype;           /* FC_DT_* */
  int rank;
  const int64_t *dims;
  const void *data;    /* numel × element size bytes, little-endian (ONNX raw_data order) */
  bool sparse;         /* store as a sparse initializer: nonzero values + int64 linear indices */
} fc_onnx_patch;

/* Re-reads in_path, applies the patches and writes out_path atomically (a temporary file in
 * out_path's folder, fsync, rename). Initializers kept in external data are written inline from
 * g (the loaded graph of in_path; NULL refuses such models). Refuses out_path naming the same file
 * as in_path, through any path. */
fc_status fc_onnx_save_patched(const char *in_path, const char *out_path, const fc_graph *g,
                               const fc_onnx_patch *patches, size_t n_patches, fc_err *err);

/* FC_ERR_ARG if out_path is the same file as in_path (same device and inode), else FC_OK. */
fc_status fc_onnx_check_distinct(const char *in_path, const char *out_path, fc_err *err);

/* Writes buf to path atomically: temporary file beside it, fsync, rename (mode 0644). */
fc_status fc_write_file_atomic(const char *path, const void *buf, size_t len, fc_err *err);
#endif
