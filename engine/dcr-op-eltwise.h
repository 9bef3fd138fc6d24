/* dcr-op-eltwise.h — pointwise ops: add, mul and |a − b| with broadcasting of
 * a trailing-dimensions tensor (per-channel scale, bias), clamp, and a
 * standalone activation. DCR-Net's difference d = |f − r| is dcr_op_absdiff. */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

typedef enum {
  DCR_BINARY_ADD,
  DCR_BINARY_MUL,
  DCR_BINARY_ABSDIFF, /* |a − b| */
} DcrBinaryOp;

/* y = act(a ∘ b). b has a's shape, a's trailing dimensions (leading 1s
 * allowed) — [C] against [N, H, W, C] is a per-channel operand — or one
 * element. y has a's shape and may be a itself. All three share one dtype. */
gboolean dcr_op_binary (DcrSeq *seq, DcrBinaryOp op, const DcrTensor *a, const DcrTensor *b,
                        DcrTensor *y, DcrAct act, GError **error);
gboolean dcr_op_add (DcrSeq *seq, const DcrTensor *a, const DcrTensor *b, DcrTensor *y, GError **error);
gboolean dcr_op_mul (DcrSeq *seq, const DcrTensor *a, const DcrTensor *b, DcrTensor *y, GError **error);
gboolean dcr_op_absdiff (DcrSeq *seq, const DcrTensor *a, const DcrTensor *b, DcrTensor *y, GError **error);

/* y = min(max(x, lo), hi); y has x's shape (x itself allowed). */
gboolean dcr_op_clamp (DcrSeq *seq, const DcrTensor *x, DcrTensor *y, float lo, float hi, GError **error);

/* y = act(x), any DcrAct (GELU uses an erf approximation good to ~1e-7). */
gboolean dcr_op_activation (DcrSeq *seq, const DcrTensor *x, DcrTensor *y, DcrAct act, GError **error);

/* References: a has n elements, b has nb (n a multiple of nb). */
void dcr_ref_binary (DcrBinaryOp op, const float *a, gint64 n, const float *b, gint64 nb, float *y, DcrAct act);
void dcr_ref_clamp (const float *x, gint64 n, float *y, float lo, float hi);
void dcr_ref_activation (const float *x, gint64 n, float *y, DcrAct act);

G_END_DECLS
