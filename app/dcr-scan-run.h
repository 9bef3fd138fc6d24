/* dcr-scan-run.h — `dcr scan`'s pipeline, shared with `dcr bench scan` so
 * that the speed the benchmark reports is the scan's own: the files of a
 * walk are decoded in batches on threads of their own (with the search for
 * an earlier JPEG's grid and the fine-detail measure) while the detector
 * analyses the batch before, and each file is handed, in walk order, to a
 * callback. */
#pragma once

#include "dcr-cli-detect.h"
#include "dcr-detail.h"
#include "dcr-jpeg-trace.h"
#include "dcr-walk.h"

typedef struct {
  const char *path;
  char *sha256;
  DcrImage *img;
  GError *error;      /* the file could not be scanned: why, with its path */
  DcrJpegTrace trace; /* searched on the decoding thread (not for a JPEG file) */
  float detail;       /* measured there too (dcr-detail.h) */
  DcrDetection det;   /* when there is no error */
  double ms;          /* the detector's time for the file's batch, per file */
} DcrScanItem;

/* Called once per walked file, in walk order, after its batch was analysed;
 * the item is cleared when it returns. */
typedef void (*DcrScanEach) (DcrCliSetup *s, const DcrScanItem *it, gpointer user_data);

/* Scans entries[0..n) with s's detector in batches of its batch size.
 * FALSE only when the detector fails (a device error); a file that cannot
 * be read, decoded or analysed is handed to each with its error. */
gboolean dcr_scan_run (DcrCliSetup *s, const DcrWalkEntry *entries, guint n, DcrScanEach each, gpointer user_data,
                       GError **error);
