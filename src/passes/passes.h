/* Graph → graph rewrites run before planning: a deep copy (so a plan never changes its model),
 * dropping folded nodes, folding BatchNormalization into Conv, fusing activations as post-ops. */
#ifndef FC_PASSES_PASSES_H
#define FC_PASSES_PASSES_H
#include "graph/graph.h"
#include "util/err.h"

/* A fused conv/gemm/matmul carries its post-ops in two private attributes (never saved to ONNX):
 * FC_ATTR_POST_KINDS (ints, one fc_post_kind each, applied in order after the op and its bias) and
 * FC_ATTR_POST_PARAMS (floats, alpha and beta per post-op). Binary post-ops read one extra node
 * input each, appended after the op's ONNX inputs in post-op order. */
#define FC_ATTR_POST_KINDS "fc.post_kinds"
#define FC_ATTR_POST_PARAMS "fc.post_params"
/* Names the original ops a fused node absorbed ("BatchNormalization+Relu"), for profiles. */
#define FC_ATTR_FUSED "fc.fused"

typedef enum fc_post_kind {
  FC_POST_RELU = 1,        /* max(x, 0) */
  FC_POST_CLIP = 2,        /* min(max(x, alpha), beta) */
  FC_POST_LINEAR = 3,      /* alpha * x + beta */
  FC_POST_SIGMOID = 4,     /* 1 / (1 + exp(-x)) */
  FC_POST_SWISH = 5,       /* x * sigmoid(x) */
  FC_POST_HARDSWISH = 6,   /* x * min(max(x + 3, 0), 6) / 6 */
  FC_POST_GELU_ERF = 7,    /* 0.5 x (1 + erf(x / sqrt 2)) */
  FC_POST_TANH = 8,
  FC_POST_LEAKY_RELU = 9,  /* x ≥ 0 ? x : alpha x */
  FC_POST_ADD = 20,        /* x + operand (binary: reads the next extra input) */
  FC_POST_MUL = 21,        /* x * operand */
  FC_POST_SUB = 22,        /* x - operand */
} fc_post_kind;

#define FC_MAX_POST_OPS 8

static inline int fc_post_is_binary(int kind) { return kind >= FC_POST_ADD; }

/* Deep copy of g (values, nodes, attributes). With share_data, constant data is not copied: the
 * copy's values point at g's buffers, and the caller must clear those pointers (fc_graph_unshare)
 * before freeing the copy; g must outlive it. */
fc_status fc_graph_clone(const fc_graph *g, bool share_data, fc_graph **out, fc_err *err);
/* Clears the data pointers a sharing copy borrowed from `from` (values [0, from->n_values) whose
 * pointer is still from's), so that fc_graph_free on the copy frees only what it owns. */
void fc_graph_unshare(fc_graph *copy, const fc_graph *from);

/* Removes nodes whose outputs are all constant (folded by shape inference) or unused. */
fc_status fc_pass_drop_dead(fc_graph *g, fc_err *err);
/* Conv → BatchNormalization (conv output read only by the BN): scale weights, shift bias, drop BN. */
fc_status fc_pass_fold_batchnorm(fc_graph *g, int *folded, fc_err *err);
/* Appends activations and elementwise ops that follow a Conv/ConvTranspose/Gemm/MatMul (whose
 * output nothing else reads) as post-ops; recognises x*sigmoid(x), x*hardsigmoid(x) and erf-GELU. */
fc_status fc_pass_fuse_post_ops(fc_graph *g, int *fused, fc_err *err);

/* Helpers shared by the passes. */
/* Removes the nodes with remove[i] set, keeping the rest in order (frees their contents). */
void fc_graph_remove_nodes(fc_graph *g, const bool *remove);
/* Creates a new constant float value with a unique name derived from base. -1 on failure. */
int fc_graph_add_const_f32(fc_graph *g, const char *base, int rank, const int64_t *dims, float **data);
/* Sets (replacing) an attribute on a node; copies the arrays. */
fc_status fc_node_set_ints(fc_node *n, const char *name, const int64_t *v, size_t count, fc_err *err);
fc_status fc_node_set_floats(fc_node *n, const char *name, const float *v, size_t count, fc_err *err);
fc_status fc_node_set_str(fc_node *n, const char *name, const char *s, fc_err *err);
/* Reads the post-ops of a fused node; returns the count (0 if none). */
int fc_node_post_ops(const fc_node *n, int *kinds, float *alpha, float *beta);
#endif
