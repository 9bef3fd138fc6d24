/* dcr-util.c — see the header. */
#include "dcr-util.h"

const char *
dcr_human_size (guint64 n, char *buf, gsize len)
{
  if (n < 1024)
    g_snprintf (buf, len, "%" G_GUINT64_FORMAT " bytes", n);
  else if (n < 1024 * 1024)
    g_snprintf (buf, len, "%" G_GUINT64_FORMAT " KiB", n / 1024);
  else
    g_snprintf (buf, len, "%.1f MiB", (double) n / (1024.0 * 1024.0));
  return buf;
}

void
dcr_shuffle_indices (gsize *order, gsize n, GRand *rng)
{
  for (gsize i = n; i > 1; i--)
    {
      gsize j = (gsize) g_rand_int_range (rng, 0, (gint32) i), t = order[i - 1];
      order[i - 1] = order[j];
      order[j] = t;
    }
}
