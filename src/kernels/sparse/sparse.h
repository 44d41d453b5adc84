/* Sparse convolution and Gemm with constant weights: plan (validate, pack the nonzeros, size the
 * scratch) once, then run without allocating. Knows nothing about graphs; the planner calls it. */
#ifndef FC_KERNELS_SPARSE_SPARSE_H
#define FC_KERNELS_SPARSE_SPARSE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kernels/x86/cpu.h"
#include "util/err.h"

/* A 2-D convolution, groups = 1, one image in NCHW: input [cin, in_h, in_w], weight
 * [cout, cin, k_h, k_w] (ONNX OIHW), output [cout, out_h, out_w]. */
typedef struct fc_sparse_conv_desc {
  int64_t cin, cout, in_h, in_w;
  int64_t k_h, k_w, stride_h, stride_w, dil_h, dil_w;
  int64_t pad_t, pad_l, pad_b, pad_r;
  float act_lo, act_hi; /* clamp after bias and residual: Relu [0, inf], Relu6 [0, 6], none ±inf */
  int act;              /* then FC_SPARSE_ACT_*: Swish or HardSwish need the AVX-512 kernels */
  int block;            /* output channels per packed block: 0 = choose by cost, else 1, 2 or 4 */
  int layout;           /* input layout (FC_SPARSE_*_PLANES, or IN_PLACE for 1×1 stride 1 without padding),
                           0 = choose by cost; for tests and benchmarks */
  int threads;          /* threads a run uses (≥ 1) */
  int isa;              /* -1 = the best this CPU runs, else an fc_isa it supports */
  /* Floats from one channel's plane to the next, for the input, the output and the residual: 0 =
   * packed (in_h·in_w, out_h·out_w). The runtime pads planes of 14×14 or 7×7 pixels to a whole
   * number of vectors (FC_LAYOUT_PADDED), so that a 1×1 layer's in-place loads and every output
   * store are vector-aligned and threads splitting a plane's pixels share no cache line. */
  int64_t in_cstride, out_cstride, res_cstride;
} fc_sparse_conv_desc;

typedef struct fc_sparse_conv fc_sparse_conv;
/* Activations the AVX-512 epilogue applies after the clamp: x·sigmoid(x), x·clamp(x + 3, 0, 6)/6 */
enum { FC_SPARSE_ACT_NONE = 0, FC_SPARSE_ACT_SWISH = 1, FC_SPARSE_ACT_HARDSWISH = 2 };
enum {
  FC_SPARSE_SHIFT_PLANES = 1,
  FC_SPARSE_TAP_PLANES = 2,
  FC_SPARSE_PHASE_PLANES = 3,
  FC_SPARSE_IN_PLACE = 4,
  FC_SPARSE_ALIGNED_PHASE = 5 /* phase planes with vector-aligned rows, column shifts applied to the sums (AVX-512) */
};

/* Fills act_lo/act_hi = ±inf, dilations/strides 1, block 0, threads 1, isa -1. */
void fc_sparse_conv_desc_init(fc_sparse_conv_desc *d);
/* Validates d, packs the nonzeros of w (bias may be NULL). name labels errors (a node name). */
fc_status fc_sparse_conv_create(const fc_sparse_conv_desc *d, const float *w, const float *bias, const char *name,
                                fc_sparse_conv **out, fc_err *err);
void fc_sparse_conv_free(fc_sparse_conv *c);
/* Changes a planned conv's channel strides (as in the descriptor, 0 = packed) without planning it
 * again: only the offsets of an input read in place depend on them, and those are rescaled; a 1×1
 * conv given an aligned copy of misaligned input planes switches to reading aligned ones in place. */
fc_status fc_sparse_conv_set_strides(fc_sparse_conv *c, int64_t in_cstride, int64_t out_cstride, int64_t res_cstride,
                                     const char *name, fc_err *err);
/* Bytes of 64-byte-aligned scratch one run needs (for the planned thread count). */
size_t fc_sparse_conv_scratch_bytes(const fc_sparse_conv *c);
/* One image: y = clamp(conv(x, w) + bias + res). res (same shape as y) may be NULL. x, res and y
 * must not overlap. scratch: fc_sparse_conv_scratch_bytes() bytes, 64-byte aligned. */
void fc_sparse_conv_run(const fc_sparse_conv *c, const float *x, const float *res, float *y, void *scratch);

typedef struct fc_sparse_info {
  int64_t nnz;       /* nonzero weights */
  int64_t weights;   /* all weights */
  int64_t packed;    /* packed columns × block rows (nnz plus zeros stored to fill blocks) */
  int block;         /* output channels per block */
  int isa;           /* fc_isa the kernels use */
  int64_t k_chunks;  /* input-channel chunks per pixel tile */
  int64_t tiles;     /* pixel tiles */
  int64_t groups;    /* output-channel groups the threads share out (1: they split the pixels) */
  int layout;        /* FC_SPARSE_*_PLANES, 0 when the input is read in place */
  int padded_output; /* the kernel's rows carry padding columns: 1 = it stores the output by runs of
                        lanes, 2 = into a padded buffer that a pass compacts */
} fc_sparse_info;
void fc_sparse_conv_info(const fc_sparse_conv *c, fc_sparse_info *info);

/* Y[m, n] = clamp(X[m, k] · B + bias) with B constant: B is [n, k] when trans_b (ONNX Gemm with
 * transB = 1), else [k, n]. alpha scales B, beta scales bias (ONNX Gemm), folded at plan time. */
typedef struct fc_sparse_gemm_desc {
  int64_t m, k, n;
  int trans_b;
  float alpha, beta;
  float act_lo, act_hi;
  int block, threads, isa;
} fc_sparse_gemm_desc;

typedef struct fc_sparse_gemm fc_sparse_gemm;
void fc_sparse_gemm_desc_init(fc_sparse_gemm_desc *d);
fc_status fc_sparse_gemm_create(const fc_sparse_gemm_desc *d, const float *b, const float *bias, const char *name,
                                fc_sparse_gemm **out, fc_err *err);
void fc_sparse_gemm_free(fc_sparse_gemm *g);
size_t fc_sparse_gemm_scratch_bytes(const fc_sparse_gemm *g);
void fc_sparse_gemm_run(const fc_sparse_gemm *g, const float *x, float *y, void *scratch);
void fc_sparse_gemm_info(const fc_sparse_gemm *g, fc_sparse_info *info);

/* Cost model (sparse_cost.c), calibrated with bench-kernels on this CPU: predicted seconds for one
 * image of the planned sparse op, and for oneDNN's dense version of the same op. */
double fc_sparse_conv_predict(const fc_sparse_conv *c, int threads);
double fc_sparse_conv_predict_dense(const fc_sparse_conv *c, int threads);
double fc_sparse_gemm_predict(const fc_sparse_gemm *g, int threads);
double fc_sparse_gemm_predict_dense(const fc_sparse_gemm *g, int threads);
/* Sparse beats oneDNN dense for this conv, counting the layout conversion its input would need
 * (input_nhwc: the input arrives channels-last). */
int fc_sparse_conv_faster(const fc_sparse_conv *c, int threads, int input_nhwc);
/* The model's features of a planned conv (single thread, one image), for calibration. */
#define FC_SPARSE_NFEAT 10
void fc_sparse_conv_features(const fc_sparse_conv *c, double *f);
int fc_sparse_gemm_faster(const fc_sparse_gemm *g, int threads);

/* Runtime rows (kernel_sparse.c). fc_sparse_kernel_for: the sparse row for node n (a Conv, Gemm or
 * MatMul with a constant weight) when the cost model predicts it beats oneDNN dense, or the NCHW
 * depthwise row for a depthwise Conv whose input is stored plain (in_layout, FC_LAYOUT_*), with the
 * node already prepared into *prepared (the planner keeps that state); NULL (and *prepared zeroed)
 * otherwise. FLOPCUT_SPARSE=0 never picks sparse, =1 picks it whenever supported. */
struct fc_kernel;
struct fc_exec_node;
struct fc_graph;
struct fc_node;
const struct fc_kernel *fc_sparse_kernel_for(const struct fc_graph *g, const struct fc_node *n, int threads,
                                             int in_layout, struct fc_exec_node *prepared);
/* Whether step (k, en), as prepared, could read its input `input` (or, input < 0, write its output)
 * in FC_LAYOUT_PADDED: a sparse convolution, not depthwise or on one pixel, whose post-ops the
 * microkernel fuses, reading that input as its x or its residual. */
bool fc_sparse_takes_padded(const struct fc_kernel *k, const struct fc_exec_node *en, int input);
/* After the planner changed the layouts (en->in_layout / out_layout) of a step for which
 * fc_sparse_takes_padded held: adapts the prepared conv to them without packing it again. */
fc_status fc_sparse_relayout(struct fc_exec_node *en, fc_err *err);
#endif
