/* Sparse Gemm/MatMul with a constant weight: X [m, k] is transposed so the long dimension m is the
 * vector dimension, the 1×1 sparse convolution computes Yᵀ = Wᵀ-packed · Xᵀ, and Yᵀ is transposed
 * back. A single row (m < 4) is a sparse matrix × vector product with gathers instead. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/sparse/sparse_internal.h"
#include "util/mem.h"

#define SPMV_MAX_M 4

struct fc_sparse_gemm {
  fc_sparse_gemm_desc d;
  fc_sparse_conv *conv; /* m ≥ SPMV_MAX_M */
  /* m < SPMV_MAX_M: CSR by output column */
  int64_t *rowptr;
  int32_t *idx;
  float *val, *bias;
  int64_t nnz;
  fc_isa isa;
  size_t off_xt, off_yt, off_conv, scratch;
};

void fc_sparse_gemm_desc_init(fc_sparse_gemm_desc *d) {
  memset(d, 0, sizeof *d);
  d->alpha = d->beta = 1.0f;
  d->act_lo = -INFINITY;
  d->act_hi = INFINITY;
  d->threads = 1;
  d->isa = -1;
}

static size_t up64(size_t x) { return (x + 63) / 64 * 64; }

fc_status fc_sparse_gemm_create(const fc_sparse_gemm_desc *d, const float *b, const float *bias, const char *name,
                                fc_sparse_gemm **out, fc_err *err) {
  *out = NULL;
  if (!name) name = "gemm";
  if (!d || !b) return fc_fail(err, FC_ERR_ARG, "%s: sparse gemm needs a descriptor and weights", name);
  const int64_t lim = (int64_t)1 << 24;
  if (d->m < 1 || d->k < 1 || d->n < 1 || d->threads < 1)
    return fc_fail(err, FC_ERR_ARG, "%s: sparse gemm needs positive sizes", name);
  int64_t kn;
  if (d->m > lim || d->k > lim || d->n > lim || !fc_mul_i64(d->k, d->n, &kn) || kn > ((int64_t)1 << 31) ||
      d->m * d->k > INT32_MAX || d->m * d->n > INT32_MAX)
    return fc_fail(err, FC_ERR_UNSUPPORTED, "%s: sparse gemm too large", name);
  int isa = d->isa < 0 ? (int)fc_cpu_isa() : d->isa;
  if (isa > FC_ISA_AVX512 || !fc_cpu_supports((fc_isa)isa))
    return fc_fail(err, FC_ERR_UNSUPPORTED, "%s: requested ISA %d is not available on this CPU", name, isa);
  fc_sparse_gemm *g = fc_calloc(1, sizeof *g);
  /* W [n][k] = alpha · Bᵀ, the layout both paths want */
  float *w = fc_malloc((size_t)kn * sizeof(float)), *bb = bias ? fc_malloc((size_t)d->n * sizeof(float)) : NULL;
  if (!g || !w || (bias && !bb)) {
    free(g), free(w), free(bb);
    return fc_fail(err, FC_ERR_NOMEM, "%s: out of memory", name);
  }
  g->d = *d;
  g->isa = (fc_isa)isa;
  for (int64_t j = 0; j < d->n; j++)
    for (int64_t k = 0; k < d->k; k++) w[j * d->k + k] = d->alpha * (d->trans_b ? b[j * d->k + k] : b[k * d->n + j]);
  if (bb)
    for (int64_t j = 0; j < d->n; j++) bb[j] = d->beta * bias[j];
  fc_status st = FC_OK;
  if (d->m < SPMV_MAX_M) {
    for (int64_t i = 0; i < kn; i++) g->nnz += w[i] != 0.0f;
    g->rowptr = fc_calloc((size_t)d->n + 1, sizeof(int64_t));
    g->idx = fc_calloc((size_t)g->nnz + 1, sizeof(int32_t));
    g->val = fc_calloc((size_t)g->nnz + 1, sizeof(float));
    if (!g->rowptr || !g->idx || !g->val) {
      st = fc_fail(err, FC_ERR_NOMEM, "%s: out of memory", name);
    } else {
      int64_t p = 0;
      for (int64_t j = 0; j < d->n; j++) {
        for (int64_t k = 0; k < d->k; k++)
          if (w[j * d->k + k] != 0.0f) g->idx[p] = (int32_t)k, g->val[p++] = w[j * d->k + k];
        g->rowptr[j + 1] = p;
      }
      g->bias = bb;
      bb = NULL;
    }
  } else {
    fc_sparse_conv_desc cd;
    fc_sparse_conv_desc_init(&cd);
    cd.cin = d->k;
    cd.cout = d->n;
    cd.in_h = 1;
    cd.in_w = d->m;
    cd.act_lo = d->act_lo;
    cd.act_hi = d->act_hi;
    cd.block = d->block;
    cd.threads = d->threads;
    cd.isa = isa;
    st = fc_sparse_conv_create(&cd, w, bb, name, &g->conv, err);
    if (st == FC_OK) {
      size_t off = 0;
      g->off_xt = off;
      if (g->conv->direct) off += up64((size_t)(d->k * d->m) * sizeof(float));
      g->off_yt = off;
      off += up64((size_t)(d->n * d->m) * sizeof(float));
      g->off_conv = off;
      off += g->conv->scratch;
      g->scratch = off;
    }
  }
  free(w);
  free(bb);
  if (st != FC_OK) {
    fc_sparse_gemm_free(g);
    return st;
  }
  *out = g;
  return FC_OK;
}

void fc_sparse_gemm_free(fc_sparse_gemm *g) {
  if (!g) return;
  fc_sparse_conv_free(g->conv);
  free(g->rowptr), free(g->idx), free(g->val), free(g->bias);
  free(g);
}

size_t fc_sparse_gemm_scratch_bytes(const fc_sparse_gemm *g) { return g->scratch; }

/* dst[c][r] = src[r][c] for an rows × cols source, dst rows dst_stride apart; 32×32 blocks keep
 * both sides in cache. */
/* 32×32 blocks; threads split the destination rows (ViT's 197×3072 outputs: the transposes ran on one
 * thread and held a 2-thread sparse MatMul to 1.36× its 1-thread speed) */
static void transpose(const float *src, int64_t rows, int64_t cols, float *dst, int64_t dst_stride, int threads) {
  const int64_t cblocks = (cols + 31) / 32;
#pragma omp parallel for num_threads(threads) if (threads > 1 && rows * cols >= 65536) schedule(static)
  for (int64_t cb = 0; cb < cblocks; cb++) {
    int64_t c0 = cb * 32, c1 = c0 + 32 < cols ? c0 + 32 : cols;
    for (int64_t r0 = 0; r0 < rows; r0 += 32) {
      int64_t r1 = r0 + 32 < rows ? r0 + 32 : rows;
      for (int64_t c = c0; c < c1; c++)
        for (int64_t r = r0; r < r1; r++) dst[c * dst_stride + r] = src[r * cols + c];
    }
  }
}

static void spmv_rows(const fc_sparse_gemm *g, const float *x, float *y, int64_t j0, int64_t j1) {
  const fc_sparse_gemm_desc *d = &g->d;
  for (int64_t i = 0; i < d->m; i++) {
#ifdef FC_HAVE_X86_KERNELS
    if (g->isa == FC_ISA_AVX512) {
      fc_spmv_avx512(j1 - j0, g->rowptr + j0, g->idx, g->val, x + i * d->k, g->bias ? g->bias + j0 : NULL, d->act_lo,
                     d->act_hi, y + i * d->n + j0);
      continue;
    }
#endif
    for (int64_t j = j0; j < j1; j++) {
      float s = g->bias ? g->bias[j] : 0.0f;
      for (int64_t p = g->rowptr[j]; p < g->rowptr[j + 1]; p++) s += g->val[p] * x[i * d->k + g->idx[p]];
      s = s < d->act_lo ? d->act_lo : s;
      y[i * d->n + j] = s > d->act_hi ? d->act_hi : s;
    }
  }
}

void fc_sparse_gemm_run(const fc_sparse_gemm *g, const float *x, float *y, void *scratch) {
  const fc_sparse_gemm_desc *d = &g->d;
  if (!g->conv) {
    int nt = d->threads;
    if (nt > 1 && d->n >= 64 * nt) {
#pragma omp parallel num_threads(nt)
      {
        int t = omp_get_thread_num(), k = omp_get_num_threads();
        spmv_rows(g, x, y, d->n * t / k, d->n * (t + 1) / k);
      }
    } else {
      spmv_rows(g, x, y, 0, d->n);
    }
    return;
  }
  const fc_sparse_conv *c = g->conv;
  char *sc = scratch;
  char *csc = sc + g->off_conv;
  float *xt = c->direct ? (float *)(sc + g->off_xt) : (float *)(csc + c->off_xbuf);
  transpose(x, d->m, d->k, xt, c->ci_stride, d->threads);
  if (!c->direct) {
    /* the conv reads whole vectors past each row's m values: keep that padding zero */
    for (int64_t k = 0; k < d->k; k++) memset(xt + k * c->ci_stride + d->m, 0, (size_t)(c->ci_stride - d->m) * sizeof(float));
    int64_t tail = c->xbuf_floats - d->k * c->ci_stride;
    if (tail > 0) memset(xt + d->k * c->ci_stride, 0, (size_t)tail * sizeof(float));
  }
  float *yt = (float *)(sc + g->off_yt);
  fc_sparse_conv_run_prepared(c, xt, NULL, yt, csc);
  transpose(yt, d->n, d->m, y, d->n, d->threads);
}

double fc_sparse_gemm_predict(const fc_sparse_gemm *g, int threads) {
  const fc_sparse_gemm_desc *d = &g->d;
  if (g->conv) /* plus the two transposes, ~1 ns per element each way */
    return fc_sparse_conv_predict(g->conv, threads) + (double)(d->m * (d->k + d->n)) * 1e-9;
  /* a gather per 16 nonzeros per row: 0.36 ns per nonzero-row product measured on a 10×6272
   * classifier (warm), 0.7-0.9 on 1000×1280 and 1000×2048 (`flopcut bench --steps` with
   * FLOPCUT_SPARSE=1); the 1.5 ns used first made an 87 %-sparse 10×6272 classifier run dense in
   * 16 µs instead of 3 µs */
  return (double)g->nnz * (double)d->m * 0.9e-9 / (threads > 1 ? 0.9 * threads : 1) + 2e-6;
}

double fc_sparse_gemm_predict_dense(const fc_sparse_gemm *g, int threads) {
  const fc_sparse_gemm_desc *d = &g->d;
  double macs = (double)d->m * (double)d->k * (double)d->n;
  if (d->m < SPMV_MAX_M) /* a matrix × vector product is bound by reading the weights: ~20 GB/s */
    return (double)d->k * (double)d->n * 4.0 / 20e9 + 2e-6;
  return fc_sparse_dense_predict(macs, 4.0 * (double)(d->m * d->k + d->k * d->n + d->m * d->n), threads);
}

int fc_sparse_gemm_faster(const fc_sparse_gemm *g, int threads) {
  return fc_sparse_gemm_predict(g, threads) < fc_sparse_gemm_predict_dense(g, threads);
}

void fc_sparse_gemm_info(const fc_sparse_gemm *g, fc_sparse_info *info) {
  if (g->conv) {
    fc_sparse_conv_info(g->conv, info);
    return;
  }
  memset(info, 0, sizeof *info);
  info->nnz = info->packed = g->nnz;
  info->weights = g->d.k * g->d.n;
  info->block = 1;
  info->isa = g->isa;
  info->k_chunks = info->tiles = 1;
}
