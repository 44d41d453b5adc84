/* Unit tests for flopcut eval's model-free part (src/eval/batch.c): matching image files to model
 * inputs, label and normalisation checks, batch filling and top-k ranks. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "eval/eval.h"
#include "harness.h"

static fc_array make_array(int dtype, void *data, int rank, const int64_t *dims) {
  fc_array a;
  memset(&a, 0, sizeof a);
  a.dtype = dtype;
  a.rank = rank;
  a.count = 1;
  for (int d = 0; d < rank; d++) a.dims[d] = dims[d], a.count *= dims[d];
  a.data = data;
  return a;
}

static void test_geom(void) {
  fc_err err = {0};
  fc_eval_geom g;
  static uint8_t px[2 * 3 * 4 * 5];
  const int64_t model[4] = {-1, 1, 28, 28}, rgb[4] = {1, 3, 4, 5};
  /* N×H×W into a 1-channel model */
  fc_array a = make_array(FC_DT_UINT8, px, 3, (int64_t[]){2, 28, 28});
  static uint8_t big[2 * 28 * 28];
  a.data = big;
  CHECK(fc_eval_geom_match(&a, "f", 4, model, FC_EVAL_LAYOUT_AUTO, &g, &err) == FC_OK);
  CHECK(g.c == 1 && g.h == 28 && g.w == 28 && !g.nhwc && g.n == 2 && g.per_image == 784);
  CHECK(g.model_dims[0] == -1 && g.model_dims[1] == 1 && g.model_dims[3] == 28);
  /* N×784 reshaped onto a fixed 1×28×28 input */
  a = make_array(FC_DT_UINT8, big, 2, (int64_t[]){2, 784});
  CHECK(fc_eval_geom_match(&a, "f", 4, model, FC_EVAL_LAYOUT_AUTO, &g, &err) == FC_OK);
  /* 4-D files: NCHW fits directly, NHWC is found by auto and forced by --layout */
  a = make_array(FC_DT_UINT8, px, 4, (int64_t[]){2, 3, 4, 5});
  CHECK(fc_eval_geom_match(&a, "f", 4, rgb, FC_EVAL_LAYOUT_AUTO, &g, &err) == FC_OK && !g.nhwc);
  a = make_array(FC_DT_UINT8, px, 4, (int64_t[]){2, 4, 5, 3});
  CHECK(fc_eval_geom_match(&a, "f", 4, rgb, FC_EVAL_LAYOUT_AUTO, &g, &err) == FC_OK && g.nhwc);
  CHECK(g.c == 3 && g.h == 4 && g.w == 5);
  CHECK(err.status == FC_OK);
  /* a fully dynamic model takes the file's dims; NCHW unless told otherwise */
  const int64_t dyn[4] = {-1, -1, -1, -1};
  CHECK(fc_eval_geom_match(&a, "f", 4, dyn, FC_EVAL_LAYOUT_AUTO, &g, &err) == FC_OK && !g.nhwc && g.c == 4);
  CHECK(fc_eval_geom_match(&a, "f", 4, dyn, FC_EVAL_LAYOUT_NHWC, &g, &err) == FC_OK && g.nhwc && g.c == 3);
  CHECK(g.model_dims[1] == 3 && g.model_dims[2] == 4 && g.model_dims[3] == 5);
  /* mismatches name the file and suggest --layout */
  CHECK(fc_eval_geom_match(&a, "imgs.npy", 4, rgb, FC_EVAL_LAYOUT_NCHW, &g, &err) == FC_ERR_SHAPE);
  CHECK(strstr(err.msg, "imgs.npy") && strstr(err.msg, "2x4x5x3") && strstr(err.msg, "1x3x4x5"));
  CHECK(strstr(err.msg, "--layout nhwc") != NULL);
  fc_err_clear(&err);
  a = make_array(FC_DT_UINT8, big, 3, (int64_t[]){2, 28, 28});
  CHECK(fc_eval_geom_match(&a, "f", 4, rgb, FC_EVAL_LAYOUT_AUTO, &g, &err) == FC_ERR_SHAPE);
  fc_err_clear(&err);
  /* a flat model input [N, 784] */
  const int64_t flat[2] = {-1, 784};
  CHECK(fc_eval_geom_match(&a, "f", 2, flat, FC_EVAL_LAYOUT_AUTO, &g, &err) == FC_OK && g.w == 784);
  CHECK(fc_eval_geom_match(&a, "f", 2, flat, FC_EVAL_LAYOUT_NHWC, &g, &err) == FC_ERR_ARG);
  fc_err_clear(&err);
  a = make_array(FC_DT_UINT8, big, 1, (int64_t[]){1568});
  CHECK(fc_eval_geom_match(&a, "f", 2, flat, FC_EVAL_LAYOUT_AUTO, &g, &err) == FC_ERR_ARG);
  fc_err_clear(&err);
  CHECK(fc_eval_geom_match(&a, "f", 1, flat, FC_EVAL_LAYOUT_AUTO, &g, &err) == FC_ERR_UNSUPPORTED);
  fc_err_clear(&err);
  /* dims straight from a hostile file: their product overflows and must simply not match */
  const int64_t huge4[4] = {-1, INT64_C(1) << 62, INT64_C(1) << 62, 4}, huge3[3] = {-1, INT64_C(1) << 62, 16};
  a = make_array(FC_DT_UINT8, big, 2, (int64_t[]){2, 784});
  CHECK(fc_eval_geom_match(&a, "f", 4, huge4, FC_EVAL_LAYOUT_AUTO, &g, &err) == FC_ERR_SHAPE);
  fc_err_clear(&err);
  CHECK(fc_eval_geom_match(&a, "f", 3, huge3, FC_EVAL_LAYOUT_AUTO, &g, &err) == FC_ERR_SHAPE);
}

static void test_labels(void) {
  fc_err err = {0};
  uint8_t l8[3] = {0, 9, 3};
  fc_array l = make_array(FC_DT_UINT8, l8, 1, (int64_t[]){3});
  CHECK(fc_eval_check_labels(&l, "l", 3, 10, &err) == FC_OK);
  CHECK_EQ_I64(fc_eval_label(&l, 1), 9);
  CHECK(fc_eval_check_labels(&l, "l", 3, 9, &err) == FC_ERR_ARG); /* 9 is outside 9 classes */
  CHECK(strstr(err.msg, "label 1 of 'l' is 9") != NULL);
  fc_err_clear(&err);
  CHECK(fc_eval_check_labels(&l, "l", 4, 10, &err) == FC_ERR_ARG);
  fc_err_clear(&err);
  int64_t l64[2] = {-1, 2};
  l = make_array(FC_DT_INT64, l64, 2, (int64_t[]){2, 1});
  CHECK(fc_eval_check_labels(&l, "l", 2, 0, &err) == FC_OK); /* classes unknown yet: shape only */
  CHECK(fc_eval_check_labels(&l, "l", 2, 10, &err) == FC_ERR_ARG);
  fc_err_clear(&err);
  float lf[2] = {1, 2};
  l = make_array(FC_DT_FLOAT, lf, 1, (int64_t[]){2});
  CHECK(fc_eval_check_labels(&l, "l", 2, 10, &err) == FC_ERR_ARG);
  CHECK(strstr(err.msg, "integer") != NULL);
}

static void test_fill(void) {
  fc_err err = {0};
  /* two NHWC 1×2 images with 3 channels: pixel p, channel c holds 10*p + c (+100 for image 1) */
  uint8_t px[2 * 2 * 3];
  for (int n = 0; n < 2; n++)
    for (int p = 0; p < 2; p++)
      for (int c = 0; c < 3; c++) px[(n * 2 + p) * 3 + c] = (uint8_t)(100 * n + 10 * p + c);
  fc_array a = make_array(FC_DT_UINT8, px, 4, (int64_t[]){2, 1, 2, 3});
  fc_eval_geom g;
  const int64_t model[4] = {-1, 3, 1, 2};
  CHECK(fc_eval_geom_match(&a, "f", 4, model, FC_EVAL_LAYOUT_AUTO, &g, &err) == FC_OK && g.nhwc);
  fc_eval_options o;
  fc_eval_options_default(&o);
  o.scale = 1;
  o.n_mean = 3, o.mean[0] = 0, o.mean[1] = 1, o.mean[2] = 2;
  o.n_std = 1, o.std[0] = 2;
  double scale;
  CHECK(fc_eval_check_norm(&o, &a, &g, &scale, &err) == FC_OK && scale == 1);
  float out[3 * 6];
  memset(out, 0xff, sizeof out);
  fc_eval_fill_batch(&a, &g, scale, &o, 1, 1, 3, out); /* image 1 only, padded to a batch of 3 */
  /* NCHW: channel c, pixel p = (100 + 10p + c - c) / 2 */
  CHECK(out[0] == 50.0f && out[1] == 55.0f && out[2] == 50.0f && out[5] == 55.0f);
  for (int i = 6; i < 18; i++) CHECK(out[i] == 0.0f);
  /* the default scale for uint8 is 1/255, bit-identical to float32 x / 255 */
  fc_eval_options_default(&o);
  CHECK(fc_eval_check_norm(&o, &a, &g, &scale, &err) == FC_OK);
  fc_eval_fill_batch(&a, &g, scale, &o, 0, 2, 2, out);
  CHECK(out[6 + 1] == (float)110 / 255.0f); /* image 1, channel 0, pixel 1 */
  float fpx[1] = {0.5f};
  fc_array fa = make_array(FC_DT_FLOAT, fpx, 2, (int64_t[]){1, 1});
  CHECK(fc_eval_check_norm(&o, &fa, &g, &scale, &err) == FC_OK && scale == 1.0);
  /* bad normalisation options */
  o.n_mean = 2;
  CHECK(fc_eval_check_norm(&o, &a, &g, &scale, &err) == FC_ERR_ARG);
  fc_err_clear(&err);
  o.n_mean = 0, o.n_std = 1, o.std[0] = 0;
  CHECK(fc_eval_check_norm(&o, &a, &g, &scale, &err) == FC_ERR_ARG);
}

static void test_rank(void) {
  const float l[6] = {0.1f, 2.0f, -1.0f, 2.0f, 0.5f, 3.0f};
  CHECK_EQ_I64(fc_eval_rank(l, 6, 5), 0);
  CHECK_EQ_I64(fc_eval_rank(l, 6, 1), 1); /* tie with class 3: the lower index wins, as argmax */
  CHECK_EQ_I64(fc_eval_rank(l, 6, 3), 2);
  CHECK_EQ_I64(fc_eval_rank(l, 6, 2), 5);
  CHECK_EQ_I64(fc_eval_rank(l, 6, 6), 6); /* out of range ranks last */
  const float n[3] = {NAN, 1.0f, 0.0f};
  CHECK_EQ_I64(fc_eval_rank(n, 3, 0), 3);
  CHECK_EQ_I64(fc_eval_rank(n, 3, 1), 1); /* a NaN score counts as above every number */
}

TEST_TABLE(fc_tests_eval) = {
    {"eval_geom", test_geom},
    {"eval_labels", test_labels},
    {"eval_fill", test_fill},
    {"eval_rank", test_rank},
    {NULL, NULL},
};
