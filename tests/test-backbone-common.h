/* test-backbone-common.h — shared by the ResNet and CLIP backbone tests: the
 * golden files of tests/golden/make-backbone-golden.py, its input formula,
 * comparisons scaled to the feature's magnitude, and damaged copies of a
 * weight file for the error tests; photo-like images and the batch set-up of
 * the forensic ops' tests. */
#pragma once

#include "dcr-test-util.h"
#include "dcr-backbone.h"
#include "dcr-safetensors.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static inline char *
golden_path (const char *name)
{
  return g_build_filename (g_getenv ("DCR_SOURCE_ROOT"), "tests", "golden", name, NULL);
}

static inline guint32
golden_lowbias32 (guint32 v)
{
  v ^= v >> 16;
  v *= 0x7feb352du;
  v ^= v >> 15;
  v *= 0x846ca68bu;
  v ^= v >> 16;
  return v;
}

/* A photo-like test image for the forensic taps, 8-bit RGB [h, w, 3]:
 * smooth gradients plus uniform noise of ±amp, so that every statistic is
 * non-trivial. varying: amp changes across the picture (5…37 in blocks of
 * 37 × 53 px), so that tiles differ from each other; else amp 20. */
static inline guint8 *
photo_image (gint64 h, gint64 w, guint32 seed, gboolean varying)
{
  guint8 *img = g_new (guint8, h * w * 3);
  for (gint64 y = 0; y < h; y++)
    for (gint64 x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        {
          int amp = varying ? 5 + (int) ((x / 37 + y / 53) % 5) * 8 : 20;
          double v = 128 + 60 * sin (0.05 * x + 0.9 * c) * cos (0.07 * y)
                     + (int) (golden_lowbias32 (seed + (guint32) ((y * w + x) * 3 + c)) % (guint32) (2 * amp + 1)) - amp;
          img[(y * w + x) * 3 + c] = (guint8) CLAMP (v, 0, 255);
        }
  return img;
}

/* A batch of one op's test (test-op-forensic.c, test-op-local.c): m
 * photo_image()s back to back in px and an [m, h, w, 3] tensor of them,
 * scratch of m + 2 slots of acc_size floats filled with −3 and an output of
 * m + 2 rows of D floats filled with −7 (the op writes slots and rows
 * 1 … m). */
typedef struct {
  gint64 m, h, w, D;
  gsize bytes; /* of one image */
  guint8 *px;
  DcrTensor *images, *acc, *y;
} OpBatch;

static inline void
op_batch_init (OpBatch *b, gint64 m, gint64 h, gint64 w, guint32 seed, gboolean varying, gint64 acc_size, gint64 D)
{
  *b = (OpBatch) { m, h, w, D, (gsize) h * w * 3, NULL, NULL, NULL, NULL };
  b->px = g_new (guint8, m * b->bytes);
  for (gint64 i = 0; i < m; i++)
    {
      g_autofree guint8 *img = photo_image (h, w, seed + (guint32) i * 104729u, varying);
      memcpy (b->px + i * b->bytes, img, b->bytes);
    }
  b->images = dcr_test_images_tensor (b->px, m, h, w);
  gint64 ashape[] = { (m + 2) * acc_size }, yshape[] = { m + 2, D };
  g_autofree float *afill = g_new (float, ashape[0]), *yfill = g_new (float, yshape[0] * D);
  for (gint64 i = 0; i < ashape[0]; i++)
    afill[i] = -3.0f;
  for (gint64 i = 0; i < yshape[0] * D; i++)
    yfill[i] = -7.0f;
  b->acc = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, ashape, afill);
  b->y = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 2, yshape, yfill);
}

/* After the op: slots 0 and m + 1 of acc (gacc, downloaded) still −3, and
 * every value of y (gy) outside rows 1 … m, columns column … column + dim
 * still −7. */
static inline void
op_batch_check_untouched (const OpBatch *b, const float *gacc, gint64 acc_size, const float *gy, gint64 column,
                          gint64 dim)
{
  for (gint64 k = 0; k < acc_size; k++)
    {
      g_assert_cmpfloat (gacc[k], ==, -3.0f);
      g_assert_cmpfloat (gacc[(b->m + 1) * acc_size + k], ==, -3.0f);
    }
  for (gint64 r = 0; r < b->m + 2; r++)
    for (gint64 k = 0; k < b->D; k++)
      if (r < 1 || r > b->m || k < column || k >= column + dim)
        g_assert_cmpfloat (gy[r * b->D + k], ==, -7.0f);
}

static inline void
op_batch_clear (OpBatch *b)
{
  g_free (b->px);
  dcr_tensor_free (b->images);
  dcr_tensor_free (b->acc);
  dcr_tensor_free (b->y);
}

/* The "input" formula in the reference files' metadata: noise plus a
 * per-image stripe pattern, NHWC. */
static inline float *
golden_input (guint32 seed, guint n, guint size)
{
  gsize count = (gsize) n * size * size * 3;
  float *x = g_new (float, count);
  gsize i = 0;
  for (guint k = 0; k < n; k++)
    for (guint y = 0; y < size; y++)
      for (guint xx = 0; xx < size; xx++)
        for (guint c = 0; c < 3; c++, i++)
          {
            guint32 u = golden_lowbias32 ((guint32) i + seed * 0x9E3779B9u);
            double noise = (double) (u >> 8) * 0x1p-23 - 1.0;
            double stripes = (double) (((k + 1) * xx + 3 * (k + 2) * y + 21 * c) & 63) * 0x1p-5 - 1.0;
            x[i] = (float) (noise + stripes);
          }
  return x;
}

/* The [n, dim] "features" of a reference file. */
static inline float *
golden_features (const char *ref_path, guint n, guint dim)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrSafetensors) st = dcr_safetensors_open (ref_path, &err);
  g_assert_no_error (err);
  gint64 shape[] = { n, dim };
  float *v = NULL;
  g_assert_true (dcr_safetensors_get_f32 (st, "features", shape, 2, &v, &err));
  g_assert_no_error (err);
  return v;
}

/* Every |error| within frac × the largest |value| of the whole feature
 * (features near zero carry the absolute error of their large neighbours);
 * returns the ratio seen. */
static inline double
assert_scaled_close (const char *what, const float *got, const float *want, gsize n, double frac)
{
  double max_want = 0, max_err = 0;
  gsize worst = 0;
  for (gsize i = 0; i < n; i++)
    {
      max_want = MAX (max_want, fabs (want[i]));
      double e = fabs ((double) got[i] - want[i]);
      if (!(e <= max_err))
        {
          max_err = e;
          worst = i;
        }
    }
  g_test_message ("%s: max |error| %.3g at %" G_GSIZE_FORMAT ", max |value| %.3g (%.4f%%)", what, max_err, worst,
                  max_want, 100 * max_err / max_want);
  if (!(max_err <= frac * max_want))
    g_test_fail_printf ("%s: |error| %.4g at element %" G_GSIZE_FORMAT " (got %g, want %g) exceeds %.3f%% of the "
                        "largest value %.4g", what, max_err, worst, got[worst], want[worst], 100 * frac, max_want);
  return max_err / max_want;
}

typedef enum {
  DAMAGE_DROP,     /* leave the tensor out */
  DAMAGE_RESHAPE,  /* same data, another shape ([n] → [1, n], else flattened) */
  DAMAGE_NAN,      /* its first element becomes NaN */
  DAMAGE_PREFIX,   /* no damage: every name gets `target` in front */
} Damage;

/* Writes `dst`: a copy of the weight file `src` with one tensor damaged. */
static inline void
write_damaged (const char *src, const char *dst, Damage damage, const char *target)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrSafetensors) st = dcr_safetensors_open (src, &err);
  g_assert_no_error (err);
  guint n = dcr_safetensors_n_tensors (st);
  g_autofree DcrStWriteTensor *out = g_new0 (DcrStWriteTensor, n);
  g_autofree gint64 *shapes = g_new0 (gint64, (gsize) n * DCR_ST_MAX_DIMS);
  g_autoptr (GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  guint m = 0;
  gboolean found = damage == DAMAGE_PREFIX;
  for (guint i = 0; i < n; i++)
    {
      const DcrStTensor *t = dcr_safetensors_tensor_at (st, i);
      gboolean hit = damage != DAMAGE_PREFIX && strcmp (t->name, target) == 0;
      found |= hit;
      if (hit && damage == DAMAGE_DROP)
        continue;
      gint64 *shape = shapes + (gsize) m * DCR_ST_MAX_DIMS;
      memcpy (shape, t->shape, sizeof (gint64) * t->ndim);
      DcrStWriteTensor w = { t->name, t->dtype, t->ndim, shape, t->data };
      if (damage == DAMAGE_PREFIX)
        {
          w.name = g_strconcat (target, t->name, NULL);
          g_ptr_array_add (keep, (gpointer) w.name);
        }
      if (hit && damage == DAMAGE_RESHAPE)
        {
          if (t->ndim == 1)
            {
              shape[0] = 1;
              shape[1] = t->shape[0];
              w.ndim = 2;
            }
          else
            {
              shape[0] = (gint64) t->numel;
              w.ndim = 1;
            }
        }
      if (hit && damage == DAMAGE_NAN)
        {
          guint8 *copy = g_memdup2 (t->data, t->nbytes);
          if (t->dtype == DCR_ST_F16)
            {
              guint16 h = GUINT16_TO_LE (0x7e00);
              memcpy (copy, &h, 2);
            }
          else
            {
              g_assert_cmpint (t->dtype, ==, DCR_ST_F32);
              float f = NAN;
              memcpy (copy, &f, 4);
            }
          w.data = copy;
          g_ptr_array_add (keep, copy);
        }
      out[m++] = w;
    }
  g_assert_true (found);
  const char *const *keys = dcr_safetensors_metadata_keys (st);
  g_autoptr (GPtrArray) meta = g_ptr_array_new ();
  for (gsize i = 0; keys && keys[i]; i++)
    {
      g_ptr_array_add (meta, (gpointer) keys[i]);
      g_ptr_array_add (meta, (gpointer) dcr_safetensors_metadata (st, keys[i]));
    }
  g_ptr_array_add (meta, NULL);
  g_assert_true (dcr_safetensors_write (dst, out, m, (const char *const *) meta->pdata, &err));
  g_assert_no_error (err);
}

/* Loading `spec_kind`:`path` must fail with a message naming the file and,
 * when given, the tensor. */
static inline void
assert_load_fails (const char *spec_kind, const char *path, const char *tensor)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *spec = g_strdup_printf ("%s:%s", spec_kind, path);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (dcr_test_context (), spec, DCR_F32, &err);
  g_assert_null (bb);
  g_assert_nonnull (err);
  g_autofree char *base = g_path_get_basename (path);
  g_test_message ("%s: %s", spec, err->message);
  if (!strstr (err->message, base))
    g_test_fail_printf ("the error \"%s\" does not name the file %s", err->message, base);
  if (tensor && !strstr (err->message, tensor))
    g_test_fail_printf ("the error \"%s\" does not name the tensor %s", err->message, tensor);
}

/* Runs `bb` on n inputs made by golden_input (seed) and returns [n, dim]. */
static inline float *
run_on_golden_input (DcrBackbone *bb, guint32 seed, guint n)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBackboneRun) run = dcr_backbone_run_new (bb, n, &err);
  g_assert_no_error (err);
  g_autofree float *in = golden_input (seed, n, dcr_backbone_input_size (bb));
  g_assert_true (dcr_backbone_run_set_input (run, in, n, &err));
  g_assert_true (dcr_backbone_run_forward (run, &err));
  g_assert_no_error (err);
  guint dim = dcr_backbone_dim (bb);
  float *got = g_new (float, (gsize) n * dim);
  g_assert_true (dcr_backbone_run_features (run, got, &err));
  g_assert_no_error (err);
  /* a replay of the recorded pass gives the same answer */
  g_assert_true (dcr_backbone_run_forward (run, &err));
  g_autofree float *again = g_new (float, (gsize) n * dim);
  g_assert_true (dcr_backbone_run_features (run, again, &err));
  g_assert_no_error (err);
  dcr_test_assert_close ("replay", again, got, (gsize) n * dim, 0, 0);
  return got;
}
