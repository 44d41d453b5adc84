/* OpenMP waiting policy for the CLI, set from how busy the machine is when flopcut starts.
 * libgomp's threads spin at each barrier before sleeping (300,000 pause loops by default). On a
 * machine with more runnable threads than cores a thread spins while the one it waits for is
 * descheduled: MobileNetV2 at 2 threads took 350 ms with the default vs 12 ms with
 * GOMP_SPINCOUNT=1000 (ONNX Runtime 46 ms) under a load average of 10 on 2 cores. On an idle
 * machine a short spin lets the workers fall asleep between layers and every wake-up is slow:
 * 2 threads, one inference every 20 ms, 9.6 ms with 1000 vs 4.4 ms with 300,000 (3.3 ms back to
 * back). So: a short spin when the 1-minute load average is at least the core count, a long one
 * otherwise. libgomp reads the variable only when it loads: the process sets it and re-executes
 * itself once. */
#include <stdlib.h>
#include <unistd.h>
#include "cli/cli.h"

void fc_cli_openmp_env(char **argv) {
  if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return; /* the user decided */
  double load[1];
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  bool busy = getloadavg(load, 1) == 1 && cores > 0 && load[0] >= (double)cores;
  if (setenv("GOMP_SPINCOUNT", busy ? "1000" : "100000", 1) != 0) return;
  execv("/proc/self/exe", argv);
  /* exec failed: carry on with libgomp's defaults */
}
