/* The cost model behind the dense/sparse choice: predicted time of a planned sparse convolution,
 * linear in features of its packed geometry (columns × tiles by block height and alignment, block
 * visits, bytes laid out and written), and of oneDNN's dense convolution from its MACs and bytes.
 * The coefficients are least-squares fits (tools/fit_sparse_cost.py) to `bench_kernels --calib`
 * runs on this CPU; sparsity, shape and block structure enter through the features. */
#include <string.h>
#include "kernels/sparse/sparse_internal.h"

/* Features, single thread, one image:
 *  0-5  packed columns × full tiles × T/4, for R = 1, 2, 4, aligned loads (0, 2, 4) or not (1, 3, 5)
 *  6    block visits: (blocks × K chunks) × tiles
 *  7    bytes of the laid-out input (planes)
 *  8    bytes of output written, plus the padded output re-read when a pass drops columns
 *  9    1 (per-call cost) */
static const double theta_avx512[FC_SPARSE_NFEAT] = {1.29e-9, 2.07e-9, 2.48e-9, 2.86e-9, 4.55e-9, 4.63e-9,
                                                     1.67e-8, 0.175e-9, 0.022e-9, 1e-6};
/* AVX2 (not calibrated separately): tiles are half as wide, so there are twice as many; per column
 * and tile about the same cycles as AVX-512 */
static const double theta_avx2[FC_SPARSE_NFEAT] = {1.4e-9, 2.2e-9, 2.7e-9, 3.1e-9, 2.6e-9, 2.8e-9,
                                                   1.67e-8, 0.175e-9, 0.022e-9, 1e-6};
static const double theta_scalar[FC_SPARSE_NFEAT] = {40e-9, 40e-9, 80e-9, 80e-9, 160e-9, 160e-9,
                                                     20e-9, 0.15e-9, 0.08e-9, 3e-6};

static void features(const fc_sparse_conv *c, int64_t cols, int r, int t_vec, int64_t nchunks, double *f) {
  const fc_sparse_conv_desc *d = &c->d;
  memset(f, 0, FC_SPARSE_NFEAT * sizeof(double));
  int64_t tw = (int64_t)t_vec * c->vw;
  /* the last tile runs only the vectors it needs */
  double tiles = (double)(c->q / tw);
  int64_t left = c->q % tw;
  if (left) tiles += (double)((left + c->vw - 1) / c->vw) / t_vec;
  int aligned = c->direct ? c->ci_stride % c->vw == 0 : c->layout != FC_SPARSE_PHASE_PLANES;
  int slot = (r == 1 ? 0 : r == 2 ? 2 : 4) + !aligned;
  f[slot] = (double)cols * tiles * t_vec / 4.0;
  /* the shift kernel sums shifted columns one vector wider: taps spread evenly over the shifts */
  if (!c->direct && c->layout == FC_SPARSE_ALIGNED_PHASE)
    f[slot] *= 1.0 + (double)(c->ncls - 1) / (double)c->ncls / (double)t_vec;
  f[6] = (double)(d->cout / r) * (double)nchunks * tiles;
  f[7] = c->direct ? 0.0 : (double)c->xbuf_floats * 4.0;
  f[8] = (double)d->cout * (double)(c->out_h * c->out_w) * 4.0;
  if (!c->out_direct && !fc_sparse_scatters(c)) f[8] += (double)d->cout * (double)(c->q + tw) * 4.0;
  f[9] = 1.0;
}

void fc_sparse_conv_features(const fc_sparse_conv *c, double *f) {
  features(c, c->ncols, c->R, c->T, c->nchunks, f);
}

static double dot(const fc_sparse_conv *c, const double *f) {
  const double *th = c->isa == FC_ISA_AVX512 ? theta_avx512 : c->isa == FC_ISA_AVX2 ? theta_avx2 : theta_scalar;
  double t = 0;
  for (int i = 0; i < FC_SPARSE_NFEAT; i++) t += th[i] * f[i];
  return t;
}

double fc_sparse_layout_cost(const fc_sparse_conv *c, int64_t cols) {
  int t_vec = fc_sparse_tile_vectors(c, 1);
  int64_t kc = fc_sparse_chunk_rows(c, (int64_t)t_vec * c->vw);
  double f[FC_SPARSE_NFEAT];
  features(c, cols, 1, t_vec, (c->d.cin + kc - 1) / kc, f);
  return dot(c, f);
}

double fc_sparse_block_cost(const fc_sparse_conv *c, int64_t cols, int r) {
  int t_vec = fc_sparse_tile_vectors(c, r);
  int64_t kc = fc_sparse_chunk_rows(c, (int64_t)t_vec * c->vw);
  double f[FC_SPARSE_NFEAT];
  features(c, cols, r, t_vec, (c->d.cin + kc - 1) / kc, f);
  return dot(c, f);
}

double fc_sparse_conv_predict(const fc_sparse_conv *c, int threads) {
  double f[FC_SPARSE_NFEAT];
  fc_sparse_conv_features(c, f);
  double t = dot(c, f);
  int64_t items = c->ntiles * c->ngroups;
  double par = threads < items ? threads : (double)items;
  if (par > 1) t /= par * 0.85; /* two threads share one L3 and memory bus */
  return t;
}

/* oneDNN dense (brgconv / brgemm, one thread): a per-call cost, a rate on MACs, and the bytes of
 * weights and activations it streams (cold weights dominate layers with few pixels). Fitted to 31
 * layer shapes: median error 6.5 %. The sparse fit above: median 15 %, and the layout/block choice
 * it makes is within 2 % (median) of the fastest variant measured. */
static const double dense_theta[3] = {1e-6, 1.28e-11, 0.0645e-9}; /* 157 GFLOP/s on MACs */

double fc_sparse_dense_predict(double macs, double bytes, int threads) {
  double t = dense_theta[0] + dense_theta[1] * macs + dense_theta[2] * bytes;
  if (threads > 1) t /= threads * 0.9;
  return t;
}

double fc_sparse_conv_predict_dense(const fc_sparse_conv *c, int threads) {
  const fc_sparse_conv_desc *d = &c->d;
  double kk = (double)(d->cin * d->k_h * d->k_w), p = (double)(c->out_h * c->out_w);
  double macs = (double)d->cout * p * kk;
  double bytes = 4.0 * ((double)d->cout * kk + (double)(d->cin * d->in_h * d->in_w) + (double)d->cout * p);
  return fc_sparse_dense_predict(macs, bytes, threads);
}

/* A dense conv runs channels-last and a sparse one plain: whichever does not match the layout the
 * input arrives in pays a conversion first, about 0.3 ns per element at 1 thread (ToNHWC of
 * 96×112×112: 0.33 ms). Without this term EfficientNet-B0 pruned to 80 % (Global MP, so mixed dense
 * and sparse layers) spent 1.6 of 14 ms converting and ran slower than dense. */
int fc_sparse_conv_faster(const fc_sparse_conv *c, int threads, int input_nhwc) {
  const fc_sparse_conv_desc *d = &c->d;
  double par = threads > 1 ? 0.9 * threads : 1.0;
  double convert = (double)(d->cin * d->in_h * d->in_w) * 0.3e-9 / par;
  double t_sparse = fc_sparse_conv_predict(c, threads), t_dense = fc_sparse_conv_predict_dense(c, threads);
  if (input_nhwc) t_sparse += convert;
  else t_dense += convert;
  return t_sparse < t_dense;
}
