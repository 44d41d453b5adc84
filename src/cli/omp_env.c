/* OpenMP waiting policy for the CLI. libgomp's default spins up to 300,000 times at each barrier;
 * on a busy machine (more runnable threads than cores) a thread spins while the one it waits for
 * is descheduled: measured MobileNetV2 at 2 threads, median 350 ms with the default vs 12 ms with
 * GOMP_SPINCOUNT=1000 (ONNX Runtime: 46 ms) under the same load. libgomp reads the variable only
 * when it loads, so the process sets it and re-executes itself once. */
#include <stdlib.h>
#include <unistd.h>
#include "cli/cli.h"

void fc_cli_openmp_env(char **argv) {
  if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return; /* the user decided */
  if (setenv("GOMP_SPINCOUNT", "1000", 1) != 0) return;
  execv("/proc/self/exe", argv);
  /* exec failed: carry on with libgomp's defaults */
}
