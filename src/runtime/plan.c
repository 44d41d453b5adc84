/* The planner: copies the model's graph, runs the passes, picks one kernel per node (failing here,
 * naming the node, for ops without one), chooses each activation's layout (NHWC between oneDNN
 * convolutions, plain elsewhere, conversions at the borders), prepares kernels (weights packed once)
 * and packs every activation into one arena from value lifetimes. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cost/cost.h"
#include "kernels/sparse/sparse.h"
#include "ops/ops.h"
#include "passes/passes.h"
#include "runtime/plan_internal.h"
#include "util/mem.h"

#define ARENA_ALIGN 64

/* ---- steps and per-value bookkeeping ------------------------------------------------------- */

static fc_step *new_step(fc_plan *p, fc_err *err) {
  if (p->n_steps == p->cap_steps) {
    int cap = p->cap_steps ? 2 * p->cap_steps : 64;
    fc_step *ns = fc_realloc_array(p->steps, (size_t)cap, sizeof(fc_step));
    if (!ns) {
      fc_fail(err, FC_ERR_NOMEM, "out of memory planning");
      return NULL;
    }
    p->steps = ns;
    p->cap_steps = cap;
  }
  fc_step *s = &p->steps[p->n_steps++];
  memset(s, 0, sizeof *s);
  s->scratch_off = -1;
  return s;
}

static bool grow_values(fc_plan *p) {
  if (p->g->n_values <= p->cap_values) return true;
  int cap = p->g->n_values * 2 + 16;
#define GROW(field, type, init)                                                \
  do {                                                                         \
    type *nf = fc_realloc_array(p->field, (size_t)cap, sizeof(type));          \
    if (!nf) return false;                                                     \
    for (int i = p->cap_values; i < cap; i++) nf[i] = init;                    \
    p->field = nf;                                                             \
  } while (0)
  GROW(layout, uint8_t, FC_LAYOUT_PLAIN);
  GROW(nhwc_copy, int, -1);
  GROW(plain_copy, int, -1);
  GROW(alias, int, -1);
  GROW(first, int, -1);
  GROW(last, int, -1);
  GROW(offset, int64_t, -1);
  GROW(ptr, void *, NULL);
#undef GROW
  p->cap_values = cap;
  return true;
}

static bool is_const(const fc_graph *g, int v) { return v >= 0 && g->values[v].data != NULL; }

/* A rank-4 value whose NHWC and NCHW storage are the same bytes (one channel or one pixel). */
static bool layout_free(const fc_value *v) {
  return v->rank != 4 || v->dims[1] == 1 || v->dims[2] * v->dims[3] == 1;
}

static bool nhwc_candidate(const fc_value *v) { return v->rank == 4 && v->dtype == FC_DT_FLOAT && !layout_free(v); }

static int root_of(const fc_plan *p, int v) {
  while (v >= 0 && p->alias[v] >= 0) v = p->alias[v];
  return v;
}

/* ---- layout conversions -------------------------------------------------------------------- */

static fc_node *conversion_node(const char *op, int from, int to) {
  fc_node *n = fc_calloc(1, sizeof *n);
  if (!n) return NULL;
  n->op_type = fc_strdup(op);
  n->domain = fc_strdup("flopcut");
  n->inputs = fc_calloc(1, sizeof(int));
  n->outputs = fc_calloc(1, sizeof(int));
  if (!n->op_type || !n->domain || !n->inputs || !n->outputs) {
    free(n->op_type);
    free(n->domain);
    free(n->inputs);
    free(n->outputs);
    free(n);
    return NULL;
  }
  n->name = n->op_type; /* shared: freed once, see free_own_node */
  n->inputs[0] = from;
  n->outputs[0] = to;
  n->n_inputs = n->n_outputs = 1;
  return n;
}

static void free_own_node(fc_node *n) {
  if (!n) return;
  free(n->op_type);
  free(n->domain);
  free(n->inputs);
  free(n->outputs);
  free(n);
}

/* A new value with v's dtype and shape and a unique name. */
static int twin_value(fc_plan *p, int v, const char *suffix) {
  char name[300];
  int idx = -1;
  for (int k = 0; k < 1000 && idx < 0; k++) {
    snprintf(name, sizeof name, "%.240s#%s%d", p->g->values[v].name, suffix, k);
    if (fc_graph_find(p->g, name) < 0) idx = fc_graph_value(p->g, name);
  }
  if (idx < 0 || !grow_values(p)) return -1;
  fc_value *t = &p->g->values[idx], *s = &p->g->values[v];
  t->dtype = s->dtype;
  t->rank = s->rank;
  memcpy(t->dims, s->dims, sizeof t->dims);
  return idx;
}

/* A constant's NHWC copy, transposed once at plan time. */
static int const_to_nhwc(fc_plan *p, int v) {
  int t = twin_value(p, v, "nhwc");
  if (t < 0) return -1;
  const fc_value *s = &p->g->values[v];
  int64_t n = s->dims[0], c = s->dims[1], hw = s->dims[2] * s->dims[3];
  float *d = fc_malloc((size_t)(n * c * hw) * sizeof(float));
  if (!d) return -1;
  const float *src = s->data;
  for (int64_t i = 0; i < n; i++)
    for (int64_t ch = 0; ch < c; ch++)
      for (int64_t q = 0; q < hw; q++) d[(i * hw + q) * c + ch] = src[(i * c + ch) * hw + q];
  p->g->values[t].data = d;
  p->g->values[t].is_initializer = true;
  p->layout[t] = FC_LAYOUT_NHWC;
  return t;
}

/* The value holding v in layout `want`, adding a conversion step the first time it is needed. */
static int in_layout_of(fc_plan *p, int v, int want, fc_err *err) {
  if (v < 0 || p->layout[v] == want || layout_free(&p->g->values[v])) return v;
  int *copy = want == FC_LAYOUT_NHWC ? &p->nhwc_copy[v] : &p->plain_copy[v];
  if (*copy >= 0) return *copy;
  int t;
  if (is_const(p->g, v) && want == FC_LAYOUT_NHWC) {
    t = const_to_nhwc(p, v);
    if (t < 0) return fc_fail(err, FC_ERR_NOMEM, "out of memory planning layouts"), -1;
  } else {
    t = twin_value(p, v, want == FC_LAYOUT_NHWC ? "nhwc" : "plain");
    fc_node *n = t < 0 ? NULL : conversion_node(want == FC_LAYOUT_NHWC ? "fc.ToNHWC" : "fc.ToPlain", v, t);
    fc_step *s = n ? new_step(p, err) : NULL;
    if (!s) {
      free_own_node(n);
      return fc_fail(err, FC_ERR_NOMEM, "out of memory planning layouts"), -1;
    }
    s->own_node = n;
    s->k = fc_kernel_find_nhwc(n->op_type);
    s->in_vals = fc_calloc(1, sizeof(int));
    s->out_vals = fc_calloc(1, sizeof(int));
    s->in_layout = fc_calloc(1, 1);
    s->out_layout = fc_calloc(1, 1);
    if (!s->in_vals || !s->out_vals || !s->in_layout || !s->out_layout)
      return fc_fail(err, FC_ERR_NOMEM, "out of memory planning layouts"), -1;
    s->in_vals[0] = v;
    s->out_vals[0] = t;
    s->in_layout[0] = p->layout[v];
    s->out_layout[0] = (uint8_t)want;
    p->layout[t] = (uint8_t)want;
  }
  /* re-fetch: adding a value may have moved the arrays */
  copy = want == FC_LAYOUT_NHWC ? &p->nhwc_copy[v] : &p->plain_copy[v];
  *copy = t;
  return t;
}

/* ---- choosing a kernel and layouts per node ------------------------------------------------- */

static bool is_view_op(const fc_graph *g, const fc_node *n) {
  const char *op = n->op_type;
  bool view = !strcmp(op, "Reshape") || !strcmp(op, "Flatten") || !strcmp(op, "Squeeze") ||
              !strcmp(op, "Unsqueeze") || !strcmp(op, "Identity") || !strcmp(op, "Dropout");
  if (!view || n->n_inputs < 1 || n->inputs[0] < 0 || n->n_outputs < 1 || n->outputs[0] < 0) return false;
  for (int o = 1; o < n->n_outputs; o++)
    if (n->outputs[o] >= 0) return false; /* Dropout's mask: let a kernel write it */
  const fc_value *x = &g->values[n->inputs[0]], *y = &g->values[n->outputs[0]];
  return x->dtype == y->dtype && fc_value_numel(x) == fc_value_numel(y) && !y->is_graph_input;
}

/* Ops computing each output element from the same-index input elements only: run unchanged on
 * NHWC data when every non-scalar operand has the output's shape. */
static bool is_pointwise(const fc_graph *g, const fc_node *n) {
  static const char *const ops[] = {
      "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "Exp", "Log", "Sqrt", "Neg",
      "Abs", "Reciprocal", "Floor", "Ceil", "Round", "Clip", "Elu", "Softplus", "Gelu", "Sign", "Add", "Sub",
      "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Identity", "Dropout", "PRelu", NULL};
  bool known = false;
  for (int i = 0; ops[i] && !known; i++) known = !strcmp(ops[i], n->op_type);
  if (!known || n->n_outputs < 1 || n->outputs[0] < 0) return false;
  const fc_value *y = &g->values[n->outputs[0]];
  if (y->rank != 4 || y->dtype != FC_DT_FLOAT) return false;
  for (int o = 1; o < n->n_outputs; o++)
    if (n->outputs[o] >= 0) return false;
  for (int i = 0; i < n->n_inputs; i++) {
    if (n->inputs[i] < 0) continue;
    const fc_value *x = &g->values[n->inputs[i]];
    int64_t numel = fc_value_numel(x);
    if (numel == 1) continue;
    /* only float values are ever stored NHWC: a same-shaped input of another type stays plain */
    if (x->rank != 4 || x->dtype != FC_DT_FLOAT || memcmp(x->dims, y->dims, 4 * sizeof(int64_t))) return false;
    if (!strcmp(n->op_type, "PRelu") && i == 1) return false;
  }
  return true;
}

static bool any_nhwc_input(const fc_plan *p, const fc_node *n) {
  for (int i = 0; i < n->n_inputs; i++)
    if (n->inputs[i] >= 0 && p->layout[n->inputs[i]] == FC_LAYOUT_NHWC) return true;
  return false;
}

/* Sets the step's layouts for NHWC mode: every non-constant (or, for pointwise ops, any) rank-4
 * input that is not layout-free is read NHWC, except a convolution's weights and bias. */
static void nhwc_layouts(const fc_plan *p, const fc_node *n, bool conv, uint8_t *in_l, uint8_t *out_l) {
  for (int i = 0; i < n->n_inputs; i++) {
    int v = n->inputs[i];
    in_l[i] = FC_LAYOUT_PLAIN;
    if (v < 0 || (conv && (i == 1 || i == 2))) continue;
    if (nhwc_candidate(&p->g->values[v])) in_l[i] = FC_LAYOUT_NHWC;
  }
  for (int o = 0; o < n->n_outputs; o++) {
    int v = n->outputs[o];
    out_l[o] = (v >= 0 && nhwc_candidate(&p->g->values[v])) ? FC_LAYOUT_NHWC : FC_LAYOUT_PLAIN;
  }
}

static fc_status prepare_step(fc_plan *p, fc_step *s, fc_err *err) {
  s->en.g = p->g;
  s->en.threads = p->threads;
  s->en.in_layout = s->in_layout;
  s->en.out_layout = s->out_layout;
  fc_status st = s->k->prepare(&s->en, err);
  s->prepared = true; /* release runs even after a failed prepare: it frees partial state */
  return st;
}

/* MACs that touch a nonzero of the node's constant weight (all of them without one): counted at
 * plan time, before packing kernels may release the weight. */
static int64_t step_nonzero_macs(const fc_graph *g, const fc_node *n, int64_t macs) {
  int wi = fc_cost_weight_input(g, n);
  const fc_value *w = wi >= 0 ? fc_node_in(g, n, wi) : NULL;
  if (!w || !w->data || w->dtype != FC_DT_FLOAT) return macs;
  int64_t numel = fc_value_numel(w), nz = 0;
  const float *d = w->data;
  for (int64_t i = 0; i < numel; i++) nz += d[i] != 0.0f;
  return numel > 0 ? macs / numel * nz : macs;
}

static fc_status plan_node(fc_plan *p, int ni, fc_err *err) {
  const fc_node *n = &p->g->nodes[ni];
  fc_graph *g = p->g;
  bool std_domain = !n->domain[0] || !strcmp(n->domain, "ai.onnx");
  if (!std_domain)
    return fc_fail(err, FC_ERR_UNSUPPORTED, "node '%s': op %s.%s is not supported by the runtime", n->name, n->domain,
                   n->op_type);
  if (!n->def || (!fc_kernel_find(n->op_type) && !is_view_op(g, n)))
    return fc_fail(err, FC_ERR_UNSUPPORTED, "node '%s': op %s is not supported by the runtime", n->name, n->op_type);
  /* shapes must be known: a node after an unsupported op has none */
  for (int o = 0; o < n->n_outputs; o++)
    if (n->outputs[o] >= 0 && !fc_value_known(&g->values[n->outputs[o]]))
      return fc_fail(err, FC_ERR_UNSUPPORTED, "node '%s' (%s): output shape unknown (an op before it is not supported)",
                     n->name, n->op_type);
  if (is_view_op(g, n)) {
    int x = n->inputs[0], y = n->outputs[0];
    bool keeps_layout = !strcmp(n->op_type, "Identity") || !strcmp(n->op_type, "Dropout");
    if (!keeps_layout) x = in_layout_of(p, x, FC_LAYOUT_PLAIN, err);
    if (x < 0) return err->status;
    p->alias[y] = x;
    p->layout[y] = p->layout[x];
    return FC_OK;
  }
  const fc_kernel *k = fc_kernel_find(n->op_type);
  if (!k)
    return fc_fail(err, FC_ERR_UNSUPPORTED, "node '%s': op %s has no kernel in the runtime", n->name, n->op_type);
  size_t ni_n = (size_t)n->n_inputs + 1, no_n = (size_t)n->n_outputs + 1;
  uint8_t *in_l = fc_calloc(ni_n, 1), *out_l = fc_calloc(no_n, 1);
  int *in_vals = fc_calloc(ni_n, sizeof(int)), *out_vals = fc_calloc(no_n, sizeof(int));
  if (!in_l || !out_l || !in_vals || !out_vals) {
    free(in_l);
    free(out_l);
    free(in_vals);
    free(out_vals);
    return fc_fail(err, FC_ERR_NOMEM, "out of memory planning");
  }
  const fc_value *x0 = n->n_inputs > 0 && n->inputs[0] >= 0 ? &g->values[n->inputs[0]] : NULL;
  /* a constant-weight Conv/Gemm/MatMul runs sparse (plain layout) when the cost model says so */
  fc_exec_node trial_en = {0};
  int in0_layout = n->n_inputs > 0 && n->inputs[0] >= 0 ? p->layout[n->inputs[0]] : FC_LAYOUT_PLAIN;
  const fc_kernel *sparse_k = fc_sparse_kernel_for(g, n, p->threads, in0_layout, &trial_en);
  bool conv = !sparse_k && (k->flags & FC_KERNEL_NHWC) && x0 && x0->rank == 4 && x0->dtype == FC_DT_FLOAT &&
              !p->no_nhwc; /* FC_NO_NHWC: everything plain (NCHW), to measure what the layout buys */
  bool nhwc = conv;
  const fc_kernel *chosen = sparse_k ? sparse_k : k;
  if (!sparse_k && !nhwc && any_nhwc_input(p, n)) {
    if (is_pointwise(g, n)) {
      nhwc = true;
    } else {
      const fc_kernel *kn = fc_kernel_find_nhwc(n->op_type);
      if (kn) {
        /* ask the NHWC kernel; it declines what it does not handle */
        nhwc_layouts(p, n, false, in_l, out_l);
        fc_err scratch = {0};
        trial_en = (fc_exec_node){.g = g, .node = n, .threads = p->threads, .in_layout = in_l, .out_layout = out_l};
        if (kn->prepare(&trial_en, &scratch) == FC_OK) {
          nhwc = true;
          chosen = kn;
        } else {
          if (kn->release) kn->release(&trial_en);
          if (scratch.status != FC_ERR_UNSUPPORTED) {
            free(in_l), free(out_l), free(in_vals), free(out_vals);
            return fc_fail(err, scratch.status, "%s", scratch.msg);
          }
          trial_en = (fc_exec_node){0};
        }
      }
    }
  }
  if (nhwc) nhwc_layouts(p, n, conv, in_l, out_l);
  else memset(in_l, 0, ni_n), memset(out_l, 0, no_n);
  fc_status st = FC_OK;
  for (int i = 0; i < n->n_inputs && !st; i++) {
    in_vals[i] = n->inputs[i] < 0 ? -1 : in_layout_of(p, n->inputs[i], in_l[i], err);
    if (n->inputs[i] >= 0 && in_vals[i] < 0) st = err->status;
  }
  fc_step *s = st ? NULL : new_step(p, err);
  if (!s) {
    if (trial_en.state && chosen->release) chosen->release(&trial_en);
    free(in_l), free(out_l), free(in_vals), free(out_vals);
    return st ? st : err->status;
  }
  n = &p->g->nodes[ni];
  s->k = chosen;
  s->en = trial_en;
  s->en.node = n;
  s->in_layout = in_l;
  s->out_layout = out_l;
  s->in_vals = in_vals;
  s->out_vals = out_vals;
  for (int o = 0; o < n->n_outputs; o++) {
    out_vals[o] = n->outputs[o];
    if (n->outputs[o] >= 0) p->layout[n->outputs[o]] = out_l[o];
  }
  if (n->def && n->def->cost) {
    fc_node_cost c = {0};
    n->def->cost(p->g, n, &c);
    s->macs = c.macs;
    s->flops = c.flops;
    s->nonzero_macs = step_nonzero_macs(p->g, n, c.macs);
  }
  if (trial_en.state || chosen != k) { /* already prepared by the NHWC trial */
    s->en.g = p->g;
    s->en.threads = p->threads;
    s->en.in_layout = in_l;
    s->en.out_layout = out_l;
    s->prepared = true;
    return FC_OK;
  }
  return prepare_step(p, s, err);
}

/* ---- arena --------------------------------------------------------------------------------- */

typedef struct buf {
  int64_t size, offset;
  int first, last;
  int value; /* -1: a step's scratch */
  int step;
} buf;

static int by_size_desc(const void *a, const void *b) {
  const buf *x = a, *y = b;
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  return x->first - y->first;
}

static int by_offset(const void *a, const void *b) {
  const buf *const *x = a, *const *y = b;
  return (*x)->offset < (*y)->offset ? -1 : (*x)->offset > (*y)->offset;
}

/* Greedy by size (largest first), each buffer placed in the smallest gap that fits among the
 * already placed buffers whose lifetimes overlap its own. */
static fc_status pack_arena(fc_plan *p, fc_err *err) {
  fc_graph *g = p->g;
  int nb = 0;
  buf *bufs = fc_calloc((size_t)(g->n_values + p->n_steps + 1), sizeof(buf));
  buf **live = fc_calloc((size_t)(g->n_values + p->n_steps + 1), sizeof(buf *));
  if (!bufs || !live) {
    free(bufs);
    free(live);
    return fc_fail(err, FC_ERR_NOMEM, "out of memory planning the arena");
  }
  for (int v = 0; v < g->n_values; v++) {
    if (p->first[v] < 0 || p->alias[v] >= 0 || g->values[v].data || g->values[v].is_graph_input) continue;
    int64_t bytes = fc_value_numel(&g->values[v]) * (int64_t)fc_dtype_size(g->values[v].dtype);
    if (p->layout[v] == FC_LAYOUT_PADDED) {
      const fc_value *x = &g->values[v];
      bytes = x->dims[0] * x->dims[1] * fc_padded_plane(x->dims[2] * x->dims[3]) * (int64_t)sizeof(float);
    }
    bufs[nb++] = (buf){(bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN, -1, p->first[v],
                       p->last[v] < p->first[v] ? p->first[v] : p->last[v], v, -1};
  }
  for (int s = 0; s < p->n_steps; s++)
    if (p->steps[s].en.scratch_bytes)
      bufs[nb++] = (buf){(int64_t)(p->steps[s].en.scratch_bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN, -1, s,
                         s, -1, s};
  qsort(bufs, (size_t)nb, sizeof(buf), by_size_desc);
  int64_t total = 0;
  for (int i = 0; i < nb; i++) {
    int nl = 0;
    for (int j = 0; j < i; j++)
      if (bufs[j].first <= bufs[i].last && bufs[i].first <= bufs[j].last) live[nl++] = &bufs[j];
    qsort(live, (size_t)nl, sizeof(buf *), by_offset);
    int64_t best = -1, best_gap = INT64_MAX, at = 0;
    for (int j = 0; j < nl; j++) {
      int64_t gap = live[j]->offset - at;
      if (gap >= bufs[i].size && gap < best_gap) {
        best = at;
        best_gap = gap;
      }
      if (live[j]->offset + live[j]->size > at) at = live[j]->offset + live[j]->size;
    }
    bufs[i].offset = best >= 0 ? best : at;
    if (bufs[i].offset + bufs[i].size > total) total = bufs[i].offset + bufs[i].size;
  }
  for (int i = 0; i < nb; i++) {
    if (bufs[i].value >= 0) p->offset[bufs[i].value] = bufs[i].offset;
    else p->steps[bufs[i].step].scratch_off = bufs[i].offset;
  }
  free(bufs);
  free(live);
  if (total > FC_MAX_TENSOR_BYTES) return fc_fail(err, FC_ERR_NOMEM, "the activations need %lld bytes", (long long)total);
  p->arena_bytes = (size_t)total;
  if (total) {
    p->arena = aligned_alloc(ARENA_ALIGN, (size_t)total);
    if (!p->arena) return fc_fail(err, FC_ERR_NOMEM, "out of memory allocating a %lld-byte arena", (long long)total);
  }
  return FC_OK;
}

/* Lifetimes (in steps) of every stored value; a view keeps its root alive. */
static void lifetimes(fc_plan *p) {
  for (int s = 0; s < p->n_steps; s++) {
    const fc_step *st = &p->steps[s];
    const fc_node *n = st->own_node ? st->own_node : st->en.node;
    for (int o = 0; o < n->n_outputs; o++) {
      int v = st->out_vals[o];
      if (v >= 0 && p->first[v] < 0) p->first[v] = s;
    }
    for (int i = 0; i < n->n_inputs; i++) {
      int r = root_of(p, st->in_vals[i]);
      if (r >= 0 && s > p->last[r]) p->last[r] = s;
    }
  }
  for (int o = 0; o < p->g->n_outputs; o++) {
    int r = root_of(p, p->out_src[o]);
    if (r >= 0) p->last[r] = p->n_steps;
  }
}

/* Constants the plan made itself (folded BatchNorm weights, NHWC copies) that every reader packed
 * into its own state at prepare are never read again: free them. Shared ones belong to the model. */
static void release_packed_constants(fc_plan *p) {
  fc_graph *g = p->g;
  int first_owned = p->model->graph->n_values;
  int n_owned = g->n_values - first_owned;
  if (n_owned <= 0) return;
  bool *keep = fc_calloc((size_t)n_owned, sizeof(bool));
  if (!keep) return; /* keeping them is always correct */
  for (int s = 0; s < p->n_steps; s++) {
    const fc_step *st = &p->steps[s];
    const fc_node *n = st->en.node;
    for (int k = 0; k < n->n_inputs; k++) {
      int v = st->in_vals[k];
      if (v >= first_owned && !(k < 32 && (st->en.packed_inputs >> k) & 1u)) keep[v - first_owned] = true;
    }
  }
  for (int o = 0; o < g->n_outputs; o++) {
    int r = root_of(p, p->out_src[o]);
    if (r >= first_owned) keep[r - first_owned] = true;
  }
  for (int v = 0; v < g->n_values; v++) {
    int r = root_of(p, v);
    if (r != v && r >= first_owned) keep[r - first_owned] = true; /* a view of it is read */
  }
  for (int i = 0; i < n_owned; i++) {
    fc_value *val = &g->values[first_owned + i];
    if (keep[i] || !val->data) continue;
    free(val->data);
    val->data = NULL;
  }
  free(keep);
}

/* ---- public entry points ------------------------------------------------------------------- */

static fc_status run_passes(fc_graph *g, fc_err *err) {
  fc_status st = fc_pass_drop_dead(g, err);
  if (!st && !getenv("FC_NO_FUSE")) st = fc_pass_fold_batchnorm(g, NULL, err);
  if (!st && !getenv("FC_NO_FUSE")) st = fc_pass_fuse_post_ops(g, NULL, err);
  return st;
}

fc_status fc_plan_create(fc_ctx *ctx, const fc_model *model, const fc_plan_options *options, fc_plan **out) {
  fc_err *err = &ctx->err;
  fc_err_clear(err);
  *out = NULL;
  if (!model) return fc_fail(err, FC_ERR_ARG, "no model");
  int threads = options && options->threads > 0 ? options->threads : omp_get_num_procs();
  if (threads > 1024) return fc_fail(err, FC_ERR_ARG, "thread count %d is out of range", threads);
  fc_plan *p = fc_calloc(1, sizeof *p);
  if (!p) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  p->model = model;
  p->threads = threads;
  fc_binding_plan(&p->binding, threads);
  p->no_nhwc = getenv("FC_NO_NHWC") != NULL;
  int saved_threads = omp_get_max_threads();
  omp_set_num_threads(threads); /* oneDNN sizes its primitives for the threads it will get */
  /* constants are shared with the model (it outlives the plan), not copied: ResNet-50 would
   * otherwise hold its 100 MB of weights twice before oneDNN packs a third copy */
  fc_status st = fc_graph_clone(model->graph, true, &p->g, err);
  if (!st) st = run_passes(p->g, err);
  if (!st && !grow_values(p)) st = fc_fail(err, FC_ERR_NOMEM, "out of memory");
  if (!st) {
    for (int i = 0; i < p->g->n_inputs; i++)
      if (!fc_value_known(&p->g->values[p->g->inputs[i]]))
        st = fc_fail(err, FC_ERR_SHAPE, "input '%s' has no fixed shape", p->g->values[p->g->inputs[i]].name);
  }
  for (int i = 0; !st && i < p->g->n_nodes; i++) st = plan_node(p, i, err);
  if (!st) {
    p->out_src = fc_calloc((size_t)p->g->n_outputs + 1, sizeof(int));
    if (!p->out_src) st = fc_fail(err, FC_ERR_NOMEM, "out of memory");
  }
  for (int o = 0; !st && o < p->g->n_outputs; o++) {
    int v = p->g->outputs[o];
    if (!fc_value_known(&p->g->values[v]))
      st = fc_fail(err, FC_ERR_UNSUPPORTED, "output '%s' cannot be computed (an op before it is not supported)",
                   p->g->values[v].name);
    if (!st) {
      p->out_src[o] = in_layout_of(p, v, FC_LAYOUT_PLAIN, err);
      if (p->out_src[o] < 0) st = err->status;
    }
  }
  if (!st) st = fc_plan_pad_planes(p, err);
  if (!st) {
    lifetimes(p);
    st = pack_arena(p, err);
  }
  for (int s = 0; !st && s < p->n_steps; s++) {
    fc_step *stp = &p->steps[s];
    if (stp->own_node) {
      stp->en.node = stp->own_node;
      st = prepare_step(p, stp, err);
    }
    const fc_node *n = stp->en.node;
    stp->in = fc_calloc((size_t)n->n_inputs + 1, sizeof(void *));
    stp->out = fc_calloc((size_t)n->n_outputs + 1, sizeof(void *));
    if (!st && (!stp->in || !stp->out)) st = fc_fail(err, FC_ERR_NOMEM, "out of memory");
  }
  if (!st) release_packed_constants(p);
  omp_set_num_threads(saved_threads);
  if (st) {
    fc_plan_free(p);
    return st;
  }
  *out = p;
  return FC_OK;
}

void fc_plan_free(fc_plan *p) {
  if (!p) return;
  for (int s = 0; s < p->n_steps; s++) {
    fc_step *st = &p->steps[s];
    if (st->prepared && st->k && st->k->release) st->k->release(&st->en);
    free_own_node(st->own_node);
    free(st->in_layout);
    free(st->out_layout);
    free(st->in_vals);
    free(st->out_vals);
    free(st->in);
    free(st->out);
  }
  free(p->steps);
  free(p->layout);
  free(p->nhwc_copy);
  free(p->plain_copy);
  free(p->alias);
  free(p->first);
  free(p->last);
  free(p->offset);
  free(p->ptr);
  free(p->out_src);
  free(p->arena);
  if (p->g) fc_graph_unshare(p->g, p->model->graph);
  fc_graph_free(p->g);
  free(p);
}

int fc_plan_threads(const fc_plan *p) { return p->threads; }
int fc_plan_pinned(const fc_plan *p) { return p->binding.on ? 1 : 0; }
size_t fc_plan_arena_bytes(const fc_plan *p) { return p->arena_bytes; }
size_t fc_plan_step_count(const fc_plan *p) { return (size_t)p->n_steps; }

fc_status fc_plan_step(const fc_plan *p, size_t i, fc_plan_step_info *out) {
  if (i >= (size_t)p->n_steps) return FC_ERR_ARG;
  const fc_step *s = &p->steps[i];
  const fc_node *n = s->en.node;
  out->name = s->own_node ? p->g->values[s->out_vals[0]].name : n->name;
  out->op_type = n->op_type;
  out->fused = s->own_node ? "" : fc_attr_str(n, FC_ATTR_FUSED, "");
  out->kernel = s->k->describe ? s->k->describe(&s->en) : "";
  bool nhwc = false, padded = false;
  for (int k = 0; k < n->n_inputs + n->n_outputs; k++) {
    const int l = k < n->n_inputs ? s->in_layout[k] : s->out_layout[k - n->n_inputs];
    nhwc = nhwc || l == FC_LAYOUT_NHWC;
    padded = padded || l == FC_LAYOUT_PADDED;
  }
  out->layout = nhwc ? "nhwc" : padded ? "padded" : "plain";
  out->macs = s->macs;
  out->nonzero_macs = s->nonzero_macs;
  out->flops = s->flops;
  return FC_OK;
}
