/* NumPy .npy files (format 1.0/2.0/3.0): little-endian float32/float64/int64/int32/int16/int8/uint8/
 * bool arrays in C order. Reading is gzip-transparent and bounded; writing goes to a temp + rename. */
#ifndef FC_DATA_NPY_H
#define FC_DATA_NPY_H
#include "data/array.h"

/* Reads the .npy file at path into *out. Fails with one sentence naming the file on a bad magic,
 * header, Fortran order, big-endian or unsupported dtype, or a payload of the wrong size. */
fc_status fc_npy_read(const char *path, fc_array *out, fc_err *err);
/* Writes an array as .npy (version 1.0, or 2.0 for huge headers); the file appears only complete. */
fc_status fc_npy_write(const char *path, int dtype, int rank, const int64_t *dims, const void *data,
                       fc_err *err);
#endif
