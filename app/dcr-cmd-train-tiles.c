/* dcr-cmd-train-tiles.c — `dcr train-tiles`: trains the tile head
 * (dcr-tile-head.h), the specialist for partly regenerated images, from
 * folders of real images and partial fakes whose rectangles a manifest
 * gives. The local-v1 tile values come from the GPU (dcr_op_local), the
 * training runs there too (dcr-tile-train.h); the head file is written
 * only when everything succeeded. */
#include "dcr-cli.h"
#include "dcr-cli-detect.h"
#include "dcr-image.h"
#include "dcr-metrics.h"
#include "dcr-op-preprocess.h"
#include "dcr-tile-train.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define NIN DCR_TILES_NIN
#define GPU_BATCH 16 /* images per submit */

enum { SRC_REAL, SRC_NEGATIVE, SRC_FAKE, SRC_VAL_REAL, SRC_VAL_FAKE };

typedef struct {
  char *path;
  int src;
  gint64 rect[4]; /* x, y, w, h of the regenerated pixels (fakes) */
  guint ntiles;
  DcrForensicWindow win;
  float *x; /* [ntiles][69] tile values; NULL when the image was skipped */
} Img;

static void
img_clear (Img *im)
{
  g_free (im->path);
  g_free (im->x);
}

static gboolean
is_fake (int src)
{
  return src == SRC_FAKE || src == SRC_VAL_FAKE;
}

static gboolean
is_val (int src)
{
  return src == SRC_VAL_REAL || src == SRC_VAL_FAKE;
}

/* Tile values of imgs[0 … n) on the GPU, GPU_BATCH images per submit;
 * images that cannot be read or are too small are skipped with a warning. */
static gboolean
tile_values (DcrContext *ctx, Img *imgs, guint n, gboolean quiet, guint *skipped, GError **error)
{
  gint64 acc_shape[] = { GPU_BATCH, DCR_LOCAL_ACC_SIZE }, y_shape[] = { GPU_BATCH, DCR_LOCAL_DIM };
  g_autoptr (DcrTensor) acc = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, acc_shape, error);
  g_autoptr (DcrTensor) y = acc ? dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, y_shape, error) : NULL;
  if (!y)
    return FALSE;
  g_autofree float *slot_acc = g_new (float, DCR_LOCAL_ACC_SIZE);
  DcrCliProgress pr = { "tiles", .quiet = quiet };
  for (guint i = 0; i < n;)
    {
      /* the images' tensors outlive the sequence that reads them */
      g_autoptr (GPtrArray) tensors = g_ptr_array_new_with_free_func ((GDestroyNotify) dcr_tensor_free);
      g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, error);
      if (!seq)
        return FALSE;
      Img *in_slot[GPU_BATCH];
      guint used = 0;
      for (; i < n && used < GPU_BATCH; i++)
        {
          Img *im = &imgs[i];
          g_autoptr (GError) ierr = NULL;
          g_autoptr (DcrImage) img = dcr_image_load (im->path, NULL, &ierr);
          if (img && !dcr_forensic_window (img->height, img->width, &im->win))
            g_set_error (&ierr, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                         "%s: %u×%u pixels; the tile statistics need at least %d×%d", im->path, img->width,
                         img->height, DCR_FORENSIC_MIN_SIDE, DCR_FORENSIC_MIN_SIDE);
          if (ierr)
            {
              fprintf (stderr, "dcr: skipped %s\n", ierr->message);
              (*skipped)++;
              continue;
            }
          DcrTensor *t = dcr_image_tensor_new (ctx, DCR_POOL_STAGING, img->height, img->width, error);
          if (!t)
            return FALSE;
          g_ptr_array_add (tensors, t);
          DcrLocalTiles lt;
          dcr_local_tiles (&im->win, &lt);
          im->ntiles = (guint) (lt.nth * lt.ntw);
          if (!dcr_buffer_upload (t->buf, 0, img->pixels, (gsize) img->width * img->height * 3, error) ||
              !dcr_op_local (seq, t, acc, used, y, used, 0, error))
            return FALSE;
          in_slot[used++] = im;
        }
      if (used && !dcr_seq_submit (seq, TRUE, error))
        return FALSE;
      for (guint s = 0; s < used; s++)
        {
          Img *im = in_slot[s];
          gsize len = (gsize) im->ntiles * 3 * DCR_LOCAL_ACC_STRIDE;
          if (!dcr_buffer_download (acc->buf, (gsize) s * DCR_LOCAL_ACC_SIZE * sizeof (float), slot_acc,
                                    len * sizeof (float), error))
            return FALSE;
          im->x = g_new (float, (gsize) im->ntiles * NIN);
          dcr_tile_values_from_acc (slot_acc, im->ntiles, im->x);
        }
      dcr_cli_progress (i, n, &pr);
    }
  return TRUE;
}

/* The share of tile t's pixels inside the image's rectangle. */
static double
tile_cover (const Img *im, guint t)
{
  gint64 x, y, w, h;
  dcr_tile_rect (&im->win, t, &x, &y, &w, &h);
  const gint64 *r = im->rect;
  gint64 ix = MIN (x + w, r[0] + r[2]) - MAX (x, r[0]), iy = MIN (y + h, r[1] + r[3]) - MAX (y, r[1]);
  return ix > 0 && iy > 0 ? (double) (ix * iy) / (double) (w * h) : 0.0;
}

/* Image-level AUC of column 0: fakes (with a rectangle) against reals of
 * the chosen split; NaN when a class is missing. */
static double
image_auc (const DcrTileHead *h, const Img *imgs, guint n, gboolean val, guint *n_pos, guint *n_neg)
{
  g_autofree float *s = g_new (float, MAX (n, 1));
  g_autofree gint32 *l = g_new (gint32, MAX (n, 1));
  gsize m = 0;
  *n_pos = *n_neg = 0;
  for (guint i = 0; i < n; i++)
    {
      if (!imgs[i].x || is_val (imgs[i].src) != val)
        continue;
      float out[DCR_TILES_DIM];
      dcr_ref_tile_head (h, imgs[i].x, imgs[i].ntiles, NULL, out);
      s[m] = out[0];
      l[m] = is_fake (imgs[i].src);
      (*(l[m] ? n_pos : n_neg))++;
      m++;
    }
  return dcr_metrics_roc_auc (s, l, m);
}

int
dcr_cmd_train_tiles (int argc, char **argv)
{
  g_auto (GStrv) real_dirs = NULL, neg_dirs = NULL, fake_dirs = NULL, val_real_dirs = NULL, val_fake_dirs = NULL;
  const char *manifest_path = NULL, *out = NULL, *device = NULL;
  DcrTileTrainOptions o;
  dcr_tile_train_options_init (&o);
  int epochs = (int) o.epochs, hidden = (int) o.hidden, batch = (int) o.batch;
  double lr = o.lr, wd = o.weight_decay, dropout = o.dropout;
  gint64 seed = (gint64) o.seed;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
    { "real", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &real_dirs, "Folder of real images (repeatable)", "DIR" },
    { "negatives", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &neg_dirs,
      "Folder of real-labelled hard negatives, e.g. resampled images (repeatable)", "DIR" },
    { "fake", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &fake_dirs,
      "Folder of fakes; those with a `partial` rectangle in the manifest are trained on (repeatable)", "DIR" },
    { "manifest", 0, 0, G_OPTION_ARG_FILENAME, &manifest_path,
      "CSV with the columns file, generator and partial (\"x,y,w,h\": the regenerated pixels of a partial fake)",
      "CSV" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Tile head file to write", "HEAD.safetensors" },
    { "val-real", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &val_real_dirs, "Folder of real images for validation", "DIR" },
    { "val-fake", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &val_fake_dirs,
      "Folder of fakes for validation (those with a rectangle in the manifest)", "DIR" },
    { "epochs", 0, 0, G_OPTION_ARG_INT, &epochs, "Epochs (30)", "N" },
    { "hidden", 0, 0, G_OPTION_ARG_INT, &hidden, "Hidden units (64)", "H" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Tiles per update (256)", "B" },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &lr, "AdamW learning rate (1e-3)", "X" },
    { "weight-decay", 0, 0, G_OPTION_ARG_DOUBLE, &wd, "AdamW weight decay (0.1)", "X" },
    { "dropout", 0, 0, G_OPTION_ARG_DOUBLE, &dropout, "Dropout on the hidden units (0.3)", "P" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Random seed (1)", "S" },
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device", "INDEX|NAME" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress output", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) oc = g_option_context_new ("- train the tile head on partial fakes");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!dcr_cli_parse (oc, entries, &argc, &argv))
    return 2;
  if (!real_dirs || !fake_dirs || !manifest_path || !out || argc > 1)
    {
      fprintf (stderr, "dcr: train-tiles needs --real DIR --fake DIR --manifest CSV --out HEAD.safetensors (see "
                       "`dcr train-tiles --help`)\n");
      return 2;
    }
  if (!val_real_dirs != !val_fake_dirs)
    {
      fprintf (stderr, "dcr: a validation set needs both --val-real and --val-fake\n");
      return 2;
    }
  if (epochs < 1 || hidden < 1 || hidden > DCR_TILES_MAX_HIDDEN || batch < 2 || !(lr > 0) || !(wd >= 0) ||
      !(dropout >= 0 && dropout < 1) || seed < 0)
    {
      fprintf (stderr, "dcr: train-tiles: epochs ≥ 1, hidden 1…%d, batch ≥ 2, lr > 0, weight decay ≥ 0, dropout "
                       "in [0, 1), seed ≥ 0\n", DCR_TILES_MAX_HIDDEN);
      return 2;
    }
  o = (DcrTileTrainOptions) { (guint) epochs, (guint) hidden, (guint) batch, lr, wd, dropout, (guint64) seed };

  g_autoptr (GError) err = NULL;
  g_autoptr (DcrManifest) mf = dcr_manifest_load (manifest_path, &err);
  if (!mf)
    return dcr_cli_fail (err);
  gint pcol = dcr_manifest_column (mf, "partial");
  if (pcol < 0)
    {
      fprintf (stderr, "dcr: %s has no column “partial” (the pixel rectangle \"x,y,w,h\" of each partial fake); "
                       "the tile head learns from those rectangles\n", manifest_path);
      return 1;
    }
  g_autofree char *mf_parent = g_path_get_dirname (manifest_path);
  g_autofree char *mf_dir = g_canonicalize_filename (mf_parent, NULL);
  /* fail before the work rather than after it */
  if (!dcr_cli_out_folder_exists (out))
    return 1;

  /* every image, with its role; fakes without a rectangle are left out */
  g_autoptr (GArray) imgs = g_array_new (FALSE, TRUE, sizeof (Img));
  g_array_set_clear_func (imgs, (GDestroyNotify) img_clear);
  guint whole[2] = { 0 }, unlisted[2] = { 0 }; /* [train, val] */
  char **const groups[] = { [SRC_REAL] = real_dirs, [SRC_NEGATIVE] = neg_dirs, [SRC_FAKE] = fake_dirs,
                            [SRC_VAL_REAL] = val_real_dirs, [SRC_VAL_FAKE] = val_fake_dirs };
  for (int src = 0; src < (int) G_N_ELEMENTS (groups); src++)
    for (guint d = 0; groups[src] && groups[src][d]; d++)
      {
        g_autoptr (GPtrArray) files = dcr_list_images (groups[src][d], &err);
        if (!files)
          return dcr_cli_fail (err);
        if (!files->len)
          fprintf (stderr, "dcr: warning: no images in %s\n", groups[src][d]);
        for (guint i = 0; i < files->len; i++)
          {
            const char *path = files->pdata[i];
            Img im = { .src = src };
            if (is_fake (src))
              {
                const char *partial = dcr_cli_manifest_value (mf, mf_dir, pcol, path);
                if (!partial || !*partial)
                  {
                    (partial ? whole : unlisted)[is_val (src)]++;
                    continue;
                  }
                if (!dcr_cli_parse_rect (partial, im.rect))
                  {
                    fprintf (stderr, "dcr: %s: the “partial” of %s is \"%s\"; expected \"x,y,w,h\" (pixels, w and "
                                     "h ≥ 1)\n", manifest_path, path, partial);
                    return 1;
                  }
              }
            im.path = g_strdup (path);
            g_array_append_val (imgs, im);
          }
      }

  DcrContextOptions copts = { .device = device };
  g_autoptr (DcrContext) ctx = dcr_context_new (&copts, &err);
  if (!ctx)
    return dcr_cli_fail (err);
  Img *im = (Img *) imgs->data;
  guint n_img = imgs->len, skipped = 0;
  if (!quiet)
    fprintf (stderr, "dcr: tile values of %u images on %s\n", n_img, dcr_context_device (ctx)->name);
  if (!tile_values (ctx, im, n_img, quiet, &skipped, &err))
    return dcr_cli_fail (err);

  /* the training tiles: relative values and labels */
  guint n_src[5] = { 0 }, fakes_no_pos = 0;
  gsize n_tiles = 0, lab[2] = { 0 }, tiles_out = 0;
  for (guint i = 0; i < n_img; i++)
    if (im[i].x)
      {
        n_src[im[i].src]++;
        if (!is_val (im[i].src))
          n_tiles += im[i].ntiles;
      }
  g_autofree float *z = g_new (float, MAX (n_tiles, 1) * NIN);
  g_autofree gint32 *labels = g_new (gint32, MAX (n_tiles, 1));
  gsize kept = 0;
  g_autofree float *r = g_new (float, DCR_LOCAL_MAX_TILES * NIN);
  for (guint i = 0; i < n_img; i++)
    {
      if (!im[i].x || is_val (im[i].src))
        continue;
      dcr_tile_relative (im[i].x, im[i].ntiles, r);
      gsize pos = 0;
      for (guint t = 0; t < im[i].ntiles; t++)
        {
          double c = is_fake (im[i].src) ? tile_cover (&im[i], t) : 0.0;
          if (c > 0 && c < 0.5)
            {
              tiles_out++;
              continue;
            }
          memcpy (z + kept * NIN, r + (gsize) t * NIN, sizeof (float) * NIN);
          labels[kept] = c >= 0.5;
          lab[labels[kept]]++;
          pos += labels[kept];
          kept++;
        }
      fakes_no_pos += is_fake (im[i].src) && !pos;
    }

  printf ("images: %u real, %u negatives, %u partial fakes (training); %u real, %u partial fakes (validation)\n",
          n_src[SRC_REAL], n_src[SRC_NEGATIVE], n_src[SRC_FAKE], n_src[SRC_VAL_REAL], n_src[SRC_VAL_FAKE]);
  printf ("left out: %u whole-image fakes (no rectangle), %u fakes not in the manifest, %u unreadable or too "
          "small\n", whole[0] + whole[1], unlisted[0] + unlisted[1], skipped);
  printf ("tiles: %" G_GSIZE_FORMAT " label 0, %" G_GSIZE_FORMAT " label 1, %" G_GSIZE_FORMAT " left out (under "
          "half inside a rectangle)\n", lab[0], lab[1], tiles_out);
  if (fakes_no_pos)
    printf ("note: %u partial fakes have no tile at least half inside their rectangle\n", fakes_no_pos);
  fflush (stdout);

  /* standardisation over the kept training tiles */
  g_autoptr (DcrTileHead) head = NULL;
  double mean[NIN] = { 0 }, var[NIN] = { 0 };
  for (gsize k = 0; k < kept; k++)
    for (int j = 0; j < NIN; j++)
      mean[j] += z[k * NIN + j];
  for (int j = 0; j < NIN; j++)
    mean[j] /= MAX (kept, 1);
  for (gsize k = 0; k < kept; k++)
    for (int j = 0; j < NIN; j++)
      {
        double d = z[k * NIN + j] - mean[j];
        var[j] += d * d;
      }
  float mu[NIN], sd[NIN];
  for (int j = 0; j < NIN; j++)
    {
      mu[j] = (float) mean[j];
      sd[j] = (float) (sqrt (var[j] / MAX (kept, 1)) + 1e-6);
    }
  for (gsize k = 0; k < kept; k++)
    for (int j = 0; j < NIN; j++)
      z[k * NIN + j] = (z[k * NIN + j] - mu[j]) / sd[j];

  double final_loss = NAN;
  if (!(head = dcr_tile_train (ctx, z, labels, kept, &o, dcr_cli_epoch_report, GINT_TO_POINTER (quiet), &final_loss, &err)))
    {
      g_prefix_error (&err, "train-tiles: ");
      return dcr_cli_fail (err);
    }
  memcpy (head->mean, mu, sizeof mu);
  memcpy (head->std, sd, sizeof sd);

  guint tp, tn, vp = 0, vn = 0;
  double auc_train = image_auc (head, im, n_img, FALSE, &tp, &tn), auc_val = NAN;
  if (val_real_dirs)
    auc_val = image_auc (head, im, n_img, TRUE, &vp, &vn);

  /* the record of the run, in the file */
  g_autoptr (JsonBuilder) jb = json_builder_new ();
  json_builder_begin_object (jb);
  json_builder_set_member_name (jb, "command");
  json_builder_add_string_value (jb, "dcr train-tiles");
  json_builder_set_member_name (jb, "options");
  json_builder_begin_object (jb);
  dcr_cli_json_add_strv (jb, "real", real_dirs);
  dcr_cli_json_add_strv (jb, "negatives", neg_dirs);
  dcr_cli_json_add_strv (jb, "fake", fake_dirs);
  dcr_cli_json_add_strv (jb, "val_real", val_real_dirs);
  dcr_cli_json_add_strv (jb, "val_fake", val_fake_dirs);
  json_builder_set_member_name (jb, "manifest");
  json_builder_add_string_value (jb, manifest_path);
  dcr_cli_json_add_int (jb, "epochs", o.epochs);
  dcr_cli_json_add_int (jb, "hidden", o.hidden);
  dcr_cli_json_add_int (jb, "batch", o.batch);
  dcr_cli_json_add_double (jb, "lr", o.lr);
  dcr_cli_json_add_double (jb, "weight_decay", o.weight_decay);
  dcr_cli_json_add_double (jb, "dropout", o.dropout);
  dcr_cli_json_add_int (jb, "seed", (gint64) o.seed);
  json_builder_end_object (jb);
  json_builder_set_member_name (jb, "counts");
  json_builder_begin_object (jb);
  dcr_cli_json_add_int (jb, "real", n_src[SRC_REAL]);
  dcr_cli_json_add_int (jb, "negatives", n_src[SRC_NEGATIVE]);
  dcr_cli_json_add_int (jb, "partial_fakes", n_src[SRC_FAKE]);
  dcr_cli_json_add_int (jb, "val_real", n_src[SRC_VAL_REAL]);
  dcr_cli_json_add_int (jb, "val_partial_fakes", n_src[SRC_VAL_FAKE]);
  dcr_cli_json_add_int (jb, "whole_fakes_left_out", whole[0] + whole[1]);
  dcr_cli_json_add_int (jb, "fakes_not_in_manifest", unlisted[0] + unlisted[1]);
  dcr_cli_json_add_int (jb, "skipped", skipped);
  dcr_cli_json_add_int (jb, "tiles_label0", (gint64) lab[0]);
  dcr_cli_json_add_int (jb, "tiles_label1", (gint64) lab[1]);
  dcr_cli_json_add_int (jb, "tiles_left_out", (gint64) tiles_out);
  json_builder_end_object (jb);
  dcr_cli_json_add_double (jb, "final_loss", final_loss);
  dcr_cli_json_add_double (jb, "auc_train", auc_train);
  dcr_cli_json_add_double (jb, "auc_val", auc_val);
  json_builder_set_member_name (jb, "device");
  json_builder_add_string_value (jb, dcr_context_device (ctx)->name);
  json_builder_end_object (jb);
  g_autoptr (JsonNode) root = json_builder_get_root (jb);
  g_autofree char *training = json_to_string (root, FALSE);
  if (!dcr_tile_head_save (head, out, training, &err))
    return dcr_cli_fail (err);

  printf ("loss: %.4f (last epoch of %u)\n", final_loss, o.epochs);
  printf ("image AUC, column 0, partial fakes vs reals: training %.4f (%u fakes, %u reals)", auc_train, tp, tn);
  if (val_real_dirs)
    printf (", validation %.4f (%u fakes, %u reals)", auc_val, vp, vn);
  printf ("\ntile head: %s\n", out);
  return 0;
}
