/* flopcut eval, the run loop: reads the model's input declaration, plans the model at the eval batch
 * size, feeds normalised batches (the last one zero-padded) and counts top-1 / top-5 hits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "api/model_internal.h"
#include "eval/eval.h"
#include "onnx/onnx_load.h"
#include "util/mem.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The model's single data input as declared in the file (dynamic dims as -1). */
static fc_status declared_input(fc_ctx *ctx, const char *path, char *name, size_t name_cap, int *rank,
                                int64_t *dims) {
  fc_graph *g = NULL;
  fc_status st = fc_onnx_load_file(path, &g, &ctx->err);
  if (st) return st;
  if (g->n_inputs != 1) {
    st = fc_fail(&ctx->err, FC_ERR_UNSUPPORTED, "eval feeds one image tensor, but model '%s' has %d inputs", path,
                 g->n_inputs);
  } else {
    const fc_value *v = &g->values[g->inputs[0]];
    if (v->dtype != FC_DT_FLOAT)
      st = fc_fail(&ctx->err, FC_ERR_UNSUPPORTED, "input '%s' of '%s' is %s; eval feeds float32 images", v->name,
                   path, fc_dtype_name(v->dtype));
    else if (v->rank < 2)
      st = fc_fail(&ctx->err, FC_ERR_UNSUPPORTED, "input '%s' of '%s' has rank %d; eval needs the batch first",
                   v->name, path, v->rank);
    else if (strlen(v->name) >= name_cap)
      st = fc_fail(&ctx->err, FC_ERR_UNSUPPORTED, "input name of '%s' is too long", path);
    if (!st) {
      memcpy(name, v->name, strlen(v->name) + 1);
      *rank = v->rank;
      for (int d = 0; d < v->rank; d++) dims[d] = v->dims[d];
    }
  }
  fc_graph_free(g);
  return st;
}

fc_status fc_eval_run(fc_ctx *ctx, const char *model_path, const fc_array *images, const char *images_path,
                      const fc_array *labels, const char *labels_path, const fc_eval_options *o,
                      fc_eval_result *res) {
  memset(res, 0, sizeof *res);
  fc_err *err = &ctx->err;
  if (o->batch < 1) return fc_fail(err, FC_ERR_ARG, "--batch must be at least 1");
  if (o->limit < 0) return fc_fail(err, FC_ERR_ARG, "--limit must not be negative");
  char name[256];
  int rank = 0;
  int64_t dims[8];
  fc_status st = declared_input(ctx, model_path, name, sizeof name, &rank, dims);
  if (st) return st;
  fc_eval_geom *g = &res->geom;
  if ((st = fc_eval_geom_match(images, images_path, rank, dims, o->layout, g, err))) return st;
  if ((st = fc_eval_check_labels(labels, labels_path, g->n, 0, err))) return st;
  if ((st = fc_eval_check_norm(o, images, g, &res->scale, err))) return st;
  const int64_t total = o->limit > 0 && o->limit < g->n ? o->limit : g->n;

  /* a dynamic batch dim takes --batch (never more than the images); a fixed one is the model's */
  int64_t batch = dims[0] > 0 ? dims[0] : (o->batch < total ? o->batch : total);
  fc_input_shape shape = {.name = name, .rank = rank};
  memcpy(shape.dims, g->model_dims, sizeof shape.dims);
  shape.dims[0] = batch;
  fc_model *model = NULL;
  fc_plan *plan = NULL;
  float *buf = NULL;
  if ((st = fc_model_load(ctx, model_path, &shape, 1, &model))) goto done;
  fc_plan_options popt = {.threads = o->threads};
  if ((st = fc_plan_create(ctx, model, &popt, &plan))) goto done;
  fc_tensor_view out0;
  if ((st = fc_plan_output(plan, 0, &out0))) goto done;
  int64_t out_elems = 1;
  for (int d = 0; d < out0.rank; d++) out_elems *= out0.dims[d]; /* bounded by the plan's arena */
  if (out0.dtype != FC_DT_FLOAT || out0.rank < 1 || out0.dims[0] != batch || out_elems < batch) {
    st = fc_fail(err, FC_ERR_UNSUPPORTED, "output '%s' of '%s' is not float32 scores of shape [batch, classes]",
                 out0.name, model_path);
    goto done;
  }
  const int64_t classes = out_elems / batch;
  if ((st = fc_eval_check_labels(labels, labels_path, g->n, classes, err))) goto done;
  int64_t in_elems;
  if (!fc_mul_i64(batch, g->per_image, &in_elems) || !(buf = fc_calloc((size_t)in_elems, sizeof(float)))) {
    st = fc_fail(err, FC_ERR_NOMEM, "out of memory for a batch of %lld images", (long long)batch);
    goto done;
  }
  fc_tensor_view in = {.name = name, .dtype = FC_DT_FLOAT, .rank = rank, .data = buf};
  memcpy(in.dims, shape.dims, sizeof in.dims);
  res->classes = classes;
  res->topk = classes < 5 ? (int)classes : 5;
  res->batch = (int)batch;
  res->threads = fc_plan_threads(plan);
  double t0 = now_s();
  for (int64_t first = 0; first < total; first += batch) {
    int64_t count = total - first < batch ? total - first : batch;
    fc_eval_fill_batch(images, g, res->scale, o, first, count, batch, buf);
    fc_tensor_view out = {.name = NULL};
    if ((st = fc_plan_run(ctx, plan, &in, 1, &out, 1))) goto done;
    const float *logits = out.data;
    for (int64_t b = 0; b < count; b++) {
      int64_t r = fc_eval_rank(logits + b * classes, classes, fc_eval_label(labels, first + b));
      res->top1 += r == 0;
      res->top5 += r < res->topk;
    }
    res->n = first + count;
    if (o->progress) o->progress(o->user, res->n, total, res->top1);
  }
  res->seconds = now_s() - t0;
  res->images_per_s = res->seconds > 0 ? (double)res->n / res->seconds : 0;
done:
  free(buf);
  fc_plan_free(plan);
  fc_model_free(model);
  return st;
}
