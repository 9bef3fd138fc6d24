/* dcr-bank-view.h — the Memory Bank page: every prototype of the bank with
 * its thumbnail and provenance, search and filters, and the curation
 * actions (add a folder, enable/disable, pin, note, remove, near-duplicates,
 * import/export), each undoable from its toast. */
#pragma once

#include <adwaita.h>

#include "dcr-bank-curate.h"
#include "dcr-bank-dialogs.h"

G_BEGIN_DECLS

#define DCR_TYPE_BANK_VIEW (dcr_bank_view_get_type ())
G_DECLARE_FINAL_TYPE (DcrBankView, dcr_bank_view, DCR, BANK_VIEW, AdwBin)

GtkWidget *dcr_bank_view_new (void);
/* Opens the bank the bank-file preference names (or the shipped default);
 * without one the page says how to get one. Called when the page is shown. */
void dcr_bank_view_load_preferred (DcrBankView *self);
/* Opens a bank file (for writing when it can, else read-only). */
gboolean dcr_bank_view_open (DcrBankView *self, const char *path, GError **error);
/* Runs the backbone over the images under dir and adds them, off the main
 * thread (dcr_bank_view_is_busy until done); duplicates by SHA-256 skipped. */
void dcr_bank_view_add_folder (DcrBankView *self, const char *dir);
gboolean dcr_bank_view_is_busy (DcrBankView *self);
/* The rows shown (after search, filter and sort); select in it to act. */
GtkSelectionModel *dcr_bank_view_get_selection (DcrBankView *self);
void dcr_bank_view_set_search (DcrBankView *self, const char *text);
/* The last near-duplicate search, or NULL. */
const DcrBankDuplicates *dcr_bank_view_get_duplicates (DcrBankView *self);
/* The last toast's text (what the analyst was told), or NULL. */
const char *dcr_bank_view_get_last_message (DcrBankView *self);
/* Shows the prototypes as a thumbnail grid (TRUE) or a list; remembered in
 * the bank-view-mode preference. */
void dcr_bank_view_set_grid (DcrBankView *self, gboolean grid);
gboolean dcr_bank_view_get_grid (DcrBankView *self);
/* Selects one prototype (clearing a search or filter that hides it) and
 * scrolls to it; FALSE when the bank has no such prototype. */
gboolean dcr_bank_view_select_prototype (DcrBankView *self, gint64 id);
/* The selected prototype's nearest neighbours in the bank (DcrBankNeighbour,
 * most similar first, itself left out), or NULL while they are computed or
 * when nothing is selected. */
GArray *dcr_bank_view_get_neighbours (DcrBankView *self);
/* Opens the Statistics / Audit Log window (NULL without a bank). */
DcrBankStatsWindow *dcr_bank_view_show_statistics (DcrBankView *self);
DcrBankAuditWindow *dcr_bank_view_show_audit_log (DcrBankView *self);

G_END_DECLS
