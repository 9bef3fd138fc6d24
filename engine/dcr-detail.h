/* dcr-detail.h — how much fine detail an image has, and whether it has so
 * little that the detector's verdicts on it are not to be trusted.
 *
 * Super-resolution leaves its traces in fine detail, and removes some: an
 * image with little of it gives the detector little to go on either way.
 * The model shipped until the twenty-second session, trained on sharp
 * wallpapers only, called most real photographs that are mostly out of
 * focus *fake*; the one shipped since has such photos in its training and
 * validation, and calls them *real* or *inconclusive*, but what it says on
 * such images rests on little evidence (the model card, *Blind spots*). The
 * measure below lets the CLI, the reports and the app say so beside the
 * verdict; it changes no score and no verdict.
 *
 * Detail: on the luma 0.299R + 0.587G + 0.114B (0–255) of the forensic
 * window (the centred min(H, 512) × min(W, 512) pixels, dcr-op-forensic.h),
 * the mean over the pixels at least one from the window's edges of
 * (|h| + |v|) / 2, with h = x(i, j−1) − 2x(i, j) + x(i, j+1) and v the same
 * down a column: the mean absolute second difference, in luma levels.
 * CPU only; ~1 ms for a 512 × 512 window. */
#pragma once

#include "dcr-image.h"

G_BEGIN_DECLS

/* Below this an image has less fine detail than 95 % of the real crops the
 * shipped model was trained and validated on: the 5th percentile of the 879
 * PNGs of the benchmark's train/real and val/real (median 1.69), by
 * data/models/default/detail-threshold.py. (With the model shipped until the
 * twenty-second session, whose training photos were all sharp but one, it
 * was 0.73.) */
#define DCR_DETAIL_LOW 0.38f

/* The detail of img's window; NaN when the window is smaller than 3 × 3. */
float dcr_detail_measure (const DcrImage *img);

/* detail < DCR_DETAIL_LOW (FALSE for NaN). */
gboolean dcr_detail_is_low (float detail);

G_END_DECLS
