#include "util/work_range.h"

static uint64_t pack(int64_t front, int64_t end) { return (uint64_t)end << 32 | (uint64_t)front; }

void fc_work_range_init(fc_work_range *r, int64_t front, int64_t end) { atomic_init(&r->front_end, pack(front, end)); }

int64_t fc_work_range_take(fc_work_range *r, int from_back) {
  uint64_t v = atomic_load_explicit(&r->front_end, memory_order_relaxed);
  for (;;) {
    int64_t front = (int64_t)(v & 0xffffffffu), end = (int64_t)(v >> 32);
    if (front >= end) return -1;
    uint64_t next = from_back ? pack(front, end - 1) : pack(front + 1, end);
    /* relaxed is enough: an item's data is published by the barriers around the phase, not by this word */
    if (atomic_compare_exchange_weak_explicit(&r->front_end, &v, next, memory_order_relaxed, memory_order_relaxed))
      return from_back ? end - 1 : front;
  }
}
