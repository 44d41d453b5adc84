/* Unit tests: pinning a plan's team while it runs (runtime/affinity.c). */
#define _GNU_SOURCE
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "runtime/affinity.h"

static int allowed_cpus(cpu_set_t *m) {
  if (sched_getaffinity(0, sizeof *m, m) != 0) return 0;
  return CPU_COUNT(m);
}

static int only_cpu(const cpu_set_t *m) {
  if (CPU_COUNT(m) != 1) return -1;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, m)) return c;
  return -1;
}

/* FLOPCUT_BIND=1: thread t runs on the t-th allowed CPU during the run, and the caller gets its own
 * mask back afterwards. */
static void test_binding_pins_team_and_restores_caller(void) {
  cpu_set_t before;
  if (allowed_cpus(&before) < 2) return; /* nothing to pin apart on one CPU */
  setenv("FLOPCUT_BIND", "1", 1);
  fc_team_binding b;
  fc_binding_plan(&b, 2);
  CHECK(b.on && b.cpus[0] != b.cpus[1]);
  fc_binding_saved saved;
  fc_binding_begin(&b, 2, &saved);
  int got[2] = {-2, -2};
#pragma omp parallel num_threads(2)
  {
    cpu_set_t m;
    pthread_getaffinity_np(pthread_self(), sizeof m, &m);
    got[omp_get_thread_num()] = only_cpu(&m);
  }
  CHECK(got[0] == b.cpus[0] && got[1] == b.cpus[1]);
  fc_binding_end(&saved);
  cpu_set_t after;
  pthread_getaffinity_np(pthread_self(), sizeof after, &after);
  CHECK(CPU_EQUAL(&before, &after));
  unsetenv("FLOPCUT_BIND");
}

/* Never for one thread, nor with FLOPCUT_BIND=0, nor for more threads than allowed CPUs; a plan
 * that is not pinned leaves the caller's mask alone. */
static void test_binding_off(void) {
  cpu_set_t before;
  int n = allowed_cpus(&before);
  fc_team_binding b;
  setenv("FLOPCUT_BIND", "1", 1);
  fc_binding_plan(&b, 1);
  CHECK(!b.on);
  fc_binding_plan(&b, n + 1);
  CHECK(!b.on);
  setenv("FLOPCUT_BIND", "0", 1);
  fc_binding_plan(&b, 2);
  CHECK(!b.on);
  fc_binding_saved saved;
  fc_binding_begin(&b, 2, &saved);
  CHECK(!saved.restore);
  fc_binding_end(&saved);
  cpu_set_t after;
  pthread_getaffinity_np(pthread_self(), sizeof after, &after);
  CHECK(CPU_EQUAL(&before, &after));
  unsetenv("FLOPCUT_BIND");
}

TEST_TABLE(fc_tests_affinity) = {
    {"binding_pins_team_and_restores_caller", test_binding_pins_team_and_restores_caller},
    {"binding_off", test_binding_off},
    {NULL, NULL},
};
