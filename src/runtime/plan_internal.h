/* What a plan holds: its own copy of the graph (after the passes), the ordered steps (one kernel
 * each), per-value storage (arena offset, alias, layout) and the arena itself. */
#ifndef FC_RUNTIME_PLAN_INTERNAL_H
#define FC_RUNTIME_PLAN_INTERNAL_H
#include "runtime/affinity.h"
#include "api/model_internal.h"
#include "runtime/kernel.h"

typedef struct fc_step {
  const fc_kernel *k;
  fc_exec_node en;
  fc_node *own_node;      /* a layout conversion's node (owned by the plan), else NULL */
  uint8_t *in_layout, *out_layout;
  int *in_vals, *out_vals; /* values actually read/written (a converted copy may replace an input) */
  const void **in;        /* resolved before each run */
  void **out;
  int64_t scratch_off;    /* arena offset of the scratch, -1 if none */
  int64_t macs, flops, nonzero_macs;
  bool prepared;
} fc_step;

struct fc_plan {
  const fc_model *model;
  fc_graph *g;
  int threads;
  fc_team_binding binding; /* pin the team while running (runtime/affinity.c) */
  bool no_nhwc;          /* FC_NO_NHWC set: keep every activation plain */
  fc_step *steps;
  int n_steps, cap_steps;
  int cap_values;        /* size of the per-value arrays below (≥ g->n_values) */
  uint8_t *layout;       /* per value: FC_LAYOUT_* of its storage */
  int *nhwc_copy, *plain_copy; /* per value: its converted copy, -1 if none */
  int *alias;            /* per value: the value whose storage it shares (a view), -1 if none */
  int *first, *last;     /* per value: steps writing it first / reading it last */
  int64_t *offset;       /* per value: arena offset, -1 if not in the arena */
  void **ptr;            /* per value: storage for the current run */
  char *arena;
  size_t arena_bytes;
  int *out_src;          /* per graph output: the value holding it in plain layout */
};

/* Stores values between sparse convolutions in padded planes where every reader takes them, and
 * adapts those steps to them (padded_planes.c). Before lifetimes and the arena. */
fc_status fc_plan_pad_planes(fc_plan *p, fc_err *err);

/* Runs every step (timing each into step_ms when not NULL). */
void fc_plan_execute(fc_plan *p, double *step_ms);
#endif
