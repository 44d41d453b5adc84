/* Block sparsity: blocks of O consecutive output channels × I consecutive input channels (at a
 * fixed kernel position) are kept or removed together, ranked by L2 norm over the whole model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prune/prune.h"
#include "prune/rank.h"
#include "util/mem.h"

typedef struct blocks {
  int64_t n_ob, n_ib, count; /* blocks along out, along in, in total */
  float *score;              /* L2 norm, scaled to a full block for tail blocks */
  int32_t *size;             /* elements */
  int32_t *nnz;              /* nonzero elements */
} blocks;

typedef struct block_ctx {
  fc_prune_set *s;
  blocks *b;
  int bo, bi;
} block_ctx;

/* Block j of layer l: j = ((a·n_b + b)·n_ob + ob)·n_ib + ib. */
static void for_block(const fc_prune_layer *l, const blocks *bk, int bo, int bi, int64_t j, float **base,
                      int64_t *no, int64_t *ni) {
  const fc_prune_axes *ax = &l->axes;
  int64_t ib = j % bk->n_ib, ob = (j / bk->n_ib) % bk->n_ob, ab = j / (bk->n_ib * bk->n_ob);
  int64_t a = ab / ax->n_b, b = ab % ax->n_b;
  int64_t o0 = ob * bo, i0 = ib * bi;
  *no = ax->n_out - o0 < bo ? ax->n_out - o0 : bo;
  *ni = ax->n_in - i0 < bi ? ax->n_in - i0 : bi;
  *base = l->w + a * ax->s_a + b * ax->s_b + o0 * ax->s_out + i0 * ax->s_in;
}

static void zero_block(size_t l, int64_t j, void *vctx) {
  block_ctx *c = vctx;
  const fc_prune_layer *ly = &c->s->layers[l];
  float *base;
  int64_t no, ni;
  for_block(ly, &c->b[l], c->bo, c->bi, j, &base, &no, &ni);
  for (int64_t o = 0; o < no; o++)
    for (int64_t i = 0; i < ni; i++) base[o * ly->axes.s_out + i * ly->axes.s_in] = 0.0f;
}

static fc_status score_layer(const fc_prune_layer *l, int bo, int bi, blocks *bk, fc_err *err) {
  const fc_prune_axes *ax = &l->axes;
  bk->n_ob = (ax->n_out + bo - 1) / bo;
  bk->n_ib = (ax->n_in + bi - 1) / bi;
  bk->count = ax->n_a * ax->n_b * bk->n_ob * bk->n_ib;
  bk->score = fc_calloc((size_t)bk->count, sizeof *bk->score);
  bk->size = fc_calloc((size_t)bk->count, sizeof *bk->size);
  bk->nnz = fc_calloc((size_t)bk->count, sizeof *bk->nnz);
  if (!bk->score || !bk->size || !bk->nnz) return fc_fail(err, FC_ERR_NOMEM, "out of memory scoring blocks");
  double full = (double)bo * (double)bi;
  for (int64_t j = 0; j < bk->count; j++) {
    float *base;
    int64_t no, ni;
    for_block(l, bk, bo, bi, j, &base, &no, &ni);
    double sq = 0.0;
    int32_t nz = 0;
    for (int64_t o = 0; o < no; o++)
      for (int64_t i = 0; i < ni; i++) {
        double w = base[o * ax->s_out + i * ax->s_in];
        sq += w * w;
        nz += w != 0.0;
      }
    /* a tail block competes as if it were full: its norm is scaled by √(full/size), i.e. blocks are
     * compared by root-mean-square weight, which for full blocks orders exactly like the L2 norm */
    bk->score[j] = (float)(sqrt(sq) * sqrt(full / (double)(no * ni)));
    bk->size[j] = (int32_t)(no * ni);
    bk->nnz[j] = nz;
  }
  return FC_OK;
}

fc_status fc_prune_block(fc_prune_set *s, int bo, int bi, double sparsity, double target_macs, bool per_layer,
                         fc_prune_result *res, fc_err *err) {
  if (bo < 1 || bi < 1 || bo > 256 || bi > 256)
    return fc_fail(err, FC_ERR_ARG, "--block OxI needs 1 ≤ O, I ≤ 256, not %dx%d", bo, bi);
  if (target_macs <= 0 && !(sparsity >= 0.0 && sparsity <= 1.0))
    return fc_fail(err, FC_ERR_ARG, "sparsity must be between 0 and 1, not %g", sparsity);
  if (target_macs > 1.0) return fc_fail(err, FC_ERR_ARG, "--target-macs must be in (0, 1], not %g", target_macs);
  size_t n = s->n_layers ? s->n_layers : 1;
  blocks *bk = fc_calloc(n, sizeof *bk);
  const float **keys = fc_calloc(n, sizeof *keys);
  const int32_t **mult = fc_calloc(n, sizeof *mult);
  int64_t *len = fc_calloc(n, sizeof *len), *unit = fc_calloc(n, sizeof *unit);
  bool *active = fc_calloc(n, sizeof *active);
  fc_status st = (!bk || !keys || !mult || !len || !unit || !active) ? fc_fail(err, FC_ERR_NOMEM, "out of memory") : FC_OK;
  res->weights = 0;
  for (size_t l = 0; !st && l < s->n_layers; l++) {
    fc_prune_layer *ly = &s->layers[l];
    if (ly->excluded) continue;
    res->weights += ly->numel;
    if (!ly->axes_ok) {
      ly->left_dense = true;
      snprintf(ly->note, sizeof ly->note, "left dense: its consumers read it with different channel axes");
      continue;
    }
    if ((st = score_layer(ly, bo, bi, &bk[l], err))) break;
    active[l] = true;
    keys[l] = bk[l].score;
    len[l] = bk[l].count;
    unit[l] = target_macs > 0 ? ly->macs_per_weight : 1;
    mult[l] = target_macs > 0 ? bk[l].nnz : bk[l].size;
  }
  fc_rank_list L = {.n = s->n_layers, .keys = keys, .len = len, .unit = unit, .mult = mult, .active = active,
                    .zero_weightless = target_macs > 0};
  fc_rank_cut cut;
  block_ctx ctx = {s, bk, bo, bi};
  if (!st && target_macs > 0) {
    const fc_cost_totals *t = &s->model->totals;
    int64_t need = t->nonzero_macs - (int64_t)floor(target_macs * (double)t->macs);
    res->target_removed = -1;
    if (need > 0 && !(st = fc_rank_find(&L, need, true, &cut, err))) {
      fc_rank_apply(&L, &cut, zero_block, &ctx, NULL);
      int64_t prunable = 0;
      for (size_t l = 0; l < s->n_layers; l++)
        if (active[l]) prunable += s->layers[l].macs_per_weight * s->layers[l].nnz;
      if (cut.all && prunable < need) {
        res->target_missed = true;
        snprintf(res->warning, sizeof res->warning,
                 "MAC target %g cannot be met: with every prunable block removed, %lld of %lld MACs remain",
                 target_macs, (long long)(t->nonzero_macs - prunable), (long long)t->macs);
      }
    }
  } else if (!st && per_layer) {
    /* each layer alone: at most ⌊S·n⌋ of its elements, its own blocks ranked among themselves */
    res->target_removed = 0;
    for (size_t l = 0; !st && l < s->n_layers; l++) {
      if (!active[l]) continue;
      for (size_t o = 0; o < s->n_layers; o++) active[o] = false;
      active[l] = true;
      int64_t k = (int64_t)floor(sparsity * (double)s->layers[l].numel);
      res->target_removed += k;
      if (!(st = fc_rank_find(&L, k, false, &cut, err))) fc_rank_apply(&L, &cut, zero_block, &ctx, NULL);
      for (size_t o = 0; o < s->n_layers; o++) active[o] = keys[o] != NULL;
    }
  } else if (!st) {
    /* the budget counts every element of a removed block (zeros included): at most ⌊S·N⌋ elements */
    int64_t k = (int64_t)floor(sparsity * (double)res->weights);
    res->target_removed = k;
    if (!(st = fc_rank_find(&L, k, false, &cut, err))) fc_rank_apply(&L, &cut, zero_block, &ctx, NULL);
  }
  for (size_t l = 0; bk && l < s->n_layers; l++) {
    free(bk[l].score);
    free(bk[l].size);
    free(bk[l].nnz);
  }
  free(bk);
  free(keys);
  free(mult);
  free(len);
  free(unit);
  free(active);
  return st;
}
