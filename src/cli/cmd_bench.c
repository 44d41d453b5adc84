/* flopcut bench: times a model's runs (median and min over --iters after --warmup) and, in a
 * profiling pass after the timed runs, the time and achieved GFLOP/s of each op type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli/cli.h"

#define MAX_SHAPES 16
#define MAX_TYPES 64

static void help(FILE *f) {
  fputs("usage: flopcut bench MODEL [--input [NAME=]FILE.npy... | --input-shape NAME=1x3x224x224...]\n"
        "                          [--threads N] [--iters N] [--warmup N] [--format table|json]\n"
        "\n"
        "Times the model: median and minimum latency over N runs, achieved GFLOP/s (FLOPs of the\n"
        "model / median time). The table adds time and GFLOP/s per op type, from profiled runs made\n"
        "after the timed ones. Inputs without a file are filled with seeded random values.\n"
        "\n"
        "  --input [NAME=]FILE.npy  an input tensor (repeatable)\n"
        "  --input-shape NAME=DIMS  fix a dynamic input's shape (random data)\n"
        "  --threads N              threads (default: all cores)\n"
        "  --iters N                timed runs (default 20)\n"
        "  --warmup N               untimed runs first (default 3)\n"
        "  --format FMT             table (default) or json\n"
        "  --steps N                table: list the N slowest steps: kernel (dense or sparse, ISA, layout),\n"
        "                           weight sparsity, fused ops, time, effective and nonzero GFLOP/s\n"
        "                           (default: every step; 0: none). JSON always lists every step.\n",
        f);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Seeded uniform values in [-1, 1) for floats, zeros for other types (indices must stay valid). */
static void *random_fill(const fc_tensor_view *t) {
  int64_t n = 1;
  for (int d = 0; d < t->rank; d++) n *= t->dims[d];
  size_t es = t->dtype == 1 ? 4 : t->dtype == 11 || t->dtype == 7 || t->dtype == 13 ? 8 : t->dtype == 6 || t->dtype == 12 ? 4 : t->dtype == 10 || t->dtype == 4 || t->dtype == 5 ? 2 : 1;
  void *buf = calloc((size_t)(n ? n : 1), es);
  if (!buf || t->dtype != 1) return buf;
  uint64_t s = 0x9E3779B97F4A7C15ull;
  float *f = buf;
  for (int64_t i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    f[i] = (float)((double)(s >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
  }
  return buf;
}

typedef struct type_row {
  const char *op;
  int count;
  double ms;
  int64_t flops;
} type_row;

static int by_ms(const void *a, const void *b) {
  const type_row *x = a, *y = b;
  return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : 0;
}

static const double *g_per; /* qsort context for by_step_ms */
static int by_step_ms(const void *a, const void *b) {
  double x = g_per[*(const int *)a], y = g_per[*(const int *)b];
  return x < y ? 1 : x > y ? -1 : 0;
}

/* GFLOP/s of `flops` done in `ms` (0 when nothing was timed) */
static double gflops_in(double flops, double ms) { return ms > 0 ? flops / (ms * 1e6) : 0.0; }

/* Share of a step's MACs whose weight is zero; -1 for a step without MACs. */
static double weight_sparsity(const fc_plan_step_info *info) {
  return info->macs > 0 ? 1.0 - (double)info->nonzero_macs / (double)info->macs : -1.0;
}

static void print_steps(const fc_plan *plan, const double *per, int steps, int top) {
  int *order = malloc(sizeof(int) * (size_t)(steps + 1));
  if (!order) return;
  for (int s = 0; s < steps; s++) order[s] = s;
  g_per = per;
  qsort(order, (size_t)steps, sizeof(int), by_step_ms);
  /* GFLOP/s counts the node's dense FLOPs ("effective"); nz GF/s only the MACs on nonzero weights */
  printf("\n%-4s %-30s %-14s %-28s %-24s %6s %8s %8s %8s %8s\n", "step", "node", "op", "fused", "kernel", "lay",
         "sparsity", "ms", "GFLOP/s", "nz GF/s");
  for (int i = 0; i < steps && i < top; i++) {
    fc_plan_step_info info;
    fc_plan_step(plan, (size_t)order[i], &info);
    double ms = per[order[i]];
    char sp[16] = "";
    if (weight_sparsity(&info) >= 0) snprintf(sp, sizeof sp, "%.1f%%", 100.0 * weight_sparsity(&info));
    printf("%-4d %-30.30s %-14.14s %-28.28s %-24.24s %6s %8s %8.3f %8.1f %8.1f\n", order[i], info.name, info.op_type,
           info.fused, info.kernel, info.layout, sp, ms, gflops_in((double)info.flops, ms),
           gflops_in(2.0 * (double)info.nonzero_macs, ms));
  }
  free(order);
}

int fc_cmd_bench(int argc, char **argv) {
  const char *model_path = NULL, *format = "table";
  char *specs[FC_CLI_MAX_INPUTS];
  const char *shape_specs[MAX_SHAPES];
  int n_specs = 0, n_shapes = 0, threads = 0, iters = 20, warmup = 3, show_steps = 100000;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      help(stdout);
      return 0;
    }
    bool takes = !strcmp(a, "--input") || !strcmp(a, "--input-shape") || !strcmp(a, "--threads") ||
                 !strcmp(a, "--iters") || !strcmp(a, "--warmup") || !strcmp(a, "--format") || !strcmp(a, "--steps");
    if (takes && i + 1 >= argc) return fc_cli_error("bench: %s needs a value", a);
    if (!strcmp(a, "--input")) {
      if (n_specs == FC_CLI_MAX_INPUTS) return fc_cli_error("bench: at most %d --input options", FC_CLI_MAX_INPUTS);
      specs[n_specs++] = argv[++i];
    } else if (!strcmp(a, "--input-shape")) {
      if (n_shapes == MAX_SHAPES) return fc_cli_error("bench: at most %d --input-shape options", MAX_SHAPES);
      shape_specs[n_shapes++] = argv[++i];
    } else if (!strcmp(a, "--threads") || !strcmp(a, "--iters") || !strcmp(a, "--warmup") || !strcmp(a, "--steps")) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      bool zero_ok = !strcmp(a, "--warmup") || !strcmp(a, "--steps");
      if (*end || v < (zero_ok ? 0 : 1) || v > 100000) return fc_cli_error("bench: %s needs a number (%s)", a, argv[i]);
      if (!strcmp(a, "--threads")) threads = (int)v;
      else if (!strcmp(a, "--warmup")) warmup = (int)v;
      else if (!strcmp(a, "--steps")) show_steps = (int)v;
      else iters = (int)v;
    } else if (!strcmp(a, "--format")) {
      format = argv[++i];
      if (strcmp(format, "table") && strcmp(format, "json"))
        return fc_cli_error("bench: --format must be table or json, not '%s'", format);
    } else {
      int rc = fc_cli_take_model("bench", a, &model_path);
      if (rc) return rc;
    }
  }
  if (!model_path) {
    help(stderr);
    return 2;
  }
  fc_ctx *ctx = fc_ctx_create();
  if (!ctx) return fc_cli_error("out of memory");
  fc_input_shape shapes[MAX_SHAPES];
  int rc = 0;
  for (int i = 0; i < n_shapes && !rc; i++)
    if (fc_input_shape_parse(ctx, shape_specs[i], &shapes[i])) rc = fc_cli_error("%s", fc_ctx_error(ctx));
  fc_cli_inputs in;
  memset(&in, 0, sizeof in);
  fc_model *model = NULL;
  fc_plan *plan = NULL;
  if (!rc) rc = fc_cli_load_model(ctx, "bench", model_path, specs, n_specs, shapes, n_shapes, false, &in, &model);
  fc_plan_options opt = {threads};
  double t0 = now_ms();
  if (!rc && fc_plan_create(ctx, model, &opt, &plan)) rc = fc_cli_error("%s", fc_ctx_error(ctx));
  double plan_ms = now_ms() - t0;
  /* every plan input: from a file, or random */
  size_t n_in = plan ? fc_plan_input_count(plan) : 0, n_out = plan ? fc_plan_output_count(plan) : 0;
  fc_tensor_view *views = calloc(n_in + 1, sizeof *views), *outs = calloc(n_out + 1, sizeof *outs);
  void **owned = calloc(n_in + 1, sizeof *owned);
  if (!rc && (!views || !outs || !owned)) rc = fc_cli_error("out of memory");
  for (size_t i = 0; !rc && i < n_in; i++) {
    fc_plan_input(plan, i, &views[i]);
    for (int k = 0; k < in.n; k++)
      if (!strcmp(in.names[k], views[i].name)) views[i].data = in.views[k].data;
    if (!views[i].data && !(views[i].data = owned[i] = random_fill(&views[i]))) rc = fc_cli_error("out of memory");
  }
  int steps = plan ? (int)fc_plan_step_count(plan) : 0;
  double *times = calloc((size_t)iters + 1, sizeof(double));
  int prof_runs = iters < 5 ? iters : 5;
  double *step_ms = calloc((size_t)(steps + 1) * (size_t)(prof_runs + 1), sizeof(double));
  if (!rc && (!times || !step_ms)) rc = fc_cli_error("out of memory");
  for (int i = 0; !rc && i < warmup; i++)
    if (fc_plan_run(ctx, plan, views, n_in, outs, n_out)) rc = fc_cli_error("%s", fc_ctx_error(ctx));
  for (int i = 0; !rc && i < iters; i++) {
    double s = now_ms();
    if (fc_plan_run(ctx, plan, views, n_in, outs, n_out)) rc = fc_cli_error("%s", fc_ctx_error(ctx));
    times[i] = now_ms() - s;
  }
  double mn = 1e300;
  for (int i = 0; i < iters; i++) mn = times[i] < mn ? times[i] : mn;
  double med = rc ? 0 : median(times, iters);
  /* per-step medians over a few profiled runs (after the timed ones, so timers never skew them) */
  double *per = calloc((size_t)steps + 1, sizeof(double)), *col = calloc((size_t)prof_runs + 1, sizeof(double));
  if (!rc && (!per || !col)) rc = fc_cli_error("out of memory");
  for (int r = 0; !rc && r < prof_runs; r++)
    if (fc_plan_run_profiled(ctx, plan, views, n_in, outs, n_out, step_ms + (size_t)r * (size_t)steps))
      rc = fc_cli_error("%s", fc_ctx_error(ctx));
  for (int s = 0; !rc && s < steps; s++) {
    for (int r = 0; r < prof_runs; r++) col[r] = step_ms[(size_t)r * (size_t)steps + (size_t)s];
    per[s] = prof_runs ? median(col, prof_runs) : 0;
  }
  type_row rows[MAX_TYPES];
  int n_rows = 0;
  for (int s = 0; !rc && s < steps; s++) {
    fc_plan_step_info info;
    fc_plan_step(plan, (size_t)s, &info);
    int r = 0;
    while (r < n_rows && strcmp(rows[r].op, info.op_type)) r++;
    if (r == n_rows) {
      if (n_rows == MAX_TYPES) r = MAX_TYPES - 1;
      else rows[n_rows++] = (type_row){info.op_type, 0, 0, 0};
    }
    rows[r].count++;
    rows[r].ms += per[s];
    rows[r].flops += info.flops;
  }
  if (!rc) {
    fc_cost_totals tot;
    fc_model_totals(model, &tot);
    double gflops = gflops_in((double)tot.flops, med);
    qsort(rows, (size_t)n_rows, sizeof rows[0], by_ms);
    double prof_total = 0;
    for (int r = 0; r < n_rows; r++) prof_total += rows[r].ms;
    if (!strcmp(format, "json")) {
      printf("{\"model\":");
      fc_json_str(stdout, model_path);
      printf(",\"threads\":%d,\"pinned\":%s,\"iters\":%d,\"warmup\":%d,\"median_ms\":%.4f,\"min_ms\":%.4f,\"plan_ms\":%.2f,"
             "\"macs\":%lld,\"nonzero_macs\":%lld,\"flops\":%lld,\"gflops\":%.3f,\"arena_bytes\":%zu,\"op_types\":[",
             fc_plan_threads(plan), fc_plan_pinned(plan) ? "true" : "false", iters, warmup, med, mn, plan_ms, (long long)tot.macs, (long long)tot.nonzero_macs,
             (long long)tot.flops, gflops, fc_plan_arena_bytes(plan));
      for (int r = 0; r < n_rows; r++) {
        printf("%s{\"op_type\":", r ? "," : "");
        fc_json_str(stdout, rows[r].op);
        printf(",\"count\":%d,\"ms\":%.4f,\"flops\":%lld,\"gflops\":%.3f}", rows[r].count, rows[r].ms,
               (long long)rows[r].flops, gflops_in((double)rows[r].flops, rows[r].ms));
      }
      printf("],\"steps\":[");
      for (int s = 0; s < steps; s++) {
        fc_plan_step_info info;
        fc_plan_step(plan, (size_t)s, &info);
        printf("%s{\"step\":%d,\"name\":", s ? "," : "", s);
        fc_json_str(stdout, info.name);
        printf(",\"op_type\":");
        fc_json_str(stdout, info.op_type);
        printf(",\"fused\":");
        fc_json_str(stdout, info.fused);
        printf(",\"kernel\":");
        fc_json_str(stdout, info.kernel);
        printf(",\"layout\":");
        fc_json_str(stdout, info.layout);
        if (weight_sparsity(&info) >= 0) printf(",\"weight_sparsity\":%.4f", weight_sparsity(&info));
        else printf(",\"weight_sparsity\":null");
        printf(",\"ms\":%.4f,\"flops\":%lld,\"nonzero_macs\":%lld,\"gflops\":%.3f,\"nonzero_gflops\":%.3f}", per[s],
               (long long)info.flops, (long long)info.nonzero_macs, gflops_in((double)info.flops, per[s]),
               gflops_in(2.0 * (double)info.nonzero_macs, per[s]));
      }
      printf("]}\n");
    } else {
      char b1[32], b2[32], b3[32];
      printf("model    %s\nthreads  %d%s    runs %d (+%d warmup)    plan %.1f ms    arena %.1f MB\n", model_path,
             fc_plan_threads(plan), fc_plan_pinned(plan) ? " (pinned)" : "", iters, warmup, plan_ms,
             (double)fc_plan_arena_bytes(plan) / 1048576.0);
      printf("latency  median %.3f ms    min %.3f ms\n", med, mn);
      printf("work     %s MACs (%s nonzero), %s FLOPs -> %.1f GFLOP/s\n\n", fc_fmt_si((double)tot.macs, b1, sizeof b1),
             fc_fmt_si((double)tot.nonzero_macs, b2, sizeof b2), fc_fmt_si((double)tot.flops, b3, sizeof b3), gflops);
      printf("%-22s %6s %10s %7s %10s %9s\n", "op type", "steps", "ms", "time%", "GFLOP", "GFLOP/s");
      for (int r = 0; r < n_rows; r++)
        printf("%-22.22s %6d %10.3f %6.1f%% %10.3f %9.1f\n", rows[r].op, rows[r].count, rows[r].ms,
               prof_total > 0 ? 100.0 * rows[r].ms / prof_total : 0.0, (double)rows[r].flops * 1e-9,
               gflops_in((double)rows[r].flops, rows[r].ms));
      printf("%-22s %6d %10.3f %6.1f%%   (profiled run; fused ops are counted in the op they joined)\n", "total", steps,
             prof_total, 100.0);
      if (show_steps) print_steps(plan, per, steps, show_steps);
    }
  }
  for (size_t i = 0; i < n_in; i++) free(owned ? owned[i] : NULL);
  free(owned);
  free(views);
  free(outs);
  free(times);
  free(step_ms);
  free(per);
  free(col);
  fc_plan_free(plan);
  fc_model_free(model);
  fc_cli_inputs_free(&in);
  fc_ctx_free(ctx);
  return rc;
}
