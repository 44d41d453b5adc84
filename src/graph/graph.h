/* The graph IR every verb shares: values (tensors, with shape and optional constant data) and
 * nodes (an op reading and writing values by index). Loaded from ONNX, then shape-inferred. */
#ifndef FC_GRAPH_GRAPH_H
#define FC_GRAPH_GRAPH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

#define FC_MAX_RANK 8

/* Element types use ONNX's TensorProto.DataType numbers so no table is needed at the border. */
typedef enum fc_dtype {
  FC_DT_UNDEFINED = 0,
  FC_DT_FLOAT = 1,
  FC_DT_UINT8 = 2,
  FC_DT_INT8 = 3,
  FC_DT_UINT16 = 4,
  FC_DT_INT16 = 5,
  FC_DT_INT32 = 6,
  FC_DT_INT64 = 7,
  FC_DT_STRING = 8,
  FC_DT_BOOL = 9,
  FC_DT_FLOAT16 = 10,
  FC_DT_DOUBLE = 11,
  FC_DT_UINT32 = 12,
  FC_DT_UINT64 = 13,
} fc_dtype;

size_t fc_dtype_size(int dtype); /* 0 for types flopcut cannot hold */
const char *fc_dtype_name(int dtype);

typedef struct fc_value {
  char *name;
  int dtype;                      /* FC_DT_*, FC_DT_UNDEFINED while unknown */
  int rank;                       /* -1 while unknown */
  int64_t dims[FC_MAX_RANK];      /* -1: dynamic (see dim_param) */
  char *dim_param[FC_MAX_RANK];   /* symbolic name of a dynamic dim from the file, or NULL */
  void *data;                     /* constant contents (initializer, Constant, folded), or NULL */
  int producer;                   /* index of the node writing it, -1 for inputs/initializers */
  bool is_initializer;
  bool is_graph_input;            /* a real input the user feeds (not an initializer) */
  bool is_graph_output;
  bool from_constant_node;        /* data came from a Constant node (counts as a parameter) */
  bool folded;                    /* data was computed by constant folding */
} fc_value;

typedef enum fc_attr_type {
  FC_ATTR_FLOAT = 1,
  FC_ATTR_INT = 2,
  FC_ATTR_STRING = 3,
  FC_ATTR_TENSOR = 4,
  FC_ATTR_GRAPH = 5,
  FC_ATTR_FLOATS = 6,
  FC_ATTR_INTS = 7,
  FC_ATTR_STRINGS = 8,
} fc_attr_type;

/* A constant tensor carried by an attribute (Constant.value, ConstantOfShape.value). */
typedef struct fc_tensor {
  int dtype;
  int rank;
  int64_t dims[FC_MAX_RANK];
  void *data;
} fc_tensor;

typedef struct fc_attr {
  char *name;
  int type;        /* fc_attr_type */
  int64_t i;
  float f;
  char *s;
  int64_t *ints;
  size_t n_ints;
  float *floats;
  size_t n_floats;
  fc_tensor *t;
} fc_attr;

struct fc_op_def;

typedef struct fc_node {
  char *name;
  char *op_type;
  char *domain;
  int *inputs;      /* value indices; -1 for an omitted optional input */
  int n_inputs;
  int *outputs;     /* value indices; -1 for an omitted optional output */
  int n_outputs;
  fc_attr *attrs;
  int n_attrs;
  const struct fc_op_def *def; /* NULL: op unknown to flopcut */
} fc_node;

typedef struct fc_graph {
  fc_value *values;
  int n_values, cap_values;
  fc_node *nodes;   /* in topological order after fc_graph_sort */
  int n_nodes;
  int *inputs;      /* graph inputs the user feeds */
  int n_inputs;
  int *outputs;
  int n_outputs;
  int64_t opset;    /* default-domain opset version */
  char *name;
  /* name → value index, open addressing */
  int *hash;
  int hash_cap;
  int64_t folded_elems; /* elements computed by constant folding so far (bounded per graph) */
} fc_graph;

fc_graph *fc_graph_new(void);
void fc_graph_free(fc_graph *g);
/* Frees what a node owns (names, edges, attributes) and zeroes it. */
void fc_node_free(fc_node *n);
/* Index of the value with this name, creating an empty one if absent; -1 on allocation failure. */
int fc_graph_value(fc_graph *g, const char *name);
/* Index of the value with this name or -1. */
int fc_graph_find(const fc_graph *g, const char *name);

/* Element count of a value with known shape; -1 if unknown or overflowing. */
int64_t fc_value_numel(const fc_value *v);
bool fc_value_known(const fc_value *v);
/* "1x3x224x224" into buf. */
const char *fc_shape_str(const fc_value *v, char *buf, size_t n);

const fc_attr *fc_node_attr(const fc_node *n, const char *name);
int64_t fc_attr_int(const fc_node *n, const char *name, int64_t dflt);
float fc_attr_float(const fc_node *n, const char *name, float dflt);
const char *fc_attr_str(const fc_node *n, const char *name, const char *dflt);
/* Input value i of node n, or NULL if absent/omitted. */
fc_value *fc_node_in(const fc_graph *g, const fc_node *n, int i);
fc_value *fc_node_out(const fc_graph *g, const fc_node *n, int i);

/* Orders nodes topologically; fails naming a node on a cycle or reading an undefined value. */
fc_status fc_graph_sort(fc_graph *g, fc_err *err);

/* Reads element i of a constant integer (any int type) or float tensor as int64 / double. */
int64_t fc_data_get_i64(int dtype, const void *data, int64_t i);
double fc_data_get_f64(int dtype, const void *data, int64_t i);
void fc_data_set_f64(int dtype, void *data, int64_t i, double x);
void fc_data_set_i64(int dtype, void *data, int64_t i, int64_t x);
bool fc_dtype_is_int(int dtype);
bool fc_dtype_is_float(int dtype);
#endif
