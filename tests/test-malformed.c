/* test-malformed.c — the malformed-input suite of tests/make-malformed.py,
 * in-process: every case through the loader the CLI would use (image decode,
 * EXIF parse, safetensors open + finite check, model load, bank open). Each
 * must give the manifest's outcome within 5 s of CPU time (not wall time: the
 * machine may be busy); every error names the file. Under ASan it is also
 * the leak check for the error paths.
 *   test-malformed MANIFEST.tsv [--tap] */
#include <string.h>
#include <time.h>

#include "dcr-bank.h"
#include "dcr-image.h"
#include "dcr-model.h"
#include "dcr-safetensors.h"
#include "dcr-tile-head.h"
#include "dcr-cnn.h"

static char *manifest_path;

static double
thread_cpu_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct {
  char *kind, *expect, *file, *what;
} Case;

static void
case_clear (gpointer p)
{
  Case *c = p;
  g_free (c->kind);
  g_free (c->expect);
  g_free (c->file);
  g_free (c->what);
}

static GArray *
read_manifest (void)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  if (!g_file_get_contents (manifest_path, &text, NULL, &error))
    g_error ("%s", error->message);
  g_autofree char *dir = g_path_get_dirname (manifest_path);
  GArray *cases = g_array_new (FALSE, TRUE, sizeof (Case));
  g_array_set_clear_func (cases, case_clear);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      if (!**l)
        continue;
      g_auto (GStrv) f = g_strsplit (*l, "\t", 4);
      g_assert_cmpuint (g_strv_length (f), ==, 4);
      Case c = { g_strdup (f[0]), g_strdup (f[1]), g_build_filename (dir, f[2], NULL), g_strdup (f[3]) };
      g_array_append_val (cases, c);
    }
  return cases;
}

/* Runs one case; TRUE when it loaded. An error must name the file and say
 * more than that. */
static gboolean
run_case (const Case *c, GError **error)
{
  if (g_str_equal (c->kind, "image"))
    {
      g_autoptr (DcrImage) img = dcr_image_load (c->file, NULL, error);
      if (img)
        g_assert_true (img->width > 0 && img->height > 0 && img->pixels);
      return img != NULL;
    }
  if (g_str_equal (c->kind, "exif"))
    {
      g_autofree char *data = NULL;
      gsize len = 0;
      g_assert_true (g_file_get_contents (c->file, &data, &len, NULL));
      /* A copy of exactly len bytes, so a read past the end is caught. */
      g_autofree guint8 *exact = g_memdup2 (data, len);
      DcrExif exif = { 0 };
      dcr_exif_parse (exact, len, &exif);
      g_assert_cmpuint (exif.orientation, <=, 8);
      dcr_exif_clear (&exif);
      return TRUE;
    }
  if (g_str_equal (c->kind, "safetensors"))
    {
      g_autoptr (DcrSafetensors) st = dcr_safetensors_open (c->file, error);
      return st && dcr_safetensors_check_finite (st, NULL, error);
    }
  if (g_str_equal (c->kind, "model"))
    {
      /* Loading is host-side; no GPU needed to read and check a model. */
      g_autoptr (DcrModel) m = dcr_model_load (NULL, c->file, error);
      return m != NULL;
    }
  if (g_str_equal (c->kind, "tile-head"))
    {
      g_autoptr (DcrTileHead) h = dcr_tile_head_load (c->file, error);
      return h != NULL;
    }
  if (g_str_equal (c->kind, "cnn"))
    {
      g_autoptr (DcrCnn) n = dcr_cnn_load (c->file, error);
      return n != NULL;
    }
  if (g_str_equal (c->kind, "bank"))
    {
      g_autoptr (DcrBank) b = dcr_bank_open (c->file, NULL, 0, TRUE, error);
      return b != NULL;
    }
  g_error ("%s: unknown kind %s", c->file, c->kind);
}

static void
test_kind (gconstpointer data)
{
  const char *kind = data;
  g_autoptr (GArray) cases = read_manifest ();
  guint n = 0, n_ok = 0, bad = 0;
  /* DCR_MALFORMED_VERBOSE=1: every outcome, to read the messages. */
  gboolean verbose = g_getenv ("DCR_MALFORMED_VERBOSE") != NULL;
  for (guint i = 0; i < cases->len; i++)
    {
      const Case *c = &g_array_index (cases, Case, i);
      if (!g_str_equal (c->kind, kind))
        continue;
      n++;
      g_autoptr (GError) error = NULL;
      double t0 = thread_cpu_seconds ();
      gboolean loaded = run_case (c, &error);
      double secs = thread_cpu_seconds () - t0;
      g_autofree char *base = g_path_get_basename (c->file);
      const char *why = NULL;
      if (loaded && g_str_equal (c->expect, "error"))
        why = "loaded, but must be refused";
      else if (!loaded && g_str_equal (c->expect, "ok"))
        why = "refused, but must load";
      else if (!loaded && !error)
        why = "failed without a message";
      else if (!loaded && (!strstr (error->message, base) || strlen (error->message) < strlen (base) + 8))
        why = "the message does not name the file and the problem";
      else if (secs > 5)
        why = "took over 5 s of CPU (a decompression bomb?)";
      n_ok += loaded;
      if (verbose)
        g_test_message ("%s %s: %s", c->expect, base, error ? error->message : "loaded");
      if (why)
        {
          bad++;
          g_test_message ("%s (%s): %s%s%s", base, c->what, why, error ? ": " : "", error ? error->message : "");
        }
    }
  g_test_message ("%s: %u cases, %u loaded, %u refused", kind, n, n_ok, n - n_ok);
  g_assert_cmpuint (n, >, 0);
  g_assert_cmpuint (bad, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 2)
    {
      g_printerr ("usage: test-malformed MANIFEST.tsv\n");
      return 2;
    }
  manifest_path = argv[1];
  static const char *const kinds[] = { "image", "exif", "safetensors", "model", "tile-head", "cnn", "bank" };
  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      g_autofree char *path = g_strdup_printf ("/malformed/%s", kinds[i]);
      g_test_add_data_func (path, kinds[i], test_kind);
    }
  return g_test_run ();
}
