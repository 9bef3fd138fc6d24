/* fuzz-image.c — libFuzzer targets fuzz-png and fuzz-jpeg: bytes through
 * dcr_image_load_from_bytes under a file name of that format (our libpng
 * and libjpeg-turbo wrappers, EXIF orientation, the colour conversions and
 * the size limits; the loader goes by content, the name only shows in the
 * message). FUZZ_NAME is set by meson.build. The limits are tighter than
 * the defaults so a run spends its time on parsing, not on filling
 * legitimately huge images. */
#include "dcr-image.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  static const DcrImageLimits limits = { .max_pixels = 1u << 20, .max_side = 4096, .max_file_bytes = 0 };
  g_autoptr (GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (DcrImage) img = dcr_image_load_from_bytes (bytes, FUZZ_NAME, &limits, &error);
  /* Either an image whose pixel buffer is fully readable, or a message. */
  if (img)
    {
      guint sum = 0;
      for (gsize i = 0; i < (gsize) img->width * img->height * 3; i++)
        sum += img->pixels[i];
      g_assert (img->orientation >= 1 && img->orientation <= 8 && sum != G_MAXUINT);
    }
  else
    g_assert (error && error->message && g_str_has_prefix (error->message, FUZZ_NAME));
  return 0;
}
