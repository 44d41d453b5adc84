/* The sparse kernels as runtime kernel rows (Conv, Gemm and MatMul with a constant weight, plain
 * layout) and the per-layer choice between them and oneDNN dense, by the cost model in
 * sparse_cost.c. The planner asks fc_sparse_kernel_for() before taking the dense row. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kutil.h"
#include "kernels/post_ops.h"
#include "kernels/ref/ref.h"
#include "kernels/sparse/depthwise.h"
#include "kernels/sparse/sparse_internal.h"
#include "passes/passes.h"
#include "util/mem.h"

typedef struct sparse_state {
  bool is_dw;           /* depthwise Conv */
  fc_dw dw;
  fc_sparse_conv *conv; /* Conv */
  fc_sparse_gemm *gemm; /* Gemm, MatMul, and a 1×1 Conv on a single pixel */
  int64_t batch, x_img, y_img, res_img; /* Conv: images, and floats per input, output and residual image */
  /* post-ops the microkernel applies itself: an Add of a full-shape operand (node input res_input)
   * then a clamp; any other chain runs afterwards through fc_post_ops_apply */
  int res_input;
  fc_post_ops po;
  bool generic_post;
  int opnd_input[FC_REF_MAX_POST];
  char desc[96];
} sparse_state;

static fc_status decline(const fc_exec_node *en, fc_err *err, const char *why) {
  return fc_fail(err, FC_ERR_UNSUPPORTED, "node '%s' (%s): sparse kernel: %s", en->node->name, en->node->op_type, why);
}

static int in_layout(const fc_exec_node *en, int i) { return en->in_layout && i >= 0 ? en->in_layout[i] : FC_LAYOUT_PLAIN; }
static int out_layout(const fc_exec_node *en) { return en->out_layout ? en->out_layout[0] : FC_LAYOUT_PLAIN; }
/* Floats between channel planes of a value of hw pixels per plane stored in `layout`. */
static int64_t plane_stride(int layout, int64_t hw) { return layout == FC_LAYOUT_PADDED ? fc_padded_plane(hw) : hw; }

/* The conv's channel strides from the step's layouts (plain or padded planes), and the image strides. */
static fc_status apply_strides(const fc_exec_node *en, sparse_state *s, fc_err *err) {
  const fc_value *x = fc_en_in(en, 0), *y = fc_en_out(en, 0);
  const int64_t ihw = x->dims[2] * x->dims[3], ohw = y->dims[2] * y->dims[3];
  const int64_t in_cs = plane_stride(in_layout(en, 0), ihw), out_cs = plane_stride(out_layout(en), ohw),
                res_cs = plane_stride(in_layout(en, s->res_input), ohw);
  fc_status st = fc_sparse_conv_set_strides(s->conv, in_cs, out_cs, res_cs, en->node->name, err);
  if (st) return st;
  s->x_img = x->dims[1] * in_cs;
  s->y_img = y->dims[1] * out_cs;
  s->res_img = y->dims[1] * res_cs;
  return FC_OK;
}

static int64_t post_numel(const fc_post_ops *po) {
  int64_t n = 1;
  for (int d = 0; d < po->rank; d++) n *= po->dims[d];
  return n;
}

static void sparse_release(fc_exec_node *en) {
  sparse_state *s = en->state;
  if (!s) return;
  fc_sparse_conv_free(s->conv);
  fc_sparse_gemm_free(s->gemm);
  if (s->is_dw) fc_dw_free(&s->dw);
  free(s);
  en->state = NULL;
}

/* Splits the post-op chain into what the microkernel fuses (allow_res: a leading full-shape Add;
 * then at most one Relu/Clip, or with act non-NULL one Swish/HardSwish) or, failing that, a generic
 * pass after the kernel. */
static void plan_post_ops(sparse_state *s, int first, bool allow_res, float *lo, float *hi, int *act) {
  const fc_post_ops *po = &s->po;
  *lo = -INFINITY, *hi = INFINITY;
  if (act) *act = FC_SPARSE_ACT_NONE;
  s->res_input = -1;
  int i = 0, opnd = first;
  if (allow_res && i < po->n && po->kinds[i] == FC_POST_ADD && po->operand_numel[i] == post_numel(po)) {
    s->res_input = opnd++;
    i++;
  }
  if (i < po->n && po->kinds[i] == FC_POST_RELU) *lo = 0.0f, i++;
  else if (i < po->n && po->kinds[i] == FC_POST_CLIP) *lo = po->alpha[i], *hi = po->beta[i], i++;
  else if (act && i < po->n && po->kinds[i] == FC_POST_SWISH) *act = FC_SPARSE_ACT_SWISH, i++;
  else if (act && i < po->n && po->kinds[i] == FC_POST_HARDSWISH) *act = FC_SPARSE_ACT_HARDSWISH, i++;
  if (i == po->n) return;
  /* anything else: the kernel does bias only, every post-op runs after it */
  s->generic_post = true;
  s->res_input = -1;
  *lo = -INFINITY, *hi = INFINITY;
  if (act) *act = FC_SPARSE_ACT_NONE;
  opnd = first;
  for (int j = 0; j < po->n; j++) s->opnd_input[j] = fc_post_is_binary(po->kinds[j]) ? opnd++ : -1;
}

static void describe_common(sparse_state *s, const fc_sparse_info *in) {
  static const char *const layouts[] = {"", " shift", " tap", " phase", "", " aphase"};
  snprintf(s->desc, sizeof s->desc, "sparse:%s R%d%s%s", fc_isa_name((fc_isa)in->isa), in->block,
           layouts[in->layout >= 0 && in->layout <= 5 ? in->layout : 0], s->generic_post ? " +post" : "");
}

/* The step's bookkeeping once s->conv or s->gemm is created: scratch, packed inputs (the weight,
 * and the bias when there is one), the profile label. */
static fc_status finish_step(fc_exec_node *en, sparse_state *s, bool has_bias) {
  fc_sparse_info info;
  if (s->conv) {
    en->scratch_bytes = fc_sparse_conv_scratch_bytes(s->conv);
    fc_sparse_conv_info(s->conv, &info);
  } else {
    en->scratch_bytes = fc_sparse_gemm_scratch_bytes(s->gemm);
    fc_sparse_gemm_info(s->gemm, &info);
  }
  en->packed_inputs = 1u << 1 | (has_bias ? 1u << 2 : 0u);
  describe_common(s, &info);
  return FC_OK;
}

static fc_status conv_prepare(fc_exec_node *en, fc_err *err) {
  fc_conv_params cp;
  fc_status st = fc_conv_params_read(en, &cp, err);
  if (st) return st;
  bool dw = cp.group > 1 && cp.group == cp.ic && cp.ic == cp.oc;
  if (cp.nsp != 2 || cp.transpose || (cp.group != 1 && !dw))
    return decline(en, err, "only 2-D convolutions with groups = 1 or depthwise");
  const fc_value *w = fc_en_in(en, 1), *b = fc_en_in(en, 2);
  if (!w || !w->data || w->dtype != FC_DT_FLOAT) return decline(en, err, "the weights are not a float constant");
  if (b && (!b->data || b->dtype != FC_DT_FLOAT || fc_value_numel(b) != cp.oc))
    return decline(en, err, "the bias is not a float constant");
  sparse_state *s = fc_calloc(1, sizeof *s);
  if (!s) return fc_fail(err, FC_ERR_NOMEM, "node '%s': out of memory", en->node->name);
  en->state = s;
  st = fc_post_ops_read(en, 3, 1, &s->po, err);
  if (st) return st;
  bool one_pixel = cp.k[0] == 1 && cp.k[1] == 1 && cp.in[0] == 1 && cp.in[1] == 1 && cp.out[0] == 1 && cp.out[1] == 1;
  if (dw) {
    fc_dw *k = &s->dw;
    s->is_dw = true;
    k->n = cp.n, k->c = cp.ic, k->in_h = cp.in[0], k->in_w = cp.in[1], k->out_h = cp.out[0], k->out_w = cp.out[1];
    k->kh = cp.k[0], k->kw = cp.k[1], k->sh = cp.stride[0], k->sw = cp.stride[1], k->dh = cp.dil[0], k->dw = cp.dil[1];
    k->pt = cp.pad_b[0], k->pl = cp.pad_b[1];
    k->threads = en->threads > 0 ? en->threads : 1;
    plan_post_ops(s, 3, true, &k->lo, &k->hi, NULL);
    st = fc_dw_create(k, w->data, b ? b->data : NULL, en->node->name, err);
    if (st) return st;
    en->scratch_bytes = k->per_thread * (size_t)k->threads;
    en->packed_inputs = 1u << 1 | (b ? 1u << 2 : 0u);
    snprintf(s->desc, sizeof s->desc, "depthwise nchw%s", s->generic_post ? " +post" : "");
    return FC_OK;
  }
  if (one_pixel) {
    /* a 1×1 conv on a 1×1 map (a squeeze-and-excitation block's FCs) is a matrix × vector product:
     * the pixel-vectorised conv kernel would use one lane in 16 (0.10 ms where oneDNN took 0.022 ms
     * in MobileNetV3); the Gemm path runs it as CSR rows with gathers */
    fc_sparse_gemm_desc gd;
    fc_sparse_gemm_desc_init(&gd);
    gd.m = cp.n, gd.k = cp.ic, gd.n = cp.oc, gd.trans_b = 1;
    gd.threads = en->threads > 0 ? en->threads : 1;
    plan_post_ops(s, 3, false, &gd.act_lo, &gd.act_hi, NULL);
    st = fc_sparse_gemm_create(&gd, w->data, b ? b->data : NULL, en->node->name, &s->gemm, err);
    return st ? st : finish_step(en, s, b != NULL);
  }
  fc_sparse_conv_desc d;
  fc_sparse_conv_desc_init(&d);
  d.cin = cp.ic, d.cout = cp.oc, d.in_h = cp.in[0], d.in_w = cp.in[1], d.k_h = cp.k[0], d.k_w = cp.k[1];
  d.stride_h = cp.stride[0], d.stride_w = cp.stride[1], d.dil_h = cp.dil[0], d.dil_w = cp.dil[1];
  d.pad_t = cp.pad_b[0], d.pad_l = cp.pad_b[1], d.pad_b = cp.pad_e[0], d.pad_r = cp.pad_e[1];
  d.threads = en->threads > 0 ? en->threads : 1;
  /* Swish and HardSwish in the AVX-512 epilogue, on the values in registers: as a separate pass over
   * the output they were 17-19 % of EfficientNet-B0's time at 90 % */
  plan_post_ops(s, 3, true, &d.act_lo, &d.act_hi, fc_cpu_isa() == FC_ISA_AVX512 ? &d.act : NULL);
  st = fc_sparse_conv_create(&d, w->data, b ? b->data : NULL, en->node->name, &s->conv, err);
  if (st) return st;
  if (s->conv->out_h != cp.out[0] || s->conv->out_w != cp.out[1])
    return decline(en, err, "output size disagrees with the inferred shape");
  s->batch = cp.n;
  st = apply_strides(en, s, err);
  return st ? st : finish_step(en, s, b != NULL);
}

/* Y[m, n] for Gemm (C a bias vector or scalar) and MatMul (a constant 2-D right operand). */
static fc_status gemm_like_prepare(fc_exec_node *en, fc_err *err, bool matmul) {
  fc_sparse_gemm_desc d;
  fc_sparse_gemm_desc_init(&d);
  const fc_value *b = fc_en_in(en, 1), *c = NULL;
  int first;
  if (matmul) {
    fc_matmul_params mp;
    fc_status st = fc_matmul_params_read(en, &mp, err);
    if (st) return st;
    for (int i = 0; i + 2 < mp.rank; i++)
      if (mp.b_dims[i] != 1) return decline(en, err, "the right operand has batch dimensions");
    d.m = mp.batch * mp.m, d.k = mp.k, d.n = mp.n;
    first = 2;
  } else {
    fc_gemm_params gp;
    fc_status st = fc_gemm_params_read(en, &gp, err);
    if (st) return st;
    if (gp.trans_a) return decline(en, err, "transA is not supported");
    c = fc_en_in(en, 2);
    if (c && (!c->data || (fc_value_numel(c) != gp.n && fc_value_numel(c) != 1) || (gp.c_rank == 2 && gp.c_dims[0] != 1)))
      return decline(en, err, "C is not a constant bias vector");
    d.m = gp.m, d.k = gp.k, d.n = gp.n, d.trans_b = gp.trans_b, d.alpha = gp.alpha, d.beta = gp.beta;
    first = 3;
  }
  if (!b || !b->data || b->dtype != FC_DT_FLOAT) return decline(en, err, "the weights are not a float constant");
  sparse_state *s = fc_calloc(1, sizeof *s);
  float *bias = NULL;
  if (s && c) {
    bias = fc_malloc((size_t)d.n * sizeof(float));
    if (bias)
      for (int64_t j = 0; j < d.n; j++) bias[j] = ((const float *)c->data)[fc_value_numel(c) == 1 ? 0 : j];
  }
  if (!s || (c && !bias)) {
    free(s), free(bias);
    return fc_fail(err, FC_ERR_NOMEM, "node '%s': out of memory", en->node->name);
  }
  en->state = s;
  fc_status st = fc_post_ops_read(en, first, matmul ? fc_en_out(en, 0)->rank - 1 : 1, &s->po, err);
  if (!st) {
    plan_post_ops(s, first, false, &d.act_lo, &d.act_hi, NULL);
    d.threads = en->threads > 0 ? en->threads : 1;
    st = fc_sparse_gemm_create(&d, b->data, bias, en->node->name, &s->gemm, err);
  }
  free(bias);
  return st ? st : finish_step(en, s, c != NULL);
}

static fc_status gemm_prepare(fc_exec_node *en, fc_err *err) { return gemm_like_prepare(en, err, false); }
static fc_status matmul_prepare(fc_exec_node *en, fc_err *err) { return gemm_like_prepare(en, err, true); }

static void run_post(const fc_exec_node *en, const sparse_state *s, const fc_exec_io *io) {
  if (!s->generic_post) return;
  const float *ops[FC_REF_MAX_POST];
  int k = 0;
  for (int j = 0; j < s->po.n; j++)
    if (s->opnd_input[j] >= 0) ops[k++] = io->in[s->opnd_input[j]];
  fc_post_ops_apply(&s->po, io->out[0], ops, en->threads);
}

static void gemm_run(const fc_exec_node *en, const fc_exec_io *io) {
  const sparse_state *s = en->state;
  fc_sparse_gemm_run(s->gemm, io->in[0], io->out[0], io->scratch);
  run_post(en, s, io);
}

static void conv_run(const fc_exec_node *en, const fc_exec_io *io) {
  const sparse_state *s = en->state;
  const float *x = io->in[0], *res = s->res_input >= 0 ? io->in[s->res_input] : NULL;
  float *y = io->out[0];
  if (s->is_dw) {
    fc_dw_run(&s->dw, x, res, y, io->scratch);
    run_post(en, s, io);
    return;
  }
  if (s->gemm) { /* 1×1 on one pixel: [n, cin] × W' */
    gemm_run(en, io);
    return;
  }
  for (int64_t n = 0; n < s->batch; n++)
    fc_sparse_conv_run(s->conv, x + n * s->x_img, res ? res + n * s->res_img : NULL, y + n * s->y_img, io->scratch);
  run_post(en, s, io);
}

static const char *sparse_describe(const fc_exec_node *en) {
  const sparse_state *s = en->state;
  return s ? s->desc : "sparse";
}

const fc_kernel fc_kernels_sparse[] = {
    {"Conv", conv_prepare, conv_run, sparse_release, 0, sparse_describe},
    {"Gemm", gemm_prepare, gemm_run, sparse_release, 0, sparse_describe},
    {"MatMul", matmul_prepare, gemm_run, sparse_release, 0, sparse_describe},
    {NULL, NULL, NULL, NULL, 0, NULL},
};

fc_status fc_sparse_relayout(fc_exec_node *en, fc_err *err) {
  sparse_state *s = en->state;
  fc_status st = apply_strides(en, s, err);
  if (st) return st;
  fc_sparse_info info;
  fc_sparse_conv_info(s->conv, &info); /* the input may now be read in place: relabel */
  describe_common(s, &info);
  return FC_OK;
}

bool fc_sparse_takes_padded(const fc_kernel *k, const fc_exec_node *en, int input) {
  if (k != &fc_kernels_sparse[0] || !en->state) return false;
  const sparse_state *s = en->state;
  if (!s->conv || s->is_dw || s->generic_post) return false;
  return input < 0 || input == 0 || input == s->res_input;
}

/* ---- the per-layer choice ------------------------------------------------------------------ */

/* Fraction of nonzero weights above which no measured shape ran faster sparse: skip the trial
 * packing (a plan-time shortcut only; below it the cost model decides). */
#define DENSITY_SHORTCUT 0.75

/* A depthwise Conv (group = channels) with constant weights. */
static bool is_depthwise(const fc_graph *g, const fc_node *n) {
  if (strcmp(n->op_type, "Conv")) return false;
  const fc_value *x = fc_node_in(g, n, 0), *w = fc_node_in(g, n, 1);
  int64_t group = fc_attr_int(n, "group", 1);
  return x && w && w->data && x->rank == 4 && w->rank == 4 && group > 1 && x->dims[1] == group && w->dims[0] == group &&
         w->dims[1] == 1;
}

const fc_kernel *fc_sparse_kernel_for(const fc_graph *g, const fc_node *n, int threads, int in_layout,
                                      fc_exec_node *prepared) {
  memset(prepared, 0, sizeof *prepared);
  const char *mode = getenv("FLOPCUT_SPARSE"); /* "0": never, "1": whenever supported, else by cost */
  if (mode && !strcmp(mode, "0")) return NULL;
  bool always = mode && !strcmp(mode, "1");
  const fc_kernel *k = NULL;
  for (const fc_kernel *r = fc_kernels_sparse; r->op_type && !k; r++)
    if (!strcmp(r->op_type, n->op_type)) k = r;
  const fc_value *w = k ? fc_node_in(g, n, 1) : NULL;
  if (!w || !w->data || w->dtype != FC_DT_FLOAT) return NULL;
  /* depthwise: in NCHW whenever its input already is (a sparse conv made it), to avoid two layout
   * conversions around oneDNN's channels-last kernel; otherwise oneDNN */
  bool dw = is_depthwise(g, n);
  if (dw && in_layout != FC_LAYOUT_PLAIN) return NULL;
  /* one input channel (a grayscale image's first conv): oneDNN offers only its reference
   * implementation for it (the planner then runs ours, 0.4 GFLOP/s: 1.16 ms of the Fashion-MNIST
   * model's 1.35), so the direct kernel takes it at any density (a few microseconds) */
  bool single_channel = !strcmp(n->op_type, "Conv") && w->rank == 4 && w->dims[1] == 1 && fc_attr_int(n, "group", 1) == 1;
  int64_t numel = fc_value_numel(w), nnz = 0;
  const float *wd = w->data;
  for (int64_t i = 0; i < numel; i++) nnz += wd[i] != 0.0f;
  if (!always && !dw && !single_channel && (double)nnz > DENSITY_SHORTCUT * (double)numel) return NULL;
  /* a trial prepare checks support and gives the packed geometry the cost model reads; when
   * sparse wins, the planner keeps it as the step's prepared state */
  fc_exec_node en = {.g = g, .node = n, .threads = threads > 0 ? threads : 1};
  fc_err err = {0};
  bool sparse = false;
  if (k->prepare(&en, &err) == FC_OK) {
    const sparse_state *s = en.state;
    if (always || s->is_dw || single_channel) {
      sparse = true;
    } else if (s->conv) {
      sparse = fc_sparse_conv_faster(s->conv, en.threads, in_layout == FC_LAYOUT_NHWC);
    } else {
      sparse = fc_sparse_gemm_faster(s->gemm, en.threads);
    }
  }
  if (!sparse) {
    k->release(&en);
    return NULL;
  }
  *prepared = en;
  return k;
}
