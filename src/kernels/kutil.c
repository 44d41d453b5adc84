/* Shared machinery of the non-matrix kernels: OpenMP range splitting, the broadcasting walker
 * used by every elementwise op, and plan-time helpers that name the node in errors. */
#include "kernels/kutil.h"
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "util/mem.h"

void fc_parallel_range(int threads, int64_t n, int64_t grain, fc_range_fn fn, void *ctx) {
  if (n <= 0) return;
  int64_t nt = threads < 1 ? 1 : threads;
  if (grain < 1) grain = 1;
  int64_t by_grain = n / grain;
  if (nt > by_grain) nt = by_grain;
  if (nt <= 1) {
    fn(ctx, 0, n);
    return;
  }
#pragma omp parallel num_threads((int)nt)
  {
    int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
    /* fine-grained ranges (elements) split on multiples of 16 so each thread's vector loop stays
     * aligned; coarse items (rows, planes) split evenly */
    int64_t mask = grain >= 64 ? ~(int64_t)15 : ~(int64_t)0;
    int64_t b = t == 0 ? 0 : (n * t / k) & mask;
    int64_t e = t == k - 1 ? n : (n * (t + 1) / k) & mask;
    if (b < e) fn(ctx, b, e);
  }
}

void fc_bcast_init(fc_bcast *b, int out_rank, const int64_t *out_dims, int n_in, const int *in_rank,
                   const int64_t *const *in_dims) {
  memset(b, 0, sizeof *b);
  b->n_in = n_in;
  int64_t str[FC_BCAST_MAX_IN][FC_MAX_RANK];
  for (int i = 0; i < n_in; i++) {
    int64_t s = 1;
    for (int d = out_rank - 1; d >= 0; d--) {
      int di = d - (out_rank - in_rank[i]);
      int64_t dim = di >= 0 ? in_dims[i][di] : 1;
      str[i][d] = dim == 1 ? 0 : s;
      s *= dim;
    }
  }
  /* drop size-1 output dims, then merge neighbours every input walks contiguously */
  int r = 0;
  for (int d = 0; d < out_rank; d++) {
    if (out_dims[d] == 1) continue;
    bool merge = r > 0;
    for (int i = 0; i < n_in && merge; i++) merge = b->str[i][r - 1] == str[i][d] * out_dims[d];
    if (merge) {
      b->dims[r - 1] *= out_dims[d];
      for (int i = 0; i < n_in; i++) b->str[i][r - 1] = str[i][d];
    } else {
      b->dims[r] = out_dims[d];
      for (int i = 0; i < n_in; i++) b->str[i][r] = str[i][d];
      r++;
    }
  }
  if (r == 0) {
    b->dims[0] = 1;
    for (int i = 0; i < n_in; i++) b->str[i][0] = 0;
    r = 1;
  }
  b->rank = r;
  b->numel = 1;
  for (int d = 0; d < r; d++) b->numel *= b->dims[d];
  for (int d = 0; d < out_rank; d++)
    if (out_dims[d] == 0) b->numel = 0;
}

typedef struct bcast_job {
  const fc_bcast *b;
  fc_bcast_row_fn fn;
  void *ctx;
} bcast_job;

static void bcast_range(void *p, int64_t begin, int64_t end) {
  const bcast_job *job = p;
  const fc_bcast *b = job->b;
  int r = b->rank, n_in = b->n_in;
  int64_t coord[FC_MAX_RANK], off[FC_BCAST_MAX_IN] = {0}, inner[FC_BCAST_MAX_IN];
  int64_t rem = begin;
  for (int d = r - 1; d >= 0; d--) {
    coord[d] = rem % b->dims[d];
    rem /= b->dims[d];
    for (int i = 0; i < n_in; i++) off[i] += coord[d] * b->str[i][d];
  }
  for (int i = 0; i < n_in; i++) inner[i] = b->str[i][r - 1];
  int64_t e = begin, last = b->dims[r - 1];
  while (e < end) {
    int64_t len = last - coord[r - 1];
    if (len > end - e) len = end - e;
    job->fn(job->ctx, e, off, inner, len);
    e += len;
    if (e >= end) break;
    /* advance the odometer by len along the innermost dim, carrying outwards */
    coord[r - 1] += len;
    for (int i = 0; i < n_in; i++) off[i] += len * inner[i];
    for (int d = r - 1; d > 0 && coord[d] == b->dims[d]; d--) {
      coord[d] = 0;
      coord[d - 1]++;
      for (int i = 0; i < n_in; i++) off[i] += b->str[i][d - 1] - b->dims[d] * b->str[i][d];
    }
  }
}

void fc_bcast_run(const fc_bcast *b, int threads, fc_bcast_row_fn fn, void *ctx) {
  bcast_job job = {b, fn, ctx};
  fc_parallel_range(threads, b->numel, FC_PAR_GRAIN, bcast_range, &job);
}

fc_status fc_kfail(const fc_exec_node *en, fc_err *err, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return fc_fail(err, FC_ERR_UNSUPPORTED, "node '%s' (%s): %s", en->node->name, en->node->op_type, msg);
}

void *fc_kstate(fc_exec_node *en, size_t size, fc_err *err) {
  en->state = fc_calloc(1, size);
  if (!en->state) fc_fail(err, FC_ERR_NOMEM, "node '%s' (%s): out of memory", en->node->name, en->node->op_type);
  return en->state;
}

void fc_kstate_release(fc_exec_node *en) {
  free(en->state);
  en->state = NULL;
}

int64_t fc_kdims_numel(int rank, const int64_t *dims) {
  int64_t n = 1;
  for (int d = 0; d < rank; d++) n *= dims[d];
  return n;
}

fc_status fc_kconst_ints(const fc_exec_node *en, int input, const char *attr, int64_t *out, int max, int *count,
                         fc_err *err) {
  *count = -1;
  const fc_value *v = input >= 0 ? fc_en_in(en, input) : NULL;
  if (v) {
    if (!v->data || !fc_dtype_is_int(v->dtype))
      return fc_kfail(en, err, "input '%s' must be a constant integer tensor", v->name);
    int64_t n = fc_value_numel(v);
    if (n < 0 || n > max) return fc_kfail(en, err, "input '%s' has too many values", v->name);
    for (int64_t k = 0; k < n; k++) out[k] = fc_data_get_i64(v->dtype, v->data, k);
    *count = (int)n;
    return FC_OK;
  }
  const fc_attr *a = attr ? fc_node_attr(en->node, attr) : NULL;
  if (a && a->type == FC_ATTR_INTS) {
    if (a->n_ints > (size_t)max) return fc_kfail(en, err, "attribute '%s' has too many values", attr);
    memcpy(out, a->ints, a->n_ints * sizeof(int64_t));
    *count = (int)a->n_ints;
  }
  return FC_OK;
}

FC_SIMD_CLONES float fc_vsum(const float *x, int64_t n) {
  float acc[FC_LANES] = {0};
  int64_t i = 0;
  for (; i + FC_LANES <= n; i += FC_LANES) FC_SIMD for (int j = 0; j < FC_LANES; j++) acc[j] += x[i + j];
  for (; i < n; i++) acc[0] += x[i];
  return fc_fold_sum(acc);
}

FC_SIMD_CLONES float fc_vmax(const float *x, int64_t n) {
  float acc[FC_LANES];
  for (int j = 0; j < FC_LANES; j++) acc[j] = -INFINITY;
  int64_t i = 0;
  for (; i + FC_LANES <= n; i += FC_LANES)
    FC_SIMD for (int j = 0; j < FC_LANES; j++) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
  for (; i < n; i++) acc[0] = x[i] > acc[0] ? x[i] : acc[0];
  return fc_fold_max(acc);
}
