/* dcr-jpeg-trace.h — whether decoded pixels carry the 8 × 8 block grid of
 * an earlier JPEG compression (a PNG saved from a JPEG, a screenshot of a
 * shared photo), and where that grid lies.
 *
 * JPEG quantises the DCT coefficients of every 8 × 8 block of its grid to
 * multiples of a step. Decoding and saving again keeps that lattice, up to
 * rounding: computed on the same grid, the luma DCT coefficients of the
 * pixels sit near multiples of their steps, and on any other grid they do
 * not. For each of the 64 possible grid origins this measures, over up to
 * DCR_JPEG_TRACE_MAX_BLOCKS blocks, how strongly the 20 lowest AC
 * coefficients cluster on a lattice of step 2–8 (a larger step is a
 * multiple of one of them; the mean of cos 2πc/q,
 * less its median over the origins, so that flat areas, where coefficients
 * are near 0 on every grid, do not count; the best step per coefficient,
 * averaged over the coefficients). A JPEG grid stands out at one origin;
 * an image without one has no origin above the others, and an integer
 * upscale, which repeats every 2 or 4 pixels, has several equal ones. The
 * evidence is the margin of the best origin over its rival, the best origin
 * on neither its row nor its column of origins (in a smooth JPEG the
 * origins on the grid's own row or column keep part of the lattice).
 *
 * What it cannot see: a JPEG saved at quality ≥ ~97 (steps of 1), and an
 * image resized or rotated after its JPEG compression (the grid is gone).
 * CPU only; ~2 ms on one core for any image size (the blocks are sampled). */
#pragma once

#include "dcr-image.h"

G_BEGIN_DECLS

/* Blocks examined per grid origin (spread evenly over the image). */
#define DCR_JPEG_TRACE_MAX_BLOCKS 128u
/* Fewer blocks than this (an image under ~40 × 40): no verdict. */
#define DCR_JPEG_TRACE_MIN_BLOCKS 16u
/* The margin from which a grid is reported. On the benchmark's test and
 * validation photos (the model card), the 1,584 PNGs, which never were
 * JPEGs, stay under 0.04, and their 1,584 JPEG copies (quality 75–95) are
 * all over 0.105 (15 under 0.2, smooth images at quality ~95). With 256
 * blocks per origin: under 0.03 and over 0.088 (one miss), at twice the
 * cost. */
#define DCR_JPEG_TRACE_MIN_CONTRAST 0.1f

/* … and the share of the best origin's score that it must stand out by.
 * Content that repeats on an 8-pixel grid (a checkerboard of 8-pixel
 * squares) has a lattice at every origin, as identical blocks have equal
 * coefficients: its best origin is high, but so is the rival (a share of
 * 0.2–0.3 for dcr-test-files.c's pattern, against ≥ 0.58 for every JPEG
 * copy of the benchmark and ≤ 0.32 for its PNGs). */
#define DCR_JPEG_TRACE_MIN_SHARE 0.4f

typedef struct {
  gboolean found;     /* contrast ≥ DCR_JPEG_TRACE_MIN_CONTRAST and ≥ DCR_JPEG_TRACE_MIN_SHARE × score */
  float contrast;     /* the best origin's score less the best of the origins on
                       * neither its row nor its column (its rival) */
  float score;        /* the best origin's score (0 … ~1) */
  guint origin_x;     /* the grid's first full block starts at this column, 0–7 */
  guint origin_y;     /* … and row, 0–7 */
  guint blocks;       /* blocks examined per origin; 0: the image is too small */
} DcrJpegTrace;

/* Whether t's margins say a grid (what `found` holds): for a trace read
 * back from storage, decided again under the thresholds of this build. */
gboolean dcr_jpeg_trace_stands_out (const DcrJpegTrace *t);

/* Looks for the grid in img's pixels. Never fails; an image too small to
 * tell gives blocks = 0 and found = FALSE. Deterministic. */
void dcr_jpeg_trace_find (const DcrImage *img, DcrJpegTrace *out);

G_END_DECLS
