/* Shared by `run` and `bench`: --input NAME=FILE.npy arguments become the model's input tensors
 * (matched by name, or by position when unnamed) and fix its input shapes before loading. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "api/model_internal.h"
#include "cli/cli.h"
#include "data/npy.h"
#include "onnx/onnx_load.h"

/* "NAME=PATH" or "PATH" (a path that exists as given wins over a split at '='). */
static void split_spec(const char *spec, char *name, size_t n, const char **path) {
  struct stat sb;
  const char *eq = strchr(spec, '=');
  name[0] = '\0';
  *path = spec;
  if (!eq || stat(spec, &sb) == 0 || (size_t)(eq - spec) >= n) return;
  memcpy(name, spec, (size_t)(eq - spec));
  name[eq - spec] = '\0';
  *path = eq + 1;
}

static const char *dims_str(int rank, const int64_t *dims, char *buf, size_t n) {
  size_t at = 0;
  buf[0] = '\0';
  if (rank == 0) snprintf(buf, n, "scalar");
  for (int d = 0; d < rank && at + 24 < n; d++) at += (size_t)snprintf(buf + at, n - at, "%s%lld", d ? "x" : "", (long long)dims[d]);
  return buf;
}

void fc_cli_inputs_free(fc_cli_inputs *in) {
  for (int i = 0; i < in->n; i++) fc_array_free(&in->arrays[i]);
  memset(in, 0, sizeof *in);
}

int fc_cli_load_model(fc_ctx *ctx, const char *cmd, const char *model_path, char **specs, int n_specs,
                      const fc_input_shape *shapes, int n_shapes, bool require_all, fc_cli_inputs *in,
                      fc_model **model) {
  memset(in, 0, sizeof *in);
  *model = NULL;
  if (n_specs > FC_CLI_MAX_INPUTS) return fc_cli_error("%s: at most %d --input options", cmd, FC_CLI_MAX_INPUTS);
  fc_graph *g = NULL;
  fc_err err = {0};
  if ((n_specs > 0 || require_all) && fc_onnx_load_file(model_path, &g, &err)) return fc_cli_error("%s", err.msg);
  fc_input_shape all[FC_CLI_MAX_INPUTS + 16];
  int n_all = 0;
  int rc = 0;
  for (int i = 0; i < n_specs && !rc; i++) {
    char name[256];
    const char *path;
    split_spec(specs[i], name, sizeof name, &path);
    int v = -1;
    if (name[0]) {
      v = fc_graph_find(g, name);
      if (v < 0 || !g->values[v].is_graph_input) {
        rc = fc_cli_error("%s: '%s' is not an input of the model", cmd, name);
        break;
      }
    } else {
      if (i >= g->n_inputs) {
        rc = fc_cli_error("%s: %d inputs given, the model has %d", cmd, n_specs, g->n_inputs);
        break;
      }
      v = g->inputs[i];
    }
    const fc_value *val = &g->values[v];
    for (int k = 0; k < in->n; k++)
      if (!strcmp(in->names[k], val->name)) rc = fc_cli_error("%s: input '%s' is given twice", cmd, val->name);
    if (rc) break;
    fc_array *a = &in->arrays[in->n];
    if (fc_npy_read(path, a, &err)) {
      rc = fc_cli_error("%s", err.msg);
      break;
    }
    snprintf(in->names[in->n], sizeof in->names[in->n], "%s", val->name);
    in->n++;
    char want[160], got[160];
    if (a->dtype != val->dtype) {
      rc = fc_cli_error("%s: input '%s' must be %s, but '%s' holds %s", cmd, val->name, fc_dtype_name(val->dtype), path,
                        fc_dtype_name(a->dtype));
      break;
    }
    bool ok = val->rank < 0 || val->rank == a->rank;
    for (int d = 0; ok && val->rank >= 0 && d < a->rank; d++)
      if (val->dims[d] > 0 && val->dims[d] != a->dims[d]) ok = false;
    if (!ok) {
      fc_value shown = *val;
      for (int d = 0; d < shown.rank; d++)
        if (shown.dims[d] < 0) shown.dims[d] = -1;
      rc = fc_cli_error("%s: input '%s' must have shape %s, but '%s' is %s", cmd, val->name,
                        fc_shape_str(&shown, want, sizeof want), path, dims_str(a->rank, a->dims, got, sizeof got));
      break;
    }
    all[n_all].name = in->names[in->n - 1];
    all[n_all].rank = a->rank;
    memcpy(all[n_all].dims, a->dims, sizeof all[n_all].dims);
    n_all++;
  }
  for (int i = 0; g && require_all && !rc && i < g->n_inputs; i++) {
    const fc_value *val = &g->values[g->inputs[i]];
    bool given = false;
    for (int k = 0; k < in->n; k++) given = given || !strcmp(in->names[k], val->name);
    if (!given) rc = fc_cli_error("%s: input '%s' is missing (give --input %s=FILE.npy)", cmd, val->name, val->name);
  }
  fc_graph_free(g);
  for (int i = 0; i < n_shapes && !rc; i++) all[n_all++] = shapes[i];
  if (!rc && fc_model_load(ctx, model_path, all, (size_t)n_all, model)) rc = fc_cli_error("%s", fc_ctx_error(ctx));
  if (rc) {
    fc_cli_inputs_free(in);
    return rc;
  }
  for (int i = 0; i < in->n; i++) {
    fc_tensor_view *t = &in->views[i];
    t->name = in->names[i];
    t->dtype = in->arrays[i].dtype;
    t->rank = in->arrays[i].rank;
    memcpy(t->dims, in->arrays[i].dims, sizeof t->dims);
    t->data = in->arrays[i].data;
  }
  return 0;
}
