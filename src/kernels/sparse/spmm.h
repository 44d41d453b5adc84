/* The sparse microkernel contract: one pixel tile × one run of packed output-channel blocks.
 * Shared by the AVX-512, AVX2 and scalar variants; the driver (sparse_run.c) tiles the work. */
#ifndef FC_KERNELS_SPARSE_SPMM_H
#define FC_KERNELS_SPARSE_SPMM_H
#include <stdint.h>
#include "kernels/x86/cpu.h"

/* Packed weights, XNNPACK style: a block is R consecutive output channels sharing one pattern of
 * input rows. For block i: pair_co[i] (first output channel), pair_n[i] (nonzero columns), then
 * pair_n[i] × R values (R per column, interleaved) and pair_n[i] input offsets (in floats, from the
 * tile's input base). Columns of one block are consecutive in vals/offs. */
/* Where one output vector goes when the kernel's rows carry padding columns (wq > out_w) and the
 * kernel writes the output itself: up to 3 runs of lanes (rows of at least 8 pixels: a vector
 * crosses at most two row ends), lane l of run k to out + off[k] + l; lanes outside every mask are
 * padding columns or past the last row. */
#define FC_SPMM_RUNS 3
typedef struct fc_spmm_store {
  uint16_t mask[FC_SPMM_RUNS];
  int32_t off[FC_SPMM_RUNS];
} fc_spmm_store;

typedef struct fc_spmm_args {
  const int32_t *pair_co, *pair_n;
  int64_t npairs;
  const float *vals;
  const int32_t *offs;
  const float *x; /* input at the tile's first pixel; every offset + tile width stays readable */
  float *acc;     /* partial sums between K chunks: row co at acc + co·acc_stride (tile width) */
  int64_t acc_stride;
  float *out; /* final output at the tile's first pixel, row co at out + co·out_stride */
  int64_t out_stride;
  const float *res; /* residual added before the clamp, same layout as out; NULL for none */
  int64_t res_stride;
  const float *bias; /* [cout] or NULL, added when init */
  int init;          /* first K chunk: start from bias instead of acc */
  int final;         /* last K chunk: residual, clamp, store to out (else store to acc) */
  int nvec;          /* vectors in this tile, 1..T */
  int rem;           /* valid lanes of the last vector (stores to out / residual loads) */
  int xmask;         /* also mask the last vector's input loads (an input read in place ends there) */
  int half;          /* AVX-512, not xmask: only the last vector's first 8 lanes matter (its pixels
                        past them lie beyond the output), so its loads take 32 bytes: within a cache
                        line whenever they start in its first half, where 64 bytes would span two */
  float lo, hi;      /* output clamp: Relu = [0, inf), Relu6 = [0, 6], none = (-inf, inf) */
  int act;           /* after the clamp (AVX-512 kernels only): FC_SPARSE_ACT_* */
  const float *pf; /* optional prefetch into L2, spread over the blocks: pf_rows rows pf_stride apart, */
  int64_t pf_rows, pf_stride, pf_lines; /* pf_lines 64-byte lines from the start of each */
  int64_t out_next; /* final chunk: floats from this tile's output to the next tile's (0: none), whose
                       lines are fetched for writing while this tile computes */
  /* aligned phase planes only (fc_spmm_avx512_shift): block i's columns come grouped by column
   * shift, cls_n[4·i + s] of shift s, for s < ncls */
  const int32_t *cls_n;
  int ncls;
  int row_end; /* fc_spmm_avx512_shift: the tile ends at a plane row's end, and no row's shifted
                  pixels reach past it into the next row: the shifted sums need no extra vector */
  /* AVX-512 kernels, final chunk: when set, vector t of row co is stored (and its residual loaded)
   * by the runs store[t], out and res then being the rows' first pixel (not the tile's) */
  const fc_spmm_store *store;
} fc_spmm_args;

typedef void (*fc_spmm_fn)(const fc_spmm_args *a);

/* Vector width (floats) and default tile size T (vectors) per ISA and block height R ∈ {1, 2, 4};
 * the AVX-512 R = 1 kernels (and the shift kernel) also take tiles of up to 2·T. */
int fc_spmm_vw(fc_isa isa);
int fc_spmm_tvec(fc_isa isa, int r);
/* The microkernel for (isa, R); NULL if the build lacks it. */
fc_spmm_fn fc_spmm_kernel(fc_isa isa, int r);

void fc_spmm_scalar(const fc_spmm_args *a, int r);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FC_HAVE_X86_KERNELS 1
void fc_spmm_avx512_r1(const fc_spmm_args *a);
void fc_spmm_avx512_r2(const fc_spmm_args *a);
void fc_spmm_avx512_r4(const fc_spmm_args *a);
void fc_spmm_avx512_shift(const fc_spmm_args *a); /* R = 1, aligned phase planes */
void fc_spmm_avx2_r1(const fc_spmm_args *a);
void fc_spmm_avx2_r2(const fc_spmm_args *a);
void fc_spmm_avx2_r4(const fc_spmm_args *a);
/* y[j] = bias[j] + Σ over CSR row j of w·x[idx] (gathers), clamped: sparse matrix × one vector. */
void fc_spmv_avx512(int64_t n, const int64_t *rowptr, const int32_t *idx, const float *val, const float *x,
                    const float *bias, float lo, float hi, float *y);
#endif
#endif
