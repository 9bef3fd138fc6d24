/* dcr-test-files.c — see the header. */
#include "dcr-test-files.h"
#include "dcr-backbone.h"
#include "dcr-bank.h"
#include "dcr-model.h"

#include <glib/gstdio.h>

char *
dcr_test_make_tmpdir (const char *tmpl)
{
  g_autoptr (GError) err = NULL;
  char *dir = g_dir_make_tmp (tmpl, &err);
  g_assert_no_error (err);
  g_assert_nonnull (dir);
  return dir;
}

void
dcr_test_remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;
      while (dir && (name = g_dir_read_name (dir)))
        {
          g_autofree char *p = g_build_filename (path, name, NULL);
          dcr_test_remove_tree (p);
        }
      g_rmdir (path);
    }
  else
    g_unlink (path);
}

guint
dcr_test_count_entries (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;
  while (d && g_dir_read_name (d))
    n++;
  return n;
}

DcrImage *
dcr_test_pattern_image (guint w, guint h, guint seed)
{
  DcrImage *img = dcr_image_new (w, h);
  for (guint y = 0; y < h; y++)
    for (guint x = 0; x < w; x++)
      {
        guint8 *p = img->pixels + ((gsize) y * w + x) * 3;
        p[0] = (x * 3 + seed * 37) & 255;
        p[1] = ((x / 8 + y / 8 + seed) % 2) ? 210 : 30;
        p[2] = (y * 2 + seed) & 255;
      }
  return img;
}

void
dcr_test_write_pattern_png (const char *path, guint w, guint h, guint seed)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrImage) img = dcr_test_pattern_image (w, h, seed);
  g_assert_true (dcr_image_save_png (img, path, &err));
  g_assert_no_error (err);
}

GBytes *
dcr_test_thumbnail_png (guint size, guint seed)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrImage) img = dcr_test_pattern_image (size, size, seed);
  GBytes *png = dcr_image_encode_png (img, &err);
  g_assert_no_error (err);
  g_assert_nonnull (png);
  return png;
}

void
dcr_test_make_untrained_detector (const char *model_path, const char *bank_path, guint n_prototypes,
                                  guint seed, const char *source)
{
  dcr_test_make_untrained_detector_for ("default", model_path, bank_path, n_prototypes, seed, source);
}

void
dcr_test_make_untrained_detector_for (const char *spec, const char *model_path, const char *bank_path,
                                      guint n_prototypes, guint seed, const char *source)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrContext) ctx = dcr_context_new (NULL, &err);
  g_assert_no_error (err);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, spec, DCR_F32, &err);
  g_assert_no_error (err);
  guint dim = dcr_backbone_dim (bb);
  DcrModelConfig cfg = {
    .backbone_id = (char *) dcr_backbone_id (bb), .dim = dim, .k = 2, .hidden = 16, .head_hidden = 8,
    .threshold = 0.5f, .band_lo = 0.45f, .band_hi = 0.55f,
  };
  g_autoptr (DcrModel) m = dcr_model_new (ctx, &cfg, seed, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_model_save (m, model_path, &err));
  g_assert_no_error (err);
  g_autoptr (DcrBank) bank = dcr_bank_create (bank_path, dcr_backbone_id (bb), dim, &err);
  g_assert_no_error (err);
  g_autofree float *feat = g_new (float, (gsize) n_prototypes * dim);
  g_autofree DcrPrototypeNew *items = g_new0 (DcrPrototypeNew, n_prototypes);
  for (guint i = 0; i < n_prototypes; i++)
    {
      for (guint c = 0; c < dim; c++)
        feat[(gsize) i * dim + c] = (float) ((c * 7 + i * 13) % 17) / 17.0f + 0.01f;
      items[i] = (DcrPrototypeNew) { .feature = feat + (gsize) i * dim, .source = source };
    }
  g_assert_true (dcr_bank_add (bank, items, n_prototypes, FALSE, NULL, &err));
  g_assert_no_error (err);
}
