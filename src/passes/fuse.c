/* Post-op fusion: activations and elementwise ops after a Conv/ConvTranspose/Gemm/MatMul become
 * post-ops of that node (oneDNN applies them while the output is still in registers/cache). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "passes/passes.h"
#include "util/mem.h"

typedef struct fuse_ctx {
  fc_graph *g;
  int *readers;   /* per value: node inputs + graph outputs reading it */
  int *reader;    /* per value: one reading node (meaningful when readers == 1 or 2) */
  int *reader2;   /* a second reading node */
  bool *rm;
} fuse_ctx;

static bool is_const_scalar(const fc_graph *g, int v, float *x) {
  if (v < 0) return false;
  const fc_value *val = &g->values[v];
  if (!val->data || val->dtype != FC_DT_FLOAT || fc_value_numel(val) != 1) return false;
  *x = *(const float *)val->data;
  return true;
}

/* The operand of the other side of a binary node reading y. */
static int other_input(const fc_node *n, int y, bool *y_first) {
  if (n->n_inputs != 2) return -1;
  if (n->inputs[0] == y && n->inputs[1] != y) {
    *y_first = true;
    return n->inputs[1];
  }
  if (n->inputs[1] == y && n->inputs[0] != y) {
    *y_first = false;
    return n->inputs[0];
  }
  return -1;
}

/* An operand oneDNN (and our fallback) can apply as a binary post-op on output y of node p: float,
 * available before p runs, and either y's full shape or a vector along the channel axis (conv) or
 * the last axis (gemm/matmul); broadcasting must not change y's shape. */
static bool operand_ok(const fc_graph *g, int p, int y, int z, bool conv_like) {
  const fc_value *yv = &g->values[y], *zv = &g->values[z];
  if (zv->dtype != FC_DT_FLOAT || !fc_value_known(zv) || zv->rank > yv->rank) return false;
  if (zv->producer >= p) return false; /* computed after p: cannot be read by it */
  int off = yv->rank - zv->rank;
  bool same = zv->rank == yv->rank, vec = true;
  int axis = conv_like ? 1 : yv->rank - 1;
  for (int d = 0; d < yv->rank; d++) {
    int64_t zd = d < off ? 1 : zv->dims[d - off];
    if (zd != yv->dims[d]) same = false;
    if (zd != 1 && !(d == axis && zd == yv->dims[d])) vec = false;
  }
  return same || vec;
}

static int count_all_readers(fuse_ctx *c) {
  fc_graph *g = c->g;
  for (int v = 0; v < g->n_values; v++) c->readers[v] = 0, c->reader[v] = c->reader2[v] = -1;
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i].n_inputs; k++) {
      int v = g->nodes[i].inputs[k];
      if (v < 0) continue;
      c->readers[v]++;
      if (c->reader[v] < 0) c->reader[v] = i;
      else if (c->reader[v] != i) c->reader2[v] = i;
    }
  for (int o = 0; o < g->n_outputs; o++) c->readers[g->outputs[o]] += 1000; /* never fuse away an output */
  return 0;
}

/* y read by exactly one input slot of exactly one node. */
static int sole_reader(const fuse_ctx *c, int y) { return c->readers[y] == 1 ? c->reader[y] : -1; }

typedef struct post_list {
  int kinds[FC_MAX_POST_OPS];
  float alpha[FC_MAX_POST_OPS], beta[FC_MAX_POST_OPS];
  int operands[FC_MAX_POST_OPS];
  int n, n_operands;
  char fused[256];
} post_list;

static bool push(post_list *pl, int kind, float a, float b, const char *op) {
  size_t len = strlen(pl->fused);
  if (kind == FC_POST_LINEAR && pl->n && pl->kinds[pl->n - 1] == FC_POST_LINEAR) {
    /* a2 (a1 x + b1) + b2 as one op: fewer passes, and oneDNN 2.6 computes two linear post-ops in a
     * row wrongly (measured: conv + x*1.5 + 0.25 off by 5 in test_fused_activations) */
    pl->beta[pl->n - 1] = a * pl->beta[pl->n - 1] + b;
    pl->alpha[pl->n - 1] *= a;
    snprintf(pl->fused + len, sizeof pl->fused - len, "%s%s", len ? "+" : "", op);
    return true;
  }
  if (pl->n >= FC_MAX_POST_OPS) return false;
  pl->kinds[pl->n] = kind;
  pl->alpha[pl->n] = a;
  pl->beta[pl->n] = b;
  pl->n++;
  snprintf(pl->fused + len, sizeof pl->fused - len, "%s%s", len ? "+" : "", op);
  return true;
}

static bool clip_bounds(const fc_graph *g, const fc_node *n, float *lo, float *hi) {
  *lo = -FLT_MAX;
  *hi = FLT_MAX;
  if (fc_node_attr(n, "min")) *lo = fc_attr_float(n, "min", -FLT_MAX);
  if (fc_node_attr(n, "max")) *hi = fc_attr_float(n, "max", FLT_MAX);
  if (n->n_inputs > 1 && n->inputs[1] >= 0 && !is_const_scalar(g, n->inputs[1], lo)) return false;
  if (n->n_inputs > 2 && n->inputs[2] >= 0 && !is_const_scalar(g, n->inputs[2], hi)) return false;
  return true;
}

/* Tries to absorb what follows value y (output of node p); returns the new output value or -1. */
static int absorb_next(fuse_ctx *c, int p, int y, bool conv_like, post_list *pl) {
  fc_graph *g = c->g;
  int r = sole_reader(c, y);
  if (r >= 0) {
    const fc_node *n = &g->nodes[r];
    const char *op = n->op_type;
    if (n->domain[0] || n->n_outputs < 1 || n->inputs[0] < 0) return -1;
    int out = n->outputs[0];
    if (!strcmp(op, "Relu") && n->inputs[0] == y) return push(pl, FC_POST_RELU, 0, 0, op) ? (c->rm[r] = true, out) : -1;
    if (!strcmp(op, "Sigmoid") && n->inputs[0] == y) return push(pl, FC_POST_SIGMOID, 0, 0, op) ? (c->rm[r] = true, out) : -1;
    if (!strcmp(op, "Tanh") && n->inputs[0] == y) return push(pl, FC_POST_TANH, 0, 0, op) ? (c->rm[r] = true, out) : -1;
    if (!strcmp(op, "HardSwish") && n->inputs[0] == y)
      return push(pl, FC_POST_HARDSWISH, 0, 0, op) ? (c->rm[r] = true, out) : -1;
    if (!strcmp(op, "LeakyRelu") && n->inputs[0] == y)
      return push(pl, FC_POST_LEAKY_RELU, fc_attr_float(n, "alpha", 0.01f), 0, op) ? (c->rm[r] = true, out) : -1;
    if (!strcmp(op, "HardSigmoid") && n->inputs[0] == y && pl->n + 2 <= FC_MAX_POST_OPS) {
      push(pl, FC_POST_LINEAR, fc_attr_float(n, "alpha", 0.2f), fc_attr_float(n, "beta", 0.5f), op);
      push(pl, FC_POST_CLIP, 0, 1, "");
      pl->fused[strlen(pl->fused) - 1] = '\0'; /* the clip is part of HardSigmoid */
      c->rm[r] = true;
      return out;
    }
    if (!strcmp(op, "Clip") && n->inputs[0] == y) {
      float lo, hi;
      if (!clip_bounds(g, n, &lo, &hi)) return -1;
      return push(pl, FC_POST_CLIP, lo, hi, op) ? (c->rm[r] = true, out) : -1;
    }
    bool add = !strcmp(op, "Add"), mul = !strcmp(op, "Mul"), sub = !strcmp(op, "Sub"), div = !strcmp(op, "Div");
    if (add || mul || sub || div) {
      bool y_first;
      int z = other_input(n, y, &y_first);
      float s;
      if (z < 0 || g->values[z].dtype != FC_DT_FLOAT) return -1;
      if (is_const_scalar(g, z, &s)) {
        bool ok = false;
        if (add) ok = push(pl, FC_POST_LINEAR, 1, s, op);
        else if (mul) ok = push(pl, FC_POST_LINEAR, s, 0, op);
        else if (sub) ok = push(pl, FC_POST_LINEAR, y_first ? 1 : -1, y_first ? -s : s, op);
        else if (y_first && s != 0) ok = push(pl, FC_POST_LINEAR, 1 / s, 0, op);
        return ok ? (c->rm[r] = true, out) : -1;
      }
      if (div || (sub && !y_first) || !operand_ok(g, p, y, z, conv_like)) return -1;
      if (!push(pl, add ? FC_POST_ADD : mul ? FC_POST_MUL : FC_POST_SUB, 0, 0, op)) return -1;
      pl->operands[pl->n_operands++] = z;
      c->rm[r] = true;
      return out;
    }
    return -1;
  }
  if (c->readers[y] != 2 || c->reader2[y] < 0) return -1;
  /* two readers: x * sigmoid(x), x * hardsigmoid(x), erf-GELU */
  int a = c->reader[y], b = c->reader2[y];
  for (int pass = 0; pass < 2; pass++, a ^= b, b ^= a, a ^= b) {
    const fc_node *f = &g->nodes[a], *m = &g->nodes[b];
    if (f->domain[0] || m->domain[0] || f->inputs[0] != y || f->n_outputs < 1 || strcmp(m->op_type, "Mul")) continue;
    int fo = f->outputs[0];
    bool y_first;
    if (!strcmp(f->op_type, "Sigmoid") || !strcmp(f->op_type, "HardSigmoid")) {
      if (sole_reader(c, fo) != b || other_input(m, y, &y_first) != fo) continue;
      bool hs = f->op_type[0] == 'H';
      if (hs && (fabsf(fc_attr_float(f, "alpha", 0.2f) - 1.0f / 6) > 1e-6f || fc_attr_float(f, "beta", 0.5f) != 0.5f))
        continue;
      if (!push(pl, hs ? FC_POST_HARDSWISH : FC_POST_SWISH, 1, 0, hs ? "HardSigmoid+Mul" : "Sigmoid+Mul")) return -1;
      c->rm[a] = c->rm[b] = true;
      return m->outputs[0];
    }
    /* GELU: Div(y, √2) → Erf → Add(·, 1) → Mul(y, ·) → Mul(·, 0.5) */
    float s;
    if (strcmp(f->op_type, "Div") || f->n_inputs != 2 || !is_const_scalar(g, f->inputs[1], &s) ||
        fabsf(s - 1.41421356f) > 1e-4f)
      continue;
    int e = sole_reader(c, fo);
    if (e < 0 || strcmp(g->nodes[e].op_type, "Erf")) continue;
    int eo = g->nodes[e].outputs[0], ad = sole_reader(c, eo);
    if (ad < 0 || strcmp(g->nodes[ad].op_type, "Add")) continue;
    int one = other_input(&g->nodes[ad], eo, &y_first);
    if (one < 0 || !is_const_scalar(g, one, &s) || s != 1.0f) continue;
    int ao = g->nodes[ad].outputs[0];
    if (sole_reader(c, ao) != b || other_input(m, y, &y_first) != ao) continue;
    int mo = m->outputs[0], h = sole_reader(c, mo);
    if (h < 0 || strcmp(g->nodes[h].op_type, "Mul")) continue;
    int half = other_input(&g->nodes[h], mo, &y_first);
    if (half < 0 || !is_const_scalar(g, half, &s) || s != 0.5f) continue;
    if (!push(pl, FC_POST_GELU_ERF, 0, 0, "Gelu")) return -1;
    c->rm[a] = c->rm[b] = c->rm[e] = c->rm[ad] = c->rm[h] = true;
    return g->nodes[h].outputs[0];
  }
  return -1;
}

static fc_status apply(fc_graph *g, int p, int out, const post_list *pl, fc_err *err) {
  fc_node *n = &g->nodes[p];
  int64_t kinds[FC_MAX_POST_OPS];
  float params[2 * FC_MAX_POST_OPS];
  for (int i = 0; i < pl->n; i++) {
    kinds[i] = pl->kinds[i];
    params[2 * i] = pl->alpha[i];
    params[2 * i + 1] = pl->beta[i];
  }
  /* ONNX inputs padded to their full count so operands start at a fixed index */
  int base = !strcmp(n->op_type, "MatMul") ? 2 : 3;
  int *ni = fc_calloc((size_t)(base + pl->n_operands), sizeof(int));
  if (!ni) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  for (int i = 0; i < base; i++) ni[i] = i < n->n_inputs ? n->inputs[i] : -1;
  for (int i = 0; i < pl->n_operands; i++) ni[base + i] = pl->operands[i];
  free(n->inputs);
  n->inputs = ni;
  n->n_inputs = base + pl->n_operands;
  n->outputs[0] = out;
  g->values[out].producer = p;
  char fused[300];
  const char *prev = fc_attr_str(n, FC_ATTR_FUSED, "");
  snprintf(fused, sizeof fused, "%s%s%s", prev, prev[0] ? "+" : "", pl->fused);
  fc_status st = fc_node_set_ints(n, FC_ATTR_POST_KINDS, kinds, (size_t)pl->n, err);
  if (!st) st = fc_node_set_floats(n, FC_ATTR_POST_PARAMS, params, 2 * (size_t)pl->n, err);
  if (!st) st = fc_node_set_str(n, FC_ATTR_FUSED, fused, err);
  return st;
}

fc_status fc_pass_fuse_post_ops(fc_graph *g, int *fused, fc_err *err) {
  if (fused) *fused = 0;
  fuse_ctx c = {g, NULL, NULL, NULL, NULL};
  c.readers = fc_calloc((size_t)g->n_values + 1, sizeof(int));
  c.reader = fc_calloc((size_t)g->n_values + 1, sizeof(int));
  c.reader2 = fc_calloc((size_t)g->n_values + 1, sizeof(int));
  c.rm = fc_calloc((size_t)g->n_nodes + 1, sizeof(bool));
  fc_status st = (!c.readers || !c.reader || !c.reader2 || !c.rm) ? fc_fail(err, FC_ERR_NOMEM, "out of memory") : FC_OK;
  if (!st) count_all_readers(&c);
  for (int p = 0; !st && p < g->n_nodes; p++) {
    const fc_node *n = &g->nodes[p];
    bool conv_like = !strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "ConvTranspose");
    if (n->domain[0] || c.rm[p] || n->n_outputs != 1 || n->outputs[0] < 0 || fc_node_attr(n, FC_ATTR_POST_KINDS))
      continue;
    if (!conv_like && strcmp(n->op_type, "Gemm") && strcmp(n->op_type, "MatMul")) continue;
    int y = n->outputs[0];
    if (g->values[y].dtype != FC_DT_FLOAT || g->values[y].rank < 2) continue;
    post_list pl;
    memset(&pl, 0, sizeof pl);
    int next;
    while ((next = absorb_next(&c, p, y, conv_like, &pl)) >= 0) y = next;
    if (!pl.n) continue;
    if ((st = apply(g, p, y, &pl, err))) break;
    if (fused) (*fused)++;
  }
  if (!st) fc_graph_remove_nodes(g, c.rm);
  free(c.readers);
  free(c.reader);
  free(c.reader2);
  free(c.rm);
  return st;
}
