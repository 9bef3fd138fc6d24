/* dcr-op-preprocess.c — image preprocessing: parameter presets, shape
 * checks and a separable CPU reference that follows torch's antialiased
 * resize step by step. */
#include "dcr-op-preprocess.h"

#include <math.h>

void
dcr_preprocess_set_imagenet (DcrPreprocessParams *p)
{
  static const float mean[3] = { 0.485f, 0.456f, 0.406f }, sd[3] = { 0.229f, 0.224f, 0.225f };
  p->divisor = 255.0f;
  for (int c = 0; c < 3; c++)
    {
      p->mean[c] = mean[c];
      p->std[c] = sd[c];
    }
}

void
dcr_preprocess_set_keras_tf (DcrPreprocessParams *p)
{
  p->divisor = 127.5f;
  for (int c = 0; c < 3; c++)
    {
      p->mean[c] = 1.0f;
      p->std[c] = 1.0f;
    }
}

/* Python's round() of diff / 2: halves go to the even neighbour. */
static gint64
centre_offset (gint64 diff)
{
  gint64 q = diff / 2;
  if (diff % 2 == 0)
    return q;
  return q % 2 == 0 ? q : q + 1;
}

void
dcr_preprocess_set_resize_short_crop (DcrPreprocessParams *p, gint64 img_h, gint64 img_w,
                                      gint64 short_side, gint64 crop_h, gint64 crop_w)
{
  if (img_w <= img_h)
    {
      p->resize_w = short_side;
      p->resize_h = (gint64) ((double) short_side * img_h / img_w); /* int(size * long / short) */
    }
  else
    {
      p->resize_h = short_side;
      p->resize_w = (gint64) ((double) short_side * img_w / img_h);
    }
  p->crop_top = centre_offset (p->resize_h - crop_h);
  p->crop_left = centre_offset (p->resize_w - crop_w);
}

DcrTensor *
dcr_image_tensor_new (DcrContext *ctx, DcrPoolKind pool, gint64 h, gint64 w, GError **error)
{
  DcrTensor *t = dcr_images_tensor_new (ctx, pool, 1, h, w, error);
  if (t)
    {
      t->ndim = 3;
      t->shape[0] = h;
      t->shape[1] = w;
      t->shape[2] = 3;
    }
  return t;
}

DcrTensor *
dcr_images_tensor_new (DcrContext *ctx, DcrPoolKind pool, gint64 n, gint64 h, gint64 w, GError **error)
{
  if (n < 1 || h < 1 || w < 1 || h > G_MAXINT32 / 3 / w || n > G_MAXINT32 / 3 / w / h)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "%" G_GINT64_FORMAT " images of %" G_GINT64_FORMAT
                   "x%" G_GINT64_FORMAT " pixels are none, empty or too large", n, w, h);
      return NULL;
    }
  DcrBuffer *buf = dcr_buffer_new (ctx, pool, (gsize) ((n * h * w * 3 + 3) & ~(gint64) 3), error);
  if (!buf)
    return NULL;
  DcrTensor *t = g_new0 (DcrTensor, 1);
  t->buf = buf;
  t->dtype = DCR_U8;
  t->ndim = 4;
  t->shape[0] = n;
  t->shape[1] = h;
  t->shape[2] = w;
  t->shape[3] = 3;
  return t;
}

/* ---- reference -------------------------------------------------------------- */

typedef struct {
  gint64 lo, n;
  double *w; /* n normalised weights */
} Taps;

/* torch's _compute_indices_weights_aa (PIL's precompute_coeffs) for output
 * index i, or the two bilinear taps. */
static void
taps_for (Taps *t, gint64 i, gint64 in, gint64 out, DcrResizeFilter filter)
{
  double scale = (double) (float) ((float) in / (float) out);
  if (filter == DCR_RESIZE_ANTIALIAS)
    {
      double support = scale >= 1.0 ? scale : 1.0;
      double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
      double center = scale * (i + 0.5);
      t->lo = MAX ((gint64) (center - support + 0.5), 0);
      t->n = MIN ((gint64) (center + support + 0.5), in) - t->lo;
      t->w = g_new (double, MAX (t->n, 1));
      double total = 0;
      for (gint64 j = 0; j < t->n; j++)
        {
          double x = fabs ((j + t->lo - center + 0.5) * invscale);
          t->w[j] = x < 1.0 ? 1.0 - x : 0.0;
          total += t->w[j];
        }
      for (gint64 j = 0; j < t->n; j++)
        t->w[j] = total != 0.0 ? t->w[j] / total : 0.0;
    }
  else
    {
      double src = MAX (scale * (i + 0.5) - 0.5, 0.0);
      gint64 i0 = (gint64) src;
      double l = src - (double) i0;
      t->lo = i0;
      t->n = i0 < in - 1 ? 2 : 1;
      t->w = g_new (double, 2);
      t->w[0] = t->n == 2 ? 1.0 - l : 1.0;
      t->w[1] = l;
    }
}

void
dcr_ref_preprocess (const guint8 *image, gint64 h, gint64 w, float *y, gint64 oh, gint64 ow,
                    const DcrPreprocessParams *p)
{
  gint64 rh = p->resize_h > 0 ? p->resize_h : h, rw = p->resize_w > 0 ? p->resize_w : w;
  double divisor = p->divisor != 0 ? p->divisor : 255.0;
  Taps *ty = g_new (Taps, oh), *tx = g_new (Taps, ow);
  for (gint64 i = 0; i < oh; i++)
    taps_for (&ty[i], p->crop_top + i, h, rh, p->filter);
  for (gint64 j = 0; j < ow; j++)
    taps_for (&tx[j], p->crop_left + j, w, rw, p->filter);
  for (gint64 i = 0; i < oh; i++)
    for (gint64 j = 0; j < ow; j++)
      for (int c = 0; c < 3; c++)
        {
          double v = 0;
          for (gint64 a = 0; a < ty[i].n; a++)
            {
              double row = 0;
              for (gint64 b = 0; b < tx[j].n; b++)
                row += tx[j].w[b] * image[((ty[i].lo + a) * w + tx[j].lo + b) * 3 + c];
              v += ty[i].w[a] * row;
            }
          double sd = p->std[c] != 0 ? p->std[c] : 1.0;
          /* float steps, as torchvision's ToTensor + Normalize (or Keras) evaluate them */
          float scaled = (float) v / (float) divisor;
          y[(i * ow + j) * 3 + c] = (scaled - p->mean[c]) / (float) sd;
        }
  for (gint64 i = 0; i < oh; i++)
    g_free (ty[i].w);
  for (gint64 j = 0; j < ow; j++)
    g_free (tx[j].w);
  g_free (ty);
  g_free (tx);
}

/* ---- recording -------------------------------------------------------------- */

typedef struct {
  guint32 last_word;
  guint32 H, W, RH, RW, top, left, OH, OW, out0;
  float scale_y, scale_x, divisor;
  float mean[3], std[3];
  guint32 img_bytes;
} PrepPush;

gboolean
dcr_op_preprocess (DcrSeq *seq, const DcrTensor *image, DcrTensor *y, const DcrPreprocessParams *p,
                   GError **error)
{
  DcrContext *ctx = dcr_seq_context (seq);
  if (image->dtype != DCR_U8 || (image->ndim != 3 && image->ndim != 4) || image->shape[image->ndim - 1] != 3)
    {
      g_autofree char *is = dcr_ops_shape_string (image);
      g_set_error (error, DCR_OPS_ERROR, image->dtype != DCR_U8 ? DCR_OPS_ERROR_DTYPE : DCR_OPS_ERROR_SHAPE,
                   "preprocess: the image is %s, expected [H, W, 3] or [N, H, W, 3] u8 (interleaved RGB)", is);
      return FALSE;
    }
  gint64 images = image->ndim == 4 ? image->shape[0] : 1;
  gint64 h = image->shape[image->ndim - 3], w = image->shape[image->ndim - 2];
  gsize need = (gsize) ((images * h * w * 3 + 3) & ~(gint64) 3);
  if (images < 1 || images * h * w * 3 >= G_MAXUINT32)
    {
      g_autofree char *is = dcr_ops_shape_string (image);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "preprocess: the images %s are none or more than 4 GiB", is);
      return FALSE;
    }
  if (dcr_buffer_size (image->buf) < need)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "preprocess: a %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " image needs its buffer padded to "
                   "%" G_GSIZE_FORMAT " bytes; allocate it with dcr_image_tensor_new", w, h, need);
      return FALSE;
    }
  if (!dcr_ops_check_dtype (seq, "preprocess", y, error))
    return FALSE;
  gint64 n = y->ndim == 4 ? y->shape[0] : 1;
  if ((y->ndim != 4 && y->ndim != 3) || y->shape[y->ndim - 1] != 3 || dcr_tensor_numel (y) >= G_MAXINT32)
    {
      g_autofree char *ys = dcr_ops_shape_string (y);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "preprocess: the output is %s, expected [N, OH, OW, 3] or [OH, OW, 3]", ys);
      return FALSE;
    }
  gint64 oh = y->shape[y->ndim - 3], ow = y->shape[y->ndim - 2];
  gint64 rh = p->resize_h > 0 ? p->resize_h : h, rw = p->resize_w > 0 ? p->resize_w : w;
  if (p->batch_index < 0 || p->batch_index + images > n)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "preprocess: batch index %" G_GINT64_FORMAT " (%" G_GINT64_FORMAT " images) is outside the %"
                   G_GINT64_FORMAT " images of the output", p->batch_index, images, n);
      return FALSE;
    }
  if (p->crop_top < 0 || p->crop_left < 0 || p->crop_top + oh > rh || p->crop_left + ow > rw
      || rh > G_MAXINT32 || rw > G_MAXINT32)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "preprocess: a %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " window at (%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT ") does not fit in the %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                   " resized image", ow, oh, p->crop_left, p->crop_top, rw, rh);
      return FALSE;
    }
  if (p->filter != DCR_RESIZE_ANTIALIAS && p->filter != DCR_RESIZE_BILINEAR)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "preprocess: unknown filter %d", p->filter);
      return FALSE;
    }

  /* Antialiased with at most 4 taps an axis (scales ≤ 1.5): one invocation
   * a column of WALK output rows (see the shader); else one an output pixel. */
  double scale_y = (double) h / (double) rh, scale_x = (double) w / (double) rw;
  gboolean walk = p->filter == DCR_RESIZE_ANTIALIAS && scale_y <= 1.5 && scale_x <= 1.5;
  guint32 lx = walk ? 32 : 8, ly = walk ? 1 : 8, rows = walk ? 16 : 0;
  guint32 spec[] = { lx, ly, 1, p->filter == DCR_RESIZE_ANTIALIAS, rows };
  char name[32];
  DcrPipeline *pipe = dcr_pipeline_get (ctx, dcr_ops_shader_name ("preprocess", y->dtype, name, sizeof name),
                                        spec, G_N_ELEMENTS (spec), 2, sizeof (PrepPush), error);
  if (!pipe)
    return FALSE;
  PrepPush pc = {
    (guint32) ((need - 1) / 4),
    (guint32) h, (guint32) w, (guint32) rh, (guint32) rw, (guint32) p->crop_top, (guint32) p->crop_left,
    (guint32) oh, (guint32) ow, 0,
    (float) h / (float) rh, (float) w / (float) rw, p->divisor != 0 ? p->divisor : 255.0f,
    { p->mean[0], p->mean[1], p->mean[2] },
    { p->std[0] != 0 ? p->std[0] : 1.0f, p->std[1] != 0 ? p->std[1] : 1.0f, p->std[2] != 0 ? p->std[2] : 1.0f },
    (guint32) (h * w * 3),
  };
  /* Bind only these images' slices (from a 256-byte boundary, the largest
   * offset alignment Vulkan allows), so that filling a batch image by image
   * does not serialise the dispatches on one another. */
  gsize es = dcr_dtype_size (y->dtype);
  gsize start = (gsize) (p->batch_index * oh * ow * 3) * es, aligned = start & ~(gsize) 255;
  pc.out0 = (guint32) ((start - aligned) / es);
  DcrBinding b[2] = {
    { image->buf, 0, need, FALSE },
    { y->buf, aligned, start + (gsize) (images * oh * ow * 3) * es - aligned, TRUE },
  };
  guint32 gy = walk ? (guint32) ((oh + rows - 1) / rows) : (guint32) ((oh + ly - 1) / ly);
  dcr_seq_dispatch (seq, pipe, b, 2, &pc, sizeof pc, (guint32) ((ow + lx - 1) / lx), gy, (guint32) images);
  return TRUE;
}
