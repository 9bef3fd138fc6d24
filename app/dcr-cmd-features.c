/* dcr-cmd-features.c — `dcr features`: the backbone's feature vector of each
 * image (what the bank stores and the detector compares), as text or JSON.
 * Files that cannot be read are reported one by one; the exit status is 1
 * if any failed. */
#include "dcr-cli.h"
#include "dcr-cli-detect.h"
#include "dcr-backbone.h"
#include "dcr-walk.h"

#include <json-glib/json-glib.h>
#include <stdio.h>

typedef struct {
  const char *path;
  char *sha256;
  DcrImage *img;
  GError *error;
} Item;

static void
item_clear (Item *it)
{
  g_free (it->sha256);
  dcr_image_free (it->img);
  g_clear_error (&it->error);
}

static JsonNode *
item_json (DcrBackbone *bb, const Item *it, const float *f)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "file");
  json_builder_add_string_value (b, it->path);
  if (it->error)
    {
      json_builder_set_member_name (b, "error");
      json_builder_add_string_value (b, it->error->message);
    }
  else
    {
      json_builder_set_member_name (b, "sha256");
      json_builder_add_string_value (b, it->sha256);
      json_builder_set_member_name (b, "width");
      json_builder_add_int_value (b, it->img->width);
      json_builder_set_member_name (b, "height");
      json_builder_add_int_value (b, it->img->height);
      json_builder_set_member_name (b, "features");
      json_builder_begin_array (b);
      for (guint i = 0; i < dcr_backbone_dim (bb); i++)
        json_builder_add_double_value (b, f[i]);
      json_builder_end_array (b);
    }
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/* Hash and decode; the file is opened read-only by both. */
static void
load_item (Item *it)
{
  it->img = dcr_cli_load_image (it->path, &it->sha256, &it->error);
}

int
dcr_cmd_features (int argc, char **argv)
{
  const char *device = NULL, *backbone = "default", *dtype_name = "f32";
  gboolean json = FALSE;
  int batch = 8;
  GOptionEntry entries[] = {
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device", "INDEX|NAME" },
    { "backbone", 'b', 0, G_OPTION_ARG_STRING, &backbone, "default, mobilenet_v2:PATH, resnet50:PATH or clip-vit-l14:PATH", "SPEC" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_name, "f32 or f16 (storage)", "TYPE" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Images per GPU batch (default 8)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) oc = g_option_context_new ("PATH… - print backbone features");
  g_option_context_set_description (oc, "PATH is an image file or a folder, walked recursively in name order.");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!dcr_cli_parse (oc, entries, &argc, &argv))
    return 2;
  if (argc < 2)
    {
      fprintf (stderr, "dcr: features: give at least one image or folder\n");
      return 2;
    }
  g_autoptr (GError) walk_err = NULL;
  g_autoptr (GArray) walked = dcr_walk_collect ((const char *const *) argv + 1, (guint) argc - 1, &walk_err);
  if (!walked)
    {
      fprintf (stderr, "dcr: features: %s\n", walk_err->message);
      return 1;
    }
  const DcrWalkEntry *ent = (const DcrWalkEntry *) walked->data;
  int total = (int) walked->len;
  DcrDtype dtype;
  g_autoptr (GError) dtype_err = NULL;
  if (!dcr_cli_dtype_from_name (dtype_name, &dtype, &dtype_err))
    {
      fprintf (stderr, "dcr: %s\n", dtype_err->message);
      return 2;
    }

  g_autoptr (GError) err = NULL;
  DcrContextOptions copts = { .device = device };
  g_autoptr (DcrContext) ctx = dcr_context_new (&copts, &err);
  if (!ctx)
    return dcr_cli_fail (err);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, backbone, dtype, &err);
  if (!bb)
    return dcr_cli_fail (err);
  guint b = (guint) CLAMP (batch, 1, (int) dcr_backbone_max_batch (bb));
  b = MIN (b, (guint) total);
  g_autoptr (DcrBackboneRun) run = dcr_backbone_run_new (bb, b, &err);
  if (!run)
    return dcr_cli_fail (err);

  guint dim = dcr_backbone_dim (bb);
  g_autofree float *feats = g_new (float, (gsize) b * dim);
  g_autofree Item *items = g_new0 (Item, b);
  g_autoptr (JsonArray) out = json_array_new ();
  int failed = 0;
  if (!json)
    printf ("# backbone %s, %u features (taps:", dcr_backbone_id (bb), dim);
  for (guint t = 0; !json && t < dcr_backbone_n_taps (bb); t++)
    printf (" %s %u–%u", dcr_backbone_tap (bb, t)->name, dcr_backbone_tap (bb, t)->offset,
            dcr_backbone_tap (bb, t)->offset + dcr_backbone_tap (bb, t)->width - 1);
  if (!json)
    printf (")\n");

  for (int start = 0; start < total; start += (int) b)
    {
      guint n = MIN (b, (guint) (total - start));
      for (guint i = 0; i < n; i++)
        {
          items[i] = (Item) { ent[start + i].path };
          if (ent[start + i].reason)
            items[i].error = g_error_new_literal (G_FILE_ERROR, G_FILE_ERROR_FAILED, ent[start + i].reason);
          else
            load_item (&items[i]);
          if (!items[i].error)
            dcr_backbone_run_set_image (run, i, items[i].img, &items[i].error);
        }
      if (!dcr_backbone_run_forward (run, &err) || !dcr_backbone_run_features (run, feats, &err))
        return dcr_cli_fail (err);
      for (guint i = 0; i < n; i++)
        {
          Item *it = &items[i];
          if (it->error)
            {
              failed++;
              if (!json)
                fprintf (stderr, "dcr: %s\n", it->error->message);
            }
          if (json)
            json_array_add_element (out, item_json (bb, it, feats + (gsize) i * dim));
          else if (!it->error)
            {
              printf ("%s", it->path);
              for (guint k = 0; k < dim; k++)
                printf (" %.6g", feats[(gsize) i * dim + k]);
              printf ("\n");
            }
          item_clear (it);
        }
    }
  if (json)
    {
      g_autoptr (JsonBuilder) jb = json_builder_new ();
      json_builder_begin_object (jb);
      json_builder_set_member_name (jb, "backbone");
      json_builder_add_string_value (jb, dcr_backbone_id (bb));
      json_builder_set_member_name (jb, "dim");
      json_builder_add_int_value (jb, dim);
      json_builder_set_member_name (jb, "taps");
      json_builder_begin_array (jb);
      for (guint t = 0; t < dcr_backbone_n_taps (bb); t++)
        {
          const DcrBackboneTap *tap = dcr_backbone_tap (bb, t);
          json_builder_begin_object (jb);
          json_builder_set_member_name (jb, "name");
          json_builder_add_string_value (jb, tap->name);
          json_builder_set_member_name (jb, "offset");
          json_builder_add_int_value (jb, tap->offset);
          json_builder_set_member_name (jb, "width");
          json_builder_add_int_value (jb, tap->width);
          json_builder_end_object (jb);
        }
      json_builder_end_array (jb);
      json_builder_set_member_name (jb, "images");
      json_builder_add_value (jb, json_node_init_array (json_node_alloc (), out));
      json_builder_end_object (jb);
      g_autoptr (JsonNode) root = json_builder_get_root (jb);
      g_autofree char *s = json_to_string (root, TRUE);
      printf ("%s\n", s);
    }
  return failed ? 1 : 0;
}
