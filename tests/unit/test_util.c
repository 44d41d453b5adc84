/* Unit tests: checked arithmetic, dtype access, input-shape parsing. */
#include <stdint.h>
#include <string.h>
#include "flopcut.h"
#include "graph/graph.h"
#include "harness.h"
#include "util/mem.h"

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

TEST_TABLE(fc_tests_util) = {
    {"mul_overflow", test_mul_overflow},
    {"dtype_access", test_dtype_access},
    {"input_shape_parse", test_input_shape_parse},
    {NULL, NULL},
};
