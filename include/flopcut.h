/* flopcut public C API: load an ONNX model, infer its shapes, count its cost.
 * Opaque handles, status codes, no global state; messages are kept on the context. */
#ifndef FLOPCUT_H
#define FLOPCUT_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fc_status {
  FC_OK = 0,
  FC_ERR_IO = 1,          /* file missing, unreadable, unwritable */
  FC_ERR_PARSE = 2,       /* not a valid ONNX protobuf */
  FC_ERR_INVALID = 3,     /* well-formed but inconsistent model (bad index, cycle, wrong type) */
  FC_ERR_UNSUPPORTED = 4, /* valid, but beyond what flopcut implements */
  FC_ERR_SHAPE = 5,       /* shapes could not be made concrete (dynamic dim not fixed, mismatch) */
  FC_ERR_NOMEM = 6,       /* allocation failed or a size limit was hit */
  FC_ERR_ARG = 7          /* bad argument from the caller */
} fc_status;

typedef struct fc_ctx fc_ctx;     /* holds the last error message */
typedef struct fc_model fc_model; /* a loaded, shape-inferred model */

fc_ctx *fc_ctx_create(void);
void fc_ctx_free(fc_ctx *ctx);
/* The message of the last failure on this context ("" if none). */
const char *fc_ctx_error(const fc_ctx *ctx);
const char *fc_status_name(fc_status status);

/* An input shape given by the user, fixing dynamic dimensions: name=1x3x224x224. */
typedef struct fc_input_shape {
  const char *name;
  int rank;
  int64_t dims[8];
} fc_input_shape;

/* Parses "NAME=1x3x224x224" into *out (name points into spec). */
fc_status fc_input_shape_parse(fc_ctx *ctx, const char *spec, fc_input_shape *out);

/* Loads an ONNX file, fixes inputs from shapes[0..n_shapes), infers every shape, folds constants. */
fc_status fc_model_load(fc_ctx *ctx, const char *path, const fc_input_shape *shapes, size_t n_shapes,
                        fc_model **out);
void fc_model_free(fc_model *model);

/* Cost of one node, with the conventions documented in docs/COSTS.md. */
typedef struct fc_node_cost {
  const char *name;
  const char *op_type;
  int64_t macs;
  int64_t flops;
  int64_t params;
  int64_t activations;
  int64_t weight_bytes;
  int64_t weight_elems;    /* elements of the node's weight inputs that sparsity is counted on */
  int64_t weight_nonzeros; /* nonzero elements among them */
  int64_t nonzero_macs;
  int costed;              /* 0: the op is not known to the counter (listed, never silent zero) */
} fc_node_cost;

typedef struct fc_cost_totals {
  int64_t macs, flops, params, activations, weight_bytes, nonzero_macs;
} fc_cost_totals;

size_t fc_model_node_count(const fc_model *model);
/* Cost of node i (in topological order); the strings live as long as the model. */
fc_status fc_model_node_cost(const fc_model *model, size_t i, fc_node_cost *out);
void fc_model_totals(const fc_model *model, fc_cost_totals *out);

#ifdef __cplusplus
}
#endif
#endif
