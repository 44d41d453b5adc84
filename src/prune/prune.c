/* One entry point for every pruning method: checks the options fit together, runs the method,
 * then brings the model's folded copies and cost counts up to date. */
#include <stdio.h>
#include <string.h>
#include "prune/prune.h"

static fc_status check_opts(const fc_prune_opts *o, fc_err *err) {
  bool macs = o->target_macs > 0;
  if (o->target_macs < 0) return fc_fail(err, FC_ERR_ARG, "--target-macs must be in (0, 1], not %g", o->target_macs);
  if (o->min_threshold != 0 && (o->method != FC_PRUNE_GLOBAL || macs))
    return fc_fail(err, FC_ERR_ARG, "--min-threshold works with --method global and --sparsity");
  if (macs && o->method != FC_PRUNE_GLOBAL && o->method != FC_PRUNE_BLOCK)
    return fc_fail(err, FC_ERR_ARG, "--target-macs works with --method global or block");
  if (o->method == FC_PRUNE_NM && (o->nm_m < 1))
    return fc_fail(err, FC_ERR_ARG, "--method nm needs --nm N:M (e.g. 2:4)");
  if (o->method == FC_PRUNE_BLOCK && (o->block_o < 1 || o->block_i < 1))
    return fc_fail(err, FC_ERR_ARG, "--method block needs --block OxI (e.g. 4x1)");
  if ((unsigned)o->method > FC_PRUNE_BLOCK) return fc_fail(err, FC_ERR_ARG, "unknown pruning method %d", (int)o->method);
  return FC_OK;
}

fc_status fc_prune_run(fc_prune_set *s, const fc_prune_opts *o, fc_prune_result *res, fc_err *err) {
  memset(res, 0, sizeof *res);
  fc_status st = check_opts(o, err);
  if (st) return st;
  switch (o->method) {
    case FC_PRUNE_GLOBAL:
      st = o->target_macs > 0 ? fc_prune_magnitude_macs(s, o->target_macs, res, err)
                              : fc_prune_magnitude_global(s, o->sparsity, o->min_threshold, res, err);
      break;
    case FC_PRUNE_LAYER:
      st = o->block_o > 0 ? fc_prune_block(s, o->block_o, o->block_i, o->sparsity, 0, true, res, err)
                          : fc_prune_magnitude_layer(s, o->sparsity, res, err);
      break;
    case FC_PRUNE_NM: st = fc_prune_nm(s, o->nm_n, o->nm_m, res, err); break;
    case FC_PRUNE_BLOCK: st = fc_prune_block(s, o->block_o, o->block_i, o->sparsity, o->target_macs, false, res, err); break;
  }
  fc_prune_finish(s); /* also after a failure: the weights may be partly pruned, counts must say so */
  res->zeros = 0;
  for (size_t l = 0; l < s->n_layers; l++)
    if (!s->layers[l].excluded) res->zeros += s->layers[l].numel - s->layers[l].nnz;
  return st;
}
