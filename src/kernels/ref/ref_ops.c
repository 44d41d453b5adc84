/* Scalar references for the non-matrix kernels: the most direct reading of the ONNX definitions,
 * in double precision where it matters, with no shared code with the kernels they check. */
#include "kernels/ref/ref_ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void fc_ref_unary(const char *op, const float *x, float *y, int64_t n, float alpha, float beta) {
  for (int64_t i = 0; i < n; i++) {
    double v = x[i], r = v;
    if (!strcmp(op, "Relu")) r = v > 0 ? v : 0;
    else if (!strcmp(op, "LeakyRelu")) r = v >= 0 ? v : alpha * v;
    else if (!strcmp(op, "Sigmoid")) r = 1 / (1 + exp(-v));
    else if (!strcmp(op, "HardSigmoid")) r = fmax(0, fmin(1, alpha * v + beta));
    else if (!strcmp(op, "HardSwish")) r = v * fmax(0, fmin(1, v / 6 + 0.5));
    else if (!strcmp(op, "Tanh")) r = tanh(v);
    else if (!strcmp(op, "Erf")) r = erf(v);
    else if (!strcmp(op, "Exp")) r = exp(v);
    else if (!strcmp(op, "Log")) r = log(v);
    else if (!strcmp(op, "Sqrt")) r = sqrt(v);
    else if (!strcmp(op, "Neg")) r = -v;
    else if (!strcmp(op, "Abs")) r = fabs(v);
    else if (!strcmp(op, "Reciprocal")) r = 1 / v;
    else if (!strcmp(op, "Floor")) r = floor(v);
    else if (!strcmp(op, "Ceil")) r = ceil(v);
    else if (!strcmp(op, "Round")) r = nearbyint(v);
    else if (!strcmp(op, "Elu")) r = v >= 0 ? v : alpha * (exp(v) - 1);
    else if (!strcmp(op, "Softplus")) r = log(1 + exp(v));
    else if (!strcmp(op, "Gelu")) r = 0.5 * v * (1 + erf(v / sqrt(2.0)));
    else if (!strcmp(op, "GeluTanh")) r = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    else if (!strcmp(op, "Sign")) r = v > 0 ? 1 : v < 0 ? -1 : 0;
    y[i] = (float)r;
  }
}

/* Offset of output coordinate `c` in an operand of rank r (right-aligned, size-1 dims broadcast). */
static int64_t bcast_offset(const int64_t *c, int rank, int r, const int64_t *d) {
  int64_t off = 0;
  for (int k = 0; k < r; k++) {
    int64_t ck = c[rank - r + k];
    off = off * d[k] + (d[k] == 1 ? 0 : ck);
  }
  return off;
}

void fc_ref_binary(const char *op, int rank, const int64_t *ydims, const float *a, int ra, const int64_t *da,
                   const float *b, int rb, const int64_t *db, void *y) {
  int64_t n = 1, c[16] = {0};
  for (int k = 0; k < rank; k++) n *= ydims[k];
  bool cmp = !strcmp(op, "Equal") || !strcmp(op, "Less") || !strcmp(op, "Greater") || !strcmp(op, "LessOrEqual") ||
             !strcmp(op, "GreaterOrEqual");
  for (int64_t e = 0; e < n; e++) {
    double x = a[bcast_offset(c, rank, ra, da)], z = b[bcast_offset(c, rank, rb, db)], r = 0;
    if (!strcmp(op, "Add")) r = x + z;
    else if (!strcmp(op, "Sub")) r = x - z;
    else if (!strcmp(op, "Mul")) r = x * z;
    else if (!strcmp(op, "Div")) r = x / z;
    else if (!strcmp(op, "Pow")) r = pow(x, z);
    else if (!strcmp(op, "Max")) r = x > z ? x : z;
    else if (!strcmp(op, "Min")) r = x < z ? x : z;
    else if (!strcmp(op, "Mod")) r = fmod(x, z);
    else if (!strcmp(op, "Equal")) r = x == z;
    else if (!strcmp(op, "Less")) r = x < z;
    else if (!strcmp(op, "Greater")) r = x > z;
    else if (!strcmp(op, "LessOrEqual")) r = x <= z;
    else if (!strcmp(op, "GreaterOrEqual")) r = x >= z;
    if (cmp) ((uint8_t *)y)[e] = (uint8_t)r;
    else ((float *)y)[e] = (float)r;
    for (int k = rank - 1; k >= 0 && ++c[k] == ydims[k]; k--) c[k] = 0;
  }
}

void fc_ref_pool(const fc_ref_pool_params *p, const float *x, float *y) {
  int64_t in_plane = 1, out_plane = 1, win = 1;
  for (int d = 0; d < p->k; d++) {
    in_plane *= p->in[d];
    out_plane *= p->out[d];
    win *= p->kernel[d];
  }
  for (int64_t pl = 0; pl < p->n * p->c; pl++)
    for (int64_t o = 0; o < out_plane; o++) {
      int64_t oc[3] = {0}, rem = o;
      for (int d = p->k - 1; d >= 0; d--) {
        oc[d] = rem % p->out[d];
        rem /= p->out[d];
      }
      double best = -INFINITY, sum = 0;
      int64_t valid = 0, padded = 0;
      for (int64_t w = 0; w < win; w++) {
        int64_t wc[3] = {0}, wr = w, off = 0;
        bool inside = true, in_padded = true;
        for (int d = p->k - 1; d >= 0; d--) {
          wc[d] = wr % p->kernel[d];
          wr /= p->kernel[d];
        }
        for (int d = 0; d < p->k; d++) {
          int64_t i = oc[d] * p->stride[d] - p->pad[d] + wc[d] * p->dil[d];
          inside = inside && i >= 0 && i < p->in[d];
          in_padded = in_padded && i >= -p->pad[d] && i < p->in[d] + p->pad_end[d];
          off = off * p->in[d] + i;
        }
        padded += in_padded;
        if (!inside) continue;
        double v = x[pl * in_plane + off];
        best = v > best ? v : best;
        sum += v;
        valid++;
      }
      int64_t cnt = p->include_pad ? padded : valid;
      y[pl * out_plane + o] = (float)(p->is_max ? best : sum / (double)cnt);
    }
}

void fc_ref_softmax(const float *x, float *y, int64_t outer, int64_t len, int64_t inner, bool log_) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const float *xp = x + o * len * inner + i;
      float *yp = y + o * len * inner + i;
      double m = -INFINITY, s = 0;
      for (int64_t l = 0; l < len; l++) m = xp[l * inner] > m ? xp[l * inner] : m;
      for (int64_t l = 0; l < len; l++) s += exp(xp[l * inner] - m);
      for (int64_t l = 0; l < len; l++)
        yp[l * inner] = (float)(log_ ? xp[l * inner] - m - log(s) : exp(xp[l * inner] - m) / s);
    }
}

void fc_ref_layernorm(const float *x, const float *scale, const float *bias, float *y, int64_t rows, int64_t d,
                      float eps) {
  for (int64_t r = 0; r < rows; r++) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < d; i++) mean += x[r * d + i];
    mean /= (double)d;
    for (int64_t i = 0; i < d; i++) var += (x[r * d + i] - mean) * (x[r * d + i] - mean);
    var /= (double)d;
    for (int64_t i = 0; i < d; i++)
      y[r * d + i] = (float)((x[r * d + i] - mean) / sqrt(var + eps) * scale[i] + (bias ? bias[i] : 0));
  }
}

void fc_ref_reduce(const char *op, const float *x, int rank, const int64_t *dims, const bool *reduced, float *y) {
  int64_t n = 1, out_n = 1, c[16] = {0};
  for (int k = 0; k < rank; k++) {
    n *= dims[k];
    if (!reduced[k]) out_n *= dims[k];
  }
  double *acc = calloc((size_t)(out_n ? out_n : 1), sizeof(double));
  if (!acc) return;
  double init = !strcmp(op, "ReduceMax") ? -INFINITY : !strcmp(op, "ReduceMin") ? INFINITY
              : !strcmp(op, "ReduceProd") ? 1 : 0;
  for (int64_t o = 0; o < out_n; o++) acc[o] = init;
  for (int64_t e = 0; e < n; e++) {
    int64_t o = 0;
    for (int k = 0; k < rank; k++)
      if (!reduced[k]) o = o * dims[k] + c[k];
    double v = x[e];
    if (!strcmp(op, "ReduceMax")) acc[o] = v > acc[o] ? v : acc[o];
    else if (!strcmp(op, "ReduceMin")) acc[o] = v < acc[o] ? v : acc[o];
    else if (!strcmp(op, "ReduceProd")) acc[o] *= v;
    else if (!strcmp(op, "ReduceL2")) acc[o] += v * v;
    else acc[o] += v;
    for (int k = rank - 1; k >= 0 && ++c[k] == dims[k]; k--) c[k] = 0;
  }
  for (int64_t o = 0; o < out_n; o++) {
    double v = acc[o];
    if (!strcmp(op, "ReduceMean")) v /= (double)(n / (out_n ? out_n : 1));
    if (!strcmp(op, "ReduceL2")) v = sqrt(v);
    y[o] = (float)v;
  }
  free(acc);
}

void fc_ref_transpose(const void *x, int rank, const int64_t *dims, const int64_t *perm, int es, void *y) {
  int64_t n = 1, c[16] = {0}, str[16] = {0};
  for (int k = rank - 1; k >= 0; k--) {
    str[k] = n;
    n *= dims[k];
  }
  for (int64_t e = 0; e < n; e++) { /* e walks the output in order; c are its coordinates */
    int64_t src = 0;
    for (int k = 0; k < rank; k++) src += c[k] * str[perm[k]];
    memcpy((char *)y + e * es, (const char *)x + src * es, (size_t)es);
    for (int k = rank - 1; k >= 0 && ++c[k] == dims[perm[k]]; k--) c[k] = 0;
  }
}
