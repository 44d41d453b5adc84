/* Unit tests: value table, topological sort, cycle and dangling-input detection. */
#include <stdlib.h>
#include <string.h>
#include "graph/graph.h"
#include "harness.h"
#include "util/mem.h"

/* Appends a node reading `in` and writing `out` (single names). */
static void add_node(fc_graph *g, const char *name, const char *in, const char *out) {
  g->nodes = realloc(g->nodes, sizeof(fc_node) * (size_t)(g->n_nodes + 1));
  fc_node *n = &g->nodes[g->n_nodes++];
  memset(n, 0, sizeof *n);
  n->name = fc_strdup(name);
  n->op_type = fc_strdup("Relu");
  n->domain = fc_strdup("");
  n->inputs = malloc(sizeof(int));
  n->outputs = malloc(sizeof(int));
  n->inputs[0] = fc_graph_value(g, in);
  n->outputs[0] = fc_graph_value(g, out);
  n->n_inputs = n->n_outputs = 1;
}

static void test_value_table_grows(void) {
  fc_graph *g = fc_graph_new();
  char name[32];
  for (int i = 0; i < 5000; i++) {
    snprintf(name, sizeof name, "v%d", i);
    CHECK_EQ_I64(fc_graph_value(g, name), i);
  }
  CHECK_EQ_I64(fc_graph_find(g, "v4321"), 4321);
  CHECK_EQ_I64(fc_graph_find(g, "nope"), -1);
  CHECK_EQ_I64(fc_graph_value(g, "v17"), 17);
  fc_graph_free(g);
}

static void test_sort_orders_nodes(void) {
  fc_graph *g = fc_graph_new();
  add_node(g, "c", "b", "c_out");
  add_node(g, "b", "a", "b");
  add_node(g, "a", "x", "a");
  g->values[fc_graph_find(g, "x")].is_graph_input = true;
  fc_err err = {0};
  CHECK(fc_graph_sort(g, &err) == FC_OK);
  CHECK(!strcmp(g->nodes[0].name, "a") && !strcmp(g->nodes[2].name, "c"));
  CHECK_EQ_I64(g->values[fc_graph_find(g, "b")].producer, 1);
  fc_graph_free(g);
}

static void test_sort_rejects_cycle(void) {
  fc_graph *g = fc_graph_new();
  add_node(g, "p", "q_out", "p_out");
  add_node(g, "q", "p_out", "q_out");
  fc_err err = {0};
  CHECK(fc_graph_sort(g, &err) == FC_ERR_INVALID);
  CHECK(strstr(err.msg, "cycle") != NULL);
  fc_graph_free(g);
}

static void test_sort_rejects_dangling_input(void) {
  fc_graph *g = fc_graph_new();
  add_node(g, "lonely", "nowhere", "out");
  fc_err err = {0};
  CHECK(fc_graph_sort(g, &err) == FC_ERR_INVALID);
  CHECK(strstr(err.msg, "lonely") && strstr(err.msg, "nowhere"));
  fc_graph_free(g);
}

TEST_TABLE(fc_tests_graph) = {
    {"value_table_grows", test_value_table_grows},
    {"sort_orders_nodes", test_sort_orders_nodes},
    {"sort_rejects_cycle", test_sort_rejects_cycle},
    {"sort_rejects_dangling_input", test_sort_rejects_dangling_input},
    {NULL, NULL},
};
