/* Channels-last (NHWC) kernels the planner uses between oneDNN convolutions, so activations need
 * not go back to NCHW for a pool, a squeeze-excite scale or a concat: layout conversions, pooling,
 * channel-broadcast arithmetic and channel concat. Every prepare declines (FC_ERR_UNSUPPORTED)
 * what it does not handle; the planner then converts to plain and uses the ordinary kernel. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/kernel.h"
#include "util/mem.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NHWC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NHWC_CLONES
#endif

typedef struct nhwc_state {
  int64_t n, c, h, w, oh, ow;
  int64_t k[2], s[2], d[2], pb[2], pe[2];
  bool is_max, include_pad;
  int op;           /* binary: 0 add, 1 sub, 2 mul, 3 div */
  bool z_first;     /* binary: the channel vector is the left operand */
  int x_input;      /* binary: which input is the NHWC tensor */
  bool z_per_n;     /* binary: vector is [N, C] rather than [C] */
  int64_t esize;    /* element size (layout conversion, concat) */
  int n_in;         /* concat: inputs */
  int64_t cin[64];  /* concat: channels per input */
} nhwc_state;

static fc_status decline(fc_err *err) { return fc_fail(err, FC_ERR_UNSUPPORTED, "not an NHWC case"); }

static nhwc_state *new_state(fc_exec_node *en, fc_err *err) {
  nhwc_state *s = fc_calloc(1, sizeof *s);
  if (!s) fc_fail(err, FC_ERR_NOMEM, "node '%s': out of memory", en->node->name);
  en->state = s;
  return s;
}

static void release(fc_exec_node *en) {
  free(en->state);
  en->state = NULL;
}

static const fc_value *in_v(const fc_exec_node *en, int i) { return fc_node_in(en->g, en->node, i); }
static const fc_value *out_v(const fc_exec_node *en, int i) { return fc_node_out(en->g, en->node, i); }

/* ---- layout conversion: [N, C, HW] <-> [N, HW, C], tiled so both sides stay in cache ---------- */

static fc_status convert_prepare(fc_exec_node *en, fc_err *err) {
  const fc_value *x = in_v(en, 0);
  if (!x || x->rank != 4) return fc_fail(err, FC_ERR_INVALID, "layout conversion needs a rank-4 value");
  nhwc_state *s = new_state(en, err);
  if (!s) return FC_ERR_NOMEM;
  s->n = x->dims[0];
  s->c = x->dims[1];
  s->h = x->dims[2] * x->dims[3];
  s->esize = (int64_t)fc_dtype_size(x->dtype);
  return FC_OK;
}

#define TILE 32
NHWC_CLONES static void transpose_f32(const float *src, float *dst, int64_t rows, int64_t cols, int64_t r0, int64_t r1) {
  /* dst[c][r] = src[r][c] for rows r in [r0, r1) */
  for (int64_t rb = r0; rb < r1; rb += TILE)
    for (int64_t cb = 0; cb < cols; cb += TILE) {
      int64_t re = rb + TILE < r1 ? rb + TILE : r1, ce = cb + TILE < cols ? cb + TILE : cols;
      for (int64_t c = cb; c < ce; c++)
        for (int64_t r = rb; r < re; r++) dst[c * rows + r] = src[r * cols + c];
    }
}

static void transpose_any(const char *src, char *dst, int64_t rows, int64_t cols, int64_t es, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++)
    for (int64_t c = 0; c < cols; c++) memcpy(dst + (c * rows + r) * es, src + (r * cols + c) * es, (size_t)es);
}

static void convert(const fc_exec_node *en, const fc_exec_io *io, bool to_nhwc) {
  const nhwc_state *s = en->state;
  /* plain → NHWC transposes each image's [C, HW] matrix; NHWC → plain its [HW, C] matrix */
  int64_t rows = to_nhwc ? s->c : s->h, cols = to_nhwc ? s->h : s->c, plane = s->c * s->h;
  int64_t blocks = (rows + TILE - 1) / TILE, work = s->n * blocks;
#pragma omp parallel for num_threads(en->threads) if (plane * s->n > 32768 && en->threads > 1) schedule(static)
  for (int64_t t = 0; t < work; t++) {
    int64_t img = t / blocks, r0 = (t % blocks) * TILE, r1 = r0 + TILE < rows ? r0 + TILE : rows;
    const char *src = (const char *)io->in[0] + img * plane * s->esize;
    char *dst = (char *)io->out[0] + img * plane * s->esize;
    if (s->esize == 4) transpose_f32((const float *)src, (float *)dst, rows, cols, r0, r1);
    else transpose_any(src, dst, rows, cols, s->esize, r0, r1);
  }
}

static void to_nhwc_run(const fc_exec_node *en, const fc_exec_io *io) { convert(en, io, true); }
static void to_plain_run(const fc_exec_node *en, const fc_exec_io *io) { convert(en, io, false); }

/* ---- pooling -------------------------------------------------------------------------------- */

static bool rank4_f32(const fc_value *v) { return v && v->rank == 4 && v->dtype == FC_DT_FLOAT; }

static void ints2(const fc_node *n, const char *name, int64_t dflt, int64_t *out, int count) {
  const fc_attr *a = fc_node_attr(n, name);
  for (int i = 0; i < count; i++) out[i] = (a && a->type == FC_ATTR_INTS && (int)a->n_ints == count) ? a->ints[i] : dflt;
}

static fc_status pool_prepare(fc_exec_node *en, fc_err *err) {
  const fc_node *n = en->node;
  const fc_value *x = in_v(en, 0), *y = out_v(en, 0);
  if (!rank4_f32(x) || !rank4_f32(y) || (n->n_outputs > 1 && n->outputs[1] >= 0)) return decline(err);
  nhwc_state *s = new_state(en, err);
  if (!s) return FC_ERR_NOMEM;
  s->n = x->dims[0];
  s->c = x->dims[1];
  s->h = x->dims[2];
  s->w = x->dims[3];
  s->oh = y->dims[2];
  s->ow = y->dims[3];
  s->is_max = !strcmp(n->op_type, "MaxPool") || !strcmp(n->op_type, "GlobalMaxPool");
  if (!strncmp(n->op_type, "Global", 6)) {
    s->k[0] = s->h;
    s->k[1] = s->w;
    s->s[0] = s->s[1] = s->d[0] = s->d[1] = 1;
    return FC_OK;
  }
  int64_t pads[4];
  ints2(n, "kernel_shape", 1, s->k, 2);
  ints2(n, "strides", 1, s->s, 2);
  ints2(n, "dilations", 1, s->d, 2);
  ints2(n, "pads", 0, pads, 4);
  s->include_pad = fc_attr_int(n, "count_include_pad", 0) != 0;
  const char *auto_pad = fc_attr_str(n, "auto_pad", "NOTSET");
  const int64_t in[2] = {s->h, s->w}, out[2] = {s->oh, s->ow};
  for (int i = 0; i < 2; i++) {
    s->pb[i] = pads[i];
    s->pe[i] = pads[2 + i];
    if (!strcmp(auto_pad, "VALID")) s->pb[i] = s->pe[i] = 0;
    if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) {
      int64_t total = (out[i] - 1) * s->s[i] + (s->k[i] - 1) * s->d[i] + 1 - in[i];
      if (total < 0) total = 0;
      s->pb[i] = !strcmp(auto_pad, "SAME_UPPER") ? total / 2 : total - total / 2;
      s->pe[i] = total - s->pb[i];
    }
    if (s->k[i] < 1 || s->s[i] < 1 || s->d[i] < 1) return decline(err);
  }
  return FC_OK;
}

NHWC_CLONES static void pool_pixel(const nhwc_state *s, const float *x, float *y, int64_t oh, int64_t ow) {
  int64_t C = s->c, cnt = 0, pad_cnt_h = 0, pad_cnt_w = 0;
  for (int64_t c = 0; c < C; c++) y[c] = s->is_max ? -FLT_MAX : 0.0f;
  bool any = false;
  for (int64_t kh = 0; kh < s->k[0]; kh++) {
    int64_t ih = oh * s->s[0] - s->pb[0] + kh * s->d[0];
    if (ih >= -s->pb[0] && ih < s->h + s->pe[0]) pad_cnt_h++;
    if (ih < 0 || ih >= s->h) continue;
    for (int64_t kw = 0; kw < s->k[1]; kw++) {
      int64_t iw = ow * s->s[1] - s->pb[1] + kw * s->d[1];
      if (iw < 0 || iw >= s->w) continue;
      const float *xp = x + (ih * s->w + iw) * C;
      cnt++;
      any = true;
      if (s->is_max) {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) y[c] = xp[c] > y[c] ? xp[c] : y[c];
      } else {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) y[c] += xp[c];
      }
    }
  }
  if (s->is_max) {
    if (!any)
      for (int64_t c = 0; c < C; c++) y[c] = -FLT_MAX;
    return;
  }
  if (s->include_pad) {
    for (int64_t kw = 0; kw < s->k[1]; kw++) {
      int64_t iw = ow * s->s[1] - s->pb[1] + kw * s->d[1];
      if (iw >= -s->pb[1] && iw < s->w + s->pe[1]) pad_cnt_w++;
    }
    cnt = pad_cnt_h * pad_cnt_w;
  }
  float inv = cnt ? 1.0f / (float)cnt : 0.0f;
#pragma omp simd
  for (int64_t c = 0; c < C; c++) y[c] *= inv;
}

static void pool_run(const fc_exec_node *en, const fc_exec_io *io) {
  const nhwc_state *s = en->state;
  int64_t rows = s->n * s->oh;
#pragma omp parallel for num_threads(en->threads) if (rows > 1 && en->threads > 1) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    int64_t img = r / s->oh, oh = r % s->oh;
    const float *x = (const float *)io->in[0] + img * s->h * s->w * s->c;
    float *y = (float *)io->out[0] + (img * s->oh + oh) * s->ow * s->c;
    for (int64_t ow = 0; ow < s->ow; ow++) pool_pixel(s, x, y + ow * s->c, oh, ow);
  }
}

/* Global pooling reads NHWC and writes [N, C, 1, 1] (the same bytes in either layout). */
NHWC_CLONES static void gpool_image(const nhwc_state *s, const float *x, float *y) {
  int64_t C = s->c, hw = s->h * s->w;
  for (int64_t c = 0; c < C; c++) y[c] = s->is_max ? -FLT_MAX : 0.0f;
  for (int64_t p = 0; p < hw; p++) {
    const float *xp = x + p * C;
    if (s->is_max) {
#pragma omp simd
      for (int64_t c = 0; c < C; c++) y[c] = xp[c] > y[c] ? xp[c] : y[c];
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; c++) y[c] += xp[c];
    }
  }
  if (!s->is_max) {
    float inv = 1.0f / (float)hw;
    for (int64_t c = 0; c < C; c++) y[c] *= inv;
  }
}

static void gpool_run(const fc_exec_node *en, const fc_exec_io *io) {
  const nhwc_state *s = en->state;
  for (int64_t img = 0; img < s->n; img++)
    gpool_image(s, (const float *)io->in[0] + img * s->h * s->w * s->c, (float *)io->out[0] + img * s->c);
}

/* ---- x (NHWC, full) op z (per channel) ------------------------------------------------------- */

static fc_status binary_prepare(fc_exec_node *en, fc_err *err) {
  const fc_node *n = en->node;
  if (n->n_inputs != 2 || !en->in_layout) return decline(err);
  const fc_value *y = out_v(en, 0);
  int xi = en->in_layout[0] == FC_LAYOUT_NHWC ? 0 : en->in_layout[1] == FC_LAYOUT_NHWC ? 1 : -1;
  if (xi < 0 || !rank4_f32(y)) return decline(err);
  const fc_value *x = in_v(en, xi), *z = in_v(en, 1 - xi);
  if (!rank4_f32(x) || !z || z->dtype != FC_DT_FLOAT || memcmp(x->dims, y->dims, sizeof(int64_t) * 4)) return decline(err);
  /* z must be [C,1,1], [1,C,1,1] or [N,C,1,1] (a rank-1 [C] would broadcast along W) */
  int64_t zd[4] = {1, 1, 1, 1};
  if (z->rank < 3 || z->rank > 4) return decline(err);
  for (int d = 0; d < z->rank; d++) zd[4 - z->rank + d] = z->dims[d];
  if (zd[2] != 1 || zd[3] != 1 || zd[1] != x->dims[1] || (zd[0] != 1 && zd[0] != x->dims[0])) return decline(err);
  const char *op = n->op_type;
  int code = !strcmp(op, "Add") ? 0 : !strcmp(op, "Sub") ? 1 : !strcmp(op, "Mul") ? 2 : !strcmp(op, "Div") ? 3 : -1;
  if (code < 0) return decline(err);
  nhwc_state *s = new_state(en, err);
  if (!s) return FC_ERR_NOMEM;
  s->op = code;
  s->x_input = xi;
  s->z_first = xi == 1;
  s->z_per_n = zd[0] != 1;
  s->n = x->dims[0];
  s->c = x->dims[1];
  s->h = x->dims[2] * x->dims[3];
  return FC_OK;
}

NHWC_CLONES static void binary_rows(const nhwc_state *s, const float *x, const float *z, float *y, int64_t rows) {
  int64_t C = s->c;
  for (int64_t p = 0; p < rows; p++) {
    const float *xp = x + p * C;
    float *yp = y + p * C;
    switch (s->op * 2 + s->z_first) {
      case 0: case 1:
#pragma omp simd
        for (int64_t c = 0; c < C; c++) yp[c] = xp[c] + z[c];
        break;
      case 2:
#pragma omp simd
        for (int64_t c = 0; c < C; c++) yp[c] = xp[c] - z[c];
        break;
      case 3:
#pragma omp simd
        for (int64_t c = 0; c < C; c++) yp[c] = z[c] - xp[c];
        break;
      case 4: case 5:
#pragma omp simd
        for (int64_t c = 0; c < C; c++) yp[c] = xp[c] * z[c];
        break;
      case 6:
#pragma omp simd
        for (int64_t c = 0; c < C; c++) yp[c] = xp[c] / z[c];
        break;
      default:
#pragma omp simd
        for (int64_t c = 0; c < C; c++) yp[c] = z[c] / xp[c];
        break;
    }
  }
}

static void binary_run(const fc_exec_node *en, const fc_exec_io *io) {
  const nhwc_state *s = en->state;
  const float *x = io->in[s->x_input], *z = io->in[1 - s->x_input];
  float *y = io->out[0];
  int64_t chunk = 64, per_img = (s->h + chunk - 1) / chunk, work = s->n * per_img;
#pragma omp parallel for num_threads(en->threads) if (s->n * s->h * s->c > 32768 && en->threads > 1) schedule(static)
  for (int64_t t = 0; t < work; t++) {
    int64_t img = t / per_img, p0 = (t % per_img) * chunk, p1 = p0 + chunk < s->h ? p0 + chunk : s->h;
    const float *zi = z + (s->z_per_n ? img * s->c : 0);
    binary_rows(s, x + (img * s->h + p0) * s->c, zi, y + (img * s->h + p0) * s->c, p1 - p0);
  }
}

/* ---- Concat along channels ---------------------------------------------------------------- */

static fc_status concat_prepare(fc_exec_node *en, fc_err *err) {
  const fc_node *n = en->node;
  const fc_value *y = out_v(en, 0);
  if (!y || y->rank != 4 || !en->in_layout || n->n_inputs > 64 || n->n_inputs < 1) return decline(err);
  int64_t axis = fc_attr_int(n, "axis", 1);
  if (axis != 1 && axis != -3) return decline(err);
  nhwc_state *s = new_state(en, err);
  if (!s) return FC_ERR_NOMEM;
  s->n = y->dims[0];
  s->c = y->dims[1];
  s->h = y->dims[2] * y->dims[3];
  s->esize = (int64_t)fc_dtype_size(y->dtype);
  s->n_in = n->n_inputs;
  for (int i = 0; i < n->n_inputs; i++) {
    const fc_value *x = in_v(en, i);
    if (!x || x->rank != 4 || x->dtype != y->dtype) return decline(err);
    /* every input NHWC, or trivially so (one channel) */
    if (en->in_layout[i] != FC_LAYOUT_NHWC && x->dims[1] != 1) return decline(err);
    s->cin[i] = x->dims[1];
  }
  return FC_OK;
}

static void concat_run(const fc_exec_node *en, const fc_exec_io *io) {
  const nhwc_state *s = en->state;
  int64_t pixels = s->n * s->h;
#pragma omp parallel for num_threads(en->threads) if (pixels * s->c > 32768 && en->threads > 1) schedule(static)
  for (int64_t p = 0; p < pixels; p++) {
    char *dst = (char *)io->out[0] + p * s->c * s->esize;
    for (int i = 0; i < s->n_in; i++) {
      size_t bytes = (size_t)(s->cin[i] * s->esize);
      memcpy(dst, (const char *)io->in[i] + p * (int64_t)bytes, bytes);
      dst += bytes;
    }
  }
}

const fc_kernel fc_kernels_nhwc[] = {
    {"fc.ToNHWC", convert_prepare, to_nhwc_run, release, FC_KERNEL_NHWC, NULL},
    {"fc.ToPlain", convert_prepare, to_plain_run, release, FC_KERNEL_NHWC, NULL},
    {"MaxPool", pool_prepare, pool_run, release, FC_KERNEL_NHWC, NULL},
    {"AveragePool", pool_prepare, pool_run, release, FC_KERNEL_NHWC, NULL},
    {"GlobalAveragePool", pool_prepare, gpool_run, release, FC_KERNEL_NHWC, NULL},
    {"GlobalMaxPool", pool_prepare, gpool_run, release, FC_KERNEL_NHWC, NULL},
    {"Add", binary_prepare, binary_run, release, FC_KERNEL_NHWC, NULL},
    {"Sub", binary_prepare, binary_run, release, FC_KERNEL_NHWC, NULL},
    {"Mul", binary_prepare, binary_run, release, FC_KERNEL_NHWC, NULL},
    {"Div", binary_prepare, binary_run, release, FC_KERNEL_NHWC, NULL},
    {"Concat", concat_prepare, concat_run, release, FC_KERNEL_NHWC, NULL},
    {NULL, NULL, NULL, NULL, 0, NULL},
};
