/* dcr-cnn-train.c — the forensic CNN's training step on the GPU
 * (preprocessing, the layers, the mean over each crop's map, BCE with
 * logits, the backward pass, AdamW), recorded once and replayed per batch,
 * and the epoch loop that cuts the crops. */
#include "dcr-cnn-train.h"
#include "dcr-image.h"
#include "dcr-op-conv.h"
#include "dcr-op-gemm.h"
#include "dcr-op-grad.h"
#include "dcr-op-loss.h"

#include "dcr-util.h"

#include <math.h>
#include <string.h>

G_DEFINE_QUARK (dcr-cnn-train-error-quark, dcr_cnn_train_error)

#define L_MAX DCR_CNN_MAX_LAYERS

struct _DcrCnnTrainStep {
  DcrSeq *seq;
  guint batch, crop, n_layers;
  DcrAdamWConfig adamw;
  DcrTensor *crops, *targets, *q, *avg, *logit, *loss, *dlogit, *hyper;
  DcrTensor *act[L_MAX], *dact[L_MAX]; /* each layer's output (after ReLU) and its gradient */
  DcrTensor *dpre[L_MAX];              /* the gradient before ReLU (hidden layers only) */
  DcrTensor map2d, dmap2d;             /* the last layer's map (and its gradient) as [batch, hm · wm] */
  DcrTensor *w[L_MAX], *b[L_MAX], *gw[L_MAX], *gb[L_MAX];
  DcrTensor *mw[L_MAX], *vw[L_MAX], *mb[L_MAX], *vb[L_MAX];
  guint stride[L_MAX];
};

void
dcr_cnn_train_options_init (DcrCnnTrainOptions *o)
{
  *o = (DcrCnnTrainOptions) { .epochs = 30, .batch = 64, .crop = 64, .crops_per_image = 4, .lr = 2e-3,
                              .weight_decay = 1e-2, .seed = 1, .jpeg_p = 0, .jpeg_qmin = 60, .jpeg_qmax = 95 };
}

float
dcr_cnn_crop_label (const DcrCnnTrainImage *im, gint64 top, gint64 left, guint crop)
{
  if (!im->fake)
    return 0.0f;
  const gint64 *r = im->rect;
  if (r[2] <= 0)
    return 1.0f;
  /* the centre of the crop's pixels, in pixel units (crop even: between pixels) */
  double cy = top + crop / 2.0, cx = left + crop / 2.0;
  return cx >= r[0] && cx < r[0] + r[2] && cy >= r[1] && cy < r[1] + r[3] ? 1.0f : 0.0f;
}

void
dcr_cnn_draw_crop (const DcrCnnTrainImage *im, guint crop, GRand *rng, gint64 *top, gint64 *left)
{
  gint64 my = (gint64) im->height - crop, mx = (gint64) im->width - crop;
  gint64 y = my > 0 ? g_rand_int_range (rng, 0, (gint32) my + 1) : 0;
  gint64 x = mx > 0 ? g_rand_int_range (rng, 0, (gint32) mx + 1) : 0;
  *top = y - y % DCR_CNN_ALIGN;
  *left = x - x % DCR_CNN_ALIGN;
}

void
dcr_cnn_train_init (DcrCnn *c, GRand *rng)
{
  for (guint l = 0; l < c->n_layers; l++)
    {
      DcrCnnLayer *ly = &c->layers[l];
      double bound = 1.0 / sqrt ((double) ly->cin * ly->kernel * ly->kernel);
      gsize nw = (gsize) ly->cout * ly->kernel * ly->kernel * ly->cin;
      for (gsize i = 0; i < nw; i++)
        ly->weight[i] = (float) g_rand_double_range (rng, -bound, bound);
      for (guint i = 0; i < ly->cout; i++)
        ly->bias[i] = (float) g_rand_double_range (rng, -bound, bound);
    }
}

void
dcr_cnn_train_step_free (DcrCnnTrainStep *s)
{
  if (!s)
    return;
  dcr_seq_free (s->seq);
  DcrTensor *all[] = { s->crops, s->targets, s->q, s->avg, s->logit, s->loss, s->dlogit, s->hyper };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    dcr_tensor_free (all[i]);
  for (guint l = 0; l < L_MAX; l++)
    {
      DcrTensor *per[] = { s->act[l], s->dact[l], s->dpre[l], s->w[l], s->b[l], s->gw[l], s->gb[l],
                           s->mw[l], s->vw[l], s->mb[l], s->vb[l] };
      for (guint i = 0; i < G_N_ELEMENTS (per); i++)
        dcr_tensor_free (per[i]);
    }
  g_free (s);
}

static DcrTensor *
tensor (DcrContext *ctx, DcrPoolKind pool, int ndim, const gint64 *shape, GError **error)
{
  return dcr_tensor_new (ctx, pool, DCR_F32, ndim, shape, error);
}

static DcrConv2dParams
conv_params (guint stride, gboolean relu)
{
  return (DcrConv2dParams) { .stride_h = (int) stride, .stride_w = (int) stride,
                             .act = relu ? DCR_ACT_RELU : DCR_ACT_NONE };
}

static gboolean
record (DcrCnnTrainStep *s, GError **error)
{
  DcrSeq *seq = s->seq;
  guint L = s->n_layers, crop = s->crop;
  if (!dcr_op_cnn_prep (seq, s->crops, s->batch, crop, crop, 0, 0, crop, crop, s->q, error))
    return FALSE;
  for (guint l = 0; l < L; l++)
    {
      DcrConv2dParams p = conv_params (s->stride[l], l + 1 < L);
      if (!dcr_op_conv2d (seq, l ? s->act[l - 1] : s->q, s->w[l], s->b[l], NULL, s->act[l], &p, error))
        return FALSE;
    }
  /* each crop's logit: the mean of its map (a linear layer with weights 1/M) */
  if (!dcr_op_linear (seq, &s->map2d, s->avg, NULL, s->logit, DCR_ACT_NONE, error) ||
      !dcr_op_bce_with_logits (seq, s->logit, s->targets, 1.0f, s->loss, s->dlogit, error) ||
      !dcr_op_linear_backward (seq, &s->map2d, s->avg, s->dlogit, &s->dmap2d, NULL, NULL, DCR_GRAD_OVERWRITE,
                               error))
    return FALSE;
  for (guint l = L; l-- > 0;)
    {
      DcrConv2dParams p = conv_params (s->stride[l], FALSE);
      /* ReLU layers: the output gives the mask */
      DcrTensor *dy = l + 1 < L ? s->dpre[l] : s->dact[l];
      if (l + 1 < L &&
          !dcr_op_act_backward (seq, DCR_ACT_RELU, s->act[l], s->dact[l], dy, DCR_GRAD_OVERWRITE, error))
        return FALSE;
      if (!dcr_op_conv2d_backward (seq, l ? s->act[l - 1] : s->q, s->w[l], dy, l ? s->dact[l - 1] : NULL, s->gw[l],
                                   s->gb[l], &p, DCR_GRAD_OVERWRITE, error))
        return FALSE;
    }
  for (guint l = 0; l < L; l++)
    if (!dcr_op_adamw (seq, s->hyper, s->w[l], s->gw[l], s->mw[l], s->vw[l], NULL, error) ||
        !dcr_op_adamw (seq, s->hyper, s->b[l], s->gb[l], s->mb[l], s->vb[l], NULL, error))
      return FALSE;
  return TRUE;
}

static gboolean
state_tensor (DcrContext *ctx, int ndim, const gint64 *shape, DcrTensor **t, GError **error)
{
  return (*t = tensor (ctx, DCR_POOL_WEIGHTS, ndim, shape, error)) && dcr_buffer_fill_zero ((*t)->buf, error);
}

DcrCnnTrainStep *
dcr_cnn_train_step_new (DcrContext *ctx, const DcrCnn *c, guint batch, guint crop, const DcrAdamWConfig *adamw,
                        GError **error)
{
  g_return_val_if_fail (c && c->n_layers >= 1 && c->n_layers <= L_MAX && batch >= 1 && adamw, NULL);
  gint64 hm, wm;
  if (crop % 2 || !dcr_cnn_map_size (c, crop, crop, &hm, &wm))
    {
      g_set_error (error, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA,
                   "crops of %u pixels are too small for this network (it needs an even side of at least %"
                   G_GINT64_FORMAT ")", crop, dcr_cnn_min_side (c));
      return NULL;
    }
  g_autoptr (DcrCnnTrainStep) s = g_new0 (DcrCnnTrainStep, 1);
  s->batch = batch;
  s->crop = crop;
  s->n_layers = c->n_layers;
  s->adamw = *adamw;
  const DcrPoolKind A = DCR_POOL_ACTIVATIONS;
  gint64 B = batch, side = crop - (DCR_CNN_BOX - 1);
  gint64 crops_shape[] = { B, crop, crop, 3 }, q_shape[] = { B, side, side, 3 }, b1[] = { B, 1 }, one[] = { 1 };
  gint64 hyper_shape[] = { DCR_OPTIM_HYPER_LEN };
  if (!(s->seq = dcr_seq_new (ctx, error)) ||
      !(s->crops = dcr_tensor_new (ctx, A, DCR_U8, 4, crops_shape, error)) ||
      !(s->q = tensor (ctx, A, 4, q_shape, error)) || !(s->targets = tensor (ctx, A, 2, b1, error)) ||
      !(s->logit = tensor (ctx, A, 2, b1, error)) || !(s->dlogit = tensor (ctx, A, 2, b1, error)) ||
      !(s->loss = tensor (ctx, A, 1, one, error)) || !(s->hyper = tensor (ctx, A, 1, hyper_shape, error)))
    return NULL;
  gint64 h = side, w = side;
  for (guint l = 0; l < c->n_layers; l++)
    {
      const DcrCnnLayer *ly = &c->layers[l];
      h = (h - ly->kernel) / ly->stride + 1;
      w = (w - ly->kernel) / ly->stride + 1;
      s->stride[l] = ly->stride;
      gint64 a_shape[] = { B, h, w, ly->cout }, w_shape[] = { ly->cout, ly->kernel, ly->kernel, ly->cin };
      gint64 b_shape[] = { ly->cout };
      if (!(s->act[l] = tensor (ctx, A, 4, a_shape, error)) || !(s->dact[l] = tensor (ctx, A, 4, a_shape, error)) ||
          (l + 1 < c->n_layers && !(s->dpre[l] = tensor (ctx, A, 4, a_shape, error))) ||
          !(s->w[l] = tensor (ctx, DCR_POOL_WEIGHTS, 4, w_shape, error)) ||
          !(s->b[l] = tensor (ctx, DCR_POOL_WEIGHTS, 1, b_shape, error)) ||
          !(s->gw[l] = tensor (ctx, A, 4, w_shape, error)) || !(s->gb[l] = tensor (ctx, A, 1, b_shape, error)) ||
          !state_tensor (ctx, 4, w_shape, &s->mw[l], error) || !state_tensor (ctx, 4, w_shape, &s->vw[l], error) ||
          !state_tensor (ctx, 1, b_shape, &s->mb[l], error) || !state_tensor (ctx, 1, b_shape, &s->vb[l], error) ||
          !dcr_tensor_upload (s->w[l], ly->weight, error) || !dcr_tensor_upload (s->b[l], ly->bias, error))
        return NULL;
    }
  g_assert (h == hm && w == wm);
  gint64 M = hm * wm, avg_shape[] = { 1, M };
  g_autofree float *avg = g_new (float, M);
  for (gint64 i = 0; i < M; i++)
    avg[i] = (float) (1.0 / (double) M);
  if (!(s->avg = tensor (ctx, DCR_POOL_WEIGHTS, 2, avg_shape, error)) || !dcr_tensor_upload (s->avg, avg, error))
    return NULL;
  /* views of the last layer's [B, hm, wm, 1] as [B, M] */
  guint last = c->n_layers - 1;
  s->map2d = *s->act[last];
  s->dmap2d = *s->dact[last];
  s->map2d.ndim = s->dmap2d.ndim = 2;
  s->map2d.shape[0] = s->dmap2d.shape[0] = B;
  s->map2d.shape[1] = s->dmap2d.shape[1] = M;
  if (!record (s, error))
    return NULL;
  return g_steal_pointer (&s);
}

gboolean
dcr_cnn_train_step_set_batch (DcrCnnTrainStep *s, const guint8 *crops, const float *targets, GError **error)
{
  for (guint i = 0; i < s->batch; i++)
    if (targets[i] != 0.0f && targets[i] != 1.0f)
      {
        g_set_error (error, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA,
                     "crop %u of the batch has label %g; labels are 0 or 1", i, (double) targets[i]);
        return FALSE;
      }
  return dcr_tensor_upload (s->crops, crops, error) && dcr_tensor_upload (s->targets, targets, error);
}

gboolean
dcr_cnn_train_step_run (DcrCnnTrainStep *s, gint64 update, double *loss, GError **error)
{
  float hyper[DCR_OPTIM_HYPER_LEN], l;
  dcr_adamw_hyper (&s->adamw, update, hyper);
  if (!dcr_tensor_upload (s->hyper, hyper, error) || !dcr_seq_submit (s->seq, TRUE, error) ||
      !dcr_tensor_download (s->loss, &l, error))
    return FALSE;
  if (!isfinite (l))
    {
      g_set_error (error, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DIVERGED,
                   "the CNN's training loss became %g at update %" G_GINT64_FORMAT "; lower the learning rate",
                   (double) l, update);
      return FALSE;
    }
  if (loss)
    *loss = l;
  return TRUE;
}

gboolean
dcr_cnn_train_step_weights (DcrCnnTrainStep *s, DcrCnn *c, GError **error)
{
  g_return_val_if_fail (c->n_layers == s->n_layers, FALSE);
  for (guint l = 0; l < s->n_layers; l++)
    if (!dcr_tensor_download (s->w[l], c->layers[l].weight, error) ||
        !dcr_tensor_download (s->b[l], c->layers[l].bias, error))
      return FALSE;
  return TRUE;
}

static gboolean
check (const DcrCnn *arch, const DcrCnnTrainImage *images, gsize n, const DcrCnnTrainOptions *o, GError **error)
{
  if (o->epochs < 1 || o->batch < 2 || o->crop < 8 || o->crop % 2 || o->crops_per_image < 1 || !(o->lr > 0) ||
      !(o->weight_decay >= 0))
    {
      g_set_error_literal (error, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA,
                           "CNN training needs epochs ≥ 1, batch ≥ 2, an even crop of at least 8 pixels, at least "
                           "one crop per image, a learning rate > 0 and weight decay ≥ 0");
      return FALSE;
    }
  if (!(o->jpeg_p >= 0 && o->jpeg_p <= 1) || o->jpeg_qmin < 1 || o->jpeg_qmax > 100 || o->jpeg_qmin > o->jpeg_qmax)
    {
      g_set_error (error, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA,
                   "a crop's JPEG round trip needs a probability in [0, 1] and qualities QMIN ≤ QMAX within 1…100 "
                   "(got %g, %d–%d)", o->jpeg_p, o->jpeg_qmin, o->jpeg_qmax);
      return FALSE;
    }
  gint64 hm, wm;
  if (!dcr_cnn_map_size (arch, o->crop, o->crop, &hm, &wm))
    {
      g_set_error (error, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA,
                   "crops of %u pixels are too small for this network (at least %" G_GINT64_FORMAT ")", o->crop,
                   dcr_cnn_min_side (arch));
      return FALSE;
    }
  gsize fakes = 0;
  for (gsize i = 0; i < n; i++)
    {
      if (images[i].width < o->crop || images[i].height < o->crop)
        {
          g_set_error (error, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA,
                       "training image %" G_GSIZE_FORMAT " is %u×%u pixels, smaller than the %u-pixel crops", i,
                       images[i].width, images[i].height, o->crop);
          return FALSE;
        }
      fakes += images[i].fake;
    }
  if (fakes == 0 || fakes == n)
    {
      g_set_error (error, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA,
                   "%" G_GSIZE_FORMAT " fake and %" G_GSIZE_FORMAT " real training images; training needs both",
                   fakes, n - fakes);
      return FALSE;
    }
  if (n * o->crops_per_image < o->batch || n * o->crops_per_image > G_MAXINT32)
    {
      g_set_error (error, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA,
                   "%" G_GSIZE_FORMAT " images × %u crops do not fill one batch of %u (or are too many)", n,
                   o->crops_per_image, o->batch);
      return FALSE;
    }
  return TRUE;
}

static void
cut (const DcrCnnTrainImage *im, gint64 top, gint64 left, guint crop, guint8 *dst)
{
  for (guint y = 0; y < crop; y++)
    memcpy (dst + (gsize) y * crop * 3, im->pixels + ((gsize) (top + y) * im->width + left) * 3, (gsize) crop * 3);
}

gboolean
dcr_cnn_cut_jpeg (const DcrCnnTrainImage *im, gint64 top, gint64 left, guint crop, int quality, guint8 *dst,
                  GError **error)
{
  g_return_val_if_fail (top >= 0 && left >= 0 && top + crop <= im->height && left + crop <= im->width, FALSE);
  /* the region: whole MCUs around the crop (up to the image's edges) */
  gint64 r0 = top - top % 16, c0 = left - left % 16;
  gint64 r1 = MIN ((top + crop + 15) / 16 * 16, (gint64) im->height);
  gint64 c1 = MIN ((left + crop + 15) / 16 * 16, (gint64) im->width);
  guint rh = (guint) (r1 - r0), rw = (guint) (c1 - c0);
  g_autoptr (DcrImage) region = dcr_image_new (rw, rh);
  for (guint y = 0; y < rh; y++)
    memcpy (region->pixels + (gsize) y * rw * 3, im->pixels + ((gsize) (r0 + y) * im->width + c0) * 3, (gsize) rw * 3);
  g_autoptr (GBytes) jpg = dcr_image_encode_jpeg (region, quality, error);
  if (!jpg)
    return FALSE;
  g_autoptr (DcrImage) back = dcr_image_load_from_bytes (jpg, "training crop", NULL, error);
  if (!back)
    return FALSE;
  if (back->width != rw || back->height != rh)
    {
      g_set_error (error, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA,
                   "a training crop's JPEG round trip came back %u×%u instead of %u×%u", back->width, back->height,
                   rw, rh);
      return FALSE;
    }
  for (guint y = 0; y < crop; y++)
    memcpy (dst + (gsize) y * crop * 3, back->pixels + ((gsize) (top - r0 + y) * rw + (left - c0)) * 3,
            (gsize) crop * 3);
  return TRUE;
}

DcrCnn *
dcr_cnn_train (DcrContext *ctx, const DcrCnn *arch, const DcrCnnTrainImage *images, gsize n,
               const DcrCnnTrainOptions *o, DcrCnnTrainProgressFunc progress, gpointer user_data, double *final_loss,
               GError **error)
{
  if (!check (arch, images, n, o, error))
    return NULL;
  guint channels[L_MAX + 1], kernels[L_MAX], strides[L_MAX];
  channels[0] = arch->layers[0].cin;
  for (guint l = 0; l < arch->n_layers; l++)
    {
      channels[l + 1] = arch->layers[l].cout;
      kernels[l] = arch->layers[l].kernel;
      strides[l] = arch->layers[l].stride;
    }
  g_autoptr (DcrCnn) c = dcr_cnn_new (arch->n_layers, channels, kernels, strides, error);
  if (!c)
    return NULL;
  guint32 s0 = (guint32) o->seed, s1 = (guint32) (o->seed >> 32);
  g_autoptr (GRand) rng = g_rand_new_with_seed_array ((const guint32[]) { s0, s1, 0xc22 }, 3);
  dcr_cnn_train_init (c, rng);
  DcrAdamWConfig adamw = { o->lr, 0.9, 0.999, 1e-8, o->weight_decay };
  g_autoptr (DcrCnnTrainStep) step = dcr_cnn_train_step_new (ctx, c, o->batch, o->crop, &adamw, error);
  if (!step)
    return NULL;
  gsize total = n * o->crops_per_image, per_epoch = total / o->batch, crop_bytes = (gsize) o->crop * o->crop * 3;
  g_autofree gsize *order = g_new (gsize, total);
  g_autofree gint64 *origin = g_new (gint64, 2 * total);
  g_autofree int *quality = g_new0 (int, total);
  g_autofree guint8 *crops = g_new (guint8, crop_bytes * o->batch);
  g_autofree float *targets = g_new (float, o->batch);
  gint64 update = 0;
  double epoch_loss = NAN;
  for (guint e = 0; e < o->epochs; e++)
    {
      /* each epoch's crops and shuffle come from (seed, epoch) */
      g_autoptr (GRand) er = g_rand_new_with_seed_array ((const guint32[]) { s0, s1, e, 0xc209 }, 4);
      for (gsize i = 0; i < total; i++)
        {
          order[i] = i;
          dcr_cnn_draw_crop (&images[i % n], o->crop, er, &origin[2 * i], &origin[2 * i + 1]);
        }
      dcr_shuffle_indices (order, total, er);
      if (o->jpeg_p > 0)
        {
          /* a stream of its own, so that the crops and the shuffle do not depend on the option */
          g_autoptr (GRand) jr = g_rand_new_with_seed_array ((const guint32[]) { s0, s1, e, 0x1e9c }, 4);
          for (gsize i = 0; i < total; i++)
            {
              double u = g_rand_double (jr);
              int q = o->jpeg_qmin + g_rand_int_range (jr, 0, o->jpeg_qmax - o->jpeg_qmin + 1);
              quality[i] = u < o->jpeg_p ? q : 0;
            }
        }
      double sum = 0;
      for (gsize u = 0; u < per_epoch; u++)
        {
          for (guint i = 0; i < o->batch; i++)
            {
              gsize k = order[u * o->batch + i];
              const DcrCnnTrainImage *im = &images[k % n];
              if (quality[k])
                {
                  if (!dcr_cnn_cut_jpeg (im, origin[2 * k], origin[2 * k + 1], o->crop, quality[k],
                                         crops + i * crop_bytes, error))
                    return NULL;
                }
              else
                cut (im, origin[2 * k], origin[2 * k + 1], o->crop, crops + i * crop_bytes);
              targets[i] = dcr_cnn_crop_label (im, origin[2 * k], origin[2 * k + 1], o->crop);
            }
          double l;
          if (!dcr_cnn_train_step_set_batch (step, crops, targets, error) ||
              !dcr_cnn_train_step_run (step, ++update, &l, error))
            return NULL;
          sum += l;
        }
      epoch_loss = sum / per_epoch;
      if (progress && !progress (e + 1, o->epochs, epoch_loss, user_data))
        {
          g_set_error_literal (error, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_CANCELLED, "training cancelled");
          return NULL;
        }
    }
  if (!dcr_cnn_train_step_weights (step, c, error))
    return NULL;
  if (final_loss)
    *final_loss = epoch_loss;
  return g_steal_pointer (&c);
}
