/* Unit tests: every sparse kernel (scalar, AVX2, AVX-512 as the CPU allows) against the scalar
 * reference on random shapes with tails, 0/50/90/100 % sparsity, blocks, strides, pads, dilation. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "kernels/ref/sparse_ref.h"
#include "kernels/sparse/depthwise.h"
#include "kernels/sparse/sparse.h"

static uint64_t rng_state;
static float rnd_unit(void) { /* xorshift64*, uniform in [-1, 1) */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (float)((rng_state * 2685821657736338717ull) >> 40) / (float)(1 << 23) - 1.0f;
}

static float *rnd_buf(int64_t n) {
  float *p = malloc((size_t)(n ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) p[i] = rnd_unit();
  return p;
}

/* Zeroes weights at random with probability sp; with block > 1 whole runs of `block` output
 * channels share a pattern (what `prune --method block` produces), so blocks are dense. */
static void sparsify(float *w, int64_t rows, int64_t cols, double sp, int block) {
  int b = block > 1 && rows % block == 0 ? block : 1;
  for (int64_t r0 = 0; r0 < rows; r0 += b)
    for (int64_t j = 0; j < cols; j++)
      if ((rnd_unit() + 1.0f) * 0.5f < sp)
        for (int r = 0; r < b; r++) w[(r0 + r) * cols + j] = 0.0f;
}

static int close_enough(const float *a, const float *b, int64_t n) {
  float mx = 1.0f;
  for (int64_t i = 0; i < n; i++) mx = fabsf(b[i]) > mx ? fabsf(b[i]) : mx;
  for (int64_t i = 0; i < n; i++)
    if (!(fabsf(a[i] - b[i]) <= 2e-5f * mx)) {
      fprintf(stderr, "  element %lld: got %g, want %g\n", (long long)i, a[i], b[i]);
      return 0;
    }
  return 1;
}

static void *aligned_scratch(size_t n) {
  void *p = NULL;
  if (posix_memalign(&p, 64, n ? n : 64)) return NULL;
  return p;
}

typedef struct conv_case {
  int64_t cin, cout, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
} conv_case;

static const conv_case conv_cases[] = {
    {7, 5, 9, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},      /* 1×1, 63 pixels: prepared input, masked tail */
    {12, 8, 16, 20, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},   /* 1×1, 320 pixels: input read in place */
    {9, 12, 23, 17, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},   /* 1×1, 391 pixels: odd tail */
    {6, 12, 11, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   /* 3×3 same padding */
    {5, 8, 15, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},     /* 3×3 stride 2 */
    {4, 4, 14, 12, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2},    /* 3×3 dilation 2 */
    {3, 6, 13, 11, 5, 3, 2, 1, 1, 1, 1, 0, 2, 1},    /* 5×3, asymmetric stride and pads */
    {8, 16, 14, 14, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0},   /* 1×1 stride 2 (ResNet downsample) */
    {200, 12, 9, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},  /* many input channels: several K chunks */
    {600, 20, 5, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},   /* 1×1 with several K chunks, 35 pixels */
    {300, 8, 16, 32, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},  /* direct, several K chunks, prefetching */
    {3, 4, 7, 7, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3},      /* 7×7 stride 2 stem shape */
    {10, 8, 20, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   /* 3×3, rows padded 39 -> 48 (aligned phase planes) */
    {16, 6, 9, 30, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},    /* 3×3 stride 2, even width */
    {7, 9, 15, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},    /* 3×3: AVX-512 tiles of 5 to 8 vectors */
    {100, 400, 5, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},  /* 1×1 widening 4×, more rows than a chunk: unchunked when sparse */
};

static int stored_by_runs; /* cases whose kernel stored padded rows by runs */

/* The descriptor of a case's geometry (isa, threads and layout as given, the rest defaults). */
static void case_desc(const conv_case *cc, int isa, int threads, int layout, fc_sparse_conv_desc *d) {
  fc_sparse_conv_desc_init(d);
  d->cin = cc->cin, d->cout = cc->cout, d->in_h = cc->h, d->in_w = cc->w, d->k_h = cc->kh, d->k_w = cc->kw;
  d->stride_h = cc->sh, d->stride_w = cc->sw, d->dil_h = cc->dh, d->dil_w = cc->dw;
  d->pad_t = cc->pt, d->pad_l = cc->pl, d->pad_b = cc->pb, d->pad_r = cc->pr;
  d->isa = isa, d->threads = threads, d->layout = layout;
}

static void run_conv_case(const conv_case *cc, int isa, double sp, int block, int threads, int act, int use_res,
                          int layout) {
  fc_sparse_conv_desc d;
  case_desc(cc, isa, threads, layout, &d);
  d.block = block;
  if (act == 1) d.act_lo = 0.0f;
  if (act == 2) d.act_lo = 0.0f, d.act_hi = 6.0f;
  if (act == 3) d.act = FC_SPARSE_ACT_SWISH;
  if (act == 4) d.act = FC_SPARSE_ACT_HARDSWISH, d.act_lo = -5.0f; /* a clamp, then the activation */
  int64_t oh = (cc->h + cc->pt + cc->pb - cc->dh * (cc->kh - 1) - 1) / cc->sh + 1;
  int64_t ow = (cc->w + cc->pl + cc->pr - cc->dw * (cc->kw - 1) - 1) / cc->sw + 1;
  int64_t kk = cc->cin * cc->kh * cc->kw, nout = cc->cout * oh * ow;
  float *w = rnd_buf(cc->cout * kk), *x = rnd_buf(cc->cin * cc->h * cc->w), *bias = rnd_buf(cc->cout);
  float *res = use_res ? rnd_buf(nout) : NULL;
  for (int64_t i = 0; res && act == 2 && i < nout; i++) res[i] *= 8.0f; /* exercise the Relu6 ceiling */
  sparsify(w, cc->cout, kk, sp, block);
  float *want = malloc((size_t)nout * sizeof(float)), *got = malloc((size_t)nout * sizeof(float));
  fc_sparse_ref_conv(&d, x, w, bias, res, want);
  fc_sparse_conv *c = NULL;
  fc_err err = {0};
  fc_status st = fc_sparse_conv_create(&d, w, bias, "t", &c, &err);
  if (act >= 3 && isa != FC_ISA_AVX512) { /* Swish and HardSwish are fused by the AVX-512 epilogue only */
    CHECK(st == FC_ERR_UNSUPPORTED && !c);
  } else if (block && cc->cout % block) {
    CHECK(st == FC_ERR_ARG);
  } else {
    CHECK(st == FC_OK);
    if (st != FC_OK) fprintf(stderr, "  %s\n", err.msg);
  }
  if (c) {
    void *sc = aligned_scratch(fc_sparse_conv_scratch_bytes(c));
    for (int64_t i = 0; i < nout; i++) got[i] = NAN;
    fc_sparse_conv_run(c, x, res, got, sc);
    fc_sparse_info info;
    fc_sparse_conv_info(c, &info);
    int ok = close_enough(got, want, nout);
    CHECK(ok);
    /* on AVX-512 padded rows of 8 or more pixels are stored by runs, with no compaction pass */
    if (info.padded_output && isa == FC_ISA_AVX512) CHECK(ow < 8 || info.padded_output == 1);
    if (info.padded_output && isa != FC_ISA_AVX512) CHECK(info.padded_output == 2);
    if (info.padded_output == 1) stored_by_runs++;
    /* an aligned-phase request on AVX-512, stride 1, column shifts of 1..3 gets the shift kernel */
    int64_t shift = cc->dw * (cc->kw - 1) / cc->sw;
    if (layout == FC_SPARSE_ALIGNED_PHASE && isa == FC_ISA_AVX512 && block <= 1 && cc->sw == 1 && shift >= 1 &&
        shift <= 3)
      CHECK(info.layout == FC_SPARSE_ALIGNED_PHASE);
    if (!ok)
      fprintf(stderr, "  case cin=%lld cout=%lld %lldx%lld k%lldx%lld s%lld: isa=%d sp=%.2f block=%d(R=%d) threads=%d "
                      "act=%d res=%d chunks=%lld layout=%d\n",
              (long long)cc->cin, (long long)cc->cout, (long long)cc->h, (long long)cc->w, (long long)cc->kh,
              (long long)cc->kw, (long long)cc->sh, isa, sp, block, info.block, threads, act, use_res,
              (long long)info.k_chunks, layout);
    /* a second run on the same scratch gives the same answer (no state leaks between runs) */
    float *again = malloc((size_t)nout * sizeof(float));
    fc_sparse_conv_run(c, x, res, again, sc);
    CHECK(memcmp(again, got, (size_t)nout * sizeof(float)) == 0);
    free(again);
    free(sc);
    fc_sparse_conv_free(c);
  }
  free(w), free(x), free(bias), free(res), free(want), free(got);
}

static void test_sparse_conv_vs_ref(void) {
  static const double sps[] = {0.0, 0.5, 0.9, 1.0};
  static const int blocks[] = {0, 1, 2, 4};
  rng_state = 0x9e3779b97f4a7c15ull;
  for (int isa = FC_ISA_SCALAR; isa <= FC_ISA_AVX512; isa++) {
    if (!fc_cpu_supports((fc_isa)isa)) {
      fprintf(stderr, "  (sparse conv: %s not available on this CPU, skipped)\n", fc_isa_name((fc_isa)isa));
      continue;
    }
    for (size_t ci = 0; ci < sizeof conv_cases / sizeof conv_cases[0]; ci++)
      for (size_t si = 0; si < 4; si++)
        for (size_t bi = 0; bi < 4; bi++) {
          int variant = (int)(ci + si + bi);
          if (ci >= 8 && variant % 3) continue; /* the big cases: a third of the combinations keeps ASan quick */
          /* layouts: by cost, and each plane layout and in place forced in turn */
          run_conv_case(&conv_cases[ci], isa, sps[si], blocks[bi], 1 + (variant + (int)si) % 3, variant % 5, variant % 4 == 1,
                        (int)((si * 4 + bi + ci) % 6));
        }
    /* aligned phase planes (the shift kernel) on every case, sparsity and thread count; other ISAs and
       unsupported shapes fall back to plain phase planes */
    for (size_t ci = 0; ci < sizeof conv_cases / sizeof conv_cases[0]; ci++)
      for (size_t si = 0; si < 4; si++) {
        int variant = (int)(ci + si);
        run_conv_case(&conv_cases[ci], isa, sps[si], variant % 4 == 3 ? 1 : 0, 1 + variant % 3, variant % 5,
                      variant % 2 == 1, FC_SPARSE_ALIGNED_PHASE);
      }
  }
  if (fc_cpu_supports(FC_ISA_AVX512)) CHECK(stored_by_runs > 0);
}

static void test_sparse_gemm_vs_ref(void) {
  static const int64_t ms[] = {1, 3, 5, 37, 300, 320};
  rng_state = 0x1234567ull;
  for (int isa = FC_ISA_SCALAR; isa <= FC_ISA_AVX512; isa++) {
    if (!fc_cpu_supports((fc_isa)isa)) continue;
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
      for (int tb = 0; tb < 2; tb++)
        for (int si = 0; si < 3; si++) {
          fc_sparse_gemm_desc d;
          fc_sparse_gemm_desc_init(&d);
          d.m = ms[mi], d.k = 50 + si * 13, d.n = 20 + tb * 4, d.trans_b = tb, d.isa = isa, d.threads = 1 + si % 2;
          d.alpha = si == 2 ? 0.5f : 1.0f, d.beta = si == 1 ? 2.0f : 1.0f;
          if (si == 1) d.act_lo = 0.0f;
          float *b = rnd_buf(d.k * d.n), *x = rnd_buf(d.m * d.k), *bias = rnd_buf(d.n);
          sparsify(b, tb ? d.n : d.k, tb ? d.k : d.n, si == 0 ? 0.5 : 0.9, 1);
          float *want = malloc((size_t)(d.m * d.n) * sizeof(float)), *got = malloc((size_t)(d.m * d.n) * sizeof(float));
          fc_sparse_ref_gemm(&d, x, b, si == 2 ? NULL : bias, want);
          fc_sparse_gemm *g = NULL;
          fc_err err = {0};
          CHECK(fc_sparse_gemm_create(&d, b, si == 2 ? NULL : bias, "g", &g, &err) == FC_OK);
          if (g) {
            void *sc = aligned_scratch(fc_sparse_gemm_scratch_bytes(g));
            fc_sparse_gemm_run(g, x, got, sc);
            int ok = close_enough(got, want, d.m * d.n);
            CHECK(ok);
            if (!ok) fprintf(stderr, "  gemm m=%lld k=%lld n=%lld transB=%d isa=%d\n", (long long)d.m, (long long)d.k,
                             (long long)d.n, tb, isa);
            free(sc);
            fc_sparse_gemm_free(g);
          }
          free(b), free(x), free(bias), free(want), free(got);
        }
  }
}

/* Depthwise NCHW against the reference run channel by channel (a 1-in, 1-out conv each). */
static void test_depthwise_vs_ref(void) {
  static const conv_case cases[] = {
      {1, 24, 9, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 16, 15, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
      {1, 8, 12, 12, 5, 5, 1, 1, 2, 2, 4, 4, 4, 4}, {1, 5, 7, 9, 3, 3, 2, 1, 1, 1, 0, 1, 2, 1},
      /* flat planes (stride 1, same size): MobileNet's 7×7, a 5×5 on 14×14, a 1×1 plane, one-sided pads */
      {1, 12, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 6, 14, 14, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2},
      {1, 4, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 5, 8, 8, 3, 3, 1, 1, 1, 1, 0, 0, 2, 2},
  };
  rng_state = 0x5eedull;
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
    for (int si = 0; si < 4; si++) {
      const conv_case *cc = &cases[ci];
      int64_t ch = cc->cout, n = 2, kk = cc->kh * cc->kw;
      int64_t oh = (cc->h + cc->pt + cc->pb - cc->dh * (cc->kh - 1) - 1) / cc->sh + 1;
      int64_t ow = (cc->w + cc->pl + cc->pr - cc->dw * (cc->kw - 1) - 1) / cc->sw + 1;
      int64_t xs = cc->h * cc->w, ys = oh * ow;
      float *w = rnd_buf(ch * kk), *x = rnd_buf(n * ch * xs), *bias = rnd_buf(ch), *res = rnd_buf(n * ch * ys);
      sparsify(w, ch, kk, si * 0.3, 1);
      float *want = malloc((size_t)(n * ch * ys) * sizeof(float)), *got = malloc((size_t)(n * ch * ys) * sizeof(float));
      fc_sparse_conv_desc d;
      fc_sparse_conv_desc_init(&d);
      d.cin = d.cout = 1, d.in_h = cc->h, d.in_w = cc->w, d.k_h = cc->kh, d.k_w = cc->kw;
      d.stride_h = cc->sh, d.stride_w = cc->sw, d.dil_h = cc->dh, d.dil_w = cc->dw;
      d.pad_t = cc->pt, d.pad_l = cc->pl, d.pad_b = cc->pb, d.pad_r = cc->pr, d.act_lo = 0.0f, d.act_hi = 6.0f;
      for (int64_t i = 0; i < n * ch; i++)
        fc_sparse_ref_conv(&d, x + i * xs, w + (i % ch) * kk, bias + i % ch, si % 2 ? res + i * ys : NULL, want + i * ys);
      fc_dw dw = {.n = n, .c = ch, .in_h = cc->h, .in_w = cc->w, .out_h = oh, .out_w = ow, .kh = cc->kh, .kw = cc->kw,
                  .sh = cc->sh, .sw = cc->sw, .dh = cc->dh, .dw = cc->dw, .pt = cc->pt, .pl = cc->pl,
                  .lo = 0.0f, .hi = 6.0f, .threads = 1 + si % 2};
      fc_err err = {0};
      CHECK(fc_dw_create(&dw, w, bias, "dw", &err) == FC_OK);
      CHECK(dw.flat == (cc->sh == 1 && cc->sw == 1 && cc->dh == 1 && cc->dw == 1 && oh == cc->h && ow == cc->w));
      void *sc = aligned_scratch(dw.per_thread * (size_t)dw.threads);
      fc_dw_run(&dw, x, si % 2 ? res : NULL, got, sc);
      CHECK(close_enough(got, want, n * ch * ys));
      fc_dw_free(&dw);
      free(sc), free(w), free(x), free(bias), free(res), free(want), free(got);
    }
}

/* The planner's block height follows the weights' structure: one output channel per block for
 * unstructured 90 % sparsity, four for weights pruned in 4×1 blocks (ResNet-50's 256×64 1×1 shape,
 * 56×56 pixels). */
static void test_sparse_block_choice(void) {
  if (!fc_cpu_supports(FC_ISA_AVX512)) return;
  const int64_t cout = 256, cin = 64;
  float *w = malloc((size_t)(cout * cin) * sizeof(float));
  for (int structured = 0; structured <= 1; structured++) {
    rng_state = 0x2545f4914f6cdd1dull;
    for (int64_t i = 0; i < cout * cin; i++) w[i] = rnd_unit();
    sparsify(w, cout, cin, 0.9, structured ? 4 : 1);
    fc_sparse_conv_desc d;
    fc_sparse_conv_desc_init(&d);
    d.cin = cin, d.cout = cout, d.in_h = d.in_w = 56, d.k_h = d.k_w = 1, d.isa = FC_ISA_AVX512;
    fc_sparse_conv *c = NULL;
    fc_err err = {0};
    CHECK(fc_sparse_conv_create(&d, w, NULL, "b", &c, &err) == FC_OK);
    if (!c) continue;
    fc_sparse_info info;
    fc_sparse_conv_info(c, &info);
    CHECK(info.block == (structured ? 4 : 1));
    fc_sparse_conv_free(c);
  }
  free(w);
}

/* Plans case cc (AVX-512, the given threads and layout, one output channel per block) with weights
 * at sparsity sp, runs it (with a random residual when use_res) and checks it against the
 * reference; *info describes the plan (zeroed when planning failed). */
static void plan_run_check(const conv_case *cc, int threads, int layout, double sp, int use_res, fc_sparse_info *info) {
  fc_sparse_conv_desc d;
  case_desc(cc, FC_ISA_AVX512, threads, layout, &d);
  d.block = 1, d.act_lo = 0.0f;
  const int64_t oh = (cc->h + cc->pt + cc->pb - cc->dh * (cc->kh - 1) - 1) / cc->sh + 1;
  const int64_t ow = (cc->w + cc->pl + cc->pr - cc->dw * (cc->kw - 1) - 1) / cc->sw + 1;
  const int64_t kk = cc->cin * cc->kh * cc->kw, nout = cc->cout * oh * ow;
  float *w = rnd_buf(cc->cout * kk), *x = rnd_buf(cc->cin * cc->h * cc->w), *bias = rnd_buf(cc->cout);
  float *res = use_res ? rnd_buf(nout) : NULL;
  sparsify(w, cc->cout, kk, sp, 1);
  float *want = malloc((size_t)nout * sizeof(float)), *got = malloc((size_t)nout * sizeof(float));
  fc_sparse_ref_conv(&d, x, w, bias, res, want);
  fc_sparse_conv *c = NULL;
  fc_err err = {0};
  memset(info, 0, sizeof *info);
  CHECK(fc_sparse_conv_create(&d, w, bias, "t", &c, &err) == FC_OK);
  if (c) {
    fc_sparse_conv_info(c, info);
    void *sc = aligned_scratch(fc_sparse_conv_scratch_bytes(c));
    fc_sparse_conv_run(c, x, res, got, sc);
    CHECK(close_enough(got, want, nout));
    free(sc);
    fc_sparse_conv_free(c);
  }
  free(w), free(x), free(bias), free(res), free(want), free(got);
}

/* A 1×1 conv read in place takes 8-vector tiles at moderate density (≥ 24 nonzeros per block visit)
 * and 4-vector ones at 90 %: 437 pixels (27 vectors and a 5-lane tail, read masked) in 4 tiles
 * or 7 (8 at 2 threads), with a residual, matching the reference either way. */
static void test_sparse_wide_tiles_1x1(void) {
  if (!fc_cpu_supports(FC_ISA_AVX512)) return;
  const conv_case cc = {64, 24, 19, 23, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
  rng_state = 0x51ed270b2f5ee4a1ull;
  for (int dense_ish = 0; dense_ish <= 1; dense_ish++)
    for (int threads = 1; threads <= 2; threads++) {
      fc_sparse_info info;
      plan_run_check(&cc, threads, FC_SPARSE_IN_PLACE, dense_ish ? 0.5 : 0.9, 1, &info);
      CHECK(info.layout == 0);
      CHECK(info.tiles == (dense_ish ? 4 : threads == 1 ? 7 : 8)); /* 2 threads: 14 vectors each */
    }
}

/* How threads share a conv: the pixels, or (few pixels per thread) the output channels. 14×14 at 2
 * threads splits the channels of layers that do not narrow, the pixels of those that do; 7×7
 * always the channels; 1 thread never. Each plan matches the reference. */
static void test_sparse_thread_split(void) {
  static const struct {
    conv_case cc;
    int threads, want_groups;
  } cases[] = {
      {{64, 256, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, 2, 1},  /* widening 1×1 at 14×14 */
      {{256, 64, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, 2, 0},  /* narrowing: pixels */
      {{64, 64, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 2, 1},   /* 3×3, cout = cin */
      {{64, 64, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, 2, 1},   /* stride 2: 7×7 out, few pixels */
      {{64, 128, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, 2, 0},  /* stride 2 to 14×14: pixels */
      {{256, 64, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, 2, 1},    /* 7×7: channels even narrowing */
      {{64, 256, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, 1, 0},  /* one thread */
  };
  if (!fc_cpu_supports(FC_ISA_AVX512)) return; /* vectors of 16 pixels */
  rng_state = 0x2b7e151628aed2a6ull;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fc_sparse_info info;
    plan_run_check(&cases[i].cc, cases[i].threads, 0, 0.9, 0, &info);
    CHECK((info.groups > 1) == cases[i].want_groups);
    if ((info.groups > 1) != cases[i].want_groups)
      fprintf(stderr, "  thread split case %zu: %lld groups\n", i, (long long)info.groups);
  }
}

/* Planes strided apart (the runtime's padded layout): channel c of x, y and the residual at
 * c·stride, with NaN in the gaps. The result must match the packed reference, no NaN may leak in
 * from the input's gaps, and the output's gaps stay untouched. */
static void run_strided_case(const conv_case *cc, int isa, int threads, int use_res, int layout, int64_t extra,
                             int late) {
  fc_sparse_conv_desc d;
  case_desc(cc, isa, threads, layout, &d);
  d.act_lo = 0.0f;
  int64_t oh = (cc->h + cc->pt + cc->pb - cc->dh * (cc->kh - 1) - 1) / cc->sh + 1;
  int64_t ow = (cc->w + cc->pl + cc->pr - cc->dw * (cc->kw - 1) - 1) / cc->sw + 1;
  int64_t ip = cc->h * cc->w, op = oh * ow, kk = cc->cin * cc->kh * cc->kw;
  d.in_cstride = (ip + 15) / 16 * 16 + extra;
  d.out_cstride = (op + 15) / 16 * 16 + extra;
  d.res_cstride = use_res == 2 ? 0 : d.out_cstride; /* 2: a packed residual beside a padded output */
  int64_t rcs = d.res_cstride ? d.res_cstride : op;
  float *w = rnd_buf(cc->cout * kk), *x = rnd_buf(cc->cin * ip), *bias = rnd_buf(cc->cout);
  float *res = use_res ? rnd_buf(cc->cout * op) : NULL;
  sparsify(w, cc->cout, kk, 0.8, 1);
  float *want = malloc((size_t)(cc->cout * op) * sizeof(float));
  fc_sparse_ref_conv(&d, x, w, bias, res, want);
  float *xs = malloc((size_t)(cc->cin * d.in_cstride) * sizeof(float));
  float *ys = malloc((size_t)(cc->cout * d.out_cstride) * sizeof(float));
  float *rs = res ? malloc((size_t)(cc->cout * rcs) * sizeof(float)) : NULL;
  for (int64_t i = 0; i < cc->cin * d.in_cstride; i++) xs[i] = NAN;
  for (int64_t i = 0; i < cc->cout * d.out_cstride; i++) ys[i] = NAN;
  for (int64_t c = 0; c < cc->cin; c++) memcpy(xs + c * d.in_cstride, x + c * ip, (size_t)ip * sizeof(float));
  for (int64_t c = 0; rs && c < cc->cout * rcs; c++) rs[c] = NAN;
  for (int64_t c = 0; rs && c < cc->cout; c++) memcpy(rs + c * rcs, res + c * op, (size_t)op * sizeof(float));
  fc_sparse_conv *c = NULL;
  fc_err err = {0};
  if (late) { /* planned packed, then given the strides (what the runtime's planner does) */
    fc_sparse_conv_desc packed = d;
    packed.in_cstride = packed.out_cstride = packed.res_cstride = 0;
    CHECK(fc_sparse_conv_create(&packed, w, bias, "t", &c, &err) == FC_OK);
    if (c) CHECK(fc_sparse_conv_set_strides(c, d.in_cstride, d.out_cstride, d.res_cstride, "t", &err) == FC_OK);
    /* a 1×1 conv planned with a copy (misaligned planes) reads the padded planes in place */
    fc_sparse_info info;
    if (c) fc_sparse_conv_info(c, &info);
    if (c && layout == 0 && cc->kh == 1 && cc->kw == 1 && cc->sh == 1 && cc->sw == 1) CHECK(info.layout == 0);
  } else {
    CHECK(fc_sparse_conv_create(&d, w, bias, "t", &c, &err) == FC_OK);
  }
  if (c) {
    void *sc = aligned_scratch(fc_sparse_conv_scratch_bytes(c));
    fc_sparse_conv_run(c, xs, rs, ys, sc);
    int ok = 1, gaps = 1;
    for (int64_t co = 0; co < cc->cout; co++) {
      ok = ok && close_enough(ys + co * d.out_cstride, want + co * op, op);
      for (int64_t i = op; i < d.out_cstride; i++) gaps = gaps && isnan(ys[co * d.out_cstride + i]);
    }
    CHECK(ok);
    CHECK(gaps);
    if (!ok || !gaps)
      fprintf(stderr, "  strided case cin=%lld cout=%lld %lldx%lld k%lld s%lld: isa=%d threads=%d res=%d layout=%d late=%d\n",
              (long long)cc->cin, (long long)cc->cout, (long long)cc->h, (long long)cc->w, (long long)cc->kh,
              (long long)cc->sh, isa, threads, use_res, layout, late);
    free(sc);
    fc_sparse_conv_free(c);
  }
  free(w), free(x), free(bias), free(res), free(want), free(xs), free(ys), free(rs);
}

static void test_sparse_conv_channel_strides(void) {
  static const conv_case extra_cases[] = {
      {24, 40, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, /* ResNet-50 layer3's 196-pixel planes, in place */
      {40, 24, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},   /* 49 pixels: a one-lane last vector */
      {16, 12, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, /* 3×3 on padded planes (a layout copy) */
      {12, 16, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, /* 3×3 stride 2 into 49-pixel planes */
      {64, 512, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},  /* planned with an aligned copy, then read in place */
  };
  rng_state = 0x5151c0ffee123457ull;
  for (int isa = FC_ISA_SCALAR; isa <= FC_ISA_AVX512; isa++) {
    if (!fc_cpu_supports((fc_isa)isa)) continue;
    for (size_t ci = 0; ci < sizeof extra_cases / sizeof extra_cases[0]; ci++)
      for (int v = 0; v < 6; v++)
        for (int late = 0; late < 2; late++)
          run_strided_case(&extra_cases[ci], isa, 1 + v % 2, v % 3, v < 3 ? 0 : (int)(ci + (size_t)v) % 6, v == 5 ? 16 : 0,
                           late);
    for (size_t ci = 0; ci < sizeof conv_cases / sizeof conv_cases[0]; ci++)
      run_strided_case(&conv_cases[ci], isa, 1 + (int)ci % 2, (int)ci % 3, (int)ci % 6, ci % 4 == 3 ? 16 : 0,
                       (int)ci % 2);
  }
  /* a stride shorter than a plane is refused */
  fc_sparse_conv_desc d;
  fc_sparse_conv_desc_init(&d);
  float w[4] = {1, 1, 1, 1};
  fc_sparse_conv *c = NULL;
  fc_err err = {0};
  d.cin = 2, d.cout = 2, d.in_h = 3, d.in_w = 3, d.in_cstride = 8;
  CHECK(fc_sparse_conv_create(&d, w, NULL, "n", &c, &err) == FC_ERR_ARG && !c);
  CHECK(strstr(err.msg, "stride") != NULL);
  d.in_cstride = 0;
  fc_err_clear(&err);
  CHECK(fc_sparse_conv_create(&d, w, NULL, "n", &c, &err) == FC_OK && c);
  if (c) CHECK(fc_sparse_conv_set_strides(c, 0, 7, 0, "n", &err) == FC_ERR_ARG);
  fc_sparse_conv_free(c);
}

static void test_sparse_bad_input(void) {
  fc_sparse_conv_desc d;
  fc_sparse_conv_desc_init(&d);
  float w[64] = {1};
  fc_sparse_conv *c = NULL;
  fc_err err = {0};
  d.cin = 1, d.cout = 1, d.in_h = 2, d.in_w = 2, d.k_h = 3, d.k_w = 3;
  CHECK(fc_sparse_conv_create(&d, w, NULL, "n", &c, &err) == FC_ERR_SHAPE && !c);
  CHECK(strstr(err.msg, "n:") == err.msg);
  fc_err_clear(&err);
  d.k_h = d.k_w = 1, d.stride_h = 0;
  CHECK(fc_sparse_conv_create(&d, w, NULL, "n", &c, &err) == FC_ERR_ARG && !c);
  fc_err_clear(&err);
  d.stride_h = 1, d.cin = -4;
  CHECK(fc_sparse_conv_create(&d, w, NULL, "n", &c, &err) == FC_ERR_ARG && !c);
  fc_err_clear(&err);
  d.cin = (int64_t)1 << 40;
  CHECK(fc_sparse_conv_create(&d, w, NULL, "n", &c, &err) == FC_ERR_UNSUPPORTED && !c);
  fc_err_clear(&err);
  d.cin = 1, d.cout = 6, d.block = 4;
  CHECK(fc_sparse_conv_create(&d, w, NULL, "n", &c, &err) == FC_ERR_ARG && !c);
  fc_sparse_gemm_desc gd;
  fc_sparse_gemm_desc_init(&gd);
  fc_sparse_gemm *g = NULL;
  fc_err_clear(&err);
  gd.m = 0, gd.k = 2, gd.n = 2;
  CHECK(fc_sparse_gemm_create(&gd, w, NULL, "g", &g, &err) == FC_ERR_ARG && !g);
}

TEST_TABLE(fc_tests_sparse) = {
    {"sparse_conv_vs_ref", test_sparse_conv_vs_ref},
    {"sparse_gemm_vs_ref", test_sparse_gemm_vs_ref},
    {"depthwise_vs_ref", test_depthwise_vs_ref},
    {"sparse_block_choice", test_sparse_block_choice},
    {"sparse_wide_tiles_1x1", test_sparse_wide_tiles_1x1},
    {"sparse_thread_split", test_sparse_thread_split},
    {"sparse_bad_input", test_sparse_bad_input},
    {"sparse_conv_channel_strides", test_sparse_conv_channel_strides},
    {NULL, NULL},
};
