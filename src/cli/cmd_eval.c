/* flopcut eval: top-1 / top-5 accuracy and images per second of a classifier on labelled images
 * (IDX or .npy), as a table or JSON, with a progress line when stderr is a terminal. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "data/array.h"
#include "eval/eval.h"

static void help(FILE *f) {
  fputs("usage: flopcut eval MODEL --images FILE --labels FILE [--scale X] [--mean M...] [--std S...]\n"
        "                         [--batch N] [--limit N] [--threads N] [--layout nchw|nhwc]\n"
        "                         [--format table|json]\n"
        "\n"
        "Runs the model on every image and reports top-1 and top-5 accuracy and images per second.\n"
        "\n"
        "  --images FILE     IDX (MNIST format) or .npy, gzipped or not: NxHxW, NxCxHxW or NxHxWxC,\n"
        "                    uint8 or float32 (any numeric type)\n"
        "  --labels FILE     IDX or .npy: N integer class indices\n"
        "  --scale X         multiply raw values by X (default 1/255 for uint8 images, else 1)\n"
        "  --mean M...       then subtract the mean: one value or one per channel (commas or spaces)\n"
        "  --std S...        then divide by the std: one value or one per channel\n"
        "  --batch N         images per run (default 64; the last batch is zero-padded; a model with a\n"
        "                    fixed batch dimension uses its own)\n"
        "  --limit N         only the first N images\n"
        "  --threads N       threads (default: all cores)\n"
        "  --layout L        nchw or nhwc: how 4-D image files are laid out (default: whichever fits)\n"
        "  --format F        table (default) or json: {\"top1\",\"top5\",\"n\",\"images_per_s\",...}\n",
        f);
}

static bool parse_num(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end || errno || !isfinite(v)) return false;
  *out = v;
  return true;
}

static bool parse_int(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end || errno || v < lo || v > hi) return false;
  *out = v;
  return true;
}

/* --mean/--std: values after the flag, each argument possibly comma-separated, up to the next
 * option. Returns the index of the last argument consumed, or -1 on error (message printed). */
static int parse_values(int argc, char **argv, int i, const char *flag, double *vals, int *n) {
  *n = 0;
  int j = i + 1;
  for (; j < argc; j++) {
    const char *a = argv[j];
    if (a[0] == '-' && !(a[1] >= '0' && a[1] <= '9') && a[1] != '.') break; /* next option */
    char tmp[256];
    if (strlen(a) >= sizeof tmp) return fc_cli_error("eval: %s value '%s' is too long", flag, a), -1;
    strcpy(tmp, a);
    for (char *tok = strtok(tmp, ","); tok; tok = strtok(NULL, ",")) {
      if (*n == FC_EVAL_MAX_CHANNELS)
        return fc_cli_error("eval: %s takes at most %d values", flag, FC_EVAL_MAX_CHANNELS), -1;
      if (!parse_num(tok, &vals[*n])) return fc_cli_error("eval: %s value '%s' is not a number", flag, tok), -1;
      (*n)++;
    }
  }
  if (*n == 0) return fc_cli_error("eval: %s needs at least one value", flag), -1;
  return j - 1;
}

typedef struct progress_state {
  int shown;
} progress_state;

static void progress(void *user, int64_t done, int64_t total, int64_t top1) {
  progress_state *p = user;
  char a[32], b[32];
  fprintf(stderr, "\r  eval %s / %s images  top-1 %.2f%%   ", fc_fmt_int(done, a, sizeof a),
          fc_fmt_int(total, b, sizeof b), done ? 100.0 * (double)top1 / (double)done : 0.0);
  p->shown = 1;
}

static void print_table(const char *model, const char *images, const fc_array *im, const fc_eval_result *r) {
  char a[32], b[32], c[32];
  const fc_eval_geom *g = &r->geom;
  printf("model    %s\n", model);
  printf("images   %s: %s images of %lldx%lldx%lld %s, %s, x%.6g\n", images, fc_fmt_int(g->n, a, sizeof a),
         (long long)g->c, (long long)g->h, (long long)g->w, g->nhwc ? "(from NHWC)" : "(CxHxW)",
         fc_dtype_name(im->dtype), r->scale);
  printf("top-1    %.2f%%  (%s / %s)\n", r->n ? 100.0 * (double)r->top1 / (double)r->n : 0.0,
         fc_fmt_int(r->top1, a, sizeof a), fc_fmt_int(r->n, b, sizeof b));
  printf("top-%d    %.2f%%  (%s / %s)\n", r->topk, r->n ? 100.0 * (double)r->top5 / (double)r->n : 0.0,
         fc_fmt_int(r->top5, a, sizeof a), b);
  printf("speed    %s images/s  (batch %d, %d thread%s, %.2f s)\n",
         fc_fmt_int((int64_t)llround(r->images_per_s), c, sizeof c), r->batch, r->threads, r->threads == 1 ? "" : "s",
         r->seconds);
}

static void print_json(const char *model, const char *images, const char *labels, const fc_eval_result *r) {
  printf("{\"model\":");
  fc_json_str(stdout, model);
  printf(",\"images\":");
  fc_json_str(stdout, images);
  printf(",\"labels\":");
  fc_json_str(stdout, labels);
  double n = r->n ? (double)r->n : 1.0;
  printf(",\"n\":%lld,\"top1\":%.6f,\"top5\":%.6f,\"top1_correct\":%lld,\"top5_correct\":%lld,\"topk\":%d,"
         "\"classes\":%lld,\"images_per_s\":%.1f,\"seconds\":%.4f,\"batch\":%d,\"threads\":%d,\"scale\":%.9g}\n",
         (long long)r->n, (double)r->top1 / n, (double)r->top5 / n, (long long)r->top1, (long long)r->top5,
         r->topk, (long long)r->classes, r->images_per_s, r->seconds, r->batch, r->threads, r->scale);
}

int fc_cmd_eval(int argc, char **argv) {
  const char *model = NULL, *images = NULL, *labels = NULL, *format = "table";
  fc_eval_options o;
  fc_eval_options_default(&o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    long long v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      help(stdout);
      return 0;
    }
    bool takes_value = !strcmp(a, "--images") || !strcmp(a, "--labels") || !strcmp(a, "--scale") ||
                       !strcmp(a, "--mean") || !strcmp(a, "--std") || !strcmp(a, "--batch") ||
                       !strcmp(a, "--limit") || !strcmp(a, "--threads") || !strcmp(a, "--layout") ||
                       !strcmp(a, "--format");
    if (takes_value && i + 1 >= argc) return fc_cli_error("eval: %s needs a value", a);
    if (!strcmp(a, "--images")) {
      images = argv[++i];
    } else if (!strcmp(a, "--labels")) {
      labels = argv[++i];
    } else if (!strcmp(a, "--scale")) {
      if (!parse_num(argv[++i], &o.scale)) return fc_cli_error("eval: --scale '%s' is not a number", argv[i]);
    } else if (!strcmp(a, "--mean")) {
      if ((i = parse_values(argc, argv, i, a, o.mean, &o.n_mean)) < 0) return 1;
    } else if (!strcmp(a, "--std")) {
      if ((i = parse_values(argc, argv, i, a, o.std, &o.n_std)) < 0) return 1;
    } else if (!strcmp(a, "--batch")) {
      if (!parse_int(argv[++i], 1, 1 << 20, &v)) return fc_cli_error("eval: --batch needs a number from 1 to 1048576");
      o.batch = (int)v;
    } else if (!strcmp(a, "--limit")) {
      if (!parse_int(argv[++i], 1, INT64_MAX, &v)) return fc_cli_error("eval: --limit needs a positive number");
      o.limit = v;
    } else if (!strcmp(a, "--threads")) {
      if (!parse_int(argv[++i], 0, 1024, &v)) return fc_cli_error("eval: --threads needs a number from 0 to 1024");
      o.threads = (int)v;
    } else if (!strcmp(a, "--layout")) {
      const char *l = argv[++i];
      if (!strcmp(l, "nchw")) o.layout = FC_EVAL_LAYOUT_NCHW;
      else if (!strcmp(l, "nhwc")) o.layout = FC_EVAL_LAYOUT_NHWC;
      else return fc_cli_error("eval: --layout must be nchw or nhwc, not '%s'", l);
    } else if (!strcmp(a, "--format")) {
      format = argv[++i];
      if (strcmp(format, "table") && strcmp(format, "json"))
        return fc_cli_error("eval: --format must be table or json, not '%s'", format);
    } else {
      int rc = fc_cli_take_model("eval", a, &model);
      if (rc) return rc;
    }
  }
  if (!model || !images || !labels) {
    help(stderr);
    return 2;
  }
  fc_ctx *ctx = fc_ctx_create();
  if (!ctx) return fc_cli_error("out of memory");
  fc_array im, lab;
  fc_err err = {0};
  memset(&lab, 0, sizeof lab);
  int rc = 0;
  if (fc_array_load(images, &im, &err) || fc_array_load(labels, &lab, &err)) {
    rc = fc_cli_error("%s", err.msg);
    goto done;
  }
  progress_state ps = {0};
  if (isatty(fileno(stderr))) {
    o.progress = progress;
    o.user = &ps;
  }
  fc_eval_result r;
  fc_status st = fc_eval_run(ctx, model, &im, images, &lab, labels, &o, &r);
  if (ps.shown) fputs("\r\033[K", stderr);
  if (st) {
    rc = fc_cli_error("%s", fc_ctx_error(ctx));
    goto done;
  }
  if (!strcmp(format, "json")) print_json(model, images, labels, &r);
  else print_table(model, images, &im, &r);
done:
  fc_array_free(&im);
  fc_array_free(&lab);
  fc_ctx_free(ctx);
  return rc;
}
