/* How busy the machine is right now, for choices that only pay off when our threads have the cores
 * to themselves (spinning at barriers, pinning threads to cores). */
#ifndef FC_UTIL_SYSLOAD_H
#define FC_UTIL_SYSLOAD_H
#include <stdbool.h>

/* A thread of another process is runnable: the median of 5 samples, 2 ms apart, of the
 * scheduler's count of runnable threads (/proc/loadavg, fourth field). false when unreadable. */
bool fc_machine_busy(void);
#endif
