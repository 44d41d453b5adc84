/* Checked allocation and size arithmetic: a model file is untrusted, so every product of
 * dimensions is checked for overflow and every allocation is bounded. */
#ifndef FC_UTIL_MEM_H
#define FC_UTIL_MEM_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Largest single tensor we agree to hold in memory (16 GiB): beyond it a model is refused. */
#define FC_MAX_TENSOR_BYTES ((int64_t)1 << 34)

void *fc_malloc(size_t n);             /* NULL on failure or n == 0 → 1 byte */
void *fc_calloc(size_t n, size_t size); /* NULL on overflow/failure */
void *fc_realloc_array(void *p, size_t n, size_t size);
char *fc_strdup(const char *s);
/* a*b into *out; false on overflow or negative operands. */
bool fc_mul_i64(int64_t a, int64_t b, int64_t *out);
bool fc_add_i64(int64_t a, int64_t b, int64_t *out);
#endif
