/* ONNX → graph IR. Everything read from the file is validated: the file is untrusted input. */
#ifndef FC_ONNX_LOAD_H
#define FC_ONNX_LOAD_H
#include "graph/graph.h"

/* Reads and converts an ONNX file; external data is read relative to the file's folder. */
fc_status fc_onnx_load_file(const char *path, fc_graph **out, fc_err *err);
/* Converts an in-memory ONNX model (base_dir: where external data lives, NULL to refuse it). */
fc_status fc_onnx_load_buffer(const uint8_t *buf, size_t len, const char *base_dir, fc_graph **out,
                              fc_err *err);
/* Reads a whole file into memory (bounded by FC_MAX_TENSOR_BYTES). */
fc_status fc_read_file(const char *path, uint8_t **buf, size_t *len, fc_err *err);
#endif
