/* flopcut sensitivity: prunes each layer alone to a few sparsities and measures how far the model's
 * output moves from the dense output on a given input batch — the map of which layers can be cut. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "api/model_internal.h"
#include "cli/cli.h"
#include "data/npy.h"
#include "onnx/onnx_load.h"
#include "prune/prune.h"
#include "util/mem.h"

#define MAX_SPARSITIES 16
#define MAX_EXCLUDE 64

static void help(FILE *f) {
  fputs("usage: flopcut sensitivity MODEL --input FILE.npy [--sparsities 0.5,0.7,0.9] [options]\n"
        "\n"
        "Prunes each Conv/ConvTranspose/Gemm/MatMul weight alone (magnitude, the others dense) to each\n"
        "sparsity and reports the relative L2 change of the model's first output against the dense\n"
        "output on the input batch, and top-1 agreement when the output looks like logits [N, C].\n"
        "Layers are sorted by the change at the highest sparsity, most sensitive first.\n"
        "\n"
        "  --input FILE.npy         the batch (float32); a model with batch 1 is run once per sample\n"
        "  --sparsities LIST        comma-separated fractions (default 0.5,0.7,0.9)\n"
        "  --exclude PATTERN        skip layers whose node or weight name matches (glob, repeatable)\n"
        "  --threads N              threads (default: all cores)\n"
        "  --format table|json      report format (default table)\n",
        f);
}

typedef struct sens_args {
  const char *model, *input, *format;
  double sp[MAX_SPARSITIES];
  int n_sp, threads;
  const char *exclude[MAX_EXCLUDE];
  int n_exclude;
} sens_args;

static int parse_list(const char *s, sens_args *a) {
  a->n_sp = 0;
  const char *p = s;
  while (*p) {
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno || !(v >= 0.0 && v <= 1.0) || (*end && *end != ','))
      return fc_cli_error("sensitivity: --sparsities needs fractions between 0 and 1 separated by commas, not '%s'", s);
    if (a->n_sp == MAX_SPARSITIES) return fc_cli_error("sensitivity: at most %d sparsities", MAX_SPARSITIES);
    a->sp[a->n_sp++] = v;
    p = *end ? end + 1 : end;
  }
  if (!a->n_sp) return fc_cli_error("sensitivity: --sparsities is empty");
  return -1;
}

static int parse_args(int argc, char **argv, sens_args *a) {
  memset(a, 0, sizeof *a);
  a->format = "table";
  a->sp[0] = 0.5, a->sp[1] = 0.7, a->sp[2] = 0.9;
  a->n_sp = 3;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
      help(stdout);
      return 0;
    }
    bool valued = !strcmp(s, "--input") || !strcmp(s, "--sparsities") || !strcmp(s, "--exclude") ||
                  !strcmp(s, "--threads") || !strcmp(s, "--format");
    if (valued && i + 1 >= argc) return fc_cli_error("sensitivity: %s needs a value", s);
    if (!strcmp(s, "--input")) {
      a->input = argv[++i];
    } else if (!strcmp(s, "--sparsities")) {
      int rc = parse_list(argv[++i], a);
      if (rc >= 0) return rc;
    } else if (!strcmp(s, "--exclude")) {
      if (a->n_exclude == MAX_EXCLUDE) return fc_cli_error("sensitivity: at most %d --exclude options", MAX_EXCLUDE);
      a->exclude[a->n_exclude++] = argv[++i];
    } else if (!strcmp(s, "--threads")) {
      char *end;
      long t = strtol(argv[++i], &end, 10);
      if (*end || t < 1 || t > 1024) return fc_cli_error("sensitivity: --threads needs a number from 1 to 1024");
      a->threads = (int)t;
    } else if (!strcmp(s, "--format")) {
      a->format = argv[++i];
      if (strcmp(a->format, "table") && strcmp(a->format, "json"))
        return fc_cli_error("sensitivity: --format must be table or json, not '%s'", a->format);
    } else {
      int rc = fc_cli_take_model("sensitivity", s, &a->model);
      if (rc) return rc;
    }
  }
  if (!a->model) {
    help(stderr);
    return 2;
  }
  if (!a->input) return fc_cli_error("sensitivity: give the input batch: --input FILE.npy");
  return -1;
}

/* The batch and how it meets the model: one run of the whole array, or one run per sample when the
 * model's batch dimension is fixed to 1 and the array holds more. */
typedef struct batch {
  fc_array x;
  char name[256];
  fc_input_shape shape;
  int64_t runs;         /* runs per evaluation */
  size_t run_bytes;     /* input bytes per run */
} batch;

static fc_status batch_open(const sens_args *a, batch *b, fc_err *err) {
  memset(b, 0, sizeof *b);
  fc_status st = fc_npy_read(a->input, &b->x, err);
  if (st) return st;
  if (b->x.dtype != FC_DT_FLOAT)
    return fc_fail(err, FC_ERR_ARG, "'%s' holds %s; sensitivity needs float32 inputs", a->input, fc_dtype_name(b->x.dtype));
  fc_graph *g = NULL;
  if ((st = fc_onnx_load_file(a->model, &g, err))) return st;
  if (g->n_inputs != 1) {
    st = fc_fail(err, FC_ERR_UNSUPPORTED, "the model has %d inputs; sensitivity handles models with one", g->n_inputs);
    fc_graph_free(g);
    return st;
  }
  const fc_value *in = &g->values[g->inputs[0]];
  snprintf(b->name, sizeof b->name, "%s", in->name);
  bool per_sample = in->rank == b->x.rank && in->rank >= 1 && in->dims[0] == 1 && b->x.dims[0] > 1;
  fc_graph_free(g);
  b->shape.name = b->name;
  b->shape.rank = b->x.rank;
  memcpy(b->shape.dims, b->x.dims, sizeof b->shape.dims);
  b->runs = 1;
  if (per_sample) {
    b->shape.dims[0] = 1;
    b->runs = b->x.dims[0];
  }
  if (b->x.count == 0) return fc_fail(err, FC_ERR_ARG, "'%s' is empty", a->input);
  b->run_bytes = (size_t)(b->x.count / b->runs) * sizeof(float);
  return FC_OK;
}

/* Runs the model's current weights over the batch; out receives runs × out_elems floats. */
static fc_status evaluate(fc_ctx *ctx, const fc_model *m, const batch *b, int threads, float *out, int64_t out_elems) {
  fc_plan *plan = NULL;
  fc_plan_options po = {threads};
  fc_status st = fc_plan_create(ctx, m, &po, &plan); /* weights are packed at plan time: one plan per trial */
  for (int64_t r = 0; !st && r < b->runs; r++) {
    fc_tensor_view in = {b->name, FC_DT_FLOAT, b->shape.rank, {0}, (char *)b->x.data + (size_t)r * b->run_bytes};
    memcpy(in.dims, b->shape.dims, sizeof in.dims);
    fc_tensor_view o = {0};
    st = fc_plan_run(ctx, plan, &in, 1, &o, 1);
    if (!st && (o.dtype != FC_DT_FLOAT || !o.data)) st = fc_fail(&ctx->err, FC_ERR_UNSUPPORTED, "the first output is not float32");
    int64_t n = 1;
    for (int d = 0; !st && d < o.rank; d++) n *= o.dims[d];
    if (!st && n != out_elems) st = fc_fail(&ctx->err, FC_ERR_INVALID, "the output changed size between runs");
    if (!st) memcpy(out + r * out_elems, o.data, (size_t)n * sizeof(float));
  }
  fc_plan_free(plan);
  return st;
}

typedef struct trial {
  double rel_l2;
  double agree; /* -1: not logits */
} trial;

typedef struct row {
  size_t layer;
  trial *t;   /* n_sp */
  double key; /* the change at the highest sparsity: what rows are sorted by */
} row;

static int by_sensitivity(const void *x, const void *y) {
  const row *a = x, *b = y;
  if (a->key != b->key) return a->key < b->key ? 1 : -1;
  return a->layer < b->layer ? -1 : a->layer > b->layer;
}

static trial compare(const float *y0, const float *y, int64_t n, int64_t rows, int64_t classes) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)y[i] - (double)y0[i];
    num += d * d;
    den += (double)y0[i] * (double)y0[i];
  }
  trial t = {den > 0 ? sqrt(num / den) : sqrt(num), -1.0};
  if (classes >= 2) {
    int64_t same = 0;
    for (int64_t r = 0; r < rows; r++) {
      const float *a = y0 + r * classes, *b = y + r * classes;
      int64_t ia = 0, ib = 0;
      for (int64_t c = 1; c < classes; c++) {
        if (a[c] > a[ia]) ia = c;
        if (b[c] > b[ib]) ib = c;
      }
      same += ia == ib;
    }
    t.agree = (double)same / (double)rows;
  }
  return t;
}

static void print_json(const sens_args *a, const fc_prune_set *s, const batch *b, const row *rows, size_t n_rows) {
  printf("{\"model\":");
  fc_json_str(stdout, a->model);
  printf(",\"input\":");
  fc_json_str(stdout, a->input);
  printf(",\"runs\":%lld,\"sparsities\":[", (long long)b->runs);
  for (int k = 0; k < a->n_sp; k++) printf("%s%.17g", k ? "," : "", a->sp[k]);
  printf("],\"layers\":[");
  for (size_t i = 0; i < n_rows; i++) {
    const fc_prune_layer *l = &s->layers[rows[i].layer];
    printf("%s\n{\"layer\":", i ? "," : "");
    fc_json_str(stdout, l->name);
    printf(",\"op_type\":");
    fc_json_str(stdout, l->op_type);
    printf(",\"tensor\":");
    fc_json_str(stdout, l->tensor);
    printf(",\"weights\":%lld,\"dense_macs\":%lld,\"results\":[", (long long)l->numel, (long long)l->macs);
    for (int k = 0; k < a->n_sp; k++) {
      const trial *t = &rows[i].t[k];
      printf("%s{\"sparsity\":%.17g,\"rel_l2\":%.6g,\"top1_agreement\":", k ? "," : "", a->sp[k], t->rel_l2);
      if (t->agree >= 0) printf("%.6f}", t->agree);
      else printf("null}");
    }
    printf("]}");
  }
  printf("]}\n");
}

static void print_table(const sens_args *a, const fc_prune_set *s, const batch *b, const row *rows, size_t n_rows,
                        bool logits) {
  char b1[32];
  printf("model   %s\ninput   %s (%lld run%s)\n", a->model, a->input, (long long)b->runs, b->runs > 1 ? "s" : "");
  printf("each layer pruned alone by magnitude; relative L2 change of the output%s\n\n",
         logits ? " / top-1 agreement with dense" : "");
  printf("%-30s %10s %7s", "layer", "weights", "MACs");
  for (int k = 0; k < a->n_sp; k++) printf(logits ? "  %6.0f%%: err agree" : "  %6.0f%%: err", 100.0 * a->sp[k]);
  putchar('\n');
  int64_t total = s->model->totals.macs;
  for (size_t i = 0; i < n_rows; i++) {
    const fc_prune_layer *l = &s->layers[rows[i].layer];
    size_t len = strlen(l->name);
    char name[31];
    if (len <= 30) snprintf(name, sizeof name, "%s", l->name);
    else snprintf(name, sizeof name, "~%s", l->name + len - 29);
    printf("%-30s %10s %6.2f%%", name, fc_fmt_int(l->numel, b1, sizeof b1),
           total ? 100.0 * (double)l->macs / (double)total : 0.0);
    for (int k = 0; k < a->n_sp; k++) {
      const trial *t = &rows[i].t[k];
      if (logits) printf("  %11.4f %5.1f%%", t->rel_l2, 100.0 * t->agree);
      else printf("  %11.4f", t->rel_l2);
    }
    putchar('\n');
  }
}

int fc_cmd_sensitivity(int argc, char **argv) {
  sens_args a;
  int rc = parse_args(argc, argv, &a);
  if (rc >= 0) return rc;
  fc_ctx *ctx = fc_ctx_create();
  if (!ctx) return fc_cli_error("out of memory");
  fc_err *err = &ctx->err;
  batch b;
  fc_model *m = NULL;
  fc_prune_set *s = NULL;
  float *y0 = NULL, *y = NULL, *backup = NULL;
  row *rows = NULL;
  trial *trials = NULL;
  size_t n_rows = 0;
  bool tty = isatty(2);
  int64_t out_elems = 0, out_rows = 1, classes = 0;
  fc_status st = batch_open(&a, &b, err);
  if (!st) st = fc_model_load(ctx, a.model, &b.shape, 1, &m);
  if (!st) st = fc_prune_set_create(m, a.exclude, (size_t)a.n_exclude, &s, err);
  if (!st) { /* the first output's size, from shape inference */
    const fc_value *o = &m->graph->values[m->graph->outputs[0]];
    out_elems = fc_value_numel(o);
    if (out_elems <= 0) st = fc_fail(err, FC_ERR_SHAPE, "the first output '%s' has no known size", o->name);
    /* logits: [rows, classes] per run */
    if (o->rank == 2 && o->dims[1] >= 2) out_rows = o->dims[0], classes = o->dims[1];
  }
  if (!st) {
    y0 = fc_calloc((size_t)(out_elems * b.runs), sizeof *y0);
    y = fc_calloc((size_t)(out_elems * b.runs), sizeof *y);
    rows = fc_calloc(s->n_layers ? s->n_layers : 1, sizeof *rows);
    trials = fc_calloc((s->n_layers ? s->n_layers : 1) * (size_t)a.n_sp, sizeof *trials);
    if (!y0 || !y || !rows || !trials) st = fc_fail(err, FC_ERR_NOMEM, "out of memory");
  }
  if (!st) st = evaluate(ctx, m, &b, a.threads, y0, out_elems);
  for (size_t li = 0; !st && li < s->n_layers; li++) {
    fc_prune_layer *l = &s->layers[li];
    if (l->excluded) continue;
    free(backup);
    backup = fc_malloc((size_t)l->numel * sizeof(float));
    if (!backup) {
      st = fc_fail(err, FC_ERR_NOMEM, "out of memory");
      break;
    }
    memcpy(backup, l->w, (size_t)l->numel * sizeof(float));
    row *r = &rows[n_rows++];
    r->layer = li;
    r->t = trials + li * (size_t)a.n_sp;
    for (int k = 0; !st && k < a.n_sp; k++) {
      st = fc_prune_layer_magnitude(l, a.sp[k], err);
      fc_prune_layer_sync(s, l);
      if (!st) st = evaluate(ctx, m, &b, a.threads, y, out_elems);
      if (!st) r->t[k] = compare(y0, y, out_elems * b.runs, out_rows * b.runs, classes);
      memcpy(l->w, backup, (size_t)l->numel * sizeof(float));
      fc_prune_layer_sync(s, l);
    }
    if (tty) fprintf(stderr, "\rsensitivity: %zu/%zu layers", li + 1, s->n_layers);
  }
  if (tty && s && s->n_layers) fputc('\n', stderr);
  if (st) {
    rc = fc_cli_error("%s", fc_ctx_error(ctx));
  } else {
    int hi = 0;
    for (int k = 1; k < a.n_sp; k++)
      if (a.sp[k] > a.sp[hi]) hi = k;
    for (size_t i = 0; i < n_rows; i++) rows[i].key = rows[i].t[hi].rel_l2;
    qsort(rows, n_rows, sizeof *rows, by_sensitivity);
    if (!strcmp(a.format, "json")) print_json(&a, s, &b, rows, n_rows);
    else print_table(&a, s, &b, rows, n_rows, classes >= 2);
    rc = 0;
  }
  free(backup);
  free(rows);
  free(trials);
  free(y0);
  free(y);
  fc_prune_set_free(s);
  fc_model_free(m);
  fc_array_free(&b.x);
  fc_ctx_free(ctx);
  return rc;
}
