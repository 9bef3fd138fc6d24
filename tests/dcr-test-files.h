/* dcr-test-files.h — fixtures on disk shared by the app tests (report,
 * batch, bank view, inspect, screenshots): synthetic images, an untrained
 * detector, and clean-up. GLib and libdcr only; failures are test failures. */
#pragma once

#include "dcr-image.h"

G_BEGIN_DECLS

/* A new folder in the temporary directory from `tmpl` (g_dir_make_tmp's
 * template, e.g. "dcr-batch-XXXXXX"); g_free it. */
char *dcr_test_make_tmpdir (const char *tmpl);
/* Removes `path`: a file, or a folder with everything under it. A path that
 * is not there is fine. */
void dcr_test_remove_tree (const char *path);
/* The number of entries directly in folder `dir` (0 when it cannot be read). */
guint dcr_test_count_entries (const char *dir);

/* A w × h RGB test pattern (ramps and a checkerboard) that differs for
 * every seed; no test depends on its exact pixels. */
DcrImage *dcr_test_pattern_image (guint w, guint h, guint seed);
/* dcr_test_pattern_image written to `path` as a PNG. */
void dcr_test_write_pattern_png (const char *path, guint w, guint h, guint seed);
/* dcr_test_pattern_image of size × size encoded as a PNG (a prototype's
 * thumbnail in a bank). */
GBytes *dcr_test_thumbnail_png (guint size, guint seed);

/* A detector with fresh weights for the default backbone at `model_path`
 * (k 2, hidden 16, head 8, threshold 0.5, inconclusive band [0.45, 0.55],
 * weights from `seed`) and a new bank at `bank_path` of `n_prototypes`
 * synthetic prototypes whose provenance is `source`: the verdicts mean
 * nothing, every part of the pipeline gets data of the right shape. */
void dcr_test_make_untrained_detector (const char *model_path, const char *bank_path, guint n_prototypes,
                                       guint seed, const char *source);
/* The same for the backbone `spec` (e.g. one with "+cnn=CNN"). */
void dcr_test_make_untrained_detector_for (const char *spec, const char *model_path, const char *bank_path,
                                           guint n_prototypes, guint seed, const char *source);

G_END_DECLS
