/* Unit tests: pinning a plan's team while it runs (runtime/affinity.c). */
#define _GNU_SOURCE
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "runtime/affinity.h"
#include "util/sysload.h"
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* A child that reads fd `in` as its standard input and spins for `ms` milliseconds. */
static pid_t spinning_reader(int in, int ms) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  if (in >= 0) dup2(in, STDIN_FILENO);
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  volatile unsigned long spin = 0;
  do {
    for (int i = 0; i < 100000; i++) spin += (unsigned long)i;
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
  _exit(0);
}

static int max_reader_threads(int samples) {
  int most = 0;
  for (int i = 0; i < samples; i++) {
    int n = fc_pipe_reader_runnable_threads();
    if (n > most) most = n;
    nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 5000000}, NULL);
  }
  return most;
}

/* The busy-machine sample does not count the process reading our standard output through a pipe
 * (`flopcut bench … | jq`): fc_pipe_reader_runnable_threads sees that reader's runnable thread, and
 * not another spinning process reading another pipe. */
static void test_pipe_reader_not_counted(void) {
  int ours[2], other[2];
  if (pipe(ours) != 0 || pipe(other) != 0) {
    CHECK(0);
    return;
  }
  pid_t reader = spinning_reader(ours[0], 300), stranger = spinning_reader(other[0], 300);
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  dup2(ours[1], STDOUT_FILENO);
  int seen = max_reader_threads(10);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  CHECK_EQ_I64(seen, 1); /* the reader (one thread, spinning), not the stranger */
  close(ours[0]), close(ours[1]), close(other[0]), close(other[1]);
  waitpid(reader, NULL, 0);
  waitpid(stranger, NULL, 0);
  /* stdout on a regular file: no reader to leave out */
  FILE *tmp = tmpfile();
  if (tmp) {
    fflush(stdout);
    int keep = dup(STDOUT_FILENO);
    dup2(fileno(tmp), STDOUT_FILENO);
    CHECK_EQ_I64(fc_pipe_reader_runnable_threads(), 0);
    dup2(keep, STDOUT_FILENO);
    close(keep);
    fclose(tmp);
  }
}

TEST_TABLE(fc_tests_affinity) = {
    {"binding_pins_team_and_restores_caller", test_binding_pins_team_and_restores_caller},
    {"binding_off", test_binding_off},
    {"pipe_reader_not_counted", test_pipe_reader_not_counted},
    {NULL, NULL},
};
