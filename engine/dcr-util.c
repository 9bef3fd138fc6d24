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
