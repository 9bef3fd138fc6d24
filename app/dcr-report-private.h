/* dcr-report-private.h — the report's state as its writers (dcr-report.c
 * for CSV and JSON, dcr-report-pdf.c for the PDF) see it. */
#pragma once

#include "dcr-cli-detect.h"
#include "dcr-report.h"

struct _DcrReport {
  char *case_id, *exhibit, *examiner, *device, *model_path, *bank_path;
  char *backbone;     /* the spec; NULL → "default" */
  guint batch, decoders;

  GPtrArray *items;   /* DcrReportItem *, in intake order */
  GHashTable *seen;   /* real paths already queued */
  GDateTime *intake, *analysis_start, *analysis_end, *written; /* UTC */

  DcrCliSetup setup;  /* valid from loading until dcr_report_free */
  char *bank_sha256;
  guint64 bank_size;
  char *thumb_dir;    /* inside the temporary report directory */
  guint n_analysed, n_rejected, n_changed;
  guint n_verdict[3]; /* by DcrVerdict */
  double analysis_s, total_s;
};

/* "2026-11-28 09:13:08 UTC" */
char *dcr_report_format_time (GDateTime *t);
/* The item's thumbnail (PNG) in thumb_dir. */
char *dcr_report_thumb_path (DcrReport *r, guint index);
/* The model's training summary field, or NULL. */
char *dcr_report_training_field (DcrReport *r, const char *name);

gboolean dcr_report_write_pdf (DcrReport *r, const char *path, GError **error);
