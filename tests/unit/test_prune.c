/* Unit tests: the global-order prefix selection (exact counts, ties, weights, NaN) against a
 * brute-force sort, and the N:M group rule. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "prune/prune.h"
#include "prune/rank.h"

typedef struct taken_log {
  int marks[4][64];
} taken_log;

static void mark(size_t l, int64_t j, void *ctx) { ((taken_log *)ctx)->marks[l][j] = 1; }

static void test_rank_exact_count_ties(void) {
  const float a[] = {3, 1, 2, -2}, b[] = {2, 0, -5};
  const float *keys[] = {a, b};
  int64_t len[] = {4, 3};
  fc_rank_list L = {.n = 2, .keys = keys, .len = len};
  fc_err err = {0};
  fc_rank_cut cut;
  taken_log log;
  int64_t taken[2];
  /* order: b0(0) a1(1) a2(2) a3(|-2|) b0(2) ... : the third pick is the first tie, a[2] */
  CHECK(fc_rank_find(&L, 3, false, &cut, &err) == FC_OK);
  memset(&log, 0, sizeof log);
  fc_rank_apply(&L, &cut, mark, &log, taken);
  CHECK_EQ_I64(taken[0] + taken[1], 3);
  CHECK(log.marks[1][1] && log.marks[0][1] && log.marks[0][2]);
  CHECK(!log.marks[0][3] && !log.marks[1][0]);
  /* four: both ties of list a, none of list b */
  CHECK(fc_rank_find(&L, 4, false, &cut, &err) == FC_OK);
  memset(&log, 0, sizeof log);
  fc_rank_apply(&L, &cut, mark, &log, taken);
  CHECK(log.marks[0][3] && !log.marks[1][0]);
  /* zero and everything */
  CHECK(fc_rank_find(&L, 0, false, &cut, &err) == FC_OK);
  fc_rank_apply(&L, &cut, NULL, NULL, taken);
  CHECK_EQ_I64(taken[0] + taken[1], 0);
  CHECK(fc_rank_find(&L, 99, false, &cut, &err) == FC_OK);
  fc_rank_apply(&L, &cut, NULL, NULL, taken);
  CHECK_EQ_I64(taken[0] + taken[1], 7);
}

static void test_rank_weighted_at_least(void) {
  /* units 10 and 1: the shortest prefix saving ≥ 11 */
  const float a[] = {0, 1, 4}, b[] = {2, 3};
  const float *keys[] = {a, b};
  int64_t len[] = {3, 2}, unit[] = {10, 1};
  fc_rank_list L = {.n = 2, .keys = keys, .len = len, .unit = unit, .zero_weightless = true};
  fc_err err = {0};
  fc_rank_cut cut;
  int64_t taken[2];
  CHECK(fc_rank_find(&L, 11, true, &cut, &err) == FC_OK); /* 0 (free), 1 (10), 2 (1) */
  fc_rank_apply(&L, &cut, NULL, NULL, taken);
  CHECK_EQ_I64(taken[0], 2);
  CHECK_EQ_I64(taken[1], 1);
  CHECK(fc_rank_find(&L, 10, true, &cut, &err) == FC_OK);
  fc_rank_apply(&L, &cut, NULL, NULL, taken);
  CHECK_EQ_I64(taken[0], 2);
  CHECK_EQ_I64(taken[1], 0);
  CHECK(fc_rank_find(&L, 1000, true, &cut, &err) == FC_OK && cut.all);
}

static void test_rank_nan_inf_kept_last(void) {
  const float a[] = {NAN, INFINITY, -1e30f, 1e-30f};
  const float *keys[] = {a};
  int64_t len[] = {4};
  fc_rank_list L = {.n = 1, .keys = keys, .len = len};
  fc_err err = {0};
  fc_rank_cut cut;
  taken_log log;
  memset(&log, 0, sizeof log);
  CHECK(fc_rank_find(&L, 3, false, &cut, &err) == FC_OK);
  fc_rank_apply(&L, &cut, mark, &log, NULL);
  CHECK(!log.marks[0][0] && log.marks[0][1] && log.marks[0][2] && log.marks[0][3]);
}

/* Brute force: items sorted by (|key|, list, index), weights summed in that order. */
typedef struct item {
  float mag;
  int l, j;
  int64_t w;
} item;

static int item_cmp(const void *x, const void *y) {
  const item *a = x, *b = y;
  if (a->mag != b->mag) return a->mag < b->mag ? -1 : 1;
  if (a->l != b->l) return a->l - b->l;
  return a->j - b->j;
}

static uint32_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (uint32_t)(*s >> 33);
}

static void test_rank_matches_sort(void) {
  enum { NL = 3, NJ = 64 };
  uint64_t seed = 42;
  for (int trial = 0; trial < 200; trial++) {
    float data[NL][NJ];
    const float *keys[NL];
    int64_t len[NL], unit[NL];
    item items[NL * NJ];
    int n = 0;
    for (int l = 0; l < NL; l++) {
      len[l] = 1 + lcg(&seed) % NJ;
      unit[l] = 1 + lcg(&seed) % 5;
      keys[l] = data[l];
      for (int j = 0; j < len[l]; j++) {
        /* few distinct values: many ties, some in the same histogram bucket */
        float v = (float)(lcg(&seed) % 9) * (trial % 2 ? 0.25f : 1.0f) * ((lcg(&seed) & 1) ? -1.0f : 1.0f);
        if (trial % 3 == 0) v *= 1.0f + (float)(lcg(&seed) % 4) * 1e-7f;
        data[l][j] = v;
        items[n++] = (item){fabsf(v), l, j, v == 0.0f && trial % 4 == 0 ? 0 : unit[l]};
      }
    }
    qsort(items, (size_t)n, sizeof *items, item_cmp);
    bool at_least = trial % 4 == 0;
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += items[i].w;
    int64_t target = at_least || trial % 2 ? (int64_t)(lcg(&seed) % (uint32_t)(total + 2)) : lcg(&seed) % (uint32_t)(n + 1);
    fc_rank_list L = {.n = NL, .keys = keys, .len = len, .unit = at_least || trial % 2 ? unit : NULL,
                      .zero_weightless = at_least};
    int expect[NL][NJ];
    memset(expect, 0, sizeof expect);
    int64_t run = 0;
    for (int i = 0; i < n; i++) {
      int64_t w = L.unit ? items[i].w : 1;
      if (at_least ? run >= target : run + w > target) break;
      run += w;
      expect[items[i].l][items[i].j] = 1;
    }
    fc_err err = {0};
    fc_rank_cut cut;
    taken_log log;
    memset(&log, 0, sizeof log);
    CHECK(fc_rank_find(&L, target, at_least, &cut, &err) == FC_OK);
    fc_rank_apply(&L, &cut, mark, &log, NULL);
    int bad = 0;
    for (int l = 0; l < NL; l++)
      for (int j = 0; j < len[l]; j++) bad += expect[l][j] != log.marks[l][j];
    if (bad) fprintf(stderr, "  trial %d (target %lld, at_least %d): %d items differ\n", trial, (long long)target, at_least, bad);
    CHECK(bad == 0);
  }
}

static void test_keep_largest_group(void) {
  float g[] = {0.5f, -0.1f, 0.3f, -0.7f};
  fc_prune_keep_largest(g, 1, 4, 2);
  CHECK(g[0] == 0.5f && g[1] == 0.0f && g[2] == 0.0f && g[3] == -0.7f);
  float t[] = {1, 9, 1, 9, 1, 9, 1, 9}; /* strided: every other element is one group */
  fc_prune_keep_largest(t, 2, 4, 2);
  CHECK(t[0] == 0 && t[2] == 0 && t[4] == 1 && t[6] == 1); /* ties: earlier ones go first */
  CHECK(t[1] == 9 && t[7] == 9);
  float z[] = {NAN, 1, 2, 3};
  fc_prune_keep_largest(z, 1, 4, 1);
  CHECK(isnan(z[0]) && z[1] == 0 && z[2] == 0 && z[3] == 0);
}

TEST_TABLE(fc_tests_prune) = {
    {"rank_exact_count_ties", test_rank_exact_count_ties},
    {"rank_weighted_at_least", test_rank_weighted_at_least},
    {"rank_nan_inf_kept_last", test_rank_nan_inf_kept_last},
    {"rank_matches_sort", test_rank_matches_sort},
    {"keep_largest_group", test_keep_largest_group},
    {NULL, NULL},
};
