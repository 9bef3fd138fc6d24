/* dcr-cmd-bank.c — `dcr bank`: looks after a bank of real prototypes
 * (info, list, add, remove, disable/enable, pin/unpin, note, export, import,
 * audit, dedup, prune). Only `add` runs the backbone; dedup and prune
 * compare the stored features on the GPU; the rest open the bank as it is. */
#include "dcr-cli.h"
#include "dcr-cli-detect.h"
#include "dcr-bank-curate.h"

#include <stdio.h>
#include <string.h>

enum {
  OPT_JSON = 1 << 0,
  OPT_CHECK = 1 << 1,
  OPT_ADD = 1 << 2,   /* --create --backbone --device --note --no-cache --quiet */
  OPT_LIMIT = 1 << 3,
  OPT_CURATE = 1 << 4, /* --apply --remove --device --quiet */
  OPT_THRESHOLD = 1 << 5,
  OPT_KEEP = 1 << 6,
};

typedef struct {
  const char *name;
  const char *args;     /* after BANK */
  const char *summary;
  guint opts;
  int min_args, max_args; /* after BANK; -1 = any */
} BankSub;

static const BankSub subs[] = {
  { "info", "", "Backbone, width, counts; --check runs the integrity check", OPT_JSON | OPT_CHECK, 0, 0 },
  { "list", "", "Every prototype with its provenance", OPT_JSON, 0, 0 },
  { "add", "DIR…", "Add the images under folders as prototypes (duplicates skipped)", OPT_ADD, 1, -1 },
  { "remove", "ID…", "Delete prototypes", 0, 1, -1 },
  { "disable", "ID…", "Keep prototypes but hide them from retrieval", 0, 1, -1 },
  { "enable", "ID…", "Let retrieval see prototypes again", 0, 1, -1 },
  { "pin", "ID…", "Protect prototypes from pruning", 0, 1, -1 },
  { "unpin", "ID…", "Remove the protection", 0, 1, -1 },
  { "note", "ID TEXT", "Set a prototype's note", 0, 2, 2 },
  { "export", "DEST", "Copy the bank into a new file", 0, 1, 1 },
  { "import", "SRC", "Add another bank's prototypes (same backbone; duplicates skipped)", 0, 1, 1 },
  { "audit", "", "The log of changes, newest first", OPT_JSON | OPT_LIMIT, 0, 0 },
  { "dedup", "", "Near-duplicate prototypes (cosine ≥ τ); --apply disables all but one of each group",
    OPT_JSON | OPT_CURATE | OPT_THRESHOLD, 0, 0 },
  { "prune", "", "Keep --keep N prototypes by greedy k-center (pinned kept); --apply disables the rest",
    OPT_JSON | OPT_CURATE | OPT_KEEP, 0, 0 },
};

static void
usage (FILE *out)
{
  fprintf (out, "Usage: dcr bank COMMAND BANK [ARGS…] [OPTIONS…]\n\nLook after a bank of real prototypes.\n\n"
                "Commands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS (subs); i++)
    {
      g_autofree char *head = g_strdup_printf ("%s BANK %s", subs[i].name, subs[i].args);
      /* padded by characters, not bytes: "…" is three bytes wide in UTF-8 */
      glong pad = MAX (0, 22 - g_utf8_strlen (head, -1));
      fprintf (out, "  %s%*s %s\n", head, (int) pad, "", subs[i].summary);
    }
  fprintf (out, "\nRun `dcr bank COMMAND --help` for a command's options.\n");
}

/* The message names the bank, whatever part of the engine wrote it. */
static int
fail (const char *path, GError *err)
{
  if (err && !strstr (err->message, path))
    g_prefix_error (&err, "%s: ", path);
  return dcr_cli_fail (err);
}

static DcrBank *
open_existing (const char *path, const char *backbone_id, guint dim, gboolean read_only, GError **error)
{
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_IO, "%s: no such bank (`dcr bank add --create %s DIR` makes one)",
                   path, path);
      return NULL;
    }
  return dcr_bank_open (path, backbone_id, dim, read_only, error);
}

/* IDs as given on the command line; anything but a positive integer is a
 * usage error. */
static gint64 *
parse_ids (char **args, int n)
{
  g_autofree gint64 *ids = g_new (gint64, MAX (n, 1));
  for (int i = 0; i < n; i++)
    {
      char *end = NULL;
      gint64 v = g_ascii_strtoll (args[i], &end, 10);
      if (!*args[i] || *end || v <= 0)
        {
          fprintf (stderr, "dcr: bank: \"%s\" is not a prototype id (a positive integer, see `dcr bank list`)\n",
                   args[i]);
          return NULL;
        }
      ids[i] = v;
    }
  return g_steal_pointer (&ids);
}

/* JSON keeps the full ISO 8601 time; a person reads seconds, in UTC. */
static char *
time_str (GDateTime *t, gboolean json)
{
  if (!t)
    return g_strdup ("");
  return json ? g_date_time_format_iso8601 (t) : g_date_time_format (t, "%Y-%m-%d %H:%M:%SZ");
}

static void
print_json (JsonBuilder *b)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *s = json_to_string (root, TRUE);
  printf ("%s\n", s);
}

static void
add_string (JsonBuilder *b, const char *name, const char *v)
{
  json_builder_set_member_name (b, name);
  if (v)
    json_builder_add_string_value (b, v);
  else
    json_builder_add_null_value (b);
}

static void
add_int (JsonBuilder *b, const char *name, gint64 v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, v);
}

static int
cmd_info (const char *path, gboolean json, gboolean check)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = open_existing (path, NULL, 0, TRUE, &err);
  if (!bank)
    return fail (path, g_steal_pointer (&err));
  g_autoptr (GPtrArray) protos = dcr_bank_list_full (bank, DCR_BANK_LIST_NO_THUMBNAILS, &err);
  if (!protos)
    return fail (path, g_steal_pointer (&err));
  gint64 pinned = 0;
  for (guint i = 0; i < protos->len; i++)
    pinned += ((DcrPrototype *) protos->pdata[i])->pinned;
  gint64 total = dcr_bank_count (bank, FALSE), enabled = dcr_bank_count (bank, TRUE);
  gboolean ok = !check || dcr_bank_check (bank, &err);
  const char *integrity = !check ? "not checked (--check)" : ok ? "ok" : err->message;
  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      add_string (b, "path", dcr_bank_path (bank));
      add_string (b, "backbone", dcr_bank_backbone_id (bank));
      add_int (b, "dim", dcr_bank_dim (bank));
      add_string (b, "uuid", dcr_bank_uuid (bank));
      add_int (b, "schema", DCR_BANK_SCHEMA_VERSION);
      add_int (b, "total", total);
      add_int (b, "enabled", enabled);
      add_int (b, "pinned", pinned);
      json_builder_set_member_name (b, "integrity");
      if (check)
        json_builder_add_string_value (b, ok ? "ok" : err->message);
      else
        json_builder_add_null_value (b);
      json_builder_end_object (b);
      print_json (b);
    }
  else
    {
      printf ("bank: %s\n", dcr_bank_path (bank));
      printf ("backbone: %s\n", dcr_bank_backbone_id (bank));
      printf ("feature width: %u\n", dcr_bank_dim (bank));
      printf ("uuid: %s\n", dcr_bank_uuid (bank));
      printf ("schema: %d\n", DCR_BANK_SCHEMA_VERSION);
      printf ("prototypes: %" G_GINT64_FORMAT " (%" G_GINT64_FORMAT " enabled, %" G_GINT64_FORMAT " pinned)\n", total,
              enabled, pinned);
      printf ("integrity: %s\n", integrity);
    }
  if (!ok)
    return fail (path, g_steal_pointer (&err));
  return 0;
}

static int
cmd_list (const char *path, gboolean json)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = open_existing (path, NULL, 0, TRUE, &err);
  if (!bank)
    return fail (path, g_steal_pointer (&err));
  g_autoptr (GPtrArray) protos = dcr_bank_list_full (bank, DCR_BANK_LIST_NO_THUMBNAILS, &err);
  if (!protos)
    return fail (path, g_steal_pointer (&err));
  g_autoptr (JsonBuilder) b = json ? json_builder_new () : NULL;
  if (b)
    json_builder_begin_array (b);
  else
    printf ("%6s  %-3s  %-3s  %10s  %-20s  %-12s  %s\n", "id", "on", "pin", "retrievals", "added", "sha256", "source");
  for (guint i = 0; i < protos->len; i++)
    {
      DcrPrototype *p = protos->pdata[i];
      g_autofree char *added = time_str (p->added, json);
      if (b)
        {
          json_builder_begin_object (b);
          add_int (b, "id", p->id);
          json_builder_set_member_name (b, "enabled");
          json_builder_add_boolean_value (b, p->enabled);
          json_builder_set_member_name (b, "pinned");
          json_builder_add_boolean_value (b, p->pinned);
          add_int (b, "retrievals", p->retrievals);
          add_string (b, "added", added);
          add_string (b, "source", p->source);
          add_string (b, "sha256", p->sha256);
          add_string (b, "note", p->note);
          json_builder_end_object (b);
          continue;
        }
      g_autofree char *sha = g_strndup (p->sha256 ? p->sha256 : "-", 12);
      printf ("%6" G_GINT64_FORMAT "  %-3s  %-3s  %10" G_GINT64_FORMAT "  %-20s  %-12s  %s%s%s\n", p->id,
              p->enabled ? "yes" : "no", p->pinned ? "yes" : "no", p->retrievals, added, sha,
              p->source ? p->source : "-", p->note && *p->note ? "  # " : "", p->note ? p->note : "");
    }
  if (b)
    {
      json_builder_end_array (b);
      print_json (b);
    }
  return 0;
}

static int
cmd_add (const char *path, char **dirs, int n_dirs, gboolean create, const char *backbone, const char *device,
         const char *note, gboolean no_cache, gboolean quiet)
{
  g_autoptr (GError) err = NULL;
  gboolean exists = g_file_test (path, G_FILE_TEST_EXISTS);
  if (!exists && !create)
    {
      fprintf (stderr, "dcr: %s: no such bank; pass --create to make a new one\n", path);
      return 1;
    }
  /* a bank of another backbone is refused before the images are read */
  if (exists)
    {
      g_autoptr (DcrBank) probe = dcr_bank_open (path, NULL, 0, TRUE, &err);
      if (!probe)
        return fail (path, g_steal_pointer (&err));
    }

  DcrContextOptions copts = { .device = device };
  g_autoptr (DcrContext) ctx = dcr_context_new (&copts, &err);
  if (!ctx)
    return dcr_cli_fail (err);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, backbone, DCR_F32, &err);
  if (!bb)
    return dcr_cli_fail (err);
  guint dim = dcr_backbone_dim (bb);
  g_autoptr (DcrBank) bank = exists ? dcr_bank_open (path, dcr_backbone_id (bb), dim, FALSE, &err)
                                    : dcr_bank_create (path, dcr_backbone_id (bb), dim, &err);
  if (!bank)
    return fail (path, g_steal_pointer (&err));
  if (!exists && !quiet)
    fprintf (stderr, "dcr: created %s for %s (%u-wide features)\n", path, dcr_backbone_id (bb), dim);

  guint added = 0, skipped = 0, failed = 0;
  for (int d = 0; d < n_dirs; d++)
    {
      g_autoptr (GPtrArray) files = dcr_list_images (dirs[d], &err);
      if (!files)
        return fail (path, g_steal_pointer (&err));
      guint n = files->len;
      g_autofree float *features = g_new0 (float, (gsize) MAX (n, 1) * dim);
      DcrFeatureItem *items = g_new0 (DcrFeatureItem, MAX (n, 1));
      g_autofree char *what = g_strdup_printf ("features of %s", dirs[d]);
      DcrCliProgress pr = { what, .quiet = quiet };
      /* thumbnails from the pixels decoded for the features: each file decoded once */
      if (!dcr_features_extract_thumbnails (bb, (const char *const *) files->pdata, n, !no_cache, 16, 128, features,
                                            items, dcr_cli_progress, &pr, &err))
        {
          for (guint i = 0; i < n; i++)
            dcr_feature_item_clear (&items[i]);
          g_free (items);
          return fail (path, g_steal_pointer (&err));
        }
      for (guint i = 0; i < n; i++)
        if (items[i].error)
          fprintf (stderr, "dcr: skipped %s\n", items[i].error->message);
      g_autofree DcrPrototypeNew *news = g_new0 (DcrPrototypeNew, MAX (n, 1));
      g_autofree gint64 *ids = g_new (gint64, MAX (n, 1));
      g_autoptr (GPtrArray) thumbs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
      g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
      guint m = 0;
      for (guint i = 0; i < n; i++)
        {
          if (items[i].error)
            {
              failed++;
              continue;
            }
          /* the same bytes twice in one folder count as one image */
          if (!g_hash_table_add (seen, items[i].sha256))
            {
              skipped++;
              continue;
            }
          /* a file that will not decode again still gets its prototype */
          GBytes *thumb = dcr_feature_item_thumbnail (&items[i], 128);
          if (thumb)
            g_ptr_array_add (thumbs, thumb);
          news[m++] = (DcrPrototypeNew) { .feature = features + (gsize) i * dim, .source = items[i].path,
                                          .sha256 = items[i].sha256, .thumbnail = thumb,
                                          .note = note ? note : "added by dcr bank add" };
        }
      gboolean ok = m == 0 || dcr_bank_add (bank, news, m, TRUE, ids, &err);
      for (guint i = 0; ok && i < m; i++)
        {
          added += ids[i] > 0;
          skipped += ids[i] <= 0;
        }
      for (guint i = 0; i < n; i++)
        dcr_feature_item_clear (&items[i]);
      g_free (items);
      if (!ok)
        return fail (path, g_steal_pointer (&err));
    }
  printf ("%s: %u added, %u skipped (already in the bank)%s", path, added, skipped, failed ? "" : "\n");
  if (failed)
    printf (", %u unreadable\n", failed);
  return 0;
}

static int
cmd_ids (const char *sub, const char *path, char **args, int n)
{
  g_autofree gint64 *ids = parse_ids (args, n);
  if (!ids)
    return 2;
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = open_existing (path, NULL, 0, FALSE, &err);
  if (!bank)
    return fail (path, g_steal_pointer (&err));
  gboolean on = sub[0] == 'e' || sub[0] == 'p';
  gboolean ok;
  const char *done;
  if (strcmp (sub, "remove") == 0)
    {
      ok = dcr_bank_remove (bank, ids, (guint) n, NULL, &err);
      done = "removed";
    }
  else if (g_str_has_suffix (sub, "able"))
    {
      ok = dcr_bank_set_enabled (bank, ids, (guint) n, on, &err);
      done = on ? "enabled" : "disabled";
    }
  else
    {
      ok = dcr_bank_set_pinned (bank, ids, (guint) n, on, &err);
      done = on ? "pinned" : "unpinned";
    }
  if (!ok)
    return fail (path, g_steal_pointer (&err));
  printf ("%s: %d prototype%s %s\n", path, n, n == 1 ? "" : "s", done);
  return 0;
}

static int
cmd_note (const char *path, const char *id_s, const char *text)
{
  char *ids_arg[] = { (char *) id_s };
  g_autofree gint64 *id = parse_ids (ids_arg, 1);
  if (!id)
    return 2;
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = open_existing (path, NULL, 0, FALSE, &err);
  if (!bank || !dcr_bank_set_note (bank, id[0], text, &err))
    return fail (path, g_steal_pointer (&err));
  return 0;
}

static int
cmd_export (const char *path, const char *dest)
{
  g_autoptr (GError) err = NULL;
  /* read-only: exporting never changes the source bank */
  g_autoptr (DcrBank) bank = open_existing (path, NULL, 0, TRUE, &err);
  if (!bank || !dcr_bank_export (bank, dest, &err))
    return fail (path, g_steal_pointer (&err));
  printf ("%s: exported to %s\n", path, dest);
  return 0;
}

static int
cmd_import (const char *path, const char *src)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = open_existing (path, NULL, 0, FALSE, &err);
  guint n = 0;
  if (!bank || !dcr_bank_import (bank, src, &n, &err))
    return fail (path, g_steal_pointer (&err));
  printf ("%s: %u prototype%s imported from %s\n", path, n, n == 1 ? "" : "s", src);
  return 0;
}

static int
cmd_audit (const char *path, gboolean json, int limit)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = open_existing (path, NULL, 0, TRUE, &err);
  if (!bank)
    return fail (path, g_steal_pointer (&err));
  g_autoptr (GPtrArray) log = dcr_bank_audit_log (bank, (guint) limit, &err);
  if (!log)
    return fail (path, g_steal_pointer (&err));
  g_autoptr (JsonBuilder) b = json ? json_builder_new () : NULL;
  if (b)
    json_builder_begin_array (b);
  for (guint i = 0; i < log->len; i++)
    {
      DcrBankAudit *a = log->pdata[i];
      g_autofree char *t = time_str (a->time, json);
      if (b)
        {
          json_builder_begin_object (b);
          add_string (b, "time", t);
          add_string (b, "action", a->action);
          add_string (b, "ids", a->ids);
          add_string (b, "detail", a->detail);
          json_builder_end_object (b);
        }
      else
        printf ("%-20s  %-8s  %s%s%s\n", t, a->action, a->ids && *a->ids ? a->ids : "-",
                a->detail && *a->detail ? "  " : "", a->detail ? a->detail : "");
    }
  if (b)
    {
      json_builder_end_array (b);
      print_json (b);
    }
  return 0;
}

static gboolean
curate_progress (gsize done, gsize total, gpointer data)
{
  return dcr_cli_progress ((guint) MIN (done, G_MAXUINT), (guint) MIN (total, G_MAXUINT), data);
}

static void
add_id_array (JsonBuilder *b, const char *name, GArray *ids)
{
  if (name)
    json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (guint i = 0; i < ids->len; i++)
    json_builder_add_int_value (b, g_array_index (ids, gint64, i));
  json_builder_end_array (b);
}

static char *
id_list (GArray *ids)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf (s, i ? " %" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, g_array_index (ids, gint64, i));
  return g_string_free (s, FALSE);
}

/* Disables (or removes) the prototypes a dedup or prune chose, in one
 * transaction; says how to undo a disable. */
static int
apply_drop (DcrBank *bank, const char *path, GArray *ids, gboolean remove, gboolean json)
{
  g_autoptr (GError) err = NULL;
  if (ids->len == 0)
    return 0;
  gboolean ok = remove ? dcr_bank_remove (bank, (gint64 *) ids->data, ids->len, NULL, &err)
                       : dcr_bank_set_enabled (bank, (gint64 *) ids->data, ids->len, FALSE, &err);
  if (!ok)
    return fail (path, g_steal_pointer (&err));
  if (!json)
    {
      g_autofree char *list = id_list (ids);
      if (remove)
        printf ("%s: removed %u prototype%s\n", path, ids->len, ids->len == 1 ? "" : "s");
      else
        printf ("%s: disabled %u prototype%s (undo: dcr bank enable %s %s)\n", path, ids->len,
                ids->len == 1 ? "" : "s", path, list);
    }
  return 0;
}

static DcrContext *
curate_context (const char *device, gboolean quiet, DcrCliProgress *pr, DcrCurateOptions *opts, GError **error)
{
  DcrContextOptions copts = { .device = device };
  DcrContext *ctx = dcr_context_new (&copts, error);
  *opts = (DcrCurateOptions) { .dtype = DCR_F32, .progress = curate_progress, .user_data = pr };
  pr->quiet = quiet;
  return ctx;
}

static int
cmd_dedup (const char *path, double threshold, gboolean apply, gboolean remove, const char *device,
           gboolean quiet, gboolean json)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = open_existing (path, NULL, 0, !apply, &err);
  if (!bank)
    return fail (path, g_steal_pointer (&err));
  DcrCliProgress pr = { "near-duplicates" };
  DcrCurateOptions opts;
  g_autoptr (DcrContext) ctx = curate_context (device, quiet, &pr, &opts, &err);
  if (!ctx)
    return dcr_cli_fail (g_steal_pointer (&err));
  g_autoptr (DcrBankDuplicates) d = dcr_bank_find_duplicates (bank, ctx, (float) threshold, &opts, &err);
  if (!d)
    return fail (path, g_steal_pointer (&err));
  g_autoptr (GPtrArray) protos = dcr_bank_list_full (bank, DCR_BANK_LIST_NO_THUMBNAILS, &err);
  if (!protos)
    return fail (path, g_steal_pointer (&err));
  g_autoptr (GHashTable) by_id = g_hash_table_new (g_int64_hash, g_int64_equal);
  for (guint i = 0; i < protos->len; i++)
    g_hash_table_insert (by_id, &((DcrPrototype *) protos->pdata[i])->id, protos->pdata[i]);
  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      dcr_cli_json_add_double (b, "threshold", threshold);
      json_builder_set_member_name (b, "pairs");
      json_builder_begin_array (b);
      for (guint i = 0; i < d->pairs->len; i++)
        {
          const DcrDuplicatePair *p = &g_array_index (d->pairs, DcrDuplicatePair, i);
          json_builder_begin_object (b);
          add_int (b, "a", p->a);
          add_int (b, "b", p->b);
          dcr_cli_json_add_double (b, "similarity", p->similarity);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_set_member_name (b, "groups");
      json_builder_begin_array (b);
      for (guint g = 0; g < d->groups->len; g++)
        add_id_array (b, NULL, d->groups->pdata[g]);
      json_builder_end_array (b);
      add_id_array (b, "redundant", d->redundant);
      add_string (b, "applied", !apply || d->redundant->len == 0 ? NULL : remove ? "removed" : "disabled");
      json_builder_end_object (b);
      print_json (b);
    }
  else
    {
      if (d->pairs->len)
        printf ("%6s  %6s  %10s  %s\n", "id", "id", "similarity", "sources");
      for (guint i = 0; i < d->pairs->len; i++)
        {
          const DcrDuplicatePair *p = &g_array_index (d->pairs, DcrDuplicatePair, i);
          DcrPrototype *pa = g_hash_table_lookup (by_id, &p->a), *pb = g_hash_table_lookup (by_id, &p->b);
          printf ("%6" G_GINT64_FORMAT "  %6" G_GINT64_FORMAT "  %10.4f  %s  %s\n", p->a, p->b, p->similarity,
                  pa && pa->source ? pa->source : "-", pb && pb->source ? pb->source : "-");
        }
      g_autofree char *list = id_list (d->redundant);
      printf ("%s: %u near-duplicate pair%s (cosine ≥ %.3g) in %u group%s; %u redundant%s%s\n", path, d->pairs->len,
              d->pairs->len == 1 ? "" : "s", threshold, d->groups->len, d->groups->len == 1 ? "" : "s",
              d->redundant->len, d->redundant->len ? ": " : "", list);
    }
  return apply ? apply_drop (bank, path, d->redundant, remove, json) : 0;
}

static int
cmd_prune (const char *path, int keep, gboolean apply, gboolean remove, const char *device, gboolean quiet,
           gboolean json)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = open_existing (path, NULL, 0, !apply, &err);
  if (!bank)
    return fail (path, g_steal_pointer (&err));
  DcrCliProgress pr = { "k-center" };
  DcrCurateOptions opts;
  g_autoptr (DcrContext) ctx = curate_context (device, quiet, &pr, &opts, &err);
  if (!ctx)
    return dcr_cli_fail (g_steal_pointer (&err));
  g_autoptr (DcrBankPrunePlan) plan = dcr_bank_plan_prune (bank, ctx, (gsize) keep, &opts, &err);
  if (!plan)
    return fail (path, g_steal_pointer (&err));
  guint enabled = plan->kept->len + plan->dropped->len;
  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      add_int (b, "keep", keep);
      add_int (b, "enabled", enabled);
      add_int (b, "pinned", (gint64) plan->n_pinned);
      dcr_cli_json_add_double (b, "radius", plan->radius);
      add_id_array (b, "kept", plan->kept);
      add_id_array (b, "dropped", plan->dropped);
      add_string (b, "applied", !apply || plan->dropped->len == 0 ? NULL : remove ? "removed" : "disabled");
      json_builder_end_object (b);
      print_json (b);
    }
  else
    {
      g_autofree char *list = id_list (plan->dropped);
      printf ("%s: keeping %u of %u enabled prototypes (%" G_GSIZE_FORMAT " pinned); covering radius %.4f "
              "(cosine distance); %u to go%s%s\n", path, plan->kept->len, enabled, plan->n_pinned, plan->radius,
              plan->dropped->len, plan->dropped->len ? ": " : "", list);
    }
  return apply ? apply_drop (bank, path, plan->dropped, remove, json) : 0;
}

int
dcr_cmd_bank (int argc, char **argv)
{
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "help") == 0)
    {
      usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? 2 : 0;
    }
  const BankSub *sub = NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (subs); i++)
    if (strcmp (argv[1], subs[i].name) == 0)
      sub = &subs[i];
  if (!sub)
    {
      fprintf (stderr, "dcr: bank: unknown command \"%s\"\n\n", argv[1]);
      usage (stderr);
      return 2;
    }

  gboolean json = FALSE, check = FALSE, create = FALSE, no_cache = FALSE, quiet = FALSE;
  gboolean apply = FALSE, remove = FALSE;
  const char *backbone = "default", *device = NULL, *note = NULL;
  int limit = 0, keep = 0;
  double threshold = DCR_CURATE_DEFAULT_THRESHOLD;
  const GOptionEntry all[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "JSON output", NULL },
    { "check", 0, 0, G_OPTION_ARG_NONE, &check, "Run the integrity check (exit status 1 when it fails)", NULL },
    { "create", 0, 0, G_OPTION_ARG_NONE, &create, "Create the bank when it does not exist", NULL },
    { "backbone", 'b', 0, G_OPTION_ARG_STRING, &backbone, "Backbone (default)", "SPEC" },
    { "note", 0, 0, G_OPTION_ARG_STRING, &note, "Note on every added prototype", "TEXT" },
    { "no-cache", 0, 0, G_OPTION_ARG_NONE, &no_cache, "Do not read or write the feature cache", NULL },
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device", "INDEX|NAME" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress output", NULL },
    { "limit", 0, 0, G_OPTION_ARG_INT, &limit, "At most N entries (0: all)", "N" },
    { "threshold", 't', 0, G_OPTION_ARG_DOUBLE, &threshold, "Cosine similarity from which two prototypes are "
      "near-duplicates (default 0.98)", "T" },
    { "keep", 'k', 0, G_OPTION_ARG_INT, &keep, "How many enabled prototypes to keep (pinned ones always stay)", "N" },
    { "apply", 0, 0, G_OPTION_ARG_NONE, &apply, "Disable the prototypes that go (default: only list them)", NULL },
    { "remove", 0, 0, G_OPTION_ARG_NONE, &remove, "With --apply: delete them instead of disabling", NULL },
  };
  const guint belongs[] = { OPT_JSON, OPT_CHECK, OPT_ADD, OPT_ADD, OPT_ADD, OPT_ADD, OPT_ADD | OPT_CURATE,
                            OPT_ADD | OPT_CURATE, OPT_LIMIT, OPT_THRESHOLD, OPT_KEEP, OPT_CURATE, OPT_CURATE };
  G_STATIC_ASSERT (G_N_ELEMENTS (all) == G_N_ELEMENTS (belongs));
  GOptionEntry entries[G_N_ELEMENTS (all) + 1] = { { NULL } };
  guint ne = 0;
  for (gsize i = 0; i < G_N_ELEMENTS (all); i++)
    if (sub->opts & belongs[i])
      entries[ne++] = all[i];

  g_autofree char *param = g_strdup_printf ("BANK %s", sub->args);
  g_autofree char *summary = g_strdup_printf ("dcr bank %s: %s", sub->name, sub->summary);
  g_autoptr (GOptionContext) oc = g_option_context_new (param);
  g_option_context_set_summary (oc, summary);
  g_option_context_add_main_entries (oc, entries, NULL);
  int sargc = argc - 1;
  char **sargv = argv + 1;
  if (!dcr_cli_parse (oc, entries, &sargc, &sargv))
    return 2;
  int nargs = sargc - 2; /* after the subcommand and BANK */
  if (sargc < 2 || nargs < sub->min_args || (sub->max_args >= 0 && nargs > sub->max_args) || limit < 0 ||
      ((sub->opts & OPT_KEEP) && keep < 1) || !(threshold > 0 && threshold <= 1) || (remove && !apply))
    {
      if ((sub->opts & OPT_KEEP) && keep < 1)
        fprintf (stderr, "dcr: bank prune needs --keep N, at least 1\n");
      if (!(threshold > 0 && threshold <= 1))
        fprintf (stderr, "dcr: --threshold is a cosine similarity above 0 and at most 1 (got %g)\n", threshold);
      if (remove && !apply)
        fprintf (stderr, "dcr: --remove goes with --apply\n");
      fprintf (stderr, "dcr: usage: dcr bank %s BANK %s (see `dcr bank %s --help`)\n", sub->name, sub->args,
               sub->name);
      return 2;
    }
  const char *path = sargv[1];
  char **args = sargv + 2;

  if (strcmp (sub->name, "info") == 0)
    return cmd_info (path, json, check);
  if (strcmp (sub->name, "list") == 0)
    return cmd_list (path, json);
  if (strcmp (sub->name, "add") == 0)
    return cmd_add (path, args, nargs, create, backbone, device, note, no_cache, quiet);
  if (strcmp (sub->name, "note") == 0)
    return cmd_note (path, args[0], args[1]);
  if (strcmp (sub->name, "export") == 0)
    return cmd_export (path, args[0]);
  if (strcmp (sub->name, "import") == 0)
    return cmd_import (path, args[0]);
  if (strcmp (sub->name, "audit") == 0)
    return cmd_audit (path, json, limit);
  if (strcmp (sub->name, "dedup") == 0)
    return cmd_dedup (path, threshold, apply, remove, device, quiet || json, json);
  if (strcmp (sub->name, "prune") == 0)
    return cmd_prune (path, keep, apply, remove, device, quiet || json, json);
  return cmd_ids (sub->name, path, args, nargs);
}
