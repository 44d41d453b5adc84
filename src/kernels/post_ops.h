/* Post-op chains (activations, elementwise ops with a full-shape or per-channel operand) applied to a
 * kernel's output in place, vectorised: what a kernel runs after itself when it cannot fuse a chain.
 * Same semantics as fc_ref_post_ops (the scalar oracle the tests compare it with). */
#ifndef FC_KERNELS_POST_OPS_H
#define FC_KERNELS_POST_OPS_H
#include "kernels/ref/ref.h"

/* y: the output (po->dims, po->layout); operands: one per binary post-op, in order. */
void fc_post_ops_apply(const fc_post_ops *po, float *y, const float *const *operands, int threads);
/* One unary post-op (an FC_POST_* kind that is not binary, parameters a and b) on n floats in place,
 * on the calling thread. */
void fc_post_unary(int kind, float a, float b, float *y, int64_t n);
#endif
