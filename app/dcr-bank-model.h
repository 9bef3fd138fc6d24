/* dcr-bank-model.h — the bank page's list: a GListModel of DcrBankItem (one
 * prototype's provenance, its thumbnail decoded while shown), in id
 * order, read from a DcrBank and refreshed row by row after a change. */
#pragma once

#include <gtk/gtk.h>

#include "dcr-bank.h"

G_BEGIN_DECLS

#define DCR_TYPE_BANK_ITEM (dcr_bank_item_get_type ())
G_DECLARE_FINAL_TYPE (DcrBankItem, dcr_bank_item, DCR, BANK_ITEM, GObject)

/* The prototype as read (without its feature, and usually without its
 * thumbnail bytes: `thumbnail_size` says whether there is one); never NULL. */
const DcrPrototype *dcr_bank_item_get_prototype (DcrBankItem *self);
/* The stored thumbnail (a new reference), or NULL when there is none or it
 * does not decode. Reads its one PNG from the bank on this thread, decodes
 * it on demand and keeps it only while a reference lives, so bind it to a
 * widget and let the widget hold it. */
GdkTexture *dcr_bank_item_load_thumbnail (DcrBankItem *self);
/* The same, read from the bank and decoded in a worker (for list and grid
 * cells: opening the page reads no PNG, and scrolling never waits on one). */
void dcr_bank_item_load_thumbnail_async (DcrBankItem *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                                         gpointer user_data);
GdkTexture *dcr_bank_item_load_thumbnail_finish (DcrBankItem *self, GAsyncResult *result, GError **error);
/* The thumbnail if it is decoded already (a new reference), else NULL. */
GdkTexture *dcr_bank_item_peek_thumbnail (DcrBankItem *self);
/* Whether there is a thumbnail to show (decoded or not). */
gboolean dcr_bank_item_has_thumbnail (DcrBankItem *self);
gint64 dcr_bank_item_get_id (DcrBankItem *self);

#define DCR_TYPE_BANK_MODEL (dcr_bank_model_get_type ())
G_DECLARE_FINAL_TYPE (DcrBankModel, dcr_bank_model, DCR, BANK_MODEL, GObject)

DcrBankModel *dcr_bank_model_new (void);
/* Every prototype of bank (NULL empties the model). */
gboolean dcr_bank_model_load (DcrBankModel *self, DcrBank *bank, GError **error);
/* Reads these prototypes again: changed ones are replaced, removed ones
 * leave, restored ones come back in their place. */
gboolean dcr_bank_model_refresh (DcrBankModel *self, DcrBank *bank, const gint64 *ids, guint n, GError **error);
/* The item of a prototype id, or NULL. */
DcrBankItem *dcr_bank_model_lookup (DcrBankModel *self, gint64 id);
/* Counts over every item: all, enabled, pinned. */
void dcr_bank_model_counts (DcrBankModel *self, guint *total, guint *enabled, guint *pinned);

G_END_DECLS
