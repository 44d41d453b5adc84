/* OpenMP waiting policy for the CLI, set from how busy the machine is when flopcut starts.
 * libgomp's threads spin at each barrier before sleeping (300,000 pause loops by default). On a
 * machine with more runnable threads than cores a thread spins while the one it waits for is
 * descheduled: MobileNetV2 at 2 threads took 350 ms with the default vs 12 ms with
 * GOMP_SPINCOUNT=1000 (ONNX Runtime 46 ms) under a load average of 10 on 2 cores. On an idle
 * machine a short spin lets the workers fall asleep between layers and every wake-up is slow:
 * MobileNetV2, 2 threads, one inference after each ONNX Runtime run, 11.5 ms with 1000 vs 6.6 ms
 * with 300,000 (4.3 ms back to back).
 * "Busy" is read from the scheduler's current count of runnable threads (/proc/loadavg, fourth
 * field), not from the 1-minute load average: that average counts our own recent work, so a
 * benchmark that had just run flopcut on every core would call the machine busy and slow the next
 * run down. Another runnable thread while we want every core means oversubscription, so busy =
 * other runnable threads >= 1, the median of a few samples 2 ms apart (a build flickers).
 * libgomp reads the variable only when it loads: the process sets it and re-executes itself once. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"

/* Runnable threads other than this one, or -1 when /proc/loadavg cannot be read. */
static int other_runnable_threads(void) {
  FILE *f = fopen("/proc/loadavg", "r");
  if (!f) return -1;
  double l1, l5, l15;
  int running = 0, total = 0;
  int n = fscanf(f, "%lf %lf %lf %d/%d", &l1, &l5, &l15, &running, &total);
  fclose(f);
  if (n != 5 || running < 1) return -1;
  return running - 1;
}

static bool machine_busy(void) {
  enum { SAMPLES = 5 };
  int v[SAMPLES];
  for (int i = 0; i < SAMPLES; i++) {
    v[i] = other_runnable_threads();
    if (v[i] < 0) return false;
    if (i + 1 < SAMPLES) nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 2000000}, NULL);
  }
  for (int i = 1; i < SAMPLES; i++) /* insertion sort, 5 values */
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      int t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return v[SAMPLES / 2] >= 1;
}

void fc_cli_openmp_env(char **argv) {
  if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return; /* the user decided */
  if (setenv("GOMP_SPINCOUNT", machine_busy() ? "1000" : "300000", 1) != 0) return;
  execv("/proc/self/exe", argv);
  /* exec failed: carry on with libgomp's defaults */
}
