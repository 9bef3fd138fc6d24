/* dcr-cmd-train.c — `dcr train`: trains the DCR heads on folders of real
 * and fake images. Features of the frozen backbone are computed once (and
 * cached); the bank of real prototypes gives each sample its difference
 * tokens and can be built from the training reals; the model file gets the
 * threshold and inconclusive band chosen on a held-out split. */
#include "dcr-cli.h"
#include "dcr-cli-detect.h"
#include "dcr-retrieval.h"
#include "dcr-train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  GHashTable *by_path;  /* canonical path → index */
  GHashTable *by_name;  /* basename → index, or -1 when several files share it */
} Index;

static void
index_add (Index *ix, const char *path, gint64 i)
{
  g_hash_table_insert (ix->by_path, g_canonicalize_filename (path, NULL), GINT_TO_POINTER ((gint) i + 1));
  g_autofree char *base = g_path_get_basename (path);
  gpointer old = g_hash_table_lookup (ix->by_name, base);
  g_hash_table_insert (ix->by_name, g_steal_pointer (&base), old ? GINT_TO_POINTER (-1) : GINT_TO_POINTER ((gint) i + 1));
}

/* A path from the CSV: as given, relative to the CSV, then by unique name. */
static gint64
index_find (Index *ix, const char *csv_dir, const char *path)
{
  g_autofree char *a = g_canonicalize_filename (path, NULL);
  g_autofree char *b = g_canonicalize_filename (path, csv_dir);
  gint v = GPOINTER_TO_INT (g_hash_table_lookup (ix->by_path, a));
  if (!v)
    v = GPOINTER_TO_INT (g_hash_table_lookup (ix->by_path, b));
  if (!v)
    {
      g_autofree char *base = g_path_get_basename (path);
      v = GPOINTER_TO_INT (g_hash_table_lookup (ix->by_name, base));
    }
  return v > 0 ? v - 1 : -1;
}

/* Lines "fake,real" (a header line and #-comments are skipped). */
static gboolean
read_pairs (const char *csv, Index *fakes, Index *reals, gsize n_real, gint64 *pair, GError **error)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents (csv, &text, NULL, error))
    return FALSE;
  /* absolute, as g_canonicalize_filename wants its base to be */
  g_autofree char *csv_parent = g_path_get_dirname (csv);
  g_autofree char *dir = g_canonicalize_filename (csv_parent, NULL);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint used = 0, unmatched = 0;
  for (guint l = 0; lines[l]; l++)
    {
      char *line = g_strstrip (lines[l]);
      if (!*line || line[0] == '#')
        continue;
      g_auto (GStrv) f = g_strsplit (line, ",", 2);
      if (!f[0] || !f[1])
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s:%u: expected \"fake,real\", got \"%s\"", csv,
                       l + 1, line);
          return FALSE;
        }
      gint64 fi = index_find (fakes, dir, g_strstrip (f[0])), ri = index_find (reals, dir, g_strstrip (f[1]));
      if (fi < 0 || ri < 0)
        {
          if (used || l > 0 || (g_ascii_strcasecmp (f[0], "fake") != 0))
            unmatched++;
          continue;
        }
      pair[n_real + fi] = ri;
      used++;
    }
  fprintf (stderr, "dcr: %u pairs from %s%s", used, csv, unmatched ? "" : "\n");
  if (unmatched)
    fprintf (stderr, " (%u lines name files not among the images; skipped)\n", unmatched);
  return TRUE;
}

/* Lines "file,group" (a header line and #-comments are skipped): files of
 * one group share their key, so that training never compares a sample
 * with a prototype of its own group. */
static gboolean
read_groups (const char *csv, Index *all, GPtrArray *keys, GError **error)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents (csv, &text, NULL, error))
    return FALSE;
  g_autofree char *csv_parent = g_path_get_dirname (csv);
  g_autofree char *dir = g_canonicalize_filename (csv_parent, NULL);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint used = 0, unmatched = 0;
  g_autoptr (GHashTable) groups = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint l = 0; lines[l]; l++)
    {
      char *line = g_strstrip (lines[l]);
      if (!*line || line[0] == '#')
        continue;
      g_auto (GStrv) f = g_strsplit (line, ",", 2);
      if (!f[0] || !f[1] || !*g_strstrip (f[1]))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s:%u: expected \"file,group\", got \"%s\"", csv,
                       l + 1, line);
          return FALSE;
        }
      gint64 i = index_find (all, dir, g_strstrip (f[0]));
      if (i < 0)
        {
          if (used || l > 0)
            unmatched++;
          continue;
        }
      g_free (keys->pdata[i]);
      keys->pdata[i] = g_strconcat ("group:", f[1], NULL);
      g_hash_table_add (groups, keys->pdata[i]);
      used++;
    }
  fprintf (stderr, "dcr: %u files in %u groups from %s", used, g_hash_table_size (groups), csv);
  if (unmatched)
    fprintf (stderr, " (%u lines name files not among the images; skipped)", unmatched);
  fprintf (stderr, "\n");
  return TRUE;
}

/* The features of one folder and their per-file records. */
typedef struct {
  float *features;
  DcrFeatureItem *items;
  guint n;
  float *views; /* [n_views, n, dim] augmented views (training folders), or NULL */
} Folder;

static void
folder_clear (Folder *f)
{
  for (guint i = 0; i < f->n; i++)
    dcr_feature_item_clear (&f->items[i]);
  g_clear_pointer (&f->views, g_free);
  g_clear_pointer (&f->items, g_free);
  g_clear_pointer (&f->features, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Folder, folder_clear)

typedef struct {
  Folder *f;
  guint n;
} Folders;

static void
folders_clear (Folders *fs)
{
  for (guint i = 0; fs->f && i < fs->n; i++)
    folder_clear (&fs->f[i]);
  g_clear_pointer (&fs->f, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Folders, folders_clear)

static void
index_clear (Index *ix)
{
  g_clear_pointer (&ix->by_path, g_hash_table_unref);
  g_clear_pointer (&ix->by_name, g_hash_table_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Index, index_clear)

static gboolean
on_epoch (const DcrTrainProgress *p, gpointer data)
{
  g_autofree char *eta = dcr_cli_duration (p->eta_s);
  g_autofree char *el = dcr_cli_duration (p->elapsed_s);
  fprintf (stderr, "epoch %u/%u  loss %.4f (CE %.4f, BCE %.4f, SupCon %.4f", p->epoch, p->epochs, p->loss[0],
           p->loss[1], p->loss[2], p->loss[3]);
  if (p->infonce != 0)
    fprintf (stderr, ", InfoNCE %.4f", p->infonce);
  fprintf (stderr, ")");
  if (isfinite (p->val_auc))
    fprintf (stderr, "  val AUC %.3f, ACC %.3f", p->val_auc, p->val_acc);
  fprintf (stderr, "  %s elapsed, ETA %s\n", el, eta);
  return TRUE;
}

int
dcr_cmd_train (int argc, char **argv)
{
  const char *device = NULL, *backbone = "default", *pairs = NULL, *augment = NULL, *groups_csv = NULL;
  g_auto (GStrv) real_dirs = NULL, fake_dirs = NULL, neg_dirs = NULL, val_real_dirs = NULL, val_fake_dirs = NULL;
  const char *out = NULL, *bank_path = NULL, *checkpoint = NULL;
  int epochs = 20, k = 8, batch = 32, hidden = 512, head_hidden = 512, warmup = 0;
  double lr = 1e-3, wd = 1e-2, val = 0.2, lambda_bce = 1, lambda_supcon = 0.1;
  double lambda_infonce = 0.1, moco_momentum = DCR_MOCO_MOMENTUM;
  int moco_queue = 1024;
  gboolean moco = FALSE;
  gint64 seed = 1;
  gboolean from_reals = FALSE, resume = FALSE, no_gate = FALSE, no_cache = FALSE, quiet = FALSE, no_fusion = FALSE;
  gboolean single_decision = FALSE, jpeg_fusion = FALSE;
  const char *band_edges = NULL; /* owned by dcr_cli_parse, as every string option */
  GOptionEntry entries[] = {
    { "real", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &real_dirs, "Folder of real images (repeatable)", "DIR" },
    { "fake", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &fake_dirs, "Folder of fake images (repeatable)", "DIR" },
    { "negatives", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &neg_dirs,
      "Folder of real-labelled images trained on but never put in the bank: hard negatives such as resampled "
      "images, re-encoded copies (repeatable)", "DIR" },
    { "val-real", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &val_real_dirs,
      "Folder of real images for validation only (repeatable; replaces --val-fraction)", "DIR" },
    { "val-fake", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &val_fake_dirs,
      "Folder of fake images for validation only (repeatable)", "DIR" },
    { "pairs", 0, 0, G_OPTION_ARG_FILENAME, &pairs, "CSV of fake,real source pairs", "CSV" },
    { "groups", 0, 0, G_OPTION_ARG_FILENAME, &groups_csv,
      "CSV of file,group (e.g. the source photo of each crop): a sample is never compared with a prototype of "
      "its own group", "CSV" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Model file to write", "MODEL" },
    { "bank", 0, 0, G_OPTION_ARG_FILENAME, &bank_path, "Bank of real prototypes for the tokens", "BANK" },
    { "bank-from-reals", 0, 0, G_OPTION_ARG_NONE, &from_reals, "Create or extend --bank with the real images", NULL },
    { "epochs", 0, 0, G_OPTION_ARG_INT, &epochs, "Epochs (20)", "N" },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &lr, "Peak learning rate, cosine schedule (1e-3)", "LR" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "Linear warm-up updates (0)", "N" },
    { "weight-decay", 0, 0, G_OPTION_ARG_DOUBLE, &wd, "AdamW weight decay (1e-2)", "W" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Samples per update (32)", "N" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Random seed (1)", "S" },
    { "k", 0, 0, G_OPTION_ARG_INT, &k, "Prototypes compared with per image (8, at most 32)", "K" },
    { "hidden", 0, 0, G_OPTION_ARG_INT, &hidden, "Attention width (512)", "H" },
    { "head-hidden", 0, 0, G_OPTION_ARG_INT, &head_hidden, "Residual head width (512)", "H" },
    { "no-gate", 0, 0, G_OPTION_ARG_NONE, &no_gate, "No sigmoid gate on the attention output", NULL },
    { "lambda-bce", 0, 0, G_OPTION_ARG_DOUBLE, &lambda_bce, "Weight of the anomaly BCE (1)", "L" },
    { "lambda-supcon", 0, 0, G_OPTION_ARG_DOUBLE, &lambda_supcon, "Weight of SupCon, negative: off (0.1)", "L" },
    { "moco", 0, 0, G_OPTION_ARG_NONE, &moco, "Add MoCo's InfoNCE against a momentum key encoder and queue", NULL },
    { "moco-queue", 0, 0, G_OPTION_ARG_INT, &moco_queue, "MoCo queue length, at least the batch (1024)", "N" },
    { "lambda-infonce", 0, 0, G_OPTION_ARG_DOUBLE, &lambda_infonce, "Weight of InfoNCE with --moco (0.1)", "L" },
    { "moco-momentum", 0, 0, G_OPTION_ARG_DOUBLE, &moco_momentum, "Key encoder momentum, in (0, 1) (0.999)", "M" },
    { "val-fraction", 0, 0, G_OPTION_ARG_DOUBLE, &val, "Files per class held out (0.2; negative: none)", "F" },
    { "checkpoint", 0, 0, G_OPTION_ARG_FILENAME, &checkpoint, "Checkpoint file (MODEL.checkpoint)", "FILE" },
    { "resume", 0, 0, G_OPTION_ARG_NONE, &resume, "Continue from the checkpoint", NULL },
    { "augment", 0, 0, G_OPTION_ARG_STRING, &augment,
      "Augmented views of every training image before the backbone: \"default\" (2 views: crop 0.5 keeping ≥ 0.75 "
      "of a side, flip 0.5, blur 0.1 with σ ≤ 1, JPEG 0.5 at quality 60–95), \"none\", or settings over the "
      "default such as \"views=4,jpeg=0.7:50-95,blur=0:1,crop=0.5:0.75,flip=0.5,seed=1\"", "SPEC" },
    { "single-decision", 0, 0, G_OPTION_ARG_NONE, &single_decision,
      "One threshold and band for every file; by default JPEG files get their own, chosen on the validation JPEGs",
      NULL },
    { "no-fusion", 0, 0, G_OPTION_ARG_NONE, &no_fusion,
      "With a CNN or a tile head in the backbone: do not fuse its score with the heads' (fused by default, fitted "
      "on the validation split; the CNN's top-block score when there is a CNN)", NULL },
    { "jpeg-fusion", 0, 0, G_OPTION_ARG_NONE, &jpeg_fusion,
      "Files judged as JPEG get fusion weights of their own, fitted on the validation JPEGs alone (the shared "
      "weights, fitted on every validation file, serve the others)", NULL },
    { "band-edges", 0, 0, G_OPTION_ARG_STRING, &band_edges,
      "How the inconclusive band's edges are found on the validation split, where calls keep 95 % precision: "
      "\"first-break\" (the default: the last cut before the first that falls under it, scanning down from the top "
      "and up from the bottom) or \"most-calls\" (the lowest and highest cuts whose calls together keep it). The "
      "JPEG files' own decision keeps first-break", "RULE" },
    { "no-cache", 0, 0, G_OPTION_ARG_NONE, &no_cache, "Do not read or write the feature cache", NULL },
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device", "INDEX|NAME" },
    { "backbone", 'b', 0, G_OPTION_ARG_STRING, &backbone, "Backbone (default)", "SPEC" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress output", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) oc = g_option_context_new ("- train the DCR detector heads");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!dcr_cli_parse (oc, entries, &argc, &argv))
    return 2;
  if (!real_dirs || !fake_dirs || !out || argc > 1)
    {
      fprintf (stderr, "dcr: train needs --real DIR --fake DIR --out MODEL (see `dcr train --help`)\n");
      return 2;
    }
  if (!val_real_dirs != !val_fake_dirs)
    {
      fprintf (stderr, "dcr: a validation set needs both --val-real and --val-fake\n");
      return 2;
    }
  if (jpeg_fusion && (single_decision || no_fusion))
    {
      fprintf (stderr, "dcr: --jpeg-fusion goes with the JPEG decision and the score fusion: leave out %s\n",
               single_decision ? "--single-decision" : "--no-fusion");
      return 2;
    }
  DcrBandRule band_rule = DCR_BAND_FIRST_BREAK;
  if (band_edges && !dcr_metrics_band_rule_from_name (band_edges, &band_rule))
    {
      fprintf (stderr, "dcr: --band-edges is \"first-break\" or \"most-calls\", not \"%s\"\n", band_edges);
      return 2;
    }
  if (from_reals && !bank_path)
    {
      fprintf (stderr, "dcr: --bank-from-reals needs --bank BANK\n");
      return 2;
    }
  if (epochs < 1 || batch < 2 || k < 1 || k > 32 || hidden < 1 || head_hidden < 1 || !(lr > 0) || wd < 0)
    {
      fprintf (stderr, "dcr: train: epochs ≥ 1, batch ≥ 2, k in 1…32, widths ≥ 1, lr > 0, weight decay ≥ 0\n");
      return 2;
    }
  if (moco && (moco_queue < 1 || !(lambda_infonce > 0) || !(moco_momentum > 0 && moco_momentum < 1)))
    {
      fprintf (stderr, "dcr: train: --moco needs --moco-queue ≥ 1, --lambda-infonce > 0 and --moco-momentum in (0, 1)\n");
      return 2;
    }
  g_autofree char *ck = checkpoint ? g_strdup (checkpoint) : g_strconcat (out, ".checkpoint", NULL);
  DcrAugmentConfig aug = { 0 };
  {
    g_autoptr (GError) aerr = NULL;
    if (augment && !dcr_augment_config_parse (augment, &aug, &aerr))
      {
        fprintf (stderr, "dcr: train: --augment: %s\n", aerr->message);
        return 2;
      }
  }
  g_autofree char *aug_desc = aug.views ? dcr_augment_config_to_string (&aug) : NULL;

  g_autoptr (GError) err = NULL;
  DcrContextOptions copts = { .device = device };
  g_autoptr (DcrContext) ctx = dcr_context_new (&copts, &err);
  if (!ctx)
    return dcr_cli_fail (err);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, backbone, DCR_F32, &err);
  if (!bb)
    return dcr_cli_fail (err);
  guint dim = dcr_backbone_dim (bb);

  /* every folder, real-labelled ones first (the pairs CSV indexes rely on it) */
  typedef struct {
    const char *dir;
    gint32 cls;
    gboolean bank;  /* its images may go into the bank */
    gboolean val;   /* validation only */
  } Source;
  g_autoptr (GArray) sources = g_array_new (FALSE, FALSE, sizeof (Source));
  const struct { char **dirs; gint32 cls; gboolean bank, val; } groups[] = {
    { real_dirs, 0, TRUE, FALSE }, { neg_dirs, 0, FALSE, FALSE }, { val_real_dirs, 0, FALSE, TRUE },
    { fake_dirs, 1, FALSE, FALSE }, { val_fake_dirs, 1, FALSE, TRUE },
  };
  for (gsize g = 0; g < G_N_ELEMENTS (groups); g++)
    for (guint i = 0; groups[g].dirs && groups[g].dirs[i]; i++)
      g_array_append_val (sources, ((Source) { groups[g].dirs[i], groups[g].cls, groups[g].bank, groups[g].val }));
  guint n_sources = sources->len;
  g_auto (Folders) all = { g_new0 (Folder, n_sources), n_sources };
  Folder *folders = all.f;
  gboolean ok = TRUE;
  for (guint i = 0; ok && i < n_sources; i++)
    ok = dcr_cli_folder_features (bb, g_array_index (sources, Source, i).dir, !no_cache, quiet, &folders[i].features,
                                  &folders[i].items, &folders[i].n, &err);
  /* the augmented views of the training folders (validation stays clean) */
  for (guint i = 0; ok && aug.views && i < n_sources; i++)
    {
      Folder *fo = &folders[i];
      if (g_array_index (sources, Source, i).val || !fo->n)
        continue;
      fo->views = g_new (float, (gsize) aug.views * fo->n * dim);
      g_autofree char **paths = g_new0 (char *, fo->n + 1);
      for (guint j = 0; j < fo->n; j++)
        paths[j] = fo->items[j].path;
      for (guint v = 1; ok && v <= aug.views; v++)
        {
          g_autofree DcrFeatureItem *vi = g_new0 (DcrFeatureItem, fo->n);
          float *vf = fo->views + (gsize) (v - 1) * fo->n * dim;
          g_autofree char *what = g_strdup_printf ("view %u/%u of %s", v, aug.views, g_array_index (sources, Source, i).dir);
          DcrCliProgress pr = { what, .quiet = quiet };
          ok = dcr_features_extract_view (bb, (const char *const *) paths, fo->n, !no_cache, 8, &aug, v, vf, vi,
                                          dcr_cli_progress, &pr, &err);
          for (guint j = 0; j < fo->n; j++)
            {
              /* a view that could not be made is the clean feature again */
              if (ok && vi[j].error && !fo->items[j].error)
                {
                  fprintf (stderr, "dcr: view %u of %s: %s (the clean image is used)\n", v, paths[j], vi[j].error->message);
                  memcpy (vf + (gsize) j * dim, fo->features + (gsize) j * dim, dim * sizeof (float));
                }
              dcr_feature_item_clear (&vi[j]);
            }
        }
    }
  gsize total = 0;
  for (guint i = 0; i < n_sources; i++)
    total += folders[i].n;
  if (!ok)
    return dcr_cli_fail (err);

  /* the samples that have a feature */
  gsize n = 0;
  g_autofree float *features = g_new (float, (total + 1) * dim);
  g_autofree gint32 *labels = g_new (gint32, total + 1);
  g_autofree gint64 *pair = g_new (gint64, total + 1);
  g_autofree gboolean *held_out = g_new0 (gboolean, total + 1);
  g_autofree gboolean *jpeg = g_new0 (gboolean, total + 1);
  /* where each sample's views are: folder and file */
  g_autofree guint *from_folder = g_new (guint, total + 1), *from_file = g_new (guint, total + 1);
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  g_auto (Index) reals = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL),
                           g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL) };
  g_auto (Index) fakes = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL),
                           g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL) };
  g_auto (Index) everyone = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL),
                              g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL) };
  gsize n_real = 0;
  /* the bank candidates: training reals of --real folders */
  g_autoptr (GArray) bank_rows = g_array_new (FALSE, FALSE, sizeof (gsize));
  g_autoptr (GPtrArray) bank_items = g_ptr_array_new ();
  for (guint f = 0; f < n_sources; f++)
    {
      const Source *src = &g_array_index (sources, Source, f);
      for (guint i = 0; i < folders[f].n; i++)
        {
          const DcrFeatureItem *it = &folders[f].items[i];
          if (it->error)
            continue;
          memcpy (features + n * dim, folders[f].features + (gsize) i * dim, dim * sizeof (float));
          labels[n] = src->cls;
          from_folder[n] = f;
          from_file[n] = i;
          pair[n] = -1;
          held_out[n] = src->val;
          jpeg[n] = dcr_feature_item_judged_as_jpeg (it);
          g_ptr_array_add (keys, g_strdup (it->sha256));
          index_add (src->cls ? &fakes : &reals, it->path, src->cls ? (gint64) (n - n_real) : (gint64) n);
          index_add (&everyone, it->path, (gint64) n);
          if (src->bank)
            {
              g_array_append_val (bank_rows, n);
              g_ptr_array_add (bank_items, (gpointer) it);
            }
          n++;
        }
      if (src->cls == 0)
        n_real = n;
    }
  /* the samples' own hashes, before groups replace their keys */
  g_autoptr (GHashTable) key_of_sha = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) shas = g_ptr_array_new_with_free_func (g_free);
  for (gsize s = 0; s < n; s++)
    g_ptr_array_add (shas, g_strdup (keys->pdata[s]));
  if (groups_csv && !read_groups (groups_csv, &everyone, keys, &err))
    return dcr_cli_fail (err);
  for (gsize s = 0; s < n; s++)
    g_hash_table_insert (key_of_sha, shas->pdata[s], keys->pdata[s]);
  g_ptr_array_add (keys, NULL);
  /* views [V, n, dim]; a sample of a folder without views repeats its clean feature */
  g_autofree float *views = NULL;
  if (aug.views)
    {
      views = g_new (float, (gsize) aug.views * MAX (n, 1) * dim);
      for (guint v = 0; v < aug.views; v++)
        for (gsize s = 0; s < n; s++)
          {
            const Folder *fo = &folders[from_folder[s]];
            const float *srcf = fo->views ? fo->views + ((gsize) v * fo->n + from_file[s]) * dim : features + s * dim;
            memcpy (views + ((gsize) v * n + s) * dim, srcf, dim * sizeof (float));
          }
    }
  if (pairs && !read_pairs (pairs, &fakes, &reals, n_real, pair, &err))
    return dcr_cli_fail (err);

  /* the bank: created or extended from the reals when asked */
  g_autoptr (DcrBank) bank = NULL;
  g_autoptr (DcrRetrieval) retrieval = NULL;
  g_autoptr (GPtrArray) bank_keys = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) bank_pinned = g_array_new (FALSE, TRUE, sizeof (gboolean));
  guint n_pinned = 0;
  if (bank_path)
    {
      if (from_reals && !g_file_test (bank_path, G_FILE_TEST_EXISTS))
        bank = dcr_bank_create (bank_path, dcr_backbone_id (bb), dim, &err);
      else
        bank = dcr_bank_open (bank_path, dcr_backbone_id (bb), dim, !from_reals, &err);
      if (!bank)
        return dcr_cli_fail (err);
      if (from_reals)
        {
          guint nb = bank_rows->len;
          g_autofree DcrPrototypeNew *items = g_new0 (DcrPrototypeNew, MAX (nb, 1));
          g_autofree gint64 *ids = g_new (gint64, MAX (nb, 1));
          g_autoptr (GPtrArray) thumbs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
          for (guint i = 0; i < nb; i++)
            {
              const DcrFeatureItem *it = bank_items->pdata[i];
              /* a thumbnail for the bank's provenance; the file is read
               * again (read-only), and a failure only costs the picture */
              g_autoptr (DcrImage) img = dcr_image_load (it->path, NULL, NULL);
              GBytes *thumb = img ? dcr_image_thumbnail_png (img, 128, NULL) : NULL;
              if (thumb)
                g_ptr_array_add (thumbs, thumb);
              items[i] = (DcrPrototypeNew) { .feature = features + g_array_index (bank_rows, gsize, i) * dim,
                                             .source = it->path, .sha256 = it->sha256, .thumbnail = thumb,
                                             .note = "added by dcr train" };
            }
          if (!dcr_bank_add (bank, items, nb, TRUE, ids, &err))
            return dcr_cli_fail (err);
          guint added = 0;
          for (guint i = 0; i < nb; i++)
            added += ids[i] > 0;
          if (!quiet)
            fprintf (stderr, "dcr: %u real prototypes added to %s (%u already there)\n", added, bank_path, nb - added);
        }
      retrieval = dcr_retrieval_new (ctx, dim, DCR_F32, 256, &err);
      if (!retrieval || !dcr_retrieval_sync (retrieval, bank, NULL, &err))
        return dcr_cli_fail (err);
      g_autoptr (GPtrArray) protos = dcr_bank_list_full (bank, DCR_BANK_LIST_NO_THUMBNAILS, &err);
      if (!protos)
        return dcr_cli_fail (err);
      g_autoptr (GHashTable) by_id = g_hash_table_new (g_int64_hash, g_int64_equal);
      for (guint i = 0; i < protos->len; i++)
        {
          DcrPrototype *p = protos->pdata[i];
          g_hash_table_insert (by_id, &p->id, p);
        }
      for (gsize i = 0; i < dcr_retrieval_count (retrieval); i++)
        {
          gint64 id = dcr_retrieval_id_at (retrieval, i);
          DcrPrototype *p = g_hash_table_lookup (by_id, &id);
          gboolean pin = p && p->pinned;
          /* a prototype of a training file has that file's key (its group's, with --groups) */
          const char *key = p && p->sha256 ? g_hash_table_lookup (key_of_sha, p->sha256) : NULL;
          g_ptr_array_add (bank_keys, g_strdup (key ? key : p ? p->sha256 : NULL));
          g_array_append_val (bank_pinned, pin);
          n_pinned += pin;
        }
      if (moco && n_pinned && !quiet)
        fprintf (stderr, "dcr: %u pinned prototypes stay in the MoCo queue as negatives\n", n_pinned);
    }
  else if (!quiet)
    fprintf (stderr, "dcr: no --bank: each sample is compared with one other real image (pair mode); scanning "
                     "will need a bank\n");

  {
    DcrModelConfig cfg = { .backbone_id = (char *) dcr_backbone_id (bb), .dim = dim, .k = (guint) k,
                           .hidden = (guint) hidden, .head_hidden = (guint) head_hidden, .gate = !no_gate };
    g_autoptr (DcrModel) m = dcr_model_new (ctx, &cfg, (guint64) seed, &err);
    if (!m)
      return dcr_cli_fail (err);
    DcrTrainData data = { features, labels, pair, (const char *const *) keys->pdata, n, retrieval,
                          bank_keys->len ? (const char *const *) bank_keys->pdata : NULL,
                          val_real_dirs ? held_out : NULL, views, aug.views, aug_desc,
                          n_pinned ? (const gboolean *) bank_pinned->data : NULL, jpeg };
    /* the score fused with the heads' logit: the CNN's top blocks when the
       backbone has the CNN (the stronger evidence), else the tile score */
    gboolean cnn = dcr_backbone_has_cnn (bb), tiles = dcr_backbone_has_tiles (bb);
    guint fusion_column = cnn ? dcr_backbone_cnn_column (bb) + 1 : tiles ? dcr_backbone_tiles_column (bb) : 0;
    const char *fusion_what = cnn ? "CNN top-block score" : "tile score";
    DcrTrainOptions o = { .epochs = (guint) epochs, .batch = (guint) batch, .seed = (guint64) seed, .lr = lr,
                          .warmup = (guint) warmup, .weight_decay = wd, .val_fraction = val, .checkpoint = ck,
                          .resume = resume, .fusion = (cnn || tiles) && !no_fusion, .fusion_column = fusion_column,
                          .jpeg_decision = !single_decision, .jpeg_fusion = jpeg_fusion,
                          .band_rule = band_rule,
                          .loss = { .lambda_bce = (float) lambda_bce, .lambda_supcon = (float) lambda_supcon,
                                    .moco = moco, .moco_queue = (guint) moco_queue,
                                    .lambda_infonce = (float) lambda_infonce, .moco_momentum = (float) moco_momentum } };
    if (!quiet)
      fprintf (stderr, "dcr: training on %" G_GSIZE_FORMAT " real and %" G_GSIZE_FORMAT " fake images, %s, %s%s%s\n",
               n_real, n - n_real, dcr_backbone_id (bb), dcr_context_device (ctx)->name,
               aug_desc ? "; augmented views: " : "", aug_desc ? aug_desc : "");
    DcrTrainSummary sum;
    if (!dcr_train_run (m, &data, &o, quiet ? NULL : on_epoch, NULL, &sum, &err) || !dcr_model_save (m, out, &err))
      return dcr_cli_fail (err);
    printf ("model: %s\n", out);
    printf ("trained: %u epochs on %u samples (%u held out), %u prototype%s per image\n", sum.epochs_run,
            sum.n_train, sum.n_val, sum.tokens, sum.tokens == 1 ? "" : "s");
    printf ("loss: %.4f -> %.4f\n", sum.first_loss, sum.last_loss);
    if (sum.fusion)
      printf ("fusion: p_fake = sigmoid(%.4f * heads' logit + %.4f * %s (column %u) + %.4f); validation AUC "
              "of the heads alone %.4f\n", sum.fusion_w[0], sum.fusion_w[1], fusion_what, o.fusion_column, sum.fusion_w[2],
              sum.val_auc_heads);
    else if (o.fusion)
      printf ("fusion: none (no validation split to fit it on)\n");
    if (sum.n_val)
      printf ("validation: AUC %.4f, AP %.4f, EER %.4f\n", sum.val_auc, sum.val_ap, sum.val_eer);
    if (sum.jpeg_decision)
      {
        printf ("threshold: %.4f, inconclusive band [%.4f, %.4f) for files other than JPEG (validation AUC %.4f "
                "on %u)\n", sum.threshold, sum.band_lo, sum.band_hi, sum.val_auc_other, sum.n_val - sum.n_val_jpeg);
        printf ("JPEG files: threshold %.4f, inconclusive band [%.4f, %.4f) (validation AUC %.4f on %u)\n",
                sum.jpeg.threshold, sum.jpeg.band_lo, sum.jpeg.band_hi, sum.val_auc_jpeg, sum.n_val_jpeg);
        if (sum.fusion_jpeg)
          printf ("JPEG files: fusion: p_fake = sigmoid(%.4f * heads' logit + %.4f * %s + %.4f); validation AUC "
                  "on them %.4f with the shared fusion\n", sum.fusion_jpeg_w[0], sum.fusion_jpeg_w[1], fusion_what,
                  sum.fusion_jpeg_w[2], sum.val_auc_jpeg_shared);
      }
    else
      printf ("threshold: %.4f, inconclusive band [%.4f, %.4f)\n", sum.threshold, sum.band_lo, sum.band_hi);
    if (jpeg_fusion && !sum.fusion_jpeg)
      printf ("JPEG files: no fusion of their own (no JPEG decision or no fusion to go with)\n");
  }

  return 0;
}
