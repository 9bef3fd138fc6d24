/* dcr-cmd-train-cnn.c — `dcr train-cnn`: trains the learned forensic CNN
 * (dcr-cnn.h) on crops of real images, hard negatives and fakes, on the
 * GPU (dcr-cnn-train.h). A manifest's `partial` column gives the
 * regenerated rectangle of partial fakes, so that crops of their real
 * pixels are labelled real. The network file is written only when
 * everything succeeded. */
#include "dcr-cli.h"
#include "dcr-cli-detect.h"
#include "dcr-cnn-train.h"
#include "dcr-image.h"
#include "dcr-metrics.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_ARCH "8:3:2,16:3:2,32:3:2,32:3:1"

enum { SRC_REAL, SRC_NEGATIVE, SRC_FAKE, SRC_VAL_REAL, SRC_VAL_FAKE, N_SRC };

typedef struct {
  DcrImage *img;
  int src;
  gint64 rect[4];
} Img;

static void
img_clear (Img *im)
{
  g_clear_pointer (&im->img, dcr_image_free);
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

/* The hidden layers as "COUT:K:S,…"; a final 1 × 1 convolution to one
 * channel is added. */
static DcrCnn *
parse_arch (const char *spec, GError **error)
{
  g_auto (GStrv) layers = g_strsplit (spec, ",", -1);
  guint n = g_strv_length (layers);
  guint channels[DCR_CNN_MAX_LAYERS + 1] = { 3 }, kernels[DCR_CNN_MAX_LAYERS], strides[DCR_CNN_MAX_LAYERS];
  if (n < 1 || n + 1 > DCR_CNN_MAX_LAYERS)
    {
      g_set_error (error, DCR_CNN_ERROR, DCR_CNN_ERROR_SHAPE,
                   "--arch \"%s\": give 1 to %d hidden layers as COUT:KERNEL:STRIDE separated by commas (e.g. %s)",
                   spec, DCR_CNN_MAX_LAYERS - 1, DEFAULT_ARCH);
      return NULL;
    }
  for (guint l = 0; l < n; l++)
    {
      g_auto (GStrv) f = g_strsplit (layers[l], ":", -1);
      guint64 v[3];
      if (g_strv_length (f) != 3 || !g_ascii_string_to_unsigned (f[0], 10, 1, G_MAXUINT32, &v[0], NULL) ||
          !g_ascii_string_to_unsigned (f[1], 10, 1, G_MAXUINT32, &v[1], NULL) ||
          !g_ascii_string_to_unsigned (f[2], 10, 1, G_MAXUINT32, &v[2], NULL))
        {
          g_set_error (error, DCR_CNN_ERROR, DCR_CNN_ERROR_SHAPE,
                       "--arch \"%s\": layer %u is \"%s\"; write each as COUT:KERNEL:STRIDE (e.g. %s)", spec, l + 1,
                       layers[l], DEFAULT_ARCH);
          return NULL;
        }
      channels[l + 1] = (guint) v[0];
      kernels[l] = (guint) v[1];
      strides[l] = (guint) v[2];
    }
  channels[n + 1] = 1;
  kernels[n] = 1;
  strides[n] = 1;
  return dcr_cnn_new (n + 1, channels, kernels, strides, error);
}

/* Validation: image-level AUC of the columns (all fakes against reals),
 * from the double reference on each image's window. */
static void
validate (const DcrCnn *c, const Img *imgs, guint n, double auc[DCR_CNN_DIM], guint *n_pos, guint *n_neg)
{
  g_autofree float *s = g_new (float, (gsize) MAX (n, 1) * DCR_CNN_DIM);
  g_autofree gint32 *l = g_new (gint32, MAX (n, 1));
  g_autofree float *col = g_new (float, MAX (n, 1));
  gsize m = 0;
  *n_pos = *n_neg = 0;
  for (guint i = 0; i < n; i++)
    {
      if (!is_val (imgs[i].src))
        continue;
      const DcrImage *img = imgs[i].img;
      gint64 top, left, h, w;
      dcr_cnn_window (img->height, img->width, &top, &left, &h, &w);
      if (!dcr_ref_cnn (c, img->pixels + ((gsize) top * img->width + left) * 3, (gint64) img->width * 3, h, w, NULL,
                        s + m * DCR_CNN_DIM))
        continue;
      l[m] = is_fake (imgs[i].src);
      (*(l[m] ? n_pos : n_neg))++;
      m++;
    }
  for (int j = 0; j < DCR_CNN_DIM; j++)
    {
      for (gsize i = 0; i < m; i++)
        col[i] = s[i * DCR_CNN_DIM + j];
      auc[j] = dcr_metrics_roc_auc (col, l, m);
    }
}

/* "P:QMIN-QMAX", e.g. "0.5:60-95". */
static gboolean
parse_jpeg (const char *spec, double *p, int *qmin, int *qmax)
{
  char *end = NULL;
  double v = g_ascii_strtod (spec, &end);
  if (end == spec || *end != ':' || !(v >= 0 && v <= 1))
    return FALSE;
  g_auto (GStrv) q = g_strsplit (end + 1, "-", -1);
  guint64 lo, hi;
  if (g_strv_length (q) != 2 || !g_ascii_string_to_unsigned (q[0], 10, 1, 100, &lo, NULL) ||
      !g_ascii_string_to_unsigned (q[1], 10, 1, 100, &hi, NULL) || lo > hi)
    return FALSE;
  *p = v;
  *qmin = (int) lo;
  *qmax = (int) hi;
  return TRUE;
}

int
dcr_cmd_train_cnn (int argc, char **argv)
{
  g_auto (GStrv) real_dirs = NULL, neg_dirs = NULL, fake_dirs = NULL, val_real_dirs = NULL, val_fake_dirs = NULL;
  const char *manifest_path = NULL, *out = NULL, *device = NULL, *arch_spec = DEFAULT_ARCH;
  DcrCnnTrainOptions o;
  dcr_cnn_train_options_init (&o);
  int epochs = (int) o.epochs, batch = (int) o.batch, crop = (int) o.crop, per_image = (int) o.crops_per_image;
  double lr = o.lr, wd = o.weight_decay;
  gint64 seed = (gint64) o.seed;
  const char *jpeg_spec = NULL;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
    { "real", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &real_dirs, "Folder of real images (repeatable)", "DIR" },
    { "negatives", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &neg_dirs,
      "Folder of real-labelled hard negatives, e.g. resampled images (repeatable)", "DIR" },
    { "fake", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &fake_dirs, "Folder of fakes (repeatable)", "DIR" },
    { "manifest", 0, 0, G_OPTION_ARG_FILENAME, &manifest_path,
      "CSV with the columns file and partial (\"x,y,w,h\": the regenerated pixels of a partial fake; empty for a "
      "whole fake)", "CSV" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Network file to write", "CNN.safetensors" },
    { "val-real", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &val_real_dirs, "Folder of real images for validation", "DIR" },
    { "val-fake", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &val_fake_dirs, "Folder of fakes for validation", "DIR" },
    { "arch", 0, 0, G_OPTION_ARG_STRING, &arch_spec,
      "Hidden layers as COUT:KERNEL:STRIDE,… (" DEFAULT_ARCH "); a 1×1 layer to one logit follows", "SPEC" },
    { "epochs", 0, 0, G_OPTION_ARG_INT, &epochs, "Epochs (30)", "N" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Crops per update (64)", "B" },
    { "crop", 0, 0, G_OPTION_ARG_INT, &crop, "Crop side in pixels, even (64)", "PX" },
    { "crops-per-image", 0, 0, G_OPTION_ARG_INT, &per_image, "Crops of every image per epoch (4)", "N" },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &lr, "AdamW learning rate (2e-3)", "X" },
    { "weight-decay", 0, 0, G_OPTION_ARG_DOUBLE, &wd, "AdamW weight decay (1e-2)", "X" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Random seed (1)", "S" },
    { "jpeg", 0, 0, G_OPTION_ARG_STRING, &jpeg_spec,
      "JPEG round trip of a crop with probability P at a quality uniform in QMIN–QMAX, whatever its label (off)",
      "P:QMIN-QMAX" },
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device", "INDEX|NAME" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress output", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) oc = g_option_context_new ("- train the learned forensic CNN");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!dcr_cli_parse (oc, entries, &argc, &argv))
    return 2;
  if (!real_dirs || !fake_dirs || !out || argc > 1)
    {
      fprintf (stderr, "dcr: train-cnn needs --real DIR --fake DIR --out CNN.safetensors (see `dcr train-cnn "
                       "--help`)\n");
      return 2;
    }
  if (!val_real_dirs != !val_fake_dirs)
    {
      fprintf (stderr, "dcr: a validation set needs both --val-real and --val-fake\n");
      return 2;
    }
  if (epochs < 1 || batch < 2 || crop < 8 || crop % 2 || per_image < 1 || !(lr > 0) || !(wd >= 0) || seed < 0)
    {
      fprintf (stderr, "dcr: train-cnn: epochs ≥ 1, batch ≥ 2, an even crop ≥ 8, crops per image ≥ 1, lr > 0, "
                       "weight decay ≥ 0, seed ≥ 0\n");
      return 2;
    }
  double jpeg_p = 0;
  int jpeg_qmin = o.jpeg_qmin, jpeg_qmax = o.jpeg_qmax;
  if (jpeg_spec && !parse_jpeg (jpeg_spec, &jpeg_p, &jpeg_qmin, &jpeg_qmax))
    {
      fprintf (stderr, "dcr: train-cnn: --jpeg \"%s\": give P:QMIN-QMAX, a probability in [0, 1] and qualities "
                       "QMIN ≤ QMAX within 1…100 (e.g. 0.5:60-95)\n", jpeg_spec);
      return 2;
    }
  o = (DcrCnnTrainOptions) { (guint) epochs, (guint) batch, (guint) crop, (guint) per_image, lr, wd,
                             (guint64) seed, jpeg_p, jpeg_qmin, jpeg_qmax };

  g_autoptr (GError) err = NULL;
  g_autoptr (DcrCnn) arch = parse_arch (arch_spec, &err);
  if (!arch)
    return dcr_cli_fail (err);
  g_autoptr (DcrManifest) mf = NULL;
  gint pcol = -1;
  g_autofree char *mf_dir = NULL;
  if (manifest_path)
    {
      if (!(mf = dcr_manifest_load (manifest_path, &err)))
        return dcr_cli_fail (err);
      if ((pcol = dcr_manifest_column (mf, "partial")) < 0)
        {
          fprintf (stderr, "dcr: %s has no column “partial” (the pixel rectangle \"x,y,w,h\" of each partial "
                           "fake, empty for a whole fake)\n", manifest_path);
          return 1;
        }
      g_autofree char *mf_parent = g_path_get_dirname (manifest_path);
      mf_dir = g_canonicalize_filename (mf_parent, NULL);
    }
  if (!dcr_cli_out_folder_exists (out))
    return 1;

  /* every image, decoded once and kept in memory */
  g_autoptr (GArray) imgs = g_array_new (FALSE, TRUE, sizeof (Img));
  g_array_set_clear_func (imgs, (GDestroyNotify) img_clear);
  guint n_src[N_SRC] = { 0 }, n_partial = 0, unlisted = 0, skipped = 0;
  char **const groups[N_SRC] = { [SRC_REAL] = real_dirs, [SRC_NEGATIVE] = neg_dirs, [SRC_FAKE] = fake_dirs,
                                 [SRC_VAL_REAL] = val_real_dirs, [SRC_VAL_FAKE] = val_fake_dirs };
  for (int src = 0; src < N_SRC; src++)
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
            if (is_fake (src) && mf)
              {
                const char *partial = dcr_cli_manifest_value (mf, mf_dir, pcol, path);
                unlisted += !partial;
                if (partial && *partial && !dcr_cli_parse_rect (partial, im.rect))
                  {
                    fprintf (stderr, "dcr: %s: the “partial” of %s is \"%s\"; expected \"x,y,w,h\" (pixels, w and "
                                     "h ≥ 1)\n", manifest_path, path, partial);
                    return 1;
                  }
                n_partial += partial && *partial && !is_val (src);
              }
            g_autoptr (GError) ierr = NULL;
            if (!(im.img = dcr_image_load (path, NULL, &ierr)))
              {
                fprintf (stderr, "dcr: skipped %s\n", ierr->message);
                skipped++;
                continue;
              }
            if (!is_val (src) && (im.img->width < o.crop || im.img->height < o.crop))
              {
                fprintf (stderr, "dcr: skipped %s: %u×%u pixels, smaller than the %u-pixel crops\n", path,
                         im.img->width, im.img->height, o.crop);
                dcr_image_free (im.img);
                skipped++;
                continue;
              }
            n_src[src]++;
            g_array_append_val (imgs, im);
          }
      }

  Img *im = (Img *) imgs->data;
  g_autofree DcrCnnTrainImage *train = g_new0 (DcrCnnTrainImage, MAX (imgs->len, 1));
  gsize n_train = 0;
  for (guint i = 0; i < imgs->len; i++)
    if (!is_val (im[i].src))
      train[n_train++] = (DcrCnnTrainImage) { im[i].img->pixels, im[i].img->width, im[i].img->height,
                                              is_fake (im[i].src),
                                              { im[i].rect[0], im[i].rect[1], im[i].rect[2], im[i].rect[3] } };

  printf ("images: %u real, %u negatives, %u fakes (%u partial) for training; %u real, %u fakes for validation\n",
          n_src[SRC_REAL], n_src[SRC_NEGATIVE], n_src[SRC_FAKE], n_partial, n_src[SRC_VAL_REAL],
          n_src[SRC_VAL_FAKE]);
  if (mf && unlisted)
    printf ("note: %u fakes are not in the manifest and were taken as whole-image fakes\n", unlisted);
  if (skipped)
    printf ("skipped: %u unreadable or too small\n", skipped);
  fflush (stdout);

  DcrContextOptions copts = { .device = device };
  g_autoptr (DcrContext) ctx = dcr_context_new (&copts, &err);
  if (!ctx)
    return dcr_cli_fail (err);
  if (!quiet)
    fprintf (stderr, "dcr: training on %s\n", dcr_context_device (ctx)->name);
  double final_loss = NAN;
  g_autoptr (DcrCnn) cnn = dcr_cnn_train (ctx, arch, train, n_train, &o, dcr_cli_epoch_report, GINT_TO_POINTER (quiet), &final_loss, &err);
  if (!cnn)
    {
      g_prefix_error (&err, "train-cnn: ");
      return dcr_cli_fail (err);
    }
  double auc[DCR_CNN_DIM] = { NAN, NAN, NAN };
  guint vp = 0, vn = 0;
  if (val_real_dirs)
    validate (cnn, im, imgs->len, auc, &vp, &vn);

  g_autoptr (JsonBuilder) jb = json_builder_new ();
  json_builder_begin_object (jb);
  json_builder_set_member_name (jb, "command");
  json_builder_add_string_value (jb, "dcr train-cnn");
  json_builder_set_member_name (jb, "options");
  json_builder_begin_object (jb);
  dcr_cli_json_add_strv (jb, "real", real_dirs);
  dcr_cli_json_add_strv (jb, "negatives", neg_dirs);
  dcr_cli_json_add_strv (jb, "fake", fake_dirs);
  dcr_cli_json_add_strv (jb, "val_real", val_real_dirs);
  dcr_cli_json_add_strv (jb, "val_fake", val_fake_dirs);
  json_builder_set_member_name (jb, "manifest");
  json_builder_add_string_value (jb, manifest_path ? manifest_path : "");
  json_builder_set_member_name (jb, "arch");
  json_builder_add_string_value (jb, arch_spec);
  dcr_cli_json_add_int (jb, "epochs", o.epochs);
  dcr_cli_json_add_int (jb, "batch", o.batch);
  dcr_cli_json_add_int (jb, "crop", o.crop);
  dcr_cli_json_add_int (jb, "crops_per_image", o.crops_per_image);
  dcr_cli_json_add_double (jb, "lr", o.lr);
  dcr_cli_json_add_double (jb, "weight_decay", o.weight_decay);
  dcr_cli_json_add_int (jb, "seed", (gint64) o.seed);
  if (o.jpeg_p > 0)
    {
      /* only when on: a run without the option records what it did before the option existed */
      json_builder_set_member_name (jb, "jpeg");
      json_builder_add_string_value (jb, jpeg_spec);
    }
  json_builder_end_object (jb);
  json_builder_set_member_name (jb, "counts");
  json_builder_begin_object (jb);
  dcr_cli_json_add_int (jb, "real", n_src[SRC_REAL]);
  dcr_cli_json_add_int (jb, "negatives", n_src[SRC_NEGATIVE]);
  dcr_cli_json_add_int (jb, "fakes", n_src[SRC_FAKE]);
  dcr_cli_json_add_int (jb, "partial_fakes", n_partial);
  dcr_cli_json_add_int (jb, "val_real", n_src[SRC_VAL_REAL]);
  dcr_cli_json_add_int (jb, "val_fakes", n_src[SRC_VAL_FAKE]);
  dcr_cli_json_add_int (jb, "fakes_not_in_manifest", unlisted);
  dcr_cli_json_add_int (jb, "skipped", skipped);
  json_builder_end_object (jb);
  dcr_cli_json_add_double (jb, "final_loss", final_loss);
  dcr_cli_json_add_double (jb, "auc_val_mean", auc[0]);
  dcr_cli_json_add_double (jb, "auc_val_top_blocks", auc[1]);
  dcr_cli_json_add_double (jb, "auc_val_max_block", auc[2]);
  json_builder_set_member_name (jb, "device");
  json_builder_add_string_value (jb, dcr_context_device (ctx)->name);
  json_builder_end_object (jb);
  g_autoptr (JsonNode) root = json_builder_get_root (jb);
  g_autofree char *training = json_to_string (root, FALSE);
  if (!dcr_cnn_save (cnn, out, training, &err))
    return dcr_cli_fail (err);

  printf ("loss: %.4f (last epoch of %u)\n", final_loss, o.epochs);
  if (val_real_dirs)
    printf ("validation image AUC (%u fakes, %u reals): mean %.4f, top blocks %.4f, highest block %.4f\n", vp, vn,
            auc[0], auc[1], auc[2]);
  printf ("network: %s\n", out);
  return 0;
}
