/* Planning a sparse convolution: validate the geometry, lay out the prepared input, choose the
 * output-channel block height, and pack the nonzeros by thread group and input-channel chunk. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/sparse/sparse_internal.h"
#include "util/mem.h"

void fc_sparse_conv_desc_init(fc_sparse_conv_desc *d) {
  memset(d, 0, sizeof *d);
  d->k_h = d->k_w = d->stride_h = d->stride_w = d->dil_h = d->dil_w = 1;
  d->act_lo = -INFINITY;
  d->act_hi = INFINITY;
  d->threads = 1;
  d->isa = -1;
}

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* Packed columns if output channels are grouped r at a time: a column is kept when any row of the
 * block has a nonzero there. */
static int64_t block_cols(const float *w, int64_t cout, int64_t kk, int r) {
  int64_t cols = 0;
  for (int64_t b = 0; b < cout / r; b++)
    for (int64_t j = 0; j < kk; j++) {
      int any = 0;
      for (int rr = 0; rr < r && !any; rr++) any = w[(b * r + rr) * kk + j] != 0.0f;
      cols += any;
    }
  return cols;
}

/* Index of (phase, off) in the class lists, adding it if new; -1 if the list is full. */
static int64_t class_of(int64_t *phase, int64_t *off, int64_t *n, int64_t ph, int64_t o) {
  for (int64_t i = 0; i < *n; i++)
    if (phase[i] == ph && off[i] == o) return i;
  if (*n >= 64) return -1;
  phase[*n] = ph;
  off[*n] = o;
  return (*n)++;
}

/* Lays out the planes (see sparse_internal.h for the three layouts). */
static void plane_layout(fc_sparse_conv *c, int layout) {
  const fc_sparse_conv_desc *d = &c->d;
  int64_t vw = c->vw;
  c->layout = layout;
  c->nrc = c->ncc = 0;
  for (int64_t k = 0; k < d->k_h; k++) {
    int64_t pos = d->dil_h * k;
    class_of(c->rc_phase, c->rc_off, &c->nrc, pos % d->stride_h, layout == FC_SPARSE_TAP_PLANES ? pos / d->stride_h : 0);
  }
  for (int64_t k = 0; k < d->k_w; k++) {
    int64_t pos = d->dil_w * k;
    class_of(c->cc_phase, c->cc_off, &c->ncc, pos % d->stride_w, fc_sparse_is_phase(layout) ? 0 : pos / d->stride_w);
  }
  c->max_roff = layout == FC_SPARSE_TAP_PLANES ? 0 : d->dil_h * (d->k_h - 1) / d->stride_h;
  c->max_coff = fc_sparse_is_phase(layout) ? d->dil_w * (d->k_w - 1) / d->stride_w : 0;
  c->hq = c->out_h + c->max_roff;
  c->wq = layout == FC_SPARSE_SHIFT_PLANES     ? round_up(c->out_w, vw)
          : layout == FC_SPARSE_ALIGNED_PHASE ? round_up(c->out_w + c->max_coff, vw)
                                              : c->out_w + c->max_coff;
  /* Phase planes at column stride 1 share padding between rows: a row's right padding columns read
   * the next row's left ones, zeros as well, so rows are pad_r floats shorter and only the last
   * row's right padding follows the plane (3×3 on 7×7: 8 floats, 56 pixels in 4 vectors; two of the
   * nine taps' loads aligned instead of one; 512×512 at 70-95 %: 0.92-0.94 of the time at 1 and 2
   * threads, one process, both in turn). */
  const int64_t shared = layout == FC_SPARSE_PHASE_PLANES && d->stride_w == 1 && d->pad_r <= d->pad_l ? d->pad_r : 0;
  c->wq -= shared;
  c->ncls = layout == FC_SPARSE_ALIGNED_PHASE ? (int)c->max_coff + 1 : 1;
  c->plane_stride = round_up(c->hq * c->wq + shared, vw);
  c->ci_stride = c->plane_stride * c->nrc * c->ncc;
  /* Channels an odd number of 64-byte lines apart, so that a chunk's channel windows spread over all
   * 64 L1 sets: 14×14 planes are 256 floats (16 lines), which put every channel's window on the same
   * 4 set positions, 16 windows per 12-way set for a 64-channel chunk (256×256 3×3 on 14×14 at 90 %:
   * 0.73 -> 0.675 ms; other shapes unchanged). */
  if ((c->ci_stride * 4 / 64) % 2 == 0) c->ci_stride += 16;
  c->out_direct = c->wq == c->out_w;
  c->q = c->out_h * c->wq;
  /* a tap may read up to max_coff past its plane's last row (into the next plane, or the slack) */
  c->xbuf_floats = d->cin * c->ci_stride + round_up(c->max_coff + vw, vw);
}

/* The input read in place: channel ci's row of pixels at ci·P. */
static void direct_layout(fc_sparse_conv *c) {
  const fc_sparse_conv_desc *d = &c->d;
  int64_t p = d->in_h * d->in_w;
  c->direct = 1;
  c->layout = 0;
  c->hq = d->in_h;
  c->wq = d->in_w;
  c->plane_stride = c->ci_stride = c->in_cs;
  c->nrc = c->ncc = 1;
  c->max_roff = c->max_coff = 0;
  c->out_direct = 1;
  c->q = p;
  c->xbuf_floats = d->cin * c->in_cs;
}

/* Aligned phase planes need the AVX-512 shift kernel, one output channel per block and column
 * shifts of 1..3 within a phase plane. Stride 1 only: with stride 2 there are 4 planes per channel,
 * so 2-4× more K chunks, and the shorter per-shift groups cost more than the aligned loads save
 * (ResNet-50's 3×3/2 layers: 0.80 -> 0.98 ms, 0.75 -> 1.56 ms; 3×3/1: 0.66 -> 0.64, 0.59 -> 0.54,
 * 0.66 -> 0.57 ms at 90 %, `lay`-style A/B in one process). */
static int aligned_phase_possible(const fc_sparse_conv *c) {
  const fc_sparse_conv_desc *d = &c->d;
  int64_t max_shift = d->dil_w * (d->k_w - 1) / d->stride_w;
#ifdef FC_HAVE_X86_KERNELS
  return c->isa == FC_ISA_AVX512 && (d->block == 0 || d->block == 1) && d->stride_w == 1 && max_shift >= 1 &&
         max_shift <= 3;
#else
  (void)max_shift;
  return 0;
#endif
}

/* The channel strides (0 = packed) into c->in_cs, out_cs, res_cs; out_h, out_w must be set. */
static fc_status resolve_strides(fc_sparse_conv *c, int64_t in_cs, int64_t out_cs, int64_t res_cs, const char *name,
                                 fc_err *err) {
  const fc_sparse_conv_desc *d = &c->d;
  const int64_t ip = d->in_h * d->in_w, op = c->out_h * c->out_w, lim = (int64_t)1 << 30;
  in_cs = in_cs ? in_cs : ip;
  out_cs = out_cs ? out_cs : op;
  res_cs = res_cs ? res_cs : op;
  if (in_cs < ip || out_cs < op || res_cs < op)
    return fc_fail(err, FC_ERR_ARG, "%s: sparse conv channel strides shorter than a channel's plane", name);
  if (in_cs > lim || out_cs > lim || res_cs > lim)
    return fc_fail(err, FC_ERR_UNSUPPORTED, "%s: sparse conv channel strides beyond the supported range", name);
  c->in_cs = in_cs, c->out_cs = out_cs, c->res_cs = res_cs;
  return FC_OK;
}

/* Geometry and layout; everything that does not depend on the weights. */
static fc_status plan_geometry(fc_sparse_conv *c, const char *name, fc_err *err) {
  const fc_sparse_conv_desc *d = &c->d;
  if (d->cin < 1 || d->cout < 1 || d->in_h < 1 || d->in_w < 1 || d->k_h < 1 || d->k_w < 1 || d->stride_h < 1 ||
      d->stride_w < 1 || d->dil_h < 1 || d->dil_w < 1 || d->pad_t < 0 || d->pad_l < 0 || d->pad_b < 0 || d->pad_r < 0 ||
      d->threads < 1)
    return fc_fail(err, FC_ERR_ARG, "%s: sparse conv needs positive sizes, strides and dilations and non-negative pads",
                   name);
  const int64_t lim = (int64_t)1 << 24;
  if (d->cin > lim || d->cout > lim || d->in_h > lim || d->in_w > lim || d->k_h > 64 || d->k_w > 64 ||
      d->stride_h > 64 || d->stride_w > 64 || d->dil_h > 64 || d->dil_w > 64 || d->pad_t > lim || d->pad_l > lim ||
      d->pad_b > lim || d->pad_r > lim)
    return fc_fail(err, FC_ERR_UNSUPPORTED, "%s: sparse conv geometry beyond the supported range", name);
  int64_t span_h = d->dil_h * (d->k_h - 1) + 1, span_w = d->dil_w * (d->k_w - 1) + 1;
  int64_t ph = d->in_h + d->pad_t + d->pad_b, pw = d->in_w + d->pad_l + d->pad_r;
  if (ph < span_h || pw < span_w)
    return fc_fail(err, FC_ERR_SHAPE, "%s: kernel (with dilation) larger than the padded input", name);
  c->out_h = (ph - span_h) / d->stride_h + 1;
  c->out_w = (pw - span_w) / d->stride_w + 1;
  fc_status st = resolve_strides(c, d->in_cstride, d->out_cstride, d->res_cstride, name, err);
  if (st) return st;
  int isa = d->isa < 0 ? (int)fc_cpu_isa() : d->isa;
  if (isa > FC_ISA_AVX512 || !fc_cpu_supports((fc_isa)isa))
    return fc_fail(err, FC_ERR_UNSUPPORTED, "%s: requested ISA %d is not available on this CPU", name, isa);
  c->isa = (fc_isa)isa;
  c->vw = fc_spmm_vw(c->isa);
  if (d->act < FC_SPARSE_ACT_NONE || d->act > FC_SPARSE_ACT_HARDSWISH)
    return fc_fail(err, FC_ERR_ARG, "%s: unknown sparse conv activation %d", name, d->act);
  if (d->act != FC_SPARSE_ACT_NONE && c->isa != FC_ISA_AVX512)
    return fc_fail(err, FC_ERR_UNSUPPORTED, "%s: a fused Swish or HardSwish needs the AVX-512 kernels", name);

  int one = d->k_h == 1 && d->k_w == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_t == 0 && d->pad_l == 0 &&
            d->pad_b == 0 && d->pad_r == 0;
  /* the input can be read in place (unless its rows are a multiple of 4 KB apart, which would
   * pile them onto the same few L1 sets); whether that beats an aligned copy is the cost model's call */
  c->direct = one && (c->in_cs * 4) % 4096 != 0 && d->layout != FC_SPARSE_SHIFT_PLANES &&
              d->layout != FC_SPARSE_TAP_PLANES && d->layout != FC_SPARSE_PHASE_PLANES;
  if (c->direct) {
    direct_layout(c);
  } else {
    plane_layout(c, FC_SPARSE_SHIFT_PLANES);
    if (c->nrc * c->ncc > 64) return fc_fail(err, FC_ERR_UNSUPPORTED, "%s: too many distinct kernel taps", name);
  }
  if (c->xbuf_floats > INT32_MAX || c->out_h * c->out_w > lim * 64)
    return fc_fail(err, FC_ERR_UNSUPPORTED, "%s: sparse conv input too large for 32-bit offsets", name);
  return FC_OK;
}

/* Nonzeros a block visit gets, on average, from K chunks of kc input channels. */
static double visit_nonzeros(const fc_sparse_conv *c, int64_t kc) {
  return (double)c->nnz / (double)c->d.cout * (double)kc / (double)c->d.cin;
}

int fc_sparse_tile_vectors(const fc_sparse_conv *c, int r) {
  const fc_sparse_conv_desc *d = &c->d;
  int t = fc_spmm_tvec(c->isa, r);
  /* AVX-512, one channel per block, planes at stride 1 (3×3 layers): tiles of 8 vectors, not 4,
   * halve the halo rows each tile re-reads and the index and broadcast loads per FMA (6-15 %
   * faster on ResNet-50's 3×3 shapes). Not at stride 2 (no gain), nor for 1×1 layers: their chunks
   * get half as many rows, and the partial sums between chunks cost more than the tile saves. */
  if (c->isa == FC_ISA_AVX512 && r == 1 && !c->direct && d->stride_h == 1 && d->stride_w == 1 &&
      d->k_h * d->k_w > 1)
    t *= 2;
  /* 1×1 layers read in place, at moderate density: 8-vector tiles too, when the image has more than
   * 4 vectors of pixels, a K chunk of input rows still fits L1, and a block visit still gets ≥ 24
   * nonzeros (per-nonzero broadcasts and offsets amortised over twice the pixels) */
  if (c->isa == FC_ISA_AVX512 && r == 1 && c->direct && c->q > (int64_t)t * c->vw) {
    const int64_t tw8 = 2 * (int64_t)t * c->vw, kc8 = fc_sparse_chunk_rows(c, tw8);
    if (kc8 * tw8 * 4 <= FC_SPARSE_L1_BUDGET && visit_nonzeros(c, kc8) >= 24.0) t *= 2;
  }
  return t;
}

int64_t fc_sparse_chunk_rows(const fc_sparse_conv *c, int64_t tw) {
  /* a chunk's input window for one tile stays in L1 */
  int64_t win = c->direct ? tw : c->nrc * c->ncc * (tw + c->max_roff * c->wq);
  /* multi-tap layers, whose 8-vector tiles make each channel's window twice as long, do better with
   * three quarters of L1 for it (3×3 ResNet-50 shapes 2-5 % faster at 36 KB than at 24, slower at
   * 30 or 42; in the network 32 and 40 were no better); 1×1 layers take 32 KB */
  int64_t budget = c->d.k_h * c->d.k_w > 1 && !c->direct ? FC_SPARSE_L1_BUDGET_TAPS : FC_SPARSE_L1_BUDGET;
  const char *env = getenv("FLOPCUT_SPARSE_L1KB");
  if (env && atoi(env) > 0) budget = (int64_t)atoi(env) * 1024;
  int64_t kc = budget / (win * 4);
  if (kc < 1) kc = 1;
  if (kc > c->d.cin) kc = c->d.cin;
  /* Except: a 1×1 layer that widens 4× or more and would visit each output channel's partial sums for
   * under 20 nonzeros per chunk reads its whole input window per tile, even out of L1 (90 %:
   * 512×128 at 28×28 0.76 of the chunked time, 1024×256 at 14×14 0.88, 2048×512 at 7×7 ±3 %; at 70 %
   * and below, more nonzeros per visit, chunks win: 2048×512 1.1-1.2× slower unchunked). */
  if (c->d.k_h * c->d.k_w == 1 && (c->direct || c->nrc * c->ncc == 1) && c->d.cout >= 4 * c->d.cin &&
      visit_nonzeros(c, kc) < 20.0)
    return c->d.cin;
  return kc;
}

/* Splits blocks [0, nblk) into ngroups ranges of about equal packed columns. */
static void split_groups(const int64_t *blk_cols, int64_t nblk, int64_t ngroups, int64_t *bounds) {
  int64_t total = 0;
  for (int64_t b = 0; b < nblk; b++) total += blk_cols[b];
  bounds[0] = 0;
  int64_t acc = 0, g = 1;
  for (int64_t b = 0; b < nblk && g < ngroups; b++) {
    acc += blk_cols[b];
    while (g < ngroups && acc * ngroups >= total * g) bounds[g++] = b + 1;
  }
  while (g < ngroups) bounds[g++] = nblk;
  bounds[ngroups] = nblk;
}

/* Tiles of at most T vectors: the nvec vectors of pixels split into `parts` equal runs (one per
 * thread), each run into tiles of as equal a vector count as possible. */
static fc_status plan_tiles(fc_sparse_conv *c, int64_t nvec, int64_t parts) {
  int64_t ntiles = 0;
  for (int64_t k = 0; k < parts; k++) {
    int64_t v = nvec * (k + 1) / parts - nvec * k / parts;
    ntiles += (v + c->T - 1) / c->T;
  }
  c->tile_q = fc_calloc((size_t)ntiles + 1, sizeof(int64_t));
  if (!c->tile_q) return FC_ERR_NOMEM;
  c->parts = parts;
  int64_t t = 0;
  for (int64_t k = 0; k < parts; k++) {
    int64_t v0 = nvec * k / parts, v = nvec * (k + 1) / parts - v0, n = (v + c->T - 1) / c->T;
    c->part_tile[k] = t;
    for (int64_t i = 0; i < n; i++) c->tile_q[t++] = (v0 + v * i / n) * c->vw;
  }
  c->part_tile[parts] = t;
  c->tile_q[t] = c->q;
  c->ntiles = ntiles;
  return FC_OK;
}

/* The store runs of every tile's vectors (out_scatter): lane l of vector v of tile t is padded
 * pixel p = tile_q[t] + vw·v + l, row p / wq, column p % wq; columns ≥ out_w and rows ≥ out_h are
 * left out, the rest grouped into runs of consecutive lanes within one row. */
static fc_status plan_store_runs(fc_sparse_conv *c) {
  c->store = fc_calloc((size_t)(c->ntiles * c->T), sizeof(fc_spmm_store));
  if (!c->store) return FC_ERR_NOMEM;
  for (int64_t t = 0; t < c->ntiles; t++)
    for (int64_t v = 0; v < c->T; v++) {
      fc_spmm_store *st = &c->store[t * c->T + v];
      int k = -1;
      int64_t prev_row = -1;
      for (int64_t l = 0; l < c->vw; l++) {
        int64_t p = c->tile_q[t] + c->vw * v + l, oh = p / c->wq, ow = p % c->wq;
        if (p >= c->q || ow >= c->out_w) {
          prev_row = -1;
          continue;
        }
        if (oh != prev_row) { /* a new run: lane l goes to oh·out_w + ow */
          k++;
          if (k >= FC_SPMM_RUNS) return FC_ERR_UNSUPPORTED; /* rows too short; not planned so */
          st->off[k] = (int32_t)(oh * c->out_w + ow - l);
          prev_row = oh;
        }
        st->mask[k] |= (uint16_t)(1u << l);
      }
    }
  return FC_OK;
}

static fc_status pack(fc_sparse_conv *c, const float *w, const char *name, fc_err *err) {
  const fc_sparse_conv_desc *d = &c->d;
  const int64_t kk = d->cin * d->k_h * d->k_w, khw = d->k_h * d->k_w, R = c->R, nblk = d->cout / R;
  /* column offset for each (ci, kh, kw), relative to the tile's first input pixel */
  int64_t *coloff = fc_calloc((size_t)kk, sizeof *coloff), *blk_cols = fc_calloc((size_t)nblk, sizeof(int64_t));
  int64_t *bounds = fc_calloc((size_t)c->ngroups + 1, sizeof(int64_t));
  int64_t *cnt = fc_calloc((size_t)nblk, sizeof(int64_t)), *order = fc_calloc((size_t)nblk, sizeof(int64_t));
  int64_t *hist = fc_calloc((size_t)c->kc * khw + 2, sizeof(int64_t));
  int64_t nseg = c->ngroups * c->nchunks;
  c->seg_pair = fc_calloc((size_t)nseg + 1, sizeof(int64_t));
  c->seg_col = fc_calloc((size_t)nseg + 1, sizeof(int64_t));
  c->pair_co = fc_calloc((size_t)(nblk * c->nchunks) + 1, sizeof(int32_t));
  c->pair_n = fc_calloc((size_t)(nblk * c->nchunks) + 1, sizeof(int32_t));
  c->vals = fc_calloc((size_t)(c->ncols * R) + 1, sizeof(float));
  c->offs = fc_calloc((size_t)c->ncols + 1, sizeof(int32_t));
  const int by_shift = !c->direct && c->layout == FC_SPARSE_ALIGNED_PHASE;
  if (by_shift) c->pair_cls = fc_calloc((size_t)(nblk * c->nchunks + 1) * 4, sizeof(int32_t));
  if (!coloff || !blk_cols || !bounds || !cnt || !order || !hist || !c->seg_pair || !c->seg_col ||
      !c->pair_co || !c->pair_n || !c->vals || !c->offs || (by_shift && !c->pair_cls)) {
    free(coloff), free(blk_cols), free(bounds), free(cnt), free(order), free(hist);
    return fc_fail(err, FC_ERR_NOMEM, "%s: out of memory packing sparse weights", name);
  }
  for (int64_t ci = 0; ci < d->cin; ci++)
    for (int64_t kh = 0; kh < d->k_h; kh++)
      for (int64_t kw = 0; kw < d->k_w; kw++) {
        int64_t o = ci * c->ci_stride;
        if (!c->direct) {
          int64_t rp = d->dil_h * kh, cp = d->dil_w * kw, roff = rp / d->stride_h, coff = cp / d->stride_w;
          int tap = c->layout == FC_SPARSE_TAP_PLANES, phase = fc_sparse_is_phase(c->layout);
          int64_t r = class_of(c->rc_phase, c->rc_off, &c->nrc, rp % d->stride_h, tap ? roff : 0);
          int64_t cc = class_of(c->cc_phase, c->cc_off, &c->ncc, cp % d->stride_w, phase ? 0 : coff);
          o += (r * c->ncc + cc) * c->plane_stride + (tap ? 0 : roff * c->wq) + (phase ? coff : 0);
        }
        coloff[(ci * d->k_h + kh) * d->k_w + kw] = o;
      }
  for (int64_t b = 0; b < nblk; b++)
    for (int64_t j = 0; j < kk; j++) {
      int any = 0;
      for (int64_t r = 0; r < R && !any; r++) any = w[(b * R + r) * kk + j] != 0.0f;
      blk_cols[b] += any;
    }
  split_groups(blk_cols, nblk, c->ngroups, bounds);
  int64_t np = 0, ncol = 0;
  for (int64_t g = 0; g < c->ngroups; g++)
    for (int64_t ch = 0; ch < c->nchunks; ch++) {
      int64_t s = g * c->nchunks + ch;
      c->seg_pair[s] = np;
      c->seg_col[s] = ncol;
      int64_t j0 = ch * c->kc * khw, j1 = (ch + 1) * c->kc * khw;
      if (j1 > kk) j1 = kk;
      int64_t maxn = j1 - j0;
      memset(hist, 0, (size_t)(maxn + 2) * sizeof(int64_t));
      for (int64_t b = bounds[g]; b < bounds[g + 1]; b++) {
        int64_t n = 0;
        for (int64_t j = j0; j < j1; j++) {
          int any = 0;
          for (int64_t r = 0; r < R && !any; r++) any = w[(b * R + r) * kk + j] != 0.0f;
          n += any;
        }
        cnt[b] = n;
        hist[n + 1]++;
      }
      /* blocks in order of column count, so a run of equal loop trip counts keeps the branch
       * predictor right (a mispredicted loop exit per block costs as much as several columns) */
      for (int64_t n = 1; n <= maxn + 1; n++) hist[n] += hist[n - 1];
      for (int64_t b = bounds[g]; b < bounds[g + 1]; b++) order[bounds[g] + hist[cnt[b]]++] = b;
      for (int64_t i = bounds[g]; i < bounds[g + 1]; i++) {
        int64_t b = order[i];
        if (cnt[b] == 0) continue; /* nothing to add: init/final handled below */
        c->pair_co[np] = (int32_t)(b * R);
        c->pair_n[np] = (int32_t)cnt[b];
        /* the shift kernel takes the columns grouped by shift (offset mod the vector width) */
        for (int sh = 0; sh < (by_shift ? c->ncls : 1); sh++)
          for (int64_t j = j0; j < j1; j++) {
            int any = 0;
            for (int64_t r = 0; r < R && !any; r++) any = w[(b * R + r) * kk + j] != 0.0f;
            if (!any || (by_shift && coloff[j] % c->vw != sh)) continue;
            for (int64_t r = 0; r < R; r++) c->vals[ncol * R + r] = w[(b * R + r) * kk + j];
            c->offs[ncol] = (int32_t)coloff[j];
            if (by_shift) c->pair_cls[np * 4 + sh]++;
            ncol++;
          }
        np++;
      }
      /* blocks with no columns in this chunk still need their init (bias) and final (epilogue)
       * passes: they get a pair with n = 0, only in the first and last chunk */
      if (ch == 0 || ch == c->nchunks - 1)
        for (int64_t i = bounds[g]; i < bounds[g + 1]; i++) {
          int64_t b = order[i];
          if (cnt[b] != 0) continue;
          c->pair_co[np] = (int32_t)(b * R);
          c->pair_n[np] = 0;
          np++;
        }
    }
  c->seg_pair[nseg] = np;
  c->seg_col[nseg] = ncol;
  free(coloff), free(blk_cols), free(bounds), free(cnt), free(order), free(hist);
  return FC_OK;
}

/* The pieces of each column class's plane rows for the AVX-512 layout (see fc_row_chunk), when the
 * rows fit FC_ROW_CHUNKS vectors and the column stride is 1 or 2; c->row_chunks stays NULL else. */
static fc_status plan_row_chunks(fc_sparse_conv *c) {
  const fc_sparse_conv_desc *d = &c->d;
  const int64_t sw = d->stride_w;
  if (c->direct || c->isa != FC_ISA_AVX512 || sw > 2 || c->wq > 16 * FC_ROW_CHUNKS) return FC_OK;
  c->nrow_chunks = (int)((c->wq + 15) / 16);
  c->row_chunks = fc_calloc((size_t)(c->ncc * FC_ROW_CHUNKS), sizeof(fc_row_chunk));
  if (!c->row_chunks) return FC_ERR_NOMEM;
  for (int64_t cc = 0; cc < c->ncc; cc++) {
    int64_t c0, j0, j1;
    fc_sparse_col_range(c, cc, &c0, &j0, &j1);
    for (int k = 0; k < c->nrow_chunks; k++) {
      fc_row_chunk *ch = &c->row_chunks[cc * FC_ROW_CHUNKS + k];
      const int64_t jb = 16 * (int64_t)k, js = j0 > jb ? j0 : jb, je = j1 < jb + 16 ? j1 : jb + 16;
      for (int l = 0; l < 16; l++)
        if (jb + l < c->wq) ch->mstore |= (uint16_t)(1u << l);
      if (je <= js) continue; /* padding only */
      ch->src_off = (int32_t)(sw * js + c0);
      for (int64_t j = js; j < je; j++) {
        ch->mdata |= (uint16_t)(1u << (j - jb));
        ch->idx[j - jb] = (int32_t)(sw * (j - js));
      }
      const int64_t need = sw * (je - 1 - js) + 1; /* floats read, at most 31 */
      ch->mlo = need >= 16 ? (uint16_t)0xffff : (uint16_t)((1u << need) - 1u);
      ch->mhi = need > 16 ? (uint16_t)((1u << (need - 16)) - 1u) : (uint16_t)0;
    }
  }
  return FC_OK;
}

/* A block of several output channels wins only below this share of the one-channel prediction. */
#define BLOCK_MARGIN 0.85

fc_status fc_sparse_conv_create(const fc_sparse_conv_desc *d, const float *w, const float *bias, const char *name,
                                fc_sparse_conv **out, fc_err *err) {
  *out = NULL;
  if (!name) name = "conv";
  if (!d || !w) return fc_fail(err, FC_ERR_ARG, "%s: sparse conv needs a descriptor and weights", name);
  fc_sparse_conv *c = fc_calloc(1, sizeof *c);
  if (!c) return fc_fail(err, FC_ERR_NOMEM, "%s: out of memory", name);
  c->d = *d;
  fc_status st = plan_geometry(c, name, err);
  if (st != FC_OK) {
    free(c);
    return st;
  }
  int64_t kk = d->cin * d->k_h * d->k_w, nw;
  if (!fc_mul_i64(kk, d->cout, &nw) || nw > ((int64_t)1 << 31)) {
    free(c);
    return fc_fail(err, FC_ERR_UNSUPPORTED, "%s: too many weights for a sparse conv", name);
  }
  for (int64_t i = 0; i < nw; i++) c->nnz += w[i] != 0.0f;
  {
    /* in place, padding columns, extra planes or unaligned loads: whichever the cost model prefers */
    int can_direct = c->direct, can_aligned_phase = aligned_phase_possible(c);
    int best_layout = d->layout >= FC_SPARSE_SHIFT_PLANES && d->layout <= FC_SPARSE_ALIGNED_PHASE &&
                              d->layout != FC_SPARSE_IN_PLACE
                          ? d->layout
                          : 0;
    if (best_layout == FC_SPARSE_ALIGNED_PHASE && !can_aligned_phase) best_layout = FC_SPARSE_PHASE_PLANES;
    if (!can_direct && !best_layout) best_layout = FC_SPARSE_SHIFT_PLANES; /* in place asked for, not possible */
    double best_cost = can_direct ? fc_sparse_layout_cost(c, c->nnz) : -1;
    if (d->layout <= 0)
      for (int l = FC_SPARSE_SHIFT_PLANES; l <= FC_SPARSE_ALIGNED_PHASE; l++) {
        if (l == FC_SPARSE_IN_PLACE || (l == FC_SPARSE_ALIGNED_PHASE && !can_aligned_phase)) continue;
        c->direct = 0;
        plane_layout(c, l);
        double cost = fc_sparse_layout_cost(c, c->nnz);
        if (best_cost < 0 || cost < best_cost) best_cost = cost, best_layout = l;
      }
    if (best_layout) {
      c->direct = 0;
      plane_layout(c, best_layout);
    } else {
      direct_layout(c);
    }
    if (c->nrc * c->ncc > 64 || c->xbuf_floats > INT32_MAX) {
      free(c);
      return fc_fail(err, FC_ERR_UNSUPPORTED, "%s: sparse conv input too large for 32-bit offsets", name);
    }
  }
  /* block height: the cheapest packed form by the measured per-column cost */
  int cand[3] = {1, 2, 4};
  double best = -1;
  const int shift_kernel = !c->direct && c->layout == FC_SPARSE_ALIGNED_PHASE;
  for (int i = 0; i < 3; i++) {
    int r = cand[i];
    if (d->block && d->block != r) continue;
    if (shift_kernel && r != 1) continue; /* the shift kernel packs one output channel per block */
    if (d->cout % r) continue;
    int64_t cols = r == 1 ? c->nnz : block_cols(w, d->cout, kk, r);
    double cost = fc_sparse_block_cost(c, cols, r);
    /* Taller blocks must be predicted clearly cheaper: on unstructured 90 % weights the model put
     * R = 2 at 0.94 of R = 1 on five ResNet-50 1×1 shapes where R = 1 measured 7-21 % faster (an
     * in-process A/B, 1 and 2 threads). Weights pruned in blocks still get their blocks: their
     * packed columns shrink by the block height. */
    if (r > 1) cost /= BLOCK_MARGIN;
    if (best < 0 || cost < best) {
      best = cost;
      c->R = r;
      c->ncols = cols;
    }
  }
  if (best < 0) {
    free(c);
    return fc_fail(err, FC_ERR_ARG, "%s: block %d does not divide %lld output channels", name, d->block,
                   (long long)d->cout);
  }
  c->T = fc_sparse_tile_vectors(c, c->R);
  c->tw = (int64_t)c->T * c->vw;
  c->fn = fc_spmm_kernel(c->isa, c->R);
#ifdef FC_HAVE_X86_KERNELS
  if (shift_kernel) c->fn = fc_spmm_avx512_shift;
#endif
  c->kc = fc_sparse_chunk_rows(c, c->tw);
  c->nchunks = (d->cin + c->kc - 1) / c->kc;
  c->ngroups = 1;
  /* Under 4 vectors of pixels per thread: split the output channels instead, into 4 groups per
   * thread, so that a thread done early takes the groups another has not started (sparse_run.c).
   * One group per thread left the threads' kernel phases 10-25 % apart on ResNet-50's 7×7 layers
   * at 2 threads; 4 groups cut the summed imbalance from 119 to 19-52 µs per run. Under 8 vectors
   * per thread too, for layers that do not narrow (stride 1, cout ≥ cin): 14×14 pixels split 6/7
   * vectors in tiles of 3-4, where each thread can take whole tiles of the full width and reads
   * an input no larger than its output (narrowing 1×1 layers, which would each read all of a 4×
   * larger input, lost 1.4×). ResNet-50 90 % at 2 threads: per-step sums 0.97-1.02 of the time over
   * seven runs (median 0.984; layer3's 3×3 0.87-0.98, conv3 0.94-0.96); Global MP 0.97-1.005,
   * EfficientNet-B0 0.97-0.99, MobileNetV2 0.99-1.0. */
  int64_t nvec = (c->q + c->vw - 1) / c->vw;
  const int narrows = d->cout < d->cin || d->stride_h > 1 || d->stride_w > 1;
  if (d->threads > 1 && (nvec < 4 * d->threads || (!narrows && nvec < 8 * d->threads)))
    c->ngroups = 4 * d->threads < d->cout / c->R ? 4 * d->threads : d->cout / c->R;
  if (c->ngroups < 1) c->ngroups = 1;
  c->qpad = nvec * c->vw;
  if (plan_tiles(c, nvec, c->ngroups > 1 || d->threads > 64 ? 1 : d->threads) != FC_OK) {
    free(c);
    return fc_fail(err, FC_ERR_NOMEM, "%s: out of memory", name);
  }
  c->out_scatter = fc_sparse_scatters(c);
  c->row_tiles = !c->direct && c->wq >= c->out_w + c->max_coff;
  for (int64_t t = 1; t <= c->ntiles; t++) c->row_tiles &= c->tile_q[t] % c->wq == 0;
  st = c->out_scatter ? plan_store_runs(c) : FC_OK;
  if (st == FC_OK) st = plan_row_chunks(c);
  if (st != FC_OK) {
    fc_sparse_conv_free(c);
    return fc_fail(err, st, st == FC_ERR_NOMEM ? "%s: out of memory" : "%s: output rows too short to store by runs", name);
  }
  if (bias) {
    c->bias = fc_calloc((size_t)d->cout, sizeof(float));
    if (!c->bias) {
      fc_sparse_conv_free(c);
      return fc_fail(err, FC_ERR_NOMEM, "%s: out of memory", name);
    }
    memcpy(c->bias, bias, (size_t)d->cout * sizeof(float));
  }
  st = pack(c, w, name, err);
  if (st != FC_OK) {
    fc_sparse_conv_free(c);
    return st;
  }
  size_t off = 0;
  c->off_xbuf = off;
  if (!c->direct) off += (size_t)round_up(c->xbuf_floats * 4, 64);
  c->off_yq = off;
  if (!c->out_direct && !c->out_scatter) off += (size_t)round_up(d->cout * c->qpad * 4, 64);
  c->off_acc = off;
  c->acc_bytes = c->nchunks > 1 ? (size_t)round_up(d->cout * c->tw * 4, 64) : 0;
  off += c->acc_bytes * (size_t)d->threads;
  c->scratch = off;
  *out = c;
  return FC_OK;
}

fc_status fc_sparse_conv_set_strides(fc_sparse_conv *c, int64_t in_cstride, int64_t out_cstride, int64_t res_cstride,
                                     const char *name, fc_err *err) {
  if (!name) name = "conv";
  const int64_t old_in = c->in_cs, old_out = c->out_cs, old_res = c->res_cs;
  fc_status st = resolve_strides(c, in_cstride, out_cstride, res_cstride, name, err);
  if (st) return st;
  const fc_sparse_conv_desc *d = &c->d;
  /* A 1×1 conv whose one plane per channel holds its input as is (tap or phase planes of a 1×1,
   * stride 1, no padding) was given that copy only because its input planes were not aligned:
   * reading the padded planes in place is what planning it for them picks (ResNet-50's conv3
   * layers at 14×14 and 7×7), so it switches, its offsets rescaled like an in-place conv's. */
  const int copy_of_1x1 = !c->direct && d->layout == 0 && d->k_h == 1 && d->k_w == 1 && d->stride_h == 1 &&
                          d->stride_w == 1 && d->pad_t == 0 && d->pad_l == 0 && d->pad_b == 0 && d->pad_r == 0 &&
                          c->nrc * c->ncc == 1 && c->wq == c->out_w;
  const int to_direct = copy_of_1x1 && c->in_cs % c->vw == 0 && (c->in_cs * 4) % 4096 != 0;
  if ((c->direct && c->in_cs != old_in) || to_direct) {
    /* in place, column k reads channel ci at offset ci·stride (as it read plane ci at ci·ci_stride) */
    if (d->cin * c->in_cs > INT32_MAX) {
      c->in_cs = old_in, c->out_cs = old_out, c->res_cs = old_res; /* the conv stays as it was */
      return fc_fail(err, FC_ERR_UNSUPPORTED, "%s: sparse conv input too large for 32-bit offsets", name);
    }
    const int64_t from = c->ci_stride, ncols = c->seg_col[c->ngroups * c->nchunks];
    for (int64_t k = 0; k < ncols; k++) c->offs[k] = (int32_t)(c->offs[k] / from * c->in_cs);
    if (to_direct) {
      direct_layout(c);
      free(c->row_chunks);
      c->row_chunks = NULL;
      c->nrow_chunks = 0;
    }
    c->plane_stride = c->ci_stride = c->in_cs;
    c->xbuf_floats = d->cin * c->in_cs;
  }
  c->d.in_cstride = in_cstride, c->d.out_cstride = out_cstride, c->d.res_cstride = res_cstride;
  return FC_OK;
}

void fc_sparse_conv_free(fc_sparse_conv *c) {
  if (!c) return;
  free(c->seg_pair), free(c->seg_col), free(c->pair_co), free(c->pair_n), free(c->vals), free(c->offs);
  free(c->bias), free(c->tile_q), free(c->pair_cls), free(c->store), free(c->row_chunks);
  free(c);
}

size_t fc_sparse_conv_scratch_bytes(const fc_sparse_conv *c) { return c->scratch; }

void fc_sparse_conv_info(const fc_sparse_conv *c, fc_sparse_info *info) {
  memset(info, 0, sizeof *info);
  info->nnz = c->nnz;
  info->weights = c->d.cout * c->d.cin * c->d.k_h * c->d.k_w;
  info->packed = c->ncols * c->R;
  info->block = c->R;
  info->isa = c->isa;
  info->k_chunks = c->nchunks;
  info->tiles = c->ntiles;
  info->groups = c->ngroups;
  info->layout = c->direct ? 0 : c->layout;
  info->padded_output = c->out_direct ? 0 : c->out_scatter ? 1 : 2;
}
