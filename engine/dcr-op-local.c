/* dcr-op-local.c — the local forensic feature (definition in the header):
 * two dispatches per image, the tiles' accumulators and values
 * (shaders/local_stats.comp, one workgroup per tile) and the feature from
 * the values (shaders/local_features.comp), and their references in
 * double. */
#include "dcr-op-local.h"

#include <math.h>
#include <string.h>

#define PH DCR_LOCAL_PHASE
#define NACC DCR_LOCAL_NACC
#define STRIDE DCR_LOCAL_ACC_STRIDE

static const int dilations[DCR_LOCAL_NDIL] = { 1, 2, 3, 4, 6 };
static const guint dft_periods[] = { 2, 3, 4 };

G_STATIC_ASSERT ((DCR_LOCAL_ACC_SIZE * 4) % 256 == 0);
G_STATIC_ASSERT (NACC == 153);

void
dcr_local_tiles (const DcrForensicWindow *win, DcrLocalTiles *t)
{
  t->th = win->nh >= DCR_LOCAL_TILE ? DCR_LOCAL_TILE : DCR_FORENSIC_PERIOD;
  t->tw = win->nw >= DCR_LOCAL_TILE ? DCR_LOCAL_TILE : DCR_FORENSIC_PERIOD;
  t->nth = win->nh / t->th;
  t->ntw = win->nw / t->tw;
}

typedef struct {
  guint32 w, top, left; /* image width, window origin */
  guint32 th, tw, ntw;  /* tile sides (anchors), tiles per row */
  guint32 out0;
  guint32 img_bytes, acc_stride; /* from one image of a batch to the next */
} StatsPush;

typedef struct {
  guint32 in0, out0, ntiles, in_stride, out_stride;
} FeatPush;

gboolean
dcr_op_local (DcrSeq *seq, const DcrTensor *image, DcrTensor *acc, guint slot, DcrTensor *y, gint64 row,
              gint64 column, GError **error)
{
  DcrForensicWindow win;
  gsize need;
  if (!dcr_forensic_check_args (seq, "local", "tiled residual statistics", image, acc, slot, DCR_LOCAL_ACC_SIZE, y,
                                row, column, DCR_LOCAL_DIM, &win, &need, error))
    return FALSE;

  DcrLocalTiles t;
  dcr_local_tiles (&win, &t);
  g_assert (t.nth * t.ntw <= DCR_LOCAL_MAX_TILES);
  gsize acc_bytes = (gsize) DCR_LOCAL_ACC_SIZE * 4;
  gint64 m = dcr_forensic_image_count (image), h = image->shape[image->ndim - 3], w = image->shape[image->ndim - 2];
  DcrBinding sb[2] = {
    { image->buf, 0, need, FALSE },
    { acc->buf, slot * acc_bytes, m * acc_bytes, TRUE },
  };
  StatsPush sp = { (guint32) w, (guint32) win.top, (guint32) win.left, (guint32) t.th, (guint32) t.tw,
                   (guint32) t.ntw, 0, (guint32) (h * w * 3), DCR_LOCAL_ACC_SIZE };
  if (!dcr_ops_dispatch (seq, "local_stats", NULL, 0, sb, 2, &sp, sizeof sp, (guint32) t.ntw, (guint32) t.nth,
                         (guint32) m, error))
    return FALSE;

  DcrBinding fb[2] = { { acc->buf, slot * acc_bytes, m * acc_bytes, FALSE } };
  guint32 out0 = dcr_forensic_rows_binding (y, row, m, column, DCR_LOCAL_DIM, &fb[1]);
  FeatPush fp = { 0, out0, (guint32) (t.nth * t.ntw), DCR_LOCAL_ACC_SIZE, (guint32) y->shape[1] };
  char name[32];
  return dcr_ops_dispatch (seq, dcr_ops_shader_name ("local_features", y->dtype, name, sizeof name), NULL, 0, fb, 2,
                           &fp, sizeof fp, 1, 1, (guint32) m, error);
}

void
dcr_ref_local_stats (const guint8 *image, gint64 h, gint64 w, const DcrForensicWindow *win, double *acc)
{
  (void) h;
  DcrLocalTiles t;
  dcr_local_tiles (win, &t);
  memset (acc, 0, sizeof (double) * DCR_LOCAL_ACC_SIZE);
  for (gint64 a = 0; a < t.nth * t.th; a++)
    for (gint64 b = 0; b < t.ntw * t.tw; b++)
      {
        gint64 i = win->top + DCR_FORENSIC_MARGIN + a, j = win->left + DCR_FORENSIC_MARGIN + b;
        gint64 tile = (a / t.th) * t.ntw + b / t.tw;
        int p = (int) ((a % PH) * PH + b % PH);
        /* row[6 + k] = x(i, j + k), col[6 + k] = x(i + k, j), k = −6…6 */
        double row[13][3], col[13][3];
        for (int k = 0; k < 13; k++)
          {
            dcr_ref_forensic_channels (image, w, i, j - 6 + k, row[k]);
            dcr_ref_forensic_channels (image, w, i - 6 + k, j, col[k]);
          }
        for (int c = 0; c < 3; c++)
          {
            double *s = acc + ((gsize) tile * 3 + c) * STRIDE;
            for (int k = 0; k < DCR_LOCAL_NDIL; k++)
              {
                int d = dilations[k];
                double hd = row[6 - d][c] - 2 * row[6][c] + row[6 + d][c];
                double vd = col[6 - d][c] - 2 * col[6][c] + col[6 + d][c];
                s[k] += hd * hd + vd * vd;
              }
            double h1 = row[5][c] - 2 * row[6][c] + row[7][c], v1 = col[5][c] - 2 * col[6][c] + col[7][c];
            double h1r = row[6][c] - 2 * row[7][c] + row[8][c], v1d = col[6][c] - 2 * col[7][c] + col[8][c];
            s[DCR_LOCAL_NDIL + p] += h1 * h1 + v1 * v1;
            s[NACC - 4] += h1 * h1r;
            s[NACC - 3] += v1 * v1d;
            s[NACC - 2] += h1 * h1;
            s[NACC - 1] += v1 * v1;
          }
      }
  for (gint64 k = 0; k < t.nth * t.ntw * 3; k++)
    dcr_ref_local_tile_values (acc + k * STRIDE, (double) (t.th * t.tw), acc + k * STRIDE + NACC);
}

void
dcr_ref_local_tile_values (const double *s, double n, double *t)
{
  const double *P = s + DCR_LOCAL_NDIL;
  *t++ = log (s[0] / n + 0.01);
  for (int k = 1; k < DCR_LOCAL_NDIL; k++)
    *t++ = log ((s[k] / n + 0.001) / (s[0] / n + 0.001));
  for (gsize qi = 0; qi < G_N_ELEMENTS (dft_periods); qi++)
    {
      guint q = dft_periods[qi];
      double g[16] = { 0 }, mean = 0;
      for (int p = 0; p < PH * PH; p++)
        g[((p / PH) % q) * q + (p % PH) % q] += P[p];
      for (guint i = 0; i < q * q; i++)
        mean += g[i];
      mean /= q * q;
      for (guint i = 0; i < q * q; i++)
        g[i] /= mean + 1e-9;
      for (guint u = 0; u < q; u++)
        for (guint v = 0; v < q; v++)
          {
            guint cu = (q - u) % q, cv = (q - v) % q;
            if ((u == 0 && v == 0) || cu < u || (cu == u && cv < v))
              continue;
            double re = 0, im = 0;
            for (guint i = 0; i < q; i++)
              for (guint j = 0; j < q; j++)
                {
                  double ang = 2 * G_PI * ((u * i + v * j) % q) / q;
                  re += g[i * q + j] * cos (ang);
                  im -= g[i * q + j] * sin (ang);
                }
            *t++ = hypot (re, im) / (q * q);
          }
    }
  *t++ = s[NACC - 4] / (s[NACC - 2] + 1e-6);
  *t++ = s[NACC - 3] / (s[NACC - 1] + 1e-6);
}

void
dcr_ref_local_features (const double *acc, const DcrForensicWindow *win, float *out)
{
  DcrLocalTiles tl;
  dcr_local_tiles (win, &tl);
  gint64 ntiles = tl.nth * tl.ntw;
  double n = (double) (tl.th * tl.tw);
  g_autofree double *t = g_new (double, ntiles * DCR_LOCAL_NVAL);
  for (int c = 0; c < 3; c++)
    {
      for (gint64 k = 0; k < ntiles; k++)
        dcr_ref_local_tile_values (acc + ((gsize) k * 3 + c) * STRIDE, n, t + k * DCR_LOCAL_NVAL);
      float *o = out + c * DCR_LOCAL_PER_CHANNEL;
      for (int v = 0; v < DCR_LOCAL_NVAL; v++)
        {
          double sum = 0, mx = -INFINITY, mn = INFINITY, ss = 0;
          for (gint64 k = 0; k < ntiles; k++)
            {
              double x = t[k * DCR_LOCAL_NVAL + v];
              sum += x;
              mx = MAX (mx, x);
              mn = MIN (mn, x);
            }
          double mean = sum / ntiles;
          for (gint64 k = 0; k < ntiles; k++)
            {
              double d = t[k * DCR_LOCAL_NVAL + v] - mean;
              ss += d * d;
            }
          o[v] = (float) mean;
          o[DCR_LOCAL_NVAL + v] = (float) mx;
          o[2 * DCR_LOCAL_NVAL + v] = (float) mn;
          o[3 * DCR_LOCAL_NVAL + v] = (float) sqrt (ss / ntiles);
        }
    }
}
