/* Prefix selection over the global magnitude order: a histogram over the high 15 key bits finds
 * the bucket holding the cut, a second one over its low 16 bits finds the exact key. */
#include "prune/rank.h"
#include <stdlib.h>
#include <string.h>
#include "util/mem.h"

#define KEY_MASK 0x7fffffffu
#define N_HI (1u << 15)
#define N_LO (1u << 16)

static inline int64_t item_weight(const fc_rank_list *L, size_t l, int64_t j, uint32_t key) {
  if (L->zero_weightless && key == 0) return 0;
  int64_t u = L->unit ? L->unit[l] : 1;
  int64_t m = (L->mult && L->mult[l]) ? L->mult[l][j] : 1;
  return u * m;
}

/* Bits of |x|: memcpy keeps the compiler's aliasing rules; it compiles to a plain load. */
static inline uint32_t key_of(const float *k, int64_t j) {
  uint32_t u;
  memcpy(&u, &k[j], sizeof u);
  return u & KEY_MASK;
}

static inline bool list_on(const fc_rank_list *L, size_t l) { return !L->active || L->active[l]; }

/* The first bucket where the running weight reaches the target; *cum gets the weight before it. */
static uint32_t crossing(const int64_t *hist, uint32_t n, int64_t target, bool at_least, int64_t *cum) {
  for (uint32_t b = 0; b < n; b++) {
    int64_t w = hist[b];
    if (at_least ? *cum + w >= target : *cum + w > target) return b;
    *cum += w;
  }
  return n - 1; /* unreachable: the caller checked the total exceeds the target */
}

fc_status fc_rank_find(const fc_rank_list *L, int64_t target, bool at_least, fc_rank_cut *cut, fc_err *err) {
  memset(cut, 0, sizeof *cut);
  cut->at_least = at_least;
  if (at_least ? target <= 0 : target < 0) { /* empty prefix */
    cut->tie_budget = at_least ? 0 : -1;
    return FC_OK;
  }
  int64_t *hist = fc_calloc(N_LO, sizeof *hist); /* reused: N_HI buckets first, then N_LO */
  if (!hist) return fc_fail(err, FC_ERR_NOMEM, "out of memory ranking weights");
  int64_t total = 0;
  for (size_t l = 0; l < L->n; l++) {
    if (!list_on(L, l)) continue;
    const float *k = L->keys[l];
    int64_t lw = 0;
    for (int64_t j = 0; j < L->len[l]; j++) {
      uint32_t key = key_of(k, j);
      int64_t w = item_weight(L, l, j, key);
      hist[key >> 16] += w;
      lw += w;
    }
    if (lw < 0 || !fc_add_i64(total, lw, &total)) {
      free(hist);
      return fc_fail(err, FC_ERR_INVALID, "ranking weights: total weight overflows");
    }
  }
  if (at_least ? total < target : total <= target) {
    cut->all = true;
    free(hist);
    return FC_OK;
  }
  int64_t cum = 0;
  uint32_t hi = crossing(hist, N_HI, target, at_least, &cum);
  memset(hist, 0, N_LO * sizeof *hist);
  for (size_t l = 0; l < L->n; l++) {
    if (!list_on(L, l)) continue;
    const float *k = L->keys[l];
    for (int64_t j = 0; j < L->len[l]; j++) {
      uint32_t key = key_of(k, j);
      if ((key >> 16) == hi) hist[key & 0xffffu] += item_weight(L, l, j, key);
    }
  }
  uint32_t lo = crossing(hist, N_LO, target, at_least, &cum);
  free(hist);
  cut->key = hi << 16 | lo;
  cut->tie_budget = target - cum;
  return FC_OK;
}

void fc_rank_apply(const fc_rank_list *L, const fc_rank_cut *cut, void (*take)(size_t l, int64_t j, void *ctx),
                   void *ctx, int64_t *taken) {
  int64_t run = 0;
  bool ties_open = true; /* the prefix ends at the first tie that is not taken */
  for (size_t l = 0; l < L->n; l++) {
    int64_t cnt = 0;
    if (list_on(L, l)) {
      const float *k = L->keys[l];
      for (int64_t j = 0; j < L->len[l]; j++) {
        uint32_t key = key_of(k, j);
        bool in = cut->all || key < cut->key;
        if (!in && key == cut->key && ties_open) {
          int64_t w = item_weight(L, l, j, key);
          in = cut->at_least ? run < cut->tie_budget : run + w <= cut->tie_budget;
          if (in) run += w;
          else ties_open = false;
        }
        if (!in) continue;
        cnt++;
        if (take) take(l, j, ctx);
      }
    }
    if (taken) taken[l] = cnt;
  }
}
