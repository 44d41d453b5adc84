/* Saves a model by patching the original protobuf: tensors flopcut changed get new contents (dense
 * raw_data or a SparseTensorProto), everything else is packed back byte for byte. */
#include "onnx/onnx_save.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "onnx.pb-c.h"
#include "util/mem.h"

/* protobuf-c frees an unpacked message with its own bookkeeping, so every struct we modify is
 * snapshotted first and restored before the free; what we allocate is ours to free. */
typedef struct undo_entry {
  void *at;
  size_t size;
  unsigned char *saved;
} undo_entry;

typedef struct save_state {
  undo_entry *undo;
  size_t n_undo;
  void **owned;
  size_t n_owned;
  fc_err *err;
} save_state;

static void *own(save_state *s, void *p) {
  if (!p) return NULL;
  void **o = fc_realloc_array(s->owned, s->n_owned + 1, sizeof *o);
  if (!o) {
    free(p);
    return NULL;
  }
  s->owned = o;
  o[s->n_owned++] = p;
  return p;
}

static bool snapshot(save_state *s, void *at, size_t size) {
  undo_entry *u = fc_realloc_array(s->undo, s->n_undo + 1, sizeof *u);
  if (!u) return false;
  s->undo = u;
  unsigned char *copy = fc_malloc(size);
  if (!copy) return false;
  memcpy(copy, at, size);
  u[s->n_undo++] = (undo_entry){at, size, copy};
  return true;
}

static void undo_all(save_state *s) {
  for (size_t i = s->n_undo; i-- > 0;) {
    memcpy(s->undo[i].at, s->undo[i].saved, s->undo[i].size);
    free(s->undo[i].saved);
  }
  free(s->undo);
  for (size_t i = 0; i < s->n_owned; i++) free(s->owned[i]);
  free(s->owned);
}

static fc_status oom(save_state *s) { return fc_fail(s->err, FC_ERR_NOMEM, "out of memory writing the model"); }

static bool is_external(const Onnx__TensorProto *t) {
  return t && t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

static int64_t patch_numel(const fc_onnx_patch *p) {
  int64_t n = 1;
  for (int d = 0; d < p->rank; d++)
    if (!fc_mul_i64(n, p->dims[d], &n)) return -1;
  return n;
}

/* Replaces t's contents by raw little-endian bytes (typed fields and external data cleared). */
static fc_status set_dense(save_state *s, Onnx__TensorProto *t, const void *data, size_t nbytes) {
  if (!snapshot(s, t, sizeof *t)) return oom(s);
  t->n_float_data = t->n_int32_data = t->n_string_data = t->n_int64_data = t->n_double_data = t->n_uint64_data = 0;
  t->float_data = NULL;
  t->int32_data = NULL;
  t->string_data = NULL;
  t->int64_data = NULL;
  t->double_data = NULL;
  t->uint64_data = NULL;
  t->segment = NULL;
  t->n_external_data = 0;
  t->external_data = NULL;
  t->has_data_location = 0;
  t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
  t->has_raw_data = nbytes > 0; /* an empty tensor has no data field at all (readers differ on empty bytes) */
  t->raw_data.len = nbytes;
  t->raw_data.data = nbytes ? (uint8_t *)data : NULL; /* only read by pack */
  return FC_OK;
}

static Onnx__TensorProto *new_tensor(save_state *s, const char *name, int dtype, int rank, const int64_t *dims,
                                     const void *data, size_t nbytes) {
  Onnx__TensorProto *t = own(s, fc_malloc(sizeof *t));
  int64_t *d = own(s, fc_calloc((size_t)(rank ? rank : 1), sizeof *d));
  if (!t || !d) return NULL;
  onnx__tensor_proto__init(t);
  memcpy(d, dims, (size_t)rank * sizeof *d);
  t->name = (char *)name;
  t->n_dims = (size_t)rank;
  t->dims = d;
  t->has_data_type = 1;
  t->data_type = dtype;
  t->has_raw_data = nbytes > 0;
  t->raw_data.len = nbytes;
  t->raw_data.data = nbytes ? (uint8_t *)data : NULL;
  return t;
}

static bool elem_nonzero(const fc_onnx_patch *p, const unsigned char *e, size_t es) {
  if (p->dtype == FC_DT_FLOAT) {
    float f;
    memcpy(&f, e, sizeof f);
    return f != 0.0f;
  }
  for (size_t b = 0; b < es; b++)
    if (e[b]) return true;
  return false;
}

/* The patch as a SparseTensorProto: values [NNZ] and int64 linear indices [NNZ]. */
static Onnx__SparseTensorProto *new_sparse(save_state *s, const fc_onnx_patch *p, int64_t numel) {
  size_t es = fc_dtype_size(p->dtype);
  const unsigned char *src = p->data;
  int64_t nnz = 0;
  for (int64_t i = 0; i < numel; i++) nnz += elem_nonzero(p, src + (size_t)i * es, es);
  unsigned char *vals = own(s, fc_calloc((size_t)(nnz ? nnz : 1), es));
  int64_t *idx = own(s, fc_calloc((size_t)(nnz ? nnz : 1), sizeof *idx));
  Onnx__SparseTensorProto *sp = own(s, fc_malloc(sizeof *sp));
  int64_t *dims = own(s, fc_calloc((size_t)(p->rank ? p->rank : 1), sizeof *dims));
  if (!vals || !idx || !sp || !dims) return NULL;
  int64_t k = 0;
  for (int64_t i = 0; i < numel; i++) {
    if (!elem_nonzero(p, src + (size_t)i * es, es)) continue;
    memcpy(vals + (size_t)k * es, src + (size_t)i * es, es);
    idx[k++] = i;
  }
  onnx__sparse_tensor_proto__init(sp);
  sp->values = new_tensor(s, p->name, p->dtype, 1, &nnz, vals, (size_t)nnz * es);
  sp->indices = new_tensor(s, NULL, FC_DT_INT64, 1, &nnz, idx, (size_t)nnz * sizeof *idx);
  if (!sp->values || !sp->indices) return NULL;
  memcpy(dims, p->dims, (size_t)p->rank * sizeof *dims);
  sp->n_dims = (size_t)p->rank;
  sp->dims = dims;
  return sp;
}

static fc_status check_shape(save_state *s, const fc_onnx_patch *p, int dtype, size_t n_dims, const int64_t *dims) {
  bool same = dtype == p->dtype && n_dims == (size_t)p->rank;
  for (size_t d = 0; same && d < n_dims; d++) same = dims[d] == p->dims[d];
  if (!same) return fc_fail(s->err, FC_ERR_INVALID, "tensor '%s': new contents do not match its type or shape in the file", p->name);
  return FC_OK;
}

static Onnx__NodeProto *constant_node(Onnx__GraphProto *gp, const char *name) {
  for (size_t i = 0; i < gp->n_node; i++) {
    Onnx__NodeProto *n = gp->node[i];
    if (n->op_type && !strcmp(n->op_type, "Constant") && n->n_output >= 1 && n->output[0] && !strcmp(n->output[0], name))
      return n;
  }
  return NULL;
}

/* Patches a Constant node's value in the form it already has (dense `value` or `sparse_value`). */
static fc_status patch_constant(save_state *s, Onnx__NodeProto *n, const fc_onnx_patch *p, int64_t numel) {
  size_t nbytes = (size_t)numel * fc_dtype_size(p->dtype);
  for (size_t a = 0; a < n->n_attribute; a++) {
    Onnx__AttributeProto *at = n->attribute[a];
    if (!at->name) continue;
    if (!strcmp(at->name, "value") && at->t) {
      fc_status st = check_shape(s, p, at->t->data_type, at->t->n_dims, at->t->dims);
      return st ? st : set_dense(s, at->t, p->data, nbytes);
    }
    if (!strcmp(at->name, "sparse_value") && at->sparse_tensor) {
      Onnx__SparseTensorProto *sp = at->sparse_tensor;
      fc_status st = check_shape(s, p, sp->values ? sp->values->data_type : 0, sp->n_dims, sp->dims);
      if (st) return st;
      Onnx__SparseTensorProto *ns = new_sparse(s, p, numel);
      if (!ns) return oom(s);
      if (!snapshot(s, at, sizeof *at)) return oom(s);
      at->sparse_tensor = ns;
      return FC_OK;
    }
  }
  return fc_fail(s->err, FC_ERR_UNSUPPORTED, "Constant node for '%s' holds no tensor flopcut can rewrite", p->name);
}

static fc_status apply(save_state *s, Onnx__ModelProto *m, const fc_graph *g, const fc_onnx_patch *patches, size_t np) {
  Onnx__GraphProto *gp = m->graph;
  if (!gp) return fc_fail(s->err, FC_ERR_INVALID, "the model has no graph");
  /* where each initializer goes: 0 kept dense, 1 moved to sparse; and the reverse */
  size_t ni = gp->n_initializer, ns = gp->n_sparse_initializer;
  Onnx__TensorProto **init = own(s, fc_calloc(ni + np + 1, sizeof *init));
  Onnx__SparseTensorProto **sparse = own(s, fc_calloc(ns + np + 1, sizeof *sparse));
  bool *init_gone = own(s, fc_calloc(ni + 1, 1)), *init_done = own(s, fc_calloc(ni + 1, 1));
  bool *sparse_gone = own(s, fc_calloc(ns + 1, 1));
  if (!init || !sparse || !init_gone || !init_done || !sparse_gone) return oom(s);
  size_t n_init_new = 0, n_sparse_new = 0;
  Onnx__TensorProto **init_add = own(s, fc_calloc(np + 1, sizeof *init_add));
  Onnx__SparseTensorProto **sparse_add = own(s, fc_calloc(np + 1, sizeof *sparse_add));
  if (!init_add || !sparse_add) return oom(s);
  bool any_sparse = false;
  for (size_t k = 0; k < np; k++) {
    const fc_onnx_patch *p = &patches[k];
    int64_t numel = patch_numel(p);
    size_t es = fc_dtype_size(p->dtype);
    if (numel < 0 || es == 0 || p->rank < 0 || p->rank > FC_MAX_RANK || !p->name)
      return fc_fail(s->err, FC_ERR_ARG, "tensor '%s': bad patch", p->name ? p->name : "?");
    size_t nbytes = (size_t)numel * es;
    fc_status st = FC_OK;
    bool found = false;
    for (size_t i = 0; i < ni && !found; i++) {
      Onnx__TensorProto *t = gp->initializer[i];
      if (!t->name || strcmp(t->name, p->name)) continue;
      found = true;
      init_done[i] = true;
      if ((st = check_shape(s, p, t->data_type, t->n_dims, t->dims))) return st;
      if (p->sparse) {
        if (!(sparse_add[n_sparse_new++] = new_sparse(s, p, numel))) return oom(s);
        init_gone[i] = true;
        any_sparse = true;
      } else if ((st = set_dense(s, t, p->data, nbytes))) {
        return st;
      }
    }
    for (size_t i = 0; i < ns && !found; i++) {
      Onnx__SparseTensorProto *sp = gp->sparse_initializer[i];
      if (!sp->values || !sp->values->name || strcmp(sp->values->name, p->name)) continue;
      found = true;
      if ((st = check_shape(s, p, sp->values->data_type, sp->n_dims, sp->dims))) return st;
      sparse_gone[i] = true;
      if (p->sparse) {
        if (!(sparse_add[n_sparse_new++] = new_sparse(s, p, numel))) return oom(s);
      } else if (!(init_add[n_init_new++] = new_tensor(s, p->name, p->dtype, p->rank, p->dims, p->data, nbytes))) {
        return oom(s);
      }
    }
    if (!found) {
      Onnx__NodeProto *cn = constant_node(gp, p->name);
      if (!cn) return fc_fail(s->err, FC_ERR_INVALID, "tensor '%s' is not stored in the model file", p->name);
      if ((st = patch_constant(s, cn, p, numel))) return st;
    }
  }
  /* external data cannot follow the model to another folder: write it inline */
  for (size_t i = 0; i < ni; i++) {
    Onnx__TensorProto *t = gp->initializer[i];
    if (init_done[i] || !is_external(t)) continue;
    int v = g && t->name ? fc_graph_find(g, t->name) : -1;
    const fc_value *val = v >= 0 ? &g->values[v] : NULL;
    if (!val || !val->data || !val->is_initializer)
      return fc_fail(s->err, FC_ERR_UNSUPPORTED, "initializer '%s' lives in external data that could not be inlined",
                     t->name ? t->name : "?");
    fc_status st = set_dense(s, t, val->data, (size_t)fc_value_numel(val) * fc_dtype_size(val->dtype));
    if (st) return st;
  }
  for (size_t i = 0; i < ns; i++) {
    const Onnx__SparseTensorProto *sp = gp->sparse_initializer[i];
    if (!sparse_gone[i] && (is_external(sp->values) || is_external(sp->indices)))
      return fc_fail(s->err, FC_ERR_UNSUPPORTED, "sparse initializer with external data cannot be rewritten");
  }
  size_t a = 0, b = 0;
  for (size_t i = 0; i < ni; i++)
    if (!init_gone[i]) init[a++] = gp->initializer[i];
  for (size_t i = 0; i < n_init_new; i++) init[a++] = init_add[i];
  for (size_t i = 0; i < ns; i++)
    if (!sparse_gone[i]) sparse[b++] = gp->sparse_initializer[i];
  for (size_t i = 0; i < n_sparse_new; i++) sparse[b++] = sparse_add[i];
  if (!snapshot(s, gp, sizeof *gp) || !snapshot(s, m, sizeof *m)) return oom(s);
  gp->initializer = init;
  gp->n_initializer = a;
  gp->sparse_initializer = sparse;
  gp->n_sparse_initializer = b;
  /* sparse initializers exist from IR version 6 on */
  if (any_sparse && (!m->has_ir_version || m->ir_version < 6)) {
    m->has_ir_version = 1;
    m->ir_version = 6;
  }
  return FC_OK;
}

/* The whole file in memory (the model was loaded from it already, so its size is known to be sane). */
static fc_status read_all(const char *path, uint8_t **buf, size_t *len, fc_err *err) {
  int fd = open(path, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    fc_status r = fc_fail(err, FC_ERR_IO, "cannot read '%s': %s", path, fd < 0 ? strerror(errno) : "not a regular file");
    if (fd >= 0) close(fd);
    return r;
  }
  size_t n = (size_t)st.st_size, at = 0;
  uint8_t *b = fc_malloc(n);
  if (!b) {
    close(fd);
    return fc_fail(err, FC_ERR_NOMEM, "out of memory reading '%s'", path);
  }
  while (at < n) {
    ssize_t r = read(fd, b + at, n - at);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    at += (size_t)r;
  }
  close(fd);
  if (at != n) {
    free(b);
    return fc_fail(err, FC_ERR_IO, "cannot read '%s': short read", path);
  }
  *buf = b;
  *len = n;
  return FC_OK;
}

fc_status fc_onnx_check_distinct(const char *in_path, const char *out_path, fc_err *err) {
  struct stat si, so;
  if (stat(in_path, &si) != 0) return fc_fail(err, FC_ERR_IO, "cannot open '%s': %s", in_path, strerror(errno));
  if (stat(out_path, &so) != 0) return FC_OK; /* does not exist yet */
  if (si.st_dev == so.st_dev && si.st_ino == so.st_ino)
    return fc_fail(err, FC_ERR_ARG, "refusing to write '%s': it is the input model '%s' (choose another -o)", out_path,
                   in_path);
  return FC_OK;
}

fc_status fc_write_file_atomic(const char *path, const void *buf, size_t len, fc_err *err) {
  size_t pl = strlen(path);
  char *tmp = fc_malloc(pl + 16);
  if (!tmp) return fc_fail(err, FC_ERR_NOMEM, "out of memory");
  snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    fc_status st = fc_fail(err, FC_ERR_IO, "cannot create a file beside '%s': %s", path, strerror(errno));
    free(tmp);
    return st;
  }
  const unsigned char *p = buf;
  size_t left = len;
  fc_status st = FC_OK;
  while (left && !st) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) st = fc_fail(err, FC_ERR_IO, "cannot write '%s': %s", tmp, w < 0 ? strerror(errno) : "no progress");
    else p += w, left -= (size_t)w;
  }
  if (!st && fchmod(fd, 0644) != 0) st = fc_fail(err, FC_ERR_IO, "cannot set the mode of '%s': %s", tmp, strerror(errno));
  if (!st && fsync(fd) != 0) st = fc_fail(err, FC_ERR_IO, "cannot sync '%s': %s", tmp, strerror(errno));
  if (close(fd) != 0 && !st) st = fc_fail(err, FC_ERR_IO, "cannot close '%s': %s", tmp, strerror(errno));
  if (!st && rename(tmp, path) != 0) st = fc_fail(err, FC_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
  if (st) {
    unlink(tmp);
  } else { /* make the rename itself durable: sync the folder (best effort) */
    char *slash = strrchr(tmp, '/');
    if (slash) slash[slash == tmp ? 1 : 0] = '\0';
    int dfd = open(slash ? tmp : ".", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      (void)fsync(dfd);
      close(dfd);
    }
  }
  free(tmp);
  return st;
}

fc_status fc_onnx_save_patched(const char *in_path, const char *out_path, const fc_graph *g,
                               const fc_onnx_patch *patches, size_t n_patches, fc_err *err) {
  fc_status st = fc_onnx_check_distinct(in_path, out_path, err);
  if (st) return st;
  uint8_t *buf = NULL;
  size_t len = 0;
  if ((st = read_all(in_path, &buf, &len, err))) return st;
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
  free(buf);
  if (!m) return fc_fail(err, FC_ERR_PARSE, "'%s' is not a valid ONNX model (it changed since it was loaded?)", in_path);
  save_state s = {.err = err};
  st = apply(&s, m, g, patches, n_patches);
  uint8_t *out = NULL;
  size_t out_len = 0;
  if (!st) {
    out_len = onnx__model_proto__get_packed_size(m);
    if (out_len > (size_t)INT32_MAX)
      st = fc_fail(err, FC_ERR_UNSUPPORTED, "the output would be %zu bytes, over protobuf's 2 GB limit", out_len);
    else if (!(out = fc_malloc(out_len)))
      st = fc_fail(err, FC_ERR_NOMEM, "out of memory for %zu bytes", out_len);
    else
      onnx__model_proto__pack(m, out);
  }
  undo_all(&s);
  onnx__model_proto__free_unpacked(m, NULL);
  if (!st) st = fc_write_file_atomic(out_path, out, out_len, err);
  free(out);
  return st;
}
