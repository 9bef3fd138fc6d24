/* test-bank-view.c — the Memory Bank page under Xvfb, reached from the main
 * window's menu action: a bank of five prototypes for the default backbone
 * (one a copy of another) lists five rows; disable, note, remove and their
 * undo reach the bank file; search filters; the near-duplicate search finds the
 * copy and disabling it is undone; pruning to 3 drops one of the two copies
 * and is undone; adding a folder runs the backbone in the background and is
 * undone too; choosing another bank keeps the page up. Screenshot in
 * /tmp/dcr-bank-view.png. */
#include "dcr-config.h"
#include "dcr-application.h"
#include "dcr-bank-view.h"
#include "dcr-bank-model.h"
#include "dcr-window.h"
#include "dcr-backbone.h"
#include "dcr-image.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

enum { N_PROTOS = 5 };

static char *tmpdir, *bank_path, *folder;

static GBytes *
thumbnail_png (guint seed)
{
  enum { S = 32 };
  guint8 *px = g_malloc (S * S * 3);
  for (guint i = 0; i < S * S * 3; i++)
    px[i] = (guint8) (i * 7 + seed * 50);
  g_autoptr (GBytes) bytes = g_bytes_new_take (px, S * S * 3);
  g_autoptr (GdkTexture) tex = gdk_memory_texture_new (S, S, GDK_MEMORY_R8G8B8, bytes, S * 3);
  return gdk_texture_save_to_png_bytes (tex);
}

static void
write_image (const char *path, guint seed)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrImage) img = dcr_image_new (96, 80);
  for (guint y = 0; y < img->height; y++)
    for (guint x = 0; x < img->width; x++)
      {
        guint8 *p = img->pixels + ((gsize) y * img->width + x) * 3;
        p[0] = (x * 3 + seed * 70) & 255;
        p[1] = ((x / 8 + y / 8 + seed) % 2) ? 210 : 30;
        p[2] = (y * 3) & 255;
      }
  g_assert_true (dcr_image_save_png (img, path, &err));
  g_assert_no_error (err);
}

/* Prototypes 1–5 with random features; 5 is a copy of 2. */
static void
make_fixtures (void)
{
  g_autoptr (GError) err = NULL;
  tmpdir = g_dir_make_tmp ("dcr-bank-view-XXXXXX", &err);
  g_assert_no_error (err);
  bank_path = g_build_filename (tmpdir, "bank.dcrbank", NULL);
  folder = g_build_filename (tmpdir, "new-reals", NULL);
  g_assert_cmpint (g_mkdir (folder, 0700), ==, 0);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *name = g_strdup_printf ("photo-%u.png", i);
      g_autofree char *path = g_build_filename (folder, name, NULL);
      write_image (path, i);
    }

  g_autoptr (DcrContext) ctx = dcr_context_new (NULL, &err);
  g_assert_no_error (err);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, "default", DCR_F32, &err);
  g_assert_no_error (err);
  guint dim = dcr_backbone_dim (bb);
  g_autoptr (DcrBank) bank = dcr_bank_create (bank_path, dcr_backbone_id (bb), dim, &err);
  g_assert_no_error (err);
  g_autofree float *feat = g_new (float, (gsize) N_PROTOS * dim);
  g_autoptr (GRand) rand = g_rand_new_with_seed (9);
  for (gsize i = 0; i < (gsize) N_PROTOS * dim; i++)
    feat[i] = (float) g_rand_double_range (rand, -1, 1);
  memcpy (feat + 4 * (gsize) dim, feat + 1 * (gsize) dim, dim * sizeof (float));
  DcrPrototypeNew items[N_PROTOS];
  char *names[N_PROTOS], *hashes[N_PROTOS];
  for (guint i = 0; i < N_PROTOS; i++)
    {
      names[i] = g_strdup_printf ("/evidence/real/proto-%u.png", i + 1);
      hashes[i] = g_compute_checksum_for_string (G_CHECKSUM_SHA256, names[i], -1);
      items[i] = (DcrPrototypeNew) { .feature = feat + (gsize) i * dim, .source = names[i], .sha256 = hashes[i],
                                     .thumbnail = thumbnail_png (i), .note = i == 0 ? "camera A" : NULL };
    }
  g_assert_true (dcr_bank_add (bank, items, N_PROTOS, FALSE, NULL, &err));
  g_assert_no_error (err);
  for (guint i = 0; i < N_PROTOS; i++)
    {
      g_free (names[i]);
      g_free (hashes[i]);
      g_bytes_unref (items[i].thumbnail);
    }
}

static GtkWidget *
find_widget (GtkWidget *w, GType type)
{
  if (G_TYPE_CHECK_INSTANCE_TYPE (w, type))
    return w;
  for (GtkWidget *c = gtk_widget_get_first_child (w); c; c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *found = find_widget (c, type);
      if (found)
        return found;
    }
  return NULL;
}

static void
spin (guint ms)
{
  gint64 until = g_get_monotonic_time () + ms * 1000;
  while (g_get_monotonic_time () < until)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (2000);
    }
}

static void
wait_while_busy (DcrBankView *view)
{
  gint64 deadline = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;
  while (dcr_bank_view_is_busy (view))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
}

static guint
n_rows (DcrBankView *view)
{
  return g_list_model_get_n_items (G_LIST_MODEL (dcr_bank_view_get_selection (view)));
}

/* The shown row of a prototype, or NULL. */
static DcrBankItem *
row_of (DcrBankView *view, gint64 id, guint *pos)
{
  GListModel *rows = G_LIST_MODEL (dcr_bank_view_get_selection (view));
  for (guint i = 0; i < g_list_model_get_n_items (rows); i++)
    {
      g_autoptr (DcrBankItem) item = g_list_model_get_item (rows, i);
      if (dcr_bank_item_get_id (item) == id)
        {
          if (pos)
            *pos = i;
          return item;
        }
    }
  return NULL;
}

static void
select_only (DcrBankView *view, gint64 id)
{
  guint pos = 0;
  g_assert_nonnull (row_of (view, id, &pos));
  g_assert_true (gtk_selection_model_select_item (dcr_bank_view_get_selection (view), pos, TRUE));
}

static void
activate (DcrBankView *view, const char *action)
{
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (view), action, NULL));
}

/* What the bank file holds, through a handle of its own. */
static void
assert_bank (gint64 total, gint64 enabled)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = dcr_bank_open (bank_path, NULL, 0, TRUE, &err);
  g_assert_no_error (err);
  g_assert_cmpint (dcr_bank_count (bank, FALSE), ==, total);
  g_assert_cmpint (dcr_bank_count (bank, TRUE), ==, enabled);
}

static void
screenshot (GtkWidget *win, const char *path)
{
  int w = gtk_widget_get_width (win), h = gtk_widget_get_height (win);
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (win);
  GtkSnapshot *snap = gtk_snapshot_new ();
  gdk_paintable_snapshot (paintable, snap, w, h);
  g_autoptr (GskRenderNode) node = gtk_snapshot_free_to_node (snap);
  g_assert_nonnull (node);
  GskRenderer *renderer = gtk_native_get_renderer (GTK_NATIVE (win));
  g_autoptr (GdkTexture) tex = gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, w, h));
  g_assert_true (gdk_texture_save_to_png (tex, path));
}

static void
on_activate (GApplication *app, gpointer data)
{
  gboolean *done = data;
  DcrWindow *win = DCR_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  while (!gtk_widget_get_mapped (GTK_WIDGET (win)))
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (win), "win.show-bank", NULL));
  g_assert_cmpstr (dcr_window_get_page (win), ==, "bank");
  DcrBankView *view = DCR_BANK_VIEW (find_widget (GTK_WIDGET (win), DCR_TYPE_BANK_VIEW));
  g_assert_nonnull (view);
  spin (300);
  g_assert_true (gtk_widget_get_mapped (GTK_WIDGET (view)));
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS);

  /* disable one; undo */
  select_only (view, 3);
  activate (view, "bank.disable");
  g_assert_cmpstr (dcr_bank_view_get_last_message (view), ==, "1 prototype disabled");
  g_assert_false (dcr_bank_item_get_prototype (row_of (view, 3, NULL))->enabled);
  assert_bank (N_PROTOS, N_PROTOS - 1);
  activate (view, "bank.undo");
  g_assert_true (dcr_bank_item_get_prototype (row_of (view, 3, NULL))->enabled);
  assert_bank (N_PROTOS, N_PROTOS);
  g_assert_cmpstr (dcr_bank_view_get_last_message (view), ==, "Undone");

  /* search by source, note and SHA-256 prefix */
  dcr_bank_view_set_search (view, "PROTO-4");
  g_assert_cmpuint (n_rows (view), ==, 1);
  g_assert_nonnull (row_of (view, 4, NULL));
  dcr_bank_view_set_search (view, "camera a");
  g_assert_cmpuint (n_rows (view), ==, 1);
  g_assert_nonnull (row_of (view, 1, NULL));
  dcr_bank_view_set_search (view, NULL);
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS);

  /* edit a note in the detail pane; undo */
  select_only (view, 1);
  GtkEditable *note = GTK_EDITABLE (find_widget (GTK_WIDGET (view), GTK_TYPE_ENTRY));
  g_assert_cmpstr (gtk_editable_get_text (note), ==, "camera A");
  gtk_editable_set_text (note, "camera A, re-checked");
  activate (view, "bank.save-note");
  g_assert_cmpstr (dcr_bank_item_get_prototype (row_of (view, 1, NULL))->note, ==, "camera A, re-checked");
  activate (view, "bank.undo");
  g_assert_cmpstr (dcr_bank_item_get_prototype (row_of (view, 1, NULL))->note, ==, "camera A");

  /* remove one; undo brings it back with its provenance */
  select_only (view, 4);
  activate (view, "bank.remove");
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS - 1);
  g_assert_null (row_of (view, 4, NULL));
  assert_bank (N_PROTOS - 1, N_PROTOS - 1);
  activate (view, "bank.undo");
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS);
  DcrBankItem *back = row_of (view, 4, NULL);
  g_assert_nonnull (back);
  g_assert_cmpstr (dcr_bank_item_get_prototype (back)->source, ==, "/evidence/real/proto-4.png");
  g_assert_nonnull (dcr_bank_item_get_thumbnail (back));
  assert_bank (N_PROTOS, N_PROTOS);

  /* near-duplicates: 5 copies 2, so 5 goes; undo */
  activate (view, "bank.find-duplicates");
  g_assert_true (dcr_bank_view_is_busy (view));
  wait_while_busy (view);
  const DcrBankDuplicates *d = dcr_bank_view_get_duplicates (view);
  g_assert_nonnull (d);
  g_assert_cmpuint (d->groups->len, ==, 1);
  GArray *grp = d->groups->pdata[0];
  g_assert_cmpuint (grp->len, ==, 2);
  g_assert_cmpint (g_array_index (grp, gint64, 0), ==, 2);
  g_assert_cmpint (g_array_index (grp, gint64, 1), ==, 5);
  activate (view, "bank.show-duplicates");
  g_assert_cmpuint (n_rows (view), ==, 2);
  spin (300);
  screenshot (GTK_WIDGET (win), "/tmp/dcr-bank-view.png");
  activate (view, "bank.disable-redundant");
  g_assert_cmpstr (dcr_bank_view_get_last_message (view), ==, "1 near-duplicate disabled");
  g_assert_false (dcr_bank_item_get_prototype (row_of (view, 5, NULL))->enabled);
  assert_bank (N_PROTOS, N_PROTOS - 1);
  activate (view, "bank.undo");
  assert_bank (N_PROTOS, N_PROTOS);

  /* prune to 3 (k-center): 2 and 5 are one point, so exactly one of them goes */
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (find_widget (GTK_WIDGET (view), GTK_TYPE_SPIN_BUTTON)), 3);
  activate (view, "bank.plan-prune");
  g_assert_true (dcr_bank_view_is_busy (view));
  wait_while_busy (view);
  activate (view, "bank.show-pruned");
  g_assert_cmpuint (n_rows (view), ==, 2);
  g_assert_true ((row_of (view, 2, NULL) != NULL) != (row_of (view, 5, NULL) != NULL));
  g_assert_null (row_of (view, 1, NULL)); /* the first pick */
  activate (view, "bank.apply-prune");
  g_assert_cmpstr (dcr_bank_view_get_last_message (view), ==, "Pruned: 2 prototypes disabled");
  assert_bank (N_PROTOS, 3);
  activate (view, "bank.undo");
  assert_bank (N_PROTOS, N_PROTOS);

  /* add a folder: the backbone runs in the background; undo removes what it added */
  dcr_bank_view_add_folder (view, folder);
  g_assert_true (dcr_bank_view_is_busy (view));
  wait_while_busy (view);
  g_assert_nonnull (strstr (dcr_bank_view_get_last_message (view), "Added 2 images from new-reals"));
  assert_bank (N_PROTOS + 2, N_PROTOS + 2);
  gtk_drop_down_set_selected (GTK_DROP_DOWN (find_widget (GTK_WIDGET (view), GTK_TYPE_DROP_DOWN)), 0);
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS + 2);
  /* adding the same folder again adds nothing */
  dcr_bank_view_add_folder (view, folder);
  wait_while_busy (view);
  g_assert_nonnull (strstr (dcr_bank_view_get_last_message (view), "Added 0 images from new-reals (2 already"));
  assert_bank (N_PROTOS + 2, N_PROTOS + 2);
  activate (view, "bank.undo");
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS);
  assert_bank (N_PROTOS, N_PROTOS);

  /* another bank chosen while the page is up: it follows, the page stays */
  g_autoptr (GSettings) settings = g_settings_new (DCR_APP_ID);
  g_autofree char *missing = g_build_filename (tmpdir, "missing.dcrbank", NULL);
  g_settings_set_string (settings, "bank-file", missing);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "bank");
  g_assert_cmpuint (n_rows (view), ==, 0);
  g_assert_nonnull (strstr (dcr_bank_view_get_last_message (view), "missing.dcrbank"));
  g_assert_false (g_file_test (missing, G_FILE_TEST_EXISTS));
  g_settings_set_string (settings, "bank-file", bank_path);
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS);

  gtk_widget_activate_action (GTK_WIDGET (win), "win.close-bank", NULL);
  g_assert_cmpstr (dcr_window_get_page (win), !=, "bank");
  *done = TRUE;
  gtk_window_close (GTK_WINDOW (win));
}

static void
test_bank_view (void)
{
  g_autoptr (GSettings) settings = g_settings_new (DCR_APP_ID);
  g_settings_set_string (settings, "bank-file", bank_path);
  g_autoptr (DcrApplication) app = dcr_application_new ();
  gboolean done = FALSE;
  g_signal_connect_after (app, "activate", G_CALLBACK (on_activate), &done);
  g_application_set_flags (G_APPLICATION (app), G_APPLICATION_NON_UNIQUE);
  char *argv[] = { (char *) "dcr-forensics", NULL };
  g_assert_cmpint (g_application_run (G_APPLICATION (app), 1, argv), ==, 0);
  g_assert_true (done);
}

static void
remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;
      while (dir && (name = g_dir_read_name (dir)))
        {
          g_autofree char *p = g_build_filename (path, name, NULL);
          remove_tree (p);
        }
      g_rmdir (path);
    }
  else
    g_unlink (path);
}

int
main (int argc, char **argv)
{
  if (!g_getenv ("DISPLAY") && !g_getenv ("WAYLAND_DISPLAY"))
    {
      printf ("1..0 # SKIP no display: run the suite under xvfb-run (see README)\n");
      return 0;
    }
  gtk_disable_setlocale ();
  g_test_init (&argc, &argv, NULL);
  gtk_init ();
  make_fixtures ();
  g_test_add_func ("/app/bank-view", test_bank_view);
  int rc = g_test_run ();
  remove_tree (tmpdir);
  return rc;
}
