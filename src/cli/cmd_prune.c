/* flopcut prune: magnitude (global / per layer / minimum threshold / MAC target), N:M and block
 * pruning of an ONNX model, a per-layer report, and the pruned model written as ONNX. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/model_internal.h"
#include "cli/cli.h"
#include "data/array.h"
#include "eval/eval.h"
#include "onnx/onnx_save.h"
#include "prune/calib.h"
#include "prune/prune.h"

#define MAX_SHAPES 16
#define MAX_EXCLUDE 64

static void help(FILE *f) {
  fputs("usage: flopcut prune MODEL -o OUT.onnx [--method global|layer|nm|block|wanda|sparsegpt] [options]\n"
        "\n"
        "Zeroes weights of Conv, ConvTranspose, Gemm and MatMul (biases untouched) and writes a model\n"
        "ONNX Runtime runs unchanged. Prints the sparsity chosen per layer and the MACs left.\n"
        "\n"
        "  --method global          one magnitude threshold over all layers (Global MP, default)\n"
        "  --method layer           the same sparsity in every layer\n"
        "  --method nm --nm N:M     at most N nonzeros in every M consecutive input channels\n"
        "  --method block --block OxI  blocks of O outputs x I inputs, ranked by L2 norm globally\n"
        "  --method layer --block OxI  the same, ranked within each layer (same sparsity per layer)\n"
        "  --method wanda            calibrated: each layer keeps as many weights as Global MP leaves\n"
        "                           it (one magnitude threshold over all layers), chosen by the\n"
        "                           largest |W_ij| x ||X_j||_2 over the layer's calibration inputs\n"
        "  --method sparsegpt       calibrated: Global MP's masks, then each layer's kept weights\n"
        "                           re-fitted by damped least squares (H = X'X of its im2col inputs)\n"
        "                           to reproduce its dense output, layer after layer on the pruned prefix\n"
        "  --calib-images FILE      calibration images (IDX or .npy, as flopcut eval) for wanda/sparsegpt\n"
        "  --calib-n N              use the first N calibration images (default 512)\n"
        "  --scale X, --mean M[,M..], --std S[,S..], --layout nchw|nhwc   image preprocessing, as eval\n"
        "  --damp D                 sparsegpt damping: lambda = D x mean(diag H) (default 0.01)\n"
        "  --sparsity S             fraction of weights to remove (global, layer, block, wanda, sparsegpt)\n"
        "  --min-threshold P        global: every layer keeps at least P percent of all prunable\n"
        "                           weights (or all of its own); e.g. 0.05\n"
        "  --target-macs F          global/block: prune until nonzero MACs <= F x dense MACs\n"
        "  --exclude PATTERN        leave layers whose node or weight name matches (glob, repeatable)\n"
        "  --sparse-initializers    store pruned weights as ONNX sparse initializers when smaller\n"
        "  --dry-run                report only, write nothing (-o not needed)\n"
        "  --format table|json      report format (default table)\n"
        "  --input-shape NAME=DIMS  fix a dynamic input (repeatable)\n"
        "  -o, --output OUT         the pruned model (never the input)\n",
        f);
}

typedef struct prune_args {
  const char *model, *out, *format;
  const char *shapes[MAX_SHAPES];
  int n_shapes;
  const char *exclude[MAX_EXCLUDE];
  int n_exclude;
  bool dry_run, sparse, has_sparsity, has_method;
  fc_prune_opts o;
  int calib;               /* -1, or the fc_calib_method of --method wanda|sparsegpt */
  const char *calib_images;
  int64_t calib_n;
  double damp;
  fc_eval_options eo;      /* image preprocessing for calibration */
} prune_args;

static bool parse_double(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end || errno || !isfinite(v)) return false;
  *out = v;
  return true;
}

static bool parse_pair(const char *s, char sep, int *a, int *b) {
  char *end;
  long x = strtol(s, &end, 10);
  if (end == s || (*end != sep && !(sep == 'x' && *end == 'X'))) return false;
  const char *p = end + 1;
  long y = strtol(p, &end, 10);
  if (end == p || *end || x < 0 || y < 0 || x > 1 << 20 || y > 1 << 20) return false;
  *a = (int)x;
  *b = (int)y;
  return true;
}

static bool parse_list(const char *s, double *vals, int *n) {
  char tmp[512];
  if (strlen(s) >= sizeof tmp) return false;
  strcpy(tmp, s);
  *n = 0;
  for (char *tok = strtok(tmp, ","); tok; tok = strtok(NULL, ",")) {
    if (*n == FC_EVAL_MAX_CHANNELS || !parse_double(tok, &vals[*n])) return false;
    (*n)++;
  }
  return *n > 0;
}

static int parse_args(int argc, char **argv, prune_args *a) {
  memset(a, 0, sizeof *a);
  a->format = "table";
  a->o.method = FC_PRUNE_GLOBAL;
  a->calib = -1;
  a->calib_n = 512;
  a->damp = 0.01;
  fc_eval_options_default(&a->eo);
  static const char *valued[] = {"-o", "--output", "--method", "--sparsity", "--min-threshold", "--target-macs",
                                 "--nm", "--block", "--exclude", "--format", "--input-shape", "--calib-images",
                                 "--calib-n", "--scale", "--mean", "--std", "--layout", "--damp"};
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
      help(stdout);
      return 0;
    }
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
      if (!strcmp(s, valued[k]) && i + 1 >= argc) return fc_cli_error("prune: %s needs a value", s);
    if (!strcmp(s, "--dry-run")) {
      a->dry_run = true;
    } else if (!strcmp(s, "--sparse-initializers")) {
      a->sparse = true;
    } else if (!strcmp(s, "-o") || !strcmp(s, "--output")) {
      a->out = argv[++i];
    } else if (!strcmp(s, "--method")) {
      const char *m = argv[++i];
      a->has_method = true;
      if (!strcmp(m, "global")) a->o.method = FC_PRUNE_GLOBAL;
      else if (!strcmp(m, "layer")) a->o.method = FC_PRUNE_LAYER;
      else if (!strcmp(m, "nm")) a->o.method = FC_PRUNE_NM;
      else if (!strcmp(m, "block")) a->o.method = FC_PRUNE_BLOCK;
      else if (!strcmp(m, "wanda")) a->o.method = FC_PRUNE_GLOBAL, a->calib = FC_CALIB_WANDA;
      else if (!strcmp(m, "sparsegpt")) a->o.method = FC_PRUNE_GLOBAL, a->calib = FC_CALIB_SPARSEGPT;
      else return fc_cli_error("prune: --method must be global, layer, nm, block, wanda or sparsegpt, not '%s'", m);
      if (a->calib >= 0 && strcmp(m, "wanda") && strcmp(m, "sparsegpt")) a->calib = -1;
    } else if (!strcmp(s, "--calib-images")) {
      a->calib_images = argv[++i];
    } else if (!strcmp(s, "--calib-n")) {
      double v;
      if (!parse_double(argv[++i], &v) || v < 1 || v > 1e9 || v != floor(v))
        return fc_cli_error("prune: --calib-n needs a positive whole number, not '%s'", argv[i]);
      a->calib_n = (int64_t)v;
    } else if (!strcmp(s, "--damp")) {
      if (!parse_double(argv[++i], &a->damp) || a->damp <= 0 || a->damp > 10)
        return fc_cli_error("prune: --damp needs a number in (0, 10], not '%s'", argv[i]);
    } else if (!strcmp(s, "--scale")) {
      if (!parse_double(argv[++i], &a->eo.scale)) return fc_cli_error("prune: --scale '%s' is not a number", argv[i]);
    } else if (!strcmp(s, "--mean") || !strcmp(s, "--std")) {
      bool mean = !strcmp(s, "--mean");
      if (!parse_list(argv[++i], mean ? a->eo.mean : a->eo.std, mean ? &a->eo.n_mean : &a->eo.n_std))
        return fc_cli_error("prune: %s needs comma-separated numbers, not '%s'", s, argv[i]);
    } else if (!strcmp(s, "--layout")) {
      const char *l = argv[++i];
      if (!strcmp(l, "nchw")) a->eo.layout = FC_EVAL_LAYOUT_NCHW;
      else if (!strcmp(l, "nhwc")) a->eo.layout = FC_EVAL_LAYOUT_NHWC;
      else return fc_cli_error("prune: --layout must be nchw or nhwc, not '%s'", l);
    } else if (!strcmp(s, "--sparsity")) {
      if (!parse_double(argv[++i], &a->o.sparsity) || a->o.sparsity < 0 || a->o.sparsity > 1)
        return fc_cli_error("prune: --sparsity needs a number between 0 and 1, not '%s'", argv[i]);
      a->has_sparsity = true;
    } else if (!strcmp(s, "--min-threshold")) {
      if (!parse_double(argv[++i], &a->o.min_threshold) || a->o.min_threshold < 0 || a->o.min_threshold > 100)
        return fc_cli_error("prune: --min-threshold needs a percentage between 0 and 100, not '%s'", argv[i]);
    } else if (!strcmp(s, "--target-macs")) {
      if (!parse_double(argv[++i], &a->o.target_macs) || a->o.target_macs <= 0 || a->o.target_macs > 1)
        return fc_cli_error("prune: --target-macs needs a fraction in (0, 1], not '%s'", argv[i]);
    } else if (!strcmp(s, "--nm")) {
      if (!parse_pair(argv[++i], ':', &a->o.nm_n, &a->o.nm_m) || a->o.nm_m < 1 || a->o.nm_n > a->o.nm_m)
        return fc_cli_error("prune: --nm needs N:M with 0 <= N <= M (e.g. 2:4), not '%s'", argv[i]);
    } else if (!strcmp(s, "--block")) {
      if (!parse_pair(argv[++i], 'x', &a->o.block_o, &a->o.block_i) || a->o.block_o < 1 || a->o.block_i < 1)
        return fc_cli_error("prune: --block needs OxI with O, I >= 1 (e.g. 4x1), not '%s'", argv[i]);
    } else if (!strcmp(s, "--exclude")) {
      if (a->n_exclude == MAX_EXCLUDE) return fc_cli_error("prune: at most %d --exclude options", MAX_EXCLUDE);
      a->exclude[a->n_exclude++] = argv[++i];
    } else if (!strcmp(s, "--format")) {
      a->format = argv[++i];
      if (strcmp(a->format, "table") && strcmp(a->format, "json"))
        return fc_cli_error("prune: --format must be table or json, not '%s'", a->format);
    } else if (!strcmp(s, "--input-shape")) {
      if (a->n_shapes == MAX_SHAPES) return fc_cli_error("prune: at most %d --input-shape options", MAX_SHAPES);
      a->shapes[a->n_shapes++] = argv[++i];
    } else {
      int rc = fc_cli_take_model("prune", s, &a->model);
      if (rc) return rc;
    }
  }
  if (!a->model) {
    help(stderr);
    return 2;
  }
  /* --nm / --block name their method; a contradicting --method is a mistake worth stopping on */
  if (a->o.nm_m) {
    if (a->has_method && a->o.method != FC_PRUNE_NM) return fc_cli_error("prune: --nm goes with --method nm");
    a->o.method = FC_PRUNE_NM;
  }
  if (a->o.block_o) {
    /* --method layer --block OxI: blocks, the same sparsity in every layer */
    if (a->has_method && a->o.method != FC_PRUNE_BLOCK && a->o.method != FC_PRUNE_LAYER)
      return fc_cli_error("prune: --block goes with --method block (or layer, for the same sparsity per layer)");
    if (!a->has_method) a->o.method = FC_PRUNE_BLOCK;
  }
  bool macs = a->o.target_macs > 0;
  if (a->o.method == FC_PRUNE_NM) {
    if (!a->o.nm_m) return fc_cli_error("prune: --method nm needs --nm N:M (e.g. 2:4)");
    if (a->has_sparsity || macs) return fc_cli_error("prune: N:M sets the sparsity itself (1 - N/M): drop --sparsity/--target-macs");
  } else if (a->o.method == FC_PRUNE_BLOCK && !a->o.block_o) {
    return fc_cli_error("prune: --method block needs --block OxI (e.g. 4x1)");
  }
  if (a->o.method != FC_PRUNE_NM) {
    if (a->has_sparsity && macs) return fc_cli_error("prune: give --sparsity or --target-macs, not both");
    if (!a->has_sparsity && !macs) return fc_cli_error("prune: say how much to prune: --sparsity S or --target-macs F");
  }
  if (a->o.min_threshold > 0 && (a->o.method != FC_PRUNE_GLOBAL || macs))
    return fc_cli_error("prune: --min-threshold works with --method global and --sparsity");
  if (macs && a->o.method == FC_PRUNE_LAYER) return fc_cli_error("prune: --target-macs works with --method global or block");
  if (a->calib >= 0 && (!a->has_sparsity || a->o.min_threshold > 0))
    return fc_cli_error("prune: --method wanda/sparsegpt takes --sparsity S (no --target-macs/--min-threshold)");
  if (a->calib >= 0 && !a->calib_images)
    return fc_cli_error("prune: --method wanda/sparsegpt needs --calib-images FILE");
  if (a->calib < 0 && a->calib_images) return fc_cli_error("prune: --calib-images goes with --method wanda or sparsegpt");
  if (!a->out && !a->dry_run) return fc_cli_error("prune: say where to write the pruned model: -o OUT.onnx (or --dry-run)");
  return -1;
}

static const char *method_name(const prune_args *a) {
  static const char *names[] = {"global", "layer", "nm", "block"};
  if (a->calib >= 0) return a->calib == FC_CALIB_WANDA ? "wanda" : "sparsegpt";
  return names[a->o.method];
}

static int64_t layer_nz_macs(const fc_prune_set *s, const fc_prune_layer *l) {
  int64_t nz = 0;
  for (int j = 0; j < l->n_nodes; j++) nz += s->model->costs[l->nodes[j]].nonzero_macs;
  return nz;
}

static const char *layer_status(const fc_prune_layer *l) {
  return l->excluded ? "excluded" : l->left_dense ? "left_dense" : "pruned";
}

static double ratio(int64_t a, int64_t b) { return b ? (double)a / (double)b : 0.0; }
static double sparsity(int64_t kept, int64_t n) { return n ? 1.0 - (double)kept / (double)n : 0.0; }

typedef struct totals {
  int64_t weights, kept;
} totals;

static totals sum_layers(const fc_prune_set *s) {
  totals t = {0, 0};
  for (size_t i = 0; i < s->n_layers; i++)
    if (!s->layers[i].excluded) t.weights += s->layers[i].numel, t.kept += s->layers[i].nnz;
  return t;
}

static void json_opt_num(const char *key, bool on, double v) {
  printf(",\"%s\":", key);
  if (on) printf("%.17g", v);
  else printf("null");
}

static void print_json(const prune_args *a, const fc_prune_set *s, const fc_prune_result *r, int64_t out_bytes) {
  const fc_model *m = s->model;
  printf("{\"model\":");
  fc_json_str(stdout, a->model);
  printf(",\"output\":");
  if (a->dry_run) printf("null");
  else fc_json_str(stdout, a->out);
  printf(",\"output_bytes\":");
  if (a->dry_run) printf("null");
  else printf("%lld", (long long)out_bytes);
  printf(",\"dry_run\":%s,\"method\":\"%s\"", a->dry_run ? "true" : "false", method_name(a));
  json_opt_num("sparsity", a->has_sparsity, a->o.sparsity);
  json_opt_num("min_threshold", a->o.min_threshold > 0, a->o.min_threshold);
  json_opt_num("target_macs", a->o.target_macs > 0, a->o.target_macs);
  printf(",\"nm\":");
  if (a->o.method == FC_PRUNE_NM) printf("\"%d:%d\"", a->o.nm_n, a->o.nm_m);
  else printf("null");
  printf(",\"block\":");
  if (a->o.block_o) printf("\"%dx%d\"", a->o.block_o, a->o.block_i);
  else printf("null");
  printf(",\"sparse_initializers\":%s,\"layers\":[", a->sparse ? "true" : "false");
  for (size_t i = 0; i < s->n_layers; i++) {
    const fc_prune_layer *l = &s->layers[i];
    printf("%s\n{\"layer\":", i ? "," : "");
    fc_json_str(stdout, l->name);
    printf(",\"op_type\":");
    fc_json_str(stdout, l->op_type);
    printf(",\"tensor\":");
    fc_json_str(stdout, l->tensor);
    printf(",\"nodes\":[");
    for (int j = 0; j < l->n_nodes; j++) {
      if (j) putchar(',');
      fc_json_str(stdout, m->graph->nodes[l->nodes[j]].name);
    }
    printf("],\"weights\":%lld,\"kept\":%lld,\"sparsity\":%.6f,\"floor\":%lld,\"dense_macs\":%lld,"
           "\"nonzero_macs\":%lld,\"status\":\"%s\",\"note\":",
           (long long)l->numel, (long long)l->nnz, sparsity(l->nnz, l->numel), (long long)l->floor,
           (long long)l->macs, (long long)layer_nz_macs(s, l), layer_status(l));
    if (l->note[0]) fc_json_str(stdout, l->note);
    else printf("null");
    printf("}");
  }
  printf("],\"not_prunable\":[");
  for (size_t i = 0; i < s->n_skipped; i++) {
    printf("%s{\"node\":", i ? "," : "");
    fc_json_str(stdout, s->skipped[i].node);
    printf(",\"op_type\":");
    fc_json_str(stdout, s->skipped[i].op_type);
    printf(",\"reason\":");
    fc_json_str(stdout, s->skipped[i].reason);
    printf("}");
  }
  totals t = sum_layers(s);
  const fc_cost_totals *ct = &m->totals;
  printf("],\"totals\":{\"layers\":%zu,\"weights\":%lld,\"kept\":%lld,\"sparsity\":%.6f,\"target_removed\":",
         s->n_layers, (long long)t.weights, (long long)t.kept, sparsity(t.kept, t.weights));
  if (r->target_removed >= 0) printf("%lld", (long long)r->target_removed);
  else printf("null");
  /* no MACs at all: nothing was reduced; every MAC removed: the reduction is unbounded (null) */
  printf(",\"floor\":%lld,\"dense_macs\":%lld,\"nonzero_macs\":%lld,\"macs_kept\":%.6f,\"mac_reduction\":",
         (long long)r->floor_weights, (long long)ct->macs, (long long)ct->nonzero_macs,
         ct->macs ? ratio(ct->nonzero_macs, ct->macs) : 1.0);
  if (ct->macs && !ct->nonzero_macs) printf("null");
  else printf("%.6f", ct->macs ? ratio(ct->macs, ct->nonzero_macs) : 1.0);
  printf("},\"warnings\":[");
  if (r->warning[0]) fc_json_str(stdout, r->warning);
  printf("]}\n");
}

static void fit(char *dst, const char *src, size_t w) {
  size_t len = strlen(src);
  if (len <= w) snprintf(dst, w + 1, "%s", src);
  else snprintf(dst, w + 1, "~%s", src + len - (w - 1)); /* layer names differ at the end */
}

static void print_table(const prune_args *a, const fc_prune_set *s, const fc_prune_result *r, int64_t out_bytes) {
  const fc_prune_opts *o = &a->o;
  char b1[32], b2[32], b3[32], b4[32];
  printf("model   %s\nmethod  ", a->model);
  if (a->calib >= 0) {
    printf("%s, sparsity %g, per-layer budgets from Global MP, calibrated on %lld images of %s",
           a->calib == FC_CALIB_WANDA ? "wanda |W|x||X||" : "sparsegpt (Global MP masks, least-squares re-fit)",
           o->sparsity, (long long)a->calib_n, a->calib_images);
  } else switch (o->method) {
    case FC_PRUNE_GLOBAL:
      if (o->target_macs > 0) printf("global magnitude, until nonzero MACs <= %g x dense", o->target_macs);
      else printf("global magnitude, sparsity %g", o->sparsity);
      if (o->min_threshold > 0)
        printf(", minimum threshold %g%% (%s weights per layer)", o->min_threshold,
               fc_fmt_int(r->floor_weights, b1, sizeof b1));
      break;
    case FC_PRUNE_LAYER:
      if (o->block_o) printf("%dx%d blocks (outputs x inputs) by L2 norm, ", o->block_o, o->block_i);
      else printf("per-layer magnitude, ");
      printf("sparsity %g in every layer", o->sparsity);
      break;
    case FC_PRUNE_NM: printf("%d:%d along input channels", o->nm_n, o->nm_m); break;
    case FC_PRUNE_BLOCK:
      printf("%dx%d blocks (outputs x inputs) by L2 norm, ", o->block_o, o->block_i);
      if (o->target_macs > 0) printf("until nonzero MACs <= %g x dense", o->target_macs);
      else printf("sparsity %g", o->sparsity);
      break;
  }
  printf("\n\n%-30s %-6s %11s %11s %7s %8s %8s  %s\n", "layer", "op", "weights", "kept", "sparse", "MACs", "nz MACs",
         "note");
  for (size_t i = 0; i < s->n_layers; i++) {
    const fc_prune_layer *l = &s->layers[i];
    char name[31], op[7], note[160];
    fit(name, l->name, 30);
    fit(op, l->op_type, 6);
    if (l->excluded) snprintf(note, sizeof note, "excluded");
    else if (l->note[0]) snprintf(note, sizeof note, "%s", l->note);
    else if (l->floor && l->nnz <= l->floor) snprintf(note, sizeof note, "at its floor");
    else if (l->n_nodes > 1) snprintf(note, sizeof note, "shared by %d nodes", l->n_nodes);
    else note[0] = '\0';
    printf("%-30s %-6s %11s %11s %6.2f%% %8s %8s  %s\n", name, op, fc_fmt_int(l->numel, b1, sizeof b1),
           fc_fmt_int(l->nnz, b2, sizeof b2), 100.0 * (sparsity(l->nnz, l->numel)),
           fc_fmt_si((double)l->macs, b3, sizeof b3), fc_fmt_si((double)layer_nz_macs(s, l), b4, sizeof b4), note);
  }
  totals t = sum_layers(s);
  const fc_cost_totals *ct = &s->model->totals;
  printf("\ntotals  %zu layers: %s weights, %s kept (%.2f%% sparse)\n", s->n_layers, fc_fmt_int(t.weights, b1, sizeof b1),
         fc_fmt_int(t.kept, b2, sizeof b2), 100.0 * (sparsity(t.kept, t.weights)));
  printf("MACs    %s dense -> %s nonzero (%.2f%% kept", fc_fmt_int(ct->macs, b1, sizeof b1),
         fc_fmt_int(ct->nonzero_macs, b2, sizeof b2), ct->macs ? 100.0 * ratio(ct->nonzero_macs, ct->macs) : 100.0);
  if (ct->nonzero_macs) printf(", %.2fx fewer)\n", ct->macs ? ratio(ct->macs, ct->nonzero_macs) : 1.0);
  else printf(")\n");
  for (size_t i = 0; i < s->n_skipped; i++)
    printf("not pruned: %s (%s): %s\n", s->skipped[i].node, s->skipped[i].op_type, s->skipped[i].reason);
  if (a->dry_run) printf("dry run: nothing written\n");
  else printf("wrote   %s (%.1f MB)\n", a->out, (double)out_bytes / 1e6);
}

/* The layers this run may have changed, as patches on the original file. */
static fc_status save(const prune_args *a, const fc_prune_set *s, int64_t *out_bytes, fc_err *err) {
  fc_onnx_patch *p = calloc(s->n_layers ? s->n_layers : 1, sizeof *p);
  if (!p) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  size_t n = 0;
  const fc_graph *g = s->model->graph;
  for (size_t i = 0; i < s->n_layers; i++) {
    const fc_prune_layer *l = &s->layers[i];
    if (l->excluded) continue;
    /* int64 indices + values: sparse storage only pays below 1/3 density */
    bool sparse = a->sparse && l->nnz * (int64_t)(sizeof(float) + sizeof(int64_t)) < l->numel * (int64_t)sizeof(float);
    if (l->nnz == l->nnz_before && !sparse) continue;
    const fc_value *v = &g->values[l->value];
    p[n++] = (fc_onnx_patch){l->tensor, v->dtype, v->rank, v->dims, l->w, sparse};
  }
  fc_status st = fc_onnx_save_patched(a->model, a->out, g, p, n, err);
  free(p);
  if (!st) {
    FILE *f = fopen(a->out, "rb");
    if (f && fseek(f, 0, SEEK_END) == 0) *out_bytes = ftell(f);
    if (f) fclose(f);
  }
  return st;
}

/* The first --calib-n calibration images as float model inputs, normalised as flopcut eval does. */
static fc_status load_calib(fc_ctx *ctx, prune_args *a, const fc_model *m, float **out, int64_t *n_out) {
  fc_err *err = &ctx->err;
  const fc_graph *g = m->graph;
  if (g->n_inputs != 1)
    return fc_fail(err, FC_ERR_UNSUPPORTED, "calibration feeds one image tensor; the model has %d inputs", g->n_inputs);
  const fc_value *in = &g->values[g->inputs[0]];
  int64_t dims[8];
  for (int d = 0; d < in->rank && d < 8; d++) dims[d] = in->dims[d];
  dims[0] = -1;
  fc_array im;
  memset(&im, 0, sizeof im);
  fc_eval_geom geo;
  double scale;
  fc_status st = fc_array_load(a->calib_images, &im, err);
  if (!st) st = fc_eval_geom_match(&im, a->calib_images, in->rank, dims, a->eo.layout, &geo, err);
  if (!st) st = fc_eval_check_norm(&a->eo, &im, &geo, &scale, err);
  if (!st) {
    int64_t n = a->calib_n < geo.n ? a->calib_n : geo.n;
    float *buf = calloc((size_t)(n * geo.per_image), sizeof(float));
    if (!buf) {
      st = fc_fail(err, FC_ERR_NOMEM, "out of memory for %lld calibration images", (long long)n);
    } else {
      fc_eval_fill_batch(&im, &geo, scale, &a->eo, 0, n, n, buf);
      *out = buf;
      *n_out = n;
    }
  }
  fc_array_free(&im);
  return st;
}

int fc_cmd_prune(int argc, char **argv) {
  prune_args a;
  int rc = parse_args(argc, argv, &a);
  if (rc >= 0) return rc;
  fc_ctx *ctx = fc_ctx_create();
  if (!ctx) return fc_cli_error("out of memory");
  fc_err *err = &ctx->err;
  fc_input_shape shapes[MAX_SHAPES];
  fc_model *m = NULL;
  fc_prune_set *s = NULL;
  fc_prune_result res;
  int64_t out_bytes = 0;
  fc_status st = a.out ? fc_onnx_check_distinct(a.model, a.out, err) : FC_OK;
  for (int i = 0; !st && i < a.n_shapes; i++) st = fc_input_shape_parse(ctx, a.shapes[i], &shapes[i]);
  if (!st) st = fc_model_load(ctx, a.model, shapes, (size_t)a.n_shapes, &m);
  if (!st) st = fc_prune_set_create(m, a.exclude, (size_t)a.n_exclude, &s, err);
  if (!st && a.n_exclude) { /* a pattern that matches nothing is most likely a typo */
    bool any = false;
    for (size_t i = 0; s && i < s->n_layers; i++) any |= s->layers[i].excluded;
    if (!any) fprintf(stderr, "flopcut: warning: --exclude matched no prunable layer\n");
  }
  if (!st && a.calib >= 0) {
    float *calib = NULL;
    int64_t n = 0;
    st = load_calib(ctx, &a, m, &calib, &n);
    if (!st) a.calib_n = n;
    if (!st) st = fc_prune_calibrated(ctx, s, (fc_calib_method)a.calib, a.o.sparsity, a.damp, calib, n, &res);
    free(calib);
  } else if (!st) {
    st = fc_prune_run(s, &a.o, &res, err);
  }
  if (!st && s && !a.dry_run) st = save(&a, s, &out_bytes, err);
  if (st) {
    rc = fc_cli_error("%s", fc_ctx_error(ctx));
  } else {
    if (!strcmp(a.format, "json")) print_json(&a, s, &res, out_bytes);
    else print_table(&a, s, &res, out_bytes);
    if (res.warning[0]) fprintf(stderr, "flopcut: warning: %s\n", res.warning);
    rc = 0;
  }
  fc_prune_set_free(s);
  fc_model_free(m);
  fc_ctx_free(ctx);
  return rc;
}
