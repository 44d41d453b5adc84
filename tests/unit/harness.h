/* A minimal test harness: TEST(name) functions registered in a table, CHECK macros that count
 * failures and keep going; the runner prints "N passed, N failed". */
#ifndef FC_TESTS_HARNESS_H
#define FC_TESTS_HARNESS_H
#include <stdio.h>

extern int fc_test_failures;
extern const char *fc_test_data_dir;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);     \
      fc_test_failures++;                                                            \
    }                                                                                \
  } while (0)
#define CHECK_EQ_I64(a, b)                                                           \
  do {                                                                               \
    long long a_ = (long long)(a), b_ = (long long)(b);                              \
    if (a_ != b_) {                                                                  \
      fprintf(stderr, "  %s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, a_, b_); \
      fc_test_failures++;                                                            \
    }                                                                                \
  } while (0)

typedef struct fc_test_case {
  const char *name;
  void (*fn)(void);
} fc_test_case;

/* Each test file defines one table; the runner lists the tables. */
#define TEST_TABLE(name) const fc_test_case name[]
#endif
