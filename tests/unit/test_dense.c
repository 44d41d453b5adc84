/* Unit tests of the oneDNN dense kernels (src/kernels/dnnl.c) against the scalar references on
 * seeded random shapes with tails: Conv/ConvTranspose (groups, strides, dilations, pads, 1-3-D,
 * plain and NHWC, fused post-ops), Gemm (transposes, alpha/beta, C shapes) and MatMul (batch
 * broadcasting, 1-D operands, constant or run-time weights); plus the arena planner and .npy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "api/model_internal.h"
#include "data/npy.h"
#include "graph/infer.h"
#include "harness.h"
#include "kernels/post_ops.h"
#include "kernels/ref/ref.h"
#include "passes/passes.h"
#include "runtime/kernel.h"
#include "util/mem.h"

static uint64_t seed = 0x243F6A8885A308D3ull;
static double urand(void) {
  seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
  return (double)(seed >> 11) / 9007199254740992.0;
}
static int64_t irand(int64_t lo, int64_t hi) { return lo + (int64_t)(urand() * (double)(hi - lo + 1)); }
static float *randf(int64_t n) {
  float *p = malloc((size_t)(n ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) p[i] = (float)(urand() * 2 - 1);
  return p;
}

/* ---- a one-node graph ---------------------------------------------------------------------- */

typedef struct one {
  fc_graph *g;
  fc_node *n;
} one;

static void one_init(one *t, const char *op) {
  t->g = fc_graph_new();
  t->g->opset = 17;
  t->g->nodes = fc_calloc(1, sizeof(fc_node));
  t->g->n_nodes = 1;
  t->n = &t->g->nodes[0];
  t->n->name = fc_strdup("node");
  t->n->op_type = fc_strdup(op);
  t->n->domain = fc_strdup("");
  t->n->inputs = fc_calloc(16, sizeof(int));
  t->n->outputs = fc_calloc(1, sizeof(int));
}

/* A float value: constant (data copied) or a graph input. Returns its index. */
static int one_in(one *t, int rank, const int64_t *dims, const float *data) {
  char name[16];
  snprintf(name, sizeof name, "v%d", t->g->n_values);
  int v = fc_graph_value(t->g, name);
  fc_value *val = &t->g->values[v];
  val->dtype = FC_DT_FLOAT;
  val->rank = rank;
  memcpy(val->dims, dims, sizeof(int64_t) * (size_t)rank);
  if (data) {
    int64_t n = fc_value_numel(val);
    val->data = fc_malloc((size_t)(n ? n : 1) * sizeof(float));
    memcpy(val->data, data, (size_t)n * sizeof(float));
    val->is_initializer = true;
  } else {
    val->is_graph_input = true;
  }
  t->n->inputs[t->n->n_inputs++] = v;
  return v;
}

static void one_none(one *t) { t->n->inputs[t->n->n_inputs++] = -1; }

static void set_ints(one *t, const char *name, const int64_t *v, int count) {
  fc_err err = {0};
  fc_node_set_ints(t->n, name, v, (size_t)count, &err);
}

/* Finishes the graph (output value, shape inference). */
static bool one_finish(one *t) {
  t->n->outputs[0] = fc_graph_value(t->g, "y");
  t->n->n_outputs = 1;
  t->g->outputs = fc_calloc(1, sizeof(int));
  t->g->outputs[0] = t->n->outputs[0];
  t->g->n_outputs = 1;
  fc_err err = {0};
  fc_status st = fc_graph_infer(t->g, NULL, 0, NULL, &err);
  t->n = &t->g->nodes[0]; /* sorting reallocates the node array */
  if (st) fprintf(stderr, "  infer: %s\n", err.msg);
  return st == FC_OK;
}

static const fc_kernel *dense(const char *op) {
  for (const fc_kernel *k = fc_kernels_dense; k->op_type; k++)
    if (!strcmp(k->op_type, op)) return k;
  return NULL;
}

/* Runs the node's dense kernel; in[i] for each input (constants: their data). */
static bool run_dense(one *t, const void **in, float *y, int threads, int layout, bool *used_ref) {
  const fc_kernel *k = dense(t->n->op_type);
  uint8_t in_l[16] = {0}, out_l[1] = {(uint8_t)layout};
  in_l[0] = (uint8_t)layout;
  for (int i = 3; i < t->n->n_inputs; i++) /* full-shaped post-op operands share y's layout */
    in_l[i] = (uint8_t)layout;
  fc_exec_node en = {.g = t->g, .node = t->n, .threads = threads, .in_layout = in_l, .out_layout = out_l};
  fc_err err = {0};
  if (k->prepare(&en, &err)) {
    fprintf(stderr, "  prepare: %s\n", err.msg);
    k->release(&en);
    return false;
  }
  void *scratch = en.scratch_bytes ? aligned_alloc(64, (en.scratch_bytes + 63) / 64 * 64) : NULL;
  void *out[1] = {y};
  fc_exec_io io = {in, out, scratch};
  k->run(&en, &io);
  *used_ref = !strcmp(k->describe(&en), "ref");
  k->release(&en);
  free(scratch);
  return true;
}

static double max_abs(const float *a, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
  return m;
}

static bool close_enough(const float *got, const float *want, int64_t n, double tol, const char *what) {
  double scale = max_abs(want, n) + 1e-3, worst = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]);
    if (d > worst || isnan(got[i])) worst = isnan(got[i]) ? INFINITY : d, at = i;
  }
  if (worst <= tol * scale) return true;
  fprintf(stderr, "  %s: max error %.3g at %lld (got %g want %g), scale %.3g\n", what, worst, (long long)at,
          got[at], want[at], scale);
  return false;
}

/* NCHW(D) <-> N(D)HWC for [N, C, spatial] data. */
static void to_nhwc(const float *x, float *y, int64_t n, int64_t c, int64_t sp) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t ch = 0; ch < c; ch++)
      for (int64_t s = 0; s < sp; s++) y[(i * sp + s) * c + ch] = x[(i * c + ch) * sp + s];
}

/* ---- convolution --------------------------------------------------------------------------- */

typedef struct conv_case {
  bool transpose;
  int nsp;
  int64_t n, ic, oc, group, in[3], k[3], stride[3], dil[3], pads[6], outpad[3];
  bool bias;
  int post; /* 0 none, 1 relu, 2 add(full)+relu, 3 clip, 4 swish, 5 linear+sigmoid, 6 mul(channel vec) */
} conv_case;

static void random_conv(conv_case *c, bool transpose) {
  memset(c, 0, sizeof *c);
  c->transpose = transpose;
  c->nsp = urand() < 0.8 ? 2 : (urand() < 0.5 ? 1 : 3);
  c->n = irand(1, 2);
  c->group = urand() < 0.3 ? irand(2, 4) : 1;
  bool depthwise = !transpose && urand() < 0.25;
  int64_t icg = irand(1, 9), ocg = irand(1, 9);
  if (depthwise) {
    c->group = irand(3, 24);
    icg = 1;
    ocg = 1;
  }
  c->ic = icg * c->group;
  c->oc = ocg * c->group;
  for (int i = 0; i < c->nsp; i++) {
    c->k[i] = irand(1, c->nsp == 3 ? 3 : 5);
    c->stride[i] = irand(1, 3);
    c->dil[i] = urand() < 0.2 ? 2 : 1;
    int64_t eff = (c->k[i] - 1) * c->dil[i] + 1;
    c->pads[i] = irand(0, c->k[i] - 1);
    c->pads[c->nsp + i] = irand(0, c->k[i] - 1);
    c->in[i] = irand(transpose ? 1 : (eff > 1 ? eff - c->pads[i] - c->pads[c->nsp + i] : 1), c->nsp == 3 ? 6 : 19);
    if (c->in[i] < 1) c->in[i] = 1;
    if (transpose) {
      c->outpad[i] = c->stride[i] > 1 && urand() < 0.3 ? irand(0, c->stride[i] - 1) : 0;
      /* keep the output positive */
      int64_t full = c->stride[i] * (c->in[i] - 1) + c->outpad[i] + eff;
      while (c->pads[i] + c->pads[c->nsp + i] >= full) c->pads[i] = c->pads[c->nsp + i] = 0;
    }
  }
  c->bias = urand() < 0.8;
  c->post = (int)irand(0, 6);
}

static bool last_used_ref;

static bool check_conv(const conv_case *c, int layout, int threads) {
  one t;
  one_init(&t, c->transpose ? "ConvTranspose" : "Conv");
  int64_t xd[5] = {c->n, c->ic}, wd[5], bd[1] = {c->oc};
  wd[0] = c->transpose ? c->ic : c->oc;
  wd[1] = c->transpose ? c->oc / c->group : c->ic / c->group;
  int64_t xsp = 1, kvol = 1;
  for (int i = 0; i < c->nsp; i++) {
    xd[2 + i] = c->in[i];
    wd[2 + i] = c->k[i];
    xsp *= c->in[i];
    kvol *= c->k[i];
  }
  int rank = 2 + c->nsp;
  int64_t xn = c->n * c->ic * xsp, wn = wd[0] * wd[1] * kvol;
  float *x = randf(xn), *w = randf(wn), *b = randf(c->oc);
  one_in(&t, rank, xd, NULL);
  one_in(&t, rank, wd, w);
  if (c->bias) one_in(&t, 1, bd, b);
  else one_none(&t);
  set_ints(&t, "strides", c->stride, c->nsp);
  set_ints(&t, "dilations", c->dil, c->nsp);
  set_ints(&t, "pads", c->pads, 2 * c->nsp);
  if (c->transpose) set_ints(&t, "output_padding", c->outpad, c->nsp);
  int64_t g = c->group;
  set_ints(&t, "group", &g, 1);
  t.n->attrs[t.n->n_attrs - 1].type = FC_ATTR_INT;
  t.n->attrs[t.n->n_attrs - 1].i = g;
  bool ok = one_finish(&t);
  const fc_value *yv = &t.g->values[t.n->outputs[0]];
  int64_t yn = ok ? fc_value_numel(yv) : 0, ysp = ok ? yn / (c->n * c->oc) : 0;
  /* post-ops */
  int64_t kinds[3];
  float params[6] = {0};
  int np = 0;
  float *opnd = NULL;
  int64_t cvec[4] = {1, c->oc, 1, 1};
  if (ok && c->post) {
    switch (c->post) {
      case 1: kinds[np++] = FC_POST_RELU; break;
      case 2:
        kinds[np++] = FC_POST_ADD;
        kinds[np++] = FC_POST_RELU;
        opnd = randf(yn);
        one_in(&t, yv->rank, yv->dims, NULL);
        break;
      case 3: kinds[np] = FC_POST_CLIP, params[2 * np] = -0.3f, params[2 * np + 1] = 0.4f, np++; break;
      case 4: kinds[np++] = FC_POST_SWISH; break;
      case 5:
        kinds[np] = FC_POST_LINEAR, params[2 * np] = 1.5f, params[2 * np + 1] = 0.2f, np++;
        kinds[np++] = FC_POST_SIGMOID;
        break;
      default:
        if (rank == 4) {
          kinds[np++] = FC_POST_MUL;
          opnd = randf(c->oc);
          one_in(&t, 4, cvec, opnd);
        }
        break;
    }
    fc_err err = {0};
    fc_node_set_ints(t.n, FC_ATTR_POST_KINDS, kinds, (size_t)np, &err);
    fc_node_set_floats(t.n, FC_ATTR_POST_PARAMS, params, 2 * (size_t)np, &err);
  }
  /* reference: plain layout, then post-ops */
  float *want = calloc((size_t)(yn ? yn : 1), sizeof(float)), *got = calloc((size_t)(yn ? yn : 1), sizeof(float));
  const void *in[8] = {x, w, c->bias ? b : NULL, opnd};
  fc_exec_node en = {.g = t.g, .node = t.n, .threads = 1};
  fc_conv_params p;
  fc_post_ops po;
  fc_err err = {0};
  ok = ok && fc_conv_params_read(&en, &p, &err) == FC_OK && fc_post_ops_read(&en, 3, 1, &po, &err) == FC_OK;
  if (!ok) fprintf(stderr, "  params: %s\n", err.msg);
  bool used_ref = false;
  float *x_l = x, *op_l = opnd, *got_plain = got;
  if (ok) {
    fc_strides xs, ys;
    fc_conv_strides(&p, false, FC_LAYOUT_PLAIN, &xs);
    fc_conv_strides(&p, true, FC_LAYOUT_PLAIN, &ys);
    fc_ref_conv(&p, x, &xs, w, c->bias ? b : NULL, want, &ys);
    const float *ops[1] = {opnd};
    fc_ref_post_ops(&po, want, ops, 1);
    if (layout == FC_LAYOUT_NHWC) {
      x_l = malloc((size_t)xn * sizeof(float));
      to_nhwc(x, x_l, c->n, c->ic, xsp);
      if (c->post == 2) {
        op_l = malloc((size_t)yn * sizeof(float));
        to_nhwc(opnd, op_l, c->n, c->oc, ysp);
      }
    }
    const void *run_in[8] = {x_l, w, c->bias ? b : NULL, op_l};
    ok = run_dense(&t, run_in, got, threads, layout, &used_ref);
    if (ok && layout == FC_LAYOUT_NHWC) {
      got_plain = malloc((size_t)yn * sizeof(float));
      for (int64_t i = 0; i < c->n; i++)
        for (int64_t ch = 0; ch < c->oc; ch++)
          for (int64_t s = 0; s < ysp; s++) got_plain[(i * c->oc + ch) * ysp + s] = got[(i * ysp + s) * c->oc + ch];
    }
  }
  (void)in;
  char what[200];
  snprintf(what, sizeof what, "%s %dD n%lld ic%lld oc%lld g%lld k%lld s%lld d%lld post%d %s%s", t.n->op_type, c->nsp,
           (long long)c->n, (long long)c->ic, (long long)c->oc, (long long)c->group, (long long)c->k[0],
           (long long)c->stride[0], (long long)c->dil[0], c->post, layout ? "nhwc" : "plain", used_ref ? " (ref)" : "");
  ok = ok && close_enough(got_plain, want, yn, 1e-4, what);
  last_used_ref = used_ref;
  if (getenv("FC_TEST_VERBOSE")) fprintf(stderr, "  ok=%d %s\n", ok, what);
  if (x_l != x) free(x_l);
  if (op_l != opnd) free(op_l);
  if (got_plain != got) free(got_plain);
  free(x), free(w), free(b), free(opnd), free(want), free(got);
  fc_graph_free(t.g);
  return ok;
}

/* The vectorised post-op evaluator against the scalar reference: every kind, chains of 1-4 ops,
 * full-shape and per-channel operands, plain and NHWC, sizes with block and vector tails, 1-2
 * threads. Inputs span [-12, 12] so sigmoid, tanh and erf reach their tails. */
static void test_post_ops_fast_vs_ref(void) {
  static const int kinds[] = {FC_POST_RELU,      FC_POST_CLIP,     FC_POST_LINEAR, FC_POST_SIGMOID,
                              FC_POST_SWISH,     FC_POST_HARDSWISH, FC_POST_GELU_ERF, FC_POST_TANH,
                              FC_POST_LEAKY_RELU, FC_POST_ADD,      FC_POST_MUL,    FC_POST_SUB};
  const int nk = (int)(sizeof kinds / sizeof kinds[0]);
  for (int trial = 0; trial < 120; trial++) {
    fc_post_ops po;
    memset(&po, 0, sizeof po);
    po.rank = 4;
    po.dims[0] = irand(1, 2), po.dims[1] = irand(1, 40), po.dims[2] = irand(1, 37), po.dims[3] = irand(1, 45);
    po.axis = 1;
    po.layout = trial % 2 ? FC_LAYOUT_NHWC : FC_LAYOUT_PLAIN;
    int64_t numel = po.dims[0] * po.dims[1] * po.dims[2] * po.dims[3];
    po.n = (int)irand(1, 4);
    float *opnd[FC_REF_MAX_POST] = {0};
    int nop = 0;
    for (int j = 0; j < po.n; j++) {
      po.kinds[j] = kinds[(trial * 5 + j * 7) % nk];
      po.alpha[j] = po.kinds[j] == FC_POST_CLIP ? -1.5f : 0.3f;
      po.beta[j] = po.kinds[j] == FC_POST_CLIP ? 2.5f : -0.2f;
      if (fc_post_is_binary(po.kinds[j])) {
        po.operand_numel[j] = (trial / 2) % 2 ? numel : po.dims[1];
        opnd[nop] = randf(po.operand_numel[j]);
        nop++;
      }
    }
    float *y = randf(numel), *want = malloc((size_t)numel * sizeof(float));
    for (int64_t i = 0; i < numel; i++) y[i] *= 12.0f;
    memcpy(want, y, (size_t)numel * sizeof(float));
    const float *ops[FC_REF_MAX_POST];
    for (int j = 0; j < nop; j++) ops[j] = opnd[j];
    fc_ref_post_ops(&po, want, ops, 1);
    fc_post_ops_apply(&po, y, ops, 1 + trial % 2);
    char what[96];
    snprintf(what, sizeof what, "post-ops trial %d (%d ops, first kind %d, %s)", trial, po.n, po.kinds[0],
             po.layout == FC_LAYOUT_NHWC ? "nhwc" : "plain");
    CHECK(close_enough(y, want, numel, 1e-5, what));
    for (int j = 0; j < nop; j++) free(opnd[j]);
    free(y), free(want);
  }
}

static void test_conv_random(void) {
  seed = 1;
  for (int i = 0; i < 60; i++) {
    conv_case c;
    random_conv(&c, false);
    CHECK(check_conv(&c, FC_LAYOUT_PLAIN, 1 + i % 2));
    if (c.nsp == 2) CHECK(check_conv(&c, FC_LAYOUT_NHWC, 1 + i % 2));
  }
}

static void test_conv_transpose_random(void) {
  seed = 2;
  for (int i = 0; i < 30; i++) {
    conv_case c;
    random_conv(&c, true);
    CHECK(check_conv(&c, FC_LAYOUT_PLAIN, 1 + i % 2));
    if (c.nsp == 2) CHECK(check_conv(&c, FC_LAYOUT_NHWC, 1));
  }
}

/* The shapes that matter most (ResNet/MobileNet layers, with tails) take the oneDNN path. */
static void test_conv_uses_onednn(void) {
  conv_case cases[] = {
      {.nsp = 2, .n = 1, .ic = 17, .oc = 33, .group = 1, .in = {15, 13}, .k = {3, 3}, .stride = {1, 1}, .dil = {1, 1},
       .pads = {1, 1, 1, 1}, .bias = true, .post = 2},
      {.nsp = 2, .n = 1, .ic = 40, .oc = 40, .group = 40, .in = {14, 14}, .k = {3, 3}, .stride = {2, 2},
       .dil = {1, 1}, .pads = {1, 1, 1, 1}, .bias = true, .post = 3},
      {.nsp = 2, .n = 2, .ic = 3, .oc = 16, .group = 1, .in = {23, 23}, .k = {7, 7}, .stride = {2, 2}, .dil = {1, 1},
       .pads = {3, 3, 3, 3}, .bias = true, .post = 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CHECK(check_conv(&cases[i], FC_LAYOUT_NHWC, 1));
    CHECK(!last_used_ref);
    CHECK(check_conv(&cases[i], FC_LAYOUT_NHWC, 2));
    CHECK(!last_used_ref);
  }
}

/* Winograd (blocked layout, reorders from and to NHWC) agrees with the reference too. */
static void test_conv_winograd(void) {
  setenv("FC_FORCE_WINOGRAD", "1", 1);
  conv_case cases[] = {
      {.nsp = 2, .n = 1, .ic = 64, .oc = 48, .group = 1, .in = {15, 13}, .k = {3, 3}, .stride = {1, 1}, .dil = {1, 1},
       .pads = {1, 1, 1, 1}, .bias = true, .post = 1},
      {.nsp = 2, .n = 2, .ic = 32, .oc = 32, .group = 1, .in = {9, 9}, .k = {3, 3}, .stride = {1, 1}, .dil = {1, 1},
       .pads = {1, 0, 1, 0}, .bias = false, .post = 3},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CHECK(check_conv(&cases[i], FC_LAYOUT_NHWC, 1));
    CHECK(check_conv(&cases[i], FC_LAYOUT_NHWC, 2));
  }
  unsetenv("FC_FORCE_WINOGRAD");
}

/* ---- Gemm and MatMul ----------------------------------------------------------------------- */

static void test_gemm_random(void) {
  seed = 3;
  for (int it = 0; it < 40; it++) {
    int64_t m = irand(1, 40), n = irand(1, 70), k = irand(1, 90);
    int64_t ta = urand() < 0.3, tb = urand() < 0.5;
    float alpha = urand() < 0.3 ? 0.5f : 1.0f, beta = urand() < 0.3 ? 2.0f : 1.0f;
    int cform = (int)irand(0, 4); /* none, [N], [M,N], [M,1], scalar */
    bool c_const = urand() < 0.7;
    one t;
    one_init(&t, "Gemm");
    int64_t ad[2] = {ta ? k : m, ta ? m : k}, bd[2] = {tb ? n : k, tb ? k : n};
    float *a = randf(m * k), *b = randf(k * n), *c = randf(m * n);
    one_in(&t, 2, ad, NULL);
    one_in(&t, 2, bd, b);
    int64_t cd[2] = {m, n};
    int c_rank = 2;
    if (cform == 1) c_rank = 1, cd[0] = n;
    if (cform == 3) cd[1] = 1;
    if (cform == 4) c_rank = 0;
    if (cform) one_in(&t, c_rank, cd, c_const ? c : NULL);
    set_ints(&t, "transA", &ta, 1);
    t.n->attrs[t.n->n_attrs - 1].type = FC_ATTR_INT, t.n->attrs[t.n->n_attrs - 1].i = ta;
    set_ints(&t, "transB", &tb, 1);
    t.n->attrs[t.n->n_attrs - 1].type = FC_ATTR_INT, t.n->attrs[t.n->n_attrs - 1].i = tb;
    fc_err err = {0};
    fc_node_set_floats(t.n, "alpha", &alpha, 1, &err);
    t.n->attrs[t.n->n_attrs - 1].type = FC_ATTR_FLOAT, t.n->attrs[t.n->n_attrs - 1].f = alpha;
    fc_node_set_floats(t.n, "beta", &beta, 1, &err);
    t.n->attrs[t.n->n_attrs - 1].type = FC_ATTR_FLOAT, t.n->attrs[t.n->n_attrs - 1].f = beta;
    bool ok = one_finish(&t);
    float *want = calloc((size_t)(m * n), sizeof(float)), *got = calloc((size_t)(m * n), sizeof(float));
    fc_exec_node en = {.g = t.g, .node = t.n, .threads = 1};
    fc_gemm_params p;
    ok = ok && fc_gemm_params_read(&en, &p, &err) == FC_OK;
    bool used_ref = false;
    if (ok) {
      fc_ref_gemm(&p, a, b, cform ? c : NULL, want);
      const void *in[3] = {a, b, cform ? c : NULL};
      ok = run_dense(&t, in, got, 1 + it % 2, FC_LAYOUT_PLAIN, &used_ref);
    }
    char what[160];
    snprintf(what, sizeof what, "Gemm m%lld n%lld k%lld tA%lld tB%lld C%d%s%s", (long long)m, (long long)n, (long long)k,
             (long long)ta, (long long)tb, cform, c_const ? "" : " (input)", used_ref ? " (ref)" : "");
    CHECK(ok && close_enough(got, want, m * n, 1e-4, what));
    if (c_const || !cform) CHECK(!used_ref);
    free(a), free(b), free(c), free(want), free(got);
    fc_graph_free(t.g);
  }
}

static void test_matmul_random(void) {
  seed = 4;
  for (int it = 0; it < 40; it++) {
    int ra = (int)irand(1, 4), rb = (int)irand(1, 4);
    int64_t m = irand(1, 20), n = irand(1, 40), k = irand(1, 50);
    int64_t ad[4], bd[4];
    int r = ra > rb ? ra : rb;
    int64_t batch[2] = {irand(1, 3), irand(1, 3)};
    /* batch dims (those before the last two), broadcast where one side has 1 */
    for (int d = 0; d < ra - 2; d++) ad[d] = urand() < 0.3 ? 1 : batch[d + (r - ra)];
    for (int d = 0; d < rb - 2; d++) bd[d] = urand() < 0.3 ? 1 : batch[d + (r - rb)];
    if (ra == 1) ad[0] = k;
    else ad[ra - 2] = m, ad[ra - 1] = k;
    if (rb == 1) bd[0] = k;
    else bd[rb - 2] = k, bd[rb - 1] = n;
    bool b_const = urand() < 0.5;
    one t;
    one_init(&t, "MatMul");
    int64_t an = 1, bn = 1;
    for (int d = 0; d < ra; d++) an *= ad[d];
    for (int d = 0; d < rb; d++) bn *= bd[d];
    float *a = randf(an), *b = randf(bn);
    one_in(&t, ra, ad, NULL);
    one_in(&t, rb, bd, b_const ? b : NULL);
    bool ok = one_finish(&t);
    int64_t yn = ok ? fc_value_numel(&t.g->values[t.n->outputs[0]]) : 0;
    float *want = calloc((size_t)(yn + 1), sizeof(float)), *got = calloc((size_t)(yn + 1), sizeof(float));
    fc_exec_node en = {.g = t.g, .node = t.n, .threads = 1};
    fc_matmul_params p;
    fc_err err = {0};
    ok = ok && fc_matmul_params_read(&en, &p, &err) == FC_OK;
    bool used_ref = false;
    if (ok) {
      fc_ref_matmul(&p, a, b, want);
      const void *in[2] = {a, b};
      ok = run_dense(&t, in, got, 1 + it % 2, FC_LAYOUT_PLAIN, &used_ref);
    }
    char what[160];
    snprintf(what, sizeof what, "MatMul ranks %d,%d m%lld n%lld k%lld%s%s", ra, rb, (long long)m, (long long)n,
             (long long)k, b_const ? " const" : "", used_ref ? " (ref)" : "");
    CHECK(ok && close_enough(got, want, yn, 1e-4, what));
    free(a), free(b), free(want), free(got);
    fc_graph_free(t.g);
  }
}

/* ---- the plan: arena packing, views, layouts ------------------------------------------------ */

/* Runs a plan on a model file and checks nothing overlaps: every intermediate is compared with a
 * plan built without fusion (so with more, differently placed buffers). */
static void test_plan_tiny_cnn(void) {
  char path[512];
  snprintf(path, sizeof path, "build/testmodels/tiny_cnn.onnx");
  if (access(path, R_OK) != 0) return; /* built by tools/make_test_models.py; python tests cover it too */
  fc_ctx *ctx = fc_ctx_create();
  fc_model *m = NULL;
  fc_plan *p1 = NULL, *p2 = NULL;
  CHECK(fc_model_load(ctx, path, NULL, 0, &m) == FC_OK);
  fc_plan_options o1 = {1}, o2 = {2};
  CHECK(m && fc_plan_create(ctx, m, &o1, &p1) == FC_OK);
  CHECK(m && fc_plan_create(ctx, m, &o2, &p2) == FC_OK);
  if (p1 && p2) {
    fc_tensor_view in;
    CHECK(fc_plan_input(p1, 0, &in) == FC_OK);
    int64_t n = 1;
    for (int d = 0; d < in.rank; d++) n *= in.dims[d];
    float *x = randf(n);
    in.data = x;
    fc_tensor_view y1 = {0}, y2 = {0};
    CHECK(fc_plan_run(ctx, p1, &in, 1, &y1, 1) == FC_OK);
    float first = y1.data ? ((float *)y1.data)[0] : 0;
    CHECK(fc_plan_run(ctx, p2, &in, 1, &y2, 1) == FC_OK);
    CHECK(y1.data && y2.data && fabsf(first - ((float *)y2.data)[0]) <= 1e-5f * (fabsf(first) + 1));
    /* a wrong shape is refused */
    in.dims[in.rank - 1] += 1;
    CHECK(fc_plan_run(ctx, p1, &in, 1, &y1, 1) == FC_ERR_ARG);
    CHECK(strstr(fc_ctx_error(ctx), "shape") != NULL);
    free(x);
  }
  fc_plan_free(p1);
  fc_plan_free(p2);
  fc_model_free(m);
  fc_ctx_free(ctx);
}

/* ---- .npy ------------------------------------------------------------------------------------ */

static void test_npy_roundtrip_and_errors(void) {
  char path[64];
  snprintf(path, sizeof path, "/tmp/fc_npy_test_%d.npy", (int)getpid());
  int64_t dims[3] = {2, 3, 5};
  float data[30];
  for (int i = 0; i < 30; i++) data[i] = (float)i * 0.5f;
  fc_err err = {0};
  CHECK(fc_npy_write(path, FC_DT_FLOAT, 3, dims, data, &err) == FC_OK);
  fc_array a;
  CHECK(fc_npy_read(path, &a, &err) == FC_OK);
  CHECK(a.dtype == FC_DT_FLOAT && a.rank == 3 && a.dims[2] == 5 && a.count == 30);
  CHECK(a.data && !memcmp(a.data, data, sizeof data));
  fc_array_free(&a);
  int64_t scalar_dims[1] = {0};
  int64_t one_val = 7;
  CHECK(fc_npy_write(path, FC_DT_INT64, 0, scalar_dims, &one_val, &err) == FC_OK);
  CHECK(fc_npy_read(path, &a, &err) == FC_OK && a.rank == 0 && a.count == 1 && ((int64_t *)a.data)[0] == 7);
  fc_array_free(&a);
  const char *bad[] = {
      "\x93NUMPY\x01\x00\x3c\x00{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }          \n",
      "\x93NUMPY\x01\x00\x3c\x00{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }         \n",
      "\x93NUMPY\x01\x00\x3c\x00{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }         \n",
      "\x93NUMPY\x01\x00\x3c\x00{'descr': '<f4', 'fortran_order': False, 'shape': (9,), }         \n",
      "\x93NUMPX\x01\x00\x3c\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }         \n",
      "\x93NUMPY\x01\x00\x3c\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2,-1), }       \n",
  };
  const char *expect[] = {"Fortran", "little-endian", "not supported", "truncated", "not a .npy", "shape"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    FILE *f = fopen(path, "wb");
    fwrite(bad[i], 1, 70, f);
    fwrite(data, 4, 2, f);
    fclose(f);
    fc_err e = {0};
    CHECK(fc_npy_read(path, &a, &e) != FC_OK);
    if (!strstr(e.msg, expect[i])) fprintf(stderr, "  npy case %zu: '%s'\n", i, e.msg);
    CHECK(strstr(e.msg, expect[i]) != NULL);
  }
  unlink(path);
}

TEST_TABLE(fc_tests_dense) = {
    {"dense_post_ops_fast_vs_ref", test_post_ops_fast_vs_ref},
    {"dense_conv_random", test_conv_random},
    {"dense_conv_transpose_random", test_conv_transpose_random},
    {"dense_conv_uses_onednn", test_conv_uses_onednn},
    {"dense_conv_winograd", test_conv_winograd},
    {"dense_gemm_random", test_gemm_random},
    {"dense_matmul_random", test_matmul_random},
    {"plan_tiny_cnn", test_plan_tiny_cnn},
    {"npy_roundtrip_and_errors", test_npy_roundtrip_and_errors},
    {NULL, NULL},
};
