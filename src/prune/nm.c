/* N:M semi-structured sparsity: in every group of M consecutive weights along the input-channel
 * axis (fixed output channel and kernel position), keep the N largest magnitudes. */
#include <stdio.h>
#include <string.h>
#include "prune/prune.h"

void fc_prune_keep_largest(float *base, int64_t stride, int n, int keep) {
  /* insertion sort of the group by (|w| bits, index), the global order's key: NaN sorts after +inf
   * and is kept; M is small (≤ 256) */
  int idx[256];
  uint32_t key[256];
  if (n > 256) n = 256;
  if (keep < 0) keep = 0;
  if (n <= 0 || keep >= n) return;
  for (int k = 0; k < n; k++) {
    uint32_t u;
    memcpy(&u, &base[k * stride], sizeof u);
    key[k] = u & 0x7fffffffu;
    idx[k] = k;
  }
  for (int k = 1; k < n; k++) {
    uint32_t u = key[k];
    int at = k;
    while (at > 0 && u < key[at - 1]) {
      key[at] = key[at - 1];
      idx[at] = idx[at - 1];
      at--;
    }
    key[at] = u;
    idx[at] = k;
  }
  for (int r = 0; r < n - keep; r++) base[idx[r] * stride] = 0.0f;
}

fc_status fc_prune_nm(fc_prune_set *s, int n, int m, fc_prune_result *res, fc_err *err) {
  if (m < 1 || m > 256 || n < 0 || n > m)
    return fc_fail(err, FC_ERR_ARG, "--nm N:M needs 0 ≤ N ≤ M and 1 ≤ M ≤ 256, not %d:%d", n, m);
  res->weights = 0;
  res->target_removed = -1;
  for (size_t li = 0; li < s->n_layers; li++) {
    fc_prune_layer *l = &s->layers[li];
    if (l->excluded) continue;
    res->weights += l->numel;
    const fc_prune_axes *ax = &l->axes;
    if (!l->axes_ok) {
      l->left_dense = true;
      snprintf(l->note, sizeof l->note, "left dense: its consumers read it with different channel axes");
      continue;
    }
    if (ax->n_in % m) {
      l->left_dense = true;
      snprintf(l->note, sizeof l->note, "left dense: %lld input channels, not a multiple of %d", (long long)ax->n_in, m);
      continue;
    }
    for (int64_t a = 0; a < ax->n_a; a++)
      for (int64_t b = 0; b < ax->n_b; b++)
        for (int64_t o = 0; o < ax->n_out; o++)
          for (int64_t g = 0; g < ax->n_in; g += m)
            fc_prune_keep_largest(l->w + a * ax->s_a + b * ax->s_b + o * ax->s_out + g * ax->s_in, ax->s_in, m, n);
  }
  return FC_OK;
}
