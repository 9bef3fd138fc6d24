/* dcr-detail.c — see dcr-detail.h. */
#include "dcr-detail.h"

#include <math.h>

#include "dcr-op-forensic.h"

float
dcr_detail_measure (const DcrImage *img)
{
  gint64 h = img->height, w = img->width;
  gint64 wh = MIN (h, DCR_FORENSIC_WINDOW), ww = MIN (w, DCR_FORENSIC_WINDOW);
  if (wh < 3 || ww < 3)
    return NAN;
  gint64 top = (h - wh) / 2, left = (w - ww) / 2;
  /* the window's luma, row by row */
  g_autofree float *y = g_new (float, (gsize) (wh * ww));
  for (gint64 i = 0; i < wh; i++)
    {
      const guint8 *p = img->pixels + ((top + i) * w + left) * 3;
      float *row = y + i * ww;
      for (gint64 j = 0; j < ww; j++, p += 3)
        row[j] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
    }
  double sum = 0;
  for (gint64 i = 1; i < wh - 1; i++)
    {
      const float *up = y + (i - 1) * ww, *row = y + i * ww, *down = y + (i + 1) * ww;
      double rs = 0;
      for (gint64 j = 1; j < ww - 1; j++)
        rs += fabsf (row[j - 1] - 2.f * row[j] + row[j + 1]) + fabsf (up[j] - 2.f * row[j] + down[j]);
      sum += rs;
    }
  return (float) (sum / (2.0 * (double) (wh - 2) * (double) (ww - 2)));
}

gboolean
dcr_detail_is_low (float detail)
{
  return !isnan (detail) && detail < DCR_DETAIL_LOW;
}
