/* dcr-tile-head.c — the tile head (definition in the header): its file, its
 * inputs from the local scratch, and its reference in double. The GPU op is
 * in dcr-op-tile-head.c. */
#include "dcr-tile-head.h"
#include "dcr-safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NIN DCR_TILES_NIN

G_DEFINE_QUARK (dcr-tile-head-error-quark, dcr_tile_head_error)

DcrTileHead *
dcr_tile_head_new (guint hidden)
{
  g_return_val_if_fail (hidden >= 1 && hidden <= DCR_TILES_MAX_HIDDEN, NULL);
  DcrTileHead *h = g_new0 (DcrTileHead, 1);
  h->hidden = hidden;
  for (int j = 0; j < NIN; j++)
    h->std[j] = 1.0f;
  h->w1 = g_new0 (float, (gsize) hidden * NIN);
  h->b1 = g_new0 (float, hidden);
  h->w2 = g_new0 (float, hidden);
  return h;
}

void
dcr_tile_head_free (DcrTileHead *h)
{
  if (!h)
    return;
  g_free (h->w1);
  g_free (h->b1);
  g_free (h->w2);
  g_free (h->sha256);
  g_free (h->training);
  g_free (h);
}

static gboolean
fail (GError **error, const char *path, const char *what)
{
  g_set_error (error, DCR_TILE_HEAD_ERROR, DCR_TILE_HEAD_ERROR_FILE, "%s: %s", path, what);
  return FALSE;
}

DcrTileHead *
dcr_tile_head_load (const char *path, GError **error)
{
  g_autoptr (DcrSafetensors) st = dcr_safetensors_open (path, error);
  if (!st)
    return NULL;
  if (g_strcmp0 (dcr_safetensors_metadata (st, "format"), "dcr-tile-head") != 0)
    {
      fail (error, path, "not a tile head (its metadata lacks format \"dcr-tile-head\"; make one with "
                         "`dcr train-tiles`)");
      return NULL;
    }
  const char *version = dcr_safetensors_metadata (st, "version");
  if (g_strcmp0 (version, "tiles-v1") != 0)
    {
      g_autofree char *msg = g_strdup_printf ("tile head version \"%s\"; this build reads \"tiles-v1\"",
                                              version ? version : "(none)");
      fail (error, path, msg);
      return NULL;
    }
  const DcrStTensor *b1 = dcr_safetensors_get (st, "b1", error);
  if (!b1)
    return NULL;
  if (b1->ndim != 1 || b1->shape[0] < 1 || b1->shape[0] > DCR_TILES_MAX_HIDDEN)
    {
      g_autofree char *msg = g_strdup_printf ("\"b1\" must be one-dimensional with 1 to %d entries (the hidden "
                                              "width)", DCR_TILES_MAX_HIDDEN);
      fail (error, path, msg);
      return NULL;
    }
  guint hidden = (guint) b1->shape[0];
  g_autoptr (DcrTileHead) h = dcr_tile_head_new (hidden);
  gint64 s_in[] = { NIN }, s_w1[] = { hidden, NIN }, s_h[] = { hidden }, s_w2[] = { 1, hidden }, s_b2[] = { 1 };
  g_autofree float *mean = NULL, *sd = NULL, *w1 = NULL, *b1v = NULL, *w2 = NULL, *b2 = NULL;
  if (!dcr_safetensors_get_f32 (st, "mean", s_in, 1, &mean, error) ||
      !dcr_safetensors_get_f32 (st, "std", s_in, 1, &sd, error) ||
      !dcr_safetensors_get_f32 (st, "w1", s_w1, 2, &w1, error) ||
      !dcr_safetensors_get_f32 (st, "b1", s_h, 1, &b1v, error) ||
      !dcr_safetensors_get_f32 (st, "w2", s_w2, 2, &w2, error) ||
      !dcr_safetensors_get_f32 (st, "b2", s_b2, 1, &b2, error) || !dcr_safetensors_check_finite (st, NULL, error))
    return NULL;
  for (int j = 0; j < NIN; j++)
    if (!(sd[j] > 0))
      {
        g_autofree char *msg = g_strdup_printf ("\"std\" of input %d is %g; it must be positive", j, sd[j]);
        fail (error, path, msg);
        return NULL;
      }
  memcpy (h->mean, mean, sizeof h->mean);
  memcpy (h->std, sd, sizeof h->std);
  memcpy (h->w1, w1, sizeof (float) * hidden * NIN);
  memcpy (h->b1, b1v, sizeof (float) * hidden);
  memcpy (h->w2, w2, sizeof (float) * hidden);
  h->b2 = b2[0];
  h->training = g_strdup (dcr_safetensors_metadata (st, "training"));
  g_autoptr (GMappedFile) mf = g_mapped_file_new (path, FALSE, error);
  if (!mf)
    return NULL;
  h->sha256 = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) g_mapped_file_get_contents (mf),
                                           g_mapped_file_get_length (mf));
  return g_steal_pointer (&h);
}

gboolean
dcr_tile_head_save (const DcrTileHead *h, const char *path, const char *training, GError **error)
{
  gint64 s_in[] = { NIN }, s_w1[] = { h->hidden, NIN }, s_h[] = { h->hidden }, s_w2[] = { 1, h->hidden },
         s_b2[] = { 1 };
  DcrStWriteTensor t[] = {
    { "mean", DCR_ST_F32, 1, s_in, h->mean }, { "std", DCR_ST_F32, 1, s_in, h->std },
    { "w1", DCR_ST_F32, 2, s_w1, h->w1 },     { "b1", DCR_ST_F32, 1, s_h, h->b1 },
    { "w2", DCR_ST_F32, 2, s_w2, h->w2 },     { "b2", DCR_ST_F32, 1, s_b2, &h->b2 },
  };
  const char *meta[] = { "format", "dcr-tile-head", "version", "tiles-v1", "training", training ? training : "{}",
                         NULL };
  return dcr_safetensors_write (path, t, G_N_ELEMENTS (t), meta, error);
}

void
dcr_tile_head_pack (const DcrTileHead *h, float *p)
{
  memcpy (p, h->mean, sizeof h->mean);
  p += NIN;
  for (int j = 0; j < NIN; j++)
    *p++ = 1.0f / h->std[j];
  memcpy (p, h->w1, sizeof (float) * h->hidden * NIN);
  p += (gsize) h->hidden * NIN;
  memcpy (p, h->b1, sizeof (float) * h->hidden);
  p += h->hidden;
  memcpy (p, h->w2, sizeof (float) * h->hidden);
  p += h->hidden;
  *p = h->b2;
}

void
dcr_tile_values_from_acc (const float *acc, guint ntiles, float *x)
{
  for (guint t = 0; t < ntiles; t++)
    for (int c = 0; c < 3; c++)
      memcpy (x + (gsize) t * NIN + c * DCR_LOCAL_NVAL,
              acc + ((gsize) t * 3 + c) * DCR_LOCAL_ACC_STRIDE + DCR_LOCAL_NACC, sizeof (float) * DCR_LOCAL_NVAL);
}

void
dcr_tile_rect (const DcrForensicWindow *win, guint tile, gint64 *x, gint64 *y, gint64 *w, gint64 *h)
{
  DcrLocalTiles t;
  dcr_local_tiles (win, &t);
  gint64 a = tile / t.ntw, b = tile % t.ntw;
  *x = win->left + DCR_FORENSIC_MARGIN + b * t.tw;
  *y = win->top + DCR_FORENSIC_MARGIN + a * t.th;
  *w = t.tw;
  *h = t.th;
}

static int
cmp_float (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x > y) - (x < y);
}

void
dcr_tile_relative (const float *x, guint ntiles, float *r)
{
  g_return_if_fail (ntiles >= 1 && ntiles <= DCR_LOCAL_MAX_TILES);
  float col[DCR_LOCAL_MAX_TILES];
  for (int j = 0; j < NIN; j++)
    {
      for (guint t = 0; t < ntiles; t++)
        col[t] = x[(gsize) t * NIN + j];
      qsort (col, ntiles, sizeof (float), cmp_float);
      float med = ntiles % 2 ? col[ntiles / 2] : 0.5f * (col[ntiles / 2 - 1] + col[ntiles / 2]);
      for (guint t = 0; t < ntiles; t++)
        r[(gsize) t * NIN + j] = x[(gsize) t * NIN + j] - med;
    }
}

void
dcr_ref_tile_head (const DcrTileHead *h, const float *x, guint ntiles, float *logits, float out[DCR_TILES_DIM])
{
  g_autofree float *r = g_new (float, (gsize) ntiles * NIN);
  g_autofree double *lg = g_new (double, ntiles);
  dcr_tile_relative (x, ntiles, r);
  double z[NIN];
  for (guint t = 0; t < ntiles; t++)
    {
      for (int j = 0; j < NIN; j++)
        z[j] = ((double) r[(gsize) t * NIN + j] - h->mean[j]) / h->std[j];
      double s = h->b2;
      for (guint k = 0; k < h->hidden; k++)
        {
          double a = h->b1[k];
          for (int j = 0; j < NIN; j++)
            a += (double) h->w1[(gsize) k * NIN + j] * z[j];
          s += h->w2[k] * (a > 0 ? a : 0);
        }
      lg[t] = s;
      if (logits)
        logits[t] = (float) s;
    }
  /* the min(4, n) largest by repeated selection */
  guint k = MIN (DCR_TILES_TOPK, ntiles);
  gboolean used[DCR_LOCAL_MAX_TILES] = { FALSE };
  double sum = 0, top = -INFINITY;
  for (guint i = 0; i < k; i++)
    {
      guint best = 0;
      double bv = -INFINITY;
      for (guint t = 0; t < ntiles; t++)
        if (!used[t] && (lg[t] > bv || (bv == -INFINITY && lg[t] == -INFINITY)))
          {
            bv = lg[t];
            best = t;
          }
      used[best] = TRUE;
      sum += bv;
      top = i == 0 ? bv : top;
    }
  out[0] = (float) (sum / k);
  out[1] = (float) top;
}
