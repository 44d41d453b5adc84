/* Unit tests of the non-matrix kernels against the scalar references (src/kernels/ref/ref_ops.c) on
 * seeded random shapes with vector tails, broadcasting, padding and 1 vs 2 threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "graph/graph.h"
#include "harness.h"
#include "kernels/ref/ref_ops.h"
#include "ops/ops.h"
#include "runtime/kernel.h"
#include "util/mem.h"

extern const fc_kernel fc_kernels_eltwise[], fc_kernels_pool[], fc_kernels_norm[], fc_kernels_shape[],
    fc_kernels_resize[];

/* ------------------------------------------------------------------ a one-node graph builder */

typedef struct kt {
  fc_graph *g;
  const void *in[16];
  void *out[8];
} kt;

static uint64_t rng_state = 88172645463325252ull;
static float frand(float lo, float hi) {
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
  return lo + (hi - lo) * (float)((rng_state >> 40) / 16777216.0);
}
static int64_t irand(int64_t lo, int64_t hi) { return lo + (int64_t)(frand(0, 1) * (float)(hi - lo + 1)) % (hi - lo + 1); }

static float *rand_floats(int64_t n, float lo, float hi) {
  float *p = malloc((size_t)(n ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) p[i] = frand(lo, hi);
  return p;
}

static fc_node *kt_node(kt *t) { return &t->g->nodes[0]; }

static void kt_init(kt *t, const char *op, int64_t opset) {
  memset(t, 0, sizeof *t);
  t->g = fc_graph_new();
  t->g->opset = opset;
  t->g->nodes = fc_calloc(1, sizeof(fc_node));
  t->g->n_nodes = 1;
  fc_node *n = kt_node(t);
  n->name = fc_strdup("k");
  n->op_type = fc_strdup(op);
  n->domain = fc_strdup("");
  n->inputs = fc_calloc(16, sizeof(int));
  n->outputs = fc_calloc(8, sizeof(int));
  n->attrs = fc_calloc(16, sizeof(fc_attr));
}

/* Adds an input; constant inputs are copied into the value's data, others fed from `data` at run. */
static void kt_in(kt *t, int dtype, int rank, const int64_t *dims, const void *data, bool constant) {
  fc_node *n = kt_node(t);
  char name[16];
  snprintf(name, sizeof name, "in%d", n->n_inputs);
  int v = fc_graph_value(t->g, name);
  fc_value *val = &t->g->values[v];
  val->dtype = dtype;
  val->rank = rank;
  for (int d = 0; d < rank; d++) val->dims[d] = dims[d];
  if (constant) {
    size_t bytes = (size_t)fc_value_numel(val) * fc_dtype_size(dtype);
    val->data = fc_malloc(bytes);
    memcpy(val->data, data, bytes);
    val->is_initializer = true;
  } else {
    val->is_graph_input = true;
  }
  t->in[n->n_inputs] = constant ? val->data : data;
  n->inputs[n->n_inputs++] = v;
}

static void kt_in_none(kt *t) {
  fc_node *n = kt_node(t);
  t->in[n->n_inputs] = NULL;
  n->inputs[n->n_inputs++] = -1;
}

static fc_attr *kt_attr(kt *t, const char *name, int type) {
  fc_node *n = kt_node(t);
  fc_attr *a = &n->attrs[n->n_attrs++];
  a->name = fc_strdup(name);
  a->type = type;
  return a;
}
static void kt_int(kt *t, const char *name, int64_t v) { kt_attr(t, name, FC_ATTR_INT)->i = v; }
static void kt_float(kt *t, const char *name, float v) { kt_attr(t, name, FC_ATTR_FLOAT)->f = v; }
static void kt_str(kt *t, const char *name, const char *v) { kt_attr(t, name, FC_ATTR_STRING)->s = fc_strdup(v); }
static void kt_ints(kt *t, const char *name, const int64_t *v, int n) {
  fc_attr *a = kt_attr(t, name, FC_ATTR_INTS);
  a->ints = fc_malloc((size_t)n * sizeof(int64_t) + 1);
  memcpy(a->ints, v, (size_t)n * sizeof(int64_t));
  a->n_ints = (size_t)n;
}

static const fc_value *kt_outv(kt *t, int i) { return fc_node_out(t->g, kt_node(t), i); }

/* Infers the output shapes, allocates them, and runs the kernel from `table`. */
static bool kt_run(kt *t, const fc_kernel *table, int n_out, int threads) {
  fc_node *n = kt_node(t);
  for (int i = 0; i < n_out; i++) {
    char name[16];
    snprintf(name, sizeof name, "out%d", i);
    n->outputs[n->n_outputs++] = fc_graph_value(t->g, name);
  }
  fc_err err = {0};
  n->def = fc_op_find(n->op_type);
  if (!n->def || n->def->infer(t->g, n, &err)) {
    fprintf(stderr, "  infer %s: %s\n", n->op_type, err.msg);
    return false;
  }
  for (int i = 0; i < n_out; i++) {
    const fc_value *v = kt_outv(t, i);
    t->out[i] = fc_calloc((size_t)(fc_value_numel(v) + 1), fc_dtype_size(v->dtype));
  }
  const fc_kernel *k = table;
  while (k->op_type && strcmp(k->op_type, n->op_type)) k++;
  if (!k->op_type) return false;
  fc_exec_node en = {.g = t->g, .node = n, .threads = threads};
  if (k->prepare(&en, &err)) {
    fprintf(stderr, "  prepare %s: %s\n", n->op_type, err.msg);
    if (k->release) k->release(&en);
    return false;
  }
  void *scratch = en.scratch_bytes ? aligned_alloc(64, (en.scratch_bytes + 63) / 64 * 64) : NULL;
  fc_exec_io io = {t->in, t->out, scratch};
  k->run(&en, &io);
  free(scratch);
  if (k->release) k->release(&en);
  return true;
}

static void kt_free(kt *t) {
  for (int i = 0; i < 8; i++) free(t->out[i]);
  fc_graph_free(t->g);
}

/* max |a-b| / (atol + rtol |b|) <= 1 */
static bool close_enough(const float *a, const float *b, int64_t n, float rtol, float atol) {
  for (int64_t i = 0; i < n; i++) {
    if (isnan(b[i]) && isnan(a[i])) continue;
    if (isinf(b[i]) && a[i] == b[i]) continue;
    if (!(fabsf(a[i] - b[i]) <= atol + rtol * fabsf(b[i]))) {
      fprintf(stderr, "  element %lld: got %.9g, want %.9g\n", (long long)i, a[i], b[i]);
      return false;
    }
  }
  return true;
}

/* ------------------------------------------------------------------ elementwise */

static void test_unary_vs_ref(void) {
  static const char *ops[] = {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "Exp",
                              "Log", "Sqrt", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Round", "Elu", "Softplus",
                              "Gelu", "GeluTanh", "Sign"};
  int64_t sizes[] = {1, 15, 17, 1000, 70001};
  for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
      int64_t n = sizes[si];
      bool positive = !strcmp(ops[o], "Log") || !strcmp(ops[o], "Sqrt");
      float *x = rand_floats(n, positive ? 0.01f : -12.0f, 12.0f), *want = malloc((size_t)n * sizeof(float));
      if (n > 3 && !positive) x[0] = 0.0f, x[1] = -0.0001f, x[2] = 0.2f;
      kt t;
      bool gelu_tanh = !strcmp(ops[o], "GeluTanh");
      kt_init(&t, gelu_tanh ? "Gelu" : ops[o], 20);
      if (gelu_tanh) kt_str(&t, "approximate", "tanh");
      kt_in(&t, FC_DT_FLOAT, 1, &n, x, false);
      CHECK(kt_run(&t, fc_kernels_eltwise, 1, si & 1 ? 2 : 1));
      float alpha = !strcmp(ops[o], "LeakyRelu") ? 0.01f : !strcmp(ops[o], "HardSigmoid") ? 0.2f : 1.0f;
      fc_ref_unary(ops[o], x, want, n, alpha, 0.5f);
      /* erf's A&S tail is good to 1.5e-7 absolute: Gelu's 1 + erf(x) near -1 inherits it */
      bool erf_like = !strcmp(ops[o], "Erf") || !strncmp(ops[o], "Gelu", 4);
      if (!close_enough(t.out[0], want, n, 2e-6f, erf_like ? 1e-6f : 2e-7f)) {
        fprintf(stderr, "  op %s n=%lld\n", ops[o], (long long)n);
        fc_test_failures++;
      }
      kt_free(&t);
      free(x);
      free(want);
    }
}

/* Halves the largest dim until the shape holds at most `cap` elements (keeps tests fast under ASan). */
static void cap_shape(int64_t *dims, int r, int64_t cap) {
  for (;;) {
    int64_t n = 1;
    int big = 0;
    for (int d = 0; d < r; d++) {
      n *= dims[d];
      if (dims[d] > dims[big]) big = d;
    }
    if (n <= cap) return;
    dims[big] = (dims[big] + 1) / 2;
  }
}

static int rand_shape(int64_t *dims, int max_rank, int64_t max_dim) {
  int r = (int)irand(0, max_rank);
  for (int d = 0; d < r; d++) dims[d] = irand(1, max_dim);
  return r;
}

/* One binary op on operands of the given shapes against the reference; false on mismatch. */
static bool check_binary(const char *op, int ra, const int64_t *ad, int rb, const int64_t *bd, bool b_const, int threads) {
  int64_t an = 1, bn = 1, yn = 1;
  for (int d = 0; d < ra; d++) an *= ad[d];
  for (int d = 0; d < rb; d++) bn *= bd[d];
  bool pow = !strcmp(op, "Pow");
  float *a = rand_floats(an, pow ? 0.1f : -4.0f, 4.0f), *b = rand_floats(bn, pow ? -3.0f : -4.0f, 4.0f);
  if (!pow && an > 2 && bn > 2) a[1] = b[1]; /* exercise equality */
  kt t;
  kt_init(&t, op, 13);
  kt_in(&t, FC_DT_FLOAT, ra, ad, a, false);
  kt_in(&t, FC_DT_FLOAT, rb, bd, b, b_const);
  bool ok = kt_run(&t, fc_kernels_eltwise, 1, threads);
  const fc_value *y = kt_outv(&t, 0);
  for (int d = 0; d < y->rank; d++) yn *= y->dims[d];
  void *want = calloc((size_t)yn + 1, 4);
  fc_ref_binary(op, y->rank, y->dims, a, ra, ad, b, rb, bd, want);
  if (ok) ok = y->dtype == FC_DT_BOOL ? !memcmp(t.out[0], want, (size_t)yn) : close_enough(t.out[0], want, yn, pow ? 1e-6f : 0, 0);
  if (!ok) fprintf(stderr, "  %s: a rank %d, b rank %d, y rank %d\n", op, ra, rb, y->rank);
  kt_free(&t);
  free(a);
  free(b);
  free(want);
  return ok;
}

static void test_binary_broadcast_vs_ref(void) {
  static const char *ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Less", "Greater",
                              "LessOrEqual", "GreaterOrEqual"};
  /* shapes where merging dims must compare against the merged stride, not the original dim's */
  static const int64_t fixed[][2][5] = {
      {{2, 2, 1, 6, 16}, {2, 2, 4, 6, 16}}, {{3, 1, 5}, {1, 4, 1}}, {{1, 7, 1, 1}, {2, 7, 3, 3}},
      {{2, 3, 4, 5, 6}, {1, 3, 1, 5, 1}}, {{4, 1, 1, 3}, {4, 2, 2, 3}},
  };
  for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++) {
    int rank = fixed[f][0][3] ? (fixed[f][0][4] ? 5 : 4) : 3;
    CHECK(check_binary("Add", rank, fixed[f][0], rank, fixed[f][1], false, 1));
    CHECK(check_binary("Sub", rank, fixed[f][1], rank, fixed[f][0], true, 2));
  }
  for (int trial = 0; trial < 400; trial++) {
    const char *op = ops[trial % (sizeof ops / sizeof ops[0])];
    int64_t yd[5], ad[5], bd[5];
    int r = rand_shape(yd, 5, 7);
    if (trial % 7 == 0) r = 4, yd[0] = 2, yd[1] = 19, yd[2] = 33, yd[3] = 35; /* big enough for 2 threads */
    int ra = (int)irand(0, r), rb = (int)irand(0, r);
    for (int d = 0; d < ra; d++) ad[d] = frand(0, 1) < 0.3f ? 1 : yd[r - ra + d];
    for (int d = 0; d < rb; d++) bd[d] = frand(0, 1) < 0.3f ? 1 : yd[r - rb + d];
    CHECK(check_binary(op, ra, ad, rb, bd, trial % 5 == 0, trial & 1 ? 2 : 1));
  }
}

/* Expand walks one operand through the same broadcasting plan: no second operand can veto a
 * wrong merge of dims, so this is where a merging bug shows. */
static void test_expand_vs_ref(void) {
  for (int trial = 0; trial < 200; trial++) {
    int64_t yd[5], xd[5];
    int r = trial == 0 ? 5 : rand_shape(yd, 5, 6);
    if (trial == 0) yd[0] = 2, yd[1] = 2, yd[2] = 4, yd[3] = 6, yd[4] = 16;
    int rx = trial == 0 ? 5 : (int)irand(0, r);
    for (int d = 0; d < rx; d++) xd[d] = (trial == 0 ? d == 2 : frand(0, 1) < 0.4f) ? 1 : yd[r - rx + d];
    int64_t xn = 1, yn = 1, rr = r;
    for (int d = 0; d < rx; d++) xn *= xd[d];
    for (int d = 0; d < r; d++) yn *= yd[d];
    float *x = rand_floats(xn, -1, 1), *want = malloc((size_t)(yn + 1) * sizeof(float)), zero = 0;
    kt t;
    kt_init(&t, "Expand", 13);
    kt_in(&t, FC_DT_FLOAT, rx, xd, x, false);
    kt_in(&t, FC_DT_INT64, 1, &rr, yd, true);
    CHECK(kt_run(&t, fc_kernels_shape, 1, trial & 1 ? 2 : 1));
    fc_ref_binary("Add", r, yd, x, rx, xd, &zero, 0, NULL, want);
    if (memcmp(t.out[0], want, (size_t)yn * sizeof(float))) {
      fprintf(stderr, "  expand trial %d: rank %d from rank %d\n", trial, r, rx);
      fc_test_failures++;
    }
    kt_free(&t);
    free(x);
    free(want);
  }
}

static void test_integer_and_where(void) {
  /* int32 division truncates and never traps on zero; int64 broadcasting Add; Where picks by bool */
  int32_t a[4] = {7, -7, 5, 1}, b[4] = {2, 2, 0, -1};
  int64_t four = 4;
  kt t;
  kt_init(&t, "Div", 14);
  kt_in(&t, FC_DT_INT32, 1, &four, a, false);
  kt_in(&t, FC_DT_INT32, 1, &four, b, false);
  CHECK(kt_run(&t, fc_kernels_eltwise, 1, 1));
  int32_t *q = t.out[0];
  CHECK(q[0] == 3 && q[1] == -3 && q[2] == 0 && q[3] == -1);
  kt_free(&t);

  int64_t x[6] = {1, 2, 3, 4, 5, 6}, s[1] = {100}, xd[2] = {2, 3}, sd[1] = {1};
  kt_init(&t, "Add", 14);
  kt_in(&t, FC_DT_INT64, 2, xd, x, false);
  kt_in(&t, FC_DT_INT64, 1, sd, s, true);
  CHECK(kt_run(&t, fc_kernels_eltwise, 1, 1));
  CHECK(((int64_t *)t.out[0])[5] == 106);
  kt_free(&t);

  int64_t m[2] = {-7, 7}, d2[2] = {2, -2}, two = 2;
  kt_init(&t, "Mod", 13); /* fmod = 0: the result takes the divisor's sign */
  kt_in(&t, FC_DT_INT64, 1, &two, m, false);
  kt_in(&t, FC_DT_INT64, 1, &two, d2, false);
  CHECK(kt_run(&t, fc_kernels_eltwise, 1, 1));
  CHECK(((int64_t *)t.out[0])[0] == 1 && ((int64_t *)t.out[0])[1] == -1);
  kt_free(&t);

  uint8_t cond[3] = {1, 0, 1};
  float xs[2 * 3], ys[1] = {-1};
  for (int i = 0; i < 6; i++) xs[i] = (float)i;
  int64_t cd[1] = {3}, yd[1] = {1};
  kt_init(&t, "Where", 16);
  kt_in(&t, FC_DT_BOOL, 1, cd, cond, false);
  kt_in(&t, FC_DT_FLOAT, 2, xd, xs, false);
  kt_in(&t, FC_DT_FLOAT, 1, yd, ys, false);
  CHECK(kt_run(&t, fc_kernels_eltwise, 1, 1));
  float *w = t.out[0];
  CHECK(w[0] == 0 && w[1] == -1 && w[2] == 2 && w[3] == 3 && w[4] == -1 && w[5] == 5);
  kt_free(&t);
}

static void test_variadic_and_clip(void) {
  int64_t ad[2] = {3, 1}, bd[1] = {4}, cd[2] = {1, 4};
  float *a = rand_floats(3, -1, 1), *b = rand_floats(4, -1, 1), *c = rand_floats(4, -1, 1);
  kt t;
  kt_init(&t, "Mean", 13);
  kt_in(&t, FC_DT_FLOAT, 2, ad, a, false);
  kt_in(&t, FC_DT_FLOAT, 1, bd, b, false);
  kt_in(&t, FC_DT_FLOAT, 2, cd, c, false);
  CHECK(kt_run(&t, fc_kernels_eltwise, 1, 1));
  float *y = t.out[0];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) CHECK(fabsf(y[i * 4 + j] - (a[i] + b[j] + c[j]) / 3) < 1e-6f);
  kt_free(&t);

  float x[5] = {-3, -1, 0, 1, 3}, lo = -1.5f;
  int64_t five = 5, one = 1;
  kt_init(&t, "Clip", 13);
  kt_in(&t, FC_DT_FLOAT, 1, &five, x, false);
  kt_in(&t, FC_DT_FLOAT, 0, &one, &lo, false);
  CHECK(kt_run(&t, fc_kernels_eltwise, 1, 1));
  y = t.out[0];
  CHECK(y[0] == -1.5f && y[1] == -1 && y[4] == 3);
  kt_free(&t);
  free(a);
  free(b);
  free(c);
}

/* ------------------------------------------------------------------ pooling */

static void test_pool_vs_ref(void) {
  /* trials 120..135: 2-D MaxPool 2×2 stride 2 without padding (its own fast path), odd and even
   * sizes, ceil_mode on and off */
  for (int trial = 0; trial < 136; trial++) {
    const bool max2x2 = trial >= 120;
    fc_ref_pool_params p = {0};
    p.k = max2x2 ? 2 : 1 + trial % 3;
    p.is_max = max2x2 || trial % 2;
    p.include_pad = (trial / 2) % 2;
    p.n = irand(1, 2);
    p.c = irand(1, 5);
    bool ceil_mode = trial % 5 == 0;
    int64_t pads[6] = {0}, kernel[3] = {0}, strides[3] = {0}, dil[3] = {0}, xd[5] = {p.n, p.c};
    for (int d = 0; d < p.k; d++) {
      p.in[d] = irand(p.k == 3 ? 3 : 5, p.k == 3 ? 7 : 19);
      p.kernel[d] = kernel[d] = max2x2 ? 2 : irand(1, 3);
      p.stride[d] = strides[d] = max2x2 ? 2 : irand(1, 3);
      p.dil[d] = dil[d] = !max2x2 && trial % 4 == 3 ? 2 : 1;
      p.pad[d] = pads[d] = max2x2 ? 0 : irand(0, kernel[d] - 1);
      p.pad_end[d] = pads[p.k + d] = max2x2 ? 0 : irand(0, kernel[d] - 1);
      if (p.in[d] < (kernel[d] - 1) * dil[d] + 1) p.in[d] = (kernel[d] - 1) * dil[d] + 1;
      xd[2 + d] = p.in[d];
    }
    int64_t xn = p.n * p.c * p.in[0] * (p.k > 1 ? p.in[1] : 1) * (p.k > 2 ? p.in[2] : 1);
    float *x = rand_floats(xn, -5, 5);
    kt t;
    kt_init(&t, p.is_max ? "MaxPool" : "AveragePool", 19);
    kt_in(&t, FC_DT_FLOAT, 2 + p.k, xd, x, false);
    kt_ints(&t, "kernel_shape", kernel, p.k);
    kt_ints(&t, "strides", strides, p.k);
    kt_ints(&t, "pads", pads, 2 * p.k);
    kt_ints(&t, "dilations", dil, p.k);
    kt_int(&t, "ceil_mode", ceil_mode);
    if (!p.is_max) kt_int(&t, "count_include_pad", p.include_pad);
    CHECK(kt_run(&t, fc_kernels_pool, 1, trial % 3 ? 1 : 2));
    const fc_value *y = kt_outv(&t, 0);
    for (int d = 0; d < p.k; d++) p.out[d] = y->dims[2 + d];
    int64_t yn = fc_value_numel(y);
    float *want = malloc((size_t)(yn + 1) * sizeof(float));
    fc_ref_pool(&p, x, want);
    if (!close_enough(t.out[0], want, yn, 1e-6f, 1e-6f)) {
      fprintf(stderr, "  trial %d k=%d max=%d\n", trial, p.k, p.is_max);
      fc_test_failures++;
    }
    kt_free(&t);
    free(x);
    free(want);
  }
}

static void test_maxpool_indices_and_global(void) {
  float x[8] = {1, 5, 2, 3, 9, 0, 4, 4};
  int64_t xd[4] = {1, 2, 2, 2}, k[2] = {2, 2};
  kt t;
  kt_init(&t, "MaxPool", 12);
  kt_in(&t, FC_DT_FLOAT, 4, xd, x, false);
  kt_ints(&t, "kernel_shape", k, 2);
  CHECK(kt_run(&t, fc_kernels_pool, 2, 1));
  float *y = t.out[0];
  int64_t *idx = t.out[1];
  CHECK(y[0] == 5 && y[1] == 9 && idx[0] == 1 && idx[1] == 4);
  kt_free(&t);
  kt_init(&t, "GlobalAveragePool", 13);
  kt_in(&t, FC_DT_FLOAT, 4, xd, x, false);
  CHECK(kt_run(&t, fc_kernels_pool, 1, 1));
  y = t.out[0];
  CHECK(y[0] == 2.75f && y[1] == 4.25f);
  kt_free(&t);
}

/* ------------------------------------------------------------------ normalisation, reductions */

static void test_softmax_vs_ref(void) {
  for (int trial = 0; trial < 40; trial++) {
    int64_t dims[4];
    int r = 1 + (int)irand(0, 3);
    for (int d = 0; d < r; d++) dims[d] = irand(1, trial % 4 == 0 ? 300 : 9);
    cap_shape(dims, r, 100000);
    int64_t axis = irand(0, r - 1), n = 1;
    for (int d = 0; d < r; d++) n *= dims[d];
    bool legacy = trial % 3 == 0, log_ = trial % 2;
    float *x = rand_floats(n, -20, 20), *want = malloc((size_t)n * sizeof(float));
    kt t;
    kt_init(&t, log_ ? "LogSoftmax" : "Softmax", legacy ? 11 : 13);
    kt_in(&t, FC_DT_FLOAT, r, dims, x, false);
    kt_int(&t, "axis", axis);
    CHECK(kt_run(&t, fc_kernels_norm, 1, trial & 1 ? 2 : 1));
    int64_t outer = 1, len = dims[axis], inner = 1;
    for (int d = 0; d < axis; d++) outer *= dims[d];
    for (int d = (int)axis + 1; d < r; d++) inner *= dims[d];
    if (legacy) len *= inner, inner = 1;
    fc_ref_softmax(x, want, outer, len, inner, log_);
    if (!close_enough(t.out[0], want, n, 1e-5f, 1e-6f)) {
      fprintf(stderr, "  trial %d legacy=%d log=%d\n", trial, legacy, log_);
      fc_test_failures++;
    }
    kt_free(&t);
    free(x);
    free(want);
  }
}

static void test_layernorm_batchnorm(void) {
  int64_t xd[3] = {3, 7, 37}, sd[1] = {37}, n = 3 * 7 * 37;
  float *x = rand_floats(n, -3, 3), *sc = rand_floats(37, 0.5f, 2), *b = rand_floats(37, -1, 1);
  float *want = malloc((size_t)n * sizeof(float));
  kt t;
  kt_init(&t, "LayerNormalization", 17);
  kt_in(&t, FC_DT_FLOAT, 3, xd, x, false);
  kt_in(&t, FC_DT_FLOAT, 1, sd, sc, true);
  kt_in(&t, FC_DT_FLOAT, 1, sd, b, false);
  kt_float(&t, "epsilon", 1e-5f);
  CHECK(kt_run(&t, fc_kernels_norm, 1, 2));
  fc_ref_layernorm(x, sc, b, want, 21, 37, 1e-5f);
  CHECK(close_enough(t.out[0], want, n, 1e-5f, 1e-5f));
  kt_free(&t);

  /* BatchNormalization on [3, 7, 37] = per-channel affine; compare with the formula */
  int64_t cd[1] = {7};
  float *g = rand_floats(7, 0.5f, 2), *be = rand_floats(7, -1, 1), *mu = rand_floats(7, -1, 1), *var = rand_floats(7, 0.1f, 2);
  kt_init(&t, "BatchNormalization", 15);
  kt_in(&t, FC_DT_FLOAT, 3, xd, x, false);
  kt_in(&t, FC_DT_FLOAT, 1, cd, g, true);
  kt_in(&t, FC_DT_FLOAT, 1, cd, be, true);
  kt_in(&t, FC_DT_FLOAT, 1, cd, mu, false); /* run-time statistics use the scratch path */
  kt_in(&t, FC_DT_FLOAT, 1, cd, var, true);
  CHECK(kt_run(&t, fc_kernels_norm, 1, 1));
  float *y = t.out[0];
  for (int64_t i = 0; i < n; i++) {
    int64_t c = (i / 37) % 7;
    float ref = (float)((x[i] - mu[c]) / sqrt(var[c] + 1e-5) * g[c] + be[c]);
    if (fabsf(y[i] - ref) > 1e-5f) {
      fc_test_failures++;
      break;
    }
  }
  kt_free(&t);
  free(x), free(sc), free(b), free(want), free(g), free(be), free(mu), free(var);
}

static void test_reduce_vs_ref(void) {
  static const char *ops[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2"};
  for (int trial = 0; trial < 120; trial++) {
    const char *op = ops[trial % 6];
    int64_t dims[5];
    int r = 1 + (int)irand(0, 4);
    for (int d = 0; d < r; d++) dims[d] = irand(1, trial % 10 == 0 ? 40 : 6);
    cap_shape(dims, r, 100000);
    int64_t n = 1, axes[5];
    for (int d = 0; d < r; d++) n *= dims[d];
    bool red[5] = {false};
    int na = 0;
    for (int d = 0; d < r; d++)
      if (frand(0, 1) < 0.5f) red[d] = true, axes[na++] = d - (trial % 2 ? r : 0);
    if (!na) for (int d = 0; d < r; d++) red[d] = true;
    float *x = rand_floats(n, !strcmp(op, "ReduceProd") ? 0.5f : -3.0f, !strcmp(op, "ReduceProd") ? 1.5f : 3.0f);
    float *want = malloc((size_t)n * sizeof(float));
    kt t;
    kt_init(&t, op, 13);
    kt_in(&t, FC_DT_FLOAT, r, dims, x, false);
    if (na) kt_ints(&t, "axes", axes, na);
    kt_int(&t, "keepdims", trial % 3 != 0);
    CHECK(kt_run(&t, fc_kernels_norm, 1, trial & 1 ? 2 : 1));
    fc_ref_reduce(op, x, r, dims, red, want);
    if (!close_enough(t.out[0], want, fc_value_numel(kt_outv(&t, 0)), 2e-5f, 2e-5f)) {
      fprintf(stderr, "  %s trial %d rank %d\n", op, trial, r);
      fc_test_failures++;
    }
    kt_free(&t);
    free(x);
    free(want);
  }
}

/* ------------------------------------------------------------------ data movement */

static void test_transpose_vs_ref(void) {
  for (int trial = 0; trial < 80; trial++) {
    int64_t dims[5] = {0}, perm[5] = {0};
    int r = 1 + (int)irand(0, 4);
    for (int d = 0; d < r; d++) dims[d] = irand(1, trial % 8 == 0 ? 70 : 7), perm[d] = d;
    cap_shape(dims, r, 100000);
    for (int d = r - 1; d > 0; d--) {
      int j = (int)irand(0, d);
      int64_t tmp = perm[d];
      perm[d] = perm[j], perm[j] = tmp;
    }
    int64_t n = 1;
    for (int d = 0; d < r; d++) n *= dims[d];
    int es = trial % 3 == 0 ? 8 : trial % 3 == 1 ? 4 : 1;
    int dt = es == 8 ? FC_DT_INT64 : es == 4 ? FC_DT_FLOAT : FC_DT_UINT8;
    uint8_t *x = malloc((size_t)n * es), *want = malloc((size_t)n * es);
    for (int64_t i = 0; i < n * es; i++) x[i] = (uint8_t)(i * 7 + 3);
    kt t;
    kt_init(&t, "Transpose", 13);
    kt_in(&t, dt, r, dims, x, false);
    kt_ints(&t, "perm", perm, r);
    CHECK(kt_run(&t, fc_kernels_shape, 1, trial & 1 ? 2 : 1));
    fc_ref_transpose(x, r, dims, perm, es, want);
    if (memcmp(t.out[0], want, (size_t)n * es)) {
      fprintf(stderr, "  transpose trial %d rank %d\n", trial, r);
      fc_test_failures++;
    }
    kt_free(&t);
    free(x);
    free(want);
  }
}

static void test_slice_pad_gather(void) {
  float x[24];
  for (int i = 0; i < 24; i++) x[i] = (float)i;
  int64_t xd[3] = {2, 3, 4}, one = 1, two = 2;
  int64_t st[2] = {-1, 3}, en[2] = {-100, 0}, ax[2] = {2, 1}, sp[2] = {-2, -2};
  kt t;
  kt_init(&t, "Slice", 13);
  kt_in(&t, FC_DT_FLOAT, 3, xd, x, false);
  kt_in(&t, FC_DT_INT64, 1, &two, st, true);
  kt_in(&t, FC_DT_INT64, 1, &two, en, true);
  kt_in(&t, FC_DT_INT64, 1, &two, ax, true);
  kt_in(&t, FC_DT_INT64, 1, &two, sp, true);
  CHECK(kt_run(&t, fc_kernels_shape, 1, 1));
  const fc_value *y = kt_outv(&t, 0); /* [2, 1, 2]: rows 2, columns 3 and 1 */
  float *s = t.out[0];
  CHECK(y->dims[1] == 1 && y->dims[2] == 2 && s[0] == 11 && s[1] == 9 && s[2] == 23 && s[3] == 21);
  kt_free(&t);

  static const char *modes[] = {"constant", "reflect", "edge", "wrap"};
  float px[3] = {1, 2, 3};
  int64_t pd[1] = {3}, pads[2] = {2, 2}, pads_n = 2;
  float want[4][7] = {{9, 9, 1, 2, 3, 9, 9}, {3, 2, 1, 2, 3, 2, 1}, {1, 1, 1, 2, 3, 3, 3}, {2, 3, 1, 2, 3, 1, 2}};
  for (int m = 0; m < 4; m++) {
    float cv = 9;
    kt_init(&t, "Pad", 19);
    kt_in(&t, FC_DT_FLOAT, 1, pd, px, false);
    kt_in(&t, FC_DT_INT64, 1, &pads_n, pads, true);
    kt_in(&t, FC_DT_FLOAT, 0, &one, &cv, false);
    kt_str(&t, "mode", modes[m]);
    CHECK(kt_run(&t, fc_kernels_shape, 1, 1));
    CHECK(!memcmp(t.out[0], want[m], sizeof want[m]));
    kt_free(&t);
  }

  int64_t idx[3] = {-1, 0, 7}, three = 3; /* 7 is out of range at run time: zeros, no crash */
  kt_init(&t, "Gather", 13);
  kt_in(&t, FC_DT_FLOAT, 3, xd, x, false);
  kt_in(&t, FC_DT_INT64, 1, &three, idx, false);
  kt_int(&t, "axis", 1);
  CHECK(kt_run(&t, fc_kernels_shape, 1, 1));
  float *g = t.out[0]; /* [2, 3, 4] */
  CHECK(g[0] == 8 && g[4] == 0 && g[8] == 0 && g[12] == 20 && g[23] == 0);
  kt_free(&t);
}

static void test_concat_split_tile_expand_cast(void) {
  float a[6] = {1, 2, 3, 4, 5, 6}, b[4] = {7, 8, 9, 10};
  int64_t ad[2] = {2, 3}, bd[2] = {2, 2};
  kt t;
  kt_init(&t, "Concat", 13);
  kt_in(&t, FC_DT_FLOAT, 2, ad, a, false);
  kt_in(&t, FC_DT_FLOAT, 2, bd, b, true);
  kt_int(&t, "axis", 1);
  CHECK(kt_run(&t, fc_kernels_shape, 1, 1));
  float cat[10] = {1, 2, 3, 7, 8, 4, 5, 6, 9, 10};
  CHECK(!memcmp(t.out[0], cat, sizeof cat));
  kt_free(&t);

  int64_t cd[2] = {2, 5}, split[2] = {3, 2};
  kt_init(&t, "Split", 11);
  kt_in(&t, FC_DT_FLOAT, 2, cd, cat, false);
  kt_int(&t, "axis", 1);
  kt_ints(&t, "split", split, 2);
  CHECK(kt_run(&t, fc_kernels_shape, 2, 1));
  CHECK(!memcmp(t.out[0], a, sizeof a) && !memcmp(t.out[1], b, sizeof b));
  kt_free(&t);

  int64_t reps[2] = {2, 2}, two = 2;
  kt_init(&t, "Tile", 13);
  kt_in(&t, FC_DT_FLOAT, 2, bd, b, false);
  kt_in(&t, FC_DT_INT64, 1, &two, reps, true);
  CHECK(kt_run(&t, fc_kernels_shape, 1, 1));
  float *tl = t.out[0]; /* [4, 4] */
  CHECK(tl[0] == 7 && tl[2] == 7 && tl[5] == 10 && tl[15] == 10 && tl[10] == 7);
  kt_free(&t);

  int64_t shape[3] = {2, 1, 3}, three = 3, vd[2] = {3, 1};
  float v[3] = {1, 2, 3};
  kt_init(&t, "Expand", 13);
  kt_in(&t, FC_DT_FLOAT, 2, vd, v, false);
  kt_in(&t, FC_DT_INT64, 1, &three, shape, true);
  CHECK(kt_run(&t, fc_kernels_shape, 1, 1));
  float *ex = t.out[0]; /* [2, 3, 3] */
  CHECK(fc_value_numel(kt_outv(&t, 0)) == 18 && ex[0] == 1 && ex[2] == 1 && ex[3] == 2 && ex[17] == 3);
  kt_free(&t);

  float cf[4] = {-1.7f, 2.9f, NAN, 1e30f};
  int64_t four = 4;
  kt_init(&t, "Cast", 13);
  kt_in(&t, FC_DT_FLOAT, 1, &four, cf, false);
  kt_int(&t, "to", FC_DT_INT32);
  CHECK(kt_run(&t, fc_kernels_shape, 1, 1));
  int32_t *ci = t.out[0];
  CHECK(ci[0] == -1 && ci[1] == 2 && ci[2] == 0);
  kt_free(&t);
}

/* ------------------------------------------------------------------ resize */

static void test_resize(void) {
  float x[6] = {1, 2, 3, 4, 5, 6}, scales[4] = {1, 1, 2, 3};
  int64_t xd[4] = {1, 1, 2, 3}, four = 4;
  kt t;
  kt_init(&t, "Resize", 13); /* nearest, asymmetric + floor = pixel replication */
  kt_in(&t, FC_DT_FLOAT, 4, xd, x, false);
  kt_in_none(&t);
  kt_in(&t, FC_DT_FLOAT, 1, &four, scales, true);
  kt_str(&t, "coordinate_transformation_mode", "asymmetric");
  kt_str(&t, "nearest_mode", "floor");
  CHECK(kt_run(&t, fc_kernels_resize, 1, 1));
  float *y = t.out[0]; /* [1,1,4,9] */
  CHECK(y[0] == 1 && y[2] == 1 && y[3] == 2 && y[8] == 3 && y[9] == 1 && y[18] == 4 && y[35] == 6);
  kt_free(&t);

  /* linear + align_corners reproduces a linear ramp exactly */
  float ramp[5] = {0, 1, 2, 3, 4};
  int64_t rd[4] = {1, 1, 1, 5}, sizes[4] = {1, 1, 1, 9};
  kt_init(&t, "Resize", 13);
  kt_in(&t, FC_DT_FLOAT, 4, rd, ramp, false);
  kt_in_none(&t);
  kt_in_none(&t);
  kt_in(&t, FC_DT_INT64, 1, &four, sizes, true);
  kt_str(&t, "mode", "linear");
  kt_str(&t, "coordinate_transformation_mode", "align_corners");
  CHECK(kt_run(&t, fc_kernels_resize, 1, 1));
  y = t.out[0];
  for (int i = 0; i < 9; i++) CHECK(fabsf(y[i] - 0.5f * (float)i) < 1e-6f);
  kt_free(&t);
}

TEST_TABLE(fc_tests_kernels) = {
    {"kernel_unary_vs_ref", test_unary_vs_ref},
    {"kernel_binary_broadcast_vs_ref", test_binary_broadcast_vs_ref},
    {"kernel_expand_vs_ref", test_expand_vs_ref},
    {"kernel_integer_and_where", test_integer_and_where},
    {"kernel_variadic_and_clip", test_variadic_and_clip},
    {"kernel_pool_vs_ref", test_pool_vs_ref},
    {"kernel_maxpool_indices_and_global", test_maxpool_indices_and_global},
    {"kernel_softmax_vs_ref", test_softmax_vs_ref},
    {"kernel_layernorm_batchnorm", test_layernorm_batchnorm},
    {"kernel_reduce_vs_ref", test_reduce_vs_ref},
    {"kernel_transpose_vs_ref", test_transpose_vs_ref},
    {"kernel_slice_pad_gather", test_slice_pad_gather},
    {"kernel_concat_split_tile_expand_cast", test_concat_split_tile_expand_cast},
    {"kernel_resize", test_resize},
    {NULL, NULL},
};
