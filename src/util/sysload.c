/* The scheduler's current count of runnable threads, not the 1-minute load average: that average
 * counts our own recent work, so a benchmark that had just run flopcut on every core would call
 * the machine busy. A single sample flickers (a build's short-lived compilers), hence the median. */
#include "util/sysload.h"
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Threads of this process in state R (running or runnable): its own OpenMP threads spinning after
 * a parallel region are not another program's load. At least 1 (the caller). */
static int own_runnable_threads(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return 1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue; /* the thread ended */
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    const char *paren = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    if (paren && paren[1] == ' ' && paren[2] == 'R') n++;
  }
  closedir(d);
  return n > 0 ? n : 1;
}

/* Runnable threads of other processes, or -1 when /proc/loadavg cannot be read. */
static int other_runnable_threads(void) {
  FILE *f = fopen("/proc/loadavg", "r");
  if (!f) return -1;
  double l1, l5, l15;
  int running = 0, total = 0;
  int n = fscanf(f, "%lf %lf %lf %d/%d", &l1, &l5, &l15, &running, &total);
  fclose(f);
  if (n != 5 || running < 1) return -1;
  int others = running - own_runnable_threads();
  return others > 0 ? others : 0;
}

bool fc_machine_busy(void) {
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
