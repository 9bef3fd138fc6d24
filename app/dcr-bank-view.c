/* dcr-bank-view.c — the Memory Bank page. Small changes (enable, pin, note,
 * remove, import) run on the main thread against the page's own bank
 * handle; adding a folder (the backbone) and the near-duplicate search (the
 * GPU) run in a worker with its own engine context and bank handle, with
 * progress and cancel. The last change can be undone from its toast. The
 * prototypes show as a list or as a thumbnail grid (one selection, filter
 * and sort for both); the selected one's nearest neighbours in the bank are
 * found in a worker over a cached copy of the bank's features. */
#include "dcr-config.h"
#include "dcr-bank-view.h"
#include "dcr-bank-model.h"
#include "dcr-bank-dialogs.h"
#include "dcr-backbone.h"
#include "dcr-detector.h"
#include "dcr-feature-cache.h"
#include "dcr-image.h"

#include <string.h>

enum {
  FILTER_ALL, FILTER_ENABLED, FILTER_DISABLED, FILTER_PINNED, FILTER_DUPLICATES, FILTER_PRUNED,
  FILTER_RETRIEVED, FILTER_NEVER_RETRIEVED, FILTER_RECENT,
};

/* The sort dropdown's keys, in its order. */
enum { SORT_ID, SORT_SOURCE, SORT_ADDED, SORT_ENABLED, SORT_RETRIEVALS, N_SORT_KEYS };

#define N_NEIGHBOURS 5

/* Every prototype's feature (enabled or not), read once in a worker and
 * kept while the bank's generation stays the same. Reference-counted: a
 * worker may still be reading it when a newer one replaces it. */
typedef struct {
  char *path;
  gint64 generation;
  float *features;
  gint64 *ids;
  gsize n;
  guint dim;
  GHashTable *row_of; /* gint64 id (into ids) → row + 1 */
} FeatureCache;

static void
feature_cache_clear (gpointer data)
{
  FeatureCache *c = data;
  g_free (c->path);
  g_free (c->features);
  g_free (c->ids);
  g_clear_pointer (&c->row_of, g_hash_table_unref);
}

static void
feature_cache_unref (FeatureCache *c)
{
  g_atomic_rc_box_release_full (c, feature_cache_clear);
}

/* Above this many changed rows the list is read again whole rather than row
 * by row: one items-changed instead of thousands through filter and sort. */
#define REFRESH_ROWS_MAX 256

typedef enum { UNDO_NONE, UNDO_ENABLED, UNDO_PINNED, UNDO_REMOVE, UNDO_NOTE, UNDO_ADD } UndoKind;

typedef struct {
  UndoKind kind;
  GArray *ids;        /* gint64: what the change touched */
  gboolean value;     /* ENABLED / PINNED: the state to put back */
  GPtrArray *removed; /* REMOVE: the prototypes, features included */
  char *note;         /* NOTE: the note before */
} Undo;

struct _DcrBankView {
  AdwBin parent_instance;
  AdwToastOverlay *toast_overlay;
  GtkStack *stack;
  AdwStatusPage *none_page;
  GtkLabel *title_label, *selection_label, *progress_label, *dup_label, *detail_label, *prune_label;
  GtkSearchEntry *search_entry;
  GtkDropDown *filter_dropdown;
  GtkRevealer *progress_revealer, *dup_revealer, *prune_revealer;
  GtkSpinButton *keep_spin;
  GtkProgressBar *progress_bar;
  GtkColumnView *column_view;
  GtkPicture *detail_picture;
  GtkEntry *note_entry;
  GtkColumnViewColumn *group_column;
  GtkColumnViewColumn *sort_columns[N_SORT_KEYS];
  GtkStack *view_stack;
  GtkGridView *grid_view;
  GtkToggleButton *list_toggle, *grid_toggle, *sort_descending;
  GtkDropDown *sort_dropdown;
  GtkLabel *neighbours_label;
  GtkBox *neighbours_box;

  GSettings *settings;
  DcrBank *bank;
  char *path;
  gboolean read_only;
  DcrBankModel *model;
  GtkCustomFilter *filter;
  char *search_fold;       /* casefolded search text, NULL when empty */
  GtkMultiSelection *selection;
  Undo undo;
  DcrBankDuplicates *dups;
  GHashTable *group_of;    /* gint64 id → group number from 1 */
  DcrBankPrunePlan *prune;
  GHashTable *pruned;      /* gint64 ids the plan drops */
  char *last_message;
  char *counts;            /* "5 prototypes · 4 enabled · 1 pinned" */
  gint64 recent_since;     /* FILTER_RECENT: unix time */

  /* nearest neighbours of the selected prototype */
  FeatureCache *features;  /* NULL until first needed */
  gboolean nb_running;     /* a worker is computing */
  gint64 nb_wanted;        /* whose neighbours are wanted, -1 none */
  gint64 nb_shown;         /* whose neighbours `neighbours` are, -1 none */
  GArray *neighbours;      /* DcrBankNeighbour */
  GtkWindow *stats_window, *audit_window; /* weak */
  AdwToast *toast;         /* the last one, while shown (weak) */

  GCancellable *job;       /* the worker in flight, NULL when idle */
  guint progress_source;
  gint progress_done, progress_total; /* written by the worker */
};

G_DEFINE_FINAL_TYPE (DcrBankView, dcr_bank_view, ADW_TYPE_BIN)

/* ---- state, toasts, undo ------------------------------------------------ */

static void
undo_clear (Undo *u)
{
  g_clear_pointer (&u->ids, g_array_unref);
  g_clear_pointer (&u->removed, g_ptr_array_unref);
  g_clear_pointer (&u->note, g_free);
  u->kind = UNDO_NONE;
}

static void
show_toast (DcrBankView *self, const char *message, gboolean undoable)
{
  g_free (self->last_message);
  self->last_message = g_strdup (message);
  g_autofree char *escaped = g_markup_escape_text (message, -1);
  AdwToast *t = adw_toast_new (escaped);
  adw_toast_set_timeout (t, undoable ? 10 : 6);
  if (undoable)
    {
      adw_toast_set_button_label (t, "_Undo");
      adw_toast_set_action_name (t, "bank.undo");
    }
  if (self->toast)
    g_object_remove_weak_pointer (G_OBJECT (self->toast), (gpointer *) &self->toast);
  self->toast = t;
  g_object_add_weak_pointer (G_OBJECT (t), (gpointer *) &self->toast);
  adw_toast_overlay_add_toast (self->toast_overlay, t);
}

static guint
n_selected (DcrBankView *self)
{
  g_autoptr (GtkBitset) set = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  return (guint) gtk_bitset_get_size (set);
}

static void
update_actions (DcrBankView *self)
{
  GtkWidget *w = GTK_WIDGET (self);
  gboolean has = self->bank != NULL, writable = has && !self->read_only, busy = self->job != NULL;
  guint nsel = has ? n_selected (self) : 0;
  const char *per_selection[] = { "bank.enable", "bank.disable", "bank.pin", "bank.unpin", "bank.remove" };
  for (gsize i = 0; i < G_N_ELEMENTS (per_selection); i++)
    gtk_widget_action_set_enabled (w, per_selection[i], writable && nsel > 0);
  gtk_widget_action_set_enabled (w, "bank.save-note", writable && nsel == 1);
  gtk_widget_action_set_enabled (w, "bank.undo", writable && self->undo.kind != UNDO_NONE);
  gtk_widget_action_set_enabled (w, "bank.add-folder", writable && !busy);
  gtk_widget_action_set_enabled (w, "bank.import", writable && !busy);
  gtk_widget_action_set_enabled (w, "bank.export", has);
  gtk_widget_action_set_enabled (w, "bank.statistics", has);
  gtk_widget_action_set_enabled (w, "bank.audit-log", has);
  gtk_widget_action_set_enabled (w, "bank.find-duplicates", has && !busy);
  gtk_widget_action_set_enabled (w, "bank.show-duplicates", self->dups && self->dups->groups->len > 0);
  gtk_widget_action_set_enabled (w, "bank.disable-redundant",
                                 writable && self->dups && self->dups->redundant->len > 0);
  gtk_widget_action_set_enabled (w, "bank.plan-prune", has && !busy);
  gtk_widget_action_set_enabled (w, "bank.show-pruned", self->prune && self->prune->dropped->len > 0);
  gtk_widget_action_set_enabled (w, "bank.apply-prune", writable && self->prune && self->prune->dropped->len > 0);
  gtk_widget_action_set_enabled (w, "bank.cancel", busy);
  gtk_widget_action_set_enabled (w, "bank.open-bank", !busy);
}

static void
update_title (DcrBankView *self)
{
  if (!self->bank)
    return;
  guint total, enabled, pinned;
  dcr_bank_model_counts (self->model, &total, &enabled, &pinned);
  g_autofree char *name = g_path_get_basename (self->path);
  g_autofree char *title = g_strdup_printf ("%s%s", name, self->read_only ? " (read-only)" : "");
  gtk_label_set_label (self->title_label, title);
  g_free (self->counts);
  self->counts = g_strdup_printf ("%u prototype%s · %u enabled · %u pinned", total, total == 1 ? "" : "s", enabled,
                                  pinned);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->title_label), self->path);
}

static DcrBankItem *
first_selected (DcrBankView *self)
{
  g_autoptr (GtkBitset) set = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  if (gtk_bitset_is_empty (set))
    return NULL;
  return g_list_model_get_item (G_LIST_MODEL (self->selection), gtk_bitset_get_minimum (set));
}

/* ---- nearest neighbours ------------------------------------------------ */

typedef struct {
  char *path;
  gint64 generation, id;
  FeatureCache *cache;  /* in: the features to use, or NULL to read them; out: those used */
  GArray *result;       /* DcrBankNeighbour */
  gboolean found;       /* the prototype was among the features */
  gboolean read;        /* the features were read for this job */
} NeighbourJob;

static void
neighbour_job_free (NeighbourJob *job)
{
  g_free (job->path);
  g_clear_pointer (&job->cache, feature_cache_unref);
  g_clear_pointer (&job->result, g_array_unref);
  g_free (job);
}

static FeatureCache *
read_features (const char *path, gint64 generation, GError **error)
{
  g_autoptr (DcrBank) bank = dcr_bank_open (path, NULL, 0, TRUE, error);
  if (!bank)
    return NULL;
  FeatureCache *c = g_atomic_rc_box_new0 (FeatureCache);
  c->path = g_strdup (path);
  c->generation = generation;
  c->dim = dcr_bank_dim (bank);
  if (!dcr_bank_load_features (bank, FALSE, &c->features, &c->ids, &c->n, error))
    {
      feature_cache_unref (c);
      return NULL;
    }
  c->row_of = g_hash_table_new (g_int64_hash, g_int64_equal);
  for (gsize i = 0; i < c->n; i++)
    g_hash_table_insert (c->row_of, &c->ids[i], GSIZE_TO_POINTER (i + 1));
  return c;
}

static void
neighbour_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  NeighbourJob *job = data;
  GError *err = NULL;
  job->read = job->cache == NULL;
  if (!job->cache && !(job->cache = read_features (job->path, job->generation, &err)))
    {
      g_task_return_error (task, err);
      return;
    }
  FeatureCache *c = job->cache;
  gsize row = GPOINTER_TO_SIZE (g_hash_table_lookup (c->row_of, &job->id));
  job->result = g_array_new (FALSE, FALSE, sizeof (DcrBankNeighbour));
  if (row)
    {
      job->found = TRUE;
      g_array_set_size (job->result, N_NEIGHBOURS);
      guint k = dcr_bank_nearest (c->features, c->ids, c->n, c->dim, row - 1, N_NEIGHBOURS,
                                  (DcrBankNeighbour *) job->result->data);
      g_array_set_size (job->result, k);
    }
  g_task_return_boolean (task, TRUE);
}

/* The cached features are this bank's as it is now. */
static gboolean
features_fresh (DcrBankView *self)
{
  return self->features && self->bank && g_strcmp0 (self->features->path, self->path) == 0 &&
         self->features->generation == dcr_bank_generation (self->bank);
}

static void on_neighbours (GObject *source, GAsyncResult *res, gpointer data);

/* A worker task of the page. It has no source object: its last reference
 * may go in the worker, and the page must never be finalised there. The
 * callback gets the page as `source`, held — with the application, so that
 * quitting waits for a worker that may be inside the GPU driver — until it
 * has run on the main thread. */
typedef struct {
  DcrBankView *self;
  GApplication *app;
  GAsyncReadyCallback done;
} PageTask;

static void
page_task_done (GObject *source, GAsyncResult *res, gpointer data)
{
  PageTask *pt = data;
  pt->done (G_OBJECT (pt->self), res, NULL);
  if (pt->app)
    {
      g_application_release (pt->app);
      g_object_unref (pt->app);
    }
  g_object_unref (pt->self);
  g_free (pt);
}

static void
run_page_task (DcrBankView *self, GAsyncReadyCallback done, gpointer task_data, GDestroyNotify free_data,
               GTaskThreadFunc thread)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  GtkApplication *app = GTK_IS_WINDOW (root) ? gtk_window_get_application (GTK_WINDOW (root)) : NULL;
  PageTask *pt = g_new (PageTask, 1);
  *pt = (PageTask) { g_object_ref (self), app ? g_object_ref (G_APPLICATION (app)) : NULL, done };
  if (pt->app)
    g_application_hold (pt->app);
  g_autoptr (GTask) task = g_task_new (NULL, NULL, page_task_done, pt);
  g_task_set_task_data (task, task_data, free_data);
  g_task_run_in_thread (task, thread);
}

static void
start_neighbours (DcrBankView *self)
{
  NeighbourJob *job = g_new0 (NeighbourJob, 1);
  job->path = g_strdup (self->path);
  job->generation = dcr_bank_generation (self->bank);
  job->id = self->nb_wanted;
  if (features_fresh (self))
    job->cache = g_atomic_rc_box_acquire (self->features);
  self->nb_running = TRUE;
  run_page_task (self, on_neighbours, job, (GDestroyNotify) neighbour_job_free, neighbour_thread);
}

static void
clear_neighbour_rows (DcrBankView *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->neighbours_box))))
    gtk_box_remove (self->neighbours_box, child);
}

static void
on_neighbour_clicked (GtkButton *button, DcrBankView *self)
{
  const gint64 *id = g_object_get_data (G_OBJECT (button), "prototype-id");
  dcr_bank_view_select_prototype (self, *id);
}

static void
show_neighbours (DcrBankView *self)
{
  clear_neighbour_rows (self);
  if (self->nb_shown < 0 || !self->neighbours)
    {
      gtk_label_set_label (self->neighbours_label, "");
      return;
    }
  gtk_label_set_label (self->neighbours_label, self->neighbours->len
                                                 ? "By cosine similarity of the features; click one to select it"
                                                 : "No other prototype in the bank");
  for (guint i = 0; i < self->neighbours->len; i++)
    {
      const DcrBankNeighbour *nb = &g_array_index (self->neighbours, DcrBankNeighbour, i);
      DcrBankItem *item = dcr_bank_model_lookup (self->model, nb->id);
      const DcrPrototype *p = item ? dcr_bank_item_get_prototype (item) : NULL;
      GtkWidget *button = gtk_button_new ();
      gtk_widget_add_css_class (button, "flat");
      GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
      GtkWidget *pic = gtk_picture_new ();
      gtk_widget_set_size_request (pic, 40, 40);
      gtk_picture_set_can_shrink (GTK_PICTURE (pic), TRUE);
      g_autoptr (GdkTexture) tex = item ? dcr_bank_item_load_thumbnail (item) : NULL;
      gtk_picture_set_paintable (GTK_PICTURE (pic), GDK_PAINTABLE (tex));
      gtk_box_append (GTK_BOX (row), pic);
      g_autofree char *base = p && p->source ? g_path_get_basename (p->source) : g_strdup ("");
      g_autofree char *markup = g_markup_printf_escaped (
        "<b>%.3f</b>  #%" G_GINT64_FORMAT "%s\n<small>%s</small>", nb->similarity, nb->id,
        p && !p->enabled ? "  (disabled)" : "", base);
      GtkWidget *label = gtk_label_new (NULL);
      gtk_label_set_markup (GTK_LABEL (label), markup);
      gtk_label_set_xalign (GTK_LABEL (label), 0);
      gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_MIDDLE);
      gtk_widget_set_hexpand (label, TRUE);
      gtk_box_append (GTK_BOX (row), label);
      gtk_button_set_child (GTK_BUTTON (button), row);
      if (p && p->source)
        gtk_widget_set_tooltip_text (button, p->source);
      g_object_set_data_full (G_OBJECT (button), "prototype-id", g_memdup2 (&nb->id, sizeof (gint64)), g_free);
      g_signal_connect (button, "clicked", G_CALLBACK (on_neighbour_clicked), self);
      gtk_box_append (self->neighbours_box, button);
    }
}

static void
on_neighbours (GObject *source, GAsyncResult *res, gpointer data)
{
  DcrBankView *self = DCR_BANK_VIEW (source);
  NeighbourJob *job = g_task_get_task_data (G_TASK (res));
  g_autoptr (GError) err = NULL;
  gboolean ok = g_task_propagate_boolean (G_TASK (res), &err);
  if (!self->model)
    return; /* disposed while it ran */
  self->nb_running = FALSE;
  if (ok && job->cache != self->features && self->path && g_str_equal (job->cache->path, self->path))
    {
      g_clear_pointer (&self->features, feature_cache_unref);
      self->features = g_atomic_rc_box_acquire (job->cache);
    }
  if (self->nb_wanted < 0 || !self->bank)
    return;
  if (job->id != self->nb_wanted || g_strcmp0 (job->path, self->path) != 0)
    {
      start_neighbours (self); /* the selection moved on meanwhile */
      return;
    }
  if (!ok)
    {
      self->nb_shown = -1;
      clear_neighbour_rows (self);
      gtk_label_set_label (self->neighbours_label, err->message);
      return;
    }
  if (!job->found)
    {
      /* changed under the cached copy: read the features again, once */
      g_clear_pointer (&self->features, feature_cache_unref);
      if (!job->read)
        {
          start_neighbours (self);
          return;
        }
      self->nb_shown = -1;
      clear_neighbour_rows (self);
      gtk_label_set_label (self->neighbours_label, "This prototype is no longer in the bank file");
      return;
    }
  g_clear_pointer (&self->neighbours, g_array_unref);
  self->neighbours = g_steal_pointer (&job->result);
  self->nb_shown = job->id;
  show_neighbours (self);
}

/* Shows the neighbours of prototype id (-1: none), computing them unless
 * they are known for the bank as it is. */
static void
request_neighbours (DcrBankView *self, gint64 id)
{
  self->nb_wanted = id;
  if (id < 0 || !self->bank)
    {
      self->nb_shown = -1;
      g_clear_pointer (&self->neighbours, g_array_unref);
      show_neighbours (self);
      return;
    }
  if (id == self->nb_shown && features_fresh (self))
    {
      show_neighbours (self); /* their state may have changed */
      return;
    }
  if (id != self->nb_shown)
    clear_neighbour_rows (self);
  gtk_label_set_label (self->neighbours_label, "Finding the nearest prototypes…");
  if (!self->nb_running)
    start_neighbours (self);
}

static void
update_detail (DcrBankView *self)
{
  guint nsel = n_selected (self);
  const char *counts = self->counts ? self->counts : "";
  g_autofree char *sel = nsel ? g_strdup_printf ("%s — %u selected", counts, nsel)
                              : g_strdup_printf ("%s — select prototypes to act on them", counts);
  gtk_label_set_label (self->selection_label, sel);
  g_autoptr (DcrBankItem) item = first_selected (self);
  if (!item)
    {
      gtk_picture_set_paintable (self->detail_picture, NULL);
      gtk_label_set_label (self->detail_label, "");
      gtk_editable_set_text (GTK_EDITABLE (self->note_entry), "");
      request_neighbours (self, -1);
      return;
    }
  const DcrPrototype *p = dcr_bank_item_get_prototype (item);
  g_autofree char *added = p->added ? g_date_time_format (p->added, "%Y-%m-%d %H:%M:%S UTC") : g_strdup ("unknown");
  g_autofree char *markup = g_markup_printf_escaped (
    "<b>Prototype %" G_GINT64_FORMAT "</b>\n\n<b>Source</b>\n%s\n\n<b>SHA-256</b>\n<tt>%s</tt>\n\n<b>Added</b>\n%s\n\n"
    "<b>State</b>\n%s%s\n\n<b>Retrieved</b>\n%" G_GINT64_FORMAT " time%s as a nearest prototype",
    p->id, p->source ? p->source : "unknown", p->sha256 ? p->sha256 : "not recorded", added,
    p->enabled ? "enabled" : "disabled (hidden from retrieval)", p->pinned ? ", pinned" : "", p->retrievals,
    p->retrievals == 1 ? "" : "s");
  gtk_label_set_markup (self->detail_label, markup);
  g_autoptr (GdkTexture) thumb = dcr_bank_item_load_thumbnail (item);
  gtk_picture_set_paintable (self->detail_picture, GDK_PAINTABLE (thumb));
  gtk_editable_set_text (GTK_EDITABLE (self->note_entry), p->note ? p->note : "");
  request_neighbours (self, p->id);
}

static void
on_selection_changed (GtkSelectionModel *model, guint position, guint n, DcrBankView *self)
{
  update_detail (self);
  update_actions (self);
}

/* Reads the changed prototypes back into the list. */
static void
refresh (DcrBankView *self, GArray *ids)
{
  g_autoptr (GError) err = NULL;
  gboolean ok = ids && ids->len <= REFRESH_ROWS_MAX
                  ? dcr_bank_model_refresh (self->model, self->bank, (gint64 *) ids->data, ids->len, &err)
                  : dcr_bank_model_load (self->model, self->bank, &err);
  if (!ok)
    show_toast (self, err->message, FALSE);
  update_title (self);
  update_detail (self);
  update_actions (self);
}

static void
set_undo (DcrBankView *self, UndoKind kind, GArray *ids, gboolean value)
{
  undo_clear (&self->undo);
  self->undo.kind = kind;
  self->undo.ids = g_array_ref (ids);
  self->undo.value = value;
}

static GArray *
selected_ids (DcrBankView *self)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GtkBitset) set = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  GtkBitsetIter it;
  guint pos;
  for (gboolean more = gtk_bitset_iter_init_first (&it, set, &pos); more; more = gtk_bitset_iter_next (&it, &pos))
    {
      g_autoptr (DcrBankItem) item = g_list_model_get_item (G_LIST_MODEL (self->selection), pos);
      gint64 id = dcr_bank_item_get_id (item);
      g_array_append_val (ids, id);
    }
  return ids;
}

/* ---- opening ------------------------------------------------------------ */

static void
close_bank (DcrBankView *self)
{
  g_clear_pointer (&self->bank, dcr_bank_close);
  g_clear_pointer (&self->path, g_free);
  g_clear_pointer (&self->dups, dcr_bank_duplicates_free);
  g_clear_pointer (&self->group_of, g_hash_table_unref);
  g_clear_pointer (&self->prune, dcr_bank_prune_plan_free);
  g_clear_pointer (&self->pruned, g_hash_table_unref);
  undo_clear (&self->undo);
  /* its Undo would be for the bank before */
  if (self->toast)
    adw_toast_dismiss (self->toast);
  g_clear_pointer (&self->features, feature_cache_unref);
  g_clear_pointer (&self->neighbours, g_array_unref);
  self->nb_shown = self->nb_wanted = -1;
  if (self->stats_window)
    gtk_window_destroy (self->stats_window);
  if (self->audit_window)
    gtk_window_destroy (self->audit_window);
  dcr_bank_model_load (self->model, NULL, NULL);
  gtk_revealer_set_reveal_child (self->dup_revealer, FALSE);
  gtk_revealer_set_reveal_child (self->prune_revealer, FALSE);
}

gboolean
dcr_bank_view_open (DcrBankView *self, const char *path, GError **error)
{
  g_return_val_if_fail (DCR_IS_BANK_VIEW (self) && path, FALSE);
  g_autoptr (GError) err = NULL;
  gboolean read_only = FALSE;
  DcrBank *bank = dcr_bank_open (path, NULL, 0, FALSE, &err);
  if (!bank && g_error_matches (err, DCR_BANK_ERROR, DCR_BANK_ERROR_IO) && g_file_test (path, G_FILE_TEST_EXISTS))
    {
      /* a bank on read-only media (or the shipped default) can still be looked at and exported */
      g_clear_error (&err);
      bank = dcr_bank_open (path, NULL, 0, TRUE, &err);
      read_only = TRUE;
    }
  if (!bank)
    {
      g_propagate_error (error, g_steal_pointer (&err));
      return FALSE;
    }
  close_bank (self);
  self->bank = bank;
  self->path = g_strdup (path);
  self->read_only = read_only;
  if (!dcr_bank_model_load (self->model, bank, error))
    {
      close_bank (self);
      gtk_stack_set_visible_child_name (self->stack, "none");
      return FALSE;
    }
  gtk_stack_set_visible_child_name (self->stack, "bank");
  update_title (self);
  update_detail (self);
  update_actions (self);
  return TRUE;
}

void
dcr_bank_view_load_preferred (DcrBankView *self)
{
  g_return_if_fail (DCR_IS_BANK_VIEW (self));
  g_autofree char *setting = g_settings_get_string (self->settings, "bank-file");
  g_autofree char *path = *setting ? g_strdup (setting) : dcr_detector_default_bank_path ();
  if (path && self->bank && g_strcmp0 (path, self->path) == 0)
    return;
  g_autoptr (GError) err = NULL;
  if (path && dcr_bank_view_open (self, path, &err))
    return;
  close_bank (self);
  update_actions (self);
  gtk_stack_set_visible_child_name (self->stack, "none");
  if (err)
    {
      g_autofree char *escaped = g_markup_escape_text (err->message, -1);
      adw_status_page_set_description (self->none_page, escaped);
      show_toast (self, err->message, FALSE);
    }
}

static void
on_bank_setting_changed (GSettings *settings, const char *key, DcrBankView *self)
{
  if (gtk_widget_get_mapped (GTK_WIDGET (self)))
    dcr_bank_view_load_preferred (self);
}

/* ---- file choosers ------------------------------------------------------ */

typedef enum { CHOOSE_OPEN, CHOOSE_SAVE, CHOOSE_FOLDER } ChooseMode;
typedef void (*ChosenFunc) (DcrBankView *self, GFile *file);

typedef struct {
  DcrBankView *self;
  ChooseMode mode;
  ChosenFunc done;
} Choice;

static void
choice_finish (Choice *c, GFile *file)
{
  if (file && c->self->model)
    c->done (c->self, file);
  g_object_unref (c->self);
  g_free (c);
}

#if GTK_CHECK_VERSION(4, 10, 0)
G_GNUC_BEGIN_IGNORE_DEPRECATIONS /* newer API in its version guard: see app/meson.build */
static void
on_dialog_done (GObject *source, GAsyncResult *res, gpointer data)
{
  Choice *c = data;
  GtkFileDialog *d = GTK_FILE_DIALOG (source);
  g_autoptr (GFile) file = c->mode == CHOOSE_SAVE     ? gtk_file_dialog_save_finish (d, res, NULL)
                           : c->mode == CHOOSE_FOLDER ? gtk_file_dialog_select_folder_finish (d, res, NULL)
                                                      : gtk_file_dialog_open_finish (d, res, NULL);
  choice_finish (c, file);
}
G_GNUC_END_IGNORE_DEPRECATIONS
#else
static void
on_native_response (GtkNativeDialog *dialog, int response, gpointer data)
{
  Choice *c = data;
  g_autoptr (GFile) file = NULL;
  if (response == GTK_RESPONSE_ACCEPT)
    file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
  gtk_native_dialog_destroy (dialog);
  g_object_unref (dialog);
  choice_finish (c, file);
}
#endif

static void
choose_file (DcrBankView *self, ChooseMode mode, const char *title, const char *initial_name, ChosenFunc done)
{
  Choice *c = g_new0 (Choice, 1);
  c->self = g_object_ref (self);
  c->mode = mode;
  c->done = done;
  GtkWindow *parent = GTK_WINDOW (gtk_widget_get_root (GTK_WIDGET (self)));
#if GTK_CHECK_VERSION(4, 10, 0)
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS /* newer API in its version guard: see app/meson.build */
  g_autoptr (GtkFileDialog) d = gtk_file_dialog_new ();
  gtk_file_dialog_set_title (d, title);
  if (initial_name)
    gtk_file_dialog_set_initial_name (d, initial_name);
  if (mode == CHOOSE_SAVE)
    gtk_file_dialog_save (d, parent, NULL, on_dialog_done, c);
  else if (mode == CHOOSE_FOLDER)
    gtk_file_dialog_select_folder (d, parent, NULL, on_dialog_done, c);
  else
    gtk_file_dialog_open (d, parent, NULL, on_dialog_done, c);
  G_GNUC_END_IGNORE_DEPRECATIONS
#else
  GtkFileChooserAction action = mode == CHOOSE_SAVE     ? GTK_FILE_CHOOSER_ACTION_SAVE
                                : mode == CHOOSE_FOLDER ? GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER
                                                        : GTK_FILE_CHOOSER_ACTION_OPEN;
  const char *accept = mode == CHOOSE_SAVE ? "_Save" : mode == CHOOSE_FOLDER ? "_Select" : "_Open";
  GtkFileChooserNative *chooser = gtk_file_chooser_native_new (title, parent, action, accept, "_Cancel");
  if (initial_name)
    gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (chooser), initial_name);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  g_signal_connect (chooser, "response", G_CALLBACK (on_native_response), c);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
#endif
}

/* ---- small changes ------------------------------------------------------ */

static void
change_flag (DcrBankView *self, gboolean pin, gboolean value)
{
  g_autoptr (GArray) sel = selected_ids (self);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  for (guint i = 0; i < sel->len; i++)
    {
      DcrBankItem *item = dcr_bank_model_lookup (self->model, g_array_index (sel, gint64, i));
      const DcrPrototype *p = item ? dcr_bank_item_get_prototype (item) : NULL;
      /* only what changes, so that undo puts back exactly this */
      if (p && (pin ? p->pinned : p->enabled) != value)
        g_array_append_val (ids, p->id);
    }
  const char *word = pin ? (value ? "pinned" : "unpinned") : (value ? "enabled" : "disabled");
  if (ids->len == 0)
    {
      g_autofree char *msg = g_strdup_printf ("The selected prototypes are already %s", word);
      show_toast (self, msg, FALSE);
      return;
    }
  g_autoptr (GError) err = NULL;
  gboolean ok = pin ? dcr_bank_set_pinned (self->bank, (gint64 *) ids->data, ids->len, value, &err)
                    : dcr_bank_set_enabled (self->bank, (gint64 *) ids->data, ids->len, value, &err);
  if (!ok)
    {
      show_toast (self, err->message, FALSE);
      return;
    }
  set_undo (self, pin ? UNDO_PINNED : UNDO_ENABLED, ids, !value);
  refresh (self, ids);
  g_autofree char *msg = g_strdup_printf ("%u prototype%s %s", ids->len, ids->len == 1 ? "" : "s", word);
  show_toast (self, msg, TRUE);
}

static void
flag_action (GtkWidget *widget, const char *name, GVariant *param)
{
  DcrBankView *self = DCR_BANK_VIEW (widget);
  if (g_str_equal (name, "bank.enable") || g_str_equal (name, "bank.disable"))
    change_flag (self, FALSE, g_str_equal (name, "bank.enable"));
  else
    change_flag (self, TRUE, g_str_equal (name, "bank.pin"));
}

static void
remove_action (GtkWidget *widget, const char *name, GVariant *param)
{
  DcrBankView *self = DCR_BANK_VIEW (widget);
  g_autoptr (GArray) ids = selected_ids (self);
  if (ids->len == 0)
    return;
  g_autoptr (GError) err = NULL;
  GPtrArray *removed = NULL;
  if (!dcr_bank_remove (self->bank, (gint64 *) ids->data, ids->len, &removed, &err))
    {
      show_toast (self, err->message, FALSE);
      return;
    }
  set_undo (self, UNDO_REMOVE, ids, FALSE);
  self->undo.removed = removed;
  refresh (self, ids);
  g_autofree char *msg = g_strdup_printf ("%u prototype%s removed", ids->len, ids->len == 1 ? "" : "s");
  show_toast (self, msg, TRUE);
}

static void
save_note_action (GtkWidget *widget, const char *name, GVariant *param)
{
  DcrBankView *self = DCR_BANK_VIEW (widget);
  g_autoptr (DcrBankItem) item = first_selected (self);
  if (!item)
    return;
  const DcrPrototype *p = dcr_bank_item_get_prototype (item);
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->note_entry));
  if (g_strcmp0 (text, p->note ? p->note : "") == 0)
    return;
  g_autofree char *old = g_strdup (p->note ? p->note : "");
  g_autoptr (GError) err = NULL;
  if (!dcr_bank_set_note (self->bank, p->id, text, &err))
    {
      show_toast (self, err->message, FALSE);
      return;
    }
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_array_append_val (ids, p->id);
  set_undo (self, UNDO_NOTE, ids, FALSE);
  self->undo.note = g_steal_pointer (&old);
  refresh (self, ids);
  show_toast (self, "Note saved", TRUE);
}

static void
undo_action (GtkWidget *widget, const char *name, GVariant *param)
{
  DcrBankView *self = DCR_BANK_VIEW (widget);
  Undo *u = &self->undo;
  if (u->kind == UNDO_NONE || !self->bank)
    return;
  g_autoptr (GError) err = NULL;
  gint64 *ids = (gint64 *) u->ids->data;
  gboolean ok = FALSE;
  switch (u->kind)
    {
    case UNDO_ENABLED:
      ok = dcr_bank_set_enabled (self->bank, ids, u->ids->len, u->value, &err);
      break;
    case UNDO_PINNED:
      ok = dcr_bank_set_pinned (self->bank, ids, u->ids->len, u->value, &err);
      break;
    case UNDO_REMOVE:
      ok = dcr_bank_restore (self->bank, u->removed, &err);
      break;
    case UNDO_NOTE:
      ok = dcr_bank_set_note (self->bank, ids[0], u->note, &err);
      break;
    case UNDO_ADD:
      ok = dcr_bank_remove (self->bank, ids, u->ids->len, NULL, &err);
      break;
    case UNDO_NONE:
      break;
    }
  if (!ok)
    {
      show_toast (self, err->message, FALSE);
      return;
    }
  g_autoptr (GArray) touched = g_array_ref (u->ids);
  undo_clear (u);
  refresh (self, touched);
  show_toast (self, "Undone", FALSE);
}

/* ---- import, export, open ---------------------------------------------- */

static void
on_import_chosen (DcrBankView *self, GFile *file)
{
  g_autofree char *src = g_file_get_path (file);
  g_autoptr (GError) err = NULL;
  guint n = 0;
  /* the ids the import adds are the ones not here before it */
  g_autoptr (GHashTable) before = g_hash_table_new (g_int64_hash, g_int64_equal);
  guint len = g_list_model_get_n_items (G_LIST_MODEL (self->model));
  g_autoptr (GPtrArray) keep = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < len; i++)
    {
      DcrBankItem *item = g_list_model_get_item (G_LIST_MODEL (self->model), i);
      g_ptr_array_add (keep, item);
      g_hash_table_add (before, (gpointer) &dcr_bank_item_get_prototype (item)->id);
    }
  if (!src || !dcr_bank_import (self->bank, src, &n, &err))
    {
      show_toast (self, err ? err->message : "Only local bank files can be imported", FALSE);
      return;
    }
  g_autoptr (GError) lerr = NULL;
  if (!dcr_bank_model_load (self->model, self->bank, &lerr))
    show_toast (self, lerr->message, FALSE);
  g_autoptr (GArray) added = g_array_new (FALSE, FALSE, sizeof (gint64));
  len = g_list_model_get_n_items (G_LIST_MODEL (self->model));
  for (guint i = 0; i < len; i++)
    {
      g_autoptr (DcrBankItem) item = g_list_model_get_item (G_LIST_MODEL (self->model), i);
      gint64 id = dcr_bank_item_get_id (item);
      if (!g_hash_table_contains (before, &id))
        g_array_append_val (added, id);
    }
  if (added->len)
    set_undo (self, UNDO_ADD, added, FALSE);
  refresh (self, NULL);
  g_autofree char *name = g_path_get_basename (src);
  g_autofree char *msg = g_strdup_printf ("%u prototype%s imported from %s (the others were here already)", n,
                                          n == 1 ? "" : "s", name);
  show_toast (self, msg, added->len > 0);
}

static void
on_export_chosen (DcrBankView *self, GFile *file)
{
  g_autofree char *dest = g_file_get_path (file);
  g_autoptr (GError) err = NULL;
  if (!dest || !dcr_bank_export (self->bank, dest, &err))
    {
      show_toast (self, err ? err->message : "Banks can only be exported to a local file", FALSE);
      return;
    }
  g_autofree char *msg = g_strdup_printf ("Exported to %s", dest);
  show_toast (self, msg, FALSE);
}

static void
on_bank_chosen (DcrBankView *self, GFile *file)
{
  g_autofree char *path = g_file_get_path (file);
  if (!path)
    return;
  /* the page and the detector follow the preference */
  g_settings_set_string (self->settings, "bank-file", path);
  dcr_bank_view_load_preferred (self);
}

static void
file_action (GtkWidget *widget, const char *name, GVariant *param)
{
  DcrBankView *self = DCR_BANK_VIEW (widget);
  if (g_str_equal (name, "bank.import"))
    choose_file (self, CHOOSE_OPEN, "Import a Bank", NULL, on_import_chosen);
  else if (g_str_equal (name, "bank.export"))
    {
      g_autofree char *base = self->path ? g_path_get_basename (self->path) : g_strdup ("bank.dcrbank");
      g_autofree char *stem = g_str_has_suffix (base, ".dcrbank") ? g_strndup (base, strlen (base) - 8)
                                                                   : g_strdup (base);
      g_autofree char *initial = g_strdup_printf ("%s-export.dcrbank", stem);
      choose_file (self, CHOOSE_SAVE, "Export the Bank", initial, on_export_chosen);
    }
  else
    choose_file (self, CHOOSE_OPEN, "Open a Bank", NULL, on_bank_chosen);
}

/* ---- workers: progress and cancel --------------------------------------- */

static gboolean
update_progress (gpointer data)
{
  DcrBankView *self = data;
  gint done = g_atomic_int_get (&self->progress_done), total = g_atomic_int_get (&self->progress_total);
  if (total > 0)
    {
      gtk_progress_bar_set_fraction (self->progress_bar, (double) done / total);
      g_autofree char *text = g_strdup_printf ("%d / %d", done, total);
      gtk_progress_bar_set_text (self->progress_bar, text);
    }
  else
    gtk_progress_bar_pulse (self->progress_bar);
  return G_SOURCE_CONTINUE;
}

static GCancellable *
start_job (DcrBankView *self, const char *what)
{
  self->job = g_cancellable_new ();
  g_atomic_int_set (&self->progress_done, 0);
  g_atomic_int_set (&self->progress_total, 0);
  gtk_label_set_label (self->progress_label, what);
  gtk_progress_bar_set_fraction (self->progress_bar, 0);
  gtk_progress_bar_set_text (self->progress_bar, "starting…");
  gtk_revealer_set_reveal_child (self->progress_revealer, TRUE);
  self->progress_source = g_timeout_add (100, update_progress, self);
  update_actions (self);
  return self->job;
}

static void
stop_job (DcrBankView *self)
{
  g_clear_handle_id (&self->progress_source, g_source_remove);
  g_clear_object (&self->job);
  gtk_revealer_set_reveal_child (self->progress_revealer, FALSE);
  update_actions (self);
}

static void
cancel_action (GtkWidget *widget, const char *name, GVariant *param)
{
  DcrBankView *self = DCR_BANK_VIEW (widget);
  if (self->job)
    g_cancellable_cancel (self->job);
}

static char *
device_setting (DcrBankView *self)
{
  g_autofree char *device = g_settings_get_string (self->settings, "device");
  return *device ? g_steal_pointer (&device) : NULL;
}

/* ---- adding a folder ---------------------------------------------------- */

typedef struct {
  DcrBankView *self;  /* for the progress counters only */
  char *bank_path, *dir, *device;
  GCancellable *cancellable;
  guint added, skipped, failed;
  GArray *added_ids;
} AddJob;

static void
add_job_free (AddJob *job)
{
  g_free (job->bank_path);
  g_free (job->dir);
  g_free (job->device);
  g_clear_object (&job->cancellable);
  g_clear_pointer (&job->added_ids, g_array_unref);
  g_free (job);
}

static gboolean
add_progress (guint done, guint total, gpointer data)
{
  AddJob *job = data;
  g_atomic_int_set (&job->self->progress_done, (gint) done);
  g_atomic_int_set (&job->self->progress_total, (gint) total);
  return !g_cancellable_is_cancelled (job->cancellable);
}

/* The worker: its own context, backbone and bank handle; one transaction
 * at the end, so a cancel or crash adds nothing. */
static gboolean
add_folder (AddJob *job, GError **error)
{
  DcrContextOptions copts = { .device = job->device };
  g_autoptr (DcrContext) ctx = dcr_context_new (&copts, error);
  g_autoptr (DcrBackbone) bb = ctx ? dcr_backbone_load (ctx, "default", DCR_F32, error) : NULL;
  if (!bb)
    return FALSE;
  guint dim = dcr_backbone_dim (bb);
  g_autoptr (DcrBank) bank = dcr_bank_open (job->bank_path, dcr_backbone_id (bb), dim, FALSE, error);
  g_autoptr (GPtrArray) files = bank ? dcr_list_images (job->dir, error) : NULL;
  if (!files)
    return FALSE;
  if (files->len == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s: no PNG or JPEG images in this folder", job->dir);
      return FALSE;
    }
  guint n = files->len;
  g_autofree float *features = g_new0 (float, (gsize) n * dim);
  DcrFeatureItem *items = g_new0 (DcrFeatureItem, n);
  /* thumbnails from the pixels decoded for the features: each file decoded once */
  gboolean ok = dcr_features_extract_thumbnails (bb, (const char *const *) files->pdata, n, TRUE, 16, 128, features,
                                                 items, add_progress, job, error);
  g_autofree DcrPrototypeNew *news = g_new0 (DcrPrototypeNew, n);
  g_autofree gint64 *ids = g_new (gint64, n);
  g_autoptr (GPtrArray) thumbs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  guint m = 0;
  for (guint i = 0; ok && i < n; i++)
    {
      if (items[i].error)
        {
          job->failed++;
          continue;
        }
      if (!g_hash_table_add (seen, items[i].sha256))
        {
          job->skipped++;
          continue;
        }
      GBytes *thumb = dcr_feature_item_thumbnail (&items[i], 128);
      if (thumb)
        g_ptr_array_add (thumbs, thumb);
      news[m++] = (DcrPrototypeNew) { .feature = features + (gsize) i * dim, .source = items[i].path,
                                      .sha256 = items[i].sha256, .thumbnail = thumb,
                                      .note = "added in DCR Forensics" };
    }
  ok = ok && !g_cancellable_set_error_if_cancelled (job->cancellable, error) &&
       (m == 0 || dcr_bank_add (bank, news, m, TRUE, ids, error));
  for (guint i = 0; ok && i < m; i++)
    {
      if (ids[i] > 0)
        {
          job->added++;
          g_array_append_val (job->added_ids, ids[i]);
        }
      else
        job->skipped++;
    }
  for (guint i = 0; i < n; i++)
    dcr_feature_item_clear (&items[i]);
  g_free (items);
  return ok;
}

static void
add_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  GError *err = NULL;
  if (add_folder (data, &err))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, err);
}

static void
on_added (GObject *source, GAsyncResult *res, gpointer data)
{
  DcrBankView *self = DCR_BANK_VIEW (source);
  AddJob *job = g_task_get_task_data (G_TASK (res));
  g_autoptr (GError) err = NULL;
  gboolean ok = g_task_propagate_boolean (G_TASK (res), &err);
  if (!self->model)
    return; /* disposed while it ran */
  stop_job (self);
  if (!ok)
    {
      show_toast (self, g_error_matches (err, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                          ? "Adding cancelled: nothing was added" : err->message, FALSE);
      return;
    }
  if (job->added)
    set_undo (self, UNDO_ADD, job->added_ids, FALSE);
  refresh (self, job->added_ids);
  g_autofree char *name = g_path_get_basename (job->dir);
  g_autofree char *msg = g_strdup_printf ("Added %u image%s from %s (%u already in the bank%s%s)", job->added,
                                          job->added == 1 ? "" : "s", name, job->skipped, job->failed ? ", " : "",
                                          job->failed ? "some unreadable" : "");
  show_toast (self, msg, job->added > 0);
}

void
dcr_bank_view_add_folder (DcrBankView *self, const char *dir)
{
  g_return_if_fail (DCR_IS_BANK_VIEW (self) && dir);
  if (!self->bank || self->read_only || self->job)
    return;
  AddJob *job = g_new0 (AddJob, 1);
  job->self = self;
  job->bank_path = g_strdup (self->path);
  job->dir = g_strdup (dir);
  job->device = device_setting (self);
  job->added_ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autofree char *name = g_path_get_basename (dir);
  g_autofree char *what = g_strdup_printf ("Adding %s", name);
  job->cancellable = g_object_ref (start_job (self, what));
  run_page_task (self, on_added, job, (GDestroyNotify) add_job_free, add_thread);
}

static void
on_folder_chosen (DcrBankView *self, GFile *file)
{
  g_autofree char *dir = g_file_get_path (file);
  if (dir)
    dcr_bank_view_add_folder (self, dir);
  else
    show_toast (self, "Only local folders can be added", FALSE);
}

static void
add_folder_action (GtkWidget *widget, const char *name, GVariant *param)
{
  choose_file (DCR_BANK_VIEW (widget), CHOOSE_FOLDER, "Add a Folder of Known-Real Images", NULL, on_folder_chosen);
}

/* ---- near-duplicates ---------------------------------------------------- */

/* A near-duplicate search or a prune plan, run in a worker on its own
 * context and read-only handle of the bank. */
typedef struct {
  DcrBankView *self;
  char *bank_path, *device;
  gsize keep; /* prune only */
  GCancellable *cancellable;
} CurateJob;

static void
curate_job_free (CurateJob *job)
{
  g_free (job->bank_path);
  g_free (job->device);
  g_clear_object (&job->cancellable);
  g_free (job);
}

static gboolean
curate_progress (gsize done, gsize total, gpointer data)
{
  CurateJob *job = data;
  g_atomic_int_set (&job->self->progress_done, (gint) MIN (done, G_MAXINT));
  g_atomic_int_set (&job->self->progress_total, (gint) MIN (total, G_MAXINT));
  return TRUE;
}

static void
run_curate_job (DcrBankView *self, const char *what, gsize keep, GAsyncReadyCallback done, GTaskThreadFunc thread)
{
  CurateJob *job = g_new0 (CurateJob, 1);
  job->self = self;
  job->bank_path = g_strdup (self->path);
  job->device = device_setting (self);
  job->keep = keep;
  job->cancellable = g_object_ref (start_job (self, what));
  run_page_task (self, done, job, (GDestroyNotify) curate_job_free, thread);
}

static void
dedup_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  CurateJob *job = data;
  GError *err = NULL;
  DcrContextOptions copts = { .device = job->device };
  g_autoptr (DcrContext) ctx = dcr_context_new (&copts, &err);
  g_autoptr (DcrBank) bank = ctx ? dcr_bank_open (job->bank_path, NULL, 0, TRUE, &err) : NULL;
  DcrCurateOptions opts = { .dtype = DCR_F32, .progress = curate_progress, .user_data = job,
                            .cancellable = job->cancellable };
  DcrBankDuplicates *d = bank ? dcr_bank_find_duplicates (bank, ctx, DCR_CURATE_DEFAULT_THRESHOLD, &opts, &err)
                              : NULL;
  /* the device goes before the result: the app may quit right after it */
  g_clear_pointer (&bank, dcr_bank_close);
  g_clear_pointer (&ctx, dcr_context_free);
  if (d)
    g_task_return_pointer (task, d, (GDestroyNotify) dcr_bank_duplicates_free);
  else
    g_task_return_error (task, err);
}

static void
on_deduplicated (GObject *source, GAsyncResult *res, gpointer data)
{
  DcrBankView *self = DCR_BANK_VIEW (source);
  g_autoptr (GError) err = NULL;
  DcrBankDuplicates *d = g_task_propagate_pointer (G_TASK (res), &err);
  if (!self->model)
    {
      dcr_bank_duplicates_free (d);
      return;
    }
  stop_job (self);
  if (!d)
    {
      show_toast (self, g_error_matches (err, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? "Search for duplicates cancelled"
                                                                                  : err->message, FALSE);
      return;
    }
  g_clear_pointer (&self->dups, dcr_bank_duplicates_free);
  g_clear_pointer (&self->group_of, g_hash_table_unref);
  self->dups = d;
  self->group_of = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  for (guint g = 0; g < d->groups->len; g++)
    {
      GArray *grp = d->groups->pdata[g];
      for (guint i = 0; i < grp->len; i++)
        g_hash_table_insert (self->group_of, g_memdup2 (&g_array_index (grp, gint64, i), sizeof (gint64)),
                             GUINT_TO_POINTER (g + 1));
    }
  g_autofree char *msg = d->groups->len
    ? g_strdup_printf ("%u group%s of near-duplicates (cosine ≥ %.2f): %u prototype%s could go, one of each group "
                       "stays (the pinned ones, or else the first added)",
                       d->groups->len, d->groups->len == 1 ? "" : "s", DCR_CURATE_DEFAULT_THRESHOLD,
                       d->redundant->len, d->redundant->len == 1 ? "" : "s")
    : g_strdup_printf ("No near-duplicates (cosine ≥ %.2f) among the enabled prototypes", DCR_CURATE_DEFAULT_THRESHOLD);
  gtk_label_set_label (self->dup_label, msg);
  gtk_revealer_set_reveal_child (self->dup_revealer, TRUE);
  /* the Group column and its order changed for every row: read the list again */
  gtk_sorter_changed (gtk_column_view_column_get_sorter (self->group_column), GTK_SORTER_CHANGE_DIFFERENT);
  refresh (self, NULL);
}

static void
find_duplicates_action (GtkWidget *widget, const char *name, GVariant *param)
{
  DcrBankView *self = DCR_BANK_VIEW (widget);
  if (!self->bank || self->job)
    return;
  run_curate_job (self, "Comparing every prototype with every other", 0, on_deduplicated, dedup_thread);
}

static void
show_duplicates_action (GtkWidget *widget, const char *name, GVariant *param)
{
  DcrBankView *self = DCR_BANK_VIEW (widget);
  gtk_drop_down_set_selected (self->filter_dropdown, FILTER_DUPLICATES);
  gtk_column_view_sort_by_column (self->column_view, self->group_column, GTK_SORT_ASCENDING);
}

/* Disables those of `candidates` (ids) that are enabled, in one change
 * that can be undone, and hides `revealer`; returns how many, 0 after a
 * toast saying why nothing changed. */
static guint
disable_enabled (DcrBankView *self, GArray *candidates, GtkRevealer *revealer, const char *none_enabled)
{
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  for (guint i = 0; i < candidates->len; i++)
    {
      DcrBankItem *item = dcr_bank_model_lookup (self->model, g_array_index (candidates, gint64, i));
      if (item && dcr_bank_item_get_prototype (item)->enabled)
        g_array_append_val (ids, dcr_bank_item_get_prototype (item)->id);
    }
  gtk_revealer_set_reveal_child (revealer, FALSE);
  if (ids->len == 0)
    {
      show_toast (self, none_enabled, FALSE);
      return 0;
    }
  g_autoptr (GError) err = NULL;
  if (!dcr_bank_set_enabled (self->bank, (gint64 *) ids->data, ids->len, FALSE, &err))
    {
      show_toast (self, err->message, FALSE);
      return 0;
    }
  set_undo (self, UNDO_ENABLED, ids, TRUE);
  refresh (self, ids);
  return ids->len;
}

static void
disable_redundant_action (GtkWidget *widget, const char *name, GVariant *param)
{
  DcrBankView *self = DCR_BANK_VIEW (widget);
  if (!self->dups)
    return;
  guint n = disable_enabled (self, self->dups->redundant, self->dup_revealer,
                             "The redundant near-duplicates are disabled already");
  if (!n)
    return;
  g_autofree char *msg = g_strdup_printf ("%u near-duplicate%s disabled", n, n == 1 ? "" : "s");
  show_toast (self, msg, TRUE);
}

/* ---- pruning ------------------------------------------------------------ */

static void
prune_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  CurateJob *job = data;
  GError *err = NULL;
  DcrContextOptions copts = { .device = job->device };
  g_autoptr (DcrContext) ctx = dcr_context_new (&copts, &err);
  g_autoptr (DcrBank) bank = ctx ? dcr_bank_open (job->bank_path, NULL, 0, TRUE, &err) : NULL;
  DcrCurateOptions opts = { .dtype = DCR_F32, .progress = curate_progress, .user_data = job,
                            .cancellable = job->cancellable };
  DcrBankPrunePlan *plan = bank ? dcr_bank_plan_prune (bank, ctx, job->keep, &opts, &err) : NULL;
  g_clear_pointer (&bank, dcr_bank_close);
  g_clear_pointer (&ctx, dcr_context_free);
  if (plan)
    g_task_return_pointer (task, plan, (GDestroyNotify) dcr_bank_prune_plan_free);
  else
    g_task_return_error (task, err);
}

static void
on_pruned (GObject *source, GAsyncResult *res, gpointer data)
{
  DcrBankView *self = DCR_BANK_VIEW (source);
  g_autoptr (GError) err = NULL;
  DcrBankPrunePlan *plan = g_task_propagate_pointer (G_TASK (res), &err);
  if (!self->model)
    {
      dcr_bank_prune_plan_free (plan);
      return;
    }
  stop_job (self);
  if (!plan)
    {
      show_toast (self, g_error_matches (err, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? "Pruning preview cancelled"
                                                                                  : err->message, FALSE);
      return;
    }
  g_clear_pointer (&self->prune, dcr_bank_prune_plan_free);
  g_clear_pointer (&self->pruned, g_hash_table_unref);
  self->prune = plan;
  self->pruned = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  for (guint i = 0; i < plan->dropped->len; i++)
    g_hash_table_add (self->pruned, g_memdup2 (&g_array_index (plan->dropped, gint64, i), sizeof (gint64)));
  guint enabled = plan->kept->len + plan->dropped->len;
  g_autofree char *msg = g_strdup_printf ("Keeping %u of %u enabled prototypes (%" G_GSIZE_FORMAT " pinned) by "
                                          "k-center selection leaves every dropped one within cosine distance %.3f "
                                          "of a kept one; %u would go",
                                          plan->kept->len, enabled, plan->n_pinned, plan->radius, plan->dropped->len);
  gtk_label_set_label (self->prune_label, msg);
  gtk_revealer_set_reveal_child (self->prune_revealer, TRUE);
  gtk_filter_changed (GTK_FILTER (self->filter), GTK_FILTER_CHANGE_DIFFERENT);
  update_actions (self);
}

static void
plan_prune_action (GtkWidget *widget, const char *name, GVariant *param)
{
  DcrBankView *self = DCR_BANK_VIEW (widget);
  if (!self->bank || self->job)
    return;
  run_curate_job (self, "Choosing the prototypes to keep", (gsize) gtk_spin_button_get_value_as_int (self->keep_spin),
                  on_pruned, prune_thread);
}

static void
show_pruned_action (GtkWidget *widget, const char *name, GVariant *param)
{
  gtk_drop_down_set_selected (DCR_BANK_VIEW (widget)->filter_dropdown, FILTER_PRUNED);
}

static void
apply_prune_action (GtkWidget *widget, const char *name, GVariant *param)
{
  DcrBankView *self = DCR_BANK_VIEW (widget);
  if (!self->prune)
    return;
  guint n = disable_enabled (self, self->prune->dropped, self->prune_revealer,
                             "The prototypes pruning would drop are disabled already");
  if (!n)
    return;
  g_autofree char *msg = g_strdup_printf ("Pruned: %u prototype%s disabled", n, n == 1 ? "" : "s");
  show_toast (self, msg, TRUE);
}

/* ---- the list ----------------------------------------------------------- */

static gboolean
filter_func (gpointer object, gpointer data)
{
  DcrBankView *self = data;
  const DcrPrototype *p = dcr_bank_item_get_prototype (object);
  switch (gtk_drop_down_get_selected (self->filter_dropdown))
    {
    case FILTER_ENABLED:
      if (!p->enabled)
        return FALSE;
      break;
    case FILTER_DISABLED:
      if (p->enabled)
        return FALSE;
      break;
    case FILTER_PINNED:
      if (!p->pinned)
        return FALSE;
      break;
    case FILTER_DUPLICATES:
      if (!self->group_of || !g_hash_table_contains (self->group_of, &p->id))
        return FALSE;
      break;
    case FILTER_PRUNED:
      if (!self->pruned || !g_hash_table_contains (self->pruned, &p->id))
        return FALSE;
      break;
    case FILTER_RETRIEVED:
      if (p->retrievals == 0)
        return FALSE;
      break;
    case FILTER_NEVER_RETRIEVED:
      if (p->retrievals != 0)
        return FALSE;
      break;
    case FILTER_RECENT:
      if (!p->added || g_date_time_to_unix (p->added) < self->recent_since)
        return FALSE;
      break;
    default:
      break;
    }
  if (!self->search_fold)
    return TRUE;
  if (p->sha256 && g_str_has_prefix (p->sha256, self->search_fold))
    return TRUE;
  const char *fields[] = { p->source, p->note };
  for (gsize i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      if (!fields[i])
        continue;
      g_autofree char *fold = g_utf8_casefold (fields[i], -1);
      if (strstr (fold, self->search_fold))
        return TRUE;
    }
  return FALSE;
}

static void
on_search_changed (GtkSearchEntry *entry, DcrBankView *self)
{
  const char *text = gtk_editable_get_text (GTK_EDITABLE (entry));
  g_clear_pointer (&self->search_fold, g_free);
  if (text && *text)
    self->search_fold = g_utf8_casefold (text, -1);
  gtk_filter_changed (GTK_FILTER (self->filter), GTK_FILTER_CHANGE_DIFFERENT);
}

static void
on_filter_selected (GObject *dropdown, GParamSpec *pspec, DcrBankView *self)
{
  self->recent_since = g_get_real_time () / G_USEC_PER_SEC - 7 * 24 * 3600;
  gtk_filter_changed (GTK_FILTER (self->filter), GTK_FILTER_CHANGE_DIFFERENT);
}

typedef char *(*ColumnText) (DcrBankView *self, const DcrPrototype *p);

typedef struct {
  const char *title;
  ColumnText text;       /* NULL: the thumbnail */
  GCompareDataFunc cmp;  /* NULL: not sortable */
  gboolean expand;
  PangoEllipsizeMode ellipsize;
  int width;             /* fixed width, or -1 */
} Column;

#define PROTO(x) dcr_bank_item_get_prototype ((DcrBankItem *) (x))

static char *
text_id (DcrBankView *self, const DcrPrototype *p)
{
  return g_strdup_printf ("%" G_GINT64_FORMAT, p->id);
}

static char *
text_source (DcrBankView *self, const DcrPrototype *p)
{
  return g_strdup (p->source ? p->source : "");
}

static char *
text_added (DcrBankView *self, const DcrPrototype *p)
{
  return p->added ? g_date_time_format (p->added, "%Y-%m-%d %H:%M") : g_strdup ("");
}

static char *
text_enabled (DcrBankView *self, const DcrPrototype *p)
{
  return g_strdup (p->enabled ? "yes" : "no");
}

static char *
text_pinned (DcrBankView *self, const DcrPrototype *p)
{
  return g_strdup (p->pinned ? "pinned" : "");
}

static char *
text_retrievals (DcrBankView *self, const DcrPrototype *p)
{
  return g_strdup_printf ("%" G_GINT64_FORMAT, p->retrievals);
}

static char *
text_note (DcrBankView *self, const DcrPrototype *p)
{
  return g_strdup (p->note ? p->note : "");
}

static guint
group_of (DcrBankView *self, const DcrPrototype *p)
{
  return self->group_of ? GPOINTER_TO_UINT (g_hash_table_lookup (self->group_of, &p->id)) : 0;
}

static char *
text_group (DcrBankView *self, const DcrPrototype *p)
{
  guint g = group_of (self, p);
  return g ? g_strdup_printf ("%u", g) : g_strdup ("");
}

static int
cmp_i64 (gint64 a, gint64 b)
{
  return a < b ? -1 : a > b;
}

static int
cmp_id (gconstpointer a, gconstpointer b, gpointer data)
{
  return cmp_i64 (PROTO (a)->id, PROTO (b)->id);
}

static int
cmp_source (gconstpointer a, gconstpointer b, gpointer data)
{
  int c = g_strcmp0 (PROTO (a)->source, PROTO (b)->source);
  return c ? c : cmp_id (a, b, data);
}

static int
cmp_added (gconstpointer a, gconstpointer b, gpointer data)
{
  GDateTime *x = PROTO (a)->added, *y = PROTO (b)->added;
  int c = x && y ? g_date_time_compare (x, y) : (x != NULL) - (y != NULL);
  return c ? c : cmp_id (a, b, data);
}

static int
cmp_enabled (gconstpointer a, gconstpointer b, gpointer data)
{
  int c = PROTO (a)->enabled - PROTO (b)->enabled;
  return c ? c : cmp_id (a, b, data);
}

static int
cmp_pinned (gconstpointer a, gconstpointer b, gpointer data)
{
  int c = PROTO (a)->pinned - PROTO (b)->pinned;
  return c ? c : cmp_id (a, b, data);
}

static int
cmp_retrievals (gconstpointer a, gconstpointer b, gpointer data)
{
  int c = cmp_i64 (PROTO (a)->retrievals, PROTO (b)->retrievals);
  return c ? c : cmp_id (a, b, data);
}

static int
cmp_note (gconstpointer a, gconstpointer b, gpointer data)
{
  int c = g_strcmp0 (PROTO (a)->note, PROTO (b)->note);
  return c ? c : cmp_id (a, b, data);
}

static int
cmp_group (gconstpointer a, gconstpointer b, gpointer data)
{
  /* members of a group first, in group order; the rest after */
  guint x = group_of (data, PROTO (a)), y = group_of (data, PROTO (b));
  x = x ? x : G_MAXUINT;
  y = y ? y : G_MAXUINT;
  int c = x < y ? -1 : x > y;
  return c ? c : cmp_id (a, b, data);
}

static const Column columns[] = {
  { "", NULL, NULL, FALSE, PANGO_ELLIPSIZE_NONE, -1 },
  { "ID", text_id, cmp_id, FALSE, PANGO_ELLIPSIZE_NONE, -1 },
  { "Source", text_source, cmp_source, TRUE, PANGO_ELLIPSIZE_START, 240 },
  { "Added", text_added, cmp_added, FALSE, PANGO_ELLIPSIZE_NONE, -1 },
  { "Enabled", text_enabled, cmp_enabled, FALSE, PANGO_ELLIPSIZE_NONE, -1 },
  { "Pinned", text_pinned, cmp_pinned, FALSE, PANGO_ELLIPSIZE_NONE, -1 },
  { "Retrieved", text_retrievals, cmp_retrievals, FALSE, PANGO_ELLIPSIZE_NONE, -1 },
  { "Group", text_group, cmp_group, FALSE, PANGO_ELLIPSIZE_NONE, -1 },
  { "Note", text_note, cmp_note, TRUE, PANGO_ELLIPSIZE_END, 160 },
};

static void
setup_cell (GtkSignalListItemFactory *factory, GtkListItem *li, gpointer data)
{
  const Column *col = g_object_get_data (G_OBJECT (factory), "column");
  if (!col->text)
    {
      GtkWidget *pic = gtk_picture_new ();
      gtk_widget_set_size_request (pic, 48, 48);
      gtk_picture_set_can_shrink (GTK_PICTURE (pic), TRUE);
      gtk_list_item_set_child (li, pic);
      return;
    }
  GtkWidget *label = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_ellipsize (GTK_LABEL (label), col->ellipsize);
  gtk_list_item_set_child (li, label);
}

static GtkPicture *
cell_picture (GtkListItem *li)
{
  GtkWidget *child = gtk_list_item_get_child (li);
  if (child && !GTK_IS_PICTURE (child))
    child = gtk_widget_get_first_child (child); /* a grid cell: the picture over the labels */
  return child && GTK_IS_PICTURE (child) ? GTK_PICTURE (child) : NULL;
}

static void
on_thumbnail_decoded (GObject *source, GAsyncResult *res, gpointer data)
{
  GtkListItem *li = data;
  g_autoptr (GdkTexture) tex = dcr_bank_item_load_thumbnail_finish (DCR_BANK_ITEM (source), res, NULL);
  GtkPicture *pic = cell_picture (li);
  /* the cell may show another prototype by now */
  if (pic && gtk_list_item_get_item (li) == (gpointer) source)
    gtk_picture_set_paintable (pic, GDK_PAINTABLE (tex));
  g_object_unref (li);
}

/* Shows the thumbnail at once when it is decoded, else decodes it in a
 * worker: a fast scroll through 100,000 never waits on PNG decoding. */
static void
bind_thumbnail (GtkListItem *li, GtkPicture *pic, DcrBankItem *item)
{
  g_autoptr (GdkTexture) tex = dcr_bank_item_peek_thumbnail (item);
  gtk_picture_set_paintable (pic, GDK_PAINTABLE (tex));
  if (!tex && dcr_bank_item_has_thumbnail (item))
    dcr_bank_item_load_thumbnail_async (item, NULL, on_thumbnail_decoded, g_object_ref (li));
}

static void
bind_cell (GtkSignalListItemFactory *factory, GtkListItem *li, gpointer data)
{
  DcrBankView *self = data;
  const Column *col = g_object_get_data (G_OBJECT (factory), "column");
  DcrBankItem *item = gtk_list_item_get_item (li);
  GtkWidget *child = gtk_list_item_get_child (li);
  if (!col->text)
    {
      bind_thumbnail (li, GTK_PICTURE (child), item);
      return;
    }
  g_autofree char *text = col->text (self, dcr_bank_item_get_prototype (item));
  gtk_label_set_label (GTK_LABEL (child), text);
  if (col->ellipsize != PANGO_ELLIPSIZE_NONE)
    gtk_widget_set_tooltip_text (child, *text ? text : NULL);
}

/* A row scrolled out of view lets go of its thumbnail, so that only what is
 * on screen stays decoded. */
static void
unbind_cell (GtkSignalListItemFactory *factory, GtkListItem *li, gpointer data)
{
  GtkWidget *child = gtk_list_item_get_child (li);
  if (GTK_IS_PICTURE (child))
    gtk_picture_set_paintable (GTK_PICTURE (child), NULL);
}

static void
add_columns (DcrBankView *self)
{
  for (gsize i = 0; i < G_N_ELEMENTS (columns); i++)
    {
      GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
      g_object_set_data (G_OBJECT (factory), "column", (gpointer) &columns[i]);
      g_signal_connect (factory, "setup", G_CALLBACK (setup_cell), self);
      g_signal_connect (factory, "bind", G_CALLBACK (bind_cell), self);
      g_signal_connect (factory, "unbind", G_CALLBACK (unbind_cell), self);
      GtkColumnViewColumn *col = gtk_column_view_column_new (columns[i].title, factory);
      gtk_column_view_column_set_expand (col, columns[i].expand);
      gtk_column_view_column_set_resizable (col, TRUE);
      gtk_column_view_column_set_fixed_width (col, columns[i].width);
      if (columns[i].cmp)
        {
          GtkCustomSorter *sorter = gtk_custom_sorter_new (columns[i].cmp, self, NULL);
          gtk_column_view_column_set_sorter (col, GTK_SORTER (sorter));
          g_object_unref (sorter);
        }
      if (columns[i].text == text_group)
        self->group_column = col;
      ColumnText keys[N_SORT_KEYS] = {
        [SORT_ID] = text_id, [SORT_SOURCE] = text_source, [SORT_ADDED] = text_added,
        [SORT_ENABLED] = text_enabled, [SORT_RETRIEVALS] = text_retrievals,
      };
      for (guint k = 0; k < N_SORT_KEYS; k++)
        if (columns[i].text == keys[k])
          self->sort_columns[k] = col;
      gtk_column_view_append_column (self->column_view, col);
      g_object_unref (col);
    }
}

/* ---- the thumbnail grid ------------------------------------------------- */

/* A cell: the thumbnail over the file name and the id; disabled ones faded.
 * Thumbnails are decoded (in a worker) on bind and let go on unbind:
 * GtkGridView only binds the cells on screen (plus a few), so 100,000
 * prototypes cost nothing until scrolled to. */
static void
grid_setup (GtkSignalListItemFactory *factory, GtkListItem *li, gpointer data)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  gtk_widget_set_margin_top (box, 4);
  gtk_widget_set_margin_bottom (box, 4);
  gtk_widget_set_margin_start (box, 4);
  gtk_widget_set_margin_end (box, 4);
  GtkWidget *pic = gtk_picture_new ();
  gtk_widget_set_size_request (pic, 112, 112);
  gtk_picture_set_can_shrink (GTK_PICTURE (pic), TRUE);
  gtk_box_append (GTK_BOX (box), pic);
  GtkWidget *name = gtk_label_new (NULL);
  gtk_label_set_ellipsize (GTK_LABEL (name), PANGO_ELLIPSIZE_MIDDLE);
  gtk_label_set_max_width_chars (GTK_LABEL (name), 14);
  gtk_label_set_width_chars (GTK_LABEL (name), 14);
  gtk_box_append (GTK_BOX (box), name);
  GtkWidget *state = gtk_label_new (NULL);
  gtk_widget_add_css_class (state, "dim-label");
  gtk_widget_add_css_class (state, "caption");
  gtk_box_append (GTK_BOX (box), state);
  gtk_list_item_set_child (li, box);
}

static void
grid_bind (GtkSignalListItemFactory *factory, GtkListItem *li, gpointer data)
{
  DcrBankItem *item = gtk_list_item_get_item (li);
  const DcrPrototype *p = dcr_bank_item_get_prototype (item);
  GtkWidget *box = gtk_list_item_get_child (li);
  GtkWidget *pic = gtk_widget_get_first_child (box);
  GtkWidget *name = gtk_widget_get_next_sibling (pic);
  GtkWidget *state = gtk_widget_get_next_sibling (name);
  bind_thumbnail (li, GTK_PICTURE (pic), item);
  g_autofree char *base = p->source ? g_path_get_basename (p->source) : g_strdup ("(no source)");
  gtk_label_set_label (GTK_LABEL (name), base);
  g_autofree char *text = g_strdup_printf ("#%" G_GINT64_FORMAT "%s%s", p->id, p->enabled ? "" : " · disabled",
                                           p->pinned ? " · pinned" : "");
  gtk_label_set_label (GTK_LABEL (state), text);
  gtk_widget_set_opacity (box, p->enabled ? 1.0 : 0.45);
  g_autofree char *added = p->added ? g_date_time_format (p->added, "%Y-%m-%d %H:%M") : g_strdup ("?");
  g_autofree char *tip = g_strdup_printf ("%s\nadded %s · retrieved %" G_GINT64_FORMAT " time%s%s%s",
                                          p->source ? p->source : "(no source)", added, p->retrievals,
                                          p->retrievals == 1 ? "" : "s", p->note && *p->note ? "\n" : "",
                                          p->note ? p->note : "");
  gtk_widget_set_tooltip_text (box, tip);
}

static void
grid_unbind (GtkSignalListItemFactory *factory, GtkListItem *li, gpointer data)
{
  GtkWidget *box = gtk_list_item_get_child (li);
  gtk_picture_set_paintable (GTK_PICTURE (gtk_widget_get_first_child (box)), NULL);
}

static void scroll_to (DcrBankView *self, guint pos);

/* Only the view shown has the model: a re-sort or a new search changes every
 * row, and a hidden view would otherwise rebuild its rows too. */
static void
on_mode_toggled (GtkToggleButton *button, GParamSpec *pspec, DcrBankView *self)
{
  gboolean grid = gtk_toggle_button_get_active (self->grid_toggle);
  GtkSelectionModel *model = GTK_SELECTION_MODEL (self->selection);
  gtk_stack_set_visible_child_name (self->view_stack, grid ? "grid" : "list");
  gtk_column_view_set_model (self->column_view, grid ? NULL : model);
  gtk_grid_view_set_model (self->grid_view, grid ? model : NULL);
  g_autoptr (GtkBitset) set = gtk_selection_model_get_selection (model);
  if (!gtk_bitset_is_empty (set))
    scroll_to (self, gtk_bitset_get_minimum (set));
  g_autofree char *mode = g_settings_get_string (self->settings, "bank-view-mode");
  if (g_strcmp0 (mode, grid ? "grid" : "list") != 0)
    g_settings_set_string (self->settings, "bank-view-mode", grid ? "grid" : "list");
}

/* The sort dropdown sorts through the column view's sorter, which the list
 * and the grid share; clicking a column header sorts both as well. */
static void
on_sort_changed (GObject *object, GParamSpec *pspec, DcrBankView *self)
{
  guint key = gtk_drop_down_get_selected (self->sort_dropdown);
  if (key >= N_SORT_KEYS)
    return;
  gboolean desc = gtk_toggle_button_get_active (self->sort_descending);
  gtk_column_view_sort_by_column (self->column_view, self->sort_columns[key],
                                  desc ? GTK_SORT_DESCENDING : GTK_SORT_ASCENDING);
}

static void
scroll_to (DcrBankView *self, guint pos)
{
  GtkWidget *list = GTK_WIDGET (self->grid_view);
  if (!gtk_toggle_button_get_active (self->grid_toggle))
    for (list = gtk_widget_get_first_child (GTK_WIDGET (self->column_view)); list && !GTK_IS_LIST_VIEW (list);
         list = gtk_widget_get_next_sibling (list))
      ;
  if (list)
    gtk_widget_activate_action (list, "list.scroll-to-item", "u", pos);
}

static gboolean
find_row (DcrBankView *self, gint64 id, guint *pos)
{
  GListModel *rows = G_LIST_MODEL (self->selection);
  guint n = g_list_model_get_n_items (rows);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (DcrBankItem) item = g_list_model_get_item (rows, i);
      if (dcr_bank_item_get_id (item) == id)
        {
          *pos = i;
          return TRUE;
        }
    }
  return FALSE;
}

gboolean
dcr_bank_view_select_prototype (DcrBankView *self, gint64 id)
{
  g_return_val_if_fail (DCR_IS_BANK_VIEW (self), FALSE);
  guint pos;
  if (!dcr_bank_model_lookup (self->model, id))
    return FALSE;
  if (!find_row (self, id, &pos))
    {
      /* hidden by the search or the filter: show everything */
      dcr_bank_view_set_search (self, NULL);
      gtk_drop_down_set_selected (self->filter_dropdown, FILTER_ALL);
      if (!find_row (self, id, &pos))
        return FALSE;
    }
  gtk_selection_model_select_item (GTK_SELECTION_MODEL (self->selection), pos, TRUE);
  scroll_to (self, pos);
  return TRUE;
}

void
dcr_bank_view_set_grid (DcrBankView *self, gboolean grid)
{
  g_return_if_fail (DCR_IS_BANK_VIEW (self));
  gtk_toggle_button_set_active (grid ? self->grid_toggle : self->list_toggle, TRUE);
}

gboolean
dcr_bank_view_get_grid (DcrBankView *self)
{
  g_return_val_if_fail (DCR_IS_BANK_VIEW (self), FALSE);
  return gtk_toggle_button_get_active (self->grid_toggle);
}

GArray *
dcr_bank_view_get_neighbours (DcrBankView *self)
{
  g_return_val_if_fail (DCR_IS_BANK_VIEW (self), NULL);
  return self->nb_shown >= 0 && self->nb_shown == self->nb_wanted ? self->neighbours : NULL;
}

/* ---- statistics and the audit log --------------------------------------- */

DcrBankStatsWindow *
dcr_bank_view_show_statistics (DcrBankView *self)
{
  g_return_val_if_fail (DCR_IS_BANK_VIEW (self), NULL);
  if (!self->bank)
    return NULL;
  if (self->stats_window)
    gtk_window_destroy (self->stats_window);
  GtkWindow *parent = GTK_WINDOW (gtk_widget_get_root (GTK_WIDGET (self)));
  DcrBankStatsWindow *win = dcr_bank_stats_window_new (parent, self->path, G_LIST_MODEL (self->model));
  self->stats_window = GTK_WINDOW (win);
  g_object_add_weak_pointer (G_OBJECT (win), (gpointer *) &self->stats_window);
  gtk_window_present (GTK_WINDOW (win));
  return win;
}

DcrBankAuditWindow *
dcr_bank_view_show_audit_log (DcrBankView *self)
{
  g_return_val_if_fail (DCR_IS_BANK_VIEW (self), NULL);
  if (!self->bank)
    return NULL;
  if (self->audit_window)
    gtk_window_destroy (self->audit_window);
  g_autoptr (GError) err = NULL;
  GtkWindow *parent = GTK_WINDOW (gtk_widget_get_root (GTK_WIDGET (self)));
  DcrBankAuditWindow *win = dcr_bank_audit_window_new (parent, self->bank, 1000, &err);
  if (!win)
    {
      show_toast (self, err->message, FALSE);
      return NULL;
    }
  self->audit_window = GTK_WINDOW (win);
  g_object_add_weak_pointer (G_OBJECT (win), (gpointer *) &self->audit_window);
  gtk_window_present (GTK_WINDOW (win));
  return win;
}

static void
statistics_action (GtkWidget *widget, const char *name, GVariant *param)
{
  dcr_bank_view_show_statistics (DCR_BANK_VIEW (widget));
}

static void
audit_log_action (GtkWidget *widget, const char *name, GVariant *param)
{
  dcr_bank_view_show_audit_log (DCR_BANK_VIEW (widget));
}

/* ---- the widget --------------------------------------------------------- */

GtkSelectionModel *
dcr_bank_view_get_selection (DcrBankView *self)
{
  g_return_val_if_fail (DCR_IS_BANK_VIEW (self), NULL);
  return GTK_SELECTION_MODEL (self->selection);
}

gboolean
dcr_bank_view_is_busy (DcrBankView *self)
{
  g_return_val_if_fail (DCR_IS_BANK_VIEW (self), FALSE);
  return self->job != NULL;
}

void
dcr_bank_view_set_search (DcrBankView *self, const char *text)
{
  g_return_if_fail (DCR_IS_BANK_VIEW (self));
  gtk_editable_set_text (GTK_EDITABLE (self->search_entry), text ? text : "");
  /* now, not after the entry's typing delay */
  on_search_changed (self->search_entry, self);
}

const DcrBankDuplicates *
dcr_bank_view_get_duplicates (DcrBankView *self)
{
  g_return_val_if_fail (DCR_IS_BANK_VIEW (self), NULL);
  return self->dups;
}

const char *
dcr_bank_view_get_last_message (DcrBankView *self)
{
  g_return_val_if_fail (DCR_IS_BANK_VIEW (self), NULL);
  return self->last_message;
}

static void
on_note_activate (GtkEntry *entry, DcrBankView *self)
{
  gtk_widget_activate_action (GTK_WIDGET (self), "bank.save-note", NULL);
}

static void
on_map (GtkWidget *widget, gpointer data)
{
  dcr_bank_view_load_preferred (DCR_BANK_VIEW (widget));
}

static void
dcr_bank_view_dispose (GObject *object)
{
  DcrBankView *self = DCR_BANK_VIEW (object);
  if (self->job)
    g_cancellable_cancel (self->job);
  g_clear_handle_id (&self->progress_source, g_source_remove);
  g_clear_object (&self->job);
  if (self->settings)
    g_signal_handlers_disconnect_by_data (self->settings, self);
  g_clear_object (&self->settings);
  if (self->toast)
    g_object_remove_weak_pointer (G_OBJECT (self->toast), (gpointer *) &self->toast);
  self->toast = NULL;
  if (self->model)
    close_bank (self);
  if (self->selection)
    g_signal_handlers_disconnect_by_data (self->selection, self);
  g_clear_object (&self->selection);
  g_clear_object (&self->filter);
  g_clear_object (&self->model);
  /* the toast overlay is both the bin's child and a template child: the bin lets go first */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), DCR_TYPE_BANK_VIEW);
  G_OBJECT_CLASS (dcr_bank_view_parent_class)->dispose (object);
}

static void
dcr_bank_view_finalize (GObject *object)
{
  DcrBankView *self = DCR_BANK_VIEW (object);
  undo_clear (&self->undo);
  g_free (self->search_fold);
  g_free (self->last_message);
  g_free (self->counts);
  G_OBJECT_CLASS (dcr_bank_view_parent_class)->finalize (object);
}

static void
dcr_bank_view_class_init (DcrBankViewClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  G_OBJECT_CLASS (klass)->dispose = dcr_bank_view_dispose;
  G_OBJECT_CLASS (klass)->finalize = dcr_bank_view_finalize;
  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/dcrforensics/DcrForensics/dcr-bank-view.ui");
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, stack);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, none_page);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, title_label);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, selection_label);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, progress_label);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, dup_label);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, detail_label);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, search_entry);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, filter_dropdown);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, progress_revealer);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, dup_revealer);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, column_view);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, detail_picture);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, note_entry);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, prune_label);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, prune_revealer);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, keep_spin);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, view_stack);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, grid_view);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, list_toggle);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, grid_toggle);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, sort_dropdown);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, sort_descending);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, neighbours_label);
  gtk_widget_class_bind_template_child (widget_class, DcrBankView, neighbours_box);
  gtk_widget_class_install_action (widget_class, "bank.enable", NULL, flag_action);
  gtk_widget_class_install_action (widget_class, "bank.disable", NULL, flag_action);
  gtk_widget_class_install_action (widget_class, "bank.pin", NULL, flag_action);
  gtk_widget_class_install_action (widget_class, "bank.unpin", NULL, flag_action);
  gtk_widget_class_install_action (widget_class, "bank.remove", NULL, remove_action);
  gtk_widget_class_install_action (widget_class, "bank.save-note", NULL, save_note_action);
  gtk_widget_class_install_action (widget_class, "bank.undo", NULL, undo_action);
  gtk_widget_class_install_action (widget_class, "bank.import", NULL, file_action);
  gtk_widget_class_install_action (widget_class, "bank.export", NULL, file_action);
  gtk_widget_class_install_action (widget_class, "bank.open-bank", NULL, file_action);
  gtk_widget_class_install_action (widget_class, "bank.add-folder", NULL, add_folder_action);
  gtk_widget_class_install_action (widget_class, "bank.find-duplicates", NULL, find_duplicates_action);
  gtk_widget_class_install_action (widget_class, "bank.show-duplicates", NULL, show_duplicates_action);
  gtk_widget_class_install_action (widget_class, "bank.disable-redundant", NULL, disable_redundant_action);
  gtk_widget_class_install_action (widget_class, "bank.plan-prune", NULL, plan_prune_action);
  gtk_widget_class_install_action (widget_class, "bank.show-pruned", NULL, show_pruned_action);
  gtk_widget_class_install_action (widget_class, "bank.apply-prune", NULL, apply_prune_action);
  gtk_widget_class_install_action (widget_class, "bank.cancel", NULL, cancel_action);
  gtk_widget_class_install_action (widget_class, "bank.statistics", NULL, statistics_action);
  gtk_widget_class_install_action (widget_class, "bank.audit-log", NULL, audit_log_action);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_z, GDK_CONTROL_MASK, "bank.undo", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Delete, 0, "bank.remove", NULL);
}

static void
dcr_bank_view_init (DcrBankView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->settings = g_settings_new (DCR_APP_ID);
  g_signal_connect (self->settings, "changed::bank-file", G_CALLBACK (on_bank_setting_changed), self);
  self->model = dcr_bank_model_new ();
  self->filter = gtk_custom_filter_new (filter_func, self, NULL);
  add_columns (self);
  GtkFilterListModel *filtered = gtk_filter_list_model_new (g_object_ref (G_LIST_MODEL (self->model)),
                                                            g_object_ref (GTK_FILTER (self->filter)));
  GtkSorter *sorter = gtk_column_view_get_sorter (self->column_view);
  GtkSortListModel *sorted = gtk_sort_list_model_new (G_LIST_MODEL (filtered), sorter ? g_object_ref (sorter) : NULL);
  self->selection = gtk_multi_selection_new (G_LIST_MODEL (sorted));
  GtkListItemFactory *grid_factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (grid_factory, "setup", G_CALLBACK (grid_setup), self);
  g_signal_connect (grid_factory, "bind", G_CALLBACK (grid_bind), self);
  g_signal_connect (grid_factory, "unbind", G_CALLBACK (grid_unbind), self);
  gtk_grid_view_set_factory (self->grid_view, grid_factory);
  g_object_unref (grid_factory);
  self->nb_shown = self->nb_wanted = -1;
  g_autofree char *mode = g_settings_get_string (self->settings, "bank-view-mode");
  dcr_bank_view_set_grid (self, g_str_equal (mode, "grid"));
  on_mode_toggled (self->grid_toggle, NULL, self);
  g_signal_connect (self->grid_toggle, "notify::active", G_CALLBACK (on_mode_toggled), self);
  g_signal_connect (self->sort_dropdown, "notify::selected", G_CALLBACK (on_sort_changed), self);
  g_signal_connect (self->sort_descending, "notify::active", G_CALLBACK (on_sort_changed), self);
  g_signal_connect (self->selection, "selection-changed", G_CALLBACK (on_selection_changed), self);
  g_signal_connect (self->search_entry, "search-changed", G_CALLBACK (on_search_changed), self);
  g_signal_connect (self->filter_dropdown, "notify::selected", G_CALLBACK (on_filter_selected), self);
  g_signal_connect (self->note_entry, "activate", G_CALLBACK (on_note_activate), self);
  g_signal_connect (self, "map", G_CALLBACK (on_map), NULL);
  gtk_stack_set_visible_child_name (self->stack, "none");
  update_detail (self);
  update_actions (self);
}

GtkWidget *
dcr_bank_view_new (void)
{
  return g_object_new (DCR_TYPE_BANK_VIEW, NULL);
}
