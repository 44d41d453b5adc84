/* Checked allocation helpers. */
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

void *fc_malloc(size_t n) { return malloc(n ? n : 1); }

void *fc_calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  return calloc(n ? n : 1, size ? size : 1);
}

void *fc_realloc_array(void *p, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  return realloc(p, (n && size) ? n * size : 1);
}

char *fc_strdup(const char *s) {
  if (!s) s = "";
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

bool fc_mul_i64(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0) return false;
  if (a != 0 && b > INT64_MAX / a) return false;
  *out = a * b;
  return true;
}

bool fc_add_i64(int64_t a, int64_t b, int64_t *out) {
  if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b)) return false;
  *out = a + b;
  return true;
}
