/* An n-dimensional array read from a data file (IDX or .npy), in host byte order, plus the
 * bounded, gzip-transparent reading that the IDX and .npy readers share. */
#ifndef FC_DATA_ARRAY_H
#define FC_DATA_ARRAY_H
#include <stdint.h>
#include "graph/graph.h"
#include "util/err.h"

#define FC_ARRAY_MAX_RANK 8

typedef struct fc_array {
  int dtype; /* FC_DT_* (the ONNX codes): UINT8, INT8, INT16, INT32, INT64, FLOAT, DOUBLE, ... */
  int rank;
  int64_t dims[FC_ARRAY_MAX_RANK];
  int64_t count; /* product of dims */
  void *data;    /* count * fc_dtype_size(dtype) bytes, host byte order */
} fc_array;

/* Reads an IDX or .npy file (either may be gzipped), chosen by its first bytes, into *out. */
fc_status fc_array_load(const char *path, fc_array *out, fc_err *err);
void fc_array_free(fc_array *a);

/* Internal to src/data: a file opened through zlib (gzip or plain, transparently). */
typedef struct fc_data_file fc_data_file;
fc_status fc_data_open(const char *path, fc_data_file **out, fc_err *err);
void fc_data_close(fc_data_file *f);
/* Reads n bytes; a short read is an error "<kind> file '<path>' is truncated ...". */
fc_status fc_data_read(fc_data_file *f, const char *kind, void *buf, size_t n, fc_err *err);
/* Allocates and reads the payload of `bytes` bytes, growing the buffer as data really arrives (a
 * forged header cannot make us allocate more than the file holds), then checks nothing follows. */
fc_status fc_data_read_payload(fc_data_file *f, const char *kind, int64_t bytes, void **out,
                               fc_err *err);
const char *fc_data_path(const fc_data_file *f);
#endif
