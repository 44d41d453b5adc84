/* flopcut sweep: prunes a model at every (method, sparsity) pair by running `flopcut prune` and
 * `flopcut eval` (and optionally `bench`) as child processes, and tabulates accuracy vs MACs kept. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli/cli.h"

#define MAX_LIST 32
#define MAX_EXTRA 32

static void help(FILE *f) {
  fputs("usage: flopcut sweep MODEL --images FILE --labels FILE [--sparsity S,S,..] [--method M,M,..]\n"
        "                     [--calib-images FILE] [--calib-n N] [--bench] [--format table|json|csv]\n"
        "\n"
        "Prunes MODEL with every method at every sparsity (to a temporary file), evaluates each on the\n"
        "labelled images and prints method, sparsity, MACs kept, top-1, top-5 (and batch-1 latency\n"
        "with --bench). The first row is the dense model.\n"
        "\n"
        "  --sparsity LIST          default 0.5,0.7,0.8,0.9,0.95\n"
        "  --method LIST            any of global, layer, wanda, sparsegpt (default global)\n"
        "  --calib-images FILE      calibration images for wanda/sparsegpt; --calib-n N, --damp D as prune\n"
        "  --input-shape NAME=DIMS  passed to prune and bench (a dynamic batch needs it)\n"
        "  --scale, --mean, --std, --layout, --batch, --limit, --threads   as flopcut eval\n"
        "  --bench                  also time each model at batch 1 (flopcut bench, median ms)\n"
        "  --format table|json|csv  json: one object per line\n",
        f);
}

/* Runs this binary with argv, returns its stdout (malloc'd) or NULL; stderr passes through. */
static char *run_self(char **argv) {
  int fd[2];
  if (pipe(fd)) return NULL;
  pid_t pid = fork();
  if (pid < 0) {
    close(fd[0]), close(fd[1]);
    return NULL;
  }
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]), close(fd[1]);
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  close(fd[1]);
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  ssize_t r;
  while (buf && (r = read(fd[0], buf + n, cap - n - 1)) != 0) {
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    n += (size_t)r;
    if (cap - n < 2) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) free(buf);
      buf = nb, cap *= 2;
    }
  }
  close(fd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!buf || !WIFEXITED(status) || WEXITSTATUS(status)) {
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

/* The number after "key": in a flat JSON text (first occurrence), or NAN. */
static double json_num(const char *s, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = s ? strstr(s, pat) : NULL;
  if (!p) return NAN;
  char *end;
  double v = strtod(p + strlen(pat), &end);
  return end == p + strlen(pat) ? NAN : v;
}

static int split(char *s, const char **out) {
  int n = 0;
  for (char *t = strtok(s, ","); t && n < MAX_LIST; t = strtok(NULL, ",")) out[n++] = t;
  return n;
}

typedef struct row {
  const char *method;
  double sparsity, macs_kept, top1, top5, ms;
} row;

static void print_row(const char *format, const row *r, bool bench, const char *model) {
  if (!strcmp(format, "json")) {
    printf("{\"model\":");
    fc_json_str(stdout, model);
    printf(",\"method\":\"%s\",\"sparsity\":%.4f,\"macs_kept\":%.6f,\"top1\":%.6f,\"top5\":%.6f,\"latency_ms\":",
           r->method, r->sparsity, r->macs_kept, r->top1, r->top5);
    if (bench && isfinite(r->ms)) printf("%.4f}\n", r->ms);
    else printf("null}\n");
  } else if (!strcmp(format, "csv")) {
    printf("%s,%.4f,%.6f,%.6f,%.6f,", r->method, r->sparsity, r->macs_kept, r->top1, r->top5);
    if (bench && isfinite(r->ms)) printf("%.4f\n", r->ms);
    else printf("\n");
  } else {
    printf("%-10s %8.2f%% %9.2f%% %7.2f%% %7.2f%%", r->method, 100 * r->sparsity, 100 * r->macs_kept, 100 * r->top1,
           100 * r->top5);
    if (bench) printf(" %10.3f", r->ms);
    printf("\n");
  }
  fflush(stdout);
}

int fc_cmd_sweep(int argc, char **argv) {
  const char *model = NULL, *format = "table", *images = NULL, *labels = NULL, *calib = NULL;
  char sp_buf[512] = "0.5,0.7,0.8,0.9,0.95", me_buf[256] = "global";
  /* options passed on: to every prune, to calibrated prunes only, to eval, to bench */
  char *prune_x[MAX_EXTRA], *calib_x[MAX_EXTRA], *eval_x[MAX_EXTRA], *bench_x[MAX_EXTRA];
  int n_prune = 0, n_calib = 0, n_eval = 0, n_bench = 0;
  bool bench = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      help(stdout);
      return 0;
    }
    if (!strcmp(a, "--bench")) {
      bench = true;
      continue;
    }
    if (a[0] != '-' || !a[1]) {
      if (model) return fc_cli_error("sweep: more than one model given ('%s' and '%s')", model, a);
      model = a;
      continue;
    }
    if (i + 1 >= argc) return fc_cli_error("sweep: %s needs a value", a);
    char *v = argv[++i];
    if (n_prune > MAX_EXTRA - 2 || n_calib > MAX_EXTRA - 2 || n_eval > MAX_EXTRA - 2 || n_bench > MAX_EXTRA - 2)
      return fc_cli_error("sweep: too many options");
    if (!strcmp(a, "--sparsity")) {
      if (strlen(v) >= sizeof sp_buf) return fc_cli_error("sweep: --sparsity list too long");
      strcpy(sp_buf, v);
    } else if (!strcmp(a, "--method")) {
      if (strlen(v) >= sizeof me_buf) return fc_cli_error("sweep: --method list too long");
      strcpy(me_buf, v);
    } else if (!strcmp(a, "--format")) {
      format = v;
      if (strcmp(format, "table") && strcmp(format, "json") && strcmp(format, "csv"))
        return fc_cli_error("sweep: --format must be table, json or csv, not '%s'", format);
    } else if (!strcmp(a, "--images")) {
      images = v;
    } else if (!strcmp(a, "--labels")) {
      labels = v;
    } else if (!strcmp(a, "--calib-images")) {
      calib = v;
    } else if (!strcmp(a, "--calib-n") || !strcmp(a, "--damp")) {
      calib_x[n_calib++] = (char *)a, calib_x[n_calib++] = v;
    } else if (!strcmp(a, "--input-shape")) {
      prune_x[n_prune++] = (char *)a, prune_x[n_prune++] = v;
      bench_x[n_bench++] = (char *)a, bench_x[n_bench++] = v;
    } else if (!strcmp(a, "--threads")) {
      eval_x[n_eval++] = (char *)a, eval_x[n_eval++] = v;
      bench_x[n_bench++] = (char *)a, bench_x[n_bench++] = v;
    } else if (!strcmp(a, "--scale") || !strcmp(a, "--mean") || !strcmp(a, "--std") || !strcmp(a, "--layout") ||
               !strcmp(a, "--batch") || !strcmp(a, "--limit")) {
      eval_x[n_eval++] = (char *)a, eval_x[n_eval++] = v;
      if (strcmp(a, "--batch") && strcmp(a, "--limit")) /* calibration preprocesses images the same way */
        calib_x[n_calib++] = (char *)a, calib_x[n_calib++] = v;
    } else {
      return fc_cli_error("sweep: unknown option '%s' (see flopcut sweep --help)", a);
    }
  }
  if (!model || !images || !labels) {
    help(stderr);
    return 2;
  }
  const char *sps[MAX_LIST], *mes[MAX_LIST];
  int n_sp = split(sp_buf, sps), n_me = split(me_buf, mes);
  for (int i = 0; i < n_sp; i++) {
    char *end;
    double s = strtod(sps[i], &end);
    if (end == sps[i] || *end || !(s >= 0 && s <= 1))
      return fc_cli_error("sweep: sparsity '%s' is not a number between 0 and 1", sps[i]);
  }
  for (int i = 0; i < n_me; i++) {
    const char *m = mes[i];
    if (strcmp(m, "global") && strcmp(m, "layer") && strcmp(m, "wanda") && strcmp(m, "sparsegpt"))
      return fc_cli_error("sweep: --method takes global, layer, wanda or sparsegpt, not '%s'", m);
    if (!calib && (!strcmp(m, "wanda") || !strcmp(m, "sparsegpt")))
      return fc_cli_error("sweep: --method %s needs --calib-images FILE", m);
  }
  char dir[] = "/tmp/flopcut-sweep-XXXXXX";
  if (!mkdtemp(dir)) return fc_cli_error("sweep: cannot create a temporary directory: %s", strerror(errno));
  char out[64];
  snprintf(out, sizeof out, "%s/pruned.onnx", dir);
  bool tty = isatty(fileno(stderr));
  int rc = 0;
  if (!strcmp(format, "csv")) printf("method,sparsity,macs_kept,top1,top5,latency_ms\n");
  else if (!strcmp(format, "table"))
    printf("%-10s %9s %10s %8s %8s%s\n", "method", "sparsity", "MACs kept", "top-1", "top-5", bench ? "    latency ms" : "");
  /* row -1 is the dense model */
  for (int mi = -1; mi < n_me && !rc; mi++) {
    for (int si = 0; si < (mi < 0 ? 1 : n_sp) && !rc; si++) {
      row r = {.method = mi < 0 ? "dense" : mes[mi], .sparsity = 0, .macs_kept = 1, .ms = NAN};
      const char *evaluated = model;
      if (mi >= 0) {
        if (tty) fprintf(stderr, "\r  sweep: %s at %s ...\033[K", mes[mi], sps[si]);
        char *pa[2 * MAX_EXTRA + 16];
        int k = 0;
        pa[k++] = "flopcut", pa[k++] = "prune", pa[k++] = (char *)model, pa[k++] = "-o", pa[k++] = out;
        pa[k++] = "--method", pa[k++] = (char *)mes[mi], pa[k++] = "--sparsity", pa[k++] = (char *)sps[si];
        pa[k++] = "--format", pa[k++] = "json";
        bool cal = !strcmp(mes[mi], "wanda") || !strcmp(mes[mi], "sparsegpt");
        if (cal) pa[k++] = "--calib-images", pa[k++] = (char *)calib;
        for (int j = 0; j < n_prune; j++) pa[k++] = prune_x[j];
        for (int j = 0; cal && j < n_calib; j++) pa[k++] = calib_x[j];
        pa[k] = NULL;
        char *js = run_self(pa);
        if (!js) {
          rc = fc_cli_error("sweep: prune %s at %s failed", mes[mi], sps[si]);
          break;
        }
        r.sparsity = json_num(strstr(js, "\"totals\""), "sparsity");
        r.macs_kept = json_num(js, "macs_kept");
        free(js);
        evaluated = out;
      }
      char *ea[2 * MAX_EXTRA + 16];
      int k = 0;
      ea[k++] = "flopcut", ea[k++] = "eval", ea[k++] = (char *)evaluated, ea[k++] = "--images", ea[k++] = (char *)images;
      ea[k++] = "--labels", ea[k++] = (char *)labels, ea[k++] = "--format", ea[k++] = "json";
      for (int j = 0; j < n_eval; j++) ea[k++] = eval_x[j];
      ea[k] = NULL;
      char *js = run_self(ea);
      if (!js) {
        rc = fc_cli_error("sweep: eval of %s failed", r.method);
        break;
      }
      r.top1 = json_num(js, "top1"), r.top5 = json_num(js, "top5");
      free(js);
      if (bench) {
        char *ba[2 * MAX_EXTRA + 16];
        k = 0;
        ba[k++] = "flopcut", ba[k++] = "bench", ba[k++] = (char *)evaluated, ba[k++] = "--format", ba[k++] = "json";
        for (int j = 0; j < n_bench; j++) ba[k++] = bench_x[j];
        ba[k] = NULL;
        js = run_self(ba);
        r.ms = json_num(js, "median_ms");
        free(js);
      }
      if (tty) fprintf(stderr, "\r\033[K");
      print_row(format, &r, bench, model);
    }
  }
  unlink(out);
  rmdir(dir);
  return rc;
}
