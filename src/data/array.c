/* Data files for eval and calibration: format detection and the bounded, gzip-transparent reading
 * shared by the IDX and .npy readers. */
#include "data/array.h"
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "data/idx.h"
#include "data/npy.h"
#include "util/mem.h"

struct fc_data_file {
  gzFile gz;
  const char *path;
};

fc_status fc_data_open(const char *path, fc_data_file **out, fc_err *err) {
  *out = NULL;
  fc_data_file *f = fc_calloc(1, sizeof *f);
  if (!f) return fc_fail(err, FC_ERR_NOMEM, "out of memory opening '%s'", path);
  errno = 0;
  /* gzopen reads plain files unchanged, so every reader accepts .gz and uncompressed alike */
  f->gz = gzopen(path, "rb");
  if (!f->gz) {
    free(f);
    return fc_fail(err, FC_ERR_IO, "cannot open data file '%s': %s", path,
                   errno ? strerror(errno) : "out of memory");
  }
  f->path = path;
  *out = f;
  return FC_OK;
}

void fc_data_close(fc_data_file *f) {
  if (!f) return;
  gzclose(f->gz);
  free(f);
}

const char *fc_data_path(const fc_data_file *f) { return f->path; }

/* Reads up to n bytes; returns the count read, or -1 after recording a read/gzip error. */
static int64_t read_some(fc_data_file *f, const char *kind, void *buf, size_t n, fc_err *err) {
  size_t done = 0;
  while (done < n) {
    size_t chunk = n - done < (size_t)1 << 30 ? n - done : (size_t)1 << 30;
    int r = gzread(f->gz, (char *)buf + done, (unsigned)chunk);
    if (r < 0) {
      int code = 0;
      const char *msg = gzerror(f->gz, &code);
      if (code == Z_ERRNO) msg = strerror(errno);
      fc_fail(err, FC_ERR_IO, "%s file '%s' cannot be read: %s", kind, f->path, msg);
      return -1;
    }
    if (r == 0) {
      int code = 0;
      const char *msg = gzerror(f->gz, &code);
      if (code != Z_OK && code != Z_BUF_ERROR) {
        fc_fail(err, FC_ERR_IO, "%s file '%s' is corrupt: %s", kind, f->path, msg);
        return -1;
      }
      break; /* end of data (Z_BUF_ERROR: the gzip stream ends early, reported as truncation) */
    }
    done += (size_t)r;
  }
  return (int64_t)done;
}

fc_status fc_data_read(fc_data_file *f, const char *kind, void *buf, size_t n, fc_err *err) {
  int64_t r = read_some(f, kind, buf, n, err);
  if (r < 0) return err->status;
  if ((size_t)r < n)
    return fc_fail(err, FC_ERR_PARSE, "%s file '%s' is truncated: its header ends after %lld bytes",
                   kind, f->path, (long long)r);
  return FC_OK;
}

fc_status fc_data_read_payload(fc_data_file *f, const char *kind, int64_t bytes, void **out,
                               fc_err *err) {
  *out = NULL;
  if (bytes < 0 || bytes > FC_MAX_TENSOR_BYTES || (uint64_t)bytes > SIZE_MAX)
    return fc_fail(err, FC_ERR_NOMEM, "%s file '%s' announces %lld data bytes, beyond the %lld-byte limit",
                   kind, f->path, (long long)bytes, (long long)FC_MAX_TENSOR_BYTES);
  size_t want = (size_t)bytes, cap = want < ((size_t)16 << 20) ? want : ((size_t)16 << 20), have = 0;
  char *buf = fc_malloc(cap);
  if (!buf) return fc_fail(err, FC_ERR_NOMEM, "out of memory reading '%s'", f->path);
  while (have < want) {
    if (have == cap) {
      size_t ncap = cap > want / 2 ? want : cap * 2;
      char *nb = realloc(buf, ncap);
      if (!nb) {
        free(buf);
        return fc_fail(err, FC_ERR_NOMEM, "out of memory reading %zu bytes of '%s'", ncap, f->path);
      }
      buf = nb;
      cap = ncap;
    }
    int64_t r = read_some(f, kind, buf + have, cap - have, err);
    if (r < 0) {
      free(buf);
      return err->status;
    }
    have += (size_t)r;
    if (have < cap) break; /* the data ended before the buffer filled */
  }
  if (have < want) {
    free(buf);
    return fc_fail(err, FC_ERR_PARSE, "%s file '%s' is truncated: it holds %zu of the %zu data bytes its header announces",
                   kind, f->path, have, want);
  }
  char extra;
  int64_t r = read_some(f, kind, &extra, 1, err);
  if (r != 0) {
    free(buf);
    if (r < 0) return err->status;
    return fc_fail(err, FC_ERR_PARSE, "%s file '%s' has data after the %zu bytes its header announces",
                   kind, f->path, want);
  }
  *out = buf;
  return FC_OK;
}

fc_status fc_array_load(const char *path, fc_array *out, fc_err *err) {
  memset(out, 0, sizeof *out);
  fc_data_file *f;
  fc_status st = fc_data_open(path, &f, err);
  if (st) return st;
  unsigned char first = 0;
  int64_t r = read_some(f, "data", &first, 1, err);
  fc_data_close(f);
  if (r < 0) return err->status;
  if (r == 0) return fc_fail(err, FC_ERR_PARSE, "data file '%s' is empty", path);
  if (first == 0x93) return fc_npy_read(path, out, err);
  if (first == 0x00) return fc_idx_read(path, out, err);
  return fc_fail(err, FC_ERR_PARSE, "data file '%s' is neither IDX nor .npy (first byte 0x%02x)",
                 path, first);
}

void fc_array_free(fc_array *a) {
  if (!a) return;
  free(a->data);
  memset(a, 0, sizeof *a);
}
