/* dcr-inspect-view.h — one analysed image: the verdict and why (prototypes,
 * per-channel differences, scores, file facts). */
#pragma once

#include <adwaita.h>

#include "dcr-analysis.h"

G_BEGIN_DECLS

#define DCR_TYPE_INSPECT_VIEW (dcr_inspect_view_get_type ())
G_DECLARE_FINAL_TYPE (DcrInspectView, dcr_inspect_view, DCR, INSPECT_VIEW, AdwBin)

/* Channels drawn as bars in the difference chart. */
#define DCR_INSPECT_TOP_CHANNELS 16

GtkWidget *dcr_inspect_view_new (void);
/* Shows `result` (transfer full). */
void dcr_inspect_view_set_result (DcrInspectView *self, DcrAnalysisResult *result);
const DcrAnalysisResult *dcr_inspect_view_get_result (DcrInspectView *self);

/* What the analyst reads, for tests. */
const char *dcr_inspect_view_get_verdict_text (DcrInspectView *self);
const char *dcr_inspect_view_get_score_text (DcrInspectView *self);
/* The stability row: each variant with its P(fake) and verdict. */
const char *dcr_inspect_view_get_stability_text (DcrInspectView *self);
guint dcr_inspect_view_get_n_bars (DcrInspectView *self);
guint dcr_inspect_view_get_n_strip (DcrInspectView *self);

G_END_DECLS
