/* The contract between the planner and kernels: a kernel row per op type with prepare (plan time:
 * check, pack weights, size scratch) and run (no allocation). Kernels never see the graph beyond
 * their own node's values. */
#ifndef FC_RUNTIME_KERNEL_H
#define FC_RUNTIME_KERNEL_H
#include "graph/graph.h"
#include "util/err.h"

typedef struct fc_exec_node {
  const fc_graph *g;
  const fc_node *node;
  void *state;         /* kernel-private, created by prepare, freed by release */
  size_t scratch_bytes; /* set by prepare: per-run scratch the planner provides in the arena */
  int threads;          /* thread count chosen at plan time */
  /* Storage layout of each input / output (FC_LAYOUT_*), set by the planner before prepare. NULL
   * means all plain. Only kernels with FC_KERNEL_NHWC in their flags ever see FC_LAYOUT_NHWC. */
  const uint8_t *in_layout;
  const uint8_t *out_layout;
  /* Set by prepare: bit i means constant input i was copied (packed) into the state and is never
   * read at run time, so the planner may release its buffer. */
  uint32_t packed_inputs;
} fc_exec_node;

/* Plain is the ONNX layout (NCHW for images). NHWC stores a rank-4 [N,C,H,W] value channels-last:
 * oneDNN's fast convolutions on this CPU want it (see src/kernels/dnnl.c). */
enum { FC_LAYOUT_PLAIN = 0, FC_LAYOUT_NHWC = 1, FC_LAYOUT_PADDED = 2 };
/* PADDED stores a rank-4 [N,C,H,W] float value as NCHW with each channel's plane fc_padded_plane(H·W)
 * floats from the next (what is in the gap is undefined). The planner picks it only between sparse
 * convolutions, after preparing them (src/runtime/padded_planes.c, fc_sparse_relayout): no
 * prepare ever sees it. 196- and 49-pixel planes then start on a cache line. */
static inline int64_t fc_padded_plane(int64_t hw) { return (hw + 15) / 16 * 16; }
/* fc_kernel.flags: the kernel takes NHWC rank-4 activations in and out (the planner decides). */
#define FC_KERNEL_NHWC 1u

/* Buffers for one run of one node. in[i] is NULL for an omitted optional input; constants point
 * at the value's data. Shapes and dtypes are those of the node's values in the graph. */
typedef struct fc_exec_io {
  const void *const *in;
  void *const *out;
  void *scratch; /* scratch_bytes, 64-byte aligned, or NULL */
} fc_exec_io;

typedef struct fc_kernel {
  const char *op_type;
  /* Plan time: validate what the kernel supports (fail naming the node), pack constant weights. */
  fc_status (*prepare)(fc_exec_node *en, fc_err *err);
  /* Run time: compute outputs from inputs. Must not allocate or fail (all checks done in prepare). */
  void (*run)(const fc_exec_node *en, const fc_exec_io *io);
  /* Frees en->state (may be NULL: nothing to free). */
  void (*release)(fc_exec_node *en);
  unsigned flags; /* FC_KERNEL_* */
  /* Optional, for profiles: the implementation a prepared node uses ("brgconv:avx512_core"). */
  const char *(*describe)(const fc_exec_node *en);
} fc_kernel;

/* Kernel rows contributed by each family file, each terminated by a row with op_type NULL. */
const fc_kernel *fc_kernel_find(const char *op_type);
extern const fc_kernel fc_kernels_dense[];   /* Conv, ConvTranspose, Gemm, MatMul: src/kernels/dnnl.c */
extern const fc_kernel fc_kernels_eltwise[]; /* src/kernels/ops_eltwise.c */
extern const fc_kernel fc_kernels_norm[];
extern const fc_kernel fc_kernels_pool[];
extern const fc_kernel fc_kernels_shape[];
extern const fc_kernel fc_kernels_resize[];
/* Planner-internal rows (src/kernels/nhwc.c): channels-last variants the planner picks when an input
 * is stored NHWC (their prepare declines with FC_ERR_UNSUPPORTED when the node does not fit), and the
 * layout conversions "fc.ToNHWC" / "fc.ToPlain" it inserts between layouts. */
extern const fc_kernel fc_kernels_nhwc[];
const fc_kernel *fc_kernel_find_nhwc(const char *op_type);
#endif
