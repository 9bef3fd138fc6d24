/* fuzz-exif.c — libFuzzer target: an EXIF (TIFF) block through
 * dcr_exif_parse, which must bound-check every offset and keep the strings it
 * returns printable UTF-8 of at most 255 bytes. */
#include <string.h>

#include "dcr-image.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
check_string (const char *s)
{
  if (!s)
    return;
  g_assert (strlen (s) <= 255);
  g_assert (g_utf8_validate (s, -1, NULL));
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  /* A heap copy of exactly `size` bytes, so ASan sees any read past it. */
  guint8 *copy = g_memdup2 (data, size);
  DcrExif exif = { 0 };
  dcr_exif_parse (copy, size, &exif);
  g_assert (exif.orientation <= 8);
  check_string (exif.make);
  check_string (exif.model);
  check_string (exif.software);
  check_string (exif.date_time_original);
  dcr_exif_clear (&exif);
  g_free (copy);
  return 0;
}
