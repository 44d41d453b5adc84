/* Unstructured magnitude pruning: one global threshold (Global MP), its Minimum Threshold variant,
 * the same sparsity per layer, and a MAC budget filled in global magnitude order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prune/prune.h"
#include "prune/rank.h"
#include "util/mem.h"

/* The set's layers as rank lists (keys are the weights themselves). */
typedef struct view {
  fc_rank_list L;
  const float **keys;
  int64_t *len, *unit, *taken;
  bool *active;
} view;

static void view_free(view *v) {
  free(v->keys);
  free(v->len);
  free(v->unit);
  free(v->taken);
  free(v->active);
}

static fc_status view_init(view *v, const fc_prune_set *s, fc_err *err) {
  size_t n = s->n_layers ? s->n_layers : 1;
  memset(v, 0, sizeof *v);
  v->keys = fc_calloc(n, sizeof *v->keys);
  v->len = fc_calloc(n, sizeof *v->len);
  v->unit = fc_calloc(n, sizeof *v->unit);
  v->taken = fc_calloc(n, sizeof *v->taken);
  v->active = fc_calloc(n, sizeof *v->active);
  if (!v->keys || !v->len || !v->unit || !v->taken || !v->active) {
    view_free(v);
    return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  }
  for (size_t l = 0; l < s->n_layers; l++) {
    v->keys[l] = s->layers[l].w;
    v->len[l] = s->layers[l].numel;
    v->unit[l] = 1;
    v->active[l] = !s->layers[l].excluded;
  }
  v->L.n = s->n_layers;
  v->L.keys = v->keys;
  v->L.len = v->len;
  v->L.active = v->active;
  return FC_OK;
}

static void zero_weight(size_t l, int64_t j, void *ctx) { ((fc_prune_layer *)ctx)[l].w[j] = 0.0f; }

static void zero_single(size_t l, int64_t j, void *ctx) {
  (void)l;
  ((float *)ctx)[j] = 0.0f;
}

static fc_status check_fraction(double x, const char *what, fc_err *err) {
  if (!(x >= 0.0 && x <= 1.0)) return fc_fail(err, FC_ERR_ARG, "%s must be between 0 and 1, not %g", what, x);
  return FC_OK;
}

/* ⌊s·n⌋, computed as users compute it (s·n in double, then floor). */
static int64_t frac_count(double s, int64_t n) {
  double k = floor(s * (double)n);
  return k < 0 ? 0 : k > (double)n ? n : (int64_t)k;
}

/* Zeroes the `count` smallest |w| of one tensor (ties at the cut in index order). */
static fc_status remove_smallest(float *w, int64_t n, int64_t count, fc_err *err) {
  const float *keys[1] = {w};
  int64_t len[1] = {n};
  fc_rank_list L = {.n = 1, .keys = keys, .len = len};
  fc_rank_cut cut;
  fc_status st = fc_rank_find(&L, count, false, &cut, err);
  if (!st) fc_rank_apply(&L, &cut, zero_single, w, NULL);
  return st;
}

fc_status fc_prune_layer_magnitude(fc_prune_layer *l, double sparsity, fc_err *err) {
  fc_status st = check_fraction(sparsity, "sparsity", err);
  return st ? st : remove_smallest(l->w, l->numel, frac_count(sparsity, l->numel), err);
}

static int64_t active_weights(const fc_prune_set *s) {
  int64_t n = 0;
  for (size_t l = 0; l < s->n_layers; l++)
    if (!s->layers[l].excluded) n += s->layers[l].numel;
  return n;
}

fc_status fc_prune_magnitude_layer(fc_prune_set *s, double sparsity, fc_prune_result *res, fc_err *err) {
  fc_status st = check_fraction(sparsity, "sparsity", err);
  res->weights = active_weights(s);
  res->target_removed = 0;
  for (size_t l = 0; !st && l < s->n_layers; l++) {
    if (s->layers[l].excluded) continue;
    res->target_removed += frac_count(sparsity, s->layers[l].numel);
    st = fc_prune_layer_magnitude(&s->layers[l], sparsity, err);
  }
  return st;
}

/* Global MP with a Minimum Threshold: layers the global cut would leave below their floor keep
 * exactly their floor (their largest weights); the rest share one threshold that removes what is
 * left of the ⌊S·N⌋ budget. Floors only grow the kept set, so at most one pass per layer. */
fc_status fc_prune_magnitude_global(fc_prune_set *s, double sparsity, double min_threshold, fc_prune_result *res,
                                    fc_err *err) {
  fc_status st = check_fraction(sparsity, "sparsity", err);
  if (!st && !(min_threshold >= 0.0 && min_threshold <= 100.0))
    st = fc_fail(err, FC_ERR_ARG, "--min-threshold is a percentage of all prunable weights (0 to 100), not %g",
                 min_threshold);
  if (st) return st;
  view v;
  if ((st = view_init(&v, s, err))) return st;
  int64_t n_all = active_weights(s), k = frac_count(sparsity, n_all);
  int64_t floor_w = min_threshold > 0 ? (int64_t)ceil(min_threshold / 100.0 * (double)n_all) : 0;
  res->weights = n_all;
  res->target_removed = k;
  res->floor_weights = floor_w;
  bool *floored = fc_calloc(s->n_layers ? s->n_layers : 1, sizeof *floored);
  if (!floored) {
    view_free(&v);
    return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  }
  for (size_t l = 0; l < s->n_layers; l++) {
    fc_prune_layer *ly = &s->layers[l];
    ly->floor = ly->excluded ? 0 : (ly->numel < floor_w ? ly->numel : floor_w);
  }
  fc_rank_cut cut;
  bool have_cut = false;
  for (;;) {
    int64_t rest = k;
    bool any = false;
    for (size_t l = 0; l < s->n_layers; l++) {
      bool on = !s->layers[l].excluded && !floored[l];
      v.active[l] = on;
      any |= on;
      if (floored[l]) rest -= s->layers[l].numel - s->layers[l].floor;
    }
    have_cut = false;
    if (!any) break;
    if ((st = fc_rank_find(&v.L, rest < 0 ? 0 : rest, false, &cut, err))) break;
    have_cut = true;
    if (floor_w == 0) break;
    fc_rank_apply(&v.L, &cut, NULL, NULL, v.taken);
    bool grew = false;
    for (size_t l = 0; l < s->n_layers; l++) {
      if (!v.active[l] || s->layers[l].numel - v.taken[l] >= s->layers[l].floor) continue;
      floored[l] = true;
      grew = true;
    }
    if (!grew) break;
  }
  for (size_t l = 0; !st && l < s->n_layers; l++) {
    fc_prune_layer *ly = &s->layers[l];
    if (!floored[l]) continue;
    st = remove_smallest(ly->w, ly->numel, ly->numel - ly->floor, err);
  }
  if (!st && have_cut) fc_rank_apply(&v.L, &cut, zero_weight, s->layers, NULL);
  int64_t floors_total = 0;
  for (size_t l = 0; l < s->n_layers; l++) floors_total += s->layers[l].floor;
  if (!st && floor_w > 0 && n_all - floors_total < k) {
    res->target_missed = true;
    snprintf(res->warning, sizeof res->warning,
             "the minimum threshold (%g%% = %lld weights per layer, or all of a smaller layer's) keeps %lld weights, "
             "more than the %lld that sparsity %g leaves: sparsity reached is %.4f",
             min_threshold, (long long)floor_w, (long long)floors_total, (long long)(n_all - k), sparsity,
             n_all ? (double)(n_all - floors_total) / (double)n_all : 0.0);
  }
  free(floored);
  view_free(&v);
  return st;
}

/* Removes weights in global magnitude order until nonzero MACs ≤ target × dense MACs. Each nonzero
 * weight removed saves exactly its layer's MACs per weight, so the shortest prefix of the order that
 * saves enough lands within one weight's MACs of the budget. */
fc_status fc_prune_magnitude_macs(fc_prune_set *s, double target, fc_prune_result *res, fc_err *err) {
  if (!(target > 0.0 && target <= 1.0))
    return fc_fail(err, FC_ERR_ARG, "--target-macs must be in (0, 1], not %g", target);
  view v;
  fc_status st = view_init(&v, s, err);
  if (st) return st;
  const fc_cost_totals *t = &s->model->totals;
  int64_t budget = (int64_t)floor(target * (double)t->macs);
  int64_t need = t->nonzero_macs - budget;
  res->weights = active_weights(s);
  res->target_removed = -1;
  for (size_t l = 0; l < s->n_layers; l++) v.unit[l] = s->layers[l].macs_per_weight;
  v.L.unit = v.unit;
  v.L.zero_weightless = true;
  fc_rank_cut cut;
  if (need > 0 && !(st = fc_rank_find(&v.L, need, true, &cut, err))) {
    fc_rank_apply(&v.L, &cut, zero_weight, s->layers, NULL);
    int64_t prunable = 0;
    for (size_t l = 0; l < s->n_layers; l++)
      if (v.active[l]) prunable += s->layers[l].macs_per_weight * s->layers[l].nnz;
    if (cut.all && prunable < need) {
      res->target_missed = true;
      snprintf(res->warning, sizeof res->warning,
               "MAC target %g cannot be met: with every prunable weight removed, %lld of %lld MACs remain in "
               "layers that cannot be pruned",
               target, (long long)(t->nonzero_macs - prunable), (long long)t->macs);
    }
  }
  view_free(&v);
  return st;
}
