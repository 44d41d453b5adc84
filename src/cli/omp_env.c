/* OpenMP waiting policy for the CLI, set from how busy the machine is when flopcut starts.
 * libgomp's threads spin at each barrier before sleeping (300,000 pause loops by default). On a
 * machine with more runnable threads than cores a thread spins while the one it waits for is
 * descheduled: MobileNetV2 at 2 threads took 350 ms with the default vs 12 ms with
 * GOMP_SPINCOUNT=1000 (ONNX Runtime 46 ms) under a load average of 10 on 2 cores. On an idle
 * machine a short spin lets the workers fall asleep between layers and every wake-up is slow:
 * MobileNetV2, 2 threads, one inference after each ONNX Runtime run, 11.5 ms with 1000 vs 6.6 ms
 * with 300,000 (4.3 ms back to back).
 * "Busy" (util/sysload.c): a thread of another process runnable right now, while we want every core.
 * libgomp reads the variable only when it loads: the process sets it and re-executes itself once. */
#include <stdlib.h>
#include <unistd.h>
#include "cli/cli.h"
#include "util/sysload.h"

void fc_cli_openmp_env(char **argv) {
  if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return; /* the user decided */
  /* with a binding asked for, libgomp has already pinned this thread to the first place, and a
   * re-executed process would inherit that one-CPU mask: every thread on one core */
  if (getenv("OMP_PROC_BIND") || getenv("OMP_PLACES") || getenv("GOMP_CPU_AFFINITY")) return;
  if (setenv("GOMP_SPINCOUNT", fc_machine_busy() ? "1000" : "300000", 1) != 0) return;
  execv("/proc/self/exe", argv);
  /* exec failed: carry on with libgomp's defaults */
}
