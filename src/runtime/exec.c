/* Running a plan: bind the caller's inputs, resolve every value's storage (arena, constant, input
 * or view), run the steps in order on the plan's thread count, hand back the outputs. */
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include "runtime/plan_internal.h"

static void resolve(fc_plan *p) {
  fc_graph *g = p->g;
  for (int v = 0; v < g->n_values; v++) {
    if (p->alias[v] >= 0) continue;
    if (g->values[v].data) p->ptr[v] = g->values[v].data;
    else if (p->offset[v] >= 0) p->ptr[v] = p->arena + p->offset[v];
    else if (!g->values[v].is_graph_input) p->ptr[v] = NULL;
  }
  /* views share their root's storage (chains are followed: a view of a view) */
  for (int v = 0; v < g->n_values; v++) {
    int r = v;
    while (p->alias[r] >= 0) r = p->alias[r];
    if (r != v) p->ptr[v] = p->ptr[r];
  }
}

void fc_plan_execute(fc_plan *p, double *step_ms) {
  resolve(p);
  int saved = omp_get_max_threads();
  omp_set_num_threads(p->threads);
  fc_binding_saved pinned;
  fc_binding_begin(&p->binding, p->threads, &pinned);
  for (int s = 0; s < p->n_steps; s++) {
    fc_step *st = &p->steps[s];
    const fc_node *n = st->en.node;
    for (int i = 0; i < n->n_inputs; i++) st->in[i] = st->in_vals[i] >= 0 ? p->ptr[st->in_vals[i]] : NULL;
    for (int o = 0; o < n->n_outputs; o++) st->out[o] = st->out_vals[o] >= 0 ? p->ptr[st->out_vals[o]] : NULL;
    fc_exec_io io = {st->in, st->out, st->scratch_off >= 0 ? p->arena + st->scratch_off : NULL};
    double t0 = step_ms ? omp_get_wtime() : 0;
    st->k->run(&st->en, &io);
    if (step_ms) step_ms[s] = (omp_get_wtime() - t0) * 1e3;
  }
  fc_binding_end(&pinned);
  omp_set_num_threads(saved);
}

size_t fc_plan_input_count(const fc_plan *p) { return (size_t)p->g->n_inputs; }
size_t fc_plan_output_count(const fc_plan *p) { return (size_t)p->g->n_outputs; }

static void view_of(const fc_value *v, fc_tensor_view *out) {
  memset(out, 0, sizeof *out);
  out->name = v->name;
  out->dtype = v->dtype;
  out->rank = v->rank;
  for (int d = 0; d < v->rank && d < 8; d++) out->dims[d] = v->dims[d];
}

fc_status fc_plan_input(const fc_plan *p, size_t i, fc_tensor_view *out) {
  if (i >= (size_t)p->g->n_inputs) return FC_ERR_ARG;
  view_of(&p->g->values[p->g->inputs[i]], out);
  return FC_OK;
}

fc_status fc_plan_output(const fc_plan *p, size_t i, fc_tensor_view *out) {
  if (i >= (size_t)p->g->n_outputs) return FC_ERR_ARG;
  view_of(&p->g->values[p->g->outputs[i]], out);
  return FC_OK;
}

static bool same_shape(const fc_value *v, const fc_tensor_view *t) {
  if (t->rank != v->rank) return false;
  for (int d = 0; d < v->rank; d++)
    if (t->dims[d] != v->dims[d]) return false;
  return true;
}

static const char *shape_str(int rank, const int64_t *dims, char *buf, size_t n) {
  size_t at = 0;
  buf[0] = '\0';
  for (int d = 0; d < rank && at + 24 < n; d++) at += (size_t)snprintf(buf + at, n - at, "%s%lld", d ? "x" : "", (long long)dims[d]);
  if (rank == 0) snprintf(buf, n, "scalar");
  return buf;
}

static fc_status bind(fc_ctx *ctx, fc_plan *p, const fc_tensor_view *inputs, size_t n_in) {
  fc_graph *g = p->g;
  if (n_in > (size_t)g->n_inputs)
    return fc_fail(&ctx->err, FC_ERR_ARG, "%zu inputs given, the model has %d", n_in, g->n_inputs);
  for (int i = 0; i < g->n_inputs; i++) p->ptr[g->inputs[i]] = NULL;
  for (size_t k = 0; k < n_in; k++) {
    int idx = -1;
    if (inputs[k].name) {
      for (int i = 0; i < g->n_inputs; i++)
        if (!strcmp(g->values[g->inputs[i]].name, inputs[k].name)) idx = i;
      if (idx < 0) return fc_fail(&ctx->err, FC_ERR_ARG, "'%s' is not an input of the model", inputs[k].name);
    } else {
      idx = (int)k;
    }
    const fc_value *v = &g->values[g->inputs[idx]];
    char want[160], got[160];
    if (inputs[k].dtype != v->dtype)
      return fc_fail(&ctx->err, FC_ERR_ARG, "input '%s' must be %s, got %s", v->name, fc_dtype_name(v->dtype),
                     fc_dtype_name(inputs[k].dtype));
    if (!same_shape(v, &inputs[k]))
      return fc_fail(&ctx->err, FC_ERR_ARG, "input '%s' must have shape %s, got %s", v->name,
                     shape_str(v->rank, v->dims, want, sizeof want), shape_str(inputs[k].rank, inputs[k].dims, got, sizeof got));
    if (!inputs[k].data && fc_value_numel(v) > 0) return fc_fail(&ctx->err, FC_ERR_ARG, "input '%s' has no data", v->name);
    if (p->ptr[g->inputs[idx]]) return fc_fail(&ctx->err, FC_ERR_ARG, "input '%s' is given twice", v->name);
    p->ptr[g->inputs[idx]] = inputs[k].data;
  }
  for (int i = 0; i < g->n_inputs; i++)
    if (!p->ptr[g->inputs[i]] && fc_value_numel(&g->values[g->inputs[i]]) > 0)
      return fc_fail(&ctx->err, FC_ERR_ARG, "input '%s' is missing", g->values[g->inputs[i]].name);
  return FC_OK;
}

static fc_status check_outputs(fc_ctx *ctx, fc_plan *p, fc_tensor_view *outputs, size_t n_out, int *which) {
  fc_graph *g = p->g;
  for (size_t k = 0; k < n_out; k++) {
    int idx = -1;
    if (outputs[k].name) {
      for (int o = 0; o < g->n_outputs; o++)
        if (!strcmp(g->values[g->outputs[o]].name, outputs[k].name)) idx = o;
      if (idx < 0) return fc_fail(&ctx->err, FC_ERR_ARG, "'%s' is not an output of the model", outputs[k].name);
    } else if (k < (size_t)g->n_outputs) {
      idx = (int)k;
    } else {
      return fc_fail(&ctx->err, FC_ERR_ARG, "%zu outputs asked for, the model has %d", n_out, g->n_outputs);
    }
    const fc_value *v = &g->values[g->outputs[idx]];
    if (outputs[k].data && (outputs[k].dtype != v->dtype || !same_shape(v, &outputs[k])))
      return fc_fail(&ctx->err, FC_ERR_ARG, "output buffer for '%s' has the wrong dtype or shape", v->name);
    which[k] = idx;
  }
  return FC_OK;
}

static fc_status run(fc_ctx *ctx, fc_plan *p, const fc_tensor_view *inputs, size_t n_in, fc_tensor_view *outputs,
                     size_t n_out, double *step_ms) {
  if (!ctx) return FC_ERR_ARG;
  fc_err_clear(&ctx->err);
  if (!p) return fc_fail(&ctx->err, FC_ERR_ARG, "no plan");
  if (n_out && !outputs) return fc_fail(&ctx->err, FC_ERR_ARG, "no output array");
  if (n_in && !inputs) return fc_fail(&ctx->err, FC_ERR_ARG, "no input array");
  int which[64];
  if (n_out > 64) return fc_fail(&ctx->err, FC_ERR_ARG, "at most 64 outputs per call");
  fc_status st = bind(ctx, p, inputs, n_in);
  if (!st) st = check_outputs(ctx, p, outputs, n_out, which);
  if (st) return st;
  fc_plan_execute(p, step_ms);
  for (size_t k = 0; k < n_out; k++) {
    const fc_value *v = &p->g->values[p->g->outputs[which[k]]];
    void *src = p->ptr[p->out_src[which[k]]];
    size_t bytes = (size_t)fc_value_numel(v) * fc_dtype_size(v->dtype);
    if (outputs[k].data) {
      if (bytes) memcpy(outputs[k].data, src, bytes);
    } else {
      outputs[k].data = src;
    }
    const char *name = outputs[k].name;
    void *data = outputs[k].data;
    view_of(v, &outputs[k]);
    outputs[k].name = name ? name : v->name;
    outputs[k].data = data;
  }
  return FC_OK;
}

fc_status fc_plan_run(fc_ctx *ctx, fc_plan *p, const fc_tensor_view *inputs, size_t n_in, fc_tensor_view *outputs,
                      size_t n_out) {
  return run(ctx, p, inputs, n_in, outputs, n_out, NULL);
}

fc_status fc_plan_run_profiled(fc_ctx *ctx, fc_plan *p, const fc_tensor_view *inputs, size_t n_in,
                               fc_tensor_view *outputs, size_t n_out, double *step_ms) {
  return run(ctx, p, inputs, n_in, outputs, n_out, step_ms);
}
