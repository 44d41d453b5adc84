/* Graph IR housekeeping: value table with name lookup, attribute access, topological sort. */
#include "graph/graph.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/mem.h"

size_t fc_dtype_size(int dtype) {
  switch (dtype) {
    case FC_DT_FLOAT: case FC_DT_INT32: case FC_DT_UINT32: return 4;
    case FC_DT_UINT8: case FC_DT_INT8: case FC_DT_BOOL: return 1;
    case FC_DT_UINT16: case FC_DT_INT16: case FC_DT_FLOAT16: return 2;
    case FC_DT_INT64: case FC_DT_DOUBLE: case FC_DT_UINT64: return 8;
    default: return 0;
  }
}

const char *fc_dtype_name(int dtype) {
  static const char *names[] = {"undefined", "float32", "uint8", "int8", "uint16", "int16", "int32",
                                "int64", "string", "bool", "float16", "float64", "uint32", "uint64"};
  if (dtype >= 0 && dtype < (int)(sizeof names / sizeof names[0])) return names[dtype];
  return "unknown";
}

bool fc_dtype_is_int(int dtype) {
  switch (dtype) {
    case FC_DT_UINT8: case FC_DT_INT8: case FC_DT_UINT16: case FC_DT_INT16: case FC_DT_INT32:
    case FC_DT_INT64: case FC_DT_BOOL: case FC_DT_UINT32: case FC_DT_UINT64: return true;
    default: return false;
  }
}

bool fc_dtype_is_float(int dtype) { return dtype == FC_DT_FLOAT || dtype == FC_DT_DOUBLE || dtype == FC_DT_FLOAT16; }

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else { /* subnormal: renormalise */
      exp = 127 - 15 + 1;
      while (!(man & 0x400)) { man <<= 1; exp--; }
      bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* Round-to-nearest-even float → IEEE half (folding fp16 constants writes them back as fp16). */
static uint16_t float_to_half(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  uint16_t sign = (uint16_t)((b >> 16) & 0x8000);
  uint32_t exp = (b >> 23) & 0xff, man = b & 0x7fffff;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0)); /* inf, nan */
  int e = (int)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00);                       /* overflow → inf */
  if (e <= 0) {                                                         /* subnormal or zero */
    if (e < -10) return sign;
    man |= 0x800000;
    uint32_t shift = (uint32_t)(14 - e), half = man >> shift, rest = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rest > mid || (rest == mid && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t half = ((uint32_t)e << 10) | (man >> 13), rest = man & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++; /* may carry into the exponent: still right */
  return (uint16_t)(sign | half);
}

int64_t fc_data_get_i64(int dtype, const void *d, int64_t i) {
  switch (dtype) {
    case FC_DT_INT64: return ((const int64_t *)d)[i];
    case FC_DT_INT32: return ((const int32_t *)d)[i];
    case FC_DT_INT16: return ((const int16_t *)d)[i];
    case FC_DT_INT8: return ((const int8_t *)d)[i];
    case FC_DT_UINT8: case FC_DT_BOOL: return ((const uint8_t *)d)[i];
    case FC_DT_UINT16: return ((const uint16_t *)d)[i];
    case FC_DT_UINT32: return ((const uint32_t *)d)[i];
    case FC_DT_UINT64: return (int64_t)((const uint64_t *)d)[i];
    case FC_DT_FLOAT: case FC_DT_DOUBLE: case FC_DT_FLOAT16: {
      double x = fc_data_get_f64(dtype, d, i);
      if (!(x > -9.2e18 && x < 9.2e18)) return x > 0 ? INT64_MAX : INT64_MIN;
      return (int64_t)x;
    }
    default: return 0; /* no data is ever held in a type flopcut cannot size */
  }
}

double fc_data_get_f64(int dtype, const void *d, int64_t i) {
  switch (dtype) {
    case FC_DT_FLOAT: return ((const float *)d)[i];
    case FC_DT_DOUBLE: return ((const double *)d)[i];
    case FC_DT_FLOAT16: return half_to_float(((const uint16_t *)d)[i]);
    default: return (double)fc_data_get_i64(dtype, d, i); /* never recurses back: i64 handles every other type */
  }
}

void fc_data_set_i64(int dtype, void *d, int64_t i, int64_t x) {
  switch (dtype) {
    case FC_DT_INT64: ((int64_t *)d)[i] = x; break;
    case FC_DT_INT32: ((int32_t *)d)[i] = (int32_t)x; break;
    case FC_DT_INT16: ((int16_t *)d)[i] = (int16_t)x; break;
    case FC_DT_INT8: ((int8_t *)d)[i] = (int8_t)x; break;
    case FC_DT_UINT8: ((uint8_t *)d)[i] = (uint8_t)x; break;
    case FC_DT_BOOL: ((uint8_t *)d)[i] = x != 0; break;
    case FC_DT_UINT16: ((uint16_t *)d)[i] = (uint16_t)x; break;
    case FC_DT_UINT32: ((uint32_t *)d)[i] = (uint32_t)x; break;
    case FC_DT_UINT64: ((uint64_t *)d)[i] = (uint64_t)x; break;
    case FC_DT_FLOAT: case FC_DT_DOUBLE: case FC_DT_FLOAT16: fc_data_set_f64(dtype, d, i, (double)x); break;
    default: break;
  }
}

void fc_data_set_f64(int dtype, void *d, int64_t i, double x) {
  switch (dtype) {
    case FC_DT_FLOAT: ((float *)d)[i] = (float)x; break;
    case FC_DT_DOUBLE: ((double *)d)[i] = x; break;
    case FC_DT_BOOL: ((uint8_t *)d)[i] = x != 0; break;
    case FC_DT_FLOAT16: ((uint16_t *)d)[i] = float_to_half((float)x); break;
    default:
      if (!(x > -9.2e18 && x < 9.2e18)) x = x > 0 ? 9.2e18 : -9.2e18;
      fc_data_set_i64(dtype, d, i, (int64_t)x);
      break;
  }
}

fc_graph *fc_graph_new(void) { return fc_calloc(1, sizeof(fc_graph)); }

static void tensor_free(fc_tensor *t) {
  if (!t) return;
  free(t->data);
  free(t);
}

void fc_node_free(fc_node *n) {
  free(n->name);
  free(n->op_type);
  free(n->domain);
  free(n->inputs);
  free(n->outputs);
  for (int a = 0; a < n->n_attrs; a++) {
    free(n->attrs[a].name);
    free(n->attrs[a].s);
    free(n->attrs[a].ints);
    free(n->attrs[a].floats);
    tensor_free(n->attrs[a].t);
  }
  free(n->attrs);
  memset(n, 0, sizeof *n);
}

void fc_graph_free(fc_graph *g) {
  if (!g) return;
  for (int i = 0; i < g->n_values; i++) {
    fc_value *v = &g->values[i];
    free(v->name);
    free(v->data);
    for (int d = 0; d < FC_MAX_RANK; d++) free(v->dim_param[d]);
  }
  for (int i = 0; i < g->n_nodes; i++) fc_node_free(&g->nodes[i]);
  free(g->values);
  free(g->nodes);
  free(g->inputs);
  free(g->outputs);
  free(g->name);
  free(g->hash);
  free(g);
}

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static bool rehash(fc_graph *g, int cap) {
  int *h = malloc(sizeof(int) * (size_t)cap);
  if (!h) return false;
  for (int i = 0; i < cap; i++) h[i] = -1;
  for (int v = 0; v < g->n_values; v++) {
    size_t p = hash_str(g->values[v].name) & (size_t)(cap - 1);
    while (h[p] >= 0) p = (p + 1) & (size_t)(cap - 1);
    h[p] = v;
  }
  free(g->hash);
  g->hash = h;
  g->hash_cap = cap;
  return true;
}

int fc_graph_find(const fc_graph *g, const char *name) {
  if (!g->hash_cap) return -1;
  size_t p = hash_str(name) & (size_t)(g->hash_cap - 1);
  while (g->hash[p] >= 0) {
    if (strcmp(g->values[g->hash[p]].name, name) == 0) return g->hash[p];
    p = (p + 1) & (size_t)(g->hash_cap - 1);
  }
  return -1;
}

int fc_graph_value(fc_graph *g, const char *name) {
  int found = fc_graph_find(g, name);
  if (found >= 0) return found;
  if (g->n_values >= (1 << 28)) return -1;
  if (g->n_values == g->cap_values) {
    int cap = g->cap_values ? g->cap_values * 2 : 64;
    fc_value *nv = fc_realloc_array(g->values, (size_t)cap, sizeof(fc_value));
    if (!nv) return -1;
    g->values = nv;
    g->cap_values = cap;
  }
  if ((g->n_values + 1) * 2 > g->hash_cap && !rehash(g, g->hash_cap ? g->hash_cap * 2 : 128)) return -1;
  fc_value *v = &g->values[g->n_values];
  memset(v, 0, sizeof *v);
  v->name = fc_strdup(name);
  if (!v->name) return -1;
  v->rank = -1;
  v->producer = -1;
  int idx = g->n_values++;
  size_t p = hash_str(name) & (size_t)(g->hash_cap - 1);
  while (g->hash[p] >= 0) p = (p + 1) & (size_t)(g->hash_cap - 1);
  g->hash[p] = idx;
  return idx;
}

bool fc_value_known(const fc_value *v) {
  if (v->rank < 0) return false;
  for (int d = 0; d < v->rank; d++)
    if (v->dims[d] < 0) return false;
  return true;
}

int64_t fc_value_numel(const fc_value *v) {
  if (!fc_value_known(v)) return -1;
  int64_t n = 1;
  for (int d = 0; d < v->rank; d++)
    if (!fc_mul_i64(n, v->dims[d], &n)) return -1;
  return n;
}

const char *fc_shape_str(const fc_value *v, char *buf, size_t n) {
  if (v->rank < 0) {
    snprintf(buf, n, "?");
    return buf;
  }
  size_t at = 0;
  buf[0] = '\0';
  if (v->rank == 0) snprintf(buf, n, "scalar");
  for (int d = 0; d < v->rank && at < n; d++) {
    int w;
    if (v->dims[d] >= 0)
      w = snprintf(buf + at, n - at, "%s%lld", d ? "x" : "", (long long)v->dims[d]);
    else
      w = snprintf(buf + at, n - at, "%s%s", d ? "x" : "", v->dim_param[d] ? v->dim_param[d] : "?");
    if (w < 0) break;
    at += (size_t)w;
  }
  return buf;
}

const fc_attr *fc_node_attr(const fc_node *n, const char *name) {
  for (int i = 0; i < n->n_attrs; i++)
    if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
  return NULL;
}

int64_t fc_attr_int(const fc_node *n, const char *name, int64_t dflt) {
  const fc_attr *a = fc_node_attr(n, name);
  return a && a->type == FC_ATTR_INT ? a->i : dflt;
}

float fc_attr_float(const fc_node *n, const char *name, float dflt) {
  const fc_attr *a = fc_node_attr(n, name);
  if (a && a->type == FC_ATTR_FLOAT) return a->f;
  if (a && a->type == FC_ATTR_INT) return (float)a->i;
  return dflt;
}

const char *fc_attr_str(const fc_node *n, const char *name, const char *dflt) {
  const fc_attr *a = fc_node_attr(n, name);
  return a && a->type == FC_ATTR_STRING && a->s ? a->s : dflt;
}

fc_value *fc_node_in(const fc_graph *g, const fc_node *n, int i) {
  if (i < 0 || i >= n->n_inputs || n->inputs[i] < 0) return NULL;
  return &g->values[n->inputs[i]];
}

fc_value *fc_node_out(const fc_graph *g, const fc_node *n, int i) {
  if (i < 0 || i >= n->n_outputs || n->outputs[i] < 0) return NULL;
  return &g->values[n->outputs[i]];
}

/* Kahn's algorithm over value producers. Values with no producer must be inputs or constants. */
fc_status fc_graph_sort(fc_graph *g, fc_err *err) {
  int nn = g->n_nodes;
  for (int v = 0; v < g->n_values; v++) g->values[v].producer = -1;
  for (int i = 0; i < nn; i++) {
    for (int o = 0; o < g->nodes[i].n_outputs; o++) {
      int v = g->nodes[i].outputs[o];
      if (v < 0) continue;
      fc_value *val = &g->values[v];
      if (val->producer >= 0 || val->is_initializer || val->is_graph_input)
        return fc_fail(err, FC_ERR_INVALID, "node '%s': output '%s' is already defined elsewhere",
                       g->nodes[i].name, val->name);
      val->producer = i;
    }
  }
  int *indeg = fc_calloc((size_t)nn, sizeof(int));
  int *order = fc_calloc((size_t)nn, sizeof(int));
  /* consumers in CSR form: for each value, the nodes reading it */
  int *cstart = fc_calloc((size_t)g->n_values + 1, sizeof(int));
  int64_t total_edges = 0;
  for (int i = 0; i < nn; i++) total_edges += g->nodes[i].n_inputs;
  int *cons = fc_calloc((size_t)total_edges, sizeof(int));
  fc_status st = FC_OK;
  if (!indeg || !order || !cstart || !cons) {
    st = fc_fail(err, FC_ERR_NOMEM, "out of memory sorting %d nodes", nn);
    goto done;
  }
  for (int i = 0; i < nn; i++) {
    for (int k = 0; k < g->nodes[i].n_inputs; k++) {
      int v = g->nodes[i].inputs[k];
      if (v < 0) continue;
      fc_value *val = &g->values[v];
      if (val->producer < 0 && !val->is_initializer && !val->is_graph_input && !val->data) {
        st = fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): input '%s' is not produced by any node, "
                     "initializer or graph input", g->nodes[i].name, g->nodes[i].op_type, val->name);
        goto done;
      }
      if (val->producer >= 0) {
        indeg[i]++;
        cstart[v + 1]++;
      }
    }
  }
  for (int v = 0; v < g->n_values; v++) cstart[v + 1] += cstart[v];
  {
    int *fill = fc_calloc((size_t)g->n_values, sizeof(int));
    if (!fill) {
      st = fc_fail(err, FC_ERR_NOMEM, "out of memory sorting nodes");
      goto done;
    }
    for (int i = 0; i < nn; i++)
      for (int k = 0; k < g->nodes[i].n_inputs; k++) {
        int v = g->nodes[i].inputs[k];
        if (v >= 0 && g->values[v].producer >= 0) cons[cstart[v] + fill[v]++] = i;
      }
    free(fill);
  }
  int head = 0, tail = 0;
  for (int i = 0; i < nn; i++)
    if (indeg[i] == 0) order[tail++] = i;
  while (head < tail) {
    int i = order[head++];
    for (int o = 0; o < g->nodes[i].n_outputs; o++) {
      int v = g->nodes[i].outputs[o];
      if (v < 0) continue;
      for (int c = cstart[v]; c < cstart[v + 1]; c++)
        if (--indeg[cons[c]] == 0) order[tail++] = cons[c];
    }
  }
  if (tail < nn) {
    int stuck = 0;
    while (stuck < nn && indeg[stuck] == 0) stuck++;
    /* a node left over may merely sit downstream of a cycle: walking back through producers that were
     * left over too reaches a node on the cycle within nn steps */
    for (int step = 0; step < nn; step++) {
      int prev = -1;
      for (int k = 0; k < g->nodes[stuck].n_inputs && prev < 0; k++) {
        int v = g->nodes[stuck].inputs[k];
        if (v >= 0 && g->values[v].producer >= 0 && indeg[g->values[v].producer] > 0) prev = g->values[v].producer;
      }
      if (prev < 0) break;
      stuck = prev;
    }
    st = fc_fail(err, FC_ERR_INVALID, "node '%s' (%s) is on a cycle: the graph is not a DAG",
                 g->nodes[stuck].name, g->nodes[stuck].op_type);
    goto done;
  }
  {
    fc_node *sorted = fc_calloc((size_t)nn, sizeof(fc_node));
    if (!sorted) {
      st = fc_fail(err, FC_ERR_NOMEM, "out of memory sorting nodes");
      goto done;
    }
    for (int i = 0; i < nn; i++) sorted[i] = g->nodes[order[i]];
    free(g->nodes);
    g->nodes = sorted;
    for (int i = 0; i < nn; i++)
      for (int o = 0; o < g->nodes[i].n_outputs; o++)
        if (g->nodes[i].outputs[o] >= 0) g->values[g->nodes[i].outputs[o]].producer = i;
  }
done:
  free(indeg);
  free(order);
  free(cstart);
  free(cons);
  return st;
}
