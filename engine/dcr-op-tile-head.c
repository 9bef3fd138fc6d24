/* dcr-op-tile-head.c — the tile head on the GPU (definition in
 * dcr-tile-head.h): one dispatch of shaders/tile_head.comp for a batch of
 * images with as many tiles each, one workgroup an image reading the tile
 * values dcr_op_local left in the image's scratch slot. */
#include "dcr-tile-head.h"

typedef struct {
  guint32 ntiles, hidden, lg0, out0, write_logits;
  guint32 acc_stride, lg_stride, out_stride;
} TileHeadPush;

gboolean
dcr_op_tile_head (DcrSeq *seq, const DcrTensor *acc, guint slot, guint ntiles, const DcrTensor *packed, guint hidden,
                  DcrTensor *logits, DcrTensor *y, gint64 row, gint64 column, GError **error)
{
  return dcr_op_tile_head_batch (seq, acc, slot, 1, ntiles, packed, hidden, logits, y, row, column, error);
}

gboolean
dcr_op_tile_head_batch (DcrSeq *seq, const DcrTensor *acc, guint slot, guint n, guint ntiles, const DcrTensor *packed,
                        guint hidden, DcrTensor *logits, DcrTensor *y, gint64 row, gint64 column, GError **error)
{
  const char *op = "tile-head";
  if (n < 1)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "%s: no images", op);
      return FALSE;
    }
  if (ntiles < 1 || ntiles > DCR_LOCAL_MAX_TILES)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "%s: %u tiles; the tile head takes 1 to %d", op,
                   ntiles, DCR_LOCAL_MAX_TILES);
      return FALSE;
    }
  if (hidden < 1 || hidden > DCR_TILES_MAX_HIDDEN)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "%s: hidden width %u; the tile head takes 1 to %d", op,
                   hidden, DCR_TILES_MAX_HIDDEN);
      return FALSE;
    }
  if (acc->dtype != DCR_F32 || dcr_tensor_numel (acc) < (gint64) (slot + n) * DCR_LOCAL_ACC_SIZE)
    return dcr_ops_shape_error (error, op, "the local scratch must be f32 with a slot per image", acc, NULL);
  if (packed->dtype != DCR_F32 || dcr_tensor_numel (packed) < DCR_TILES_PACKED ((gint64) hidden))
    return dcr_ops_shape_error (error, op, "the packed weights must be f32 with DCR_TILES_PACKED (hidden) elements",
                                packed, NULL);
  if (logits && (logits->dtype != DCR_F32 || dcr_tensor_numel (logits) < (gint64) (slot + n) * DCR_LOCAL_MAX_TILES))
    return dcr_ops_shape_error (error, op, "the logits must be f32 with DCR_LOCAL_MAX_TILES per image", logits, NULL);
  if (!dcr_ops_check_dtype (seq, op, y, error))
    return FALSE;
  if (y->ndim != 2 || row < 0 || row + n > y->shape[0] || column < 0 || column + DCR_TILES_DIM > y->shape[1])
    return dcr_ops_shape_error (error, op, "the feature row or columns are outside the output", y, NULL);

  gsize acc_bytes = (gsize) DCR_LOCAL_ACC_SIZE * 4;
  gsize packed_bytes = (gsize) DCR_TILES_PACKED (hidden) * 4;
  DcrBinding b[4] = {
    { acc->buf, slot * acc_bytes, n * acc_bytes, FALSE },
    { packed->buf, 0, packed_bytes, FALSE },
    /* without logits, a placeholder the shader does not touch */
    { packed->buf, 0, packed_bytes, FALSE },
  };
  TileHeadPush pc = { ntiles, hidden, 0, 0, logits != NULL, DCR_LOCAL_ACC_SIZE, DCR_LOCAL_MAX_TILES,
                      (guint32) y->shape[1] };
  if (logits)
    {
      /* the images' logits from a 256-byte aligned start */
      gsize start = (gsize) slot * DCR_LOCAL_MAX_TILES * 4, aligned = start & ~(gsize) 255;
      b[2] = (DcrBinding) { logits->buf, aligned, start + (gsize) n * DCR_LOCAL_MAX_TILES * 4 - aligned, TRUE };
      pc.lg0 = (guint32) ((start - aligned) / 4);
    }
  pc.out0 = dcr_forensic_rows_binding (y, row, n, column, DCR_TILES_DIM, &b[3]);
  char name[32];
  return dcr_ops_dispatch (seq, dcr_ops_shader_name ("tile_head", y->dtype, name, sizeof name), NULL, 0, b, 4, &pc,
                           sizeof pc, 1, 1, n, error);
}
