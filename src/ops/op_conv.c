/* Convolution and pooling: Conv, ConvTranspose, MaxPool, AveragePool, GlobalAverage/MaxPool.
 * Shared window arithmetic (kernel, strides, pads, dilations, auto_pad, ceil_mode). */
#include <string.h>
#include "ops/infer_util.h"

typedef struct window {
  int k;                       /* spatial rank */
  int64_t kernel[FC_MAX_RANK], stride[FC_MAX_RANK], dil[FC_MAX_RANK];
  int64_t pad_begin[FC_MAX_RANK], pad_end[FC_MAX_RANK];
} window;

static fc_status ints_attr(const fc_node *n, const char *name, int k, int64_t dflt, int64_t *out, fc_err *err) {
  const fc_attr *a = fc_node_attr(n, name);
  for (int i = 0; i < k; i++) out[i] = dflt;
  if (!a || a->type != FC_ATTR_INTS) return FC_OK;
  if ((int)a->n_ints != k)
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): attribute '%s' has %zu values, expected %d", n->name,
                   n->op_type, name, a->n_ints, k);
  memcpy(out, a->ints, (size_t)k * sizeof(int64_t));
  for (int i = 0; i < k; i++)
    if (out[i] < (dflt == 0 ? 0 : 1) || out[i] > (1 << 20))
      return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): attribute '%s' value %lld is out of range", n->name,
                     n->op_type, name, (long long)out[i]);
  return FC_OK;
}

/* Reads the window attributes; the kernel comes from kernel_shape or, for Conv, the weight's dims. */
static fc_status read_window(const fc_node *n, int k, const int64_t *weight_kernel, window *w, fc_err *err) {
  w->k = k;
  fc_status st = ints_attr(n, "kernel_shape", k, 1, w->kernel, err);
  if (!st && weight_kernel) {
    const fc_attr *a = fc_node_attr(n, "kernel_shape");
    for (int i = 0; i < k; i++) {
      if (a && w->kernel[i] != weight_kernel[i])
        return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): kernel_shape disagrees with the weight", n->name, n->op_type);
      w->kernel[i] = weight_kernel[i];
    }
  } else if (!st && !fc_node_attr(n, "kernel_shape")) {
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): kernel_shape is required", n->name, n->op_type);
  }
  if (!st) st = ints_attr(n, "strides", k, 1, w->stride, err);
  if (!st) st = ints_attr(n, "dilations", k, 1, w->dil, err);
  if (st) return st;
  int64_t pads[2 * FC_MAX_RANK];
  const fc_attr *p = fc_node_attr(n, "pads");
  for (int i = 0; i < 2 * k; i++) pads[i] = 0;
  if (p && p->type == FC_ATTR_INTS) {
    if ((int)p->n_ints != 2 * k)
      return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): 'pads' has %zu values, expected %d", n->name, n->op_type,
                     p->n_ints, 2 * k);
    for (int i = 0; i < 2 * k; i++) {
      if (p->ints[i] < 0 || p->ints[i] > (1 << 20))
        return fc_fail(err, FC_ERR_INVALID, "node '%s' (%s): pad %lld is out of range", n->name, n->op_type,
                       (long long)p->ints[i]);
      pads[i] = p->ints[i];
    }
  }
  for (int i = 0; i < k; i++) {
    w->pad_begin[i] = pads[i];
    w->pad_end[i] = pads[k + i];
  }
  return FC_OK;
}

/* Output spatial sizes of a forward window op; resolves SAME padding into pad_begin/pad_end. */
static fc_status window_out(const fc_node *n, window *w, const int64_t *in, bool ceil_mode, int64_t *out, fc_err *err) {
  const char *auto_pad = fc_attr_str(n, "auto_pad", "NOTSET");
  for (int i = 0; i < w->k; i++) {
    int64_t eff = (w->kernel[i] - 1) * w->dil[i] + 1;
    if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) {
      out[i] = (in[i] + w->stride[i] - 1) / w->stride[i];
      int64_t total = (out[i] - 1) * w->stride[i] + eff - in[i];
      if (total < 0) total = 0;
      bool upper = !strcmp(auto_pad, "SAME_UPPER");
      w->pad_begin[i] = upper ? total / 2 : total - total / 2;
      w->pad_end[i] = total - w->pad_begin[i];
      continue;
    }
    if (!strcmp(auto_pad, "VALID")) w->pad_begin[i] = w->pad_end[i] = 0;
    int64_t span = in[i] + w->pad_begin[i] + w->pad_end[i] - eff;
    if (span < 0)
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): window %lld is larger than the padded input %lld", n->name,
                     n->op_type, (long long)eff, (long long)(in[i] + w->pad_begin[i] + w->pad_end[i]));
    out[i] = (ceil_mode ? (span + w->stride[i] - 1) / w->stride[i] : span / w->stride[i]) + 1;
    /* ceil_mode: the last window must start inside the input or left padding */
    if (ceil_mode && (out[i] - 1) * w->stride[i] >= in[i] + w->pad_begin[i]) out[i]--;
  }
  return FC_OK;
}

static fc_status infer_conv(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 2, 3, err);
  fc_value *x, *wt;
  if (st || (st = fc_need_input(g, n, 0, &x, err)) || (st = fc_need_input(g, n, 1, &wt, err))) return st;
  if (x->rank < 3 || wt->rank != x->rank)
    return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Conv): input rank %d and weight rank %d must match and be ≥ 3",
                   n->name, x->rank, wt->rank);
  if (x->dtype != wt->dtype)
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (Conv): input is %s but weight '%s' is %s", n->name,
                   fc_dtype_name(x->dtype), wt->name, fc_dtype_name(wt->dtype));
  int64_t group = fc_attr_int(n, "group", 1);
  /* group ≤ channels first, so the product below stays in range */
  if (group < 1 || group > x->dims[1] || x->dims[1] % group || wt->dims[0] % group || wt->dims[1] * group != x->dims[1])
    return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Conv): %lld input channels do not match weight %lldx%lld with "
                   "group %lld", n->name, (long long)x->dims[1], (long long)wt->dims[0], (long long)wt->dims[1],
                   (long long)group);
  for (int d = 0; d < wt->rank; d++)
    if (wt->dims[d] < 1) return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Conv): weight has an empty dimension", n->name);
  fc_value *b = fc_node_in(g, n, 2);
  if (b && (b->rank != 1 || b->dims[0] != wt->dims[0]))
    return fc_fail(err, FC_ERR_SHAPE, "node '%s' (Conv): bias must have %lld elements", n->name, (long long)wt->dims[0]);
  window w;
  int k = x->rank - 2;
  if ((st = read_window(n, k, wt->dims + 2, &w, err))) return st;
  int64_t dims[FC_MAX_RANK] = {x->dims[0], wt->dims[0]};
  if ((st = window_out(n, &w, x->dims + 2, false, dims + 2, err))) return st;
  return fc_set_output(g, n, 0, x->dtype, x->rank, dims, err);
}

static fc_status infer_conv_transpose(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 2, 3, err);
  fc_value *x, *wt;
  if (st || (st = fc_need_input(g, n, 0, &x, err)) || (st = fc_need_input(g, n, 1, &wt, err))) return st;
  if (x->rank < 3 || wt->rank != x->rank)
    return fc_fail(err, FC_ERR_SHAPE, "node '%s' (ConvTranspose): input and weight ranks must match and be ≥ 3", n->name);
  if (x->dtype != wt->dtype)
    return fc_fail(err, FC_ERR_INVALID, "node '%s' (ConvTranspose): input is %s but weight '%s' is %s", n->name,
                   fc_dtype_name(x->dtype), wt->name, fc_dtype_name(wt->dtype));
  int64_t group = fc_attr_int(n, "group", 1);
  if (group < 1 || group > x->dims[1] || wt->dims[0] != x->dims[1] || x->dims[1] % group)
    return fc_fail(err, FC_ERR_SHAPE, "node '%s' (ConvTranspose): %lld input channels do not match weight with %lld",
                   n->name, (long long)x->dims[1], (long long)wt->dims[0]);
  for (int d = 0; d < wt->rank; d++)
    if (wt->dims[d] < 1)
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (ConvTranspose): weight has an empty dimension", n->name);
  int k = x->rank - 2;
  window w;
  if ((st = read_window(n, k, wt->dims + 2, &w, err))) return st;
  int64_t outpad[FC_MAX_RANK], oshape[FC_MAX_RANK];
  if ((st = ints_attr(n, "output_padding", k, 0, outpad, err))) return st;
  int64_t dims[FC_MAX_RANK] = {x->dims[0], wt->dims[1] * group};
  const fc_attr *os = fc_node_attr(n, "output_shape");
  const char *auto_pad = fc_attr_str(n, "auto_pad", "NOTSET");
  for (int i = 0; i < k; i++) {
    int64_t eff = (w.kernel[i] - 1) * w.dil[i] + 1;
    int64_t full = w.stride[i] * (x->dims[2 + i] - 1) + outpad[i] + eff;
    if (os && os->type == FC_ATTR_INTS && (int)os->n_ints >= k) {
      oshape[i] = os->ints[os->n_ints - (size_t)k + (size_t)i];
    } else if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) {
      oshape[i] = x->dims[2 + i] * w.stride[i];
    } else {
      oshape[i] = full - w.pad_begin[i] - w.pad_end[i];
    }
    if (oshape[i] <= 0 || oshape[i] > full)
      return fc_fail(err, FC_ERR_SHAPE, "node '%s' (ConvTranspose): output size %lld is impossible", n->name,
                     (long long)oshape[i]);
    dims[2 + i] = oshape[i];
  }
  return fc_set_output(g, n, 0, x->dtype, x->rank, dims, err);
}

static fc_status infer_pool(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 1, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  if (x->rank < 3) return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): input must have rank ≥ 3", n->name, n->op_type);
  window w;
  if ((st = read_window(n, x->rank - 2, NULL, &w, err))) return st;
  int64_t dims[FC_MAX_RANK] = {x->dims[0], x->dims[1]};
  if ((st = window_out(n, &w, x->dims + 2, fc_attr_int(n, "ceil_mode", 0) != 0, dims + 2, err))) return st;
  if ((st = fc_set_output(g, n, 0, x->dtype, x->rank, dims, err))) return st;
  if (n->n_outputs > 1 && n->outputs[1] >= 0) /* MaxPool indices */
    return fc_set_output(g, n, 1, FC_DT_INT64, x->rank, dims, err);
  return FC_OK;
}

static fc_status infer_global_pool(fc_graph *g, fc_node *n, fc_err *err) {
  fc_status st = fc_need_arity(n, 1, 1, err);
  fc_value *x;
  if (st || (st = fc_need_input(g, n, 0, &x, err))) return st;
  if (x->rank < 3) return fc_fail(err, FC_ERR_SHAPE, "node '%s' (%s): input must have rank ≥ 3", n->name, n->op_type);
  int64_t dims[FC_MAX_RANK];
  for (int d = 0; d < x->rank; d++) dims[d] = d < 2 ? x->dims[d] : 1;
  return fc_set_output(g, n, 0, x->dtype, x->rank, dims, err);
}

/* Costs saturate (fc_sat_*): a hostile file's absurd sizes give INT64_MAX, never an overflow. */
static int64_t kernel_elems(const fc_value *wt) {
  int64_t k = 1;
  for (int d = 2; d < wt->rank; d++) k = fc_sat_mul(k, wt->dims[d]);
  return k;
}

static void cost_conv(const fc_graph *g, const fc_node *n, fc_node_cost *c) {
  const fc_value *wt = fc_node_in(g, n, 1), *y = fc_node_out(g, n, 0);
  int64_t out = fc_value_numel(y);
  c->macs = fc_sat_mul(fc_sat_mul(out, wt->dims[1]), kernel_elems(wt));
  c->flops = fc_sat_add(fc_sat_mul(2, c->macs), fc_node_in(g, n, 2) ? out : 0);
  c->activations = out;
}

static void cost_conv_transpose(const fc_graph *g, const fc_node *n, fc_node_cost *c) {
  const fc_value *x = fc_node_in(g, n, 0), *wt = fc_node_in(g, n, 1), *y = fc_node_out(g, n, 0);
  int64_t out = fc_value_numel(y);
  c->macs = fc_sat_mul(fc_sat_mul(fc_value_numel(x), wt->dims[1]), kernel_elems(wt));
  c->flops = fc_sat_add(fc_sat_mul(2, c->macs), fc_node_in(g, n, 2) ? out : 0);
  c->activations = out;
}

static void cost_pool(const fc_graph *g, const fc_node *n, fc_node_cost *c) {
  const fc_attr *k = fc_node_attr(n, "kernel_shape");
  int64_t ke = 1;
  for (size_t i = 0; k && i < k->n_ints; i++) ke = fc_sat_mul(ke, k->ints[i]);
  c->flops = fc_sat_mul(fc_value_numel(fc_node_out(g, n, 0)), ke);
}

static void cost_global_pool(const fc_graph *g, const fc_node *n, fc_node_cost *c) {
  int64_t in = fc_value_numel(fc_node_in(g, n, 0)), out = fc_value_numel(fc_node_out(g, n, 0));
  c->flops = fc_sat_add(in, strcmp(n->op_type, "GlobalAveragePool") == 0 ? out : 0);
}

const fc_op_def fc_ops_conv[] = {
    {"Conv", infer_conv, cost_conv},
    {"ConvTranspose", infer_conv_transpose, cost_conv_transpose},
    {"MaxPool", infer_pool, cost_pool},
    {"AveragePool", infer_pool, cost_pool},
    {"GlobalAveragePool", infer_global_pool, cost_global_pool},
    {"GlobalMaxPool", infer_global_pool, cost_global_pool},
    {NULL, NULL, NULL},
};
