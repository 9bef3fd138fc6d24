/* dcr-bank-model.c — DcrBankItem and DcrBankModel: the list keeps items
 * sorted by id, so a refreshed or restored prototype is found (and put
 * back) by binary search and only its row is announced as changed. */
#include "dcr-bank-model.h"

struct _DcrBankItem {
  GObject parent_instance;
  DcrPrototype *proto; /* from the light listing: usually without thumbnail bytes */
  DcrBank *bank;       /* a reference: the thumbnail is read from it when shown */
  GdkTexture *thumbnail; /* weak: alive while some widget shows it */
  gboolean thumbnail_bad;
};

G_DEFINE_FINAL_TYPE (DcrBankItem, dcr_bank_item, G_TYPE_OBJECT)

static void
dcr_bank_item_finalize (GObject *object)
{
  DcrBankItem *self = DCR_BANK_ITEM (object);
  dcr_prototype_free (self->proto);
  g_clear_pointer (&self->bank, dcr_bank_close);
  if (self->thumbnail)
    g_object_remove_weak_pointer (G_OBJECT (self->thumbnail), (gpointer *) &self->thumbnail);
  G_OBJECT_CLASS (dcr_bank_item_parent_class)->finalize (object);
}

static void
dcr_bank_item_class_init (DcrBankItemClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dcr_bank_item_finalize;
}

static void
dcr_bank_item_init (DcrBankItem *self)
{
}

static DcrBankItem *
item_new (DcrPrototype *proto, DcrBank *bank)
{
  DcrBankItem *self = g_object_new (DCR_TYPE_BANK_ITEM, NULL);
  self->proto = proto;
  self->bank = dcr_bank_ref (bank);
  return self;
}

/* Whether the prototype has a stored thumbnail (read or not). */
static gboolean
proto_has_thumbnail (const DcrPrototype *p)
{
  return p->thumbnail || p->thumbnail_size > 0;
}

/* The PNG bytes: those read with the prototype, else one blob read from the
 * bank by id (any thread: dcr_bank_get_thumbnail has its own connection).
 * NULL with no error when there is none. */
static GBytes *
thumbnail_bytes (DcrBank *bank, const DcrPrototype *p, GError **error)
{
  if (p->thumbnail)
    return g_bytes_ref (p->thumbnail);
  if (!proto_has_thumbnail (p))
    return NULL;
  return dcr_bank_get_thumbnail (bank, p->id, error);
}

const DcrPrototype *
dcr_bank_item_get_prototype (DcrBankItem *self)
{
  g_return_val_if_fail (DCR_IS_BANK_ITEM (self), NULL);
  return self->proto;
}

gint64
dcr_bank_item_get_id (DcrBankItem *self)
{
  g_return_val_if_fail (DCR_IS_BANK_ITEM (self), -1);
  return self->proto->id;
}

GdkTexture *
dcr_bank_item_load_thumbnail (DcrBankItem *self)
{
  g_return_val_if_fail (DCR_IS_BANK_ITEM (self), NULL);
  if (self->thumbnail)
    return g_object_ref (self->thumbnail);
  if (self->thumbnail_bad || !proto_has_thumbnail (self->proto))
    return NULL;
  /* read and decoded when a row or cell shows it and dropped when none
   * does: a bank of 100,000 is scrolled through, and only what is on
   * screen is read and decoded (here one blob, on the calling thread) */
  g_autoptr (GError) err = NULL;
  g_autoptr (GBytes) bytes = thumbnail_bytes (self->bank, self->proto, &err);
  if (!bytes)
    {
      /* none after all (or the prototype is gone): do not ask again; a
       * transient read error may be retried */
      if (!err || g_error_matches (err, DCR_BANK_ERROR, DCR_BANK_ERROR_NOT_FOUND))
        self->thumbnail_bad = TRUE;
      return NULL;
    }
  GdkTexture *tex = gdk_texture_new_from_bytes (bytes, NULL);
  if (!tex)
    {
      self->thumbnail_bad = TRUE;
      return NULL;
    }
  self->thumbnail = tex;
  g_object_add_weak_pointer (G_OBJECT (tex), (gpointer *) &self->thumbnail);
  return tex;
}

GdkTexture *
dcr_bank_item_peek_thumbnail (DcrBankItem *self)
{
  g_return_val_if_fail (DCR_IS_BANK_ITEM (self), NULL);
  return self->thumbnail ? g_object_ref (self->thumbnail) : NULL;
}

gboolean
dcr_bank_item_has_thumbnail (DcrBankItem *self)
{
  g_return_val_if_fail (DCR_IS_BANK_ITEM (self), FALSE);
  return self->thumbnail || (proto_has_thumbnail (self->proto) && !self->thumbnail_bad);
}

typedef struct {
  DcrBank *bank; /* a reference, so closing the bank meanwhile is safe */
  DcrPrototype proto; /* only id, thumbnail and thumbnail_size are used */
} ThumbJob;

static void
thumb_job_free (ThumbJob *job)
{
  dcr_bank_close (job->bank);
  g_clear_pointer (&job->proto.thumbnail, g_bytes_unref);
  g_free (job);
}

static void
decode_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  ThumbJob *job = data;
  GError *err = NULL;
  if (g_cancellable_set_error_if_cancelled (cancellable, &err))
    {
      g_task_return_error (task, err);
      return;
    }
  /* the blob is read here, in the worker, not when the page opens */
  g_autoptr (GBytes) bytes = thumbnail_bytes (job->bank, &job->proto, &err);
  if (!bytes)
    {
      if (err)
        g_task_return_error (task, err);
      else
        g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "prototype %" G_GINT64_FORMAT
                                 " has no stored thumbnail", job->proto.id);
      return;
    }
  /* gdk_texture_new_from_bytes may run off the main thread */
  GdkTexture *tex = gdk_texture_new_from_bytes (bytes, &err);
  if (tex)
    g_task_return_pointer (task, tex, g_object_unref);
  else
    g_task_return_error (task, err);
}

void
dcr_bank_item_load_thumbnail_async (DcrBankItem *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data)
{
  g_return_if_fail (DCR_IS_BANK_ITEM (self));
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, dcr_bank_item_load_thumbnail_async);
  if (self->thumbnail)
    {
      g_task_return_pointer (task, g_object_ref (self->thumbnail), g_object_unref);
      return;
    }
  if (self->thumbnail_bad || !proto_has_thumbnail (self->proto))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "prototype %" G_GINT64_FORMAT
                               " has no readable thumbnail", self->proto->id);
      return;
    }
  ThumbJob *job = g_new0 (ThumbJob, 1);
  job->bank = dcr_bank_ref (self->bank);
  job->proto.id = self->proto->id;
  job->proto.thumbnail = self->proto->thumbnail ? g_bytes_ref (self->proto->thumbnail) : NULL;
  job->proto.thumbnail_size = self->proto->thumbnail_size;
  g_task_set_task_data (task, job, (GDestroyNotify) thumb_job_free);
  g_task_run_in_thread (task, decode_thread);
}

GdkTexture *
dcr_bank_item_load_thumbnail_finish (DcrBankItem *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_autoptr (GError) err = NULL;
  GdkTexture *tex = g_task_propagate_pointer (G_TASK (result), &err);
  if (!tex)
    {
      /* does not decode, or there is none after all: do not try again; a
       * cancelled load or a transient read error may be retried */
      if (!g_error_matches (err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) &&
          !g_error_matches (err, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
          (err->domain != DCR_BANK_ERROR || err->code == DCR_BANK_ERROR_NOT_FOUND))
        self->thumbnail_bad = TRUE;
      g_propagate_error (error, g_steal_pointer (&err));
      return NULL;
    }
  if (self->thumbnail && self->thumbnail != tex)
    {
      /* decoded twice meanwhile: share the first */
      g_object_unref (tex);
      return g_object_ref (self->thumbnail);
    }
  if (!self->thumbnail)
    {
      self->thumbnail = tex;
      g_object_add_weak_pointer (G_OBJECT (tex), (gpointer *) &self->thumbnail);
    }
  return tex;
}

struct _DcrBankModel {
  GObject parent_instance;
  GPtrArray *items; /* DcrBankItem, ascending id */
};

static GType
model_get_item_type (GListModel *list)
{
  return DCR_TYPE_BANK_ITEM;
}

static guint
model_get_n_items (GListModel *list)
{
  return DCR_BANK_MODEL (list)->items->len;
}

static gpointer
model_get_item (GListModel *list, guint position)
{
  DcrBankModel *self = DCR_BANK_MODEL (list);
  return position < self->items->len ? g_object_ref (self->items->pdata[position]) : NULL;
}

static void
dcr_bank_model_list_init (GListModelInterface *iface)
{
  iface->get_item_type = model_get_item_type;
  iface->get_n_items = model_get_n_items;
  iface->get_item = model_get_item;
}

G_DEFINE_FINAL_TYPE_WITH_CODE (DcrBankModel, dcr_bank_model, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL, dcr_bank_model_list_init))

static void
dcr_bank_model_finalize (GObject *object)
{
  g_ptr_array_unref (DCR_BANK_MODEL (object)->items);
  G_OBJECT_CLASS (dcr_bank_model_parent_class)->finalize (object);
}

static void
dcr_bank_model_class_init (DcrBankModelClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dcr_bank_model_finalize;
}

static void
dcr_bank_model_init (DcrBankModel *self)
{
  self->items = g_ptr_array_new_with_free_func (g_object_unref);
}

DcrBankModel *
dcr_bank_model_new (void)
{
  return g_object_new (DCR_TYPE_BANK_MODEL, NULL);
}

gboolean
dcr_bank_model_load (DcrBankModel *self, DcrBank *bank, GError **error)
{
  g_autoptr (GPtrArray) protos = NULL;
  /* without the thumbnail PNGs: 100,000 of them would be gigabytes read
   * before the page shows; each is read when its cell is shown */
  if (bank && !(protos = dcr_bank_list_full (bank, DCR_BANK_LIST_NO_THUMBNAILS, error)))
    return FALSE;
  guint old = self->items->len;
  g_autoptr (GPtrArray) items = g_ptr_array_new_full (protos ? protos->len : 0, g_object_unref);
  for (guint i = 0; protos && i < protos->len; i++)
    {
      g_ptr_array_add (items, item_new (protos->pdata[i], bank));
      protos->pdata[i] = NULL; /* the item owns it now */
    }
  g_ptr_array_unref (self->items);
  self->items = g_steal_pointer (&items);
  g_list_model_items_changed (G_LIST_MODEL (self), 0, old, self->items->len);
  return TRUE;
}

/* Where id is, or where it would go (*found FALSE). */
static guint
find (DcrBankModel *self, gint64 id, gboolean *found)
{
  guint lo = 0, hi = self->items->len;
  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      gint64 v = DCR_BANK_ITEM (self->items->pdata[mid])->proto->id;
      if (v == id)
        {
          *found = TRUE;
          return mid;
        }
      if (v < id)
        lo = mid + 1;
      else
        hi = mid;
    }
  *found = FALSE;
  return lo;
}

gboolean
dcr_bank_model_refresh (DcrBankModel *self, DcrBank *bank, const gint64 *ids, guint n, GError **error)
{
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GError) err = NULL;
      DcrPrototype *p = dcr_bank_get (bank, ids[i], FALSE, &err);
      if (!p && !g_error_matches (err, DCR_BANK_ERROR, DCR_BANK_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&err));
          return FALSE;
        }
      gboolean found;
      guint pos = find (self, ids[i], &found);
      if (found && p)
        {
          g_object_unref (self->items->pdata[pos]);
          self->items->pdata[pos] = item_new (p, bank);
          g_list_model_items_changed (G_LIST_MODEL (self), pos, 1, 1);
        }
      else if (found)
        {
          g_ptr_array_remove_index (self->items, pos);
          g_list_model_items_changed (G_LIST_MODEL (self), pos, 1, 0);
        }
      else if (p)
        {
          g_ptr_array_insert (self->items, (gint) pos, item_new (p, bank));
          g_list_model_items_changed (G_LIST_MODEL (self), pos, 0, 1);
        }
    }
  return TRUE;
}

DcrBankItem *
dcr_bank_model_lookup (DcrBankModel *self, gint64 id)
{
  gboolean found;
  guint pos = find (self, id, &found);
  return found ? self->items->pdata[pos] : NULL;
}

void
dcr_bank_model_counts (DcrBankModel *self, guint *total, guint *enabled, guint *pinned)
{
  *total = self->items->len;
  *enabled = *pinned = 0;
  for (guint i = 0; i < self->items->len; i++)
    {
      const DcrPrototype *p = DCR_BANK_ITEM (self->items->pdata[i])->proto;
      *enabled += p->enabled;
      *pinned += p->pinned;
    }
}
