/* IDX files (the MNIST / Fashion-MNIST format): magic 0x0000, a dtype byte, a rank byte, big-endian
 * uint32 dims, then the big-endian payload. Gzipped or not. */
#ifndef FC_DATA_IDX_H
#define FC_DATA_IDX_H
#include "data/array.h"

/* Reads the IDX file at path into *out (host byte order; dtype UINT8, INT8, INT16, INT32, FLOAT or
 * DOUBLE). Fails with one sentence naming the file on a bad magic, dtype, rank, size or payload. */
fc_status fc_idx_read(const char *path, fc_array *out, fc_err *err);
#endif
