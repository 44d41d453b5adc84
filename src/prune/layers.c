/* Finds what can be pruned: the stored tensor behind each Conv/ConvTranspose/Gemm/MatMul weight
 * operand, its consumers and MACs, its channel axes, and the reasons other weights cannot be. */
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cost/cost.h"
#include "prune/prune.h"
#include "util/mem.h"

/* Follows folded Identity outputs back to the stored tensor; chain[] receives the copies passed. */
static int resolve(const fc_graph *g, int v, int *chain, int *n_chain, int max) {
  *n_chain = 0;
  for (int guard = 0; v >= 0 && guard < g->n_values; guard++) {
    const fc_value *val = &g->values[v];
    if (val->producer < 0) return v;
    const fc_node *p = &g->nodes[val->producer];
    if (strcmp(p->op_type, "Identity") || p->n_inputs < 1 || p->inputs[0] < 0 || !val->folded) return v;
    if (*n_chain < max) chain[(*n_chain)++] = v;
    v = p->inputs[0];
  }
  return v;
}

static int64_t prod(const int64_t *d, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; i++) p *= d[i];
  return p;
}

/* Channel axes of weight operand widx of node n (see fc_prune_axes). */
static bool node_axes(const fc_node *n, int widx, const fc_value *w, fc_prune_axes *ax) {
  const int64_t *d = w->dims;
  int r = w->rank;
  memset(ax, 0, sizeof *ax);
  ax->n_a = ax->n_b = ax->n_out = ax->n_in = 1;
  if (r < 1) return false;
  if (!strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "ConvTranspose")) {
    if (r < 2 || widx != 1) return false;
    int64_t s = prod(d, 2, r);
    bool conv = n->op_type[4] == '\0';
    ax->n_b = s;
    ax->s_b = 1;
    if (conv) { /* [Cout, Cin/g, k…] */
      ax->n_out = d[0], ax->s_out = d[1] * s;
      ax->n_in = d[1], ax->s_in = s;
    } else {    /* [Cin, Cout/g, k…] */
      ax->n_in = d[0], ax->s_in = d[1] * s;
      ax->n_out = d[1], ax->s_out = s;
    }
    return true;
  }
  if (!strcmp(n->op_type, "Gemm")) {
    if (r != 2) return false;
    bool t = fc_attr_int(n, widx == 1 ? "transB" : "transA", 0) != 0;
    /* B is [K, N] ([N, K] transposed); A is [M, K] ([K, M] transposed): outputs are N or M */
    bool k_first = widx == 1 ? !t : t;
    if (k_first) {
      ax->n_in = d[0], ax->s_in = d[1];
      ax->n_out = d[1], ax->s_out = 1;
    } else {
      ax->n_out = d[0], ax->s_out = d[1];
      ax->n_in = d[1], ax->s_in = 1;
    }
    return true;
  }
  if (!strcmp(n->op_type, "MatMul")) {
    if (r == 1) {
      ax->n_in = d[0], ax->s_in = 1;
      return true;
    }
    int64_t m0 = d[r - 2], m1 = d[r - 1];
    ax->n_a = prod(d, 0, r - 2);
    ax->s_a = m0 * m1;
    if (widx == 1) { /* B [..., K, N] */
      ax->n_in = m0, ax->s_in = m1;
      ax->n_out = m1, ax->s_out = 1;
    } else {         /* A [..., M, K] */
      ax->n_out = m0, ax->s_out = m1;
      ax->n_in = m1, ax->s_in = 1;
    }
    return true;
  }
  return false;
}

static bool axes_equal(const fc_prune_axes *a, const fc_prune_axes *b) { return !memcmp(a, b, sizeof *a); }

static bool matches(const char *const *pat, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (!fnmatch(pat[i], s, 0)) return true;
  return false;
}

static fc_status add_skip(fc_prune_set *s, const fc_node *n, fc_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static fc_status add_skip(fc_prune_set *s, const fc_node *n, fc_err *err, const char *fmt, ...) {
  fc_prune_skip *k = fc_realloc_array(s->skipped, s->n_skipped + 1, sizeof *k);
  if (!k) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  s->skipped = k;
  k += s->n_skipped++;
  k->node = n->name;
  k->op_type = n->op_type;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(k->reason, sizeof k->reason, fmt, ap);
  va_end(ap);
  return FC_OK;
}

static fc_status push_int(int **arr, int *n, int v, fc_err *err) {
  for (int i = 0; i < *n; i++)
    if ((*arr)[i] == v) return FC_OK;
  int *a = fc_realloc_array(*arr, (size_t)*n + 1, sizeof(int));
  if (!a) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  a[(*n)++] = v;
  *arr = a;
  return FC_OK;
}

/* Why the weight operand of node i (weight value wv, stored as src) cannot be pruned, or NULL. */
static const char *weight_problem(const fc_model *m, int i, const fc_value *src, char *buf, size_t n) {
  const fc_graph *g = m->graph;
  if (src->producer >= 0 && !src->from_constant_node) {
    const fc_node *p = &g->nodes[src->producer];
    snprintf(buf, n, "weight is computed by %s node '%s', not stored", p->op_type, p->name);
    return buf;
  }
  if (!src->is_initializer && !src->from_constant_node) {
    snprintf(buf, n, "weight '%s' is not a stored constant", src->name);
    return buf;
  }
  if (src->dtype != FC_DT_FLOAT) {
    snprintf(buf, n, "weight '%s' is %s; prune handles float32", src->name, fc_dtype_name(src->dtype));
    return buf;
  }
  int64_t numel = fc_value_numel(src);
  if (numel <= 0) {
    snprintf(buf, n, "weight '%s' is empty", src->name);
    return buf;
  }
  if (m->costs[i].macs % numel) {
    snprintf(buf, n, "MACs %lld are not a multiple of the weight's %lld elements", (long long)m->costs[i].macs,
             (long long)numel);
    return buf;
  }
  return NULL;
}

static fc_status collect(fc_prune_set *s, int *layer_of, fc_err *err) {
  fc_model *m = s->model;
  fc_graph *g = m->graph;
  int chain[64], n_chain;
  char why[160];
  for (int i = 0; i < g->n_nodes; i++) {
    const fc_node *n = &g->nodes[i];
    bool conv = !strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "ConvTranspose");
    bool mm = !strcmp(n->op_type, "Gemm") || !strcmp(n->op_type, "MatMul");
    if (!conv && !mm) continue;
    if (m->states[i] != FC_NODE_OK) {
      fc_status st = add_skip(s, n, err, "%s", m->states[i] == FC_NODE_UNSUPPORTED ? "op not supported"
                                                                                    : "shape unknown (input from an unsupported node)");
      if (st) return st;
      continue;
    }
    int widx = fc_cost_weight_input(g, n);
    if (widx < 0) continue; /* two activations (attention): nothing stored to prune */
    int src = resolve(g, n->inputs[widx], chain, &n_chain, 64);
    fc_value *sv = &g->values[src];
    const char *problem = n_chain == 64 ? "Identity chain too long" : weight_problem(m, i, sv, why, sizeof why);
    if (problem) {
      fc_status st = add_skip(s, n, err, "%s", problem);
      if (st) return st;
      continue;
    }
    fc_prune_axes ax;
    bool ax_ok = node_axes(n, widx, sv, &ax);
    int li = layer_of[src];
    if (li < 0) {
      fc_prune_layer *ls = fc_realloc_array(s->layers, s->n_layers + 1, sizeof *ls);
      if (!ls) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
      s->layers = ls;
      li = layer_of[src] = (int)s->n_layers++;
      fc_prune_layer *l = &ls[li];
      memset(l, 0, sizeof *l);
      l->name = n->name;
      l->op_type = n->op_type;
      l->tensor = sv->name;
      l->value = src;
      l->w = sv->data;
      l->numel = fc_value_numel(sv);
      l->axes = ax;
      l->axes_ok = ax_ok;
    }
    fc_prune_layer *l = &s->layers[li];
    if (!axes_equal(&l->axes, &ax) || !ax_ok) l->axes_ok = false;
    if (!fc_add_i64(l->macs, m->costs[i].macs, &l->macs)) return fc_fail(err, FC_ERR_INVALID, "MACs overflow");
    fc_status st = push_int(&l->nodes, &l->n_nodes, i, err);
    for (int c = 0; !st && c < n_chain; c++) st = push_int(&l->copies, &l->n_copies, chain[c], err);
    if (st) return st;
  }
  return FC_OK;
}

/* A pruned tensor must not change anything but the weights: refuse tensors also read as something
 * else (an Add operand, a graph output, a second role in the same node). */
static void check_other_uses(fc_prune_set *s, int *layer_of) {
  fc_graph *g = s->model->graph;
  int chain[64], n_chain;
  for (int i = 0; i < g->n_nodes; i++) {
    const fc_node *n = &g->nodes[i];
    const fc_value *out0 = fc_node_out(g, n, 0);
    if (!strcmp(n->op_type, "Identity") && out0 && out0->folded) continue; /* its readers are checked */
    int widx = s->model->states[i] == FC_NODE_OK ? fc_cost_weight_input(g, n) : -1;
    for (int k = 0; k < n->n_inputs; k++) {
      if (n->inputs[k] < 0) continue;
      int src = resolve(g, n->inputs[k], chain, &n_chain, 64);
      int li = layer_of[src];
      if (li < 0) continue;
      fc_prune_layer *l = &s->layers[li];
      bool weight_use = false;
      for (int j = 0; k == widx && j < l->n_nodes; j++) weight_use |= l->nodes[j] == i;
      if (!weight_use && !l->note[0])
        snprintf(l->note, sizeof l->note, "also read by %s node '%s'", n->op_type, n->name);
    }
  }
  for (int o = 0; o < g->n_outputs; o++) {
    int src = resolve(g, g->outputs[o], chain, &n_chain, 64);
    if (layer_of[src] >= 0 && !s->layers[layer_of[src]].note[0])
      snprintf(s->layers[layer_of[src]].note, sizeof s->layers[0].note, "is a graph output");
  }
}

/* Moves layers with a note (not prunable) to the skipped list. */
static fc_status drop_unprunable(fc_prune_set *s, fc_err *err) {
  size_t keep = 0;
  for (size_t li = 0; li < s->n_layers; li++) {
    fc_prune_layer *l = &s->layers[li];
    if (!l->note[0]) {
      s->layers[keep++] = *l;
      continue;
    }
    fc_status st = FC_OK;
    for (int j = 0; j < l->n_nodes && !st; j++)
      st = add_skip(s, &s->model->graph->nodes[l->nodes[j]], err, "weight '%s' %s", l->tensor, l->note);
    free(l->nodes);
    free(l->copies);
    if (st) {
      for (size_t r = li + 1; r < s->n_layers; r++) s->layers[keep++] = s->layers[r];
      s->n_layers = keep;
      return st;
    }
  }
  s->n_layers = keep;
  return FC_OK;
}

int64_t fc_prune_count_nonzero(const float *w, int64_t n) {
  int64_t nz = 0;
  for (int64_t i = 0; i < n; i++) nz += w[i] != 0.0f;
  return nz;
}

fc_status fc_prune_set_create(fc_model *m, const char *const *exclude, size_t n_exclude, fc_prune_set **out,
                              fc_err *err) {
  *out = NULL;
  fc_prune_set *s = fc_calloc(1, sizeof *s);
  int *layer_of = fc_calloc((size_t)m->graph->n_values, sizeof(int));
  if (!s || !layer_of) {
    free(s);
    free(layer_of);
    return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  }
  s->model = m;
  for (int v = 0; v < m->graph->n_values; v++) layer_of[v] = -1;
  fc_status st = collect(s, layer_of, err);
  if (!st) {
    check_other_uses(s, layer_of);
    st = drop_unprunable(s, err);
  }
  free(layer_of);
  for (size_t li = 0; !st && li < s->n_layers; li++) {
    fc_prune_layer *l = &s->layers[li];
    l->macs_per_weight = l->macs / l->numel; /* exact: each consumer's MACs were checked divisible */
    l->nnz_before = l->nnz = fc_prune_count_nonzero(l->w, l->numel);
    bool ex = matches(exclude, n_exclude, l->tensor);
    for (int j = 0; j < l->n_nodes && !ex; j++) ex = matches(exclude, n_exclude, m->graph->nodes[l->nodes[j]].name);
    l->excluded = ex;
  }
  if (st) {
    fc_prune_set_free(s);
    return st;
  }
  *out = s;
  return FC_OK;
}

void fc_prune_set_free(fc_prune_set *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n_layers; i++) {
    free(s->layers[i].nodes);
    free(s->layers[i].copies);
  }
  free(s->layers);
  free(s->skipped);
  free(s);
}

void fc_prune_layer_sync(fc_prune_set *s, fc_prune_layer *l) {
  fc_graph *g = s->model->graph;
  l->nnz = fc_prune_count_nonzero(l->w, l->numel);
  for (int c = 0; c < l->n_copies; c++) {
    fc_value *v = &g->values[l->copies[c]];
    if (v->data && fc_value_numel(v) == l->numel) memcpy(v->data, l->w, (size_t)l->numel * sizeof(float));
  }
}

void fc_prune_finish(fc_prune_set *s) {
  for (size_t i = 0; i < s->n_layers; i++) fc_prune_layer_sync(s, &s->layers[i]);
  fc_cost_compute(s->model->graph, s->model->states, s->model->costs, &s->model->totals);
}
