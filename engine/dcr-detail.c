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
  /* the window's luma in thousandths, row by row: integers, so that the sums
   * below are exact and the compiler may vectorise them */
  g_autofree gint32 *y = g_new (gint32, (gsize) (wh * ww));
  for (gint64 i = 0; i < wh; i++)
    {
      const guint8 *p = img->pixels + ((top + i) * w + left) * 3;
      gint32 *row = y + i * ww;
      for (gint64 j = 0; j < ww; j++, p += 3)
        row[j] = 299 * p[0] + 587 * p[1] + 114 * p[2];
    }
  gint64 sum = 0;
  for (gint64 i = 1; i < wh - 1; i++)
    {
      const gint32 *up = y + (i - 1) * ww, *row = y + i * ww, *down = y + (i + 1) * ww;
      gint64 rs = 0;
      for (gint64 j = 1; j < ww - 1; j++)
        {
          gint32 hd = row[j - 1] - 2 * row[j] + row[j + 1], vd = up[j] - 2 * row[j] + down[j];
          rs += (hd < 0 ? -hd : hd) + (vd < 0 ? -vd : vd);
        }
      sum += rs;
    }
  return (float) ((double) sum / (2000.0 * (double) (wh - 2) * (double) (ww - 2)));
}

gboolean
dcr_detail_is_low (float detail)
{
  return !isnan (detail) && detail < DCR_DETAIL_LOW;
}
