/* Calibrated one-shot pruning: Global MP sets each layer's budget, then Wanda scores |W|·‖X‖ or a
 * SparseGPT-style damped least-squares re-fit reconstructs each layer's dense output on calibration inputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/model_internal.h"
#include "prune/calib.h"
#include "util/mem.h"

/* Above this many im2col columns the Hessian is not formed: the rows are kept and H_SS built per output. */
#define FC_CALIB_MAX_H_COLS 4096
#define FC_CALIB_MAX_ROWS_ELEMS ((int64_t)1 << 28)

/* How a layer's weights map onto its im2col input: weight element of output o and column j sits at
 * o·s_out + j·s_col; conv columns run over (cin within the group, kh, kw) as the weight does. */
typedef struct lgeom {
  bool conv;
  int xval;
  int64_t n_out, cols, s_out, s_col, groups, out_per_group;
  int64_t cin, h, w, kh, kw, sh, sw, dh, dw, ph, pw, oh, ow;
} lgeom;

static int64_t attr_at(const fc_node *n, const char *name, size_t i, int64_t dflt) {
  const fc_attr *a = fc_node_attr(n, name);
  return a && a->n_ints > i ? a->ints[i] : dflt;
}

/* Whether layer l can be calibrated, and its geometry; why not in why. */
static bool layer_geom(const fc_graph *g, const fc_prune_layer *l, lgeom *lg, char *why, size_t why_n) {
  memset(lg, 0, sizeof *lg);
  if (l->n_nodes != 1) return snprintf(why, why_n, "shared weight"), false;
  const fc_node *n = &g->nodes[l->nodes[0]];
  if (n->n_inputs < 2 || n->inputs[1] < 0 || n->inputs[0] < 0) return snprintf(why, why_n, "operands"), false;
  const fc_value *wv = &g->values[n->inputs[1]];
  const fc_value *x = &g->values[n->inputs[0]];
  const fc_value *y = n->n_outputs > 0 && n->outputs[0] >= 0 ? &g->values[n->outputs[0]] : NULL;
  bool w_is_l = n->inputs[1] == l->value;
  for (int c = 0; c < l->n_copies; c++) w_is_l |= n->inputs[1] == l->copies[c];
  if (!w_is_l || !y || x->data || !fc_value_known(x) || !fc_value_known(y) || x->dtype != FC_DT_FLOAT)
    return snprintf(why, why_n, "weight is not the second operand of a float input"), false;
  lg->xval = n->inputs[0];
  if (!strcmp(n->op_type, "Conv")) {
    const char *ap = fc_attr_str(n, "auto_pad", "NOTSET");
    if (wv->rank != 4 || x->rank != 4 || y->rank != 4 || (strcmp(ap, "NOTSET") && strcmp(ap, "VALID")))
      return snprintf(why, why_n, "only 2-D convolutions with explicit pads"), false;
    lg->conv = true;
    lg->groups = fc_attr_int(n, "group", 1);
    lg->n_out = wv->dims[0];
    lg->kh = wv->dims[2], lg->kw = wv->dims[3];
    lg->cols = wv->dims[1] * lg->kh * lg->kw;
    lg->s_out = lg->cols, lg->s_col = 1;
    lg->cin = x->dims[1], lg->h = x->dims[2], lg->w = x->dims[3];
    lg->oh = y->dims[2], lg->ow = y->dims[3];
    lg->sh = attr_at(n, "strides", 0, 1), lg->sw = attr_at(n, "strides", 1, 1);
    lg->dh = attr_at(n, "dilations", 0, 1), lg->dw = attr_at(n, "dilations", 1, 1);
    bool valid = !strcmp(ap, "VALID");
    lg->ph = valid ? 0 : attr_at(n, "pads", 0, 0), lg->pw = valid ? 0 : attr_at(n, "pads", 1, 0);
    if (lg->groups < 1 || lg->n_out % lg->groups || lg->cin != wv->dims[1] * lg->groups)
      return snprintf(why, why_n, "group mismatch"), false;
    lg->out_per_group = lg->n_out / lg->groups;
    return true;
  }
  bool gemm = !strcmp(n->op_type, "Gemm");
  if (!gemm && strcmp(n->op_type, "MatMul")) return snprintf(why, why_n, "%s", n->op_type), false;
  if (wv->rank != 2 || (gemm && fc_attr_int(n, "transA", 0)))
    return snprintf(why, why_n, "only [K,N] weights on untransposed inputs"), false;
  bool nk = gemm && fc_attr_int(n, "transB", 0); /* [N, K] */
  lg->cols = nk ? wv->dims[1] : wv->dims[0];
  lg->n_out = nk ? wv->dims[0] : wv->dims[1];
  lg->s_out = nk ? lg->cols : 1;
  lg->s_col = nk ? 1 : lg->n_out;
  lg->groups = 1, lg->out_per_group = lg->n_out;
  if (x->dims[x->rank - 1] != lg->cols) return snprintf(why, why_n, "input width"), false;
  return true;
}

/* im2col rows of image b (rows = oh·ow, cols = cin/g·kh·kw) for group gi into r. */
static void im2col(const lgeom *lg, const float *x, int64_t gi, float *r) {
  int64_t cg = lg->cin / lg->groups;
  for (int64_t oy = 0; oy < lg->oh; oy++)
    for (int64_t ox = 0; ox < lg->ow; ox++, r += lg->cols) {
      int64_t j = 0;
      for (int64_t c = 0; c < cg; c++) {
        const float *plane = x + (gi * cg + c) * lg->h * lg->w;
        for (int64_t ky = 0; ky < lg->kh; ky++) {
          int64_t iy = oy * lg->sh - lg->ph + ky * lg->dh;
          for (int64_t kx = 0; kx < lg->kw; kx++, j++) {
            int64_t ix = ox * lg->sw - lg->pw + kx * lg->dw;
            r[j] = iy >= 0 && iy < lg->h && ix >= 0 && ix < lg->w ? plane[iy * lg->w + ix] : 0.0f;
          }
        }
      }
    }
}

/* What a layer's calibration gathers: column square sums per group, and either H per group or all rows. */
typedef struct gather {
  double *colsq;  /* groups × cols */
  double *h;      /* groups × cols × cols, or NULL */
  float *rows;    /* n_rows × cols when H is not formed (groups == 1) */
  int64_t n_rows, cap_rows;
  float *scratch; /* one image's im2col rows */
  float *hf;      /* one image's H in float */
} gather;

static void add_rows(const lgeom *lg, gather *ga, int64_t gi, const float *r, int64_t nr) {
  const int64_t c = lg->cols;
  double *cs = ga->colsq + gi * c;
  for (int64_t k = 0; k < nr; k++)
    for (int64_t j = 0; j < c; j++) cs[j] += (double)r[k * c + j] * r[k * c + j];
  if (ga->h) {
    memset(ga->hf, 0, (size_t)(c * c) * sizeof(float));
    for (int64_t k = 0; k < nr; k++) {
      const float *row = r + k * c;
      for (int64_t i = 0; i < c; i++) {
        float xi = row[i];
        if (xi == 0.0f) continue; /* post-ReLU activations are mostly zero */
        float *restrict hi = ga->hf + i * c;
        const float *restrict ri = row;
        for (int64_t j = i; j < c; j++) hi[j] += xi * ri[j];
      }
    }
    double *h = ga->h + gi * c * c;
    for (int64_t i = 0; i < c; i++)
      for (int64_t j = i; j < c; j++) h[i * c + j] += ga->hf[i * c + j];
  } else if (ga->rows) {
    memcpy(ga->rows + ga->n_rows * c, r, (size_t)(nr * c) * sizeof(float));
    ga->n_rows += nr;
  }
}

/* Feeds the captured input of `count` images (per_img floats each) into the gather. */
static void add_images(const lgeom *lg, gather *ga, const float *x, int64_t count, int64_t per_img) {
  for (int64_t b = 0; b < count; b++) {
    const float *xb = x + b * per_img;
    if (lg->conv) {
      for (int64_t gi = 0; gi < lg->groups; gi++) {
        im2col(lg, xb, gi, ga->scratch);
        add_rows(lg, ga, gi, ga->scratch, lg->oh * lg->ow);
      }
    } else {
      add_rows(lg, ga, 0, xb, per_img / lg->cols);
    }
  }
}

/* Runs the model on every calibration image with value xval as the only output and gathers it. */
static fc_status capture(fc_ctx *ctx, fc_model *m, const lgeom *lg, gather *ga, const float *images, int64_t n) {
  fc_err *err = &ctx->err;
  fc_graph *g = m->graph;
  const fc_value *in = &g->values[g->inputs[0]];
  const int64_t batch = in->dims[0] > 0 ? in->dims[0] : 1;
  const int64_t per_image = fc_value_numel(in) / batch;
  const fc_value *xv = &g->values[lg->xval];
  const int64_t x_per = fc_value_numel(xv) / batch;
  if (fc_value_numel(xv) % batch) return fc_fail(err, FC_ERR_UNSUPPORTED, "'%s' does not split by batch", xv->name);
  float *buf = fc_calloc((size_t)(batch * per_image), sizeof(float));
  if (!buf) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  fc_tensor_view iv = {.name = in->name, .dtype = FC_DT_FLOAT, .rank = in->rank, .data = buf};
  for (int d = 0; d < in->rank; d++) iv.dims[d] = in->dims[d];
  fc_status st = FC_OK;
  fc_plan *plan = NULL;
  if (lg->xval != g->inputs[0]) {
    /* plan a copy of the graph whose only output is the layer's input */
    int *saved = g->outputs, saved_n = g->n_outputs, xval = lg->xval;
    g->outputs = &xval, g->n_outputs = 1;
    /* one thread: the gathering between runs is serial, and idle OpenMP workers would spin through it */
    fc_plan_options po = {.threads = 1};
    st = fc_plan_create(ctx, m, &po, &plan);
    g->outputs = saved, g->n_outputs = saved_n;
  }
  for (int64_t first = 0; !st && first < n; first += batch) {
    int64_t count = n - first < batch ? n - first : batch;
    memcpy(buf, images + first * per_image, (size_t)(count * per_image) * sizeof(float));
    memset(buf + count * per_image, 0, (size_t)((batch - count) * per_image) * sizeof(float));
    const float *x = buf;
    if (plan) {
      fc_tensor_view ov = {.name = NULL};
      if ((st = fc_plan_run(ctx, plan, &iv, 1, &ov, 1))) break;
      x = ov.data;
    }
    add_images(lg, ga, x, count, x_per);
  }
  fc_plan_free(plan);
  free(buf);
  return st;
}

/* In-place Cholesky of the n×n SPD matrix a (lower triangle); false if not positive definite. */
static bool cholesky(double *a, int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    double d = a[j * n + j];
    for (int64_t k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) return false;
    d = sqrt(d);
    a[j * n + j] = d;
    for (int64_t i = j + 1; i < n; i++) {
      double v = a[i * n + j];
      for (int64_t k = 0; k < j; k++) v -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = v / d;
    }
  }
  return true;
}

static void chol_solve(const double *l, int64_t n, double *b) {
  for (int64_t i = 0; i < n; i++) {
    double v = b[i];
    for (int64_t k = 0; k < i; k++) v -= l[i * n + k] * b[k];
    b[i] = v / l[i * n + i];
  }
  for (int64_t i = n - 1; i >= 0; i--) {
    double v = b[i];
    for (int64_t k = i + 1; k < n; k++) v -= l[k * n + i] * b[k];
    b[i] = v / l[i * n + i];
  }
}

static double hget(const double *h, int64_t c, int64_t i, int64_t j) { return i <= j ? h[i * c + j] : h[j * c + i]; }

/* Re-fits the kept weights of every output: (H_SS + λI) w_S = H_S· w_dense + λ w_dense,S. mask: kept elements. */
static fc_status refit(const lgeom *lg, const gather *ga, fc_prune_layer *l, const float *dense, const uint8_t *mask,
                       double damp, fc_err *err) {
  const int64_t c = lg->cols;
  int64_t *sidx = fc_calloc((size_t)c, sizeof *sidx);
  double *a = fc_calloc((size_t)(c * c), sizeof *a), *b = fc_calloc((size_t)c, sizeof *b);
  double *y = ga->h ? NULL : fc_calloc((size_t)(ga->n_rows ? ga->n_rows : 1), sizeof *y);
  if (!sidx || !a || !b || (!ga->h && !y)) {
    free(sidx), free(a), free(b), free(y);
    return fc_fail(err, FC_ERR_NOMEM, "out of memory for a %lld-column Hessian", (long long)c);
  }
  for (int64_t o = 0; o < lg->n_out; o++) {
    int64_t gi = o / lg->out_per_group;
    const double *h = ga->h ? ga->h + gi * c * c : NULL;
    const double *cs = ga->colsq + gi * c;
    double mean = 0;
    for (int64_t j = 0; j < c; j++) mean += cs[j];
    mean /= (double)c;
    double lambda = damp * mean > 0 ? damp * mean : 1e-8;
    int64_t ns = 0;
    for (int64_t j = 0; j < c; j++) {
      int64_t e = o * lg->s_out + j * lg->s_col;
      l->w[e] = 0.0f;
      if (mask[e]) sidx[ns++] = j;
    }
    if (!ns) continue;
    if (h) {
      for (int64_t p = 0; p < ns; p++) {
        double v = 0;
        for (int64_t j = 0; j < c; j++) v += hget(h, c, sidx[p], j) * dense[o * lg->s_out + j * lg->s_col];
        b[p] = v;
        for (int64_t q = 0; q <= p; q++) a[p * ns + q] = hget(h, c, sidx[p], sidx[q]);
      }
    } else {
      for (int64_t r = 0; r < ga->n_rows; r++) {
        const float *row = ga->rows + r * c;
        double v = 0;
        for (int64_t j = 0; j < c; j++) v += (double)row[j] * dense[o * lg->s_out + j * lg->s_col];
        y[r] = v;
      }
      for (int64_t p = 0; p < ns; p++) {
        b[p] = 0;
        for (int64_t q = 0; q <= p; q++) a[p * ns + q] = 0;
      }
      for (int64_t r = 0; r < ga->n_rows; r++) {
        const float *row = ga->rows + r * c;
        for (int64_t p = 0; p < ns; p++) {
          double xp = row[sidx[p]];
          if (xp == 0) continue;
          b[p] += xp * y[r];
          for (int64_t q = 0; q <= p; q++) a[p * ns + q] += xp * row[sidx[q]];
        }
      }
    }
    /* the damping pulls w_S towards the dense weights, not towards zero: ridge towards zero shrinks
     * strongly correlated inputs (neighbouring pixels of a first conv) to worse than plain masking,
     * while this objective ‖X(w − w_S)‖² + λ‖w_S − w‖² is never above the masked one */
    for (int64_t p = 0; p < ns; p++) {
      a[p * ns + p] += lambda;
      b[p] += lambda * dense[o * lg->s_out + sidx[p] * lg->s_col];
    }
    if (cholesky(a, ns)) {
      chol_solve(a, ns, b);
      for (int64_t p = 0; p < ns; p++) {
        /* an input that never fires gets w = 0 from the solve; keeping the dense value instead changes
         * no output and keeps the mask (and the reported sparsity) exactly Global MP's */
        int64_t e = o * lg->s_out + sidx[p] * lg->s_col;
        l->w[e] = cs[sidx[p]] == 0 ? dense[e] : (float)b[p];
      }
    } else { /* cannot happen with λ > 0 short of NaNs in the data: keep the masked weights */
      for (int64_t p = 0; p < ns; p++) {
        int64_t e = o * lg->s_out + sidx[p] * lg->s_col;
        l->w[e] = dense[e];
      }
    }
  }
  free(sidx), free(a), free(b), free(y);
  return FC_OK;
}

typedef struct scored {
  double s;
  int64_t i;
} scored;

static int cmp_scored(const void *pa, const void *pb) {
  const scored *a = pa, *b = pb;
  if (a->s != b->s) return a->s < b->s ? -1 : 1;
  return a->i < b->i ? -1 : a->i > b->i; /* ties: removed in index order, like magnitude pruning */
}

/* Keeps the `keep` largest |W_oj|·‖X_j‖ of the layer. */
static fc_status wanda(const lgeom *lg, const gather *ga, fc_prune_layer *l, int64_t keep, fc_err *err) {
  scored *sc = fc_calloc((size_t)l->numel, sizeof *sc);
  if (!sc) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  int64_t k = 0;
  for (int64_t o = 0; o < lg->n_out; o++) {
    const double *cs = ga->colsq + (o / lg->out_per_group) * lg->cols;
    for (int64_t j = 0; j < lg->cols; j++) {
      int64_t e = o * lg->s_out + j * lg->s_col;
      sc[k++] = (scored){fabs((double)l->w[e]) * sqrt(cs[j]), e};
    }
  }
  qsort(sc, (size_t)k, sizeof *sc, cmp_scored);
  for (int64_t i = 0; i < k - keep; i++) l->w[sc[i].i] = 0.0f;
  free(sc);
  return FC_OK;
}

static void gather_free(gather *ga) {
  free(ga->colsq), free(ga->h), free(ga->rows), free(ga->scratch), free(ga->hf);
  memset(ga, 0, sizeof *ga);
}

/* Wanda needs only the column norms (stats false); SparseGPT also H or the rows. */
static fc_status gather_init(const lgeom *lg, gather *ga, bool stats, int64_t n_images, int64_t x_per_image,
                             fc_err *err) {
  memset(ga, 0, sizeof *ga);
  const int64_t c = lg->cols;
  bool with_h = stats && c <= FC_CALIB_MAX_H_COLS;
  bool ok = (ga->colsq = fc_calloc((size_t)(lg->groups * c), sizeof(double))) != NULL;
  if (ok && with_h) ok = (ga->h = fc_calloc((size_t)(lg->groups * c * c), sizeof(double))) && (ga->hf = fc_calloc((size_t)(c * c), sizeof(float)));
  if (ok && lg->conv) ok = (ga->scratch = fc_calloc((size_t)(lg->oh * lg->ow * c), sizeof(float))) != NULL;
  if (ok && stats && !with_h) {
    int64_t rows = n_images * (x_per_image / c), elems;
    if (lg->conv || !fc_mul_i64(rows, c, &elems) || elems > FC_CALIB_MAX_ROWS_ELEMS) {
      gather_free(ga);
      return fc_fail(err, FC_ERR_UNSUPPORTED, "%lld calibration rows of %lld columns are too many to hold: use fewer --calib-n",
                     (long long)rows, (long long)c);
    }
    ok = (ga->rows = fc_calloc((size_t)elems, sizeof(float))) != NULL;
  }
  if (!ok) {
    gather_free(ga);
    return fc_fail(err, FC_ERR_NOMEM, "out of memory for calibration statistics");
  }
  return FC_OK;
}

fc_status fc_prune_calibrated(fc_ctx *ctx, fc_prune_set *s, fc_calib_method method, double sparsity, double damp,
                              const float *images, int64_t n, fc_prune_result *res) {
  fc_err *err = &ctx->err;
  memset(res, 0, sizeof *res);
  if (n < 1) return fc_fail(err, FC_ERR_ARG, "calibration needs at least one image");
  if (!(sparsity >= 0 && sparsity <= 1)) return fc_fail(err, FC_ERR_ARG, "--sparsity must be in [0, 1]");
  fc_graph *g = s->model->graph;
  if (g->n_inputs != 1) return fc_fail(err, FC_ERR_UNSUPPORTED, "calibration feeds one image input; the model has %d", g->n_inputs);
  /* dense copies, and the Global MP masks that set every layer's budget */
  float **dense = fc_calloc(s->n_layers + 1, sizeof *dense);
  uint8_t **mask = fc_calloc(s->n_layers + 1, sizeof *mask);
  fc_status st = dense && mask ? FC_OK : fc_fail(err, FC_ERR_NOMEM, "out of memory");
  for (size_t i = 0; !st && i < s->n_layers; i++) {
    fc_prune_layer *l = &s->layers[i];
    dense[i] = fc_calloc((size_t)l->numel, sizeof(float));
    mask[i] = fc_calloc((size_t)l->numel, 1);
    if (!dense[i] || !mask[i]) st = fc_fail(err, FC_ERR_NOMEM, "out of memory");
    else memcpy(dense[i], l->w, (size_t)l->numel * sizeof(float));
  }
  if (!st) st = fc_prune_magnitude_global(s, sparsity, 0, res, err);
  for (size_t i = 0; !st && i < s->n_layers; i++) {
    fc_prune_layer *l = &s->layers[i];
    for (int64_t e = 0; e < l->numel; e++) mask[i][e] = l->w[e] != 0.0f;
    if (!l->excluded) memcpy(l->w, dense[i], (size_t)l->numel * sizeof(float));
    fc_prune_layer_sync(s, l);
  }
  const fc_value *in = st ? NULL : &g->values[g->inputs[0]];
  const int64_t batch = in && in->dims[0] > 0 ? in->dims[0] : 1;
  for (size_t i = 0; !st && i < s->n_layers; i++) {
    fc_prune_layer *l = &s->layers[i];
    if (l->excluded) continue;
    int64_t keep = 0;
    for (int64_t e = 0; e < l->numel; e++) keep += mask[i][e];
    lgeom lg;
    char why[80];
    if (!layer_geom(g, l, &lg, why, sizeof why)) {
      for (int64_t e = 0; e < l->numel; e++)
        if (!mask[i][e]) l->w[e] = 0.0f;
      snprintf(l->note, sizeof l->note, "not calibrated (%s): Global MP mask", why);
      fc_prune_layer_sync(s, l);
      continue;
    }
    gather ga;
    int64_t x_per = fc_value_numel(&g->values[lg.xval]) / batch;
    if ((st = gather_init(&lg, &ga, method == FC_CALIB_SPARSEGPT, n, x_per, err))) break;
    st = capture(ctx, s->model, &lg, &ga, images, n);
    if (!st) st = method == FC_CALIB_WANDA ? wanda(&lg, &ga, l, keep, err) : refit(&lg, &ga, l, dense[i], mask[i], damp, err);
    gather_free(&ga);
    fc_prune_layer_sync(s, l); /* the next layer's inputs come from this pruned one */
  }
  for (size_t i = 0; s && i < s->n_layers; i++) free(dense ? dense[i] : NULL), free(mask ? mask[i] : NULL);
  free(dense), free(mask);
  fc_prune_finish(s);
  res->zeros = 0;
  for (size_t l = 0; l < s->n_layers; l++)
    if (!s->layers[l].excluded) res->zeros += s->layers[l].numel - s->layers[l].nnz;
  return st;
}
