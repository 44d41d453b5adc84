/* The one file that talks to oneDNN: Conv, ConvTranspose, Gemm and MatMul kernels. Primitives are
 * created and constant weights reordered into oneDNN's packed layout at plan time; runs only set
 * buffer handles and execute. Shapes oneDNN refuses fall back to the scalar reference kernels.
 *
 * Layout, chosen by measurement (1 thread, this CPU): oneDNN 2.6 runs plain-NCHW convolutions through
 * im2col + GEMM at 17-130 GFLOP/s (depthwise: 1-2 GFLOP/s), while channels-last (NHWC) reaches its
 * brgconv kernels at 140-210 GFLOP/s (depthwise 70-110) — the same as its blocked nChw16c layout,
 * and oneDNN's own choice when asked for "any". NHWC is a plain layout (no channel padding), so
 * elementwise kernels work on it unchanged; the planner keeps activations NHWC between convolutions. */
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/post_ops.h"
#include "kernels/ref/ref.h"
#include "passes/passes.h"
#include "util/mem.h"

static dnnl_engine_t g_engine;
static dnnl_status_t g_engine_status = dnnl_runtime_error;
static pthread_once_t g_engine_once = PTHREAD_ONCE_INIT;

/* One CPU engine per process: like CPU detection, created once and never changed. */
static void engine_init(void) { g_engine_status = dnnl_engine_create(&g_engine, dnnl_cpu, 0); }
/* NULL also when FC_FORCE_REF is set: the tests run the reference kernels through the runtime. */
static dnnl_engine_t engine(void) {
  pthread_once(&g_engine_once, engine_init);
  if (getenv("FC_FORCE_REF")) return NULL;
  return g_engine_status == dnnl_success ? g_engine : NULL;
}

typedef enum dense_kind { K_CONV, K_GEMM, K_MATMUL } dense_kind;

typedef struct dense_state {
  dense_kind kind;
  bool use_ref;
  char impl[64];
  fc_conv_params cp;
  fc_gemm_params gp;
  fc_matmul_params mp;
  /* the post-op chain (fused ops, plus Gemm's C when it is not a bias); operands come from node
   * input opnd_input[i] or, for constants the kernel prepared itself, from opnd_own[i] */
  fc_post_ops po;
  int opnd_input[FC_REF_MAX_POST];
  float *opnd_own[FC_REF_MAX_POST];
  bool manual_post; /* oneDNN refused the post-ops: applied by fc_post_ops_apply after the primitive */
  float *own_bias;
  int bias_input;   /* node input of a run-time bias, or -1 */
  /* oneDNN objects */
  dnnl_stream_t stream;
  dnnl_primitive_t prim;
  dnnl_memory_t m_src, m_wei, m_bias, m_dst, m_scratch, m_wei_user;
  dnnl_primitive_t wei_reorder; /* weights that are not constant are reordered on every run */
  dnnl_memory_t m_bin[FC_REF_MAX_POST];
  /* Winograd convolutions run on oneDNN's blocked layout: the activations are reordered from and
   * to NHWC around the primitive, through the scratch (src at src_off, dst at dst_off). */
  dnnl_primitive_t src_reorder, dst_reorder;
  dnnl_memory_t m_src_user, m_dst_user;
  size_t src_off, dst_off;
} dense_state;

static fc_status fail(const fc_exec_node *en, fc_err *err, fc_status st, const char *why) {
  return fc_fail(err, st, "node '%s' (%s): %s", en->node->name, en->node->op_type, why);
}

static void dense_release(fc_exec_node *en) {
  dense_state *s = en->state;
  if (!s) return;
  if (s->prim) dnnl_primitive_destroy(s->prim);
  if (s->wei_reorder) dnnl_primitive_destroy(s->wei_reorder);
  if (s->src_reorder) dnnl_primitive_destroy(s->src_reorder);
  if (s->dst_reorder) dnnl_primitive_destroy(s->dst_reorder);
  dnnl_memory_t mems[] = {s->m_src, s->m_wei, s->m_bias, s->m_dst, s->m_scratch, s->m_wei_user, s->m_src_user,
                          s->m_dst_user};
  for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
    if (mems[i]) dnnl_memory_destroy(mems[i]);
  for (int i = 0; i < FC_REF_MAX_POST; i++) {
    if (s->m_bin[i]) dnnl_memory_destroy(s->m_bin[i]);
    free(s->opnd_own[i]);
  }
  if (s->stream) dnnl_stream_destroy(s->stream);
  free(s->own_bias);
  free(s);
  en->state = NULL;
}

/* Plain row-major strides for dims. */
static void plain_strides(int rank, const dnnl_dims_t dims, dnnl_dims_t st) {
  int64_t acc = 1;
  for (int d = rank - 1; d >= 0; d--) {
    st[d] = acc;
    acc *= dims[d] > 0 ? dims[d] : 1;
  }
}

/* An [N, C, spatial...] activation in the given layout. */
static dnnl_status_t act_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims, int layout) {
  dnnl_dims_t d, st;
  for (int i = 0; i < rank; i++) d[i] = dims[i];
  plain_strides(rank, d, st);
  if (layout == FC_LAYOUT_NHWC && rank >= 3) {
    int64_t c = d[1], acc = c;
    for (int i = rank - 1; i >= 2; i--) {
      st[i] = acc;
      acc *= d[i];
    }
    st[1] = 1;
    st[0] = acc;
  }
  return dnnl_memory_desc_init_by_strides(md, rank, d, dnnl_f32, st);
}

static dnnl_alg_kind_t eltwise_alg(int kind, float *alpha, float *beta) {
  switch (kind) {
    case FC_POST_RELU: *alpha = 0; return dnnl_eltwise_relu;
    case FC_POST_LEAKY_RELU: return dnnl_eltwise_relu; /* alpha = negative slope */
    case FC_POST_CLIP: return dnnl_eltwise_clip_v2;
    case FC_POST_LINEAR: return dnnl_eltwise_linear;
    case FC_POST_SIGMOID: return dnnl_eltwise_logistic;
    case FC_POST_SWISH: *alpha = 1; return dnnl_eltwise_swish;
    case FC_POST_HARDSWISH: *alpha = 0; *beta = 0; return dnnl_eltwise_hardswish;
    case FC_POST_GELU_ERF: return dnnl_eltwise_gelu_erf;
    case FC_POST_TANH: return dnnl_eltwise_tanh;
    default: return dnnl_alg_kind_undef;
  }
}

/* The memory descriptor of binary post-op i's operand: y's full shape in y's layout, or a vector
 * along the post-op axis broadcast over the rest. */
static dnnl_status_t operand_md(const dense_state *s, int i, int rank, const int64_t *ydims, dnnl_memory_desc_t *md) {
  int64_t numel = 1;
  for (int d = 0; d < rank; d++) numel *= ydims[d];
  if (s->po.operand_numel[i] == numel) return act_md(md, rank, ydims, s->po.layout);
  dnnl_dims_t d, st;
  for (int k = 0; k < rank; k++) d[k] = k == s->po.axis ? ydims[k] : 1;
  plain_strides(rank, d, st);
  return dnnl_memory_desc_init_by_strides(md, rank, d, dnnl_f32, st);
}

/* Post-ops as oneDNN attributes; NULL attr (and manual_post set) when some op has no oneDNN form. */
static dnnl_primitive_attr_t make_attr(dense_state *s, int rank, const int64_t *ydims, bool with_post) {
  dnnl_primitive_attr_t attr = NULL;
  if (dnnl_primitive_attr_create(&attr)) return NULL;
  dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
  if (!with_post || !s->po.n) return attr;
  dnnl_post_ops_t ops;
  if (dnnl_post_ops_create(&ops)) {
    dnnl_primitive_attr_destroy(attr);
    return NULL;
  }
  bool ok = true;
  for (int i = 0; i < s->po.n && ok; i++) {
    int k = s->po.kinds[i];
    if (fc_post_is_binary(k)) {
      dnnl_memory_desc_t md;
      dnnl_alg_kind_t alg = k == FC_POST_ADD ? dnnl_binary_add : k == FC_POST_MUL ? dnnl_binary_mul : dnnl_binary_sub;
      ok = operand_md(s, i, rank, ydims, &md) == dnnl_success && dnnl_post_ops_append_binary(ops, alg, &md) == dnnl_success;
    } else {
      float a = s->po.alpha[i], b = s->po.beta[i];
      dnnl_alg_kind_t alg = eltwise_alg(k, &a, &b);
      ok = alg != dnnl_alg_kind_undef && dnnl_post_ops_append_eltwise(ops, 1.0f, alg, a, b) == dnnl_success;
    }
  }
  if (ok) ok = dnnl_primitive_attr_set_post_ops(attr, ops) == dnnl_success;
  dnnl_post_ops_destroy(ops);
  if (!ok) {
    dnnl_primitive_attr_destroy(attr);
    return NULL;
  }
  return attr;
}

/* Creates the primitive from an op descriptor, with the post-ops fused if oneDNN takes them. */
static bool create_pd(dense_state *s, const void *op_desc, int rank, const int64_t *ydims, dnnl_primitive_desc_t *pd) {
  for (int with_post = 1; with_post >= 0; with_post--) {
    if (!with_post && !s->po.n) break;
    dnnl_primitive_attr_t attr = make_attr(s, rank, ydims, with_post);
    if (!attr) continue;
    dnnl_status_t st = dnnl_primitive_desc_create(pd, op_desc, attr, engine(), NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st == dnnl_success) {
      s->manual_post = !with_post && s->po.n > 0;
      const char *impl = NULL;
      if (dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(s->impl, sizeof s->impl, "%s", impl);
      /* oneDNN's reference implementations are slower than ours and not worth the dependency */
      if (strncmp(s->impl, "ref", 3)) return true;
      dnnl_primitive_desc_destroy(*pd);
    }
  }
  return false;
}

/* Memories of the primitive (handles set per run), packed weights from constant data. */
static fc_status finish_primitive(const fc_exec_node *en, dense_state *s, dnnl_primitive_desc_t pd,
                                  const dnnl_memory_desc_t *wei_user_md, const void *wei_const, float wei_scale,
                                  const dnnl_memory_desc_t *bias_md, int rank, const int64_t *ydims, fc_err *err) {
  dnnl_engine_t eng = engine();
  const dnnl_memory_desc_t *src_md = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
  const dnnl_memory_desc_t *wei_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
  const dnnl_memory_desc_t *scr_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  bool ok = dnnl_primitive_create(&s->prim, pd) == dnnl_success &&
            dnnl_stream_create(&s->stream, eng, dnnl_stream_default_flags) == dnnl_success &&
            dnnl_memory_create(&s->m_src, src_md, eng, DNNL_MEMORY_NONE) == dnnl_success &&
            dnnl_memory_create(&s->m_dst, dst_md, eng, DNNL_MEMORY_NONE) == dnnl_success &&
            dnnl_memory_create(&s->m_wei, wei_md, eng, DNNL_MEMORY_ALLOCATE) == dnnl_success &&
            dnnl_memory_create(&s->m_wei_user, wei_user_md, eng, DNNL_MEMORY_NONE) == dnnl_success;
  size_t scratch = scr_md ? dnnl_memory_desc_get_size(scr_md) : 0;
  if (ok && scratch) ok = dnnl_memory_create(&s->m_scratch, scr_md, eng, DNNL_MEMORY_NONE) == dnnl_success;
  if (ok && bias_md) ok = dnnl_memory_create(&s->m_bias, bias_md, eng, DNNL_MEMORY_NONE) == dnnl_success;
  for (int i = 0; ok && i < s->po.n; i++) {
    if (!fc_post_is_binary(s->po.kinds[i]) || s->manual_post) continue;
    dnnl_memory_desc_t md;
    ok = operand_md(s, i, rank, ydims, &md) == dnnl_success &&
         dnnl_memory_create(&s->m_bin[i], &md, eng, DNNL_MEMORY_NONE) == dnnl_success;
  }
  /* weights: reorder from the ONNX layout into the primitive's, scaled (Gemm's alpha) on the way */
  dnnl_primitive_desc_t rpd = NULL;
  dnnl_primitive_attr_t rattr = NULL;
  if (ok) ok = dnnl_primitive_attr_create(&rattr) == dnnl_success;
  if (ok && wei_scale != 1.0f) ok = dnnl_primitive_attr_set_output_scales(rattr, 1, 0, &wei_scale) == dnnl_success;
  if (ok) ok = dnnl_reorder_primitive_desc_create(&rpd, wei_user_md, eng, wei_md, eng, rattr) == dnnl_success;
  if (ok) ok = dnnl_primitive_create(&s->wei_reorder, rpd) == dnnl_success;
  if (rpd) dnnl_primitive_desc_destroy(rpd);
  if (rattr) dnnl_primitive_attr_destroy(rattr);
  if (ok && wei_const) {
    dnnl_memory_set_data_handle(s->m_wei_user, (void *)wei_const);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, s->m_wei_user}, {DNNL_ARG_TO, s->m_wei}};
    ok = dnnl_primitive_execute(s->wei_reorder, s->stream, 2, args) == dnnl_success &&
         dnnl_stream_wait(s->stream) == dnnl_success;
    dnnl_primitive_destroy(s->wei_reorder);
    s->wei_reorder = NULL;
  }
  if (!ok) return fail(en, err, FC_ERR_NOMEM, "oneDNN could not set up the primitive");
  ((fc_exec_node *)en)->scratch_bytes = scratch;
  return FC_OK;
}

static void set_operand_sources(const fc_exec_node *en, dense_state *s, int first) {
  int next = first;
  for (int i = 0; i < s->po.n; i++) {
    if (!fc_post_is_binary(s->po.kinds[i])) continue;
    if (!s->opnd_own[i]) s->opnd_input[i] = next++;
  }
}

static int layout_in(const fc_exec_node *en, int i) { return en->in_layout ? en->in_layout[i] : FC_LAYOUT_PLAIN; }
static int layout_out(const fc_exec_node *en, int i) { return en->out_layout ? en->out_layout[i] : FC_LAYOUT_PLAIN; }

/* ---- Conv / ConvTranspose ---------------------------------------------------------------- */

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }
static void execute(const fc_exec_node *en, const fc_exec_io *io, dense_state *s, const void *src, const void *wei);

/* 3x3 stride-1 convolutions can use oneDNN's Winograd F(2x2, 3x3) kernel, which needs the blocked
 * nChw16c layout: the activations are reordered from and to NHWC in the step's scratch. Timing both
 * in ResNet-50 (1 thread, reorders included, direct vs Winograd, ms): 64->64 @56x56 1.34 vs 0.96,
 * 128->128 @28x28 1.27 vs 0.80, 256->256 @14x14 1.30 vs 1.01, 512->512 @7x7 1.41-1.89 vs 1.37-2.07.
 * So: from 14x14 outputs up, with at least 32 channels each side. (Timing every layer at plan time
 * cost 0.7 s on a busy machine, more than a single `flopcut run` saves.) */
static fc_status try_winograd(fc_exec_node *en, dense_state *s, const dnnl_memory_desc_t *wei_user_md,
                              const dnnl_memory_desc_t *bias_md, const dnnl_dims_t strides, const dnnl_dims_t pl,
                              const dnnl_dims_t pr, fc_err *err) {
  const fc_conv_params *p = &s->cp;
  if (p->transpose || p->nsp != 2 || p->group != 1 || p->k[0] != 3 || p->k[1] != 3 || p->stride[0] != 1 ||
      p->stride[1] != 1 || p->dil[0] != 1 || p->dil[1] != 1 || p->ic < 16 || p->oc < 16 ||
      layout_in(en, 0) != FC_LAYOUT_NHWC || layout_out(en, 0) != FC_LAYOUT_NHWC || getenv("FC_NO_WINOGRAD"))
    return FC_OK;
  bool force = getenv("FC_FORCE_WINOGRAD") != NULL; /* tests: any eligible shape */
  if (!force && (p->ic < 32 || p->oc < 32 || p->out[0] * p->out[1] < 196)) return FC_OK;
  for (int i = 0; i < s->po.n; i++)
    if (fc_post_is_binary(s->po.kinds[i])) return FC_OK;
  const fc_value *x = fc_node_in(en->g, en->node, 0), *w = fc_node_in(en->g, en->node, 1), *y = fc_node_out(en->g, en->node, 0);
  if (!w->data) return FC_OK;
  dnnl_memory_desc_t src_any, dst_any, wei_any, src_user, dst_user;
  dnnl_dims_t xd = {x->dims[0], x->dims[1], x->dims[2], x->dims[3]}, yd = {y->dims[0], y->dims[1], y->dims[2], y->dims[3]};
  dnnl_dims_t wd = {p->oc, p->ic, 3, 3};
  if (dnnl_memory_desc_init_by_tag(&src_any, 4, xd, dnnl_f32, dnnl_format_tag_any) ||
      dnnl_memory_desc_init_by_tag(&dst_any, 4, yd, dnnl_f32, dnnl_format_tag_any) ||
      dnnl_memory_desc_init_by_tag(&wei_any, 4, wd, dnnl_f32, dnnl_format_tag_any) ||
      act_md(&src_user, 4, x->dims, FC_LAYOUT_NHWC) || act_md(&dst_user, 4, y->dims, FC_LAYOUT_NHWC))
    return FC_OK;
  dnnl_convolution_desc_t d;
  if (dnnl_convolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_convolution_winograd, &src_any, &wei_any,
                                         bias_md, &dst_any, strides, pl, pr) != dnnl_success)
    return FC_OK;
  dense_state *wz = fc_calloc(1, sizeof *wz);
  if (!wz) return FC_OK;
  wz->kind = s->kind;
  wz->cp = s->cp;
  wz->po = s->po;
  memcpy(wz->opnd_input, s->opnd_input, sizeof wz->opnd_input);
  wz->bias_input = s->bias_input;
  size_t direct_scratch = en->scratch_bytes;
  dnnl_primitive_desc_t pd = NULL;
  fc_exec_node trial = *en;
  trial.state = wz;
  bool ok = create_pd(wz, &d, 4, y->dims, &pd) && !wz->manual_post;
  if (ok) ok = finish_primitive(&trial, wz, pd, wei_user_md, w->data, 1.0f, bias_md, 4, y->dims, err) == FC_OK;
  dnnl_primitive_desc_t rs = NULL, rd = NULL;
  if (ok) {
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    wz->src_off = align64(trial.scratch_bytes);
    wz->dst_off = wz->src_off + align64(dnnl_memory_desc_get_size(smd));
    trial.scratch_bytes = wz->dst_off + align64(dnnl_memory_desc_get_size(dmd));
    ok = dnnl_reorder_primitive_desc_create(&rs, &src_user, engine(), smd, engine(), NULL) == dnnl_success &&
         dnnl_reorder_primitive_desc_create(&rd, dmd, engine(), &dst_user, engine(), NULL) == dnnl_success &&
         dnnl_primitive_create(&wz->src_reorder, rs) == dnnl_success &&
         dnnl_primitive_create(&wz->dst_reorder, rd) == dnnl_success &&
         dnnl_memory_create(&wz->m_src_user, &src_user, engine(), DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&wz->m_dst_user, &dst_user, engine(), DNNL_MEMORY_NONE) == dnnl_success;
    if (wz->impl[0]) strncat(wz->impl, "+reorders", sizeof wz->impl - strlen(wz->impl) - 1);
  }
  if (rs) dnnl_primitive_desc_destroy(rs);
  if (rd) dnnl_primitive_desc_destroy(rd);
  if (pd) dnnl_primitive_desc_destroy(pd);
  const fc_value *b = fc_node_in(en->g, en->node, 2);
  if (ok && b && b->data) dnnl_memory_set_data_handle(wz->m_bias, b->data);
  bool use_wino = ok;
  if (use_wino) {
    fc_exec_node old = *en;
    en->state = wz;
    en->scratch_bytes = trial.scratch_bytes;
    dense_release(&old);
  } else {
    trial.state = wz;
    dense_release(&trial);
    en->scratch_bytes = direct_scratch;
  }
  return FC_OK;
}

static fc_status conv_prepare(fc_exec_node *en, fc_err *err) {
  dense_state *s = fc_calloc(1, sizeof *s);
  if (!s) return fail(en, err, FC_ERR_NOMEM, "out of memory");
  en->state = s;
  s->kind = K_CONV;
  s->bias_input = -1;
  fc_status st = fc_conv_params_read(en, &s->cp, err);
  if (!st) st = fc_post_ops_read(en, 3, 1, &s->po, err);
  if (st) return st;
  set_operand_sources(en, s, 3);
  const fc_conv_params *p = &s->cp;
  const fc_value *x = fc_node_in(en->g, en->node, 0), *w = fc_node_in(en->g, en->node, 1);
  const fc_value *b = fc_node_in(en->g, en->node, 2), *y = fc_node_out(en->g, en->node, 0);
  if (b && !b->data) s->bias_input = 2;
  s->use_ref = true;
  snprintf(s->impl, sizeof s->impl, "ref");
  if (!engine() || fc_value_numel(x) <= 0 || fc_value_numel(y) <= 0) return FC_OK;

  int rank = x->rank;
  dnnl_memory_desc_t src_md, dst_md, wei_md, wei_user_md, bias_md;
  dnnl_dims_t wd, wst;
  int wrank;
  int64_t kvol = 1, g = p->group, icg = p->ic / g, ocg = p->oc / g;
  for (int i = 0; i < p->nsp; i++) kvol *= p->k[i];
  /* ONNX weights: Conv [OC, IC/g, k...]; ConvTranspose [IC, OC/g, k...]. oneDNN wants [(G,) OC, IC, k...] */
  if (g > 1) {
    wrank = rank + 1;
    wd[0] = g;
    wd[1] = ocg;
    wd[2] = icg;
    for (int i = 0; i < p->nsp; i++) wd[3 + i] = p->k[i];
    plain_strides(wrank, wd, wst);
    if (p->transpose) {
      wst[0] = icg * ocg * kvol;
      wst[1] = kvol;
      wst[2] = ocg * kvol;
    }
  } else {
    wrank = rank;
    wd[0] = p->oc;
    wd[1] = p->ic;
    for (int i = 0; i < p->nsp; i++) wd[2 + i] = p->k[i];
    plain_strides(wrank, wd, wst);
    if (p->transpose) {
      wst[0] = kvol;
      wst[1] = p->oc * kvol;
    }
  }
  dnnl_dims_t bd = {p->oc}, strides, dil, pl, pr;
  for (int i = 0; i < p->nsp; i++) {
    int64_t eff = (p->k[i] - 1) * p->dil[i] + 1;
    strides[i] = p->stride[i];
    dil[i] = p->dil[i] - 1;
    pl[i] = p->pad_b[i];
    /* the right padding that gives exactly the inferred output size (ONNX floors, oneDNN checks) */
    pr[i] = p->transpose ? (p->in[i] - 1) * p->stride[i] + eff - p->pad_b[i] - p->out[i]
                         : (p->out[i] - 1) * p->stride[i] + eff - p->in[i] - p->pad_b[i];
  }
  if (act_md(&src_md, rank, x->dims, layout_in(en, 0)) || act_md(&dst_md, rank, y->dims, layout_out(en, 0)) ||
      dnnl_memory_desc_init_by_strides(&wei_user_md, wrank, wd, dnnl_f32, wst) ||
      dnnl_memory_desc_init_by_tag(&wei_md, wrank, wd, dnnl_f32, dnnl_format_tag_any) ||
      dnnl_memory_desc_init_by_tag(&bias_md, 1, bd, dnnl_f32, dnnl_a))
    return FC_OK;
  dnnl_primitive_desc_t pd = NULL;
  bool created;
  if (p->transpose) {
    dnnl_deconvolution_desc_t d;
    created = dnnl_dilated_deconvolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_deconvolution_direct,
                                                           &src_md, &wei_md, b ? &bias_md : NULL, &dst_md, strides,
                                                           dil, pl, pr) == dnnl_success &&
              create_pd(s, &d, rank, y->dims, &pd);
  } else {
    dnnl_convolution_desc_t d;
    created = dnnl_dilated_convolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_convolution_direct, &src_md,
                                                         &wei_md, b ? &bias_md : NULL, &dst_md, strides, dil, pl,
                                                         pr) == dnnl_success &&
              create_pd(s, &d, rank, y->dims, &pd);
  }
  if (!created) return FC_OK;
  st = finish_primitive(en, s, pd, &wei_user_md, w->data, 1.0f, b ? &bias_md : NULL, rank, y->dims, err);
  dnnl_primitive_desc_destroy(pd);
  if (st) return st;
  if (b && b->data) dnnl_memory_set_data_handle(s->m_bias, b->data);
  s->use_ref = false;
  if (w->data) en->packed_inputs |= 1u << 1;
  return try_winograd(en, s, &wei_user_md, b ? &bias_md : NULL, strides, pl, pr, err);
}

/* Sets the binary operands' handles; returns the operand pointers for manual post-ops. */
static void operands(const fc_exec_node *en, const fc_exec_io *io, dense_state *s, const float **ops) {
  int n = 0;
  for (int i = 0; i < s->po.n; i++) {
    if (!fc_post_is_binary(s->po.kinds[i])) continue;
    const float *z = s->opnd_own[i] ? s->opnd_own[i] : io->in[s->opnd_input[i]];
    ops[n++] = z;
    if (s->m_bin[i]) dnnl_memory_set_data_handle(s->m_bin[i], (void *)z);
  }
}

static void execute(const fc_exec_node *en, const fc_exec_io *io, dense_state *s, const void *src, const void *wei) {
  dnnl_exec_arg_t args[8 + FC_REF_MAX_POST];
  int n = 0;
  if (s->src_reorder) {
    dnnl_memory_set_data_handle(s->m_src_user, (void *)src);
    dnnl_memory_set_data_handle(s->m_src, (char *)io->scratch + s->src_off);
    dnnl_memory_set_data_handle(s->m_dst, (char *)io->scratch + s->dst_off);
    dnnl_memory_set_data_handle(s->m_dst_user, io->out[0]);
    dnnl_exec_arg_t r[] = {{DNNL_ARG_FROM, s->m_src_user}, {DNNL_ARG_TO, s->m_src}};
    dnnl_primitive_execute(s->src_reorder, s->stream, 2, r);
  } else {
    dnnl_memory_set_data_handle(s->m_src, (void *)src);
    dnnl_memory_set_data_handle(s->m_dst, io->out[0]);
  }
  if (s->wei_reorder) { /* weights computed at run time: pack them now */
    dnnl_memory_set_data_handle(s->m_wei_user, (void *)wei);
    dnnl_exec_arg_t r[] = {{DNNL_ARG_FROM, s->m_wei_user}, {DNNL_ARG_TO, s->m_wei}};
    dnnl_primitive_execute(s->wei_reorder, s->stream, 2, r);
  }
  args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, s->m_src};
  args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, s->m_wei};
  args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, s->m_dst};
  if (s->m_bias) {
    if (s->bias_input >= 0) dnnl_memory_set_data_handle(s->m_bias, (void *)io->in[s->bias_input]);
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, s->m_bias};
  }
  if (s->m_scratch) {
    dnnl_memory_set_data_handle(s->m_scratch, io->scratch);
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->m_scratch};
  }
  const float *ops[FC_REF_MAX_POST];
  operands(en, io, s, ops);
  for (int i = 0; i < s->po.n; i++)
    if (s->m_bin[i]) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1, s->m_bin[i]};
  dnnl_primitive_execute(s->prim, s->stream, n, args);
  if (s->dst_reorder) {
    dnnl_exec_arg_t r[] = {{DNNL_ARG_FROM, s->m_dst}, {DNNL_ARG_TO, s->m_dst_user}};
    dnnl_primitive_execute(s->dst_reorder, s->stream, 2, r);
  }
  dnnl_stream_wait(s->stream);
  if (s->manual_post) fc_post_ops_apply(&s->po, io->out[0], ops, en->threads);
}

static void conv_run(const fc_exec_node *en, const fc_exec_io *io) {
  dense_state *s = en->state;
  if (!s->use_ref) {
    execute(en, io, s, io->in[0], io->in[1]);
    return;
  }
  fc_strides xs, ys;
  fc_conv_strides(&s->cp, false, layout_in(en, 0), &xs);
  fc_conv_strides(&s->cp, true, layout_out(en, 0), &ys);
  fc_ref_conv(&s->cp, io->in[0], &xs, io->in[1], io->in[2], io->out[0], &ys);
  const float *ops[FC_REF_MAX_POST];
  operands(en, io, s, ops);
  fc_ref_post_ops(&s->po, io->out[0], ops, en->threads);
}

/* ---- Gemm and MatMul --------------------------------------------------------------------- */

/* Inserts a binary ADD of an own constant operand at the front of the chain. */
static fc_status chain_prepend_add(dense_state *s, float *own, int64_t numel) {
  if (s->po.n >= FC_REF_MAX_POST) return FC_ERR_UNSUPPORTED;
  for (int i = s->po.n; i > 0; i--) {
    s->po.kinds[i] = s->po.kinds[i - 1];
    s->po.alpha[i] = s->po.alpha[i - 1];
    s->po.beta[i] = s->po.beta[i - 1];
    s->po.operand_numel[i] = s->po.operand_numel[i - 1];
    s->opnd_input[i] = s->opnd_input[i - 1];
    s->opnd_own[i] = s->opnd_own[i - 1];
  }
  s->po.kinds[0] = FC_POST_ADD;
  s->po.alpha[0] = s->po.beta[0] = 0;
  s->po.operand_numel[0] = numel;
  s->opnd_input[0] = -1;
  s->opnd_own[0] = own;
  s->po.n++;
  return FC_OK;
}

static fc_status gemm_prepare(fc_exec_node *en, fc_err *err) {
  dense_state *s = fc_calloc(1, sizeof *s);
  if (!s) return fail(en, err, FC_ERR_NOMEM, "out of memory");
  en->state = s;
  s->kind = K_GEMM;
  s->bias_input = -1;
  fc_status st = fc_gemm_params_read(en, &s->gp, err);
  if (!st) st = fc_post_ops_read(en, 3, 1, &s->po, err);
  if (st) return st;
  set_operand_sources(en, s, 3);
  s->use_ref = true;
  snprintf(s->impl, sizeof s->impl, "ref");
  const fc_gemm_params *p = &s->gp;
  const fc_value *b = fc_node_in(en->g, en->node, 1), *c = fc_node_in(en->g, en->node, 2);
  /* the fast path wants constant weights and a constant (or plain-added) C */
  if (!engine() || !b->data || p->m * p->n * p->k == 0) return FC_OK;
  bool bias = false;
  if (c && p->beta != 0) {
    if (c->data) {
      int64_t cn = fc_value_numel(c);
      bool vec = p->c_dims[0] == 1; /* [N], [1,N] or a scalar: a bias row */
      int64_t len = vec ? p->n : p->m * p->n;
      float *own = fc_malloc((size_t)len * sizeof(float));
      if (!own) return fail(en, err, FC_ERR_NOMEM, "out of memory");
      const float *cd = c->data;
      for (int64_t i = 0; i < len; i++) {
        int64_t r = vec ? 0 : i / p->n, col = i % p->n;
        own[i] = p->beta * cd[(p->c_dims[0] == 1 ? 0 : r) * p->c_dims[1] + (p->c_dims[1] == 1 ? 0 : col)];
      }
      (void)cn;
      if (vec) {
        s->own_bias = own;
        bias = true;
      } else if (chain_prepend_add(s, own, len)) {
        free(own);
        return FC_OK;
      }
    } else {
      if (p->beta != 1.0f || (fc_value_numel(c) != p->m * p->n && !(p->c_dims[0] == 1 && p->c_dims[1] == p->n)))
        return FC_OK;
      if (chain_prepend_add(s, NULL, fc_value_numel(c))) return FC_OK;
      s->opnd_input[0] = 2;
    }
  }
  dnnl_dims_t ad = {p->m, p->k}, ast = {p->trans_a ? 1 : p->k, p->trans_a ? p->m : 1};
  dnnl_dims_t bdim = {p->k, p->n}, bst = {p->trans_b ? 1 : p->n, p->trans_b ? p->k : 1};
  dnnl_dims_t yd = {p->m, p->n}, yst = {p->n, 1}, biasd = {1, p->n}, biasst = {p->n, 1};
  int64_t ydims[2] = {p->m, p->n};
  dnnl_memory_desc_t src_md, wei_md, wei_user_md, dst_md, bias_md;
  if (dnnl_memory_desc_init_by_strides(&src_md, 2, ad, dnnl_f32, ast) ||
      dnnl_memory_desc_init_by_strides(&wei_user_md, 2, bdim, dnnl_f32, bst) ||
      dnnl_memory_desc_init_by_tag(&wei_md, 2, bdim, dnnl_f32, dnnl_format_tag_any) ||
      dnnl_memory_desc_init_by_strides(&dst_md, 2, yd, dnnl_f32, yst) ||
      dnnl_memory_desc_init_by_strides(&bias_md, 2, biasd, dnnl_f32, biasst))
    return FC_OK;
  s->po.layout = FC_LAYOUT_PLAIN;
  dnnl_matmul_desc_t d;
  dnnl_primitive_desc_t pd = NULL;
  if (dnnl_matmul_desc_init(&d, &src_md, &wei_md, bias ? &bias_md : NULL, &dst_md) || !create_pd(s, &d, 2, ydims, &pd))
    return FC_OK;
  st = finish_primitive(en, s, pd, &wei_user_md, b->data, p->alpha, bias ? &bias_md : NULL, 2, ydims, err);
  dnnl_primitive_desc_destroy(pd);
  if (st) return st;
  if (bias) dnnl_memory_set_data_handle(s->m_bias, s->own_bias);
  s->use_ref = false;
  en->packed_inputs |= 1u << 1; /* B was reordered; C, when constant, was copied into own buffers */
  if (c && c->data && p->beta != 0) en->packed_inputs |= 1u << 2;
  return FC_OK;
}

static void gemm_run(const fc_exec_node *en, const fc_exec_io *io) {
  dense_state *s = en->state;
  if (!s->use_ref) {
    execute(en, io, s, io->in[0], io->in[1]);
    return;
  }
  fc_ref_gemm(&s->gp, io->in[0], io->in[1], io->in[2], io->out[0]);
  const float *ops[FC_REF_MAX_POST];
  operands(en, io, s, ops);
  fc_ref_post_ops(&s->po, io->out[0], ops, en->threads);
}

static fc_status matmul_prepare(fc_exec_node *en, fc_err *err) {
  dense_state *s = fc_calloc(1, sizeof *s);
  if (!s) return fail(en, err, FC_ERR_NOMEM, "out of memory");
  en->state = s;
  s->kind = K_MATMUL;
  s->bias_input = -1;
  const fc_value *y = fc_node_out(en->g, en->node, 0);
  fc_status st = fc_matmul_params_read(en, &s->mp, err);
  if (!st) st = fc_post_ops_read(en, 2, y->rank - 1, &s->po, err);
  if (st) return st;
  set_operand_sources(en, s, 2);
  s->use_ref = true;
  snprintf(s->impl, sizeof s->impl, "ref");
  const fc_matmul_params *p = &s->mp;
  const fc_value *b = fc_node_in(en->g, en->node, 1);
  if (!engine() || p->batch * p->m * p->n * p->k == 0) return FC_OK;
  int r = p->rank;
  dnnl_dims_t ad, bdim, yd, ast, bst, yst, biasd, biasst;
  for (int i = 0; i < r; i++) {
    ad[i] = p->a_dims[i];
    bdim[i] = p->b_dims[i];
    yd[i] = p->y_dims[i];
    biasd[i] = i == r - 1 ? p->n : 1;
  }
  /* weights without batch dims (a Linear layer on [L, N, E] activations): fold A's batch into M,
   * one GEMM instead of L small ones (ViT-B/16 exports [197, 1, 768] x [768, 2304]) */
  bool b_batched = false;
  for (int i = 0; i < r - 2; i++) b_batched = b_batched || p->b_dims[i] != 1;
  if (r > 2 && !b_batched) {
    ad[0] = p->batch * p->m;
    ad[1] = p->k;
    bdim[0] = p->k;
    bdim[1] = p->n;
    yd[0] = p->batch * p->m;
    yd[1] = p->n;
    biasd[0] = 1;
    biasd[1] = p->n;
    r = 2;
  }
  int64_t ydl[FC_MAX_RANK];
  for (int i = 0; i < r; i++) ydl[i] = yd[i];
  plain_strides(r, ad, ast);
  plain_strides(r, bdim, bst);
  plain_strides(r, yd, yst);
  plain_strides(r, biasd, biasst);
  /* a leading Add of a constant row vector becomes oneDNN's bias */
  bool bias = false;
  if (s->po.n && s->po.kinds[0] == FC_POST_ADD && s->po.operand_numel[0] == p->n && s->opnd_input[0] >= 0) {
    const fc_value *z = fc_node_in(en->g, en->node, s->opnd_input[0]);
    int64_t ynumel = fc_value_numel(y);
    if (z && z->data && (ynumel != p->n || z->rank <= 1)) {
      bias = true;
      s->bias_input = -2; /* constant: handle set below */
    }
  }
  dnnl_memory_desc_t src_md, wei_md, wei_user_md, dst_md, bias_md;
  if (dnnl_memory_desc_init_by_strides(&src_md, r, ad, dnnl_f32, ast) ||
      dnnl_memory_desc_init_by_strides(&wei_user_md, r, bdim, dnnl_f32, bst) ||
      (b->data ? dnnl_memory_desc_init_by_tag(&wei_md, r, bdim, dnnl_f32, dnnl_format_tag_any)
               : dnnl_memory_desc_init_by_strides(&wei_md, r, bdim, dnnl_f32, bst)) ||
      dnnl_memory_desc_init_by_strides(&dst_md, r, yd, dnnl_f32, yst) ||
      dnnl_memory_desc_init_by_strides(&bias_md, r, biasd, dnnl_f32, biasst))
    return FC_OK;
  /* the chain without the bias, in a copy so the reference path keeps the full one */
  dense_state trial = *s;
  if (bias) {
    trial.po.n--;
    for (int i = 0; i < trial.po.n; i++) {
      trial.po.kinds[i] = s->po.kinds[i + 1];
      trial.po.alpha[i] = s->po.alpha[i + 1];
      trial.po.beta[i] = s->po.beta[i + 1];
      trial.po.operand_numel[i] = s->po.operand_numel[i + 1];
      trial.opnd_input[i] = s->opnd_input[i + 1];
      trial.opnd_own[i] = s->opnd_own[i + 1];
    }
  }
  trial.po.rank = r;
  for (int i = 0; i < r; i++) trial.po.dims[i] = yd[i];
  trial.po.axis = r - 1;
  dnnl_matmul_desc_t d;
  dnnl_primitive_desc_t pd = NULL;
  if (dnnl_matmul_desc_init(&d, &src_md, &wei_md, bias ? &bias_md : NULL, &dst_md) ||
      !create_pd(&trial, &d, r, ydl, &pd))
    return FC_OK;
  const void *bias_data = bias ? fc_node_in(en->g, en->node, s->opnd_input[0])->data : NULL;
  *s = trial;
  s->use_ref = false;
  if (b->data) {
    st = finish_primitive(en, s, pd, &wei_user_md, b->data, 1.0f, bias ? &bias_md : NULL, r, ydl, err);
  } else {
    /* run-time weights in plain layout: no packing, the handle is set per run */
    st = finish_primitive(en, s, pd, &wei_user_md, NULL, 1.0f, bias ? &bias_md : NULL, r, ydl, err);
    if (!st && s->wei_reorder) {
      dnnl_primitive_destroy(s->wei_reorder);
      s->wei_reorder = NULL;
      dnnl_memory_destroy(s->m_wei);
      s->m_wei = s->m_wei_user;
      s->m_wei_user = NULL;
    }
  }
  dnnl_primitive_desc_destroy(pd);
  if (st) return st;
  if (bias) dnnl_memory_set_data_handle(s->m_bias, (void *)bias_data);
  s->bias_input = -1;
  if (b->data) en->packed_inputs |= 1u << 1;
  return FC_OK;
}

static void matmul_run(const fc_exec_node *en, const fc_exec_io *io) {
  dense_state *s = en->state;
  if (!s->use_ref) {
    if (!s->wei_reorder && !fc_node_in(en->g, en->node, 1)->data) dnnl_memory_set_data_handle(s->m_wei, (void *)io->in[1]);
    execute(en, io, s, io->in[0], io->in[1]);
    return;
  }
  fc_ref_matmul(&s->mp, io->in[0], io->in[1], io->out[0]);
  const float *ops[FC_REF_MAX_POST];
  operands(en, io, s, ops);
  fc_ref_post_ops(&s->po, io->out[0], ops, en->threads);
}

/* For profiles: which implementation a prepared dense node uses ("brgconv:avx512_core", "ref"). */
static const char *dense_describe(const fc_exec_node *en) {
  const dense_state *s = en->state;
  if (!s) return "";
  return s->manual_post ? (s->use_ref ? "ref" : "onednn+separate post-ops") : s->impl;
}

const fc_kernel fc_kernels_dense[] = {
    {"Conv", conv_prepare, conv_run, dense_release, FC_KERNEL_NHWC, dense_describe},
    {"ConvTranspose", conv_prepare, conv_run, dense_release, FC_KERNEL_NHWC, dense_describe},
    {"Gemm", gemm_prepare, gemm_run, dense_release, 0, dense_describe},
    {"MatMul", matmul_prepare, matmul_run, dense_release, 0, dense_describe},
    {NULL, NULL, NULL, NULL, 0, NULL},
};
