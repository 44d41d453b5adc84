/* Padded planes between sparse convolutions: a value whose producer and every reader are sparse
 * convolutions that accept it is stored with each channel plane rounded up to a cache line
 * (FC_LAYOUT_PADDED, runtime/kernel.h), and those steps are adapted to it (their packed weights only
 * change where a 1×1 conv reads its input in place: offsets are rescaled, nothing is packed again;
 * preparing the steps again had cost ResNet-50 240 ms of plan time).
 *
 * Why: ResNet-50's 14×14 and 7×7 planes (196 and 49 floats) start 0, 4, 8 or 12 floats off a
 * 64-byte line, so a 1×1 layer reading its input in place splits three loads in four over two
 * lines, every output store is misaligned, and two threads splitting a plane's pixels share a line
 * per plane. Alone, 256×1024 read in place at 14×14 took 0.22-0.31 ms against 0.163-0.173 ms for
 * the same 13 vectors in 208-float planes. No conversion is ever inserted: a value is padded only
 * when nothing else reads it. */
#include <stdlib.h>
#include "kernels/sparse/sparse.h"
#include "runtime/plan_internal.h"
#include "util/mem.h"

static bool candidate(const fc_plan *p, int v) {
  const fc_value *x = &p->g->values[v];
  if (x->data || x->is_graph_input || x->rank != 4 || x->dtype != FC_DT_FLOAT || p->layout[v] != FC_LAYOUT_PLAIN)
    return false;
  int64_t hw = x->dims[2] * x->dims[3];
  return hw >= 16 && hw % 16 != 0;
}

/* A layout conversion's step gets its node only once the arena is packed. */
static const fc_node *node_of(const fc_step *s) { return s->own_node ? s->own_node : s->en.node; }

fc_status fc_plan_pad_planes(fc_plan *p, fc_err *err) {
  if (getenv("FC_NO_PADDED_PLANES")) return FC_OK; /* to measure what the layout buys */
  const fc_graph *g = p->g;
  const int nv = g->n_values;
  bool *ok = fc_calloc((size_t)nv + 1, sizeof(bool)), *touched = fc_calloc((size_t)p->n_steps + 1, sizeof(bool));
  int *producer = fc_calloc((size_t)nv + 1, sizeof(int));
  if (!ok || !touched || !producer) {
    free(ok), free(touched), free(producer);
    return fc_fail(err, FC_ERR_NOMEM, "out of memory planning");
  }
  for (int v = 0; v < nv; v++) ok[v] = candidate(p, v), producer[v] = -1;
  for (int s = 0; s < p->n_steps; s++) {
    const fc_step *st = &p->steps[s];
    const fc_node *n = node_of(st);
    for (int o = 0; o < n->n_outputs; o++) {
      int v = st->out_vals[o];
      if (v < 0) continue;
      producer[v] = producer[v] < 0 ? s : -2; /* written by one step only */
      if (o != 0 || !fc_sparse_takes_padded(st->k, &st->en, -1)) ok[v] = false;
    }
    for (int i = 0; i < n->n_inputs; i++) {
      int v = st->in_vals[i];
      if (v >= 0 && !fc_sparse_takes_padded(st->k, &st->en, i)) ok[v] = false;
    }
  }
  for (int o = 0; o < g->n_outputs; o++) ok[g->outputs[o]] = false;
  for (int v = 0; v < nv; v++)
    if (p->alias[v] >= 0) ok[v] = ok[p->alias[v]] = false; /* a view reads it in another shape */
  for (int v = 0; v < nv; v++) {
    ok[v] = ok[v] && producer[v] >= 0;
    if (!ok[v]) continue;
    p->layout[v] = FC_LAYOUT_PADDED;
    p->steps[producer[v]].out_layout[0] = FC_LAYOUT_PADDED; /* output 0: fc_sparse_takes_padded */
    touched[producer[v]] = true;
  }
  for (int s = 0; s < p->n_steps; s++) {
    fc_step *st = &p->steps[s];
    for (int i = 0; i < node_of(st)->n_inputs; i++)
      if (st->in_vals[i] >= 0 && ok[st->in_vals[i]]) st->in_layout[i] = FC_LAYOUT_PADDED, touched[s] = true;
  }
  fc_status status = FC_OK;
  for (int s = 0; s < p->n_steps && !status; s++) {
    if (!touched[s]) continue;
    status = fc_sparse_relayout(&p->steps[s].en, err);
  }
  free(ok), free(touched), free(producer);
  return status;
}
