/* Public API: context, model loading (ONNX → IR → shapes → cost), cost queries. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "api/model_internal.h"
#include "onnx/onnx_load.h"
#include "util/mem.h"

fc_ctx *fc_ctx_create(void) { return fc_calloc(1, sizeof(fc_ctx)); }
void fc_ctx_free(fc_ctx *ctx) { free(ctx); }
const char *fc_ctx_error(const fc_ctx *ctx) { return ctx ? ctx->err.msg : "no context"; }

const char *fc_status_name(fc_status s) {
  static const char *names[] = {"ok", "io", "parse", "invalid", "unsupported", "shape", "nomem", "arg"};
  return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

fc_status fc_input_shape_parse(fc_ctx *ctx, const char *spec, fc_input_shape *out) {
  fc_err_clear(&ctx->err);
  const char *eq = strrchr(spec, '=');
  memset(out, 0, sizeof *out);
  if (!eq || eq == spec)
    return fc_fail(&ctx->err, FC_ERR_ARG, "--input-shape '%s': expected NAME=DIMxDIMx... (e.g. input=1x3x224x224)", spec);
  out->name = spec;
  const char *p = eq + 1;
  while (*p) {
    if (out->rank == 8) return fc_fail(&ctx->err, FC_ERR_ARG, "--input-shape '%s': more than 8 dimensions", spec);
    char *end;
    errno = 0;
    long long d = strtoll(p, &end, 10);
    if (end == p || d < 1 || errno || d > (1LL << 40) || (*end && *end != 'x' && *end != 'X' && *end != ','))
      return fc_fail(&ctx->err, FC_ERR_ARG, "--input-shape '%s': dimensions must be positive integers joined by 'x'", spec);
    out->dims[out->rank++] = d;
    p = *end ? end + 1 : end;
  }
  return FC_OK;
}

fc_status fc_model_load(fc_ctx *ctx, const char *path, const fc_input_shape *shapes, size_t n_shapes, fc_model **out) {
  fc_err_clear(&ctx->err);
  *out = NULL;
  /* the name part of each spec ends at '=': copy names so the graph can compare them */
  fc_input_shape *named = fc_calloc(n_shapes, sizeof *named);
  char **names = fc_calloc(n_shapes, sizeof(char *));
  fc_model *m = fc_calloc(1, sizeof *m);
  fc_status st = (!named || !names || !m) ? fc_fail(&ctx->err, FC_ERR_NOMEM, "out of memory") : FC_OK;
  for (size_t i = 0; !st && i < n_shapes; i++) {
    named[i] = shapes[i];
    const char *eq = strchr(shapes[i].name, '=');
    size_t len = eq ? (size_t)(eq - shapes[i].name) : strlen(shapes[i].name);
    names[i] = fc_malloc(len + 1);
    if (!names[i]) { st = fc_fail(&ctx->err, FC_ERR_NOMEM, "out of memory"); break; }
    memcpy(names[i], shapes[i].name, len);
    names[i][len] = '\0';
    named[i].name = names[i];
  }
  if (!st) st = fc_onnx_load_file(path, &m->graph, &ctx->err);
  if (!st) {
    m->states = fc_calloc((size_t)m->graph->n_nodes, sizeof *m->states);
    m->costs = fc_calloc((size_t)m->graph->n_nodes, sizeof *m->costs);
    if (!m->states || !m->costs) st = fc_fail(&ctx->err, FC_ERR_NOMEM, "out of memory");
  }
  if (!st) st = fc_graph_infer(m->graph, named, n_shapes, m->states, &ctx->err);
  if (!st) fc_cost_compute(m->graph, m->states, m->costs, &m->totals);
  for (size_t i = 0; names && i < n_shapes; i++) free(names[i]);
  free(names);
  free(named);
  if (st) {
    fc_model_free(m);
    return st;
  }
  *out = m;
  return FC_OK;
}

void fc_model_free(fc_model *m) {
  if (!m) return;
  fc_graph_free(m->graph);
  free(m->states);
  free(m->costs);
  free(m);
}

size_t fc_model_node_count(const fc_model *m) { return (size_t)m->graph->n_nodes; }

fc_status fc_model_node_cost(const fc_model *m, size_t i, fc_node_cost *out) {
  if (i >= (size_t)m->graph->n_nodes) return FC_ERR_ARG;
  *out = m->costs[i];
  return FC_OK;
}

void fc_model_totals(const fc_model *m, fc_cost_totals *out) { *out = m->totals; }
