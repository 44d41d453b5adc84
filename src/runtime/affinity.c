/* Why a plan pins its team. On a virtual machine an idle vCPU is halted, and the guest scheduler
 * avoids waking a thread on a halted vCPU: the first parallel region of a run after a pause put
 * the woken OpenMP worker on the caller's own vCPU, where it waited behind the caller (spinning at
 * the barrier) until the load balancer moved it. MobileNetV2 pruned to 90 %, 2 threads, 50 ms
 * between runs: 9.3 ms per run unpinned, 5.6 ms pinned (3.6-4.3 ms back to back); interleaved
 * with ONNX Runtime, median 4.72 -> 3.79 ms (ResNet-50: within the noise, 19.3 -> 20.4 and
 * 18.7 -> 18.1 ms in two sessions). A pinned worker can only wake on its own CPU.
 *
 * Like OMP_PROC_BIND=true, but scoped to our runs: pool thread t ≥ 1 pins itself to the t-th
 * allowed CPU once (they are libgomp's threads, not the caller's), and the caller is pinned to the
 * first for the length of a run only, then gets its own mask back. Only a team as large as the
 * CPUs the process may use is pinned (a smaller one may share the machine with other teams), and
 * not on a busy machine, where pinning would keep a thread on a core another process holds: both
 * decided at plan time. */
#define _GNU_SOURCE
#include "runtime/affinity.h"
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include "util/sysload.h"

_Static_assert(sizeof(cpu_set_t) <= sizeof(((fc_binding_saved *)0)->mask), "fc_binding_saved.mask too small");

void fc_binding_plan(fc_team_binding *b, int threads) {
  memset(b, 0, sizeof *b);
  const char *env = getenv("FLOPCUT_BIND");
  if (threads < 2 || threads > FC_BIND_MAX_THREADS || (env && !strcmp(env, "0"))) return;
  bool forced = env && !strcmp(env, "1");
  if (!forced && (getenv("OMP_PROC_BIND") || getenv("OMP_PLACES") || getenv("GOMP_CPU_AFFINITY"))) return;
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
  int n = 0;
  for (int c = 0; c < CPU_SETSIZE && n < threads; c++)
    if (CPU_ISSET(c, &allowed)) b->cpus[n++] = c;
  if (n < threads) return; /* fewer CPUs than threads: pinning would stack them */
  /* a team smaller than the machine may share it with other plans or programs, which pinned teams
   * would pile onto the same first CPUs */
  if (!forced && CPU_COUNT(&allowed) != threads) return;
  if (!forced && fc_machine_busy()) return;
  b->on = true;
}

static void pin_self(int cpu) {
  cpu_set_t m;
  CPU_ZERO(&m);
  CPU_SET(cpu, &m);
  pthread_setaffinity_np(pthread_self(), sizeof m, &m);
}

void fc_binding_begin(fc_team_binding *b, int threads, fc_binding_saved *saved) {
  saved->restore = false;
  if (!b->on) return;
  if (!b->workers_pinned) {
#pragma omp parallel num_threads(threads)
    {
      int t = omp_get_thread_num();
      if (t > 0 && t < threads) pin_self(b->cpus[t]);
    }
    b->workers_pinned = true;
  }
  cpu_set_t *mine = (cpu_set_t *)(void *)saved->mask;
  if (pthread_getaffinity_np(pthread_self(), sizeof *mine, mine) != 0) return;
  if (CPU_COUNT(mine) == 1 && CPU_ISSET(b->cpus[0], mine)) return; /* already there */
  pin_self(b->cpus[0]);
  saved->restore = true;
}

void fc_binding_end(const fc_binding_saved *saved) {
  if (saved->restore) pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), (const cpu_set_t *)(const void *)saved->mask);
}
