/* test-cli-train-tiles.c — `dcr train-tiles` as a user meets it, on tiny
 * PNGs: random-texture reals, partial fakes whose rectangle is the ×2
 * nearest-neighbour upscale of a half-size version of those pixels, and a
 * manifest with the rectangles. It must count the images and tiles as the
 * labelling rule says, write a head that dcr_tile_head_load accepts with
 * the run recorded in it; a manifest without `partial`, a malformed
 * rectangle or an unknown folder exit 1 and write nothing; usage errors
 * exit 2.
 *   test-cli-train-tiles --tap DCR */
#include "dcr-image.h"
#include "dcr-op-local.h"
#include "dcr-tile-head.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define SIDE 120 /* 2 × 2 tiles of 48 pixels at 6 … 54 … 102 on each axis */

static const int rects[4][4] = { { 6, 6, 48, 48 }, { 54, 6, 48, 48 }, { 6, 54, 48, 48 }, { 6, 54, 66, 48 } };
static const char *dcr_exe;
static char *tmp;

typedef struct {
  int status;
  char *out, *err;
} Run;

static void
run_clear (Run *r)
{
  g_free (r->out);
  g_free (r->err);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Run, run_clear)

/* dcr train-tiles with the arguments (NULL-terminated) */
static void
run_dcr (Run *r, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (char *) dcr_exe);
  g_ptr_array_add (argv, "train-tiles");
  va_list ap;
  va_start (ap, r);
  for (const char *a; (a = va_arg (ap, const char *));)
    g_ptr_array_add (argv, (char *) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_autoptr (GError) err = NULL;
  int wait = 0;
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, (GSpawnFlags) 0, NULL, NULL, &r->out, &r->err,
                               &wait, &err));
  g_assert_no_error (err);
  g_assert_true (WIFEXITED (wait));
  r->status = WEXITSTATUS (wait);
  g_test_message ("exit %d\nstdout:\n%s\nstderr:\n%s", r->status, r->out, r->err);
}

static char *
path_in (const char *a, const char *b)
{
  return g_build_filename (tmp, a, b, NULL);
}

static DcrImage *
texture (guint32 seed)
{
  DcrImage *img = dcr_image_new (SIDE, SIDE);
  g_autoptr (GRand) r = g_rand_new_with_seed (seed);
  for (gsize i = 0; i < (gsize) SIDE * SIDE * 3; i++)
    img->pixels[i] = (guint8) g_rand_int_range (r, 0, 256);
  return img;
}

/* The rectangle replaced by the ×2 upscale of its half-size version
 * (x, y, w, h even). */
static void
regenerate (DcrImage *img, int x, int y, int w, int h)
{
  for (int b = 0; b < h; b += 2)
    for (int a = 0; a < w; a += 2)
      for (int c = 0; c < 3; c++)
        {
          int sum = 0;
          for (int k = 0; k < 4; k++)
            sum += img->pixels[((gsize) (y + b + k / 2) * SIDE + x + a + k % 2) * 3 + c];
          for (int k = 0; k < 4; k++)
            img->pixels[((gsize) (y + b + k / 2) * SIDE + x + a + k % 2) * 3 + c] = (guint8) ((sum + 2) / 4);
        }
}

static void
save (DcrImage *img, const char *dir, const char *name)
{
  g_autofree char *p = path_in (dir, name);
  g_autoptr (GError) err = NULL;
  g_assert_true (dcr_image_save_png (img, p, &err));
  g_assert_no_error (err);
}

static void
write_file (const char *name, const char *text)
{
  g_autofree char *p = g_build_filename (tmp, name, NULL);
  g_assert_true (g_file_set_contents (p, text, -1, NULL));
}

/* 6 reals and one too small, 4 partial fakes (one tile each; the last also
 * covers 18/48 of a second tile, which is left out), a whole-image fake and
 * an unlisted one; for validation 6 reals and 4 partial fakes. */
static void
make_data (void)
{
  const char *dirs[] = { "real", "fake", "val-real", "val-fake" };
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autofree char *d = g_build_filename (tmp, dirs[i], NULL);
      g_assert_cmpint (g_mkdir (d, 0755), ==, 0);
    }
  for (int i = 0; i < 6; i++)
    {
      g_autoptr (DcrImage) img = texture (10 + i);
      g_autofree char *name = g_strdup_printf ("r%d.png", i);
      save (img, "real", name);
      g_autoptr (DcrImage) v = texture (40 + i);
      save (v, "val-real", name);
    }
  GString *csv = g_string_new ("file,split,label,generator,partial\n");
  for (int i = 0; i < 4; i++)
    {
      const int *q = rects[i];
      g_autoptr (DcrImage) img = texture (20 + i);
      regenerate (img, q[0], q[1], q[2], q[3]);
      g_autofree char *name = g_strdup_printf ("f%d.png", i);
      save (img, "fake", name);
      g_string_append_printf (csv, "fake/%s,train,fake,nn-x2,\"%d,%d,%d,%d\"\n", name, q[0], q[1], q[2], q[3]);
      g_autoptr (DcrImage) v = texture (50 + i);
      regenerate (v, q[0], q[1], q[2], q[3]);
      g_autofree char *vname = g_strdup_printf ("vf%d.png", i);
      save (v, "val-fake", vname);
      g_string_append_printf (csv, "val-fake/%s,val,fake,nn-x2,\"%d,%d,%d,%d\"\n", vname, q[0], q[1], q[2], q[3]);
    }
  /* below DCR_FORENSIC_MIN_SIDE: skipped with a warning */
  g_autoptr (DcrImage) tiny = dcr_image_new (30, 30);
  save (tiny, "real", "tiny.png");
  g_autoptr (DcrImage) whole = texture (30);
  save (whole, "fake", "whole.png");
  g_string_append (csv, "fake/whole.png,train,fake,nn-x2,\n");
  save (whole, "fake", "unlisted.png");
  write_file ("manifest.csv", csv->str);
  g_string_free (csv, TRUE);
  write_file ("no-partial.csv", "file,generator\nfake/f0.png,nn-x2\n");
  write_file ("bad-rect.csv", "file,generator,partial\nfake/f0.png,nn-x2,\"6,6,48\"\n");
}

/* The tile values of an image file from the CPU reference of local-v1. */
static guint
ref_tile_values (const char *dir, const char *name, float *x, DcrForensicWindow *win)
{
  g_autofree char *p = path_in (dir, name);
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrImage) img = dcr_image_load (p, NULL, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_forensic_window (img->height, img->width, win));
  DcrLocalTiles lt;
  dcr_local_tiles (win, &lt);
  guint n = (guint) (lt.nth * lt.ntw);
  g_autofree double *acc = g_new (double, DCR_LOCAL_ACC_SIZE);
  dcr_ref_local_stats (img->pixels, img->height, img->width, win, acc);
  for (guint t = 0; t < n; t++)
    for (int c = 0; c < 3; c++)
      {
        double v[DCR_LOCAL_NVAL];
        dcr_ref_local_tile_values (acc + ((gsize) t * 3 + c) * DCR_LOCAL_ACC_STRIDE, (double) (lt.th * lt.tw), v);
        for (int k = 0; k < DCR_LOCAL_NVAL; k++)
          x[(gsize) t * DCR_TILES_NIN + c * DCR_LOCAL_NVAL + k] = (float) v[k];
      }
  return n;
}

/* The standardisation the labelling rule implies, from the CPU reference:
 * every tile of the reals, the fakes' tiles at least half inside their
 * rectangle or outside it. */
static void
ref_standardisation (double *mean, double *sd)
{
  g_autoptr (GArray) rows = g_array_new (FALSE, FALSE, sizeof (float) * DCR_TILES_NIN);
  for (int i = 0; i < 10; i++)
    {
      float x[DCR_LOCAL_MAX_TILES * DCR_TILES_NIN], r[DCR_LOCAL_MAX_TILES * DCR_TILES_NIN];
      DcrForensicWindow win;
      g_autofree char *name = g_strdup_printf (i < 6 ? "r%d.png" : "f%d.png", i < 6 ? i : i - 6);
      guint n = ref_tile_values (i < 6 ? "real" : "fake", name, x, &win);
      dcr_tile_relative (x, n, r);
      for (guint t = 0; t < n; t++)
        {
          if (i >= 6)
            {
              const int *q = rects[i - 6];
              gint64 tx, ty, tw, th;
              dcr_tile_rect (&win, t, &tx, &ty, &tw, &th);
              gint64 ix = MIN (tx + tw, q[0] + q[2]) - MAX (tx, q[0]), iy = MIN (ty + th, q[1] + q[3]) - MAX (ty, q[1]);
              double cover = ix > 0 && iy > 0 ? (double) (ix * iy) / (double) (tw * th) : 0;
              if (cover > 0 && cover < 0.5)
                continue;
            }
          g_array_append_vals (rows, r + (gsize) t * DCR_TILES_NIN, 1);
        }
    }
  g_assert_cmpuint (rows->len, ==, 39);
  const float *z = (const float *) rows->data;
  for (int j = 0; j < DCR_TILES_NIN; j++)
    {
      double m = 0, v = 0;
      for (guint k = 0; k < rows->len; k++)
        m += z[k * DCR_TILES_NIN + j];
      m /= rows->len;
      for (guint k = 0; k < rows->len; k++)
        v += (z[k * DCR_TILES_NIN + j] - m) * (z[k * DCR_TILES_NIN + j] - m);
      mean[j] = m;
      sd[j] = sqrt (v / rows->len) + 1e-6;
    }
}

#define ARGS_DATA(manifest) "--real", r_dir, "--fake", f_dir, "--manifest", manifest

static void
test_train (void)
{
  g_autofree char *r_dir = g_build_filename (tmp, "real", NULL), *f_dir = g_build_filename (tmp, "fake", NULL);
  g_autofree char *vr = g_build_filename (tmp, "val-real", NULL), *vf = g_build_filename (tmp, "val-fake", NULL);
  g_autofree char *mf = g_build_filename (tmp, "manifest.csv", NULL);
  g_autofree char *out = g_build_filename (tmp, "head.safetensors", NULL);
  g_auto (Run) r = { 0 };
  run_dcr (&r, ARGS_DATA (mf), "--val-real", vr, "--val-fake", vf, "--out", out, "--epochs", "3", "--hidden", "8",
           "--batch", "16", "--seed", "2", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "images: 6 real, 0 negatives, 4 partial fakes (training); 6 real, 4 partial "
                                   "fakes (validation)"));
  g_assert_nonnull (strstr (r.out, "left out: 1 whole-image fakes (no rectangle), 1 fakes not in the manifest, 1 "
                                   "unreadable or too small"));
  g_assert_nonnull (strstr (r.err, "dcr: skipped "));
  g_assert_nonnull (strstr (r.err, "tiny.png: 30×30 pixels; the tile statistics need at least 36×36"));
  /* 10 images of 4 tiles: 4 tiles in a rectangle, 1 partly in one (18/48) */
  g_assert_nonnull (strstr (r.out, "tiles: 35 label 0, 4 label 1, 1 left out"));
  g_assert_nonnull (strstr (r.out, "image AUC, column 0, partial fakes vs reals: training "));
  g_assert_nonnull (strstr (r.out, "validation "));
  g_assert_nonnull (strstr (r.err, "epoch 3/3  loss "));

  g_autoptr (GError) err = NULL;
  g_autoptr (DcrTileHead) h = dcr_tile_head_load (out, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (h->hidden, ==, 8);
  g_assert_nonnull (h->training);
  g_assert_nonnull (strstr (h->training, "\"partial_fakes\":4"));
  g_assert_nonnull (strstr (h->training, "\"tiles_label1\":4"));
  g_assert_nonnull (strstr (h->training, "\"seed\":2"));
  /* the standardisation of the kept training tiles is in the file: the GPU's
   * tile values, batched, agree with the CPU reference image by image */
  double mean[DCR_TILES_NIN], sd[DCR_TILES_NIN];
  ref_standardisation (mean, sd);
  for (int j = 0; j < DCR_TILES_NIN; j++)
    {
      if (fabs (h->mean[j] - mean[j]) > 1e-3 + 1e-3 * fabs (mean[j]) ||
          fabs (h->std[j] - sd[j]) > 1e-3 + 1e-3 * fabs (sd[j]))
        g_error ("input %d: mean %g std %g in the file, %g %g from the reference", j, h->mean[j], h->std[j],
                 mean[j], sd[j]);
    }

  /* the same seed, the same file contents */
  g_autofree char *out2 = g_build_filename (tmp, "head2.safetensors", NULL);
  g_auto (Run) r2 = { 0 };
  run_dcr (&r2, ARGS_DATA (mf), "--val-real", vr, "--val-fake", vf, "--out", out2, "--epochs", "3", "--hidden", "8",
           "--batch", "16", "--seed", "2", NULL);
  g_assert_cmpint (r2.status, ==, 0);
  g_autoptr (DcrTileHead) h2 = dcr_tile_head_load (out2, &err);
  g_assert_no_error (err);
  g_assert_cmpmem (h->w1, sizeof (float) * 8 * DCR_TILES_NIN, h2->w1, sizeof (float) * 8 * DCR_TILES_NIN);
}

static void
assert_no_file (const char *path)
{
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
}

static void
test_errors (void)
{
  g_autofree char *r_dir = g_build_filename (tmp, "real", NULL), *f_dir = g_build_filename (tmp, "fake", NULL);
  g_autofree char *out = g_build_filename (tmp, "bad.safetensors", NULL);
  g_autofree char *mf = g_build_filename (tmp, "manifest.csv", NULL);
  g_autofree char *no_partial = g_build_filename (tmp, "no-partial.csv", NULL);
  g_autofree char *bad_rect = g_build_filename (tmp, "bad-rect.csv", NULL);
  g_autofree char *nowhere = g_build_filename (tmp, "no-such-folder", NULL);
  {
    g_auto (Run) r = { 0 };
    run_dcr (&r, ARGS_DATA (no_partial), "--out", out, "--epochs", "1", NULL);
    g_assert_cmpint (r.status, ==, 1);
    g_assert_nonnull (strstr (r.err, "no-partial.csv has no column “partial”"));
    assert_no_file (out);
  }
  {
    g_auto (Run) r = { 0 };
    run_dcr (&r, ARGS_DATA (bad_rect), "--out", out, "--epochs", "1", NULL);
    g_assert_cmpint (r.status, ==, 1);
    g_assert_nonnull (strstr (r.err, "is \"6,6,48\"; expected \"x,y,w,h\""));
    assert_no_file (out);
  }
  {
    g_auto (Run) r = { 0 };
    run_dcr (&r, "--real", nowhere, "--fake", f_dir, "--manifest", mf, "--out", out, "--epochs", "1", NULL);
    g_assert_cmpint (r.status, ==, 1);
    g_assert_nonnull (strstr (r.err, "no-such-folder"));
    assert_no_file (out);
  }
  {
    /* a manifest that does not exist */
    g_auto (Run) r = { 0 };
    run_dcr (&r, ARGS_DATA (nowhere), "--out", out, "--epochs", "1", NULL);
    g_assert_cmpint (r.status, ==, 1);
    assert_no_file (out);
  }
  {
    /* reals only: no tile of label 1 to learn from */
    g_auto (Run) r = { 0 };
    run_dcr (&r, "--real", r_dir, "--fake", r_dir, "--manifest", mf, "--out", out, "--epochs", "1", NULL);
    g_assert_cmpint (r.status, ==, 1);
    g_assert_nonnull (strstr (r.err, "0 tiles with label 1"));
    assert_no_file (out);
  }
  {
    g_auto (Run) r = { 0 };
    run_dcr (&r, "--real", r_dir, "--fake", f_dir, "--out", out, NULL);
    g_assert_cmpint (r.status, ==, 2);
    g_assert_nonnull (strstr (r.err, "--manifest"));
  }
  {
    g_auto (Run) r = { 0 };
    run_dcr (&r, ARGS_DATA (mf), "--out", out, "--dropout", "1", NULL);
    g_assert_cmpint (r.status, ==, 2);
  }
  {
    g_auto (Run) r = { 0 };
    run_dcr (&r, ARGS_DATA (mf), "--out", out, "--val-real", r_dir, NULL);
    g_assert_cmpint (r.status, ==, 2);
  }
  assert_no_file (out);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc != 2)
    {
      g_printerr ("usage: %s [--tap] DCR\n", argv[0]);
      return 2;
    }
  dcr_exe = argv[1];
  g_autoptr (GError) err = NULL;
  tmp = g_dir_make_tmp ("dcr-train-tiles-XXXXXX", &err);
  g_assert_no_error (err);
  make_data ();
  g_test_add_func ("/cli-train-tiles/train", test_train);
  g_test_add_func ("/cli-train-tiles/errors", test_errors);
  int rc = g_test_run ();
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", tmp);
  if (system (rm) != 0)
    g_printerr ("could not remove %s\n", tmp);
  g_free (tmp);
  return rc;
}
