/* Weight pruning on a loaded model: finds the prunable weight tensors, then zeroes weights in place
 * by magnitude (global, per layer, minimum threshold, MAC target), N:M groups or blocks. */
#ifndef FC_PRUNE_PRUNE_H
#define FC_PRUNE_PRUNE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "api/model_internal.h"

/* How a weight's elements map to output and input channels, for structured patterns: the element
 * at (a, b, o, i) lives at offset a·s_a + b·s_b + o·s_out + i·s_in. Conv [Cout, Cin/g, kh, kw]:
 * o = cout, i = cin, b = kernel position. Gemm/MatMul: i runs along K, o along the output columns,
 * a over MatMul batch dims. ConvTranspose [Cin, Cout/g, k…]: i = cin, o = cout within the group. */
typedef struct fc_prune_axes {
  int64_t n_out, s_out;
  int64_t n_in, s_in;
  int64_t n_a, s_a;
  int64_t n_b, s_b;
} fc_prune_axes;

/* One prunable weight tensor. A tensor shared by several nodes is one layer (pruned once); its MACs
 * are those of all its consumers. */
typedef struct fc_prune_layer {
  const char *name;     /* first consumer node: what reports call the layer */
  const char *op_type;
  const char *tensor;   /* the stored tensor: initializer or Constant output */
  int value;            /* its value index */
  int *nodes;           /* consumer nodes (topological indices) */
  int n_nodes;
  int *copies;          /* values holding a folded copy (Identity outputs) to keep in sync */
  int n_copies;
  float *w;             /* the weights (the value's data) */
  int64_t numel;
  int64_t macs;           /* dense MACs of all consumers */
  int64_t macs_per_weight; /* MACs one nonzero weight costs (macs / numel, exact) */
  int64_t nnz_before;
  int64_t nnz;            /* nonzeros now */
  fc_prune_axes axes;
  bool axes_ok;           /* consumers agree on the channel axes */
  bool excluded;          /* by --exclude: never changed */
  bool left_dense;        /* the structured pattern does not fit it; `note` says why */
  int64_t floor;          /* weights the layer must keep (minimum threshold), 0 if none */
  char note[128];
} fc_prune_layer;

/* A node with a weight operand that cannot be pruned, and why. */
typedef struct fc_prune_skip {
  const char *node;
  const char *op_type;
  char reason[160];
} fc_prune_skip;

typedef struct fc_prune_set {
  fc_model *model;
  fc_prune_layer *layers; /* in the order of their first consumer */
  size_t n_layers;
  fc_prune_skip *skipped;
  size_t n_skipped;
} fc_prune_set;

typedef enum fc_prune_method {
  FC_PRUNE_GLOBAL = 0, /* one magnitude threshold over every layer (Global MP) */
  FC_PRUNE_LAYER = 1,  /* the same sparsity in every layer (in OxI blocks when block_o > 0) */
  FC_PRUNE_NM = 2,     /* at most N nonzeros in every M consecutive inputs */
  FC_PRUNE_BLOCK = 3,  /* O outputs × I inputs blocks, ranked by L2 norm over the whole model */
} fc_prune_method;

typedef struct fc_prune_opts {
  fc_prune_method method;
  double sparsity;      /* fraction of weights to remove, in [0, 1] (global, layer, block) */
  double target_macs;   /* > 0: remove weights until nonzero MACs ≤ target × dense MACs (global, block) */
  double min_threshold; /* percent of all prunable weights every layer keeps (global with sparsity) */
  int nm_n, nm_m;
  int block_o, block_i;
} fc_prune_opts;

/* What a run achieved, over the layers it was allowed to change. */
typedef struct fc_prune_result {
  int64_t weights;       /* elements of the layers taking part (excluded ones not counted) */
  int64_t target_removed; /* zeros the method aimed for (⌊S·N⌋), -1 for N:M and MAC targets */
  int64_t zeros;         /* zeros now in those layers */
  int64_t floor_weights; /* minimum threshold: the per-layer floor, 0 if none */
  bool target_missed;    /* the target could not be met (floors, non-prunable MACs); see warning */
  char warning[256];
} fc_prune_result;

/* Finds the prunable weights of m: the constant weight operand (fc_cost_weight_input) of Conv,
 * ConvTranspose, Gemm and MatMul, followed through Identity nodes to the stored tensor. Layers a
 * pattern in exclude[] matches (fnmatch on a consumer's node name or on the tensor name) are kept. */
fc_status fc_prune_set_create(fc_model *m, const char *const *exclude, size_t n_exclude, fc_prune_set **out,
                              fc_err *err);
void fc_prune_set_free(fc_prune_set *s);

/* Checks opts, prunes the set's layers in place, then re-syncs folded copies and recounts the
 * model's costs (m->costs, m->totals: nonzero MACs). */
fc_status fc_prune_run(fc_prune_set *s, const fc_prune_opts *opts, fc_prune_result *res, fc_err *err);

/* Building blocks (each leaves layers' nnz and copies stale: call fc_prune_finish afterwards). */
fc_status fc_prune_magnitude_global(fc_prune_set *s, double sparsity, double min_threshold, fc_prune_result *res,
                                    fc_err *err);
fc_status fc_prune_magnitude_layer(fc_prune_set *s, double sparsity, fc_prune_result *res, fc_err *err);
fc_status fc_prune_magnitude_macs(fc_prune_set *s, double target, fc_prune_result *res, fc_err *err);
/* Removes the ⌊sparsity·numel⌋ smallest weights of one layer (ties at the cut removed in index order). */
fc_status fc_prune_layer_magnitude(fc_prune_layer *l, double sparsity, fc_err *err);
fc_status fc_prune_nm(fc_prune_set *s, int n, int m, fc_prune_result *res, fc_err *err);
/* Blocks ranked over the whole model, or with per_layer each layer on its own (⌊S·n⌋ elements at most
 * removed from each; sparsity only). */
fc_status fc_prune_block(fc_prune_set *s, int bo, int bi, double sparsity, double target_macs, bool per_layer,
                         fc_prune_result *res, fc_err *err);
/* Recounts every layer's nonzeros, copies pruned weights into their folded copies and recomputes
 * the model's costs. */
void fc_prune_finish(fc_prune_set *s);

/* After changing one layer's weights by hand: copies them into its folded copies and recounts its
 * nonzeros (the model's costs are not recomputed: fc_prune_finish does that). */
void fc_prune_layer_sync(fc_prune_set *s, fc_prune_layer *l);

/* Nonzero elements of w[0..n). */
int64_t fc_prune_count_nonzero(const float *w, int64_t n);
/* Zeroes the n - keep smallest |w| among the n elements at base + k·stride (k < n), ties removed
 * in index order: the N:M rule for one group. */
void fc_prune_keep_largest(float *base, int64_t stride, int n, int keep);
#endif
