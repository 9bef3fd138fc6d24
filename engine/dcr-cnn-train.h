/* dcr-cnn-train.h — training the learned forensic CNN (dcr-cnn.h) on the
 * GPU. Each update takes `batch` crops of crop × crop pixels cut from the
 * training images, runs the network's preprocessing and layers, averages
 * each crop's logit map into one logit, and applies BCE with logits
 * against the crop's label:
 *   label = 0 for a real image (real, JPEG copy, resampled negative),
 *           1 for a whole-image fake,
 *           for a partial fake 1 when the crop's centre lies inside the
 *           regenerated rectangle, else 0 (the crop shows real pixels).
 * The backward pass runs through dcr_op_linear_backward (the mean),
 * dcr_op_act_backward (ReLU) and dcr_op_conv2d_backward, then AdamW with
 * PyTorch's semantics updates every weight and bias. One step is recorded
 * once and replayed per batch (as dcr-tile-train.h does).
 *
 * Crops: origins drawn uniformly over the image and rounded down to
 * multiples of DCR_CNN_ALIGN, so a JPEG's 8 × 8 grid keeps its phase, as in
 * the tap's window (dcr_cnn_window). An epoch draws crops_per_image crops
 * from every image, shuffled, and runs floor(total / batch) updates.
 *
 * JPEG (jpeg_p > 0): each crop, with probability jpeg_p, goes through a
 * JPEG round trip at a quality uniform in [jpeg_qmin, jpeg_qmax] before the
 * network sees it (dcr_cnn_cut_jpeg), whatever its label, so that the
 * network meets re-encoded fakes and re-encoded resampled images, not only
 * re-encoded reals. The draws come from a stream of their own: with
 * jpeg_p = 0 the crops, the shuffle and so the weights are those of a run
 * without the option. */
#pragma once

#include "dcr-cnn.h"
#include "dcr-op-optim.h"

G_BEGIN_DECLS

#define DCR_CNN_TRAIN_ERROR (dcr_cnn_train_error_quark ())
GQuark dcr_cnn_train_error_quark (void);

typedef enum {
  DCR_CNN_TRAIN_ERROR_DATA,     /* no images, one class only, crops larger than an image, bad settings */
  DCR_CNN_TRAIN_ERROR_DIVERGED, /* the loss became NaN or infinite */
  DCR_CNN_TRAIN_ERROR_CANCELLED,
} DcrCnnTrainError;

typedef struct {
  guint epochs;          /* 30 */
  guint batch;           /* 64 crops per update */
  guint crop;            /* 64 pixels a side */
  guint crops_per_image; /* 4 per epoch */
  double lr;             /* 2e-3, constant */
  double weight_decay;   /* 1e-2 */
  guint64 seed;          /* 1: initialisation, crops and shuffles */
  double jpeg_p;         /* 0: probability of a crop's JPEG round trip … */
  int jpeg_qmin, jpeg_qmax; /* … at a quality uniform in [60, 95] */
} DcrCnnTrainOptions;

void dcr_cnn_train_options_init (DcrCnnTrainOptions *o);

/* One training image: RGB bytes, rows of width · 3; fake with rect
 * (x, y, w, h) the regenerated pixels of a partial fake, w = 0 for a whole
 * fake (and for reals). */
typedef struct {
  const guint8 *pixels;
  guint width, height;
  gboolean fake;
  gint64 rect[4];
} DcrCnnTrainImage;

/* The crop's label (above). */
float dcr_cnn_crop_label (const DcrCnnTrainImage *im, gint64 top, gint64 left, guint crop);
/* A crop origin for im: uniform, rounded down to multiples of 8. */
void dcr_cnn_draw_crop (const DcrCnnTrainImage *im, guint crop, GRand *rng, gint64 *top, gint64 *left);

/* The crop × crop crop at (top, left) of im after a JPEG round trip at
 * `quality` (1–100), into dst ([crop][crop][3]). The whole 16 × 16 blocks
 * that hold the crop (counted from the image's corner, cut at its edges)
 * are encoded (libjpeg's defaults: 4:2:0, so the region's MCUs are those a
 * JPEG of the whole image would have), decoded, and the crop cut from
 * them: but for a pixel at the region's edges, where chroma upsampling
 * meets the edge, the crop is that of the whole image's JPEG. Fails only
 * when libjpeg does. */
gboolean dcr_cnn_cut_jpeg (const DcrCnnTrainImage *im, gint64 top, gint64 left, guint crop, int quality,
                           guint8 *dst, GError **error);

/* nn.Conv2d's default initialisation of every layer: weights and biases
 * U(−1/√fan_in, 1/√fan_in), fan_in = cin · k², drawn from rng layer after
 * layer, weight before bias, in the file's [cout][k][k][cin] order. */
void dcr_cnn_train_init (DcrCnn *c, GRand *rng);

/* ---- one step ------------------------------------------------------------ */

typedef struct _DcrCnnTrainStep DcrCnnTrainStep;

/* A step over `batch` crops of crop × crop pixels, from c's weights, AdamW
 * state zero. Fails when the crop is too small for the network. */
DcrCnnTrainStep *dcr_cnn_train_step_new (DcrContext *ctx, const DcrCnn *c, guint batch, guint crop,
                                         const DcrAdamWConfig *adamw, GError **error);
void dcr_cnn_train_step_free (DcrCnnTrainStep *step);
/* crops: [batch][crop][crop][3] bytes; targets [batch], 0 or 1. */
gboolean dcr_cnn_train_step_set_batch (DcrCnnTrainStep *step, const guint8 *crops, const float *targets,
                                       GError **error);
/* Runs the step as AdamW update number `update` (1 for the first); *loss:
 * the batch's mean BCE before the update. */
gboolean dcr_cnn_train_step_run (DcrCnnTrainStep *step, gint64 update, double *loss, GError **error);
/* The current weights into c (same architecture). */
gboolean dcr_cnn_train_step_weights (DcrCnnTrainStep *step, DcrCnn *c, GError **error);

/* ---- the loop ------------------------------------------------------------ */

typedef gboolean (*DcrCnnTrainProgressFunc) (guint epoch, guint epochs, double loss, gpointer user_data);

/* Trains a network of arch's architecture (its weights are not used) on
 * images[0 … n). *final_loss (may be NULL): the last epoch's mean loss. */
DcrCnn *dcr_cnn_train (DcrContext *ctx, const DcrCnn *arch, const DcrCnnTrainImage *images, gsize n,
                       const DcrCnnTrainOptions *o, DcrCnnTrainProgressFunc progress, gpointer user_data,
                       double *final_loss, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrCnnTrainStep, dcr_cnn_train_step_free)

G_END_DECLS
