/* dcr-scan-run.c — the scan pipeline of `dcr scan` and `dcr bench scan`
 * (dcr-scan-run.h). */
#include "dcr-scan-run.h"

static void
item_clear (DcrScanItem *it)
{
  g_free (it->sha256);
  dcr_image_free (it->img);
  g_clear_error (&it->error);
  dcr_detection_clear (&it->det);
  *it = (DcrScanItem) { 0 }; /* clearing twice is harmless */
}

static void
item_load (DcrScanItem *it)
{
  it->img = dcr_cli_load_image (it->path, &it->sha256, &it->error);
  /* here, on the decoding thread, rather than in dcr_detector_run */
  if (it->img)
    dcr_detector_prepare (it->img, &it->trace, &it->detail);
}

/* One batch's files, decoded on threads of their own while the GPU
 * analyses the batch before it: the decoding's time hides behind the GPU's
 * waits instead of adding to them. As many threads as `dcr report` decodes
 * on (dcr_cli_default_decoders), each taking every n-th file: on a GPU
 * machine the decoding and the JPEG-grid search, not the GPU, set a scan's
 * speed (BENCHMARKS.md, fifteenth session). */

typedef struct {
  DcrScanItem *items;
  const DcrWalkEntry *entries;
  guint n;
} LoadJob;

typedef struct {
  LoadJob *job;
  guint first, step;
} LoadPart;

static gpointer
load_part (gpointer data)
{
  LoadPart *lp = data;
  for (guint i = lp->first; i < lp->job->n; i += lp->step)
    {
      const DcrWalkEntry *e = &lp->job->entries[i];
      lp->job->items[i] = (DcrScanItem) { e->path };
      if (e->reason)
        lp->job->items[i].error = g_error_new_literal (G_FILE_ERROR, G_FILE_ERROR_FAILED, e->reason);
      else
        item_load (&lp->job->items[i]);
    }
  return NULL;
}

static gpointer
load_batch (gpointer data)
{
  LoadJob *job = data;
  guint nt = MIN (MAX (job->n, 1), dcr_cli_default_decoders ());
  LoadPart parts[DCR_CLI_MAX_DECODERS];
  GThread *threads[DCR_CLI_MAX_DECODERS] = { NULL };
  for (guint t = 0; t < nt; t++)
    parts[t] = (LoadPart) { job, t, nt };
  for (guint t = 1; t < nt; t++)
    threads[t] = g_thread_new ("dcr-decode", load_part, &parts[t]);
  load_part (&parts[0]);
  for (guint t = 1; t < nt; t++)
    g_thread_join (threads[t]);
  return NULL;
}

gboolean
dcr_scan_run (DcrCliSetup *s, const DcrWalkEntry *ent, guint total, DcrScanEach each, gpointer user_data,
              GError **error)
{
  guint b = dcr_detector_batch (s->det);
  g_autofree DcrScanItem *items0 = g_new0 (DcrScanItem, b), *items1 = g_new0 (DcrScanItem, b);
  DcrScanItem *bufs[2] = { items0, items1 };
  g_autofree DcrImage **imgs = g_new0 (DcrImage *, b);
  g_autofree DcrJpegTrace *traces = g_new0 (DcrJpegTrace, b);
  g_autofree float *details = g_new0 (float, b);
  g_autofree DcrDetection *dets = g_new0 (DcrDetection, b);
  g_autofree guint *slot = g_new0 (guint, b);
  if (!total)
    return TRUE;
  LoadJob jobs[2] = { { items0, ent, MIN (b, total) } };
  load_batch (&jobs[0]);
  for (guint start = 0, k = 0; start < total; start += b, k++)
    {
      DcrScanItem *items = bufs[k & 1];
      guint n = jobs[k & 1].n, m = 0;
      GThread *next = NULL;
      if (start + b < total)
        {
          jobs[(k + 1) & 1] = (LoadJob) { bufs[(k + 1) & 1], ent + start + b, MIN (b, total - start - b) };
          next = g_thread_new ("dcr-decode", load_batch, &jobs[(k + 1) & 1]);
        }
      for (guint i = 0; i < n; i++)
        {
          if (!items[i].error && !dcr_backbone_check_image (s->bb, items[i].img->width, items[i].img->height,
                                                            &items[i].error))
            g_prefix_error (&items[i].error, "%s: ", items[i].path);
          if (!items[i].error)
            {
              imgs[m] = items[i].img;
              traces[m] = items[i].trace;
              details[m] = items[i].detail;
              slot[m++] = i;
            }
        }
      gint64 t0 = g_get_monotonic_time ();
      if (m && !dcr_detector_run_traced (s->det, imgs, traces, details, m, dets, error))
        {
          if (next)
            g_thread_join (next);
          for (guint j = 0; j < 2; j++)
            for (guint i = 0; i < jobs[j].n; i++)
              item_clear (&bufs[j][i]);
          return FALSE;
        }
      double ms = m ? (g_get_monotonic_time () - t0) / 1e3 / m : 0;
      for (guint j = 0; j < m; j++)
        {
          items[slot[j]].det = dets[j];
          items[slot[j]].ms = ms;
        }
      for (guint i = 0; i < n; i++)
        {
          each (s, &items[i], user_data);
          item_clear (&items[i]);
        }
      if (next)
        g_thread_join (next);
    }
  return TRUE;
}
