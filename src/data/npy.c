/* .npy reading and writing. The header is a Python dict literal; we accept exactly the keys numpy
 * writes ('descr', 'fortran_order', 'shape') and refuse anything we would misread. */
#include "data/npy.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util/mem.h"

#define NPY_MAX_HEADER (1 << 20)

static const struct {
  const char *descr; /* without the byte-order character */
  int dtype;
} npy_types[] = {
    {"f4", FC_DT_FLOAT}, {"f8", FC_DT_DOUBLE}, {"i8", FC_DT_INT64}, {"i4", FC_DT_INT32}, {"i2", FC_DT_INT16},
    {"i1", FC_DT_INT8},  {"u1", FC_DT_UINT8},  {"b1", FC_DT_BOOL},  {"u2", FC_DT_UINT16}, {"u4", FC_DT_UINT32},
    {"u8", FC_DT_UINT64}, {"f2", FC_DT_FLOAT16},
};

/* Finds 'key' in the dict text and returns a pointer just past the ':' that follows it. */
static const char *find_key(const char *h, const char *key) {
  char pat[32];
  for (int q = 0; q < 2; q++) {
    snprintf(pat, sizeof pat, q ? "\"%s\"" : "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) continue;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p == ':') return p + 1;
  }
  return NULL;
}

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n') p++;
  return p;
}

static fc_status parse_header(const char *path, const char *h, fc_array *a, fc_err *err) {
  const char *p = find_key(h, "descr");
  if (!p) return fc_fail(err, FC_ERR_PARSE, ".npy file '%s': header has no 'descr'", path);
  p = skip_ws(p);
  char quote = *p;
  if (quote != '\'' && quote != '"')
    return fc_fail(err, FC_ERR_UNSUPPORTED, ".npy file '%s': structured dtypes are not supported", path);
  const char *end = strchr(p + 1, quote);
  if (!end || end - p - 1 > 15) return fc_fail(err, FC_ERR_PARSE, ".npy file '%s': bad 'descr' in header", path);
  char descr[16];
  memcpy(descr, p + 1, (size_t)(end - p - 1));
  descr[end - p - 1] = '\0';
  char order = descr[0];
  const char *code = descr + 1;
  if (order != '<' && order != '|' && order != '=')
    return fc_fail(err, FC_ERR_UNSUPPORTED, ".npy file '%s': dtype '%s' is not little-endian (save it with "
                   "arr.astype('<f4') or similar)", path, descr);
  a->dtype = 0;
  for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
    if (!strcmp(code, npy_types[i].descr)) a->dtype = npy_types[i].dtype;
  if (!a->dtype)
    return fc_fail(err, FC_ERR_UNSUPPORTED, ".npy file '%s': dtype '%s' is not supported (float32, float64, "
                   "int64, int32, int16, int8, uint8, bool)", path, descr);
  if (order == '|' && fc_dtype_size(a->dtype) != 1)
    return fc_fail(err, FC_ERR_PARSE, ".npy file '%s': bad 'descr' '%s'", path, descr);

  p = find_key(h, "fortran_order");
  if (!p) return fc_fail(err, FC_ERR_PARSE, ".npy file '%s': header has no 'fortran_order'", path);
  p = skip_ws(p);
  if (!strncmp(p, "True", 4))
    return fc_fail(err, FC_ERR_UNSUPPORTED, ".npy file '%s' is in Fortran order; save it in C order "
                   "(np.ascontiguousarray)", path);
  if (strncmp(p, "False", 5)) return fc_fail(err, FC_ERR_PARSE, ".npy file '%s': bad 'fortran_order'", path);

  p = find_key(h, "shape");
  if (!p) return fc_fail(err, FC_ERR_PARSE, ".npy file '%s': header has no 'shape'", path);
  p = skip_ws(p);
  if (*p != '(') return fc_fail(err, FC_ERR_PARSE, ".npy file '%s': 'shape' is not a tuple", path);
  p++;
  a->rank = 0;
  a->count = 1;
  for (;;) {
    p = skip_ws(p);
    if (*p == ')') break;
    if (!isdigit((unsigned char)*p)) return fc_fail(err, FC_ERR_PARSE, ".npy file '%s': bad 'shape' in header", path);
    if (a->rank == FC_ARRAY_MAX_RANK)
      return fc_fail(err, FC_ERR_UNSUPPORTED, ".npy file '%s' has more than %d dimensions", path, FC_ARRAY_MAX_RANK);
    char *e;
    errno = 0;
    long long d = strtoll(p, &e, 10);
    if (errno || d < 0 || d > ((int64_t)1 << 40))
      return fc_fail(err, FC_ERR_PARSE, ".npy file '%s': dimension out of range", path);
    a->dims[a->rank++] = d;
    if (!fc_mul_i64(a->count, d, &a->count))
      return fc_fail(err, FC_ERR_NOMEM, ".npy file '%s': shape too large", path);
    p = skip_ws(e);
    if (*p == ',') p++;
    else if (*p != ')') return fc_fail(err, FC_ERR_PARSE, ".npy file '%s': bad 'shape' in header", path);
  }
  return FC_OK;
}

fc_status fc_npy_read(const char *path, fc_array *out, fc_err *err) {
  memset(out, 0, sizeof *out);
  fc_data_file *f;
  fc_status st = fc_data_open(path, &f, err);
  if (st) return st;
  unsigned char pre[12];
  char *header = NULL;
  st = fc_data_read(f, ".npy", pre, 10, err);
  if (!st && (memcmp(pre, "\x93NUMPY", 6) || pre[6] < 1 || pre[6] > 3))
    st = fc_fail(err, FC_ERR_PARSE, "'%s' is not a .npy file (bad magic or version)", path);
  uint32_t hlen = 0;
  if (!st) {
    if (pre[6] == 1) {
      hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    } else {
      st = fc_data_read(f, ".npy", pre + 10, 2, err);
      hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
    }
  }
  if (!st && (hlen == 0 || hlen > NPY_MAX_HEADER))
    st = fc_fail(err, FC_ERR_PARSE, ".npy file '%s': header length %u is out of range", path, hlen);
  if (!st && !(header = fc_malloc(hlen + 1))) st = fc_fail(err, FC_ERR_NOMEM, "out of memory");
  if (!st) st = fc_data_read(f, ".npy", header, hlen, err);
  if (!st) {
    header[hlen] = '\0';
    if (strlen(header) != hlen || header[0] != '{')
      st = fc_fail(err, FC_ERR_PARSE, ".npy file '%s': header is not a dict", path);
  }
  if (!st) st = parse_header(path, header, out, err);
  int64_t bytes = 0;
  if (!st && !fc_mul_i64(out->count, (int64_t)fc_dtype_size(out->dtype), &bytes))
    st = fc_fail(err, FC_ERR_NOMEM, ".npy file '%s': shape too large", path);
  if (!st) st = fc_data_read_payload(f, ".npy", bytes, &out->data, err);
  free(header);
  fc_data_close(f);
  if (st) {
    free(out->data);
    memset(out, 0, sizeof *out);
  }
  return st;
}

static const char *descr_of(int dtype) {
  for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
    if (npy_types[i].dtype == dtype) return npy_types[i].descr;
  return NULL;
}

fc_status fc_npy_write(const char *path, int dtype, int rank, const int64_t *dims, const void *data, fc_err *err) {
  const char *code = descr_of(dtype);
  if (!code) return fc_fail(err, FC_ERR_UNSUPPORTED, "cannot write %s data to .npy", fc_dtype_name(dtype));
  if (rank < 0 || rank > FC_ARRAY_MAX_RANK) return fc_fail(err, FC_ERR_ARG, "cannot write rank-%d .npy", rank);
  char dict[512];
  int len = snprintf(dict, sizeof dict, "{'descr': '%c%s', 'fortran_order': False, 'shape': (",
                     fc_dtype_size(dtype) == 1 ? '|' : '<', code);
  int64_t count = 1;
  for (int d = 0; d < rank; d++) {
    len += snprintf(dict + len, sizeof dict - (size_t)len, "%s%lld", d ? ", " : "", (long long)dims[d]);
    if (!fc_mul_i64(count, dims[d], &count)) return fc_fail(err, FC_ERR_ARG, "array too large");
  }
  len += snprintf(dict + len, sizeof dict - (size_t)len, "%s), }", rank == 1 ? "," : "");
  /* pad with spaces so the data starts 64-byte aligned, as numpy does; end with '\n' */
  int total = 10 + len + 1;
  int padded = (total + 63) / 64 * 64;
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
  int hlen = padded - 10;
  pre[8] = (unsigned char)(hlen & 0xff);
  pre[9] = (unsigned char)(hlen >> 8);

  size_t plen = strlen(path);
  char *tmp = fc_malloc(plen + 16);
  if (!tmp) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    fc_status st = fc_fail(err, FC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    free(tmp);
    return st;
  }
  (void)fchmod(fd, 0644); /* mkstemp creates 0600; outputs are ordinary files */
  FILE *f = fdopen(fd, "wb");
  bool ok = f != NULL;
  size_t bytes = (size_t)count * fc_dtype_size(dtype);
  if (ok) {
    ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)len, f) == (size_t)len;
    for (int i = 10 + len; ok && i < padded - 1; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && (bytes == 0 || fwrite(data, 1, bytes, f) == bytes);
    ok = (fclose(f) == 0) && ok;
  } else {
    close(fd);
  }
  int saved = errno;
  if (ok && rename(tmp, path) != 0) {
    saved = errno;
    ok = false;
  }
  fc_status st = FC_OK;
  if (!ok) {
    unlink(tmp);
    st = fc_fail(err, FC_ERR_IO, "cannot write '%s': %s", path, strerror(saved));
  }
  free(tmp);
  return st;
}
