/* dcr-report.h — batch reports, shared by `dcr report` and the app's batch
 * page (no GTK): files and folders in, every evidence file hashed, sniffed
 * by content and analysed in a streaming pipeline, out a report directory
 * (PDF, CSV, JSON, SHA-256 sums) that appears whole or not at all. The
 * schema of report.csv and report.json is in app/REPORT-SCHEMA.md. */
#pragma once

#include <gio/gio.h>

#include "dcr-detector.h"

G_BEGIN_DECLS

#define DCR_REPORT_ERROR (dcr_report_error_quark ())
GQuark dcr_report_error_quark (void);

typedef enum {
  DCR_REPORT_ERROR_INPUT,  /* an input path does not exist or cannot be read */
  DCR_REPORT_ERROR_EXISTS, /* the report directory is already there */
  DCR_REPORT_ERROR_WRITE,  /* the report could not be written */
} DcrReportError;

#define DCR_REPORT_SCHEMA "dcr-report/1"
#define DCR_REPORT_TOP_CHANNELS 10

typedef enum {
  DCR_REPORT_ITEM_QUEUED,
  DCR_REPORT_ITEM_ANALYSED,
  DCR_REPORT_ITEM_REJECTED,
} DcrReportItemStatus;

/* One input file. Written only by the pipeline, once, before the progress
 * callback names it; never changed after that. */
typedef struct {
  char *path;               /* as found: an input, or below an input folder */
  DcrReportItemStatus status;
  char *reason;             /* why it was rejected (without the file name) */
  guint64 size;
  char *sha256;             /* at intake; NULL when the file could not be read */
  char *sha256_report;      /* again when the report was written */
  gboolean changed;         /* the two differ, or the file went away */
  const char *format;       /* "PNG" or "JPEG" by content; NULL when neither */
  guint width, height;      /* as displayed (EXIF orientation applied) */
  DcrVerdict verdict;
  const char *decision;     /* which of the model's decisions gave the verdict: "jpeg", "other" or "single"
                             * (dcr_cli_decision_name; static) */
  /* for a file other than JPEG, the search for an earlier JPEG's grid in
   * its pixels (dcr-jpeg-trace.h): when found, the JPEG decision judged it */
  DcrJpegTrace jpeg_trace;
  float detail;             /* fine detail (dcr-detail.h), measured on the decoding thread; low: weak evidence */
  float p_fake, anomaly;
  float p_heads;            /* the heads' own p_fake, before score fusion */
  gboolean has_tiles;       /* the backbone has a tile head: */
  float tile_score, tile_max; /* its columns (dcr-detector.h) */
  gboolean has_top_tile;    /* and its highest-scoring tile: */
  gint64 top_tile[4];       /* x, y, w, h in the image's pixels */
  float top_tile_p;         /* σ(its score) */
  gboolean has_cnn;         /* the backbone has the forensic CNN: */
  float cnn_top, cnn_max;   /* its raw logits (dcr-detector.h): the mean of the 4 highest blocks, the highest */
  gboolean has_top_block;   /* and its highest block: */
  gint64 top_block[4];      /* x, y, w, h in the image's pixels (dcr_cnn_block_rect) */
  float top_block_p;        /* σ(its mean logit) */
  guint k;                  /* nearest prototypes, nearest first */
  gint64 ids[DCR_TOPK_MAX];
  float similarity[DCR_TOPK_MAX];
  guint n_top;              /* channels of |f̂ − r̂| that differ most */
  guint top_index[DCR_REPORT_TOP_CHANNELS];
  float top_magnitude[DCR_REPORT_TOP_CHANNELS];
  const char *top_tap[DCR_REPORT_TOP_CHANNELS]; /* interned */
} DcrReportItem;

typedef struct {
  const char *case_id, *exhibit, *examiner; /* NULL → "not given" */
  const char *device;                       /* NULL → $DCR_DEVICE → preferred */
  const char *model_path, *bank_path;       /* NULL or "" → the shipped ones */
  const char *backbone;                     /* NULL or "" → "default" (the model must be made for it) */
  guint batch;                              /* images per GPU batch; 0 → 16 */
  guint decoders;                           /* decoding threads; 0 → CPUs (≤ 8) */
} DcrReportOptions;

typedef enum {
  DCR_REPORT_PHASE_LOADING,   /* opening the device, model and bank */
  DCR_REPORT_PHASE_ANALYSING, /* index: the item just finished */
  DCR_REPORT_PHASE_VERIFYING, /* hashing the evidence again */
  DCR_REPORT_PHASE_WRITING,   /* the PDF, CSV and JSON */
} DcrReportPhase;

/* Called from the thread running dcr_report_write; done of total in this
 * phase. */
typedef void (*DcrReportProgress) (DcrReportPhase phase, guint index, guint done, guint total, gpointer user_data);

typedef struct _DcrReport DcrReport;

DcrReport *dcr_report_new (const DcrReportOptions *opts);
void dcr_report_free (DcrReport *r);

/* Intake: files are queued as they are; folders are walked recursively
 * (sorted by name, symbolic links to folders not followed). Every regular
 * file found is an input: one that is not a PNG or JPEG by its first bytes
 * is rejected in the report, not skipped. Fails on a path that does not
 * exist; the same file twice is queued once. */
gboolean dcr_report_add_inputs (DcrReport *r, const char *const *paths, guint n, GError **error);
guint dcr_report_n_items (DcrReport *r);
const DcrReportItem *dcr_report_get_item (DcrReport *r, guint i);

/* Loads the detector, analyses every queued file (decoding on a pool of
 * threads, detection in GPU batches, at most a few batches of decoded
 * images in memory at once), hashes the evidence again and writes the
 * report into a temporary directory next to out_dir, renamed to out_dir
 * when complete. Refuses an out_dir that exists. On error or cancellation
 * nothing is left behind (G_IO_ERROR_CANCELLED when cancelled). The GPU
 * device, model and bank it opened are closed again before it returns. */
gboolean dcr_report_write (DcrReport *r, const char *out_dir, DcrReportProgress progress, gpointer user_data,
                           GCancellable *cancellable, GError **error);

/* After dcr_report_write: counts, and seconds spent analysing (decode and
 * detection, not loading) and in all. */
void dcr_report_get_counts (DcrReport *r, guint *analysed, guint *rejected, guint *changed);
void dcr_report_get_times (DcrReport *r, double *analysis_s, double *total_s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrReport, dcr_report_free)

G_END_DECLS
