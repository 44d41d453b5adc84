/* Unit tests: checked arithmetic, dtype access, input-shape parsing, work ranges. */
#include <stdint.h>
#include <string.h>
#include "flopcut.h"
#include "graph/graph.h"
#include "harness.h"
#include "util/mem.h"
#include "util/work_range.h"
#include <omp.h>
#include <stdatomic.h>

static void test_mul_overflow(void) {
  int64_t r;
  CHECK(fc_mul_i64(3, 4, &r) && r == 12);
  CHECK(!fc_mul_i64(INT64_MAX / 2, 3, &r));
  CHECK(!fc_mul_i64(-1, 3, &r));
  CHECK(fc_add_i64(1, 2, &r) && r == 3);
  CHECK(!fc_add_i64(INT64_MAX, 1, &r));
}

static void test_dtype_access(void) {
  int64_t i64[2] = {-5, 7};
  CHECK_EQ_I64(fc_data_get_i64(FC_DT_INT64, i64, 0), -5);
  uint16_t half_one = 0x3c00, half_minus_two = 0xc000;
  CHECK(fc_data_get_f64(FC_DT_FLOAT16, &half_one, 0) == 1.0);
  CHECK(fc_data_get_f64(FC_DT_FLOAT16, &half_minus_two, 0) == -2.0);
  float f[1];
  fc_data_set_f64(FC_DT_FLOAT, f, 0, 2.5);
  CHECK(f[0] == 2.5f);
  CHECK(fc_dtype_size(FC_DT_STRING) == 0);
}

static void test_input_shape_parse(void) {
  fc_ctx *ctx = fc_ctx_create();
  fc_input_shape s;
  CHECK(fc_input_shape_parse(ctx, "images=1x3x640x640", &s) == FC_OK);
  CHECK_EQ_I64(s.rank, 4);
  CHECK_EQ_I64(s.dims[3], 640);
  CHECK(strncmp(s.name, "images=", 7) == 0);
  CHECK(fc_input_shape_parse(ctx, "x=1x0", &s) == FC_ERR_ARG);
  CHECK(strstr(fc_ctx_error(ctx), "positive") != NULL);
  CHECK(fc_input_shape_parse(ctx, "noshape", &s) == FC_ERR_ARG);
  CHECK(fc_input_shape_parse(ctx, "x=1x2x3x4x5x6x7x8x9", &s) == FC_ERR_ARG);
  CHECK(fc_input_shape_parse(ctx, "a=b=2x3", &s) == FC_OK && s.rank == 2);
  fc_ctx_free(ctx);
}

/* One thread: the owner's end counts up, the helper's end counts down, and they meet once. */
static void test_work_range_order(void) {
  fc_work_range r;
  fc_work_range_init(&r, 3, 7);
  CHECK_EQ_I64(fc_work_range_take(&r, 0), 3);
  CHECK_EQ_I64(fc_work_range_take(&r, 1), 6);
  CHECK_EQ_I64(fc_work_range_take(&r, 0), 4);
  CHECK_EQ_I64(fc_work_range_take(&r, 1), 5);
  CHECK_EQ_I64(fc_work_range_take(&r, 0), -1);
  CHECK_EQ_I64(fc_work_range_take(&r, 1), -1);
  fc_work_range_init(&r, 0, 0);
  CHECK_EQ_I64(fc_work_range_take(&r, 0), -1);
}

/* Four threads, one with far more items than the others: every item is taken exactly once, and
 * the idle threads do take some of the busy one's. */
static void test_work_range_threads(void) {
  enum { NT = 4, BIG = 4000, SMALL = 8, ITEMS = BIG + (NT - 1) * SMALL };
  static _Atomic int taken[ITEMS];
  static _Atomic int by_helpers;
  int team = 1;
  for (int i = 0; i < ITEMS; i++) atomic_init(&taken[i], 0);
  atomic_init(&by_helpers, 0);
  fc_work_range q[NT];
  fc_work_range_init(&q[0], 0, BIG);
  for (int k = 1; k < NT; k++) fc_work_range_init(&q[k], BIG + (k - 1) * SMALL, BIG + k * SMALL);
#pragma omp parallel num_threads(NT)
  {
    int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    if (tid == 0) team = nth;
    volatile double sink = 0;
    for (int64_t it; (it = fc_work_range_take(&q[tid], 0)) >= 0;) {
      atomic_fetch_add(&taken[it], 1);
      for (int s = 0; s < 2000; s++) sink += s; /* an item takes some time, so the others catch up */
    }
    for (int k = 1; k < nth; k++)
      for (int64_t it; (it = fc_work_range_take(&q[(tid + k) % nth], 1)) >= 0;) {
        atomic_fetch_add(&taken[it], 1);
        atomic_fetch_add(&by_helpers, 1);
      }
    (void)sink;
  }
  int once = 1;
  for (int i = 0; i < ITEMS; i++) once &= atomic_load(&taken[i]) == 1;
  CHECK(once);
  if (team > 1) CHECK(atomic_load(&by_helpers) > 0);
}

TEST_TABLE(fc_tests_util) = {
    {"mul_overflow", test_mul_overflow},
    {"dtype_access", test_dtype_access},
    {"input_shape_parse", test_input_shape_parse},
    {"work_range_order", test_work_range_order},
    {"work_range_threads", test_work_range_threads},
    {NULL, NULL},
};
