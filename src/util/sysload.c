/* The scheduler's current count of runnable threads, not the 1-minute load average: that average
 * counts our own recent work, so a benchmark that had just run flopcut on every core would call
 * the machine busy. A single sample flickers (a build's short-lived compilers), hence the median. */
#include "util/sysload.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Threads of process `proc` ("self" or a pid) in state R (running or runnable). */
static int runnable_threads(const char *proc) {
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%.20s/task", proc);
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[96], buf[256];
    snprintf(path, sizeof path, "%s/%.20s/stat", dir, e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue; /* the thread ended */
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    const char *paren = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    if (paren && paren[1] == ' ' && paren[2] == 'R') n++;
  }
  closedir(d);
  return n;
}

/* Our own threads in state R: our OpenMP threads spinning after a parallel region are not another
 * program's load. At least 1 (the caller). */
static int own_runnable_threads(void) {
  int n = runnable_threads("self");
  return n > 0 ? n : 1;
}

/* Up to `max` pids of the processes whose standard input is our standard output's pipe; 0 when
 * standard output is not a pipe. One pass over /proc (a readlink per process we may inspect). */
static int pipe_readers(pid_t *pids, int max) {
  struct stat st;
  if (fstat(STDOUT_FILENO, &st) != 0 || !S_ISFIFO(st.st_mode)) return 0;
  char want[64];
  snprintf(want, sizeof want, "pipe:[%llu]", (unsigned long long)st.st_ino);
  DIR *d = opendir("/proc");
  if (!d) return 0;
  const pid_t self = getpid();
  int n = 0;
  struct dirent *e;
  while (n < max && (e = readdir(d))) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9' || atol(e->d_name) == (long)self) continue;
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/%.20s/fd/0", e->d_name);
    ssize_t len = readlink(path, link, sizeof link - 1); /* fails for other users' processes: fine */
    if (len <= 0) continue;
    link[len] = 0;
    if (!strcmp(link, want)) pids[n++] = (pid_t)atol(e->d_name);
  }
  closedir(d);
  return n;
}

enum { MAX_READERS = 8 };

static int readers_runnable_threads(const pid_t *pids, int n) {
  int r = 0;
  for (int i = 0; i < n; i++) {
    char name[24];
    snprintf(name, sizeof name, "%ld", (long)pids[i]);
    r += runnable_threads(name);
  }
  return r;
}

int fc_pipe_reader_runnable_threads(void) {
  pid_t pids[MAX_READERS];
  return readers_runnable_threads(pids, pipe_readers(pids, MAX_READERS));
}

/* Runnable threads of other processes than ours and the `nr` pipe readers, or -1 when
 * /proc/loadavg cannot be read. */
static int other_runnable_threads(const pid_t *readers, int nr) {
  FILE *f = fopen("/proc/loadavg", "r");
  if (!f) return -1;
  double l1, l5, l15;
  int running = 0, total = 0;
  int n = fscanf(f, "%lf %lf %lf %d/%d", &l1, &l5, &l15, &running, &total);
  fclose(f);
  if (n != 5 || running < 1) return -1;
  int others = running - own_runnable_threads() - readers_runnable_threads(readers, nr);
  return others > 0 ? others : 0;
}

bool fc_machine_busy(void) {
  enum { SAMPLES = 5 };
  int v[SAMPLES];
  /* `flopcut bench … | jq` starts both at once: the reader, still loading, is runnable while we
   * sample, yet it will only wait on our output. Its threads are not counted (with a Python reader
   * the team was left unpinned in 5 of 6 runs on an idle machine). */
  /* found once: a scan of /proc per sample would cost milliseconds with thousands of processes */
  pid_t readers[MAX_READERS];
  const int nr = pipe_readers(readers, MAX_READERS);
  for (int i = 0; i < SAMPLES; i++) {
    v[i] = other_runnable_threads(readers, nr);
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
