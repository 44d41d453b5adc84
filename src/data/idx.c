/* IDX reader: validates the header (magic, dtype, rank, dims), reads the payload with bounded
 * allocation and converts it from big-endian to host order. */
#include "data/idx.h"
#include <stdlib.h>
#include <string.h>
#include "util/mem.h"

static int idx_dtype(unsigned code) {
  switch (code) {
    case 0x08: return FC_DT_UINT8;
    case 0x09: return FC_DT_INT8;
    case 0x0B: return FC_DT_INT16;
    case 0x0C: return FC_DT_INT32;
    case 0x0D: return FC_DT_FLOAT;
    case 0x0E: return FC_DT_DOUBLE;
    default: return FC_DT_UNDEFINED;
  }
}

/* Big-endian elements of `size` bytes → host order, in place. */
static void from_big_endian(unsigned char *p, int64_t count, size_t size) {
  if (size == 1) return;
  const uint16_t probe = 1;
  unsigned char little;
  memcpy(&little, &probe, 1);
  if (!little) return;
  for (int64_t i = 0; i < count; i++, p += size)
    for (size_t a = 0, b = size - 1; a < b; a++, b--) {
      unsigned char t = p[a];
      p[a] = p[b];
      p[b] = t;
    }
}

fc_status fc_idx_read(const char *path, fc_array *out, fc_err *err) {
  memset(out, 0, sizeof *out);
  fc_data_file *f;
  fc_status st = fc_data_open(path, &f, err);
  if (st) return st;
  unsigned char head[4];
  if ((st = fc_data_read(f, "IDX", head, sizeof head, err))) goto fail;
  if (head[0] != 0 || head[1] != 0) {
    st = fc_fail(err, FC_ERR_PARSE, "IDX file '%s' does not start with the magic bytes 00 00", path);
    goto fail;
  }
  out->dtype = idx_dtype(head[2]);
  if (out->dtype == FC_DT_UNDEFINED) {
    st = fc_fail(err, FC_ERR_PARSE, "IDX file '%s' has unknown element type 0x%02x", path, head[2]);
    goto fail;
  }
  out->rank = head[3];
  if (out->rank < 1 || out->rank > FC_ARRAY_MAX_RANK) {
    st = fc_fail(err, FC_ERR_PARSE, "IDX file '%s' has rank %d; flopcut reads ranks 1 to %d", path,
                 out->rank, FC_ARRAY_MAX_RANK);
    goto fail;
  }
  unsigned char dims[4 * FC_ARRAY_MAX_RANK];
  if ((st = fc_data_read(f, "IDX", dims, 4 * (size_t)out->rank, err))) goto fail;
  int64_t count = 1;
  for (int d = 0; d < out->rank; d++) {
    const unsigned char *b = dims + 4 * d;
    out->dims[d] = (int64_t)b[0] << 24 | (int64_t)b[1] << 16 | (int64_t)b[2] << 8 | b[3];
    if (out->dims[d] == 0) {
      st = fc_fail(err, FC_ERR_PARSE, "IDX file '%s' has an empty dimension %d", path, d);
      goto fail;
    }
    if (!fc_mul_i64(count, out->dims[d], &count) || count > FC_MAX_TENSOR_BYTES) {
      st = fc_fail(err, FC_ERR_NOMEM, "IDX file '%s' announces more elements than flopcut reads", path);
      goto fail;
    }
  }
  out->count = count;
  size_t size = fc_dtype_size(out->dtype);
  int64_t bytes;
  if (!fc_mul_i64(count, (int64_t)size, &bytes)) {
    st = fc_fail(err, FC_ERR_NOMEM, "IDX file '%s' announces more bytes than flopcut reads", path);
    goto fail;
  }
  if ((st = fc_data_read_payload(f, "IDX", bytes, &out->data, err))) goto fail;
  from_big_endian(out->data, count, size);
  fc_data_close(f);
  return FC_OK;
fail:
  fc_data_close(f);
  memset(out, 0, sizeof *out);
  return st;
}
