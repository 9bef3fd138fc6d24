/* dcr-bank-dialogs.h — the bank page's two windows: Statistics (counts,
 * sources, and a feature-space coverage plot — a 2-D PCA of the prototypes
 * computed in a worker) and the Audit Log (every change, newest first). */
#pragma once

#include <adwaita.h>

#include "dcr-bank-stats.h"

G_BEGIN_DECLS

/* At most this many prototypes are projected; more are sampled evenly. */
#define DCR_BANK_PLOT_MAX_POINTS 20000

#define DCR_TYPE_BANK_STATS_WINDOW (dcr_bank_stats_window_get_type ())
G_DECLARE_FINAL_TYPE (DcrBankStatsWindow, dcr_bank_stats_window, DCR, BANK_STATS_WINDOW, AdwWindow)

/* items: the page's DcrBankItem list (every prototype) for the counts and
 * the colours; the features are read from bank_path in a worker. */
DcrBankStatsWindow *dcr_bank_stats_window_new (GtkWindow *parent, const char *bank_path, GListModel *items);
const DcrBankSummary *dcr_bank_stats_window_get_summary (DcrBankStatsWindow *self);
/* TRUE while the projection is computed. */
gboolean dcr_bank_stats_window_is_busy (DcrBankStatsWindow *self);
/* The points plotted (0 before the projection is ready or when it failed);
 * explained (may be NULL) gets the share of the variance the two axes
 * carry. */
gsize dcr_bank_stats_window_get_n_points (DcrBankStatsWindow *self, double *explained);
/* Why there is no plot, or NULL. */
const char *dcr_bank_stats_window_get_error (DcrBankStatsWindow *self);

#define DCR_TYPE_BANK_AUDIT_WINDOW (dcr_bank_audit_window_get_type ())
G_DECLARE_FINAL_TYPE (DcrBankAuditWindow, dcr_bank_audit_window, DCR, BANK_AUDIT_WINDOW, AdwWindow)

/* The newest `limit` entries of the bank's audit log. */
DcrBankAuditWindow *dcr_bank_audit_window_new (GtkWindow *parent, DcrBank *bank, guint limit, GError **error);
/* The entries shown, newest first (DcrBankAudit). */
GPtrArray *dcr_bank_audit_window_get_entries (DcrBankAuditWindow *self);

G_END_DECLS
