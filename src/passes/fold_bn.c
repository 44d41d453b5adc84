/* Dead-node removal and BatchNormalization folding: Conv → BN becomes one Conv whose weights are
 * scaled per output channel and whose bias is shifted, computed once in double precision. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "passes/passes.h"
#include "util/mem.h"

/* Number of node inputs reading each value (graph outputs count as one more reader). */
static int *reader_counts(const fc_graph *g) {
  int *cnt = fc_calloc((size_t)g->n_values + 1, sizeof(int));
  if (!cnt) return NULL;
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i].n_inputs; k++)
      if (g->nodes[i].inputs[k] >= 0) cnt[g->nodes[i].inputs[k]]++;
  for (int o = 0; o < g->n_outputs; o++) cnt[g->outputs[o]]++;
  return cnt;
}

fc_status fc_pass_drop_dead(fc_graph *g, fc_err *err) {
  int *cnt = reader_counts(g);
  bool *rm = fc_calloc((size_t)g->n_nodes + 1, sizeof(bool));
  if (!cnt || !rm) {
    free(cnt);
    free(rm);
    return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  }
  /* reverse order, so a chain whose end is unused disappears entirely */
  for (int i = g->n_nodes - 1; i >= 0; i--) {
    const fc_node *n = &g->nodes[i];
    bool all_const = true, any_used = false;
    for (int o = 0; o < n->n_outputs; o++) {
      int v = n->outputs[o];
      if (v < 0) continue;
      if (!g->values[v].data) all_const = false;
      if (cnt[v] > 0) any_used = true;
    }
    if (!all_const && any_used) continue;
    rm[i] = true;
    for (int k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] >= 0) cnt[n->inputs[k]]--;
  }
  fc_graph_remove_nodes(g, rm);
  free(cnt);
  free(rm);
  return FC_OK;
}

static const float *const_f32(const fc_graph *g, int v, int64_t n) {
  if (v < 0) return NULL;
  const fc_value *val = &g->values[v];
  if (!val->data || val->dtype != FC_DT_FLOAT || fc_value_numel(val) != n) return NULL;
  return val->data;
}

/* Folds BN node b into conv node c; false (graph untouched) if the parameters are not constant. */
static bool fold_one(fc_graph *g, int c, int b, fc_err *err, fc_status *st) {
  fc_node *conv = &g->nodes[c], *bn = &g->nodes[b];
  const fc_value *wv = fc_node_in(g, conv, 1);
  if (!wv || !wv->data || wv->dtype != FC_DT_FLOAT || wv->rank < 3) return false;
  int64_t cout = wv->dims[0], wn = fc_value_numel(wv);
  if (cout < 1 || wn < cout) return false;
  const float *scale = const_f32(g, bn->inputs[1], cout), *shift = const_f32(g, bn->inputs[2], cout),
              *mean = const_f32(g, bn->inputs[3], cout), *var = const_f32(g, bn->inputs[4], cout);
  const float *bias = conv->n_inputs > 2 ? const_f32(g, conv->inputs[2], cout) : NULL;
  if (!scale || !shift || !mean || !var || (conv->n_inputs > 2 && conv->inputs[2] >= 0 && !bias)) return false;
  double eps = fc_attr_float(bn, "epsilon", 1e-5f);
  int64_t wdims[FC_MAX_RANK];
  memcpy(wdims, wv->dims, sizeof wdims);
  int wrank = wv->rank;
  char wname[200];
  snprintf(wname, sizeof wname, "%s", wv->name);
  float *nw = NULL, *nb = NULL;
  /* adding values may move g->values: take every pointer again afterwards */
  int wi = fc_graph_add_const_f32(g, wname, wrank, wdims, &nw);
  int bi = wi < 0 ? -1 : fc_graph_add_const_f32(g, wname, 1, &cout, &nb);
  if (bi < 0) {
    *st = fc_fail(err, FC_ERR_NOMEM, "out of memory folding BatchNormalization '%s'", bn->name);
    return false;
  }
  conv = &g->nodes[c];
  bn = &g->nodes[b];
  scale = g->values[bn->inputs[1]].data;
  shift = g->values[bn->inputs[2]].data;
  mean = g->values[bn->inputs[3]].data;
  var = g->values[bn->inputs[4]].data;
  bias = conv->n_inputs > 2 && conv->inputs[2] >= 0 ? g->values[conv->inputs[2]].data : NULL;
  const float *w = g->values[conv->inputs[1]].data;
  int64_t per = wn / cout;
  for (int64_t o = 0; o < cout; o++) {
    double s = scale[o] / sqrt((double)var[o] + eps);
    for (int64_t i = 0; i < per; i++) nw[o * per + i] = (float)(w[o * per + i] * s);
    nb[o] = (float)(((bias ? bias[o] : 0.0) - mean[o]) * s + shift[o]);
  }
  if (conv->n_inputs < 3) {
    int *ni = fc_realloc_array(conv->inputs, 3, sizeof(int));
    if (!ni) {
      *st = fc_fail(err, FC_ERR_NOMEM, "out of memory");
      return false;
    }
    conv->inputs = ni;
    conv->n_inputs = 3;
  }
  conv->inputs[1] = wi;
  conv->inputs[2] = bi;
  conv->outputs[0] = bn->outputs[0];
  g->values[bn->outputs[0]].producer = c;
  *st = fc_node_set_str(conv, FC_ATTR_FUSED, "BatchNormalization", err);
  return *st == FC_OK;
}

fc_status fc_pass_fold_batchnorm(fc_graph *g, int *folded, fc_err *err) {
  if (folded) *folded = 0;
  int *cnt = reader_counts(g);
  bool *rm = fc_calloc((size_t)g->n_nodes + 1, sizeof(bool));
  fc_status st = (!cnt || !rm) ? fc_fail(err, FC_ERR_NOMEM, "out of memory") : FC_OK;
  for (int b = 0; !st && b < g->n_nodes; b++) {
    const fc_node *bn = &g->nodes[b];
    if (strcmp(bn->op_type, "BatchNormalization") || bn->n_inputs != 5 || fc_attr_int(bn, "training_mode", 0))
      continue;
    bool extra_out = false;
    for (int o = 1; o < bn->n_outputs; o++)
      if (bn->outputs[o] >= 0 && cnt[bn->outputs[o]] > 0) extra_out = true;
    int y = bn->inputs[0];
    if (extra_out || y < 0 || cnt[y] != 1 || g->values[y].producer < 0) continue;
    int c = g->values[y].producer;
    const fc_node *conv = &g->nodes[c];
    if (strcmp(conv->op_type, "Conv") || conv->outputs[0] != y || fc_node_attr(conv, FC_ATTR_FUSED)) continue;
    if (fold_one(g, c, b, err, &st)) {
      rm[b] = true;
      if (folded) (*folded)++;
    }
  }
  if (!st) fc_graph_remove_nodes(g, rm);
  free(cnt);
  free(rm);
  return st;
}
