/* flopcut profile: per-layer cost of a model as a table (100 columns), JSON or CSV. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/model_internal.h"
#include "cli/cli.h"

#define MAX_SHAPES 16

static void help(FILE *f) {
  fputs("usage: flopcut profile MODEL [--input-shape NAME=1x3x224x224]... [--format table|json|csv]\n"
        "                            [--top N | --all]\n"
        "\n"
        "Counts, per node: MACs, FLOPs, parameters, activations, weight bytes, weight sparsity and\n"
        "the nonzero MACs a sparse kernel really needs. Conventions: docs/COSTS.md.\n"
        "\n"
        "  --input-shape NAME=DIMS  fix a dynamic input (repeatable)\n"
        "  --format FMT             table (default), json or csv\n"
        "  --top N                  table: show the N costliest layers (default 15)\n"
        "  --all                    table: show every node in graph order\n",
        f);
}

static double sparsity_of(const fc_node_cost *c) {
  return c->weight_elems ? 1.0 - (double)c->weight_nonzeros / (double)c->weight_elems : 0.0;
}

static void shapes_json(FILE *f, const fc_graph *g, const fc_node *n) {
  fputc('[', f);
  int first = 1;
  for (int o = 0; o < n->n_outputs; o++) {
    const fc_value *v = fc_node_out(g, n, o);
    if (!v) continue;
    fputs(first ? "[" : ",[", f);
    first = 0;
    for (int d = 0; d < v->rank; d++) fprintf(f, "%s%lld", d ? "," : "", (long long)v->dims[d]);
    fputc(']', f);
  }
  fputc(']', f);
}

static const char *state_reason(fc_node_state s) {
  return s == FC_NODE_UNSUPPORTED ? "op not supported" : "input comes from an unsupported node";
}

static void print_json(const char *path, const fc_model *m) {
  const fc_graph *g = m->graph;
  const fc_cost_totals *t = &m->totals;
  printf("{\"model\":");
  fc_json_str(stdout, path);
  printf(",\"opset\":%lld,\"inputs\":[", (long long)g->opset);
  for (int i = 0; i < g->n_inputs; i++) {
    const fc_value *v = &g->values[g->inputs[i]];
    printf("%s{\"name\":", i ? "," : "");
    fc_json_str(stdout, v->name);
    printf(",\"shape\":[");
    for (int d = 0; d < v->rank; d++) printf("%s%lld", d ? "," : "", (long long)v->dims[d]);
    printf("]}");
  }
  printf("],\"totals\":{\"macs\":%lld,\"flops\":%lld,\"params\":%lld,\"activations\":%lld,\"weight_bytes\":%lld,"
         "\"nonzero_macs\":%lld},\"nodes\":[",
         (long long)t->macs, (long long)t->flops, (long long)t->params, (long long)t->activations,
         (long long)t->weight_bytes, (long long)t->nonzero_macs);
  int first = 1;
  for (int i = 0; i < g->n_nodes; i++) {
    const fc_node_cost *c = &m->costs[i];
    if (!c->costed) continue;
    printf("%s\n{\"name\":", first ? "" : ",");
    first = 0;
    fc_json_str(stdout, c->name);
    printf(",\"op_type\":");
    fc_json_str(stdout, c->op_type);
    printf(",\"output_shapes\":");
    shapes_json(stdout, g, &g->nodes[i]);
    printf(",\"macs\":%lld,\"flops\":%lld,\"params\":%lld,\"activations\":%lld,\"weight_bytes\":%lld,",
           (long long)c->macs, (long long)c->flops, (long long)c->params, (long long)c->activations,
           (long long)c->weight_bytes);
    if (c->weight_elems) printf("\"weight_sparsity\":%.6f,", sparsity_of(c));
    else printf("\"weight_sparsity\":null,");
    printf("\"nonzero_macs\":%lld}", (long long)c->nonzero_macs);
  }
  printf("],\"unsupported\":[");
  first = 1;
  for (int i = 0; i < g->n_nodes; i++) {
    if (m->states[i] == FC_NODE_OK) continue;
    printf("%s{\"name\":", first ? "" : ",");
    first = 0;
    fc_json_str(stdout, g->nodes[i].name);
    printf(",\"op_type\":");
    fc_json_str(stdout, g->nodes[i].op_type);
    printf(",\"reason\":");
    fc_json_str(stdout, state_reason(m->states[i]));
    printf("}");
  }
  printf("]}\n");
}

static void csv_field(const char *s) {
  if (!strpbrk(s, ",\"\n")) { fputs(s, stdout); return; }
  putchar('"');
  for (; *s; s++) {
    if (*s == '"') putchar('"');
    putchar(*s);
  }
  putchar('"');
}

static void print_csv(const fc_model *m) {
  const fc_graph *g = m->graph;
  puts("name,op_type,output_shape,macs,flops,params,activations,weight_bytes,weight_sparsity,nonzero_macs,supported");
  for (int i = 0; i < g->n_nodes; i++) {
    const fc_node_cost *c = &m->costs[i];
    char shape[128] = "";
    const fc_value *v = fc_node_out(g, &g->nodes[i], 0);
    if (v && c->costed) fc_shape_str(v, shape, sizeof shape);
    csv_field(c->name);
    putchar(',');
    csv_field(c->op_type);
    printf(",%s,%lld,%lld,%lld,%lld,%lld,", shape, (long long)c->macs, (long long)c->flops, (long long)c->params,
           (long long)c->activations, (long long)c->weight_bytes);
    if (c->weight_elems) printf("%.6f", sparsity_of(c));
    printf(",%lld,%d\n", (long long)c->nonzero_macs, c->costed);
  }
}

static int by_macs_desc(const void *a, const void *b) {
  const fc_node_cost *x = *(const fc_node_cost *const *)a, *y = *(const fc_node_cost *const *)b;
  if (x->macs != y->macs) return x->macs < y->macs ? 1 : -1;
  return x->flops < y->flops ? 1 : x->flops > y->flops ? -1 : 0;
}

static void fit(char *dst, const char *src, size_t w) {
  size_t len = strlen(src);
  if (len <= w) { snprintf(dst, w + 1, "%s", src); return; }
  /* keep the tail: layer names differ at the end (…/layer4/conv2) */
  snprintf(dst, w + 1, "~%s", src + len - (w - 1));
}

static void print_table(const char *path, const fc_model *m, int top, int all) {
  const fc_graph *g = m->graph;
  const fc_cost_totals *t = &m->totals;
  char a[32], b[32], c2[32], d[32];
  printf("model   %s (opset %lld, %d nodes)\n", path, (long long)g->opset, g->n_nodes);
  for (int i = 0; i < g->n_inputs; i++) {
    char s[128];
    printf("input   %s %s\n", g->values[g->inputs[i]].name, fc_shape_str(&g->values[g->inputs[i]], s, sizeof s));
  }
  const fc_node_cost **rows = malloc(sizeof(*rows) * (size_t)(g->n_nodes ? g->n_nodes : 1));
  int nr = 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (m->costs[i].costed && (all || m->costs[i].macs > 0 || m->costs[i].flops > 0)) rows[nr++] = &m->costs[i];
  if (!all) qsort(rows, (size_t)nr, sizeof *rows, by_macs_desc);
  int shown = all ? nr : (nr < top ? nr : top);
  printf("\n%-26s %-13s %-15s %8s %6s %8s %8s %6s %8s\n", all ? "node (graph order)" : "top layers by MACs", "op",
         "output", "MACs", "%MACs", "FLOPs", "params", "sparse", "nz MACs");
  for (int r = 0; r < shown && rows; r++) {
    const fc_node_cost *c = rows[r];
    long idx = (long)(c - m->costs);
    char name[27], op[14], shape[16], sh[128], sp[8];
    fit(name, c->name, 26);
    fit(op, c->op_type, 13);
    const fc_value *v = fc_node_out(g, &g->nodes[idx], 0);
    fit(shape, v ? fc_shape_str(v, sh, sizeof sh) : "", 15);
    if (c->weight_elems) snprintf(sp, sizeof sp, "%5.1f%%", 100.0 * sparsity_of(c));
    else snprintf(sp, sizeof sp, "%6s", "-");
    printf("%-26s %-13s %-15s %8s %5.1f%% %8s %8s %6s %8s\n", name, op, shape, fc_fmt_si((double)c->macs, a, sizeof a),
           t->macs ? 100.0 * (double)c->macs / (double)t->macs : 0.0, fc_fmt_si((double)c->flops, b, sizeof b),
           fc_fmt_si((double)c->params, c2, sizeof c2), sp, fc_fmt_si((double)c->nonzero_macs, d, sizeof d));
  }
  if (shown < nr) printf("... %d more layers with nonzero cost (--all lists every node)\n", nr - shown);
  free(rows);
  printf("\n%-18s %18s\n", "totals", "");
  printf("  %-16s %18s  (%s)\n", "MACs", fc_fmt_int(t->macs, a, sizeof a), fc_fmt_si((double)t->macs, b, sizeof b));
  printf("  %-16s %18s  (%s)\n", "FLOPs", fc_fmt_int(t->flops, a, sizeof a), fc_fmt_si((double)t->flops, b, sizeof b));
  printf("  %-16s %18s  (%s)\n", "params", fc_fmt_int(t->params, a, sizeof a), fc_fmt_si((double)t->params, b, sizeof b));
  printf("  %-16s %18s  (%s)\n", "activations", fc_fmt_int(t->activations, a, sizeof a),
         fc_fmt_si((double)t->activations, b, sizeof b));
  printf("  %-16s %18s  (%.2f MB)\n", "weight bytes", fc_fmt_int(t->weight_bytes, a, sizeof a), (double)t->weight_bytes / 1e6);
  printf("  %-16s %18s  (%.1f%% of MACs)\n", "nonzero MACs", fc_fmt_int(t->nonzero_macs, a, sizeof a),
         t->macs ? 100.0 * (double)t->nonzero_macs / (double)t->macs : 100.0);
  int unsupported = 0;
  for (int i = 0; i < g->n_nodes; i++) unsupported += m->states[i] != FC_NODE_OK;
  if (unsupported) {
    printf("\nnot costed (%d nodes, totals exclude them):\n", unsupported);
    for (int i = 0; i < g->n_nodes; i++)
      if (m->states[i] != FC_NODE_OK)
        printf("  %-40s %-16s %s\n", g->nodes[i].name, g->nodes[i].op_type, state_reason(m->states[i]));
  }
}

int fc_cmd_profile(int argc, char **argv) {
  const char *path = NULL, *format = "table";
  const char *specs[MAX_SHAPES];
  int n_specs = 0, top = 15, all = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) { help(stdout); return 0; }
    if (!strcmp(a, "--all")) { all = 1; continue; }
    if ((!strcmp(a, "--input-shape") || !strcmp(a, "--format") || !strcmp(a, "--top")) && i + 1 >= argc)
      return fc_cli_error("profile: %s needs a value", a);
    if (!strcmp(a, "--input-shape")) {
      if (n_specs == MAX_SHAPES) return fc_cli_error("profile: at most %d --input-shape options", MAX_SHAPES);
      specs[n_specs++] = argv[++i];
    } else if (!strcmp(a, "--format")) {
      format = argv[++i];
      if (strcmp(format, "table") && strcmp(format, "json") && strcmp(format, "csv"))
        return fc_cli_error("profile: --format must be table, json or csv, not '%s'", format);
    } else if (!strcmp(a, "--top")) {
      top = atoi(argv[++i]);
      if (top < 1) return fc_cli_error("profile: --top needs a positive number");
    } else {
      int rc = fc_cli_take_model("profile", a, &path);
      if (rc) return rc;
    }
  }
  if (!path) {
    help(stderr);
    return 2;
  }
  fc_ctx *ctx = fc_ctx_create();
  if (!ctx) return fc_cli_error("out of memory");
  fc_input_shape shapes[MAX_SHAPES];
  for (int i = 0; i < n_specs; i++)
    if (fc_input_shape_parse(ctx, specs[i], &shapes[i])) {
      int rc = fc_cli_error("%s", fc_ctx_error(ctx));
      fc_ctx_free(ctx);
      return rc;
    }
  fc_model *m = NULL;
  if (fc_model_load(ctx, path, shapes, (size_t)n_specs, &m)) {
    int rc = fc_cli_error("%s", fc_ctx_error(ctx));
    fc_ctx_free(ctx);
    return rc;
  }
  if (!strcmp(format, "json")) print_json(path, m);
  else if (!strcmp(format, "csv")) print_csv(m);
  else print_table(path, m, top, all);
  fc_model_free(m);
  fc_ctx_free(ctx);
  return 0;
}
