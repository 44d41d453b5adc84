/* Reference Conv/ConvTranspose/Gemm/MatMul and post-ops: straightforward loops in double-free
 * float arithmetic, honouring element strides so one routine serves plain and NHWC tensors. */
#include <math.h>
#include <string.h>
#include "kernels/ref/ref.h"
#include "passes/passes.h"

static fc_status bad(const fc_exec_node *en, fc_err *err, const char *why) {
  return fc_fail(err, FC_ERR_UNSUPPORTED, "node '%s' (%s): %s", en->node->name, en->node->op_type, why);
}

static void ints_or(const fc_node *n, const char *name, int k, int64_t dflt, int64_t *out) {
  const fc_attr *a = fc_node_attr(n, name);
  for (int i = 0; i < k; i++) out[i] = (a && a->type == FC_ATTR_INTS && (int)a->n_ints == k) ? a->ints[i] : dflt;
}

fc_status fc_conv_params_read(const fc_exec_node *en, fc_conv_params *p, fc_err *err) {
  const fc_node *n = en->node;
  const fc_value *x = fc_node_in(en->g, n, 0), *w = fc_node_in(en->g, n, 1), *y = fc_node_out(en->g, n, 0);
  memset(p, 0, sizeof *p);
  if (!x || !w || !y || x->dtype != FC_DT_FLOAT || w->dtype != FC_DT_FLOAT)
    return bad(en, err, "only float32 convolutions are supported");
  if (x->rank < 3 || x->rank > 2 + FC_CONV_MAX_SP || w->rank != x->rank || y->rank != x->rank)
    return bad(en, err, "only 1-D, 2-D and 3-D convolutions are supported");
  p->transpose = !strcmp(n->op_type, "ConvTranspose");
  p->nsp = x->rank - 2;
  p->n = x->dims[0];
  p->ic = x->dims[1];
  p->oc = y->dims[1];
  p->group = fc_attr_int(n, "group", 1);
  if (p->group < 1 || p->ic % p->group || p->oc % p->group) return bad(en, err, "bad group count");
  int k = p->nsp;
  for (int i = 0; i < k; i++) {
    p->in[i] = x->dims[2 + i];
    p->out[i] = y->dims[2 + i];
    p->k[i] = w->dims[2 + i];
  }
  ints_or(n, "strides", k, 1, p->stride);
  ints_or(n, "dilations", k, 1, p->dil);
  int64_t pads[2 * FC_CONV_MAX_SP];
  ints_or(n, "pads", 2 * k, 0, pads);
  int64_t outpad[FC_CONV_MAX_SP];
  ints_or(n, "output_padding", k, 0, outpad);
  const char *auto_pad = fc_attr_str(n, "auto_pad", "NOTSET");
  bool same = !strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER");
  bool upper = !strcmp(auto_pad, "SAME_UPPER");
  bool valid = !strcmp(auto_pad, "VALID");
  for (int i = 0; i < k; i++) {
    int64_t eff = (p->k[i] - 1) * p->dil[i] + 1;
    p->pad_b[i] = valid ? 0 : pads[i];
    p->pad_e[i] = valid ? 0 : pads[k + i];
    if (!p->transpose) {
      if (same) {
        int64_t total = (p->out[i] - 1) * p->stride[i] + eff - p->in[i];
        if (total < 0) total = 0;
        p->pad_b[i] = upper ? total / 2 : total - total / 2;
        p->pad_e[i] = total - p->pad_b[i];
      }
    } else if (same || fc_node_attr(n, "output_shape")) {
      /* pads follow from the output size (inferred already); an odd total puts the extra pad at the
       * end for SAME_UPPER, at the start otherwise (the ONNX text; ONNX Runtime 1.32 agrees) */
      int64_t total = p->stride[i] * (p->in[i] - 1) + outpad[i] + eff - p->out[i];
      if (total < 0) total = 0;
      p->pad_b[i] = upper ? total / 2 : total - total / 2;
      p->pad_e[i] = total - p->pad_b[i];
    }
    if (p->stride[i] < 1 || p->dil[i] < 1) return bad(en, err, "strides and dilations must be ≥ 1");
  }
  int64_t wexp0 = p->transpose ? p->ic : p->oc, wexp1 = p->transpose ? p->oc / p->group : p->ic / p->group;
  if (w->dims[0] != wexp0 || w->dims[1] != wexp1) return bad(en, err, "weight shape does not match the channels");
  return FC_OK;
}

void fc_conv_strides(const fc_conv_params *p, bool output, int layout, fc_strides *s) {
  int64_t c = output ? p->oc : p->ic;
  const int64_t *sp = output ? p->out : p->in;
  int64_t plane = 1;
  for (int i = 0; i < p->nsp; i++) plane *= sp[i];
  memset(s, 0, sizeof *s);
  int64_t acc = layout == FC_LAYOUT_NHWC ? c : 1;
  for (int i = p->nsp - 1; i >= 0; i--) {
    s->sp[i] = acc;
    acc *= sp[i];
  }
  s->c = layout == FC_LAYOUT_NHWC ? 1 : plane;
  s->n = c * plane;
}

/* Flattens up to 3 spatial dims into (d, h, w) with size 1 for missing ones. */
static void sp3(const fc_conv_params *p, const int64_t *v, int64_t dflt, int64_t out[3]) {
  for (int i = 0; i < 3; i++) out[i] = dflt;
  for (int i = 0; i < p->nsp; i++) out[3 - p->nsp + i] = v[i];
}
static void st3(const fc_conv_params *p, const fc_strides *s, int64_t out[3]) {
  for (int i = 0; i < 3; i++) out[i] = 0;
  for (int i = 0; i < p->nsp; i++) out[3 - p->nsp + i] = s->sp[i];
}

void fc_ref_conv(const fc_conv_params *p, const float *x, const fc_strides *xs, const float *w, const float *b,
                 float *y, const fc_strides *ys) {
  int64_t in[3], out[3], k[3], st[3], dl[3], pb[3], xsp[3], ysp[3];
  sp3(p, p->in, 1, in);
  sp3(p, p->out, 1, out);
  sp3(p, p->k, 1, k);
  sp3(p, p->stride, 1, st);
  sp3(p, p->dil, 1, dl);
  sp3(p, p->pad_b, 0, pb);
  st3(p, xs, xsp);
  st3(p, ys, ysp);
  int64_t icg = p->ic / p->group, ocg = p->oc / p->group, kvol = k[0] * k[1] * k[2];
  if (!p->transpose) {
    for (int64_t n = 0; n < p->n; n++)
      for (int64_t oc = 0; oc < p->oc; oc++) {
        int64_t g = oc / ocg;
        for (int64_t od = 0; od < out[0]; od++)
          for (int64_t oh = 0; oh < out[1]; oh++)
            for (int64_t ow = 0; ow < out[2]; ow++) {
              float acc = b ? b[oc] : 0.0f;
              for (int64_t ic = 0; ic < icg; ic++)
                for (int64_t kd = 0; kd < k[0]; kd++) {
                  int64_t id = od * st[0] - pb[0] + kd * dl[0];
                  if (id < 0 || id >= in[0]) continue;
                  for (int64_t kh = 0; kh < k[1]; kh++) {
                    int64_t ih = oh * st[1] - pb[1] + kh * dl[1];
                    if (ih < 0 || ih >= in[1]) continue;
                    for (int64_t kw = 0; kw < k[2]; kw++) {
                      int64_t iw = ow * st[2] - pb[2] + kw * dl[2];
                      if (iw < 0 || iw >= in[2]) continue;
                      float xv = x[n * xs->n + (g * icg + ic) * xs->c + id * xsp[0] + ih * xsp[1] + iw * xsp[2]];
                      float wv = w[(oc * icg + ic) * kvol + (kd * k[1] + kh) * k[2] + kw];
                      acc += xv * wv;
                    }
                  }
                }
              y[n * ys->n + oc * ys->c + od * ysp[0] + oh * ysp[1] + ow * ysp[2]] = acc;
            }
      }
    return;
  }
  /* transposed: every input pixel scatters its kernel window into the output */
  for (int64_t n = 0; n < p->n; n++)
    for (int64_t oc = 0; oc < p->oc; oc++)
      for (int64_t od = 0; od < out[0]; od++)
        for (int64_t oh = 0; oh < out[1]; oh++)
          for (int64_t ow = 0; ow < out[2]; ow++)
            y[n * ys->n + oc * ys->c + od * ysp[0] + oh * ysp[1] + ow * ysp[2]] = b ? b[oc] : 0.0f;
  for (int64_t n = 0; n < p->n; n++)
    for (int64_t ic = 0; ic < p->ic; ic++) {
      int64_t g = ic / icg;
      for (int64_t id = 0; id < in[0]; id++)
        for (int64_t ih = 0; ih < in[1]; ih++)
          for (int64_t iw = 0; iw < in[2]; iw++) {
            float xv = x[n * xs->n + ic * xs->c + id * xsp[0] + ih * xsp[1] + iw * xsp[2]];
            for (int64_t oc = 0; oc < ocg; oc++)
              for (int64_t kd = 0; kd < k[0]; kd++) {
                int64_t od = id * st[0] - pb[0] + kd * dl[0];
                if (od < 0 || od >= out[0]) continue;
                for (int64_t kh = 0; kh < k[1]; kh++) {
                  int64_t oh = ih * st[1] - pb[1] + kh * dl[1];
                  if (oh < 0 || oh >= out[1]) continue;
                  for (int64_t kw = 0; kw < k[2]; kw++) {
                    int64_t ow = iw * st[2] - pb[2] + kw * dl[2];
                    if (ow < 0 || ow >= out[2]) continue;
                    float wv = w[(ic * ocg + oc) * kvol + (kd * k[1] + kh) * k[2] + kw];
                    y[n * ys->n + (g * ocg + oc) * ys->c + od * ysp[0] + oh * ysp[1] + ow * ysp[2]] += xv * wv;
                  }
                }
              }
          }
    }
}

fc_status fc_gemm_params_read(const fc_exec_node *en, fc_gemm_params *p, fc_err *err) {
  const fc_node *n = en->node;
  const fc_value *a = fc_node_in(en->g, n, 0), *b = fc_node_in(en->g, n, 1), *c = fc_node_in(en->g, n, 2);
  memset(p, 0, sizeof *p);
  if (!a || !b || a->rank != 2 || b->rank != 2 || a->dtype != FC_DT_FLOAT || b->dtype != FC_DT_FLOAT)
    return bad(en, err, "Gemm needs two float32 matrices");
  p->trans_a = fc_attr_int(n, "transA", 0) != 0;
  p->trans_b = fc_attr_int(n, "transB", 0) != 0;
  p->alpha = fc_attr_float(n, "alpha", 1.0f);
  p->beta = fc_attr_float(n, "beta", 1.0f);
  p->m = p->trans_a ? a->dims[1] : a->dims[0];
  p->k = p->trans_a ? a->dims[0] : a->dims[1];
  p->n = p->trans_b ? b->dims[0] : b->dims[1];
  if ((p->trans_b ? b->dims[1] : b->dims[0]) != p->k) return bad(en, err, "inner dimensions differ");
  if (c) {
    if (c->dtype != FC_DT_FLOAT || c->rank > 2) return bad(en, err, "C must be a float32 scalar, vector or matrix");
    p->c_rank = c->rank;
    p->c_dims[0] = p->c_dims[1] = 1;
    for (int d = 0; d < c->rank; d++) p->c_dims[2 - c->rank + d] = c->dims[d];
    if ((p->c_dims[0] != 1 && p->c_dims[0] != p->m) || (p->c_dims[1] != 1 && p->c_dims[1] != p->n))
      return bad(en, err, "C does not broadcast to the output");
  } else {
    p->c_rank = -1;
  }
  return FC_OK;
}

void fc_ref_gemm(const fc_gemm_params *p, const float *a, const float *b, const float *c, float *y) {
  for (int64_t i = 0; i < p->m; i++)
    for (int64_t j = 0; j < p->n; j++) {
      float acc = 0;
      for (int64_t l = 0; l < p->k; l++) {
        float av = p->trans_a ? a[l * p->m + i] : a[i * p->k + l];
        float bv = p->trans_b ? b[j * p->k + l] : b[l * p->n + j];
        acc += av * bv;
      }
      acc *= p->alpha;
      if (c && p->c_rank >= 0) {
        int64_t ci = (p->c_dims[0] == 1 ? 0 : i) * p->c_dims[1] + (p->c_dims[1] == 1 ? 0 : j);
        acc += p->beta * c[ci];
      }
      y[i * p->n + j] = acc;
    }
}

fc_status fc_matmul_params_read(const fc_exec_node *en, fc_matmul_params *p, fc_err *err) {
  const fc_node *n = en->node;
  const fc_value *a = fc_node_in(en->g, n, 0), *b = fc_node_in(en->g, n, 1), *y = fc_node_out(en->g, n, 0);
  memset(p, 0, sizeof *p);
  if (!a || !b || !y || a->dtype != FC_DT_FLOAT || b->dtype != FC_DT_FLOAT || a->rank < 1 || b->rank < 1)
    return bad(en, err, "MatMul needs float32 operands of rank ≥ 1");
  int64_t ad[FC_MAX_RANK], bd[FC_MAX_RANK];
  int ar = a->rank, br = b->rank;
  /* numpy promotion: a 1-D left operand is a row, a 1-D right operand a column */
  if (ar == 1) {
    ad[0] = 1;
    ad[1] = a->dims[0];
    ar = 2;
  } else {
    memcpy(ad, a->dims, sizeof(int64_t) * (size_t)ar);
  }
  if (br == 1) {
    bd[0] = b->dims[0];
    bd[1] = 1;
    br = 2;
  } else {
    memcpy(bd, b->dims, sizeof(int64_t) * (size_t)br);
  }
  int r = ar > br ? ar : br;
  if (r > FC_MAX_RANK) return bad(en, err, "rank too large");
  p->rank = r;
  for (int d = 0; d < r; d++) {
    p->a_dims[d] = d < r - ar ? 1 : ad[d - (r - ar)];
    p->b_dims[d] = d < r - br ? 1 : bd[d - (r - br)];
  }
  p->m = p->a_dims[r - 2];
  p->k = p->a_dims[r - 1];
  p->n = p->b_dims[r - 1];
  if (p->b_dims[r - 2] != p->k) return bad(en, err, "inner dimensions differ");
  p->batch = 1;
  for (int d = 0; d < r - 2; d++) {
    int64_t x = p->a_dims[d], z = p->b_dims[d];
    if (x != z && x != 1 && z != 1) return bad(en, err, "batch dimensions do not broadcast");
    p->y_dims[d] = x > z ? x : z;
    p->batch *= p->y_dims[d];
  }
  p->y_dims[r - 2] = p->m;
  p->y_dims[r - 1] = p->n;
  int64_t ynumel = fc_value_numel(y);
  if (ynumel != p->batch * p->m * p->n) return bad(en, err, "output shape disagrees with the operands");
  return FC_OK;
}

/* Offset of batch index `bi` (over y's batch dims) in an operand with dims `od`. */
static int64_t batch_offset(const fc_matmul_params *p, const int64_t *od, int64_t bi) {
  int64_t off = 0, stride = od[p->rank - 2] * od[p->rank - 1];
  for (int d = p->rank - 3; d >= 0; d--) {
    int64_t i = bi % p->y_dims[d];
    bi /= p->y_dims[d];
    if (od[d] != 1) off += i * stride;
    stride *= od[d];
  }
  return off;
}

void fc_ref_matmul(const fc_matmul_params *p, const float *a, const float *b, float *y) {
  for (int64_t bi = 0; bi < p->batch; bi++) {
    const float *ab = a + batch_offset(p, p->a_dims, bi), *bb = b + batch_offset(p, p->b_dims, bi);
    float *yb = y + bi * p->m * p->n;
    for (int64_t i = 0; i < p->m; i++)
      for (int64_t j = 0; j < p->n; j++) {
        float acc = 0;
        for (int64_t l = 0; l < p->k; l++) acc += ab[i * p->k + l] * bb[l * p->n + j];
        yb[i * p->n + j] = acc;
      }
  }
}

fc_status fc_post_ops_read(const fc_exec_node *en, int first, int axis, fc_post_ops *po, fc_err *err) {
  memset(po, 0, sizeof *po);
  const fc_value *y = fc_node_out(en->g, en->node, 0);
  po->rank = y->rank;
  memcpy(po->dims, y->dims, sizeof po->dims);
  po->axis = axis;
  po->layout = en->out_layout ? en->out_layout[0] : FC_LAYOUT_PLAIN;
  po->n = fc_node_post_ops(en->node, po->kinds, po->alpha, po->beta);
  int64_t ynumel = fc_value_numel(y);
  int opnd = first;
  for (int i = 0; i < po->n; i++) {
    if (!fc_post_is_binary(po->kinds[i])) continue;
    const fc_value *z = fc_node_in(en->g, en->node, opnd++);
    if (!z || z->dtype != FC_DT_FLOAT) return bad(en, err, "fused operand missing");
    int64_t zn = fc_value_numel(z);
    if (zn != ynumel && zn != y->dims[axis]) return bad(en, err, "fused operand has an unsupported shape");
    po->operand_numel[i] = zn;
  }
  if (opnd != en->node->n_inputs && !(opnd == first && en->node->n_inputs < first))
    return bad(en, err, "fused operands do not match the post-ops");
  return FC_OK;
}

float fc_post_apply1(int kind, float a, float b, float x, float z) {
  switch (kind) {
    case FC_POST_RELU: return x > 0 ? x : 0;
    case FC_POST_CLIP: return x < a ? a : (x > b ? b : x);
    case FC_POST_LINEAR: return a * x + b;
    case FC_POST_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case FC_POST_SWISH: return x / (1.0f + expf(-x));
    case FC_POST_HARDSWISH: {
      float t = x + 3;
      t = t < 0 ? 0 : (t > 6 ? 6 : t);
      return x * t / 6;
    }
    case FC_POST_GELU_ERF: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case FC_POST_TANH: return tanhf(x);
    case FC_POST_LEAKY_RELU: return x >= 0 ? x : a * x;
    case FC_POST_ADD: return x + z;
    case FC_POST_MUL: return x * z;
    case FC_POST_SUB: return x - z;
    default: return x;
  }
}

void fc_ref_post_ops(const fc_post_ops *po, float *y, const float *const *operands, int threads) {
  if (!po->n) return;
  int64_t numel = 1, inner = 1; /* inner: elements after the vector axis in y's storage order */
  for (int d = 0; d < po->rank; d++) numel *= po->dims[d];
  int64_t axis_len = po->dims[po->axis];
  if (po->layout == FC_LAYOUT_NHWC) {
    inner = 1; /* channels are innermost */
  } else {
    for (int d = po->axis + 1; d < po->rank; d++) inner *= po->dims[d];
  }
#pragma omp parallel for num_threads(threads) if (numel > 65536 && threads > 1) schedule(static)
  for (int64_t i = 0; i < numel; i++) {
    float x = y[i];
    int opnd = 0;
    for (int j = 0; j < po->n; j++) {
      float z = 0;
      if (fc_post_is_binary(po->kinds[j])) {
        const float *zp = operands[opnd++];
        z = po->operand_numel[j] == numel ? zp[i] : zp[(i / inner) % axis_len];
      }
      x = fc_post_apply1(po->kinds[j], po->alpha[j], po->beta[j], x, z);
    }
    y[i] = x;
  }
}
