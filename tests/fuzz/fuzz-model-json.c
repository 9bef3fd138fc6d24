/* fuzz-model-json.c — libFuzzer target: the JSON header of a model file.
 * The input is the header text; it is framed as a safetensors file (length,
 * header, a zero-filled data section as long as the header's offsets ask,
 * up to 1 MiB) and loaded with dcr_model_load, so the fuzzer explores the
 * metadata checks (format, version, widths, decision band) and the tensor
 * shapes a model needs rather than the framing. No GPU: loading is host-side. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "dcr-model.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static char *model_path;

static void
remove_model_file (void)
{
  g_unlink (model_path);
}

/* The largest end offset written in the header ("data_offsets":[a,b]), so the
 * data section can be as long as the header claims; capped at 1 MiB. */
static gsize
data_section_size (const char *json, gsize len)
{
  guint64 max = 0;
  const char *p = json, *end = json + len;
  while ((p = memchr (p, '[', end - p)) != NULL)
    {
      p++;
      for (int i = 0; i < 2 && p < end; i++)
        {
          while (p < end && (*p == ' ' || *p == ','))
            p++;
          guint64 v = 0;
          int digits = 0;
          while (p < end && g_ascii_isdigit (*p) && digits < 19)
            v = v * 10 + (guint64) (*p++ - '0'), digits++;
          if (digits)
            max = MAX (max, v);
        }
    }
  return (gsize) MIN (max, (guint64) 1 << 20);
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  if (!model_path)
    {
      model_path = g_strdup_printf ("%s/dcr-fuzz-model-%d.safetensors", g_get_tmp_dir (), (int) getpid ());
      atexit (remove_model_file);
    }
  gsize n_data = data_section_size ((const char *) data, size);
  gsize total = 8 + size + n_data;
  guint8 *file = g_malloc0 (total);
  guint64 hlen = GUINT64_TO_LE ((guint64) size);
  memcpy (file, &hlen, 8);
  memcpy (file + 8, data, size);
  g_autoptr (GError) error = NULL;
  /* No fsync, no rename: a scratch file, rewritten thousands of times a second. */
  if (!g_file_set_contents_full (model_path, (const char *) file, (gssize) total, G_FILE_SET_CONTENTS_NONE, 0600,
                                 &error))
    g_error ("%s", error->message);
  g_free (file);

  g_autoptr (DcrModel) m = dcr_model_load (NULL, model_path, &error);
  if (!m)
    {
      g_assert (error && error->message);
      return 0;
    }
  const DcrModelConfig *c = dcr_model_config (m);
  g_assert (c->dim > 0 && c->k > 0 && c->band_lo <= c->threshold && c->threshold <= c->band_hi);
  g_assert (!c->jpeg_decision || (c->jpeg.band_lo <= c->jpeg.threshold && c->jpeg.threshold <= c->jpeg.band_hi));
  (void) dcr_model_verdict (m, 0.5f, FALSE);
  (void) dcr_model_verdict (m, 0.5f, TRUE);
  g_assert (dcr_model_param_count (m) > 0);
  return 0;
}
