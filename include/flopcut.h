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

/* ---- running a model: load → plan → run ------------------------------------------------------
 * A plan is built once for the model's (fixed) input shapes: one kernel per node, weights packed,
 * every activation placed in one arena. Runs allocate nothing. A plan is not reentrant: run it
 * from one thread at a time (it uses its own thread pool of `threads`). The model must outlive it. */
typedef struct fc_plan fc_plan;

/* Threads come from OpenMP. On a busy machine set GOMP_SPINCOUNT=1000 (or OMP_WAIT_POLICY=passive)
 * in the environment before the process starts: libgomp's default barrier spinning collapses when
 * the cores are shared. The flopcut CLI picks 1000 or 100000 from the load average (src/cli/omp_env.c). */
typedef struct fc_plan_options {
  int threads; /* 0: all cores */
} fc_plan_options;

/* A tensor crossing the API: dtype is an ONNX element type (1 = float32, 7 = int64, ...). */
typedef struct fc_tensor_view {
  const char *name;
  int dtype;
  int rank;
  int64_t dims[8];
  void *data;
} fc_tensor_view;

fc_status fc_plan_create(fc_ctx *ctx, const fc_model *model, const fc_plan_options *options, fc_plan **out);
void fc_plan_free(fc_plan *plan);
int fc_plan_threads(const fc_plan *plan);
/* 1 when the plan pins its threads to CPUs while it runs (decided at plan time: a team that takes
 * every CPU the process may use, on an idle machine; FLOPCUT_BIND=0/1 overrides), else 0. */
int fc_plan_pinned(const fc_plan *plan);

/* The plan's inputs and outputs (name, dtype, shape; data NULL). Strings live as long as the plan. */
size_t fc_plan_input_count(const fc_plan *plan);
fc_status fc_plan_input(const fc_plan *plan, size_t i, fc_tensor_view *out);
size_t fc_plan_output_count(const fc_plan *plan);
fc_status fc_plan_output(const fc_plan *plan, size_t i, fc_tensor_view *out);

/* Runs the plan. inputs are matched by name (or by position when name is NULL) and must have the
 * planned dtype and shape. outputs[i] names an output (or, with name NULL, the i-th); if its data is
 * set, the result is copied there (dtype and dims must match the plan's), otherwise data is pointed
 * at the plan's own buffer, valid until the next run or fc_plan_free; dtype/rank/dims are filled. */
fc_status fc_plan_run(fc_ctx *ctx, fc_plan *plan, const fc_tensor_view *inputs, size_t n_in, fc_tensor_view *outputs,
                      size_t n_out);

/* Profiling: one step per executed kernel (fused nodes count once, layout conversions are steps). */
typedef struct fc_plan_step_info {
  const char *name;     /* the node's name */
  const char *op_type;  /* ONNX op type, or "fc.ToNHWC"/"fc.ToPlain" for layout conversions */
  const char *fused;    /* ops folded into this step ("BatchNormalization+Relu"), "" if none */
  const char *kernel;   /* the implementation, when the kernel says ("brgconv:avx512_core"), else "" */
  const char *layout;   /* "nhwc" when the step reads or writes channels-last data, "padded" when it
                           reads or writes NCHW with cache-line-padded channel planes, else "plain" */
  int64_t macs, flops;  /* of the step's node, fused ops excluded */
  int64_t nonzero_macs;  /* MACs that touch a nonzero weight (= macs without a constant weight) */
} fc_plan_step_info;
size_t fc_plan_step_count(const fc_plan *plan);
fc_status fc_plan_step(const fc_plan *plan, size_t i, fc_plan_step_info *out);
/* Like fc_plan_run, also timing each step: step_ms[i] receives step i's wall time (one run). */
fc_status fc_plan_run_profiled(fc_ctx *ctx, fc_plan *plan, const fc_tensor_view *inputs, size_t n_in,
                               fc_tensor_view *outputs, size_t n_out, double *step_ms);
/* Bytes of the activation arena (every intermediate value of a run lives in it). */
size_t fc_plan_arena_bytes(const fc_plan *plan);

#ifdef __cplusplus
}
#endif
#endif
