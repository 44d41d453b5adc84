/* How busy the machine is right now, for choices that only pay off when our threads have the cores
 * to themselves (spinning at barriers, pinning threads to cores). */
#ifndef FC_UTIL_SYSLOAD_H
#define FC_UTIL_SYSLOAD_H
#include <stdbool.h>

/* A thread of another process is runnable: the median of 5 samples, 2 ms apart, of the
 * scheduler's count of runnable threads (/proc/loadavg, fourth field), not counting our own threads
 * nor those of the process reading our standard output through a pipe. false when unreadable. */
bool fc_machine_busy(void);
/* Runnable threads of the processes whose standard input is the pipe our standard output writes
 * to; 0 when standard output is not a pipe. */
int fc_pipe_reader_runnable_threads(void);
#endif
