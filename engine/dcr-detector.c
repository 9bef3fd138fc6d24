/* dcr-detector.c — backbone → retrieval → heads for a batch: two recorded
 * sequences over the same runs, one fed by the backbone's feature tensor on
 * the GPU, one by uploaded features. */
#include "dcr-config.h"
#include "dcr-detector.h"
#include "dcr-detail.h"
#include "dcr-half.h"

#include <math.h>
#include <string.h>

struct _DcrDetector {
  DcrBackbone *bb;
  DcrModel *m;
  DcrBank *bank;
  DcrContext *ctx;
  guint batch;
  DcrDtype dtype;
  DcrRetrieval *retrieval;
  DcrBackboneRun *bb_run;
  DcrRetrievalRun *rr;
  DcrModelRun *run;
  DcrTensor *features;   /* [batch, dim] what the heads read */
  DcrSeq *seq_images;    /* copy from the backbone, then the heads */
  DcrSeq *seq_features;  /* the heads on uploaded features */
  gboolean tile_maps;
};

void
dcr_detection_clear (DcrDetection *d)
{
  g_clear_pointer (&d->residual, g_free);
  g_clear_pointer (&d->tile_logits, g_free);
  g_clear_pointer (&d->cnn_blocks, g_free);
}

gboolean
dcr_detection_cnn_highest (const DcrDetection *d, const DcrCnn *cnn, guint width, guint height, guint *block,
                           gint64 rect[4], float *logit)
{
  guint n = d->cnn_rows * d->cnn_cols;
  if (!d->has_cnn || !d->cnn_blocks || !n || !cnn)
    return FALSE;
  guint best = 0;
  for (guint b = 1; b < n; b++)
    if (d->cnn_blocks[b] > d->cnn_blocks[best])
      best = b;
  /* blocks of another image size would be misplaced: the grid must be
   * this image's, n blocks exactly */
  gint64 r[4];
  dcr_cnn_block_rect (cnn, height, width, d->cnn_cols, n, &r[0], &r[1], &r[2], &r[3]);
  if (r[2] > 0)
    return FALSE;
  dcr_cnn_block_rect (cnn, height, width, d->cnn_cols, n - 1, &r[0], &r[1], &r[2], &r[3]);
  if (r[2] <= 0 || r[3] <= 0)
    return FALSE;
  dcr_cnn_block_rect (cnn, height, width, d->cnn_cols, best, &r[0], &r[1], &r[2], &r[3]);
  if (block)
    *block = best;
  if (rect)
    memcpy (rect, r, sizeof r);
  if (logit)
    *logit = d->cnn_blocks[best];
  return TRUE;
}

void
dcr_detector_set_tile_maps (DcrDetector *det, gboolean keep)
{
  det->tile_maps = keep;
}

static void
drop_runs (DcrDetector *det)
{
  g_clear_pointer (&det->seq_images, dcr_seq_free);
  g_clear_pointer (&det->seq_features, dcr_seq_free);
  g_clear_pointer (&det->run, dcr_model_run_free);
  g_clear_pointer (&det->rr, dcr_retrieval_run_free);
}

void
dcr_detector_free (DcrDetector *det)
{
  if (!det)
    return;
  drop_runs (det);
  dcr_tensor_free (det->features);
  dcr_backbone_run_free (det->bb_run);
  dcr_retrieval_free (det->retrieval);
  g_free (det);
}

static gboolean
make_runs (DcrDetector *det, GError **error)
{
  drop_runs (det);
  guint k = dcr_model_config (det->m)->k;
  if (!(det->rr = dcr_retrieval_run_new (det->retrieval, det->batch, k, error)) ||
      !(det->run = dcr_model_run_new (det->m, det->dtype, det->batch, dcr_retrieval_run_k (det->rr), FALSE, error)) ||
      !(det->seq_images = dcr_seq_new (det->ctx, error)) || !(det->seq_features = dcr_seq_new (det->ctx, error)))
    return FALSE;
  dcr_seq_copy (det->seq_images, dcr_backbone_run_feature_tensor (det->bb_run)->buf, 0, det->features->buf, 0,
                dcr_tensor_bytes (det->features));
  return dcr_model_run_record_single (det->run, det->seq_images, det->rr, det->features, error) &&
         dcr_model_run_record_single (det->run, det->seq_features, det->rr, det->features, error);
}

DcrDetector *
dcr_detector_new (DcrBackbone *bb, DcrModel *m, DcrBank *bank, guint batch, GError **error)
{
  guint dim = dcr_backbone_dim (bb);
  if (!dcr_model_check_backbone (m, dcr_backbone_id (bb), dim, error))
    return NULL;
  if (g_strcmp0 (dcr_bank_backbone_id (bank), dcr_backbone_id (bb)) != 0 || dcr_bank_dim (bank) != dim)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_MISMATCH,
                   "%s holds features of %s (%u wide), not of the backbone in use, %s (%u wide)", dcr_bank_path (bank),
                   dcr_bank_backbone_id (bank), dcr_bank_dim (bank), dcr_backbone_id (bb), dim);
      return NULL;
    }
  g_autoptr (DcrDetector) det = g_new0 (DcrDetector, 1);
  det->bb = bb;
  det->m = m;
  det->bank = bank;
  det->dtype = dcr_backbone_dtype (bb);
  det->batch = MAX (1, MIN (batch, dcr_backbone_max_batch (bb)));
  det->ctx = dcr_model_context (m);
  gint64 fs[] = { det->batch, dim };
  if (!(det->bb_run = dcr_backbone_run_new (bb, det->batch, error)) ||
      !(det->features = dcr_tensor_new (det->ctx, DCR_POOL_ACTIVATIONS, det->dtype, 2, fs, error)) ||
      !(det->retrieval = dcr_retrieval_new (det->ctx, dim, det->dtype, det->batch, error)) ||
      !dcr_retrieval_sync (det->retrieval, bank, NULL, error) || !make_runs (det, error))
    return NULL;
  return g_steal_pointer (&det);
}

guint
dcr_detector_batch (DcrDetector *det)
{
  return det->batch;
}

guint
dcr_detector_k (DcrDetector *det)
{
  return dcr_retrieval_run_k (det->rr);
}

gsize
dcr_detector_bank_count (DcrDetector *det)
{
  return dcr_retrieval_count (det->retrieval);
}

gboolean
dcr_detector_sync (DcrDetector *det, GError **error)
{
  gboolean reloaded = FALSE;
  if (!dcr_retrieval_sync (det->retrieval, det->bank, &reloaded, error))
    return FALSE;
  return !reloaded || make_runs (det, error);
}

static gboolean
finish (DcrDetector *det, guint n, const gboolean *jpeg, DcrDetection *out, GError **error)
{
  guint k = dcr_retrieval_run_k (det->rr), dim = dcr_backbone_dim (det->bb);
  g_autofree float *logits = g_new (float, 2 * n), *p = g_new (float, n), *an = g_new (float, n);
  g_autofree float *att = g_new (float, (gsize) n * k), *sims = g_new (float, (gsize) n * k);
  g_autofree float *res = g_new (float, (gsize) n * dim);
  g_autofree gint64 *ids = g_new (gint64, (gsize) n * k);
  /* the raw features, once, when the tile columns or the score fusion need them */
  gboolean tiles = dcr_backbone_has_tiles (det->bb), fusion = dcr_model_config (det->m)->fusion;
  g_autofree float *feat = tiles || fusion ? g_new (float, (gsize) n * dim) : NULL;
  if (!dcr_model_run_outputs (det->run, n, logits, NULL, an, att, res, NULL, error) ||
      !dcr_retrieval_run_results (det->rr, n, ids, sims, NULL, error) ||
      (feat && !dcr_tensor_download_floats (det->features, feat, (gsize) n * dim, error)))
    return FALSE;
  for (guint i = 0; i < n; i++)
    p[i] = dcr_model_p_fake (det->m, logits + 2 * i, feat ? feat + (gsize) i * dim : NULL, jpeg && jpeg[i]);
  for (guint i = 0; i < n; i++)
    {
      DcrDetection *d = &out[i];
      memset (d, 0, sizeof *d);
      d->detail = NAN; /* no pixels here; dcr_detector_run_traced measures them */
      d->p_fake = p[i];
      d->anomaly = an[i];
      d->logits[0] = logits[2 * i];
      d->logits[1] = logits[2 * i + 1];
      d->jpeg = jpeg && jpeg[i];
      d->verdict = dcr_model_verdict (det->m, p[i], d->jpeg);
      d->k = k;
      memcpy (d->ids, ids + (gsize) i * k, k * sizeof (gint64));
      memcpy (d->similarity, sims + (gsize) i * k, k * sizeof (float));
      memcpy (d->attention, att + (gsize) i * k, k * sizeof (float));
      d->residual = g_memdup2 (res + (gsize) i * dim, dim * sizeof (float));
      d->p_heads = (float) (1.0 / (1.0 + exp ((double) d->logits[0] - d->logits[1])));
      if (tiles)
        {
          guint c = dcr_backbone_tiles_column (det->bb);
          d->has_tiles = TRUE;
          d->tile_score = feat[(gsize) i * dim + c];
          d->tile_max = feat[(gsize) i * dim + c + 1];
        }
    }
  return TRUE;
}

gboolean
dcr_detector_run (DcrDetector *det, DcrImage *const *images, guint n, DcrDetection *out, GError **error)
{
  return dcr_detector_run_traced (det, images, NULL, NULL, n, out, error);
}

void
dcr_detector_prepare (const DcrImage *img, DcrJpegTrace *trace, float *detail)
{
  if (img->format != DCR_IMAGE_FORMAT_JPEG)
    dcr_jpeg_trace_find (img, trace);
  *detail = dcr_detail_measure (img);
}

/* dcr_detector_run_traced with image i in batch slot i. */
static gboolean
run_slots (DcrDetector *det, DcrImage *const *images, const DcrJpegTrace *traces, const float *details, guint n,
           DcrDetection *out, GError **error)
{
  g_autofree gboolean *jpeg = g_new (gboolean, MAX (n, 1));
  g_autofree DcrJpegTrace *trace = g_new0 (DcrJpegTrace, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      if (!dcr_backbone_run_set_image (det->bb_run, i, images[i], error))
        return FALSE;
      jpeg[i] = images[i]->format == DCR_IMAGE_FORMAT_JPEG;
      if (!jpeg[i])
        {
          if (traces)
            trace[i] = traces[i];
          else
            dcr_jpeg_trace_find (images[i], &trace[i]);
          jpeg[i] = trace[i].found;
        }
    }
  if (!dcr_backbone_run_forward (det->bb_run, error) || !dcr_seq_submit (det->seq_images, TRUE, error) ||
      !finish (det, n, jpeg, out, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      out[i].jpeg_trace = trace[i];
      out[i].detail = details ? details[i] : dcr_detail_measure (images[i]);
    }
  for (guint i = 0; det->tile_maps && dcr_backbone_has_tiles (det->bb) && i < n; i++)
    {
      float lg[DCR_LOCAL_MAX_TILES];
      guint nth = 0, ntw = 0;
      if (!dcr_backbone_run_tile_logits (det->bb_run, i, lg, &nth, &ntw, error))
        return FALSE;
      out[i].tile_rows = nth;
      out[i].tile_cols = ntw;
      out[i].tile_logits = g_memdup2 (lg, (gsize) nth * ntw * sizeof (float));
    }
  if (!dcr_backbone_has_cnn (det->bb))
    return TRUE;
  /* the CNN's own logits: before the standardisation the heads read */
  guint dim = dcr_backbone_dim (det->bb), c = dcr_backbone_cnn_column (det->bb);
  g_autofree float *raw = g_new (float, (gsize) det->batch * dim);
  if (!dcr_backbone_run_raw_features (det->bb_run, raw, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      const float *row = raw + (gsize) i * dim + c;
      out[i].has_cnn = TRUE;
      out[i].cnn_mean = row[0];
      out[i].cnn_top = row[1];
      out[i].cnn_max = row[2];
      if (!det->tile_maps)
        continue;
      float bl[DCR_CNN_MAX_BLOCKS];
      guint nbh = 0, nbw = 0;
      if (!dcr_backbone_run_cnn_blocks (det->bb_run, i, bl, &nbh, &nbw, error))
        return FALSE;
      out[i].cnn_rows = nbh;
      out[i].cnn_cols = nbw;
      out[i].cnn_blocks = g_memdup2 (bl, (gsize) nbh * nbw * sizeof (float));
    }
  return TRUE;
}

gboolean
dcr_detector_run_traced (DcrDetector *det, DcrImage *const *images, const DcrJpegTrace *traces,
                         const float *details, guint n, DcrDetection *out, GError **error)
{
  g_return_val_if_fail (n <= det->batch, FALSE);
  /* The slots in order of image size (a stable insertion sort; n is a
   * batch): the backbone records consecutive images of one size together,
   * one dispatch an op for them, so a folder of mixed sizes gets that too.
   * An image's results do not depend on its slot; out[] keeps the
   * caller's order. */
  g_autofree guint *order = g_new (guint, MAX (n, 1));
  gboolean sorted = TRUE;
  for (guint i = 0; i < n; i++)
    {
      guint j = i;
      for (; j > 0; j--)
        {
          const DcrImage *a = images[order[j - 1]], *b = images[i];
          if (a->height < b->height || (a->height == b->height && a->width <= b->width))
            break;
          order[j] = order[j - 1];
        }
      order[j] = i;
      sorted = sorted && j == i;
    }
  if (sorted)
    return run_slots (det, images, traces, details, n, out, error);
  g_autofree DcrImage **pimg = g_new (DcrImage *, n);
  g_autofree DcrJpegTrace *ptr = traces ? g_new (DcrJpegTrace, n) : NULL;
  g_autofree float *pdet = details ? g_new (float, n) : NULL;
  g_autofree DcrDetection *pout = g_new0 (DcrDetection, n);
  for (guint s = 0; s < n; s++)
    {
      pimg[s] = images[order[s]];
      if (ptr)
        ptr[s] = traces[order[s]];
      if (pdet)
        pdet[s] = details[order[s]];
    }
  gboolean ok = run_slots (det, pimg, ptr, pdet, n, pout, error);
  for (guint s = 0; s < n; s++)
    out[order[s]] = pout[s]; /* what a failed run filled too: the caller clears out[] */
  return ok;
}

gboolean
dcr_detector_run_features (DcrDetector *det, const float *features, const gboolean *jpeg, guint n,
                           DcrDetection *out, GError **error)
{
  g_return_val_if_fail (n <= det->batch, FALSE);
  gsize dim = dcr_backbone_dim (det->bb), total = (gsize) det->batch * dim;
  g_autofree float *buf = g_new0 (float, total);
  memcpy (buf, features, n * dim * sizeof (float));
  gboolean ok;
  if (det->dtype == DCR_F16)
    {
      g_autofree guint16 *h = g_new (guint16, total);
      dcr_half_from_floats (h, buf, total);
      ok = dcr_tensor_upload (det->features, h, error);
    }
  else
    ok = dcr_tensor_upload (det->features, buf, error);
  return ok && dcr_seq_submit (det->seq_features, TRUE, error) && finish (det, n, jpeg, out, error);
}

static char *
find_data (const char *sub, const char *name)
{
  /* $DCR_DATA_DIR replaces the search rather than adding to it, so that a
   * relocated install or a test sees exactly what it points at */
  const char *env = g_getenv ("DCR_DATA_DIR");
  const char *dirs[] = { env, env ? NULL : DCR_SOURCE_DATADIR, env ? NULL : DCR_DATADIR };
  for (gsize i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      if (!dirs[i])
        continue;
      char *p = g_build_filename (dirs[i], sub, name, NULL);
      if (g_file_test (p, G_FILE_TEST_IS_REGULAR))
        return p;
      g_free (p);
    }
  return NULL;
}

char *
dcr_detector_default_model_path (void)
{
  return find_data ("models/default", "model.safetensors");
}

char *
dcr_detector_default_bank_path (void)
{
  return find_data ("models/default", "bank.dcrbank");
}
