/* Accuracy of an image classifier on labelled data (flopcut eval): matching image arrays to the
 * model's input, preprocessing into batches, top-k scoring, and the batched run loop. */
#ifndef FC_EVAL_EVAL_H
#define FC_EVAL_EVAL_H
#include <stdbool.h>
#include <stdint.h>
#include "data/array.h"
#include "flopcut.h"
#include "util/err.h"

#define FC_EVAL_MAX_CHANNELS 64

typedef enum fc_eval_layout {
  FC_EVAL_LAYOUT_AUTO = 0, /* NCHW if the file's dims fit the model that way, else NHWC */
  FC_EVAL_LAYOUT_NCHW = 1,
  FC_EVAL_LAYOUT_NHWC = 2,
} fc_eval_layout;

typedef struct fc_eval_options {
  double scale;  /* raw value multiplier; < 0: 1/255 for uint8 images, 1 for the rest */
  int n_mean;    /* 0, 1 (every channel) or one per channel */
  int n_std;
  double mean[FC_EVAL_MAX_CHANNELS];
  double std[FC_EVAL_MAX_CHANNELS];
  int batch;     /* images per run; a model with a fixed batch dimension uses its own */
  int64_t limit; /* only the first `limit` images; 0: all */
  int threads;   /* 0: all cores */
  fc_eval_layout layout;
  /* Called after every batch with images done so far and top-1 hits among them (may be NULL). */
  void (*progress)(void *user, int64_t done, int64_t total, int64_t top1);
  void *user;
} fc_eval_options;

/* How one image of the file maps onto the model's input: the model sees [batch, c, h, w] (rank-4
 * inputs; other ranks see c = 1, h = 1, w = elements per image), the file holds each image as
 * c×h×w (NCHW) or h×w×c (NHWC). */
typedef struct fc_eval_geom {
  int64_t n;          /* images in the file */
  int64_t per_image;  /* elements per image */
  int64_t c, h, w;
  bool nhwc;          /* the file's images are h×w×c */
  int model_rank;
  int64_t model_dims[8]; /* the model input with every non-batch dim fixed; dims[0] = batch or -1 */
} fc_eval_geom;

typedef struct fc_eval_result {
  int64_t n, top1, top5; /* images scored and correct counts */
  int topk;              /* the k of "top5": min(5, classes) */
  int64_t classes;
  int batch, threads;
  double scale;          /* the multiplier applied */
  fc_eval_geom geom;
  double seconds;        /* preprocessing + runs, model loading and planning excluded */
  double images_per_s;
} fc_eval_result;

void fc_eval_options_default(fc_eval_options *o);

/* Matches the image array against a model input of rank/dims (dims[d] < 0: dynamic). */
fc_status fc_eval_geom_match(const fc_array *images, const char *images_path, int rank, const int64_t *dims,
                             fc_eval_layout layout, fc_eval_geom *out, fc_err *err);
/* Checks labels: rank 1 (or [N,1]) integers, one per image, each in [0, classes) when classes > 0. */
fc_status fc_eval_check_labels(const fc_array *labels, const char *labels_path, int64_t n_images,
                               int64_t classes, fc_err *err);
/* Checks scale/mean/std against the geometry; fills *scale (resolving the default). */
fc_status fc_eval_check_norm(const fc_eval_options *o, const fc_array *images, const fc_eval_geom *g,
                             double *scale, fc_err *err);
/* Writes images [first, first+count) as float NCHW into out (batch×c×h×w floats), normalised;
 * rows count..batch-1 are zero padding. */
void fc_eval_fill_batch(const fc_array *images, const fc_eval_geom *g, double scale, const fc_eval_options *o,
                        int64_t first, int64_t count, int64_t batch, float *out);
/* Rank of class `label` in logits[0..classes): how many classes score higher (ties: lower index
 * first, as argmax does); a NaN score or an out-of-range label ranks last. */
int64_t fc_eval_rank(const float *logits, int64_t classes, int64_t label);
int64_t fc_eval_label(const fc_array *labels, int64_t i);

/* Loads the model at path, plans it at the eval batch size and scores every image. */
fc_status fc_eval_run(fc_ctx *ctx, const char *model_path, const fc_array *images, const char *images_path,
                      const fc_array *labels, const char *labels_path, const fc_eval_options *o,
                      fc_eval_result *out);
#endif
