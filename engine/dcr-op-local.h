/* dcr-op-local.h — the local forensic feature ("local-v1"): the image's
 * high-pass residual statistics per tile of the window, aggregated over the
 * tiles, so that a partly regenerated region (a super-resolved rectangle of
 * an otherwise real picture) is not averaged away as it is in the global
 * statistics of dcr-op-forensic.h.
 *
 * Window, anchors and channels: those of residual-v1 (dcr_forensic_window,
 * margin 6, nh × nw anchors, multiples of 24; channels luma 0.299R + 0.587G
 * + 0.114B, R − G and B − G of the 8-bit values as floats). Anchor (a, b) is
 * the pixel (top + 6 + a, left + 6 + b), 0 ≤ a < nh, 0 ≤ b < nw.
 *
 * Tiles: along each axis the tile side is 48 anchors when that axis has
 * ≥ 48 anchors, else 24 (then the axis has 24 anchors and one tile). Tiles
 * are laid from anchor 0: floor(nh/Th) × floor(nw/Tw) of them, row-major;
 * leftover anchors (< Th, < Tw) at the end belong to no tile. A 256 × 256
 * image has nh = nw = 240 → 5 × 5 tiles of 48; a 512 × 512 window 10 × 10;
 * a 48 × 48 image nh = nw = 24 → one 24 × 24 tile.
 *
 * Residuals at dilation d ∈ D = {1, 2, 3, 4, 6} (all within the margin):
 *   h_d(i, j) = x(i, j−d) − 2x(i, j) + x(i, j+d),
 *   v_d(i, j) = x(i−d, j) − 2x(i, j) + x(i+d, j).
 * Accumulators per tile and channel (DCR_LOCAL_NACC = 153 sums over the
 * tile's anchors, in this order):
 *   0–4     E_k = Σ h_d² + v_d², d = D[k]
 *   5–148   P[p] = Σ h_1² + v_1² over the anchors with
 *           (a mod 12)·12 + (b mod 12) = p
 *   149 Ch = Σ h_1(i, j)·h_1(i, j+1),  150 Cv = Σ v_1(i, j)·v_1(i+1, j),
 *   151 Sh = Σ h_1²,                   152 Sv = Σ v_1²
 *   (the neighbour at j+1 / i+1 may lie outside the tile, inside the margin).
 * Per-tile values (23 per channel), n = anchors in the tile:
 *   t0 = log(E_0/n + 0.01)
 *   t1…t4 = log((E_k/n + 0.001) / (E_0/n + 0.001)), k = 1…4
 *   t5…t20: for q = 2, 3, 4 the q × q grid g[r][c] = Σ P[p] over the phases
 *           p = (pi, pj) with pi mod q = r, pj mod q = c; g /= (mean of
 *           g + 1e-9); G = its 2-D DFT; |G(u, v)|/q² for every (u, v) ≠
 *           (0, 0) in row-major order except the larger of a conjugate pair
 *           (skip (u, v) when ((q−u) mod q, (q−v) mod q) < (u, v)
 *           lexicographically): q = 2 → 3 values, 3 → 4, 4 → 9.
 *   t21 = Ch/(Sh + 1e-6), t22 = Cv/(Sv + 1e-6)
 * The feature (DCR_LOCAL_DIM = 3 × 92 values), channel after channel: the
 * mean over the tiles of t0…t22, then their maximum, their minimum and their
 * population standard deviation (0 with one tile). No scales. */
#pragma once

#include "dcr-ops.h"
#include "dcr-op-forensic.h"

G_BEGIN_DECLS

#define DCR_LOCAL_TILE 48       /* tile side in anchors (24 on a 24-anchor axis) */
#define DCR_LOCAL_PHASE 12      /* P's phase period */
#define DCR_LOCAL_NDIL 5        /* dilations 1, 2, 3, 4, 6 */
#define DCR_LOCAL_NACC (DCR_LOCAL_NDIL + DCR_LOCAL_PHASE * DCR_LOCAL_PHASE + 4)
#define DCR_LOCAL_NVAL 23       /* per-tile values per channel */
#define DCR_LOCAL_PER_CHANNEL (4 * DCR_LOCAL_NVAL)
#define DCR_LOCAL_DIM (3 * DCR_LOCAL_PER_CHANNEL)
/* the most tiles: a 512 window has 480 anchors a side → 10 × 10 */
#define DCR_LOCAL_MAX_TILES 100
/* Scratch per image: for each tile and channel ([tile][channel], tiles
 * row-major) its DCR_LOCAL_NACC accumulators followed by its DCR_LOCAL_NVAL
 * values t0…t22; a multiple of 256 bytes, so that every slot starts aligned. */
#define DCR_LOCAL_ACC_STRIDE (DCR_LOCAL_NACC + DCR_LOCAL_NVAL)
#define DCR_LOCAL_ACC_SIZE (DCR_LOCAL_MAX_TILES * 3 * DCR_LOCAL_ACC_STRIDE)

/* The tiles of a window: th × tw anchors each, nth × ntw of them. */
typedef struct {
  gint64 th, tw, nth, ntw;
} DcrLocalTiles;

void dcr_local_tiles (const DcrForensicWindow *win, DcrLocalTiles *tiles);

/* image: DCR_U8 [H, W, 3] (a buffer padded to 4 bytes, dcr_image_tensor_new),
 * at least DCR_FORENSIC_MIN_SIDE a side; acc: f32 with at least (slot + 1) ·
 * DCR_LOCAL_ACC_SIZE elements; y: f32 or f16 [N, D]. Records the tiles'
 * accumulators into acc's slot `slot`, then the feature into
 * y[row, column … column + DCR_LOCAL_DIM). An image tensor [M, H, W, 3]
 * (dcr_images_tensor_new) is M images of one size in two dispatches: image
 * i to slot slot + i and row row + i. */
gboolean dcr_op_local (DcrSeq *seq, const DcrTensor *image, DcrTensor *acc, guint slot, DcrTensor *y,
                       gint64 row, gint64 column, GError **error);

/* References in double: the scratch of one image (acc: DCR_LOCAL_ACC_SIZE
 * values in the layout above, past the last tile zero) and the feature from
 * it (out: DCR_LOCAL_DIM values). */
void dcr_ref_local_stats (const guint8 *image, gint64 h, gint64 w, const DcrForensicWindow *win, double *acc);
void dcr_ref_local_features (const double *acc, const DcrForensicWindow *win, float *out);

/* The per-tile values t0…t22 of one tile and channel from its DCR_LOCAL_NACC
 * accumulators (n: anchors in the tile). */
void dcr_ref_local_tile_values (const double *acc, double n, double *t);

G_END_DECLS
