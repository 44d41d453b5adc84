/* Exact selection of a prefix of items in ascending magnitude order across many lists (layers),
 * by count or by weight (MACs), in O(items) with two histogram passes instead of a sort. */
#ifndef FC_PRUNE_RANK_H
#define FC_PRUNE_RANK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

/* Items are ordered by (|key|, list, index): keys are 32-bit floats read as their bits with the
 * sign bit dropped, which order like the magnitudes themselves; NaN sorts after +inf. An item weighs
 * unit[l] × mult[l][j] (mult NULL or mult[l] NULL: 1); with zero_weightless, items whose key is 0
 * weigh nothing (a weight already zero saves no MACs). */
typedef struct fc_rank_list {
  size_t n;                     /* number of lists */
  const float *const *keys;     /* keys[l][0..len[l]): weights or block scores */
  const int64_t *len;
  const int64_t *unit;          /* NULL: 1 */
  const int32_t *const *mult;   /* NULL: 1 */
  const bool *active;           /* NULL: every list; inactive lists are skipped entirely */
  bool zero_weightless;
} fc_rank_list;

/* The chosen prefix: every item with |key| < key, then items equal to key in (list, index) order
 * while the tie rule allows. */
typedef struct fc_rank_cut {
  uint32_t key;
  int64_t tie_budget; /* weight left for items equal to key */
  bool at_least;      /* ties: take while the running weight is below the budget (else: while it fits) */
  bool all;           /* every item is taken */
} fc_rank_cut;

/* Shortest prefix whose weight is ≥ target (at_least), or longest prefix whose weight is ≤ target.
 * With unit weights and !at_least this is exactly the `target` smallest items. */
fc_status fc_rank_find(const fc_rank_list *L, int64_t target, bool at_least, fc_rank_cut *cut, fc_err *err);

/* Visits the prefix in order: take(l, j, ctx) for each item (may be NULL); taken[l] (may be NULL)
 * receives the number of items taken from list l. */
void fc_rank_apply(const fc_rank_list *L, const fc_rank_cut *cut, void (*take)(size_t l, int64_t j, void *ctx),
                   void *ctx, int64_t *taken);
#endif
