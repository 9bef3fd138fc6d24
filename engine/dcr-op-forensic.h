/* dcr-op-forensic.h — the forensic residual feature: statistics of an
 * image's high-pass residual at its native resolution (no resize, which
 * would wash out what generators leave behind), read by the detector beside
 * the backbone's semantic feature.
 *
 * Window: the centred min(H, 512) × min(W, 512) pixels. Channels: luma
 * 0.299R + 0.587G + 0.114B, R − G and B − G. Residuals: h = x(i, j−1) −
 * 2x(i, j) + x(i, j+1), v = the same down a column. Anchors: the pixels
 * (i, j) of the window at least 6 from its edges, nh × nw of them with nh,
 * nw the largest multiples of 24 that fit. For each channel and each phase
 * (i mod 24, j mod 24) the op sums 13 statistics over the anchors:
 *   0 h², 1 v², 2 |h|, 3 |v|, 3+L h·h(i, j+L), 7+L v·v(i+L, j) (L = 1…4),
 *   12 h·v.
 * The feature (DCR_FORENSIC_DIM = 3 × 110 values, channel after channel):
 *   level log(mean(h² + v²) + 0.01); shape mean|h|²/mean h², the same for v;
 *   correlations Σh·h_L/Σh², Σv·v_L/Σv² (L = 1…4), Σh·v/√(Σh²Σv²); then for
 *   each period q of 2, 3, 4, 8 the q×q grids of energy h² + v² (plus
 *   0.001 per anchor, then divided by its mean) and of lag-1 correlation
 *   (Σ h·h_1 + v·v_1 over the cell / the cell's energy), folded from the
 *   phases mod q, and for each non-zero frequency (u, v) — one of each
 *   conjugate pair, (u, v) in row-major order — the magnitudes of both
 *   grids' 2-D DFT divided by q², energy first.
 * Each group is multiplied by a fixed scale (DcrForensicScales, v1: level 0.4,
 * shape 4, correlations 5, both DFT groups 70). */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

#define DCR_FORENSIC_PERIOD 24
#define DCR_FORENSIC_MARGIN 6
#define DCR_FORENSIC_WINDOW 512
#define DCR_FORENSIC_NACC 13
#define DCR_FORENSIC_PER_CHANNEL 110
#define DCR_FORENSIC_DIM (3 * DCR_FORENSIC_PER_CHANNEL)
/* accumulators per image: 3 channels × 13 statistics × 24² phases */
#define DCR_FORENSIC_ACC_SIZE (3 * DCR_FORENSIC_NACC * DCR_FORENSIC_PERIOD * DCR_FORENSIC_PERIOD)
/* The smallest image side the window needs (margins plus one period). */
#define DCR_FORENSIC_MIN_SIDE (2 * DCR_FORENSIC_MARGIN + DCR_FORENSIC_PERIOD)

typedef struct {
  float level, shape, corr, energy, pcorr;
} DcrForensicScales;

/* The scales of the shipped feature ("residual-v1"). */
extern const DcrForensicScales dcr_forensic_scales_v1;

typedef struct {
  gint64 top, left; /* window origin */
  gint64 nh, nw;    /* anchor rows and columns (multiples of 24) */
} DcrForensicWindow;

/* The window of an h × w image; FALSE when a side is below
 * DCR_FORENSIC_MIN_SIDE. */
gboolean dcr_forensic_window (gint64 h, gint64 w, DcrForensicWindow *win);

/* image: DCR_U8 [H, W, 3] (a buffer padded to 4 bytes, dcr_image_tensor_new);
 * acc: f32 with at least (slot + 1) · DCR_FORENSIC_ACC_SIZE elements; y: f32
 * or f16 [N, D]. Records the statistics of the image into acc's slot `slot`,
 * then its feature into y[row, column … column + DCR_FORENSIC_DIM). An
 * image tensor [M, H, W, 3] (dcr_images_tensor_new) is M images of one size
 * in two dispatches rather than 2·M: image i to slot slot + i and row row +
 * i. */
gboolean dcr_op_forensic (DcrSeq *seq, const DcrTensor *image, DcrTensor *acc, guint slot, DcrTensor *y,
                          gint64 row, gint64 column, const DcrForensicScales *scales, GError **error);

/* The argument checks dcr_op_forensic and dcr_op_local share: image u8
 * [H, W, 3] or [M, H, W, 3] padded to 4 bytes (its byte count to
 * *image_bytes) and large enough for a window (to *win), acc f32 with
 * acc_size floats for each slot up to `slot` + M − 1, and `dim` columns from
 * `column` in rows `row` … `row` + M − 1 of y. `op` prefixes the messages;
 * `what` names the statistics in the size error. */
gboolean dcr_forensic_check_args (DcrSeq *seq, const char *op, const char *what, const DcrTensor *image,
                                  const DcrTensor *acc, guint slot, gsize acc_size, const DcrTensor *y, gint64 row,
                                  gint64 column, guint dim, DcrForensicWindow *win, gsize *image_bytes,
                                  GError **error);

/* The writable binding of `dim` values of y's row `row` from `column`,
 * starting at the 256-byte boundary below them (storage-buffer offset
 * alignment); returns the first value's element index within it. */
guint32 dcr_forensic_row_binding (const DcrTensor *y, gint64 row, gint64 column, guint dim, DcrBinding *binding);
/* The same for rows row … row + n − 1 (the values between them included). */
guint32 dcr_forensic_rows_binding (const DcrTensor *y, gint64 row, gint64 n, gint64 column, guint dim,
                                   DcrBinding *binding);
/* The images of an image tensor: M of [M, H, W, 3], 1 of [H, W, 3]. */
gint64 dcr_forensic_image_count (const DcrTensor *image);

/* The three channels of pixel (y, x) of a w-wide 8-bit RGB image — luma,
 * R − G, B − G — in the shaders' float arithmetic, for the references. */
void dcr_ref_forensic_channels (const guint8 *image, gint64 w, gint64 y, gint64 x, double out[3]);

/* References in double: the accumulators of one image (acc: ACC_SIZE
 * values) and the feature from them (out: DCR_FORENSIC_DIM values). */
void dcr_ref_forensic_stats (const guint8 *image, gint64 h, gint64 w, const DcrForensicWindow *win, double *acc);
void dcr_ref_forensic_features (const double *acc, const DcrForensicWindow *win, const DcrForensicScales *scales,
                                float *out);

G_END_DECLS
