/* Calibrated one-shot pruning (Wanda, SparseGPT-style reconstruction): per-layer budgets from Global
 * MP, then masks scored or weights re-fitted from each layer's input activations on calibration images. */
#ifndef FC_PRUNE_CALIB_H
#define FC_PRUNE_CALIB_H
#include "prune/prune.h"

typedef enum fc_calib_method {
  FC_CALIB_WANDA = 0,     /* keep the largest |W_ij|·‖X_j‖₂ within each layer's budget */
  FC_CALIB_SPARSEGPT = 1, /* Global MP mask, kept weights re-fitted by damped least squares */
} fc_calib_method;

/* Prunes s to `sparsity` overall. Each layer gets the number of weights Global MP keeps in it (one
 * magnitude threshold over the model); within the layer, wanda ranks |W|·‖X_j‖ and sparsegpt keeps
 * the Global MP mask and solves (H_SS + λI) w_S = H_S· w + λ w_S per output (w: dense weights), H = XᵀX of the layer's
 * (im2col) inputs, λ = damp·mean(diag H), layer after layer on inputs of the already-pruned prefix.
 * images: n float images, each exactly the model input minus its batch dim, already normalised.
 * Layers whose consumers cannot be calibrated (shared weights, ConvTranspose, batched MatMul
 * weights, auto_pad...) keep the Global MP mask; their note says so. */
fc_status fc_prune_calibrated(fc_ctx *ctx, fc_prune_set *s, fc_calib_method method, double sparsity, double damp,
                              const float *images, int64_t n, fc_prune_result *res);
#endif
