/* Running a planned sparse convolution: lay the input out as stride-phase planes (padding
 * included), run the microkernel over (pixel tile × thread group × input chunk), drop the extra
 * columns. No allocation: everything lives in the caller's scratch. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include "kernels/kutil.h"
#include "kernels/post_ops.h"
#include "kernels/sparse/sparse_internal.h"
#include "passes/passes.h"
#include "util/work_range.h"

/* Rows are often short (7 to 58 floats): vectorised loops (the SIMD clones below) beat a call to
 * memcpy/memset per row. */
#define SIMD_LOOP _Pragma("omp simd")
/* plane rows up to this many floats are laid out by the short-row path */
#define SHORT_ROW 32

/* The planes of channel ci: plane (r, c)[i][j] = padded input [s_h·(i + rc_off) + rc_phase]
 * [s_w·(j + cc_off) + cc_phase] for j below the plane's data width; zero beyond. */
FC_SIMD_CLONES static void prepare_channel(const fc_sparse_conv *c, const float *x, float *xb, int64_t ci, int64_t i0,
                                           int64_t i1) {
  const fc_sparse_conv_desc *d = &c->d;
  const float *src = x + ci * c->in_cs;
  float *dst = xb + ci * c->ci_stride;
  const int64_t sw = d->stride_w;
  for (int64_t r = 0; r < c->nrc; r++)
    for (int64_t cc = 0; cc < c->ncc; cc++) {
      float *pl = dst + (r * c->ncc + cc) * c->plane_stride;
#ifdef FC_HAVE_X86_KERNELS
      if (c->row_chunks) {
        fc_layout_rows_avx512(pl, c->wq, i0, i1, src, d->in_h, d->in_w, d->stride_h,
                              d->stride_h * c->rc_off[r] + c->rc_phase[r] - d->pad_t,
                              c->row_chunks + cc * FC_ROW_CHUNKS, c->nrow_chunks);
        if (i1 == c->hq) memset(pl + c->hq * c->wq, 0, (size_t)(c->plane_stride - c->hq * c->wq) * sizeof(float));
        continue;
      }
#endif
      int64_t c0, j0, j1;
      fc_sparse_col_range(c, cc, &c0, &j0, &j1);
      if (c->wq <= SHORT_ROW) {
        /* short rows: one clear of the rows, then each row's data; per-row fills of a few floats on
         * both sides cost more than writing the data twice */
        memset(pl + i0 * c->wq, 0, (size_t)((i1 - i0) * c->wq) * sizeof(float));
        for (int64_t i = i0; i < i1 && j1 > j0; i++) {
          int64_t ih = d->stride_h * (i + c->rc_off[r]) + c->rc_phase[r] - d->pad_t;
          if (ih < 0 || ih >= d->in_h) continue;
          float *row = pl + i * c->wq;
          const float *srow = src + ih * d->in_w + c0;
          if (sw == 1) memcpy(row + j0, srow + j0, (size_t)(j1 - j0) * sizeof(float));
          else if (sw == 2) SIMD_LOOP for (int64_t j = j0; j < j1; j++) row[j] = srow[2 * j];
          else SIMD_LOOP for (int64_t j = j0; j < j1; j++) row[j] = srow[sw * j];
        }
      } else {
        for (int64_t i = i0; i < i1; i++) {
          float *row = pl + i * c->wq;
          int64_t ih = d->stride_h * (i + c->rc_off[r]) + c->rc_phase[r] - d->pad_t, lo = j0, hi = j1;
          if (ih < 0 || ih >= d->in_h) lo = hi = 0;
          SIMD_LOOP for (int64_t j = 0; j < lo; j++) row[j] = 0.0f;
          if (hi > lo) {
            const float *srow = src + ih * d->in_w + c0;
            if (sw == 1 && hi - lo >= 64) {
              memcpy(row + lo, srow + lo, (size_t)(hi - lo) * sizeof(float));
            } else if (sw == 1) {
              SIMD_LOOP for (int64_t j = lo; j < hi; j++) row[j] = srow[j];
            } else if (sw == 2) { /* a constant stride vectorises (two loads and a permute per vector) */
              SIMD_LOOP for (int64_t j = lo; j < hi; j++) row[j] = srow[2 * j];
            } else {
              SIMD_LOOP for (int64_t j = lo; j < hi; j++) row[j] = srow[sw * j];
            }
          }
          SIMD_LOOP for (int64_t j = hi; j < c->wq; j++) row[j] = 0.0f;
        }
      }
      if (i1 == c->hq) { /* the rows' owner also clears the plane's tail */
        int64_t used = c->hq * c->wq;
        memset(pl + used, 0, (size_t)(c->plane_stride - used) * sizeof(float));
      }
    }
  if (i1 == c->hq) { /* and the padding that spreads channels over the L1 sets */
    int64_t planes = c->nrc * c->ncc * c->plane_stride;
    memset(dst + planes, 0, (size_t)(c->ci_stride - planes) * sizeof(float));
  }
}

typedef struct run_ctx {
  const fc_sparse_conv *c;
  const float *xs, *res;
  float *out;
  int64_t out_stride, res_stride;
  char *scratch;
  float lo, hi;
} run_ctx;

static void run_item(const run_ctx *r, int64_t item, int tid) {
  const fc_sparse_conv *c = r->c;
  int64_t t = item / c->ngroups, g = item % c->ngroups;
  int64_t q0 = c->tile_q[t], width = c->tile_q[t + 1] - q0;
  int nv = (int)((width + c->vw - 1) / c->vw);
  int64_t rem = width - (int64_t)(nv - 1) * c->vw;
  if (!c->out_direct) rem = c->vw; /* the padded output takes whole vectors */
  fc_spmm_args a;
  memset(&a, 0, sizeof a);
  a.x = r->xs + q0;
  a.acc = (float *)(r->scratch + c->off_acc + c->acc_bytes * (size_t)tid);
  a.acc_stride = c->tw;
  const int64_t oq = c->out_scatter ? 0 : q0; /* by runs, the stores take whole rows */
  a.out = r->out + oq;
  a.out_stride = r->out_stride;
  a.res = r->res ? r->res + oq : NULL;
  a.store = c->out_scatter ? c->store + t * c->T : NULL;
  a.res_stride = r->res_stride;
  a.bias = c->bias;
  a.nvec = nv;
  a.rem = (int)rem;
  a.xmask = c->direct && rem < c->vw;
  a.half = !a.xmask && c->vw == 16 && width - (int64_t)(nv - 1) * c->vw <= 8;
  a.row_end = c->row_tiles;
  a.ncls = c->ncls;
  a.lo = r->lo;
  a.hi = r->hi;
  a.act = c->out_direct || c->out_scatter ? c->d.act : FC_SPARSE_ACT_NONE; /* else at compaction */
  a.out_next = t + 1 < c->ntiles && !c->out_scatter ? c->tile_q[t + 1] - q0 : 0;
  for (int64_t ch = 0; ch < c->nchunks; ch++) {
    int64_t s = g * c->nchunks + ch;
    a.pair_co = c->pair_co + c->seg_pair[s];
    a.pair_n = c->pair_n + c->seg_pair[s];
    a.npairs = c->seg_pair[s + 1] - c->seg_pair[s];
    a.vals = c->vals + c->seg_col[s] * c->R;
    a.offs = c->offs + c->seg_col[s];
    a.cls_n = c->pair_cls ? c->pair_cls + 4 * c->seg_pair[s] : NULL;
    a.init = ch == 0;
    a.final = ch == c->nchunks - 1;
    a.pf = NULL;
    if (c->direct) {
      /* the input comes straight from memory: fetch the next chunk's rows into L2 meanwhile */
      int64_t nch = ch + 1, nt = t;
      if (nch == c->nchunks) nch = 0, nt = t + 1;
      if (nt < c->ntiles) {
        int64_t nq = c->tile_q[nt], nw = c->tile_q[nt + 1] - nq;
        int64_t ci0 = nch * c->kc, rows = c->d.cin - ci0 < c->kc ? c->d.cin - ci0 : c->kc;
        if (nw % 16 == 0) { /* a ragged last tile is not worth the bounds arithmetic */
          a.pf = r->xs + nq + ci0 * c->ci_stride;
          a.pf_rows = rows;
          a.pf_stride = c->ci_stride;
          a.pf_lines = nw / 16;
        }
      }
    }
    c->fn(&a);
  }
}

/* Drops the padding columns of output channel co (and adds the residual, then clamps, when the
 * kernel could not). */
static void compact_channel(const fc_sparse_conv *c, const float *yq, const float *res, float *y, int64_t co,
                            int64_t oh0, int64_t oh1) {
  const float lo = c->d.act_lo, hi = c->d.act_hi;
  for (int64_t oh = oh0; oh < oh1; oh++) {
    const float *src = yq + co * c->qpad + oh * c->wq;
    float *dst = y + co * c->out_cs + oh * c->out_w;
    if (res) {
      const float *rr = res + co * c->res_cs + oh * c->out_w;
      for (int64_t ow = 0; ow < c->out_w; ow++) {
        float v = src[ow] + rr[ow];
        v = v < lo ? lo : v;
        dst[ow] = v > hi ? hi : v;
      }
    } else {
      memcpy(dst, src, (size_t)c->out_w * sizeof(float));
    }
    if (c->d.act != FC_SPARSE_ACT_NONE)
      fc_post_unary(c->d.act == FC_SPARSE_ACT_SWISH ? FC_POST_SWISH : FC_POST_HARDSWISH, 0.0f, 0.0f, dst, c->out_w);
  }
}

static void run_ctx_init(const fc_sparse_conv *c, const float *xs, const float *res, float *y, void *scratch,
                         run_ctx *r) {
  *r = (run_ctx){c, xs, NULL, y, c->out_cs, c->res_cs, scratch, c->d.act_lo, c->d.act_hi};
  if (c->out_direct || c->out_scatter) {
    r->res = res;
  } else {
    r->out = (float *)((char *)scratch + c->off_yq);
    r->out_stride = c->qpad;
    if (res) r->lo = -INFINITY, r->hi = INFINITY; /* clamp after the residual, when compacting */
  }
}

/* Thread `tid` of `nth` owns a contiguous range of work items (tile-major) and compacts the
 * output rows of its tiles: a 1×1 layer reading its input in place then reads on each core the
 * pixels the previous layer wrote there, from its own L2 (handing every tile out dynamically made
 * 56×56 1×1 layers slower at 2 threads than at 1). Only the unstarted items at the end of a range
 * move to another thread (run_items). */
typedef struct thread_span {
  int64_t item0, item1; /* work items */
  int64_t oh0, oh1;     /* output rows it compacts */
} thread_span;

/* Thread k's first work item: its part's first tile when the tiles were planned for this many
 * threads, else an even share of the items. */
static int64_t first_item(const fc_sparse_conv *c, int64_t items, int k, int nth) {
  if (c->ngroups == 1 && c->parts == nth) return c->part_tile[k];
  return items * k / nth;
}

/* The output row holding padded pixel q (q = oh·wq + ow), at most out_h. */
static int64_t row_of(const fc_sparse_conv *c, int64_t q) {
  int64_t oh = q / c->wq;
  return oh < c->out_h ? oh : c->out_h;
}

static thread_span span_of(const fc_sparse_conv *c, int64_t items, int k, int nth) {
  thread_span t;
  t.item0 = first_item(c, items, k, nth);
  t.item1 = first_item(c, items, k + 1, nth);
  /* from the row where this thread's tiles start to the row where the next thread's start */
  t.oh0 = k == 0 ? 0 : row_of(c, c->tile_q[t.item0 / c->ngroups]);
  t.oh1 = k + 1 == nth ? c->out_h : row_of(c, c->tile_q[t.item1 / c->ngroups]);
  if (t.oh0 > t.oh1) t.oh0 = t.oh1;
  return t;
}

/* Tiles cost unequal time (halo rows, ragged last tiles, a core slowed by the hypervisor), so a
 * thread done with its own range takes the unstarted items at the far end of another's; owners
 * still take their own tiles in order, so the pixels stay on the core that laid them out or
 * produced them. ResNet-50 90 % at 2 threads: about 3 % faster end to end (same process, A/B run
 * both ways, three times each); MobileNetV2 and EfficientNet-B0 0-1.5 %. */
#define STEAL_MAX_THREADS 64

/* Sets up one range per thread (q NULL: more threads than STEAL_MAX_THREADS, no stealing). */
static fc_work_range *init_ranges(const fc_sparse_conv *c, int64_t items, int nt, fc_work_range *q) {
  if (nt > STEAL_MAX_THREADS || items > INT32_MAX) return NULL;
  for (int k = 0; k < nt; k++) {
    thread_span t = span_of(c, items, k, nt);
    fc_work_range_init(&q[k], t.item0, t.item1);
  }
  return q;
}

/* This thread's own items, then whatever the others have not started. Every item runs once, on
 * whichever thread takes it; each thread uses its own partial-sum scratch, so results do not
 * depend on who ran what. */
static void run_items(const run_ctx *r, fc_work_range *q, const thread_span *t, int tid, int nth) {
  if (!q) {
    for (int64_t it = t->item0; it < t->item1; it++) run_item(r, it, tid);
    return;
  }
  for (int64_t it; (it = fc_work_range_take(&q[tid], 0)) >= 0;) run_item(r, it, tid);
  for (int k = 1; k < nth; k++)
    for (int64_t it; (it = fc_work_range_take(&q[(tid + k) % nth], 1)) >= 0;) run_item(r, it, tid);
}

/* Output rows this thread compacts. */
static void compact_span(const fc_sparse_conv *c, const run_ctx *r, const float *res, float *y, const thread_span *t) {
  for (int64_t co = 0; co < c->d.cout; co++) compact_channel(c, r->out, res, y, co, t->oh0, t->oh1);
}

/* Thread tid of nth lays out its share of the input: an equal share of the (channel, plane row)
 * pairs, in channel order; the last thread also clears the buffer's tail. By tile ownership,
 * threads that split the output channels left every row to the last one (ResNet-50's 3×3/2 at
 * 14×14, 2 threads: thread 0 waited 0.18 ms of 0.55), and with a pixel split the last one also
 * took the halo rows and the tails. Equal shares of each channel's rows balanced that, but made
 * every thread write a few rows of every plane: short strided runs, and planes whose row
 * boundaries share a cache line between threads. Contiguous runs of whole channels: ResNet-50 90 %
 * at 2 threads 4-6 % faster end to end (same run, A/B). */
static void lay_out_share(const fc_sparse_conv *c, const float *x, float *xb, int tid, int nth) {
  const fc_sparse_conv_desc *d = &c->d;
  const int64_t pairs = d->cin * c->hq, p0 = pairs * tid / nth, p1 = pairs * (tid + 1) / nth;
  for (int64_t ci = p0 / c->hq; ci * c->hq < p1; ci++) {
    int64_t r0 = p0 - ci * c->hq, r1 = p1 - ci * c->hq;
    prepare_channel(c, x, xb, ci, r0 > 0 ? r0 : 0, r1 < c->hq ? r1 : c->hq);
  }
  const int64_t tail = c->xbuf_floats - d->cin * c->ci_stride;
  if (tid == nth - 1 && tail > 0) memset(xb + d->cin * c->ci_stride, 0, (size_t)tail * sizeof(float));
}

/* A whole run in one parallel region (on a busy machine every fork costs a time slice): laying x
 * out (when given and not read in place), the kernels over the tiles reading xs, the compaction. */
static void run_phases(const fc_sparse_conv *c, const float *x, const float *xs, const float *res, float *y,
                       void *scratch) {
  const int nt = c->d.threads, lay_out = x && !c->direct;
  float *xb = (float *)((char *)scratch + c->off_xbuf);
  run_ctx r;
  run_ctx_init(c, xs, res, y, scratch, &r);
  const int64_t items = c->ntiles * c->ngroups;
  const int forked = nt > 1 && (items > 1 || lay_out);
  fc_work_range ranges[STEAL_MAX_THREADS];
  fc_work_range *q = forked ? init_ranges(c, items, nt, ranges) : NULL;
#pragma omp parallel num_threads(nt) if (forked)
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    const thread_span t = span_of(c, items, tid, nth);
    if (lay_out) {
      lay_out_share(c, x, xb, tid, nth);
#pragma omp barrier
    }
    run_items(&r, nth == nt ? q : NULL, &t, tid, nth);
    if (!c->out_direct && !c->out_scatter) {
#pragma omp barrier
      compact_span(c, &r, res, y, &t);
    }
  }
}

void fc_sparse_conv_run(const fc_sparse_conv *c, const float *x, const float *res, float *y, void *scratch) {
  run_phases(c, x, c->direct ? x : (const float *)((char *)scratch + c->off_xbuf), res, y, scratch);
}

void fc_sparse_conv_run_prepared(const fc_sparse_conv *c, const float *xs, const float *res, float *y, void *scratch) {
  run_phases(c, NULL, xs, res, y, scratch);
}
