/* Pinning a plan's OpenMP team to distinct CPUs while it runs (see affinity.c for why). */
#ifndef FC_RUNTIME_AFFINITY_H
#define FC_RUNTIME_AFFINITY_H
#include <stdbool.h>

#define FC_BIND_MAX_THREADS 64

typedef struct fc_team_binding {
  bool on;                        /* pin this plan's team */
  bool workers_pinned;            /* the pool threads have pinned themselves */
  int cpus[FC_BIND_MAX_THREADS];  /* thread t's CPU */
} fc_team_binding;

/* Decides at plan time whether a team of `threads` is pinned: FLOPCUT_BIND=0 never, =1 whenever
 * the process may use that many CPUs; unset, only when the team takes every CPU the process may
 * use, the user does not bind OpenMP threads (OMP_PROC_BIND, OMP_PLACES, GOMP_CPU_AFFINITY) and no
 * other process's thread is runnable (util/sysload.h). */
void fc_binding_plan(fc_team_binding *b, int threads);

/* The caller's CPU mask while a run is pinned, to give back afterwards. */
typedef struct fc_binding_saved {
  bool restore;
  unsigned char mask[128]; /* a cpu_set_t, opaque here */
} fc_binding_saved;

/* Around one run from the calling thread: pin the team (thread 0 is the caller), then give the
 * caller its own mask back. No-ops when the plan is not pinned. */
void fc_binding_begin(fc_team_binding *b, int threads, fc_binding_saved *saved);
void fc_binding_end(const fc_binding_saved *saved);
#endif
