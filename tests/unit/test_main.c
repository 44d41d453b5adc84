/* Runs every unit test table and prints the closing "N passed, N failed" line. */
#include <string.h>
#include "harness.h"

int fc_test_failures = 0;
const char *fc_test_data_dir = "tests/data";

extern const fc_test_case fc_tests_util[];
extern const fc_test_case fc_tests_affinity[];
extern const fc_test_case fc_tests_graph[];
extern const fc_test_case fc_tests_kernels[];
extern const fc_test_case fc_tests_dense[];
extern const fc_test_case fc_tests_idx[];
extern const fc_test_case fc_tests_eval[];
extern const fc_test_case fc_tests_prune[];
extern const fc_test_case fc_tests_sparse[];

int main(int argc, char **argv) {
  if (argc > 1) fc_test_data_dir = argv[1];
  const fc_test_case *tables[] = {fc_tests_util, fc_tests_graph, fc_tests_idx, fc_tests_eval, fc_tests_prune, fc_tests_dense, fc_tests_kernels, fc_tests_sparse,
                                  fc_tests_affinity};
  int passed = 0, failed = 0;
  for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
    for (const fc_test_case *c = tables[t]; c->name; c++) {
      int before = fc_test_failures;
      c->fn();
      if (fc_test_failures == before) {
        passed++;
      } else {
        failed++;
        fprintf(stderr, "FAIL %s\n", c->name);
      }
    }
  printf("unit: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
