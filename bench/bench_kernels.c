/* Microbenchmark: flopcut's sparse convolution kernels against oneDNN dense on ResNet-50 layer
 * shapes over a range of random unstructured sparsities; prints both FLOP/s rates and break-evens. */
#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/ref/sparse_ref.h"
#include "kernels/sparse/sparse_internal.h"

#define DN(call)                                                                                   \
  do {                                                                                             \
    dnnl_status_t s_ = (call);                                                                     \
    if (s_ != dnnl_success) {                                                                      \
      fprintf(stderr, "bench-kernels: oneDNN call failed (%d) at line %d\n", (int)s_, __LINE__);   \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

typedef struct shape {
  const char *name;
  int64_t cout, cin, h, w, k, stride, pad;
} shape;

static const shape shapes[] = {
    {"1x1 64x256 56x56", 64, 256, 56, 56, 1, 1, 0},     {"1x1 256x1024 14x14", 256, 1024, 14, 14, 1, 1, 0},
    {"1x1 512x2048 7x7", 512, 2048, 7, 7, 1, 1, 0},     {"1x1 2048x512 7x7", 2048, 512, 7, 7, 1, 1, 0},
    {"1x1 128x512 28x28", 128, 512, 28, 28, 1, 1, 0},   {"3x3 64x64 56x56", 64, 64, 56, 56, 3, 1, 1},
    {"3x3 128x128 28x28", 128, 128, 28, 28, 3, 1, 1},   {"3x3 256x256 14x14", 256, 256, 14, 14, 3, 1, 1},
    {"3x3 512x512 7x7", 512, 512, 7, 7, 3, 1, 1},
};

/* wall time by default; --clock cpu times the calling thread only (immune to being descheduled on
 * a shared machine, valid for --threads 1 where every kernel runs on the caller) */
static clockid_t clock_id = CLOCK_MONOTONIC;
/* For --calib: every distinct conv shape of ResNet-50 plus MobileNetV2-like pointwise layers. */
static const shape calib_shapes[] = {
    {"stem 64x3 7x7/2 224", 64, 3, 224, 224, 7, 2, 3},   {"1x1 64x64 56", 64, 64, 56, 56, 1, 1, 0},
    {"3x3 64x64 56", 64, 64, 56, 56, 3, 1, 1},           {"1x1 256x64 56", 256, 64, 56, 56, 1, 1, 0},
    {"1x1 64x256 56", 64, 256, 56, 56, 1, 1, 0},         {"1x1 128x256 56", 128, 256, 56, 56, 1, 1, 0},
    {"3x3 128x128/2 56", 128, 128, 56, 56, 3, 2, 1},     {"1x1 512x128 28", 512, 128, 28, 28, 1, 1, 0},
    {"1x1 512x256/2 56", 512, 256, 56, 56, 1, 2, 0},     {"1x1 128x512 28", 128, 512, 28, 28, 1, 1, 0},
    {"3x3 128x128 28", 128, 128, 28, 28, 3, 1, 1},       {"1x1 256x512 28", 256, 512, 28, 28, 1, 1, 0},
    {"3x3 256x256/2 28", 256, 256, 28, 28, 3, 2, 1},     {"1x1 1024x256 14", 1024, 256, 14, 14, 1, 1, 0},
    {"1x1 1024x512/2 28", 1024, 512, 28, 28, 1, 2, 0},   {"1x1 256x1024 14", 256, 1024, 14, 14, 1, 1, 0},
    {"3x3 256x256 14", 256, 256, 14, 14, 3, 1, 1},       {"1x1 512x1024 14", 512, 1024, 14, 14, 1, 1, 0},
    {"3x3 512x512/2 14", 512, 512, 14, 14, 3, 2, 1},     {"1x1 2048x512 7", 2048, 512, 7, 7, 1, 1, 0},
    {"1x1 2048x1024/2 14", 2048, 1024, 14, 14, 1, 2, 0}, {"1x1 512x2048 7", 512, 2048, 7, 7, 1, 1, 0},
    {"3x3 512x512 7", 512, 512, 7, 7, 3, 1, 1},          {"1x1 96x16 112", 96, 16, 112, 112, 1, 1, 0},
    {"1x1 144x24 56", 144, 24, 56, 56, 1, 1, 0},         {"1x1 24x144 56", 24, 144, 56, 56, 1, 1, 0},
    {"1x1 192x32 28", 192, 32, 28, 28, 1, 1, 0},         {"1x1 64x384 14", 64, 384, 14, 14, 1, 1, 0},
    {"1x1 576x96 14", 576, 96, 14, 14, 1, 1, 0},         {"1x1 160x960 7", 160, 960, 7, 7, 1, 1, 0},
    {"1x1 1280x320 7", 1280, 320, 7, 7, 1, 1, 0},
};

static double now(void) {
  struct timespec t;
  clock_gettime(clock_id, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double urand(void) {
  rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
  return (double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}
static float *frand_buf(size_t n) {
  float *p = NULL;
  if (posix_memalign((void **)&p, 64, (n ? n : 1) * sizeof(float))) exit(1);
  for (size_t i = 0; i < n; i++) p[i] = (float)(urand() * 2 - 1);
  return p;
}
static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* --- oneDNN dense: a convolution with layouts of its choosing (reorders excluded), and for 1×1
 * also the plain matmul W[cout, cin] · X[cin, P]; the faster is the baseline. Both with bias and a
 * fused Relu, like the sparse kernel. Each rotation set has its own buffers. */
typedef struct dense {
  dnnl_engine_t eng;
  dnnl_stream_t st;
  dnnl_primitive_t prim;
  int nrot, nargs;
  char impl[64];
  dnnl_exec_arg_t (*args)[4];
} dense;

static void dense_make(dense *dn, const_dnnl_op_desc_t desc, const dnnl_memory_desc_t *bias_md, double rot_bytes) {
  dnnl_primitive_attr_t attr;
  dnnl_post_ops_t po;
  DN(dnnl_primitive_attr_create(&attr));
  DN(dnnl_post_ops_create(&po));
  DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
  DN(dnnl_primitive_attr_set_post_ops(attr, po));
  dnnl_primitive_desc_t pd;
  DN(dnnl_primitive_desc_create(&pd, desc, attr, dn->eng, NULL));
  DN(dnnl_primitive_create(&dn->prim, pd));
  const char *impl = "?";
  dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
  snprintf(dn->impl, sizeof dn->impl, "%s", impl);
  const dnnl_memory_desc_t *mds[4] = {dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
                                      dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
                                      dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), bias_md};
  const int kinds[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
  dn->nargs = bias_md ? 4 : 3;
  double set_bytes = 0;
  for (int i = 0; i < dn->nargs; i++) set_bytes += (double)dnnl_memory_desc_get_size(mds[i]);
  dn->nrot = (int)(rot_bytes / set_bytes) + 1;
  if (dn->nrot > 64) dn->nrot = 64;
  dn->args = calloc((size_t)dn->nrot, sizeof *dn->args);
  for (int r = 0; r < dn->nrot; r++)
    for (int i = 0; i < dn->nargs; i++) {
      dnnl_memory_t m;
      DN(dnnl_memory_create(&m, mds[i], dn->eng, frand_buf(dnnl_memory_desc_get_size(mds[i]) / sizeof(float) + 16)));
      dn->args[r][i].arg = kinds[i];
      dn->args[r][i].memory = m;
    }
  dnnl_primitive_desc_destroy(pd);
  dnnl_post_ops_destroy(po);
  dnnl_primitive_attr_destroy(attr);
}

static void dense_init(dense *dn, const shape *s, int matmul, double rot_bytes) {
  memset(dn, 0, sizeof *dn);
  DN(dnnl_engine_create(&dn->eng, dnnl_cpu, 0));
  DN(dnnl_stream_create(&dn->st, dn->eng, dnnl_stream_default_flags));
  if (matmul) {
    int64_t p = s->h * s->w;
    dnnl_dims_t ad = {s->cout, s->cin}, bd = {s->cin, p}, cd = {s->cout, p};
    dnnl_memory_desc_t amd, bmd, cmd;
    DN(dnnl_memory_desc_init_by_tag(&amd, 2, ad, dnnl_f32, dnnl_ab));
    DN(dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dnnl_f32, dnnl_ab));
    DN(dnnl_memory_desc_init_by_tag(&cmd, 2, cd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    /* src = W, weights = X (the activation). No bias: a per-row bias sends oneDNN 2.6 to its
     * reference matmul, which would make the baseline artificially slow. */
    DN(dnnl_matmul_desc_init(&md, &amd, &bmd, NULL, &cmd));
    dense_make(dn, &md, NULL, rot_bytes);
  } else {
    int64_t oh = (s->h + 2 * s->pad - s->k) / s->stride + 1, ow = (s->w + 2 * s->pad - s->k) / s->stride + 1;
    dnnl_dims_t sd = {1, s->cin, s->h, s->w}, wd = {s->cout, s->cin, s->k, s->k}, bd = {s->cout},
                dd = {1, s->cout, oh, ow}, str = {s->stride, s->stride}, pad = {s->pad, s->pad};
    dnnl_memory_desc_t smd, wmd, bmd, dmd;
    DN(dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_f32, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&wmd, 4, wd, dnnl_f32, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x));
    DN(dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, dnnl_format_tag_any));
    dnnl_convolution_desc_t cd;
    DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &smd, &wmd, &bmd,
                                          &dmd, str, pad, pad));
    dense_make(dn, &cd, &bmd, rot_bytes);
  }
}

static void dense_run(dense *dn, int r) {
  DN(dnnl_primitive_execute(dn->prim, dn->st, dn->nargs, dn->args[r]));
  DN(dnnl_stream_wait(dn->st));
}

/* --- flopcut sparse: one planned conv per rotation set, each from its own random weights. The
 * scratch is one buffer for all sets, as the runtime's arena is one for all steps (and oneDNN's
 * scratchpad one per thread): a scratch per set had each call lay its input out into cold memory,
 * 6 % of the time of the 3×3 layers at 56×56 and 7×7 (same process, both in turn). */
typedef struct sparse_set {
  fc_sparse_conv *c;
  float *x, *y;
} sparse_set;

/* --- the memory floor: what one call of the sparse conv must move at the least, reading its input
 * and packed weights and writing its output once, timed on buffers of the same sizes rotated the
 * same way (so as cold); dense time / floor bounds the speed-up any sparse kernel could show. */
typedef struct floor_set {
  float *in, *out;
  size_t nin, nout; /* floats: input plus packed weights; output */
} floor_set;

/* The input is read as FLOOR_STREAMS interleaved sequential streams: one stream gets about half
 * the bandwidth the sparse kernel's many channel rows (plus prefetches) get. */
#define FLOOR_STREAMS 8
static void floor_run(const floor_set *f) {
  const size_t per = f->nin / FLOOR_STREAMS / 16 * 16;
  float acc[FLOOR_STREAMS][16] = {{0}};
  for (size_t i = 0; i < per; i += 16)
    for (int k = 0; k < FLOOR_STREAMS; k++) {
      const float *p = f->in + (size_t)k * per + i;
#pragma omp simd
      for (int l = 0; l < 16; l++) acc[k][l] += p[l];
    }
  float s = 0;
  for (size_t i = per * FLOOR_STREAMS; i < f->nin; i++) s += f->in[i];
  for (int k = 0; k < FLOOR_STREAMS; k++)
    for (int l = 0; l < 16; l++) s += acc[k][l];
#pragma omp simd
  for (size_t i = 0; i < f->nout; i++) f->out[i] = s;
}

static float *random_weights(const shape *s, double sp, int block) {
  int64_t kk = s->cin * s->k * s->k;
  float *w = frand_buf((size_t)(s->cout * kk));
  for (int64_t r0 = 0; r0 < s->cout; r0 += block)
    for (int64_t j = 0; j < kk; j++)
      if (urand() < sp)
        for (int r = 0; r < block && r0 + r < s->cout; r++) w[(r0 + r) * kk + j] = 0.0f;
  return w;
}

static void sparse_desc_layout(const shape *s, int threads, int block, int layout, fc_sparse_conv_desc *d);
static int64_t out_pixels(const shape *s);
/* Floats between channel planes of hw pixels: padded as the runtime stores values between sparse
 * convs (FC_LAYOUT_PADDED: planes of 16 or more pixels that are not whole cache lines), unless
 * --plain-planes. oneDNN likewise gets the layouts of its choice with reorders excluded. */
static int64_t plane_floats(int64_t hw, int plain) { return plain || hw < 16 || hw % 16 == 0 ? hw : (hw + 15) / 16 * 16; }

static void sparse_desc(const shape *s, int threads, int block, int plain, fc_sparse_conv_desc *d) {
  sparse_desc_layout(s, threads, block, 0, d);
  d->in_cstride = plane_floats(s->h * s->w, plain);
  d->out_cstride = plane_floats(out_pixels(s), plain);
}

static void sparse_desc_layout(const shape *s, int threads, int block, int layout, fc_sparse_conv_desc *d) {
  fc_sparse_conv_desc_init(d);
  d->cin = s->cin, d->cout = s->cout, d->in_h = s->h, d->in_w = s->w, d->k_h = d->k_w = s->k;
  d->stride_h = d->stride_w = s->stride;
  d->pad_t = d->pad_l = d->pad_b = d->pad_r = s->pad;
  d->act_lo = 0.0f;
  d->threads = threads;
  d->block = block;
  d->layout = layout;
}

typedef struct opts {
  int threads, reps, block, pattern_block;
  int plain_planes; /* 1: channel planes packed even where the runtime pads them */
  double rot_mb, min_time;
  const char *only, *calib;
  double sps[16];
  int nsp;
} opts;

static int64_t out_pixels(const shape *s) {
  int64_t oh = (s->h + 2 * s->pad - s->k) / s->stride + 1, ow = (s->w + 2 * s->pad - s->k) / s->stride + 1;
  return oh * ow;
}

/* Checks one planned conv against the scalar reference; returns the max error relative to the
 * largest output magnitude. */
static double check(const shape *s, const opts *o) {
  fc_sparse_conv_desc d;
  sparse_desc(s, o->threads, o->block, o->plain_planes, &d);
  float *w = random_weights(s, 0.9, o->pattern_block), *bias = frand_buf((size_t)s->cout);
  const int64_t ip = s->h * s->w, op = out_pixels(s);
  float *x = frand_buf((size_t)(s->cin * ip)), *xs = frand_buf((size_t)(s->cin * d.in_cstride));
  for (int64_t c = 0; c < s->cin; c++) memcpy(xs + c * d.in_cstride, x + c * ip, (size_t)ip * sizeof(float));
  size_t n = (size_t)(s->cout * op);
  float *want = frand_buf(n), *got = frand_buf((size_t)(s->cout * d.out_cstride));
  fc_sparse_conv *c;
  fc_err err = {0};
  if (fc_sparse_conv_create(&d, w, bias, s->name, &c, &err) != FC_OK) {
    fprintf(stderr, "bench-kernels: %s\n", err.msg);
    exit(1);
  }
  void *sc = NULL;
  if (posix_memalign(&sc, 64, fc_sparse_conv_scratch_bytes(c) + 64)) exit(1);
  fc_sparse_conv_run(c, xs, NULL, got, sc);
  fc_sparse_ref_conv(&d, x, w, bias, NULL, want);
  double mx = 1e-30, e = 0;
  for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(want[i]));
  for (int64_t co = 0; co < s->cout; co++)
    for (int64_t i = 0; i < op; i++) e = fmax(e, fabs(want[co * op + i] - got[co * d.out_cstride + i]));
  fc_sparse_conv_free(c);
  free(sc), free(w), free(bias), free(x), free(xs), free(want), free(got);
  return e / mx;
}

static void bench_shape(const shape *s, const opts *o) {
  const double rot = o->rot_mb * 1e6;
  const int64_t p = out_pixels(s);
  const double flops = 2.0 * (double)s->cout * (double)s->cin * (double)(s->k * s->k) * (double)p;
  dense dc, dm;
  dense_init(&dc, s, 0, rot);
  int use_mm = s->k == 1 && s->stride == 1 && s->pad == 0;
  if (use_mm) dense_init(&dm, s, 1, rot);
  double err = check(s, o);
  printf("%-20s  (max rel. error vs scalar reference at 90%%: %.1e; oneDNN: conv %s%s%s)\n", s->name, err, dc.impl,
         use_mm ? ", matmul " : "", use_mm ? dm.impl : "");
  double sp_t[16], dense_t = 0;
  int have_mm_pick = 0;
  for (int si = 0; si < o->nsp; si++) {
    double sp = o->sps[si];
    fc_sparse_conv_desc d;
    sparse_desc(s, o->threads, o->block, o->plain_planes, &d);
    /* sets for the rotation: each packed from its own weights */
    int64_t nnz = 0;
    sparse_set sets[64];
    floor_set floors[64];
    int nrot = 0;
    double bytes = 0;
    size_t scratch_bytes = 0;
    fc_sparse_info info = {0};
    while (nrot < 64 && (nrot == 0 || bytes < rot)) {
      sparse_set *ss = &sets[nrot];
      float *w = random_weights(s, sp, o->pattern_block), *bias = frand_buf((size_t)s->cout);
      fc_err e = {0};
      if (fc_sparse_conv_create(&d, w, bias, s->name, &ss->c, &e) != FC_OK) {
        fprintf(stderr, "bench-kernels: %s\n", e.msg);
        exit(1);
      }
      fc_sparse_conv_info(ss->c, &info);
      if (nrot == 0) nnz = info.nnz;
      ss->x = frand_buf((size_t)(s->cin * d.in_cstride));
      ss->y = frand_buf((size_t)(s->cout * d.out_cstride));
      if (fc_sparse_conv_scratch_bytes(ss->c) > scratch_bytes) scratch_bytes = fc_sparse_conv_scratch_bytes(ss->c);
      /* packed weights: a value per row and an offset per column, plus the per-block counts */
      const fc_sparse_conv *pc = ss->c;
      const int64_t cols = pc->seg_col[pc->ngroups * pc->nchunks], pairs = pc->seg_pair[pc->ngroups * pc->nchunks];
      floor_set *fs = &floors[nrot];
      fs->nin = (size_t)(s->cin * d.in_cstride + cols * (pc->R + 1) + 2 * pairs);
      fs->nout = (size_t)(s->cout * d.out_cstride);
      fs->in = frand_buf(fs->nin);
      fs->out = frand_buf(fs->nout);
      bytes += (double)info.packed * 8 + (double)(s->cin * s->h * s->w + s->cout * p) * 4;
      free(w), free(bias);
      nrot++;
    }
    void *scratch = NULL;
    if (posix_memalign(&scratch, 64, scratch_bytes + 64)) exit(1);
    memset(scratch, 0, scratch_bytes);
    /* interleaved: dense conv, (dense matmul), sparse, floor; per-call times, medians */
    enum { MAXN = 4001 };
    static double td[MAXN], tm[MAXN], ts[MAXN], tf[MAXN];
    int n = 0, rd = 0, rm = 0, rs = 0;
    double t_start = now();
    while (n < MAXN && (n < o->reps || now() - t_start < o->min_time)) {
      double t0 = now();
      dense_run(&dc, rd);
      td[n] = now() - t0;
      rd = (rd + 1) % dc.nrot;
      if (use_mm) {
        t0 = now();
        dense_run(&dm, rm);
        tm[n] = now() - t0;
        rm = (rm + 1) % dm.nrot;
      }
      sparse_set *ss = &sets[rs];
      t0 = now();
      fc_sparse_conv_run(ss->c, ss->x, NULL, ss->y, scratch);
      ts[n] = now() - t0;
      t0 = now();
      floor_run(&floors[rs]);
      tf[n] = now() - t0;
      rs = (rs + 1) % nrot;
      n++;
    }
    qsort(td, (size_t)n, sizeof(double), cmp_d);
    qsort(ts, (size_t)n, sizeof(double), cmp_d);
    qsort(tf, (size_t)n, sizeof(double), cmp_d);
    double dmed = td[n / 2], smed = ts[n / 2], fmed = tf[n / 2];
    const char *dk = "conv";
    if (use_mm) {
      qsort(tm, (size_t)n, sizeof(double), cmp_d);
      if (tm[n / 2] < dmed) dmed = tm[n / 2], dk = "matmul", have_mm_pick = 1;
    }
    sp_t[si] = smed;
    dense_t += dmed / o->nsp;
    double nzf = 2.0 * (double)nnz * (double)p;
    printf("  sparsity %4.0f%%  dense %-6s %8.3f ms %6.1f GF/s | sparse R=%d %8.3f ms  nz %6.1f GF/s  eff %7.1f GF/s"
           " | floor %6.3f ms (x%5.2f) | x%5.2f  (n=%d, rot %d/%d)\n",
           sp * 100, dk, dmed * 1e3, flops / dmed / 1e9, info.block, smed * 1e3, nzf / smed / 1e9, flops / smed / 1e9,
           fmed * 1e3, dmed / fmed, dmed / smed, n, dc.nrot, nrot);
    fflush(stdout);
    for (int r = 0; r < nrot; r++) {
      fc_sparse_conv_free(sets[r].c);
      free(sets[r].x), free(sets[r].y), free(floors[r].in), free(floors[r].out);
    }
    free(scratch);
  }
  (void)have_mm_pick;
  /* break-even: sparse time is close to linear in density, so interpolate (or extrapolate from
   * the two lowest sparsities) for the density where it equals the dense median */
  double be = -1;
  int extrap = 0;
  for (int si = 0; si + 1 < o->nsp && be < 0; si++) {
    double d0 = 1 - o->sps[si], d1 = 1 - o->sps[si + 1];
    if ((sp_t[si] - dense_t) * (sp_t[si + 1] - dense_t) <= 0 && sp_t[si] != sp_t[si + 1])
      be = 1 - (d0 + (dense_t - sp_t[si]) * (d1 - d0) / (sp_t[si + 1] - sp_t[si]));
  }
  if (be < 0 && o->nsp >= 2 && sp_t[0] < dense_t && sp_t[1] < sp_t[0]) {
    double d0 = 1 - o->sps[0], d1 = 1 - o->sps[1];
    be = 1 - (d0 + (dense_t - sp_t[0]) * (d1 - d0) / (sp_t[1] - sp_t[0]));
    extrap = 1;
    /* a line through two noisy points says little far below them: "below" the lowest instead */
    if (be < o->sps[0] - 0.2) be = -1, extrap = 0;
  }
  int faster_everywhere = 1;
  double sp_min = 1, sp_max = 0;
  for (int si = 0; si < o->nsp; si++) {
    faster_everywhere &= sp_t[si] < dense_t;
    sp_min = fmin(sp_min, o->sps[si]), sp_max = fmax(sp_max, o->sps[si]);
  }
  if (be >= 0)
    printf("  break-even sparsity: %.0f%%%s\n\n", be * 100, extrap ? " (extrapolated below the lowest measured)" : "");
  else if (faster_everywhere) /* one sparsity measured, or no trend to extrapolate */
    printf("  break-even sparsity: below %.0f%% (sparse faster at every sparsity measured)\n\n", sp_min * 100);
  else
    printf("  break-even sparsity: above %.0f%%\n\n", sp_max * 100);
}

/* --calib: for each shape and sparsity, oneDNN dense and every forced (block height, layout)
 * variant, interleaved; one CSV row per variant with the cost model's features and the measured
 * medians (tools/fit_sparse_cost.py fits the coefficients in sparse_cost.c from it). */
static void calibrate(const opts *o) {
  FILE *f = fopen(o->calib, "w");
  if (!f) {
    fprintf(stderr, "bench-kernels: cannot write %s\n", o->calib);
    exit(1);
  }
  fprintf(f, "shape,sparsity,block,layout,chosen");
  for (int i = 0; i < FC_SPARSE_NFEAT; i++) fprintf(f, ",f%d", i);
  fprintf(f, ",sparse_s,predicted_s,dense_macs,dense_bytes,dense_s,dense_predicted_s\n");
  for (size_t si = 0; si < sizeof calib_shapes / sizeof calib_shapes[0]; si++) {
    const shape *s = &calib_shapes[si];
    if (o->only && !strstr(s->name, o->only)) continue;
    dense dc;
    dense_init(&dc, s, 0, o->rot_mb * 1e6);
    int64_t p = out_pixels(s);
    double macs = (double)s->cout * (double)(s->cin * s->k * s->k) * (double)p;
    double dbytes = 4.0 * ((double)s->cout * (double)(s->cin * s->k * s->k) + (double)(s->cin * s->h * s->w) +
                           (double)s->cout * (double)p);
    for (int spi = 0; spi < o->nsp; spi++) {
      enum { MAXV = 10, SETS = 2 };
      sparse_set sets[MAXV][SETS];
      int vb[MAXV], vl[MAXV], nv = 0;
      size_t scratch_bytes = 0;
      int one = s->k == 1 && s->stride == 1;
      for (int b = 1; b <= 4; b *= 2)
        for (int l = one ? 0 : 1; l <= (one ? 0 : 3); l++) vb[nv] = b, vl[nv] = l, nv++;
      vb[nv] = 0, vl[nv] = 0, nv++; /* the cost model's own choice */
      for (int v = 0; v < nv; v++) {
        fc_sparse_conv_desc d;
        sparse_desc_layout(s, 1, vb[v], vl[v], &d);
        for (int r = 0; r < SETS; r++) {
          sparse_set *ss = &sets[v][r];
          uint64_t keep = rng;
          rng = 0x1234567ull + (uint64_t)r; /* the same weights for every variant */
          float *w = random_weights(s, o->sps[spi], o->pattern_block);
          rng = keep;
          fc_err e = {0};
          if (fc_sparse_conv_create(&d, w, NULL, s->name, &ss->c, &e) != FC_OK) {
            fprintf(stderr, "bench-kernels: %s\n", e.msg);
            exit(1);
          }
          free(w);
          ss->x = frand_buf((size_t)(s->cin * s->h * s->w));
          ss->y = frand_buf((size_t)(s->cout * p));
          if (fc_sparse_conv_scratch_bytes(ss->c) > scratch_bytes) scratch_bytes = fc_sparse_conv_scratch_bytes(ss->c);
        }
      }
      void *scratch = NULL; /* one for all, as in bench_shape */
      if (posix_memalign(&scratch, 64, scratch_bytes + 64)) exit(1);
      memset(scratch, 0, scratch_bytes);
      enum { N = 31 };
      static double td[N], tv[MAXV][N];
      for (int it = 0; it < N; it++) {
        double t0 = now();
        dense_run(&dc, it % dc.nrot);
        td[it] = now() - t0;
        for (int v = 0; v < nv; v++) {
          sparse_set *ss = &sets[v][it % SETS];
          t0 = now();
          fc_sparse_conv_run(ss->c, ss->x, NULL, ss->y, scratch);
          tv[v][it] = now() - t0;
        }
      }
      qsort(td, N, sizeof(double), cmp_d);
      for (int v = 0; v < nv; v++) {
        qsort(tv[v], N, sizeof(double), cmp_d);
        double feat[FC_SPARSE_NFEAT];
        fc_sparse_conv_features(sets[v][0].c, feat);
        fc_sparse_info info;
        fc_sparse_conv_info(sets[v][0].c, &info);
        fprintf(f, "%s,%.2f,%d,%d,%d", s->name, o->sps[spi], info.block, info.layout, vb[v] == 0);
        for (int i = 0; i < FC_SPARSE_NFEAT; i++) fprintf(f, ",%.6g", feat[i]);
        fprintf(f, ",%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", tv[v][N / 2], fc_sparse_conv_predict(sets[v][0].c, 1), macs,
                dbytes, td[N / 2], fc_sparse_conv_predict_dense(sets[v][0].c, 1));
        for (int r = 0; r < SETS; r++) {
          fc_sparse_conv_free(sets[v][r].c);
          free(sets[v][r].x), free(sets[v][r].y);
        }
      }
      free(scratch);
      fflush(f);
      fprintf(stderr, "calib: %s at %.0f%%\n", s->name, o->sps[spi] * 100);
    }
  }
  fclose(f);
}

static void usage(void) {
  fprintf(stderr, "usage: bench_kernels [--threads N] [--rotate-mb MB] [--reps N] [--min-time S] [--block R]\n"
                  "                     [--pattern-block R] [--shape SUBSTRING | --conv COUT,CIN,H,W,K[,STRIDE]]\n"
                  "                     [--sparsity 0.5,0.7,...] [--clock wall|cpu] [--calib FILE.csv] [--plain-planes]\n"
                  "  --conv: one layer shape of your own (square K×K kernel, padding K/2, stride 1 by default)\n"
                  "  --plain-planes: keep 196- and 49-pixel channel planes packed; by default the sparse side gets\n"
                  "                  them padded to a cache line, as the runtime stores them between sparse convs\n");
  exit(2);
}

/* --conv COUT,CIN,H,W,K[,STRIDE] into *s (name in buf); 0 when malformed or out of range. */
static int parse_conv(const char *v, shape *s, char *buf, size_t n) {
  long long co, ci, h, w, k, st = 1;
  int got = sscanf(v, "%lld,%lld,%lld,%lld,%lld,%lld", &co, &ci, &h, &w, &k, &st);
  if (got < 5 || co < 1 || ci < 1 || h < 1 || w < 1 || k < 1 || st < 1 || co > 65536 || ci > 65536 || h > 4096 ||
      w > 4096 || k > 15 || st > 8 || k > h + 2 * (k / 2) || k > w + 2 * (k / 2))
    return 0;
  snprintf(buf, n, "%lldx%lld %lldx%lld/%lld %lldx%lld", k, k, co, ci, st, h, w);
  *s = (shape){buf, co, ci, h, w, k, st, k / 2};
  return 1;
}

int main(int argc, char **argv) {
  opts o = {1, 21, 0, 1, 0, 16.0, 0.25, NULL, NULL, {0.5, 0.6, 0.7, 0.8, 0.9, 0.95}, 6};
  shape custom;
  char custom_name[96];
  int have_custom = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--threads") && v) o.threads = atoi(v), i++;
    else if (!strcmp(a, "--rotate-mb") && v) o.rot_mb = atof(v), i++;
    else if (!strcmp(a, "--reps") && v) o.reps = atoi(v), i++;
    else if (!strcmp(a, "--min-time") && v) o.min_time = atof(v), i++;
    else if (!strcmp(a, "--block") && v) o.block = atoi(v), i++;
    else if (!strcmp(a, "--pattern-block") && v) o.pattern_block = atoi(v), i++;
    else if (!strcmp(a, "--shape") && v) o.only = v, i++;
    else if (!strcmp(a, "--calib") && v) o.calib = v, i++;
    else if (!strcmp(a, "--plain-planes")) o.plain_planes = 1;
    else if (!strcmp(a, "--conv") && v) {
      if (!parse_conv(v, &custom, custom_name, sizeof custom_name)) {
        fprintf(stderr, "bench_kernels: --conv wants COUT,CIN,H,W,K[,STRIDE] (positive, K <= 15), got '%s'\n", v);
        return 2;
      }
      have_custom = 1, i++;
    }
    else if (!strcmp(a, "--clock") && v) clock_id = !strcmp(argv[++i], "cpu") ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
    else if (!strcmp(a, "--sparsity") && v) {
      o.nsp = 0;
      for (char *t = strtok(argv[++i], ","); t && o.nsp < 16; t = strtok(NULL, ",")) o.sps[o.nsp++] = atof(t);
    } else usage();
  }
  if (o.threads < 1 || o.pattern_block < 1 || o.nsp < 1) usage();
  if (o.threads > 1) clock_id = CLOCK_MONOTONIC;
  omp_set_num_threads(o.threads);
  fc_sparse_conv_desc d0;
  sparse_desc(&shapes[0], 1, 0, 1, &d0);
  printf("flopcut sparse kernels vs oneDNN dense: %d thread(s), isa %s, buffers rotate through >= %.0f MB, "
         "pattern blocks of %d, times are medians of interleaved calls (%s clock); sparse channel planes %s\n\n",
         o.threads, fc_isa_name(fc_cpu_isa()), o.rot_mb, o.pattern_block,
         clock_id == CLOCK_MONOTONIC ? "wall" : "thread CPU",
         o.plain_planes ? "packed (--plain-planes)" : "padded to a cache line as the runtime stores them (196 -> 208, 49 -> 64 floats)");
  printf("floor: the time to read the input and the packed weights and write the output once, on buffers rotated like\n"
         "the sparse ones; (x N) is dense / floor, the most any sparse kernel could show with operands this cold\n\n");
  if (o.calib) {
    calibrate(&o);
    return 0;
  }
  if (have_custom) {
    bench_shape(&custom, &o);
    return 0;
  }
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    if (!o.only || strstr(shapes[i].name, o.only)) bench_shape(&shapes[i], &o);
  return 0;
}
