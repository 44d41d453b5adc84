/* A range of work items that its owner takes from the front while other threads, done with their
 * own, take from the back: cheap end-of-phase balancing that keeps each owner's items in order. */
#ifndef FC_UTIL_WORK_RANGE_H
#define FC_UTIL_WORK_RANGE_H
#include <stdatomic.h>
#include <stdint.h>

/* The next item in the low 32 bits, the end in the high 32; one cache line per range, since the
 * owner updates it once per item. */
typedef struct fc_work_range {
  _Alignas(64) _Atomic uint64_t front_end;
} fc_work_range;

/* Items [front, end), 0 <= front <= end <= INT32_MAX. Not thread-safe: before the threads start. */
void fc_work_range_init(fc_work_range *r, int64_t front, int64_t end);
/* Takes the first (from_back 0) or last (from_back 1) item not yet taken; -1 once none is left.
 * Any number of threads may call it at once: every item is handed out exactly once. */
int64_t fc_work_range_take(fc_work_range *r, int from_back);
#endif
