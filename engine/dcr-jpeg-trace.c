/* dcr-jpeg-trace.c — the 8 × 8 grid of an earlier JPEG compression in
 * decoded pixels (see dcr-jpeg-trace.h for the method). */
#include "dcr-jpeg-trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_ORIGIN 64
#define N_COEF 20 /* (u, v) with 0 < u + v ≤ 5 */
#define MAX_UV 5
#define Q_MIN 2
#define Q_MAX 8 /* a larger step is a multiple of one of 2–8, or costs one coefficient */
#define N_Q (Q_MAX - Q_MIN + 1)
#define COS_BITS 12
#define COS_SIZE (1u << COS_BITS)

static float dct_basis[8][8]; /* orthonormal DCT-II, [frequency][sample], as JPEG's */
static float cos_table[COS_SIZE];
static guint8 coef_u[N_COEF], coef_v[N_COEF];
static float table_per_q[N_Q]; /* COS_SIZE / q */

static void
init_tables (void)
{
  static gsize once = 0;
  if (!g_once_init_enter (&once))
    return;
  for (guint u = 0; u < 8; u++)
    for (guint x = 0; x < 8; x++)
      dct_basis[u][x] = (float) ((u ? sqrt (2.0 / 8) : sqrt (1.0 / 8)) * cos ((2 * x + 1) * u * G_PI / 16));
  for (guint i = 0; i < COS_SIZE; i++)
    cos_table[i] = (float) cos (2 * G_PI * i / COS_SIZE);
  guint k = 0;
  for (guint u = 0; u < 8; u++)
    for (guint v = 0; v < 8; v++)
      if (u + v > 0 && u + v <= MAX_UV)
        {
          coef_u[k] = (guint8) u;
          coef_v[k++] = (guint8) v;
        }
  g_assert (k == N_COEF);
  for (guint q = 0; q < N_Q; q++)
    table_per_q[q] = (float) COS_SIZE / (float) (q + Q_MIN);
  g_once_init_leave (&once, 1);
}

/* The median of n (even) values, v reordered: the mean of the two middle
 * ones of the sorted values (an insertion sort: 64 values, 140 times an
 * image, cost qsort's comparator calls a quarter of the search). */
static double
median_even (double *v, guint n)
{
  for (guint i = 1; i < n; i++)
    {
      double x = v[i];
      guint j = i;
      for (; j > 0 && v[j - 1] > x; j--)
        v[j] = v[j - 1];
      v[j] = x;
    }
  return 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Adds, for each of the 64 grid origins, each coefficient and each step,
 * cos 2πc/q of the block at (x0 + origin x, y0 + origin y) to
 * sum[origin][coefficient][step]. The 15 × 15 luma patch covers the
 * block at every origin; a row's DCT at one horizontal origin serves all
 * eight vertical ones. */
static void
add_block (const DcrImage *img, gsize x0, gsize y0, double *sum)
{
  const gsize stride = (gsize) img->width * 3;
  float luma[15][15];
  for (guint y = 0; y < 15; y++)
    {
      const guint8 *p = img->pixels + (y0 + y) * stride + x0 * 3;
      for (guint x = 0; x < 15; x++, p += 3)
        luma[y][x] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] - 128.0f;
    }
  for (guint ox = 0; ox < 8; ox++)
    {
      float rows[15][MAX_UV + 1]; /* each row's DCT at this origin, horizontal frequencies 0–5 */
      for (guint y = 0; y < 15; y++)
        for (guint v = 0; v <= MAX_UV; v++)
          {
            float s = 0;
            for (guint x = 0; x < 8; x++)
              s += dct_basis[v][x] * luma[y][ox + x];
            rows[y][v] = s;
          }
      for (guint oy = 0; oy < 8; oy++)
        {
          double *so = sum + (gsize) (oy * 8 + ox) * N_COEF * N_Q;
          for (guint k = 0; k < N_COEF; k++)
            {
              float c = 0;
              for (guint y = 0; y < 8; y++)
                c += dct_basis[coef_u[k]][y] * rows[oy + y][coef_v[k]];
              for (guint q = 0; q < N_Q; q++)
                {
                  /* the phase on the lattice in table steps; the offset (a
                   * multiple of the table) keeps it positive for |c| < 1024 q */
                  gint32 i = (gint32) (c * table_per_q[q] + (float) (COS_SIZE << 10));
                  so[k * N_Q + q] += cos_table[i & (COS_SIZE - 1)];
                }
            }
        }
    }
}

gboolean
dcr_jpeg_trace_stands_out (const DcrJpegTrace *t)
{
  return t->blocks > 0 && t->contrast >= DCR_JPEG_TRACE_MIN_CONTRAST &&
         t->contrast >= DCR_JPEG_TRACE_MIN_SHARE * t->score;
}

void
dcr_jpeg_trace_find (const DcrImage *img, DcrJpegTrace *out)
{
  memset (out, 0, sizeof *out);
  if (!img || !img->pixels || img->width < 16 || img->height < 16)
    return;
  init_tables ();
  /* the same number of whole blocks at every origin */
  guint nbx = (img->width - 8) / 8, nby = (img->height - 8) / 8;
  guint64 nb = (guint64) nbx * nby;
  guint m = (guint) MIN (nb, (guint64) DCR_JPEG_TRACE_MAX_BLOCKS);
  if (m < DCR_JPEG_TRACE_MIN_BLOCKS)
    return;
  g_autofree double *e = g_new0 (double, (gsize) N_ORIGIN * N_COEF * N_Q);
  for (guint j = 0; j < m; j++)
    {
      /* m blocks spread evenly over the nb of the grid */
      guint64 b = m > 1 ? (guint64) j * (nb - 1) / (m - 1) : 0;
      add_block (img, 8 * (gsize) (b % nbx), 8 * (gsize) (b / nbx), e);
    }
  for (gsize i = 0; i < (gsize) N_ORIGIN * N_COEF * N_Q; i++)
    e[i] /= m;
  /* each origin's lattice score against the median origin */
  double med[N_COEF * N_Q];
  for (guint i = 0; i < N_COEF * N_Q; i++)
    {
      double col[N_ORIGIN];
      for (guint o = 0; o < N_ORIGIN; o++)
        col[o] = e[(gsize) o * N_COEF * N_Q + i];
      med[i] = median_even (col, N_ORIGIN);
    }
  double t[N_ORIGIN];
  guint best_o = 0;
  for (guint o = 0; o < N_ORIGIN; o++)
    {
      const double *eo = e + (gsize) o * N_COEF * N_Q;
      t[o] = 0;
      for (guint k = 0; k < N_COEF; k++)
        {
          double d = -1e9;
          for (guint q = 0; q < N_Q; q++)
            d = MAX (d, eo[k * N_Q + q] - med[k * N_Q + q]);
          t[o] += d / N_COEF;
        }
      if (t[o] > t[best_o])
        best_o = o;
    }
  /* against the best origin on neither of its lines: in a smooth image an
   * origin on the grid's row or column keeps part of the lattice */
  double rival = -1e9;
  for (guint o = 0; o < N_ORIGIN; o++)
    if (o % 8 != best_o % 8 && o / 8 != best_o / 8)
      rival = MAX (rival, t[o]);
  out->blocks = m;
  out->score = (float) t[best_o];
  out->contrast = (float) (t[best_o] - rival);
  out->origin_x = best_o % 8;
  out->origin_y = best_o / 8;
  out->found = dcr_jpeg_trace_stands_out (out);
}
