/* Graph editing helpers for the passes: deep copy, node removal, new constants, attribute setters.
 * The IR's ownership rules are those of fc_graph_free: every string and array is owned once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops/infer_util.h"
#include "passes/passes.h"
#include "util/mem.h"

static void *dup_bytes(const void *p, size_t n, bool *ok) {
  if (!p) return NULL;
  void *q = fc_malloc(n ? n : 1);
  if (!q) {
    *ok = false;
    return NULL;
  }
  memcpy(q, p, n);
  return q;
}

static char *dup_str(const char *s, bool *ok) {
  if (!s) return NULL;
  char *d = fc_strdup(s);
  if (!d) *ok = false;
  return d;
}

static size_t value_bytes(const fc_value *v) {
  int64_t n = fc_value_numel(v);
  return n < 0 ? 0 : (size_t)n * fc_dtype_size(v->dtype);
}

static fc_tensor *dup_tensor(const fc_tensor *t, bool *ok) {
  if (!t) return NULL;
  fc_tensor *c = fc_calloc(1, sizeof *c);
  if (!c) {
    *ok = false;
    return NULL;
  }
  *c = *t;
  int64_t n = fc_numel(t->rank, t->dims);
  c->data = dup_bytes(t->data, n < 0 ? 0 : (size_t)n * fc_dtype_size(t->dtype), ok);
  return c;
}

static bool copy_attr(fc_attr *d, const fc_attr *s) {
  bool ok = true;
  *d = *s;
  d->name = dup_str(s->name, &ok);
  d->s = dup_str(s->s, &ok);
  d->ints = dup_bytes(s->ints, s->n_ints * sizeof(int64_t), &ok);
  d->floats = dup_bytes(s->floats, s->n_floats * sizeof(float), &ok);
  d->t = dup_tensor(s->t, &ok);
  return ok;
}

fc_status fc_graph_clone(const fc_graph *g, bool share_data, fc_graph **out, fc_err *err) {
  *out = NULL;
  fc_graph *c = fc_graph_new();
  bool ok = c != NULL;
  if (ok) {
    c->opset = g->opset;
    c->name = dup_str(g->name, &ok);
    c->values = fc_calloc((size_t)(g->cap_values ? g->cap_values : 1), sizeof(fc_value));
    c->nodes = fc_calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof(fc_node));
    c->inputs = dup_bytes(g->inputs, (size_t)g->n_inputs * sizeof(int), &ok);
    c->outputs = dup_bytes(g->outputs, (size_t)g->n_outputs * sizeof(int), &ok);
    c->hash = dup_bytes(g->hash, (size_t)g->hash_cap * sizeof(int), &ok);
    ok = ok && c->values && c->nodes;
  }
  if (ok) {
    c->cap_values = g->cap_values ? g->cap_values : 1;
    c->n_inputs = g->n_inputs;
    c->n_outputs = g->n_outputs;
    c->hash_cap = g->hash_cap;
    /* counts grow as entries are filled so that fc_graph_free frees exactly what was copied */
    for (int i = 0; i < g->n_values && ok; i++) {
      const fc_value *s = &g->values[i];
      fc_value *d = &c->values[c->n_values++];
      *d = *s;
      d->name = dup_str(s->name, &ok);
      d->data = share_data ? s->data : dup_bytes(s->data, value_bytes(s), &ok);
      for (int k = 0; k < FC_MAX_RANK; k++) d->dim_param[k] = dup_str(s->dim_param[k], &ok);
    }
    for (int i = 0; i < g->n_nodes && ok; i++) {
      const fc_node *s = &g->nodes[i];
      fc_node *d = &c->nodes[c->n_nodes++];
      *d = *s;
      d->attrs = NULL;
      d->n_attrs = 0;
      d->name = dup_str(s->name, &ok);
      d->op_type = dup_str(s->op_type, &ok);
      d->domain = dup_str(s->domain, &ok);
      d->inputs = dup_bytes(s->inputs, (size_t)s->n_inputs * sizeof(int), &ok);
      d->outputs = dup_bytes(s->outputs, (size_t)s->n_outputs * sizeof(int), &ok);
      if (!ok) break;
      if (s->n_attrs) {
        d->attrs = fc_calloc((size_t)s->n_attrs, sizeof(fc_attr));
        if (!d->attrs) ok = false;
        for (int a = 0; a < s->n_attrs && ok; a++) {
          ok = copy_attr(&d->attrs[a], &s->attrs[a]);
          d->n_attrs = a + 1;
        }
      }
    }
  }
  if (!ok) {
    if (share_data && c) fc_graph_unshare(c, g);
    fc_graph_free(c);
    return fc_fail(err, FC_ERR_NOMEM, "out of memory copying the graph");
  }
  *out = c;
  return FC_OK;
}

void fc_graph_unshare(fc_graph *copy, const fc_graph *from) {
  for (int i = 0; i < from->n_values && i < copy->n_values; i++)
    if (copy->values[i].data == from->values[i].data) copy->values[i].data = NULL;
}

void fc_graph_remove_nodes(fc_graph *g, const bool *remove) {
  int w = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    if (remove[i]) {
      fc_node_free(&g->nodes[i]);
      continue;
    }
    g->nodes[w++] = g->nodes[i];
  }
  g->n_nodes = w;
  for (int v = 0; v < g->n_values; v++) g->values[v].producer = -1;
  for (int i = 0; i < g->n_nodes; i++)
    for (int o = 0; o < g->nodes[i].n_outputs; o++)
      if (g->nodes[i].outputs[o] >= 0) g->values[g->nodes[i].outputs[o]].producer = i;
}

int fc_graph_add_const_f32(fc_graph *g, const char *base, int rank, const int64_t *dims, float **data) {
  char name[256];
  int idx = -1;
  for (int k = 0; k < 1000000; k++) {
    snprintf(name, sizeof name, "%.200s/fc%d", base, k);
    if (fc_graph_find(g, name) >= 0) continue;
    idx = fc_graph_value(g, name);
    break;
  }
  if (idx < 0) return -1;
  fc_value *v = &g->values[idx];
  v->dtype = FC_DT_FLOAT;
  v->rank = rank;
  for (int d = 0; d < rank; d++) v->dims[d] = dims[d];
  int64_t n = fc_value_numel(v);
  if (n < 0) return -1;
  v->data = fc_calloc((size_t)(n ? n : 1), sizeof(float));
  if (!v->data) return -1;
  v->is_initializer = true;
  *data = v->data;
  return idx;
}

static fc_attr *attr_slot(fc_node *n, const char *name, fc_err *err) {
  for (int a = 0; a < n->n_attrs; a++)
    if (!strcmp(n->attrs[a].name, name)) {
      fc_attr *at = &n->attrs[a];
      free(at->s);
      free(at->ints);
      free(at->floats);
      at->s = NULL;
      at->ints = NULL;
      at->floats = NULL;
      at->n_ints = at->n_floats = 0;
      return at;
    }
  fc_attr *na = fc_realloc_array(n->attrs, (size_t)n->n_attrs + 1, sizeof(fc_attr));
  if (!na) {
    fc_fail(err, FC_ERR_NOMEM, "out of memory");
    return NULL;
  }
  n->attrs = na;
  fc_attr *at = &n->attrs[n->n_attrs];
  memset(at, 0, sizeof *at);
  at->name = fc_strdup(name);
  if (!at->name) {
    fc_fail(err, FC_ERR_NOMEM, "out of memory");
    return NULL;
  }
  n->n_attrs++;
  return at;
}

fc_status fc_node_set_ints(fc_node *n, const char *name, const int64_t *v, size_t count, fc_err *err) {
  fc_attr *a = attr_slot(n, name, err);
  if (!a) return FC_ERR_NOMEM;
  a->type = FC_ATTR_INTS;
  a->ints = fc_calloc(count ? count : 1, sizeof(int64_t));
  if (!a->ints) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  memcpy(a->ints, v, count * sizeof(int64_t));
  a->n_ints = count;
  return FC_OK;
}

fc_status fc_node_set_floats(fc_node *n, const char *name, const float *v, size_t count, fc_err *err) {
  fc_attr *a = attr_slot(n, name, err);
  if (!a) return FC_ERR_NOMEM;
  a->type = FC_ATTR_FLOATS;
  a->floats = fc_calloc(count ? count : 1, sizeof(float));
  if (!a->floats) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  memcpy(a->floats, v, count * sizeof(float));
  a->n_floats = count;
  return FC_OK;
}

fc_status fc_node_set_str(fc_node *n, const char *name, const char *s, fc_err *err) {
  fc_attr *a = attr_slot(n, name, err);
  if (!a) return FC_ERR_NOMEM;
  a->type = FC_ATTR_STRING;
  a->s = fc_strdup(s);
  return a->s ? FC_OK : fc_fail(err, FC_ERR_NOMEM, "out of memory");
}

int fc_node_post_ops(const fc_node *n, int *kinds, float *alpha, float *beta) {
  const fc_attr *k = fc_node_attr(n, FC_ATTR_POST_KINDS), *p = fc_node_attr(n, FC_ATTR_POST_PARAMS);
  if (!k || k->type != FC_ATTR_INTS || !p || p->type != FC_ATTR_FLOATS) return 0;
  int count = (int)k->n_ints;
  if (count > FC_MAX_POST_OPS || p->n_floats != 2 * k->n_ints) return 0;
  for (int i = 0; i < count; i++) {
    kinds[i] = (int)k->ints[i];
    alpha[i] = p->floats[2 * i];
    beta[i] = p->floats[2 * i + 1];
  }
  return count;
}
