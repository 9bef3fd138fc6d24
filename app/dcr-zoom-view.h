/* dcr-zoom-view.h — an image the analyst can zoom (Ctrl+wheel, or the
 * inspect view's +/− keys) and drag around. Zoom and centre are plain
 * properties in image-relative units, so two views bound together show the
 * same part of two images of different sizes. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define DCR_TYPE_ZOOM_VIEW (dcr_zoom_view_get_type ())
G_DECLARE_FINAL_TYPE (DcrZoomView, dcr_zoom_view, DCR, ZOOM_VIEW, GtkWidget)

/* 1 shows the whole image fitted into the view; the most is DCR_ZOOM_MAX. */
#define DCR_ZOOM_MAX 32.0

GtkWidget *dcr_zoom_view_new (void);
void dcr_zoom_view_set_paintable (DcrZoomView *self, GdkPaintable *paintable);
GdkPaintable *dcr_zoom_view_get_paintable (DcrZoomView *self);

double dcr_zoom_view_get_zoom (DcrZoomView *self);
void dcr_zoom_view_set_zoom (DcrZoomView *self, double zoom);
/* The image point (0…1 across, 0…1 down) at the middle of the view. */
void dcr_zoom_view_get_center (DcrZoomView *self, double *x, double *y);
void dcr_zoom_view_set_center (DcrZoomView *self, double x, double y);

/* Zooms by `factor` keeping the image point under (x, y) — widget
 * coordinates — where it is; x < 0 anchors at the middle of the view. */
void dcr_zoom_view_zoom_by (DcrZoomView *self, double factor, double x, double y);
/* Back to the whole image. */
void dcr_zoom_view_fit (DcrZoomView *self);

/* An overlay rectangle in image pixels (x right, y down from the top-left
 * corner of the paintable at its intrinsic size) with a strength 0…1. */
typedef struct {
  double x, y, width, height;
  double strength;
} DcrOverlayRect;

/* Rectangles drawn over the image with the view's zoom and pan: a
 * translucent fill whose opacity follows the strength, the strongest (the
 * first of equals) outlined. The view keeps a copy; NULL or n = 0 clears
 * it. Strengths are clamped to 0…1. */
void dcr_zoom_view_set_overlay (DcrZoomView *self, const DcrOverlayRect *rects, guint n);
/* The overlay (owned by the view) and its size; NULL when there is none. */
const DcrOverlayRect *dcr_zoom_view_get_overlay (DcrZoomView *self, guint *n);
/* Index of the outlined (strongest) rectangle, or -1 without an overlay. */
int dcr_zoom_view_get_overlay_strongest (DcrZoomView *self);
/* What a rectangle's strength is called in the tooltip over it, e.g. "Tile
 * head score" (NULL: "Strength"). */
void dcr_zoom_view_set_overlay_title (DcrZoomView *self, const char *title);
/* The tooltip at widget point (x, y): the strength, size and place of the
 * overlay rectangle there (the last of overlapping ones), or NULL when no
 * rectangle is under it (the widget's own tooltip shows then). */
char *dcr_zoom_view_overlay_tooltip (DcrZoomView *self, double x, double y);

G_END_DECLS
