/* Converts a parsed ONNX ModelProto (protobuf-c, generated from the system onnx.proto) into the
 * graph IR: initializers (dense, sparse, external), graph inputs/outputs, nodes and attributes. */
#include "onnx/onnx_load.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "onnx.pb-c.h"
#include "util/mem.h"

fc_status fc_read_file(const char *path, uint8_t **buf, size_t *len, fc_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return fc_fail(err, FC_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  if (fseek(f, 0, SEEK_END) != 0) {
    fclose(f);
    return fc_fail(err, FC_ERR_IO, "cannot read '%s': not a regular file", path);
  }
  long size = ftell(f);
  if (size < 0 || (int64_t)size > FC_MAX_TENSOR_BYTES) {
    fclose(f);
    return fc_fail(err, FC_ERR_IO, "cannot read '%s': %s", path, size < 0 ? strerror(errno) : "file too large");
  }
  rewind(f);
  uint8_t *b = fc_malloc((size_t)size);
  if (!b) {
    fclose(f);
    return fc_fail(err, FC_ERR_NOMEM, "out of memory reading '%s' (%ld bytes)", path, size);
  }
  if (size && fread(b, 1, (size_t)size, f) != (size_t)size) {
    free(b);
    fclose(f);
    return fc_fail(err, FC_ERR_IO, "cannot read '%s': short read", path);
  }
  fclose(f);
  *buf = b;
  *len = (size_t)size;
  return FC_OK;
}

typedef struct load_state {
  fc_graph *g;
  const char *base_dir;
  fc_err *err;
  int64_t expand_budget; /* bytes sparse tensors may still grow by when densified */
} load_state;

/* Sparse tensors may legitimately be far larger dense than in the file, but a few bytes must not
 * claim gigabytes: all of a model's sparse tensors together may expand to max(256 MiB, 1024 × file). */
#define FC_SPARSE_EXPAND_MIN ((int64_t)1 << 28)
#define FC_SPARSE_EXPAND_RATIO 1024

/* protobuf-c unpacks nested messages recursively; real ONNX files nest a few levels (subgraphs of
 * If/Loop a few more), a hostile one could nest thousands deep and overflow the stack. */
#define FC_MAX_PROTO_DEPTH 64
#define FC_MAX_GRAPH_ITEMS (1 << 26)

/* Shape of a TensorProto, checked: rank ≤ 8, dims ≥ 0, byte size bounded. */
static fc_status tensor_shape(load_state *s, const Onnx__TensorProto *t, const char *what, fc_tensor *out,
                              int64_t *numel) {
  if (t->n_dims > FC_MAX_RANK)
    return fc_fail(s->err, FC_ERR_UNSUPPORTED, "%s: rank %zu exceeds flopcut's limit of %d", what,
                   t->n_dims, FC_MAX_RANK);
  out->rank = (int)t->n_dims;
  int64_t n = 1, span = 1; /* span treats 0 as 1: an empty tensor must not carry absurd dims either */
  for (size_t d = 0; d < t->n_dims; d++) {
    if (t->dims[d] < 0)
      return fc_fail(s->err, FC_ERR_INVALID, "%s: negative dimension %lld", what, (long long)t->dims[d]);
    out->dims[d] = t->dims[d];
    if (!fc_mul_i64(span, t->dims[d] ? t->dims[d] : 1, &span) || span > FC_MAX_TENSOR_BYTES)
      return fc_fail(s->err, FC_ERR_INVALID, "%s: dimensions too large", what);
    n *= t->dims[d];
  }
  out->dtype = t->has_data_type ? t->data_type : FC_DT_UNDEFINED;
  size_t es = fc_dtype_size(out->dtype);
  if (es == 0)
    return fc_fail(s->err, FC_ERR_UNSUPPORTED, "%s: element type %s (%d) is not supported", what,
                   fc_dtype_name(out->dtype), out->dtype);
  if (n * (int64_t)es > FC_MAX_TENSOR_BYTES)
    return fc_fail(s->err, FC_ERR_NOMEM, "%s: tensor of %lld elements is too large", what, (long long)n);
  *numel = n;
  return FC_OK;
}

/* Reads nbytes of external data into a new buffer. The size is checked against the file before
 * anything is allocated, so a tiny model cannot claim gigabytes it does not have. */
static fc_status read_external(load_state *s, const Onnx__TensorProto *t, const char *what, void **dst,
                               size_t nbytes) {
  const char *location = NULL;
  int64_t offset = 0, length = -1;
  for (size_t i = 0; i < t->n_external_data; i++) {
    const Onnx__StringStringEntryProto *e = t->external_data[i];
    if (!e->key || !e->value) continue;
    char *end = NULL;
    if (strcmp(e->key, "location") == 0) {
      location = e->value;
    } else if (strcmp(e->key, "offset") == 0 || strcmp(e->key, "length") == 0) {
      errno = 0;
      long long x = strtoll(e->value, &end, 10);
      if (errno || end == e->value || *end || x < 0)
        return fc_fail(s->err, FC_ERR_INVALID, "%s: external data %s '%.40s' is not a valid number", what, e->key,
                       e->value);
      if (e->key[0] == 'o') offset = x;
      else length = x;
    }
  }
  if (!s->base_dir)
    return fc_fail(s->err, FC_ERR_UNSUPPORTED, "%s: external data cannot be read from an in-memory model", what);
  if (!location || !*location)
    return fc_fail(s->err, FC_ERR_INVALID, "%s: external data without a location", what);
  if (location[0] == '/' || strstr(location, ".."))
    return fc_fail(s->err, FC_ERR_INVALID, "%s: external data location '%s' leaves the model's folder",
                   what, location);
  if (length >= 0 && (uint64_t)length != (uint64_t)nbytes)
    return fc_fail(s->err, FC_ERR_INVALID, "%s: external data length %lld does not match %zu bytes", what,
                   (long long)length, nbytes);
  size_t plen = strlen(s->base_dir) + strlen(location) + 2;
  char *path = fc_malloc(plen);
  if (!path) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
  snprintf(path, plen, "%s/%s", s->base_dir, location);
  FILE *f = fopen(path, "rb");
  fc_status st = FC_OK;
  struct stat sb;
  if (!f) {
    st = fc_fail(s->err, FC_ERR_IO, "%s: cannot open external data '%s': %s", what, path, strerror(errno));
  } else if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    st = fc_fail(s->err, FC_ERR_IO, "%s: external data '%s' is not a regular file", what, path);
  } else if ((uint64_t)offset > (uint64_t)sb.st_size || (uint64_t)sb.st_size - (uint64_t)offset < nbytes) {
    st = fc_fail(s->err, FC_ERR_INVALID, "%s: external data '%s' is shorter than %zu bytes at offset %lld", what,
                 path, nbytes, (long long)offset);
  } else if (!(*dst = fc_malloc(nbytes))) {
    st = fc_fail(s->err, FC_ERR_NOMEM, "%s: out of memory for %zu bytes", what, nbytes);
  } else if (fseeko(f, (off_t)offset, SEEK_SET) != 0 || fread(*dst, 1, nbytes, f) != nbytes) {
    st = fc_fail(s->err, FC_ERR_IO, "%s: cannot read external data '%s'", what, path);
  }
  if (f) fclose(f);
  free(path);
  return st;
}

/* Decodes a dense TensorProto into out (data owned by out). The data's size is checked against the
 * shape before allocating: the allocation is never larger than what the file really holds. */
static fc_status decode_tensor(load_state *s, const Onnx__TensorProto *t, const char *what, fc_tensor *out) {
  int64_t n = 0;
  memset(out, 0, sizeof *out);
  fc_status st = tensor_shape(s, t, what, out, &n);
  if (st) return st;
  size_t es = fc_dtype_size(out->dtype), nbytes = (size_t)n * es;
  bool external = t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  if (!external && t->has_raw_data && t->raw_data.len == nbytes && nbytes &&
      ((uintptr_t)t->raw_data.data % es) == 0) {
    /* Take the bytes protobuf-c allocated (malloc) instead of copying them: on a 350 MB model the
     * copy and its page faults dominated load time. The message field is emptied so the protobuf
     * free does not release them. ONNX raw data is little-endian, as is x86. */
    Onnx__TensorProto *owned = (Onnx__TensorProto *)t;
    out->data = owned->raw_data.data;
    owned->raw_data.data = NULL;
    owned->raw_data.len = 0;
    return FC_OK;
  }
  if (external) return read_external(s, t, what, &out->data, nbytes);
  if (t->has_raw_data && (t->raw_data.len || n == 0)) {
    if (t->raw_data.len != nbytes)
      return fc_fail(s->err, FC_ERR_INVALID, "%s: raw data holds %zu bytes, shape needs %zu", what,
                     t->raw_data.len, nbytes);
    out->data = fc_malloc(nbytes);
    if (!out->data) return fc_fail(s->err, FC_ERR_NOMEM, "%s: out of memory for %zu bytes", what, nbytes);
    if (nbytes) memcpy(out->data, t->raw_data.data, nbytes); /* ONNX raw data is little-endian, as is x86 */
    return FC_OK;
  }
  size_t have;
  switch (out->dtype) {
    case FC_DT_FLOAT: have = t->n_float_data; break;
    case FC_DT_DOUBLE: have = t->n_double_data; break;
    case FC_DT_INT64: have = t->n_int64_data; break;
    case FC_DT_UINT32: case FC_DT_UINT64: have = t->n_uint64_data; break;
    default: have = t->n_int32_data; break;
  }
  if (have != (size_t)n)
    return fc_fail(s->err, FC_ERR_INVALID, "%s: holds %zu values, shape needs %lld", what, have, (long long)n);
  out->data = fc_malloc(nbytes);
  if (!out->data) return fc_fail(s->err, FC_ERR_NOMEM, "%s: out of memory for %zu bytes", what, nbytes);
  for (int64_t i = 0; i < n; i++) {
    switch (out->dtype) {
      case FC_DT_FLOAT: ((float *)out->data)[i] = t->float_data[i]; break;
      case FC_DT_DOUBLE: ((double *)out->data)[i] = t->double_data[i]; break;
      case FC_DT_INT64: ((int64_t *)out->data)[i] = t->int64_data[i]; break;
      case FC_DT_UINT32: case FC_DT_UINT64: fc_data_set_i64(out->dtype, out->data, i, (int64_t)t->uint64_data[i]); break;
      case FC_DT_FLOAT16: ((uint16_t *)out->data)[i] = (uint16_t)t->int32_data[i]; break;
      default: fc_data_set_i64(out->dtype, out->data, i, t->int32_data[i]); break;
    }
  }
  return FC_OK;
}

/* Sparse initializer: values [NNZ] + indices [NNZ] (linear) or [NNZ, rank], scattered into zeros. */
static fc_status decode_sparse(load_state *s, const Onnx__SparseTensorProto *sp, const char *what, fc_tensor *out) {
  memset(out, 0, sizeof *out);
  if (!sp->values || !sp->indices) return fc_fail(s->err, FC_ERR_INVALID, "%s: sparse tensor without values or indices", what);
  fc_tensor vals, idx;
  fc_status st = decode_tensor(s, sp->values, what, &vals);
  if (st) { free(vals.data); return st; }
  st = decode_tensor(s, sp->indices, what, &idx);
  if (st) { free(vals.data); free(idx.data); return st; }
  Onnx__TensorProto shape = ONNX__TENSOR_PROTO__INIT;
  shape.n_dims = sp->n_dims;
  shape.dims = sp->dims;
  shape.has_data_type = 1;
  shape.data_type = vals.dtype;
  int64_t n = 0;
  st = tensor_shape(s, &shape, what, out, &n);
  int64_t nnz = vals.rank == 1 ? vals.dims[0] : -1;
  if (!st && (nnz < 0 || !fc_dtype_is_int(idx.dtype)))
    st = fc_fail(s->err, FC_ERR_INVALID, "%s: sparse values must be 1-D and indices integers", what);
  bool linear = !st && idx.rank == 1 && idx.dims[0] == nnz;
  bool coords = !st && idx.rank == 2 && idx.dims[0] == nnz && idx.dims[1] == out->rank;
  if (!st && !linear && !coords)
    st = fc_fail(s->err, FC_ERR_INVALID, "%s: sparse indices shape does not match %lld values", what, (long long)nnz);
  size_t es = fc_dtype_size(out->dtype);
  int64_t dense_bytes = n * (int64_t)es; /* bounded by tensor_shape */
  if (!st && dense_bytes > s->expand_budget)
    st = fc_fail(s->err, FC_ERR_NOMEM, "%s: sparse tensors would expand to more than %lld MiB; refusing", what,
                 (long long)((s->expand_budget + dense_bytes) >> 20));
  if (!st) s->expand_budget -= dense_bytes;
  if (!st && !(out->data = fc_calloc((size_t)n, es))) st = fc_fail(s->err, FC_ERR_NOMEM, "%s: out of memory", what);
  for (int64_t k = 0; !st && k < nnz; k++) {
    int64_t at = 0;
    if (linear) {
      at = fc_data_get_i64(idx.dtype, idx.data, k);
    } else {
      for (int d = 0; d < out->rank; d++) {
        int64_t c = fc_data_get_i64(idx.dtype, idx.data, k * out->rank + d);
        if (c < 0 || c >= out->dims[d]) { at = -1; break; }
        at = at * out->dims[d] + c;
      }
    }
    if (at < 0 || at >= n) {
      st = fc_fail(s->err, FC_ERR_INVALID, "%s: sparse index %lld out of range", what, (long long)at);
      break;
    }
    memcpy((char *)out->data + (size_t)at * es, (char *)vals.data + (size_t)k * es, es);
  }
  free(vals.data);
  free(idx.data);
  return st;
}

static fc_status add_constant(load_state *s, const char *name, fc_tensor *t) {
  int v = fc_graph_value(s->g, name);
  if (v < 0) { free(t->data); return fc_fail(s->err, FC_ERR_NOMEM, "out of memory"); }
  fc_value *val = &s->g->values[v];
  if (val->is_initializer) {
    free(t->data);
    return fc_fail(s->err, FC_ERR_INVALID, "initializer '%s' is defined twice", name);
  }
  val->is_initializer = true;
  val->dtype = t->dtype;
  val->rank = t->rank;
  memcpy(val->dims, t->dims, sizeof val->dims);
  val->data = t->data;
  return FC_OK;
}

static fc_status set_value_type(load_state *s, fc_value *v, const Onnx__TypeProto *tp) {
  if (!tp) return FC_OK;
  if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
    return fc_fail(s->err, FC_ERR_UNSUPPORTED, "graph input/output '%s' is not a tensor", v->name);
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  if (tt->has_elem_type) v->dtype = tt->elem_type;
  if (!tt->shape) return FC_OK;
  if (tt->shape->n_dim > FC_MAX_RANK)
    return fc_fail(s->err, FC_ERR_UNSUPPORTED, "'%s': rank %zu exceeds %d", v->name, tt->shape->n_dim, FC_MAX_RANK);
  v->rank = (int)tt->shape->n_dim;
  for (size_t d = 0; d < tt->shape->n_dim; d++) {
    const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
    v->dims[d] = -1;
    if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value > 0)
      v->dims[d] = dim->dim_value;
    else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dim->dim_param)
      v->dim_param[d] = fc_strdup(dim->dim_param);
  }
  return FC_OK;
}

static fc_status convert_attr(load_state *s, const Onnx__AttributeProto *a, const char *node, fc_attr *out) {
  memset(out, 0, sizeof *out);
  out->name = fc_strdup(a->name ? a->name : "");
  if (!out->name) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
  int type = a->has_type ? (int)a->type : 0;
  if (!type) { /* very old files leave the type out: infer from the field that is set */
    if (a->t) type = FC_ATTR_TENSOR;
    else if (a->n_ints) type = FC_ATTR_INTS;
    else if (a->n_floats) type = FC_ATTR_FLOATS;
    else if (a->has_s) type = FC_ATTR_STRING;
    else if (a->has_f) type = FC_ATTR_FLOAT;
    else type = FC_ATTR_INT;
  }
  out->type = type;
  out->i = a->i;
  out->f = a->f;
  if (a->has_s || type == FC_ATTR_STRING) {
    out->s = fc_malloc(a->s.len + 1);
    if (!out->s) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
    if (a->s.len) memcpy(out->s, a->s.data, a->s.len);
    out->s[a->s.len] = '\0';
  }
  if (a->n_ints) {
    out->ints = fc_calloc(a->n_ints, sizeof(int64_t));
    if (!out->ints) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
    memcpy(out->ints, a->ints, a->n_ints * sizeof(int64_t));
    out->n_ints = a->n_ints;
  }
  if (a->n_floats) {
    out->floats = fc_calloc(a->n_floats, sizeof(float));
    if (!out->floats) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
    memcpy(out->floats, a->floats, a->n_floats * sizeof(float));
    out->n_floats = a->n_floats;
  }
  if (type == FC_ATTR_TENSOR && a->t) {
    out->t = fc_calloc(1, sizeof(fc_tensor));
    if (!out->t) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
    char what[300];
    snprintf(what, sizeof what, "node '%s' attribute '%s'", node, out->name);
    return decode_tensor(s, a->t, what, out->t);
  }
  if (type == FC_ATTR_TENSOR && a->sparse_tensor) { /* Constant(sparse_value) */
    out->t = fc_calloc(1, sizeof(fc_tensor));
    if (!out->t) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
    char what[300];
    snprintf(what, sizeof what, "node '%s' attribute '%s'", node, out->name);
    return decode_sparse(s, a->sparse_tensor, what, out->t);
  }
  if (a->sparse_tensor && !out->t) { /* SPARSE_TENSOR attribute type */
    out->type = FC_ATTR_TENSOR;
    out->t = fc_calloc(1, sizeof(fc_tensor));
    if (!out->t) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
    return decode_sparse(s, a->sparse_tensor, node, out->t);
  }
  return FC_OK;
}

static fc_status value_list(load_state *s, char **names, size_t n, const char *node, int **out, int *count) {
  if (n > (1u << 20)) return fc_fail(s->err, FC_ERR_INVALID, "node '%s': %zu inputs/outputs", node, n);
  *out = fc_calloc(n, sizeof(int));
  if (!*out) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
  *count = (int)n;
  for (size_t i = 0; i < n; i++) {
    if (!names[i] || !names[i][0]) { (*out)[i] = -1; continue; }
    (*out)[i] = fc_graph_value(s->g, names[i]);
    if ((*out)[i] < 0) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
  }
  return FC_OK;
}

static fc_status convert_model(load_state *s, const Onnx__ModelProto *m) {
  fc_graph *g = s->g;
  const Onnx__GraphProto *gp = m->graph;
  if (!gp) return fc_fail(s->err, FC_ERR_INVALID, "the model has no graph");
  g->opset = -1;
  for (size_t i = 0; i < m->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = m->opset_import[i];
    if (!o->domain || !o->domain[0] || strcmp(o->domain, "ai.onnx") == 0) g->opset = o->version;
  }
  if (g->opset < 0) g->opset = m->n_opset_import ? 1 : 13; /* no default-domain import at all */
  if (g->opset < 7 || g->opset > 21)
    return fc_fail(s->err, FC_ERR_UNSUPPORTED, "opset %lld is not supported (flopcut reads opsets 7 to 21)",
                   (long long)g->opset);
  g->name = fc_strdup(gp->name ? gp->name : "");
  /* indices are ints: a count beyond what the value table can hold is refused up front */
  if (gp->n_node > FC_MAX_GRAPH_ITEMS || gp->n_input > FC_MAX_GRAPH_ITEMS || gp->n_output > FC_MAX_GRAPH_ITEMS ||
      gp->n_initializer > FC_MAX_GRAPH_ITEMS || gp->n_sparse_initializer > FC_MAX_GRAPH_ITEMS)
    return fc_fail(s->err, FC_ERR_UNSUPPORTED, "the graph has more than %d nodes, inputs, outputs or initializers",
                   FC_MAX_GRAPH_ITEMS);
  for (size_t i = 0; i < gp->n_initializer; i++) {
    const Onnx__TensorProto *t = gp->initializer[i];
    char what[300];
    const char *nm = t->name && t->name[0] ? t->name : NULL;
    snprintf(what, sizeof what, "initializer '%s'", nm ? nm : "(unnamed)");
    if (!nm) return fc_fail(s->err, FC_ERR_INVALID, "initializer #%zu has no name", i);
    fc_tensor tensor;
    fc_status st = decode_tensor(s, t, what, &tensor);
    if (st) { free(tensor.data); return st; }
    if ((st = add_constant(s, nm, &tensor))) return st;
  }
  for (size_t i = 0; i < gp->n_sparse_initializer; i++) {
    const Onnx__SparseTensorProto *sp = gp->sparse_initializer[i];
    const char *nm = sp->values && sp->values->name && sp->values->name[0] ? sp->values->name : NULL;
    if (!nm) return fc_fail(s->err, FC_ERR_INVALID, "sparse initializer #%zu has no name", i);
    char what[300];
    snprintf(what, sizeof what, "sparse initializer '%s'", nm);
    fc_tensor tensor;
    fc_status st = decode_sparse(s, sp, what, &tensor);
    if (st) { free(tensor.data); return st; }
    if ((st = add_constant(s, nm, &tensor))) return st;
  }
  int n_in = 0;
  g->inputs = fc_calloc(gp->n_input, sizeof(int));
  g->outputs = fc_calloc(gp->n_output, sizeof(int));
  if (!g->inputs || !g->outputs) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < gp->n_input; i++) {
    const Onnx__ValueInfoProto *vi = gp->input[i];
    if (!vi->name || !vi->name[0]) return fc_fail(s->err, FC_ERR_INVALID, "graph input #%zu has no name", i);
    int v = fc_graph_value(g, vi->name);
    if (v < 0) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
    if (g->values[v].is_initializer) continue; /* IR < 4 lists initializers as inputs too */
    if (g->values[v].is_graph_input) return fc_fail(s->err, FC_ERR_INVALID, "graph input '%s' is listed twice", vi->name);
    g->values[v].is_graph_input = true;
    fc_status st = set_value_type(s, &g->values[v], vi->type);
    if (st) return st;
    g->inputs[n_in++] = v;
  }
  g->n_inputs = n_in;
  for (size_t i = 0; i < gp->n_output; i++) {
    const Onnx__ValueInfoProto *vi = gp->output[i];
    if (!vi->name || !vi->name[0]) return fc_fail(s->err, FC_ERR_INVALID, "graph output #%zu has no name", i);
    int v = fc_graph_value(g, vi->name);
    if (v < 0) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
    g->values[v].is_graph_output = true;
    g->outputs[i] = v;
  }
  g->n_outputs = (int)gp->n_output;
  g->nodes = fc_calloc(gp->n_node, sizeof(fc_node));
  if (!g->nodes) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory for %zu nodes", gp->n_node);
  for (size_t i = 0; i < gp->n_node; i++) {
    const Onnx__NodeProto *np = gp->node[i];
    fc_node *n = &g->nodes[g->n_nodes++];
    char fallback[48];
    snprintf(fallback, sizeof fallback, "#%zu", i);
    n->name = fc_strdup(np->name && np->name[0] ? np->name : fallback);
    n->op_type = fc_strdup(np->op_type ? np->op_type : "");
    n->domain = fc_strdup(np->domain ? np->domain : "");
    if (!n->name || !n->op_type || !n->domain) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
    if (!n->op_type[0]) return fc_fail(s->err, FC_ERR_INVALID, "node '%s' has no op_type", n->name);
    fc_status st = value_list(s, np->input, np->n_input, n->name, &n->inputs, &n->n_inputs);
    if (!st) st = value_list(s, np->output, np->n_output, n->name, &n->outputs, &n->n_outputs);
    if (st) return st;
    n->attrs = fc_calloc(np->n_attribute, sizeof(fc_attr));
    if (!n->attrs) return fc_fail(s->err, FC_ERR_NOMEM, "out of memory");
    for (size_t a = 0; a < np->n_attribute; a++) {
      n->n_attrs++;
      if ((st = convert_attr(s, np->attribute[a], n->name, &n->attrs[a]))) return st;
    }
  }
  return FC_OK;
}

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

/* Walks the wire format with the schema's descriptors and checks how deep messages nest (iteration
 * over fields, recursion only into message fields, at most FC_MAX_PROTO_DEPTH deep). Returns false
 * only for too-deep nesting; other malformations are left for protobuf-c to report. */
static bool proto_depth_ok(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end, int depth) {
  if (depth > FC_MAX_PROTO_DEPTH) return false;
  while (p < end) {
    uint64_t key, len;
    if (!read_varint(&p, end, &key)) return true;
    switch (key & 7) {
      case 0:
        if (!read_varint(&p, end, &len)) return true;
        break;
      case 1:
        if (end - p < 8) return true;
        p += 8;
        break;
      case 5:
        if (end - p < 4) return true;
        p += 4;
        break;
      case 2: {
        if (!read_varint(&p, end, &len) || len > (uint64_t)(end - p)) return true;
        const ProtobufCFieldDescriptor *f =
            key >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3)) : NULL;
        if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
            !proto_depth_ok((const ProtobufCMessageDescriptor *)f->descriptor, p, p + len, depth + 1))
          return false;
        p += len;
        break;
      }
      default:
        return true; /* groups or garbage: protobuf-c rejects it */
    }
  }
  return true;
}

fc_status fc_onnx_load_buffer(const uint8_t *buf, size_t len, const char *base_dir, fc_graph **out, fc_err *err) {
  *out = NULL;
  if (!proto_depth_ok(&onnx__model_proto__descriptor, buf, buf + len, 0))
    return fc_fail(err, FC_ERR_PARSE, "not a valid ONNX model: messages nest more than %d deep", FC_MAX_PROTO_DEPTH);
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
  if (!m) return fc_fail(err, FC_ERR_PARSE, "not a valid ONNX model: the protobuf does not parse (truncated or corrupt file?)");
  int64_t budget = (int64_t)len > FC_SPARSE_EXPAND_MIN / FC_SPARSE_EXPAND_RATIO ? (int64_t)len * FC_SPARSE_EXPAND_RATIO
                                                                               : FC_SPARSE_EXPAND_MIN;
  load_state s = {fc_graph_new(), base_dir, err, budget};
  fc_status st = s.g ? convert_model(&s, m) : fc_fail(err, FC_ERR_NOMEM, "out of memory");
  onnx__model_proto__free_unpacked(m, NULL);
  if (st) {
    fc_graph_free(s.g);
    return st;
  }
  *out = s.g;
  return FC_OK;
}

/* Maps a file read-only: the protobuf parser copies what it keeps, so the file's bytes are never
 * copied into anonymous memory first (halves peak memory on large models). */
static fc_status map_file(const char *path, uint8_t **buf, size_t *len, fc_err *err) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return fc_fail(err, FC_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return fc_fail(err, FC_ERR_IO, "cannot read '%s': not a regular file", path);
  }
  if (sb.st_size == 0) {
    close(fd);
    return fc_fail(err, FC_ERR_PARSE, "'%s' is empty, not an ONNX model", path);
  }
  if ((int64_t)sb.st_size > FC_MAX_TENSOR_BYTES) {
    close(fd);
    return fc_fail(err, FC_ERR_IO, "cannot read '%s': file too large", path);
  }
  void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return fc_fail(err, FC_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
  *buf = p;
  *len = (size_t)sb.st_size;
  return FC_OK;
}

fc_status fc_onnx_load_file(const char *path, fc_graph **out, fc_err *err) {
  uint8_t *buf = NULL;
  size_t len = 0;
  *out = NULL;
  fc_status st = map_file(path, &buf, &len, err);
  if (st) return st;
  char *dir = fc_strdup(path);
  if (!dir) { munmap(buf, len); return fc_fail(err, FC_ERR_NOMEM, "out of memory"); }
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  else strcpy(dir, ".");
  st = fc_onnx_load_buffer(buf, len, dir, out, err);
  if (st && err && err->status == st) { /* name the file in the message */
    char tmp[sizeof err->msg];
    memcpy(tmp, err->msg, sizeof tmp);
    int w = snprintf(err->msg, sizeof err->msg, "%.200s: ", path);
    if (w > 0 && (size_t)w < sizeof err->msg) snprintf(err->msg + w, sizeof err->msg - (size_t)w, "%.300s", tmp);
  }
  free(dir);
  munmap(buf, len);
  return st;
}
