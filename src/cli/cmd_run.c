/* flopcut run: executes a model on .npy inputs and writes its outputs as .npy (or prints a summary). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli/cli.h"
#include "data/npy.h"

static void help(FILE *f) {
  fputs("usage: flopcut run MODEL --input [NAME=]FILE.npy... [--output FILE.npy | --output-dir DIR]\n"
        "                        [--threads N]\n"
        "\n"
        "Runs the model once. Input shapes come from the .npy files; an input without NAME= is matched\n"
        "to the model's inputs by position. Without --output/--output-dir, prints each output's shape and\n"
        "statistics.\n"
        "\n"
        "  --input [NAME=]FILE.npy  an input tensor (repeatable; C order, little-endian)\n"
        "  --output FILE.npy        write the first output\n"
        "  --output-dir DIR         write every output as DIR/<name>.npy\n"
        "  --threads N              threads (default: all cores)\n",
        f);
}

/* Output names may hold '/' or ':' (exporters use paths as names): keep them file-safe. */
static void file_safe(const char *name, char *out, size_t n) {
  size_t i = 0;
  for (; name[i] && i + 1 < n; i++) {
    char c = name[i];
    out[i] = (c == '/' || c == '\\' || c == ':' || c == ' ' || (unsigned char)c < 0x20) ? '_' : c;
  }
  out[i] = '\0';
  if (!strcmp(out, ".") || !strcmp(out, "..") || !out[0]) snprintf(out, n, "output");
}

static void summary(const fc_tensor_view *t) {
  char shape[160];
  size_t at = 0;
  shape[0] = '\0';
  for (int d = 0; d < t->rank; d++) at += (size_t)snprintf(shape + at, sizeof shape - at, "%s%lld", d ? "x" : "", (long long)t->dims[d]);
  int64_t n = 1;
  for (int d = 0; d < t->rank; d++) n *= t->dims[d];
  printf("%s: %s %s", t->name, fc_dtype_name(t->dtype), t->rank ? shape : "scalar");
  if (t->dtype == 1 && n > 0) {
    const float *x = t->data;
    double mn = x[0], mx = x[0], sum = 0;
    int64_t arg = 0;
    for (int64_t i = 0; i < n; i++) {
      if (x[i] < mn) mn = x[i];
      if (x[i] > mx) mx = x[i], arg = i;
      sum += x[i];
    }
    printf("  min %.6g  max %.6g (at %lld)  mean %.6g", mn, mx, (long long)arg, sum / (double)n);
  }
  putchar('\n');
}

int fc_cmd_run(int argc, char **argv) {
  const char *model_path = NULL, *output = NULL, *output_dir = NULL;
  char *specs[FC_CLI_MAX_INPUTS];
  int n_specs = 0, threads = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      help(stdout);
      return 0;
    }
    bool takes = !strcmp(a, "--input") || !strcmp(a, "--output") || !strcmp(a, "--output-dir") || !strcmp(a, "--threads");
    if (takes && i + 1 >= argc) return fc_cli_error("run: %s needs a value", a);
    if (!strcmp(a, "--input")) {
      if (n_specs == FC_CLI_MAX_INPUTS) return fc_cli_error("run: at most %d --input options", FC_CLI_MAX_INPUTS);
      specs[n_specs++] = argv[++i];
    } else if (!strcmp(a, "--output")) {
      output = argv[++i];
    } else if (!strcmp(a, "--output-dir")) {
      output_dir = argv[++i];
    } else if (!strcmp(a, "--threads")) {
      char *end;
      long t = strtol(argv[++i], &end, 10);
      if (*end || t < 1 || t > 1024) return fc_cli_error("run: --threads needs a number from 1 to 1024");
      threads = (int)t;
    } else {
      int rc = fc_cli_take_model("run", a, &model_path);
      if (rc) return rc;
    }
  }
  if (!model_path) {
    help(stderr);
    return 2;
  }
  if (output && output_dir) return fc_cli_error("run: give --output or --output-dir, not both");
  if (output_dir) {
    struct stat sb;
    if (stat(output_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
      return fc_cli_error("run: --output-dir '%s' is not a directory", output_dir);
  }
  fc_ctx *ctx = fc_ctx_create();
  if (!ctx) return fc_cli_error("out of memory");
  fc_cli_inputs in;
  fc_model *model = NULL;
  fc_plan *plan = NULL;
  int rc = fc_cli_load_model(ctx, "run", model_path, specs, n_specs, NULL, 0, true, &in, &model);
  fc_plan_options opt = {threads};
  if (!rc && fc_plan_create(ctx, model, &opt, &plan)) rc = fc_cli_error("%s", fc_ctx_error(ctx));
  size_t n_out = plan ? fc_plan_output_count(plan) : 0;
  fc_tensor_view *outs = calloc(n_out + 1, sizeof *outs);
  if (!rc && !outs) rc = fc_cli_error("out of memory");
  if (!rc && fc_plan_run(ctx, plan, in.views, (size_t)in.n, outs, n_out)) rc = fc_cli_error("%s", fc_ctx_error(ctx));
  fc_err err = {0};
  for (size_t o = 0; !rc && o < n_out; o++) {
    if (output && o > 0) break;
    if (output) {
      if (fc_npy_write(output, outs[o].dtype, outs[o].rank, outs[o].dims, outs[o].data, &err))
        rc = fc_cli_error("%s", err.msg);
    } else if (output_dir) {
      char safe[256], path[4096];
      file_safe(outs[o].name, safe, sizeof safe);
      snprintf(path, sizeof path, "%s/%s.npy", output_dir, safe);
      if (fc_npy_write(path, outs[o].dtype, outs[o].rank, outs[o].dims, outs[o].data, &err))
        rc = fc_cli_error("%s", err.msg);
    } else {
      summary(&outs[o]);
    }
  }
  free(outs);
  fc_plan_free(plan);
  fc_model_free(model);
  fc_cli_inputs_free(&in);
  fc_ctx_free(ctx);
  return rc;
}
