/* dcr-zoom-view.c — draws a paintable fitted into the widget, scaled by
 * `zoom` around an image-relative centre. The centre is clamped only when
 * drawing, so a view whose image has another aspect ratio can share the
 * same property values without the two fighting over them. */
#include "dcr-config.h"
#include "dcr-zoom-view.h"

#include <math.h>

struct _DcrZoomView {
  GtkWidget parent_instance;
  GdkPaintable *paintable;
  double zoom, cx, cy;
  double drag_cx, drag_cy; /* centre when the drag began */
  DcrOverlayRect *overlay;  /* image pixels; NULL when none */
  guint n_overlay;
  int strongest;            /* the outlined one, -1 when none */
  char *overlay_title;      /* names a rectangle's strength in its tooltip */
};

enum {
  PROP_0,
  PROP_PAINTABLE,
  PROP_ZOOM,
  PROP_CENTER_X,
  PROP_CENTER_Y,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

G_DEFINE_FINAL_TYPE (DcrZoomView, dcr_zoom_view, GTK_TYPE_WIDGET)

/* Where the image starts along one axis of the view. */
static double
axis_origin (double view, double shown, double center)
{
  if (shown <= view)
    return (view - shown) / 2;
  return CLAMP (view / 2 - center * shown, view - shown, 0);
}

/* The image's rectangle in widget coordinates; FALSE when there is nothing
 * to draw. */
static gboolean
geometry (DcrZoomView *self, graphene_rect_t *rect)
{
  double w = gtk_widget_get_width (GTK_WIDGET (self)), h = gtk_widget_get_height (GTK_WIDGET (self));
  if (!self->paintable || w <= 0 || h <= 0)
    return FALSE;
  double pw = gdk_paintable_get_intrinsic_width (self->paintable);
  double ph = gdk_paintable_get_intrinsic_height (self->paintable);
  if (pw <= 0 || ph <= 0)
    pw = ph = 1;
  double s = MIN (w / pw, h / ph) * self->zoom;
  double dw = pw * s, dh = ph * s;
  graphene_rect_init (rect, axis_origin (w, dw, self->cx), axis_origin (h, dh, self->cy), dw, dh);
  return TRUE;
}

/* The centre as drawn (after clamping), so gestures start from what the
 * analyst sees rather than from a centre pushed past the edge. */
static void
visible_center (DcrZoomView *self, double *cx, double *cy)
{
  graphene_rect_t r;
  *cx = self->cx;
  *cy = self->cy;
  if (!geometry (self, &r))
    return;
  *cx = (gtk_widget_get_width (GTK_WIDGET (self)) / 2.0 - r.origin.x) / r.size.width;
  *cy = (gtk_widget_get_height (GTK_WIDGET (self)) / 2.0 - r.origin.y) / r.size.height;
}

static void
update_cursor (DcrZoomView *self)
{
  gtk_widget_set_cursor_from_name (GTK_WIDGET (self), self->zoom > 1 ? "grab" : NULL);
}

void
dcr_zoom_view_set_zoom (DcrZoomView *self, double zoom)
{
  g_return_if_fail (DCR_IS_ZOOM_VIEW (self));
  zoom = CLAMP (zoom, 1.0, DCR_ZOOM_MAX);
  if (zoom == self->zoom)
    return;
  self->zoom = zoom;
  update_cursor (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_ZOOM]);
}

double
dcr_zoom_view_get_zoom (DcrZoomView *self)
{
  g_return_val_if_fail (DCR_IS_ZOOM_VIEW (self), 1);
  return self->zoom;
}

void
dcr_zoom_view_set_center (DcrZoomView *self, double x, double y)
{
  g_return_if_fail (DCR_IS_ZOOM_VIEW (self));
  x = CLAMP (x, 0.0, 1.0);
  y = CLAMP (y, 0.0, 1.0);
  g_object_freeze_notify (G_OBJECT (self));
  if (x != self->cx)
    {
      self->cx = x;
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_CENTER_X]);
    }
  if (y != self->cy)
    {
      self->cy = y;
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_CENTER_Y]);
    }
  g_object_thaw_notify (G_OBJECT (self));
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
dcr_zoom_view_get_center (DcrZoomView *self, double *x, double *y)
{
  g_return_if_fail (DCR_IS_ZOOM_VIEW (self));
  if (x)
    *x = self->cx;
  if (y)
    *y = self->cy;
}

void
dcr_zoom_view_zoom_by (DcrZoomView *self, double factor, double x, double y)
{
  g_return_if_fail (DCR_IS_ZOOM_VIEW (self) && factor > 0);
  double w = gtk_widget_get_width (GTK_WIDGET (self)), h = gtk_widget_get_height (GTK_WIDGET (self));
  graphene_rect_t before;
  if (x < 0 || !geometry (self, &before))
    {
      /* no anchor, or not laid out yet: zoom about the middle */
      double cx, cy;
      visible_center (self, &cx, &cy);
      g_object_freeze_notify (G_OBJECT (self));
      dcr_zoom_view_set_zoom (self, self->zoom * factor);
      dcr_zoom_view_set_center (self, cx, cy);
      g_object_thaw_notify (G_OBJECT (self));
      return;
    }
  /* the image point under the pointer stays under the pointer */
  double u = (x - before.origin.x) / before.size.width, v = (y - before.origin.y) / before.size.height;
  double zoom = CLAMP (self->zoom * factor, 1.0, DCR_ZOOM_MAX);
  double scale = zoom / self->zoom;
  double dw = before.size.width * scale, dh = before.size.height * scale;
  g_object_freeze_notify (G_OBJECT (self));
  dcr_zoom_view_set_zoom (self, zoom);
  dcr_zoom_view_set_center (self, (w / 2 - (x - u * dw)) / dw, (h / 2 - (y - v * dh)) / dh);
  g_object_thaw_notify (G_OBJECT (self));
}

void
dcr_zoom_view_fit (DcrZoomView *self)
{
  g_object_freeze_notify (G_OBJECT (self));
  dcr_zoom_view_set_zoom (self, 1);
  dcr_zoom_view_set_center (self, 0.5, 0.5);
  g_object_thaw_notify (G_OBJECT (self));
}

static void
on_contents_changed (GdkPaintable *paintable, DcrZoomView *self)
{
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
dcr_zoom_view_set_paintable (DcrZoomView *self, GdkPaintable *paintable)
{
  g_return_if_fail (DCR_IS_ZOOM_VIEW (self));
  if (self->paintable == paintable)
    return;
  if (self->paintable)
    g_signal_handlers_disconnect_by_func (self->paintable, on_contents_changed, self);
  g_set_object (&self->paintable, paintable);
  if (paintable)
    g_signal_connect (paintable, "invalidate-contents", G_CALLBACK (on_contents_changed), self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_PAINTABLE]);
}

GdkPaintable *
dcr_zoom_view_get_paintable (DcrZoomView *self)
{
  g_return_val_if_fail (DCR_IS_ZOOM_VIEW (self), NULL);
  return self->paintable;
}

void
dcr_zoom_view_set_overlay (DcrZoomView *self, const DcrOverlayRect *rects, guint n)
{
  g_return_if_fail (DCR_IS_ZOOM_VIEW (self) && (rects || n == 0));
  g_clear_pointer (&self->overlay, g_free);
  self->n_overlay = 0;
  self->strongest = -1;
  if (rects && n)
    {
      self->overlay = g_memdup2 (rects, (gsize) n * sizeof *rects);
      self->n_overlay = n;
      for (guint i = 0; i < n; i++)
        {
          DcrOverlayRect *o = &self->overlay[i];
          /* NaN reads as 0: nothing is shown for a score that is not one */
          o->strength = isnan (o->strength) ? 0 : CLAMP (o->strength, 0.0, 1.0);
          if (self->strongest < 0 || o->strength > self->overlay[self->strongest].strength)
            self->strongest = (int) i;
        }
    }
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

const DcrOverlayRect *
dcr_zoom_view_get_overlay (DcrZoomView *self, guint *n)
{
  g_return_val_if_fail (DCR_IS_ZOOM_VIEW (self), NULL);
  if (n)
    *n = self->n_overlay;
  return self->overlay;
}

int
dcr_zoom_view_get_overlay_strongest (DcrZoomView *self)
{
  g_return_val_if_fail (DCR_IS_ZOOM_VIEW (self), -1);
  return self->strongest;
}

void
dcr_zoom_view_set_overlay_title (DcrZoomView *self, const char *title)
{
  g_return_if_fail (DCR_IS_ZOOM_VIEW (self));
  g_free (self->overlay_title);
  self->overlay_title = g_strdup (title);
  if (title)
    gtk_widget_set_has_tooltip (GTK_WIDGET (self), TRUE);
}

char *
dcr_zoom_view_overlay_tooltip (DcrZoomView *self, double x, double y)
{
  g_return_val_if_fail (DCR_IS_ZOOM_VIEW (self), NULL);
  graphene_rect_t r;
  if (!self->n_overlay || !geometry (self, &r))
    return NULL;
  double pw = gdk_paintable_get_intrinsic_width (self->paintable);
  double ph = gdk_paintable_get_intrinsic_height (self->paintable);
  if (pw <= 0 || ph <= 0)
    return NULL;
  /* the image pixel under (x, y); the last rectangle drawn wins */
  double u = (x - r.origin.x) / r.size.width * pw, v = (y - r.origin.y) / r.size.height * ph;
  for (guint i = self->n_overlay; i-- > 0;)
    {
      const DcrOverlayRect *o = &self->overlay[i];
      if (u >= o->x && u < o->x + o->width && v >= o->y && v < o->y + o->height)
        return g_strdup_printf ("%s %.2f%s — %.0f × %.0f px at (%.0f, %.0f)",
                                self->overlay_title ? self->overlay_title : "Strength", o->strength,
                                (int) i == self->strongest ? " (the highest)" : "", o->width, o->height, o->x,
                                o->y);
    }
  return NULL;
}

static gboolean
dcr_zoom_view_query_tooltip (GtkWidget *widget, int x, int y, gboolean keyboard, GtkTooltip *tooltip)
{
  DcrZoomView *self = DCR_ZOOM_VIEW (widget);
  g_autofree char *text = keyboard ? NULL : dcr_zoom_view_overlay_tooltip (self, x, y);
  if (text)
    {
      gtk_tooltip_set_text (tooltip, text);
      return TRUE;
    }
  return GTK_WIDGET_CLASS (dcr_zoom_view_parent_class)->query_tooltip (widget, x, y, keyboard, tooltip);
}

/* The overlay over the image drawn at r (widget coordinates). One colour,
 * Adwaita's orange, in both styles: it lies over the photograph, not the
 * window, and reads on dark and light pixels alike; the strongest tile gets
 * a dark and a light ring so its outline shows on any content. */
static void
snapshot_overlay (DcrZoomView *self, GtkSnapshot *snapshot, const graphene_rect_t *r)
{
  double pw = gdk_paintable_get_intrinsic_width (self->paintable);
  double ph = gdk_paintable_get_intrinsic_height (self->paintable);
  if (pw <= 0 || ph <= 0)
    return;
  double sx = r->size.width / pw, sy = r->size.height / ph;
  for (guint i = 0; i < self->n_overlay; i++)
    {
      const DcrOverlayRect *o = &self->overlay[i];
      if (o->strength <= 0)
        continue;
      GdkRGBA fill = { 1.0, 0.47, 0.0, (float) (0.6 * o->strength) };
      gtk_snapshot_append_color (snapshot, &fill,
                                 &GRAPHENE_RECT_INIT (r->origin.x + o->x * sx, r->origin.y + o->y * sy,
                                                      o->width * sx, o->height * sy));
    }
  if (self->strongest < 0)
    return;
  const DcrOverlayRect *o = &self->overlay[self->strongest];
  static const struct {
    double inset, width;
    GdkRGBA color;
  } rings[] = {
    { -1, 1, { 0, 0, 0, 0.7f } },    /* dark, just outside */
    { 0, 2, { 1.0, 0.47, 0.0, 1 } }, /* orange */
    { 2, 1, { 1, 1, 1, 0.8f } },     /* light, just inside */
  };
  for (gsize k = 0; k < G_N_ELEMENTS (rings); k++)
    {
      double in = rings[k].inset, lw = rings[k].width;
      double w = o->width * sx - 2 * in, h = o->height * sy - 2 * in;
      if (w <= 2 * lw || h <= 2 * lw)
        continue;
      GskRoundedRect ring;
      gsk_rounded_rect_init_from_rect (
          &ring, &GRAPHENE_RECT_INIT (r->origin.x + o->x * sx + in, r->origin.y + o->y * sy + in, w, h), 0);
      float widths[4] = { lw, lw, lw, lw };
      GdkRGBA colors[4] = { rings[k].color, rings[k].color, rings[k].color, rings[k].color };
      gtk_snapshot_append_border (snapshot, &ring, widths, colors);
    }
}

static void
dcr_zoom_view_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  DcrZoomView *self = DCR_ZOOM_VIEW (widget);
  graphene_rect_t r;
  if (!geometry (self, &r))
    return;
  gtk_snapshot_push_clip (snapshot,
                          &GRAPHENE_RECT_INIT (0, 0, gtk_widget_get_width (widget), gtk_widget_get_height (widget)));
  gtk_snapshot_save (snapshot);
  gtk_snapshot_translate (snapshot, &r.origin);
  /* enlarged pixels stay sharp squares (GTK 4.10+): an analyst looks at them */
  gboolean sharp = FALSE;
#if GTK_CHECK_VERSION(4, 10, 0)
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS /* newer API in its version guard: see app/meson.build */
  sharp = GDK_IS_TEXTURE (self->paintable) && r.size.width > 2 * gdk_texture_get_width (GDK_TEXTURE (self->paintable));
  if (sharp)
    gtk_snapshot_append_scaled_texture (snapshot, GDK_TEXTURE (self->paintable), GSK_SCALING_FILTER_NEAREST,
                                        &GRAPHENE_RECT_INIT (0, 0, r.size.width, r.size.height));
  G_GNUC_END_IGNORE_DEPRECATIONS
#endif
  if (!sharp)
    gdk_paintable_snapshot (self->paintable, snapshot, r.size.width, r.size.height);
  gtk_snapshot_restore (snapshot);
  if (self->n_overlay)
    snapshot_overlay (self, snapshot, &r);
  gtk_snapshot_pop (snapshot);
}

static void
on_drag_begin (GtkGestureDrag *gesture, double x, double y, DcrZoomView *self)
{
  if (self->zoom <= 1)
    {
      gtk_gesture_set_state (GTK_GESTURE (gesture), GTK_EVENT_SEQUENCE_DENIED);
      return;
    }
  visible_center (self, &self->drag_cx, &self->drag_cy);
  gtk_widget_set_cursor_from_name (GTK_WIDGET (self), "grabbing");
}

static void
on_drag_update (GtkGestureDrag *gesture, double dx, double dy, DcrZoomView *self)
{
  graphene_rect_t r;
  if (!geometry (self, &r))
    return;
  gtk_gesture_set_state (GTK_GESTURE (gesture), GTK_EVENT_SEQUENCE_CLAIMED);
  dcr_zoom_view_set_center (self, self->drag_cx - dx / r.size.width, self->drag_cy - dy / r.size.height);
}

static void
on_drag_end (GtkGestureDrag *gesture, double dx, double dy, DcrZoomView *self)
{
  update_cursor (self);
}

static gboolean
on_scroll (GtkEventControllerScroll *scroll, double dx, double dy, DcrZoomView *self)
{
  GdkModifierType mods = gtk_event_controller_get_current_event_state (GTK_EVENT_CONTROLLER (scroll));
  if (!(mods & GDK_CONTROL_MASK) || dy == 0)
    return FALSE; /* a plain wheel scrolls the page */
  double x = -1, y = -1;
  GdkEvent *event = gtk_event_controller_get_current_event (GTK_EVENT_CONTROLLER (scroll));
  if (!event || !gdk_event_get_position (event, &x, &y))
    x = y = -1;
  else
    {
      /* the event is in surface coordinates */
      graphene_point_t p;
      GtkNative *native = gtk_widget_get_native (GTK_WIDGET (self));
      double sx = 0, sy = 0;
      gtk_native_get_surface_transform (native, &sx, &sy);
      if (gtk_widget_compute_point (GTK_WIDGET (native), GTK_WIDGET (self),
                                    &GRAPHENE_POINT_INIT (x - sx, y - sy), &p))
        x = p.x, y = p.y;
      else
        x = y = -1;
    }
  dcr_zoom_view_zoom_by (self, pow (1.25, -dy), x, y);
  return TRUE;
}

static void
on_pressed (GtkGestureClick *click, int n, double x, double y, DcrZoomView *self)
{
  gtk_widget_grab_focus (GTK_WIDGET (self));
}

static void
dcr_zoom_view_measure (GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum, int *natural,
                       int *minimum_baseline, int *natural_baseline)
{
  /* the layout decides the size; the image is scaled into it */
  *minimum = 16;
  *natural = 240;
}

static void
dcr_zoom_view_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  DcrZoomView *self = DCR_ZOOM_VIEW (object);
  switch (prop_id)
    {
    case PROP_PAINTABLE:
      g_value_set_object (value, self->paintable);
      break;
    case PROP_ZOOM:
      g_value_set_double (value, self->zoom);
      break;
    case PROP_CENTER_X:
      g_value_set_double (value, self->cx);
      break;
    case PROP_CENTER_Y:
      g_value_set_double (value, self->cy);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dcr_zoom_view_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  DcrZoomView *self = DCR_ZOOM_VIEW (object);
  switch (prop_id)
    {
    case PROP_PAINTABLE:
      dcr_zoom_view_set_paintable (self, g_value_get_object (value));
      break;
    case PROP_ZOOM:
      dcr_zoom_view_set_zoom (self, g_value_get_double (value));
      break;
    case PROP_CENTER_X:
      dcr_zoom_view_set_center (self, g_value_get_double (value), self->cy);
      break;
    case PROP_CENTER_Y:
      dcr_zoom_view_set_center (self, self->cx, g_value_get_double (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dcr_zoom_view_dispose (GObject *object)
{
  DcrZoomView *self = DCR_ZOOM_VIEW (object);
  if (self->paintable)
    g_signal_handlers_disconnect_by_func (self->paintable, on_contents_changed, self);
  g_clear_object (&self->paintable);
  g_clear_pointer (&self->overlay, g_free);
  g_clear_pointer (&self->overlay_title, g_free);
  self->n_overlay = 0;
  self->strongest = -1;
  G_OBJECT_CLASS (dcr_zoom_view_parent_class)->dispose (object);
}

static void
dcr_zoom_view_class_init (DcrZoomViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = dcr_zoom_view_dispose;
  object_class->get_property = dcr_zoom_view_get_property;
  object_class->set_property = dcr_zoom_view_set_property;
  widget_class->snapshot = dcr_zoom_view_snapshot;
  widget_class->measure = dcr_zoom_view_measure;
  widget_class->query_tooltip = dcr_zoom_view_query_tooltip;

  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  props[PROP_PAINTABLE] = g_param_spec_object ("paintable", NULL, NULL, GDK_TYPE_PAINTABLE, flags);
  props[PROP_ZOOM] = g_param_spec_double ("zoom", NULL, NULL, 1, DCR_ZOOM_MAX, 1, flags);
  props[PROP_CENTER_X] = g_param_spec_double ("center-x", NULL, NULL, 0, 1, 0.5, flags);
  props[PROP_CENTER_Y] = g_param_spec_double ("center-y", NULL, NULL, 0, 1, 0.5, flags);
  g_object_class_install_properties (object_class, N_PROPS, props);
  gtk_widget_class_set_css_name (widget_class, "dcr-zoom-view");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
dcr_zoom_view_init (DcrZoomView *self)
{
  self->zoom = 1;
  self->cx = self->cy = 0.5;
  self->strongest = -1;
  gtk_widget_set_focusable (GTK_WIDGET (self), TRUE);
  gtk_widget_set_overflow (GTK_WIDGET (self), GTK_OVERFLOW_HIDDEN);

  GtkGesture *drag = gtk_gesture_drag_new ();
  g_signal_connect (drag, "drag-begin", G_CALLBACK (on_drag_begin), self);
  g_signal_connect (drag, "drag-update", G_CALLBACK (on_drag_update), self);
  g_signal_connect (drag, "drag-end", G_CALLBACK (on_drag_end), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drag));

  GtkEventController *scroll = gtk_event_controller_scroll_new (GTK_EVENT_CONTROLLER_SCROLL_VERTICAL);
  g_signal_connect (scroll, "scroll", G_CALLBACK (on_scroll), self);
  gtk_widget_add_controller (GTK_WIDGET (self), scroll);

  GtkGesture *click = gtk_gesture_click_new ();
  g_signal_connect (click, "pressed", G_CALLBACK (on_pressed), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (click));
}

GtkWidget *
dcr_zoom_view_new (void)
{
  return g_object_new (DCR_TYPE_ZOOM_VIEW, NULL);
}
