/* Internal layout of a planned sparse convolution: geometry of the prepared input, the packed
 * nonzeros by (thread group, input-channel chunk), and the scratch map. */
#ifndef FC_KERNELS_SPARSE_INTERNAL_H
#define FC_KERNELS_SPARSE_INTERNAL_H
#include "kernels/sparse/sparse.h"
#include "kernels/sparse/spmm.h"

/* Bytes of L1 one chunk of input rows may occupy per pixel tile (48 KB L1d here: the rest holds
 * partial sums and the weight stream). 1×1 layers: 32 KB since their 14×14 and 7×7 planes are
 * padded to whole lines (padded_planes.c); at 24 KB a block visit got ~10 nonzeros at 90 %.
 * ResNet-50 90 %, old and new library in one process, both orders: 0.967 / 1/1.010 of the time
 * at 1 thread, 0.967 / 1/1.042 at 2 (layer2-3 1×1 layers 3-6 % faster, layer1's 56×56 ones
 * ±2 %); MobileNetV2 ±1 %; 40 and 48 KB were no better. */
#define FC_SPARSE_L1_BUDGET (32 * 1024)
#define FC_SPARSE_L1_BUDGET_TAPS (36 * 1024)

/* One 16-lane piece of a plane row for the AVX-512 layout (layout_avx512.c): lanes mstore of the
 * piece are written, lane l in mdata from input-row float src_off + idx[l], every other lane zero;
 * the two source vectors at src_off are loaded under mlo and mhi, so nothing outside the input row
 * is read. The same for every plane of one column class and every channel: planned once. */
#define FC_ROW_CHUNKS 2
typedef struct fc_row_chunk {
  int32_t src_off;
  uint16_t mlo, mhi, mdata, mstore;
  int32_t idx[16];
} fc_row_chunk;

struct fc_sparse_conv {
  fc_sparse_conv_desc d;
  fc_isa isa;
  int vw, T, R;
  int64_t tw; /* tile width in floats: T · vw */
  int64_t out_h, out_w;
  int64_t in_cs, out_cs, res_cs; /* channel strides of x, y and the residual (see the descriptor) */
  /* Input as the kernel reads it. direct: the input tensor itself (1×1, stride 1, no padding, rows
   * vector-aligned). Otherwise each input channel becomes nrc·ncc planes [hq][wq], plane (r, c)
   * holding padded input rows s_h·(i + rc_off[r]) + rc_phase[r] and columns
   * s_w·(j + cc_off[c]) + cc_phase[c] (j < out_w, or all wq for phase planes), so every tap reads
   * one contiguous window of its plane. Three layouts (chosen by the cost model):
   *  - shift planes: one plane per (column phase, column offset), wq a multiple of the vector
   *    width, the tap's row offset added to its window: every load vector-aligned (unaligned ones
   *    cost a third of the kernel's speed) at the price of padding columns and copies;
   *  - tap planes: one plane per distinct (row, column) tap offset, wq = out_w: aligned and no
   *    padding columns, the most copies (small images);
   *  - phase planes: one plane per stride phase, row and column offsets added per tap: the fewest
   *    copies, unaligned loads;
   *  - aligned phase planes: phase planes whose rows are a multiple of the vector width apart, so a
   *    tap's load is aligned but for its column shift (≤ 3), which the AVX-512 shift kernel applies
   *    to the sums instead (columns packed grouped by shift, R = 1). */
  int direct, layout;
  int64_t nrc, ncc;
  int64_t rc_phase[64], rc_off[64], cc_phase[64], cc_off[64];
  int64_t hq, wq, plane_stride, ci_stride, xbuf_floats;
  int64_t max_roff, max_coff; /* largest row / column offset a tap adds to its window */
  /* AVX-512 rows of at most FC_ROW_CHUNKS vectors at column stride 1 or 2: the pieces of a row of
   * column class cc at row_chunks[cc·FC_ROW_CHUNKS], nrow_chunks of them; NULL otherwise */
  fc_row_chunk *row_chunks;
  int nrow_chunks;
  /* Output pixel q = oh·wq + ow. out_direct: wq == out_w, so the kernel writes y itself; else it
   * writes yq [cout][qpad] and a pass drops the wq - out_w extra columns. */
  int out_direct;
  /* out_scatter (AVX-512, rows of ≥ 8 pixels): the kernel still writes y itself, each vector by the
   * runs store[tile·T + vector] (fc_spmm_store) that skip the padding columns; no yq, no pass */
  int out_scatter;
  /* every tile ends at a plane row's end, past which no row's shifted pixels reach: the shift
   * kernel's shifted sums need no extra vector (fc_spmm_args.row_end) */
  int row_tiles;
  fc_spmm_store *store;
  int64_t q, ntiles, qpad;
  /* Tile t covers pixels [tile_q[t], tile_q[t+1]): at most tw wide, starting on a vector. With
   * several threads and one group, the pixels are first split into `parts` equal runs of vectors, one
   * per thread, tiles [part_tile[k], part_tile[k+1]) for thread k, so no thread waits on a short
   * last tile (196 pixels in 64-pixel tiles gave 128 to one thread and 68 to the other). */
  int64_t *tile_q;
  int64_t parts, part_tile[65];
  /* Packed nonzeros: segment s = g·nchunks + c covers pairs [seg_pair[s], seg_pair[s+1]) and
   * columns [seg_col[s], seg_col[s+1]). */
  int64_t kc, nchunks, ngroups;
  int64_t *seg_pair, *seg_col;
  int32_t *pair_co, *pair_n;
  int32_t *pair_cls; /* aligned phase planes: per pair, 4 column counts by shift */
  int ncls;          /* shift groups (max column shift + 1) */
  float *vals;
  int32_t *offs;
  float *bias;
  int64_t nnz, ncols;
  fc_spmm_fn fn;
  size_t off_xbuf, off_yq, off_acc, acc_bytes, scratch;
};

/* Vectors per pixel tile for blocks of r output channels in c's layout. */
int fc_sparse_tile_vectors(const fc_sparse_conv *c, int r);
/* Input channels per K chunk for tiles of tw floats, so a chunk's window stays in L1. */
int64_t fc_sparse_chunk_rows(const fc_sparse_conv *c, int64_t tw);
/* Predicted seconds of the layout c describes (geometry only; R = 1, `cols` nonzeros). */
double fc_sparse_layout_cost(const fc_sparse_conv *c, int64_t cols);
/* Predicted seconds of the layout c describes packed in blocks of r rows with `cols` columns. */
double fc_sparse_block_cost(const fc_sparse_conv *c, int64_t cols, int r);
/* Predicted seconds of oneDNN dense for an op of `macs` multiply-adds streaming `bytes`. */
double fc_sparse_dense_predict(double macs, double bytes, int threads);
/* Whether c's layout, as planned so far, writes its output by runs (see out_scatter). */
static inline int fc_sparse_scatters(const fc_sparse_conv *c) {
  return !c->out_direct && c->isa == FC_ISA_AVX512 && c->wq >= 8;
}
/* Phase-plane layouts: every column of a plane row holds data. */
static inline int fc_sparse_is_phase(int layout) {
  return layout == FC_SPARSE_PHASE_PLANES || layout == FC_SPARSE_ALIGNED_PHASE;
}
/* Column class cc of a plane layout: plane column j holds input column s_w·j + *c0, inside the
 * image for j in [*j0, *j1) (both within the plane's data width). */
static inline void fc_sparse_col_range(const fc_sparse_conv *c, int64_t cc, int64_t *c0, int64_t *j0, int64_t *j1) {
  const int64_t sw = c->d.stride_w;
  *c0 = sw * c->cc_off[cc] + c->cc_phase[cc] - c->d.pad_l;
  *j0 = 0, *j1 = fc_sparse_is_phase(c->layout) ? c->wq : c->out_w;
  while (*j0 < *j1 && sw * *j0 + *c0 < 0) (*j0)++;
  while (*j1 > *j0 && sw * (*j1 - 1) + *c0 >= c->d.in_w) (*j1)--;
}
#ifdef FC_HAVE_X86_KERNELS
/* Rows [i0, i1) of one plane: row i from input row stride_h·i + ih0 (zero when outside the image)
 * of channel src by the nch pieces ch (AVX-512F). */
void fc_layout_rows_avx512(float *pl, int64_t wq, int64_t i0, int64_t i1, const float *src, int64_t in_h,
                           int64_t in_w, int64_t stride_h, int64_t ih0, const fc_row_chunk *ch, int nch);
#endif
/* fc_sparse_conv_run without its layout phase: xs is already in the kernel's layout (the input
 * itself when direct, else channel ci at ci·ci_stride, as the scratch's input buffer would hold). */
void fc_sparse_conv_run_prepared(const fc_sparse_conv *c, const float *xs, const float *res, float *y, void *scratch);
#endif
