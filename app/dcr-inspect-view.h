/* dcr-inspect-view.h — one analysed image: the verdict and why (prototypes,
 * per-channel differences, scores, file facts). */
#pragma once

#include <adwaita.h>

#include "dcr-analysis.h"
#include "dcr-zoom-view.h"

G_BEGIN_DECLS

#define DCR_TYPE_INSPECT_VIEW (dcr_inspect_view_get_type ())
G_DECLARE_FINAL_TYPE (DcrInspectView, dcr_inspect_view, DCR, INSPECT_VIEW, AdwBin)

/* Channels drawn as bars in the difference chart. */
#define DCR_INSPECT_TOP_CHANNELS 16
/* The tile map starts shown when its highest tile's σ(score) reaches this:
 * the tile head then reads at least one tile as more likely regenerated
 * than not, and the analyst is shown where. */
#define DCR_INSPECT_TILE_MAP_AUTO 0.5

GtkWidget *dcr_inspect_view_new (void);
/* Shows `result` (transfer full). */
void dcr_inspect_view_set_result (DcrInspectView *self, DcrAnalysisResult *result);
const DcrAnalysisResult *dcr_inspect_view_get_result (DcrInspectView *self);

/* What the analyst reads, for tests. */
const char *dcr_inspect_view_get_verdict_text (DcrInspectView *self);
const char *dcr_inspect_view_get_reason_text (DcrInspectView *self);
const char *dcr_inspect_view_get_score_text (DcrInspectView *self);
/* The stability row: each variant with its P(fake) and verdict. */
const char *dcr_inspect_view_get_stability_text (DcrInspectView *self);
guint dcr_inspect_view_get_n_bars (DcrInspectView *self);
guint dcr_inspect_view_get_n_strip (DcrInspectView *self);
/* The value of the file-facts row titled `title` ("Software", "GPS
 * location"…), or NULL when the row is not shown. */
const char *dcr_inspect_view_get_fact (DcrInspectView *self, const char *title);
GtkWidget *dcr_inspect_view_get_verdict_widget (DcrInspectView *self);
/* The tile head's line of evidence, NULL when it is not shown (no tile map). */
const char *dcr_inspect_view_get_tile_text (DcrInspectView *self);
/* The "Tile map" toggle over the suspect (hidden without a tile map); the
 * overlay is on the suspect view while it is active. */
GtkToggleButton *dcr_inspect_view_get_tile_map_button (DcrInspectView *self);
/* The suspect and its nearest prototype; their zoom and centre are bound. */
DcrZoomView *dcr_inspect_view_get_suspect_view (DcrInspectView *self);
DcrZoomView *dcr_inspect_view_get_prototype_view (DcrInspectView *self);

/* Whether the P(fake) scale draws the threshold and the inconclusive band
 * (the GSettings key show-thresholds). */
void dcr_inspect_view_set_show_thresholds (DcrInspectView *self, gboolean show);
gboolean dcr_inspect_view_get_show_thresholds (DcrInspectView *self);

G_END_DECLS
