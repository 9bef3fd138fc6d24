/* dcr-backbone.c — the backbone interface: parses a spec, hands the weight
 * file to the implementation (dcr-backbone-{mobilenet,resnet,clip}.c), and
 * owns what every backbone shares: the id, the feature layout, the input
 * and feature tensors of a run, GPU preprocessing and the replayed pass. */
#include "dcr-config.h"
#include "dcr-backbone-private.h"
#include "dcr-half.h"
#include "dcr-op-conv.h"
#include "dcr-op-forensic.h"
#include "dcr-op-local.h"
#include "dcr-tile-head.h"
#include "dcr-op-eltwise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK (dcr-backbone-error-quark, dcr_backbone_error)

static const DcrBackboneClass *const classes[] = {
  &dcr_backbone_mobilenet_class,
  &dcr_backbone_resnet_class,
  &dcr_backbone_clip_class,
};

gboolean
dcr_backbone_weights_error (DcrBackbone *bb, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_WEIGHTS, "%s: %s", bb->path, msg);
  return FALSE;
}

DcrTensor *
dcr_backbone_upload (DcrBackbone *bb, const char *what, const float *data, int ndim, const gint64 *shape,
                     GError **error)
{
  g_autoptr (DcrTensor) t = dcr_tensor_new (bb->ctx, DCR_POOL_WEIGHTS, bb->dtype, ndim, shape, error);
  if (!t)
    return NULL;
  gint64 n = dcr_tensor_numel (t);
  gboolean ok;
  if (bb->dtype == DCR_F16)
    {
      /* a folded BatchNorm can scale a weight past fp16's range */
      for (gint64 i = 0; i < n; i++)
        if (fabsf (data[i]) > 65504.0f)
          {
            dcr_backbone_weights_error (bb, error, "%s holds %g, beyond fp16's range; run the backbone in f32",
                                        what, data[i]);
            return NULL;
          }
      g_autofree guint16 *h = g_new (guint16, n);
      dcr_half_from_floats (h, data, n);
      ok = dcr_tensor_upload (t, h, error);
    }
  else
    ok = dcr_tensor_upload (t, data, error);
  return ok ? g_steal_pointer (&t) : NULL;
}

float *
dcr_backbone_oihw_to_ohwi (const float *w, gint64 cout, gint64 cin, gint64 kh, gint64 kw)
{
  float *out = g_new (float, cout * cin * kh * kw);
  for (gint64 o = 0; o < cout; o++)
    for (gint64 i = 0; i < cin; i++)
      for (gint64 y = 0; y < kh; y++)
        for (gint64 x = 0; x < kw; x++)
          out[((o * kh + y) * kw + x) * cin + i] = w[((o * cin + i) * kh + y) * kw + x];
  return out;
}

gboolean
dcr_backbone_fold_bn (DcrBackbone *bb, DcrSafetensors *st, const char *bn, float *w, float *bias, gint64 cout,
                      gint64 per_out, float eps, GError **error)
{
  g_autofree float *gamma = NULL, *beta = NULL, *mean = NULL, *var = NULL;
  gint64 vshape[] = { cout };
  const char *suffix[] = { "weight", "bias", "running_mean", "running_var" };
  float **dst[] = { &gamma, &beta, &mean, &var };
  for (int i = 0; i < 4; i++)
    {
      g_autofree char *name = g_strdup_printf ("%s.%s", bn, suffix[i]);
      if (!dcr_safetensors_get_f32 (st, name, vshape, 1, dst[i], error))
        return FALSE;
    }
  for (gint64 i = 0; i < cout; i++)
    if (var[i] < 0)
      return dcr_backbone_weights_error (bb, error, "%s.running_var[%" G_GINT64_FORMAT "] is negative", bn, i);
  dcr_conv_fold_batchnorm (w, bias, cout, per_out, gamma, beta, mean, var, eps);
  return TRUE;
}

void
dcr_backbone_add_tap (DcrBackbone *bb, const char *name, guint width)
{
  char *copy = g_strdup (name);
  g_ptr_array_add (bb->tap_names, copy);
  DcrBackboneTap tap = { copy, bb->dim, width };
  g_array_append_val (bb->taps, tap);
  bb->dim += width;
}

void
dcr_backbone_free (DcrBackbone *bb)
{
  if (!bb)
    return;
  if (bb->impl && bb->klass)
    bb->klass->free_impl (bb->impl);
  dcr_tensor_free (bb->norm_neg_mean);
  dcr_tensor_free (bb->norm_inv_std);
  dcr_tensor_free (bb->tile_packed);
  dcr_tile_head_free (bb->tile_head);
  dcr_cnn_free (bb->cnn);
  if (bb->taps)
    g_array_unref (bb->taps);
  if (bb->tap_names)
    g_ptr_array_unref (bb->tap_names);
  g_free (bb->path);
  g_free (bb->sha256);
  g_free (bb->id);
  g_free (bb->arch);
  g_free (bb);
}

/* $DCR_DATA_DIR, the source tree, then the installed data directory. */
static char *
find_data_file (const char *sub, const char *name)
{
  const char *dirs[] = { g_getenv ("DCR_DATA_DIR"), DCR_SOURCE_DATADIR, DCR_DATADIR };
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
dcr_backbone_default_path (void)
{
  char *p = find_data_file ("models", "mobilenet_v2_b10.safetensors");
  return p ? p : g_build_filename (DCR_DATADIR, "models", "mobilenet_v2_b10.safetensors", NULL);
}

static char *
file_sha256 (const char *path, GError **error)
{
  g_autoptr (GMappedFile) mf = g_mapped_file_new (path, FALSE, error);
  if (!mf)
    return NULL;
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) g_mapped_file_get_contents (mf),
                                      g_mapped_file_get_length (mf));
}

char *
dcr_backbone_default_norm_path (void)
{
  return find_data_file ("models/default", "feature-norm.safetensors");
}

char *
dcr_backbone_default_tile_head_path (void)
{
  return find_data_file ("models/default", "tile-head.safetensors");
}

char *
dcr_backbone_default_cnn_path (void)
{
  return find_data_file ("models/default", "cnn.safetensors");
}

/* Reads "mean" and "std" [dim] (std > 0, finite), checks the file was made
 * for these raw features, and uploads −mean and 1/std. */
static gboolean
load_norm (DcrBackbone *bb, const char *path, char **sha_out, GError **error)
{
  g_autoptr (DcrSafetensors) st = dcr_safetensors_open (path, error);
  if (!st)
    return FALSE;
  const char *for_id = dcr_safetensors_metadata (st, "backbone");
  if (g_strcmp0 (for_id, bb->id) != 0)
    {
      g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_WEIGHTS,
                   "%s: feature standardisation made for backbone \"%s\", not \"%s\"", path,
                   for_id ? for_id : "(none)", bb->id);
      return FALSE;
    }
  gint64 shape[] = { bb->dim };
  g_autofree float *mean = NULL, *sd = NULL;
  if (!dcr_safetensors_get_f32 (st, "mean", shape, 1, &mean, error) ||
      !dcr_safetensors_get_f32 (st, "std", shape, 1, &sd, error))
    return FALSE;
  for (guint i = 0; i < bb->dim; i++)
    {
      if (!isfinite (mean[i]) || !isfinite (sd[i]) || !(sd[i] > 0))
        {
          g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_WEIGHTS,
                       "%s: column %u has mean %g, std %g (std must be positive and both finite)", path, i, mean[i],
                       sd[i]);
          return FALSE;
        }
      mean[i] = -mean[i];
      sd[i] = 1.0f / sd[i];
    }
  if (!(bb->norm_neg_mean = dcr_backbone_upload (bb, "mean", mean, 1, shape, error)) ||
      !(bb->norm_inv_std = dcr_backbone_upload (bb, "std", sd, 1, shape, error)))
    return FALSE;
  *sha_out = file_sha256 (path, error);
  return *sha_out != NULL;
}

DcrBackbone *
dcr_backbone_load (DcrContext *ctx, const char *spec, DcrDtype dtype, GError **error)
{
  g_autofree char *path = NULL;
  const DcrBackboneClass *klass = NULL;
  gboolean residual = FALSE, local = FALSE;
  g_autofree char *norm_path = NULL, *tiles_path = NULL, *cnn_path = NULL;
  static const char suffix[] = "+residual", local_suffix[] = "+local", tiles_suffix[] = "+tiles",
                    cnn_suffix[] = "+cnn";
  if (!spec || g_strcmp0 (spec, "default") == 0)
    {
      klass = &dcr_backbone_mobilenet_class;
      path = dcr_backbone_default_path ();
      residual = local = TRUE;
      tiles_path = dcr_backbone_default_tile_head_path ();
      norm_path = dcr_backbone_default_norm_path ();
      /* the learned forensic CNN, when the folder of the standardisation
         holds one: never one from another data folder, whose model would
         not match (a model trained with it names it in its backbone id) */
      if (norm_path)
        {
          g_autofree char *dir = g_path_get_dirname (norm_path);
          cnn_path = g_build_filename (dir, "cnn.safetensors", NULL);
          if (!g_file_test (cnn_path, G_FILE_TEST_IS_REGULAR))
            g_clear_pointer (&cnn_path, g_free);
        }
    }
  for (gsize i = 0; !klass && i < G_N_ELEMENTS (classes); i++)
    {
      gsize n = strlen (classes[i]->kind);
      if (strncmp (spec, classes[i]->kind, n) != 0)
        continue;
      if (strncmp (spec + n, suffix, sizeof suffix - 1) == 0)
        {
          residual = TRUE;
          n += sizeof suffix - 1;
        }
      if (strncmp (spec + n, local_suffix, sizeof local_suffix - 1) == 0)
        {
          local = TRUE;
          n += sizeof local_suffix - 1;
        }
      if (strncmp (spec + n, tiles_suffix, sizeof tiles_suffix - 1) == 0)
        {
          /* "+tiles=HEAD", HEAD up to the next ':' or "+cnn=" */
          const char *head = spec + n + sizeof tiles_suffix - 1, *colon = strchr (head, ':');
          const char *cnn_at = strstr (head, "+cnn=");
          if (cnn_at && (!colon || cnn_at < colon))
            colon = cnn_at;
          if (!local)
            {
              g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC,
                           "Backbone \"%s\": the tile head scores the local tap's tiles, so \"+tiles\" must "
                           "follow \"+local\" (%s+local+tiles=HEAD:PATH or %s+residual+local+tiles=HEAD:PATH)",
                           spec, classes[i]->kind, classes[i]->kind);
              return NULL;
            }
          if (head[0] != '=' || !colon || colon == head + 1)
            {
              g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC,
                           "Backbone \"%s\": write the tile head as \"+tiles=HEAD:PATH\", HEAD its "
                           ".safetensors file (a path without ':'), PATH the backbone's weights", spec);
              return NULL;
            }
          tiles_path = g_strndup (head + 1, colon - head - 1);
          n = colon - spec;
        }
      if (strncmp (spec + n, cnn_suffix, sizeof cnn_suffix - 1) == 0)
        {
          /* "+cnn=CNN", CNN up to the next ':' */
          const char *file = spec + n + sizeof cnn_suffix - 1, *colon = strchr (file, ':');
          if (file[0] != '=' || !colon || colon == file + 1)
            {
              g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC,
                           "Backbone \"%s\": write the forensic CNN as \"+cnn=CNN:PATH\", CNN its "
                           ".safetensors file (a path without ':'), PATH the backbone's weights", spec);
              return NULL;
            }
          cnn_path = g_strndup (file + 1, colon - file - 1);
          n = colon - spec;
        }
      if (spec[n] == ':' && spec[n + 1])
        {
          klass = classes[i];
          path = g_strdup (spec + n + 1);
        }
      else
        {
          residual = local = FALSE;
          g_clear_pointer (&tiles_path, g_free);
          g_clear_pointer (&cnn_path, g_free);
        }
    }
  if (!klass)
    {
      g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC,
                   "Unknown backbone \"%s\" (this build knows \"default\", \"mobilenet_v2:PATH\", "
                   "\"resnet50:PATH\" and \"clip-vit-l14:PATH\", PATH a .safetensors file, each optionally "
                   "as KIND+residual:PATH, KIND+local:PATH or KIND+residual+local:PATH, the last two with "
                   "a tile head as KIND+local+tiles=HEAD:PATH, and any of them with a forensic CNN as "
                   "KIND[+residual][+local[+tiles=HEAD]]+cnn=CNN:PATH)", spec);
      return NULL;
    }
  if (dtype != DCR_F32 && dtype != DCR_F16)
    {
      g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC, "Backbones run in f32 or f16 only");
      return NULL;
    }
  if (dtype == DCR_F16 && !dcr_context_device (ctx)->storage_16bit)
    {
      g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC,
                   "%s has no 16-bit storage; run the backbone in f32", dcr_context_device (ctx)->name);
      return NULL;
    }
  g_autoptr (DcrTileHead) tile_head = NULL;
  if (tiles_path && !(tile_head = dcr_tile_head_load (tiles_path, error)))
    return NULL;
  g_autoptr (DcrCnn) cnn = NULL;
  if (cnn_path && !(cnn = dcr_cnn_load (cnn_path, error)))
    return NULL;
  g_autoptr (DcrSafetensors) st = dcr_safetensors_open (path, error);
  if (!st)
    return NULL;
  g_autoptr (DcrBackbone) bb = g_new0 (DcrBackbone, 1);
  bb->klass = klass;
  bb->ctx = ctx;
  bb->dtype = dtype;
  bb->path = g_steal_pointer (&path);
  bb->taps = g_array_new (FALSE, TRUE, sizeof (DcrBackboneTap));
  bb->tap_names = g_ptr_array_new_with_free_func (g_free);
  bb->sha256 = file_sha256 (bb->path, error);
  if (!bb->sha256 || !klass->load (bb, st, error))
    return NULL;
  g_assert (bb->input_size > 0 && bb->max_elems > 0 && bb->dim > 0);
  bb->net_taps = bb->taps->len;
  if (residual)
    {
      bb->residual = TRUE;
      bb->residual_column = bb->dim;
      dcr_backbone_add_tap (bb, "residual", DCR_FORENSIC_DIM);
    }
  if (local)
    {
      bb->local = TRUE;
      bb->local_column = bb->dim;
      dcr_backbone_add_tap (bb, "local", DCR_LOCAL_DIM);
    }
  g_autofree char *tiles_id = NULL;
  if (tile_head)
    {
      gint64 shape[] = { DCR_TILES_PACKED ((gint64) tile_head->hidden) };
      g_autofree float *packed = g_new (float, shape[0]);
      dcr_tile_head_pack (tile_head, packed);
      if (!(bb->tile_packed = dcr_tensor_new (ctx, DCR_POOL_WEIGHTS, DCR_F32, 1, shape, error)) ||
          !dcr_tensor_upload (bb->tile_packed, packed, error))
        return NULL;
      tiles_id = g_strdup_printf ("+tiles-v1@%.12s", tile_head->sha256);
      bb->tile_head = g_steal_pointer (&tile_head);
      bb->tiles_column = bb->dim;
      dcr_backbone_add_tap (bb, "tiles", DCR_TILES_DIM);
    }
  g_autofree char *cnn_id = NULL;
  if (cnn)
    {
      cnn_id = g_strdup_printf ("+cnn-v1@%.12s", cnn->sha256);
      bb->cnn = g_steal_pointer (&cnn);
      bb->cnn_column = bb->dim;
      dcr_backbone_add_tap (bb, "cnn", DCR_CNN_DIM);
    }
  bb->id = g_strdup_printf ("%s%s%s%s%s@%.12s", bb->arch ? bb->arch : klass->kind, residual ? "+residual-v1" : "",
                            local ? "+local-v1" : "", tiles_id ? tiles_id : "", cnn_id ? cnn_id : "", bb->sha256);
  if (norm_path)
    {
      g_autofree char *norm_sha = NULL;
      if (!load_norm (bb, norm_path, &norm_sha, error))
        return NULL;
      char *id = g_strdup_printf ("%s+norm@%.12s", bb->id, norm_sha);
      g_free (bb->id);
      bb->id = id;
    }
  return g_steal_pointer (&bb);
}

const char *dcr_backbone_id (DcrBackbone *bb) { return bb->id; }
const char *dcr_backbone_kind (DcrBackbone *bb) { return bb->klass->kind; }
const char *dcr_backbone_weights_path (DcrBackbone *bb) { return bb->path; }
const char *dcr_backbone_weights_sha256 (DcrBackbone *bb) { return bb->sha256; }
guint dcr_backbone_dim (DcrBackbone *bb) { return bb->dim; }
guint dcr_backbone_input_size (DcrBackbone *bb) { return bb->input_size; }
guint dcr_backbone_n_taps (DcrBackbone *bb) { return bb->taps->len; }
DcrDtype dcr_backbone_dtype (DcrBackbone *bb) { return bb->dtype; }
gboolean dcr_backbone_has_tiles (DcrBackbone *bb) { return bb->tile_head != NULL; }
guint dcr_backbone_tiles_column (DcrBackbone *bb) { return bb->tiles_column; }
gboolean dcr_backbone_has_cnn (DcrBackbone *bb) { return bb->cnn != NULL; }
guint dcr_backbone_cnn_column (DcrBackbone *bb) { return bb->cnn_column; }
const DcrCnn *dcr_backbone_cnn (DcrBackbone *bb) { return bb->cnn; }

const DcrBackboneTap *
dcr_backbone_tap (DcrBackbone *bb, guint i)
{
  g_return_val_if_fail (i < bb->taps->len, NULL);
  return &g_array_index (bb->taps, DcrBackboneTap, i);
}

/* Images per chunk: the most whose largest activation fits one buffer. */
static guint
chunk_limit (DcrBackbone *bb)
{
  guint64 per = (guint64) bb->max_elems * dcr_dtype_size (bb->dtype);
  return (guint) MIN (dcr_context_device (bb->ctx)->max_storage_buffer_range / per, 4096);
}

guint
dcr_backbone_max_batch (DcrBackbone *bb)
{
  gint64 elems = MAX ((gint64) bb->input_size * bb->input_size * 3, (gint64) bb->dim);
  guint64 per = (guint64) elems * dcr_dtype_size (bb->dtype);
  guint by_io = (guint) MIN (dcr_context_device (bb->ctx)->max_storage_buffer_range / per, 4096);
  return chunk_limit (bb) ? by_io : 0;
}

/* ---- runs ------------------------------------------------------------- */

static gboolean run_images (DcrBackboneRun *run, GError **error);

/* The staging bytes of images whose work waits for the next forward, at
 * most (96 MiB; $DCR_BACKBONE_STAGING_MB=N for the tests): past it, the
 * work so far runs first. */
static gsize
staging_limit (void)
{
  const char *env = g_getenv ("DCR_BACKBONE_STAGING_MB");
  return (gsize) (env ? atoi (env) : 96) << 20;
}

void
dcr_backbone_run_free (DcrBackboneRun *run)
{
  if (!run)
    return;
  dcr_seq_free (run->seq);
  dcr_seq_free (run->images);
  g_clear_error (&run->earlier_error);
  if (run->group)
    g_ptr_array_unref (run->group);
  if (run->staging)
    g_ptr_array_unref (run->staging);
  dcr_tensor_free (run->input);
  dcr_tensor_free (run->features);
  dcr_tensor_free (run->chunk_input);
  dcr_tensor_free (run->forensic_acc);
  dcr_tensor_free (run->local_acc);
  dcr_tensor_free (run->tile_logits);
  g_free (run->tile_nth);
  g_free (run->tile_ntw);
  dcr_cnn_gpu_free (run->cnn_gpu);
  dcr_tensor_free (run->cnn_blocks);
  dcr_tensor_free (run->cnn_blocks1);
  g_free (run->cnn_nbh);
  g_free (run->cnn_nbw);
  if (run->raw != run->features)
    dcr_tensor_free (run->raw);
  if (run->scratch)
    g_ptr_array_unref (run->scratch);
  g_free (run);
}

DcrTensor *
dcr_backbone_run_scratch (DcrBackboneRun *run, int ndim, const gint64 *shape, GError **error)
{
  if (run->scratch_next < run->scratch->len)
    {
      DcrTensor *t = g_ptr_array_index (run->scratch, run->scratch_next++);
      g_assert (t->ndim == ndim && memcmp (t->shape, shape, ndim * sizeof (gint64)) == 0);
      return t;
    }
  DcrTensor *t = dcr_tensor_new (run->bb->ctx, DCR_POOL_ACTIVATIONS, run->bb->dtype, ndim, shape, error);
  if (t)
    {
      g_ptr_array_add (run->scratch, t);
      run->scratch_next++;
    }
  return t;
}

void
dcr_backbone_run_gather (DcrBackboneRun *run, const DcrTensor *src, gint64 src_stride, gint64 src_offset,
                         guint column, guint width)
{
  gsize es = dcr_dtype_size (run->bb->dtype);
  for (gint64 n = 0; n < run->batch; n++)
    dcr_seq_copy (run->seq, src->buf, (n * src_stride + src_offset) * es, run->raw->buf,
                  ((run->row0 + n) * run->bb->dim + column) * es, width * es);
}

/* Images per chunk of a batch: as many as the buffer limit allows;
 * $DCR_BACKBONE_CHUNK=N caps it (tuning, and the tests of chunking). On
 * lavapipe, chunks of one image used as much CPU time per image as whole
 * batches of 8, so nothing smaller is chosen by default. */
static guint
chunk_size (DcrBackbone *bb, guint batch)
{
  guint chunk = MIN (batch, chunk_limit (bb));
  const char *env = g_getenv ("DCR_BACKBONE_CHUNK");
  if (env && atoi (env) > 0)
    chunk = MIN (chunk, (guint) atoi (env));
  return chunk;
}

/* Records the whole batch, in equal chunks when chunk_size says so (the
 * last chunk overlaps the one before rather than being smaller, so every
 * chunk fits the same scratch). */
static gboolean record_chunked (DcrBackboneRun *run, GError **error);

/* The forward pass, then the standardisation of the whole batch (from raw
 * into features, so that replaying the sequence gives the same result). */
static gboolean
record_chunks (DcrBackboneRun *run, GError **error)
{
  DcrBackbone *bb = run->bb;
  if (!record_chunked (run, error))
    return FALSE;
  if (!bb->norm_neg_mean)
    return TRUE;
  return dcr_op_binary (run->seq, DCR_BINARY_ADD, run->raw, bb->norm_neg_mean, run->features, DCR_ACT_NONE, error) &&
         dcr_op_binary (run->seq, DCR_BINARY_MUL, run->features, bb->norm_inv_std, run->features, DCR_ACT_NONE,
                        error);
}

static gboolean
record_chunked (DcrBackboneRun *run, GError **error)
{
  DcrBackbone *bb = run->bb;
  guint whole = run->batch, chunk = chunk_size (bb, whole);
  if (chunk == whole)
    return bb->klass->record (run, error);
  gint64 in_shape[] = { chunk, bb->input_size, bb->input_size, 3 };
  run->whole_input = run->input;
  run->chunk_input = dcr_tensor_new (bb->ctx, DCR_POOL_ACTIVATIONS, bb->dtype, 4, in_shape, error);
  if (!run->chunk_input)
    return FALSE;
  gsize image_bytes = (gsize) bb->input_size * bb->input_size * 3 * dcr_dtype_size (bb->dtype);
  gboolean ok = TRUE;
  for (guint start = 0; ok && start < whole; start += chunk)
    {
      guint first = MIN (start, whole - chunk);
      dcr_seq_copy (run->seq, run->whole_input->buf, first * image_bytes, run->chunk_input->buf, 0,
                    chunk * image_bytes);
      run->input = run->chunk_input;
      run->batch = chunk;
      run->row0 = first;
      run->scratch_next = 0;
      ok = bb->klass->record (run, error);
    }
  run->input = run->whole_input;
  run->batch = whole;
  run->row0 = 0;
  return ok;
}

DcrBackboneRun *
dcr_backbone_run_new (DcrBackbone *bb, guint batch, GError **error)
{
  guint max = dcr_backbone_max_batch (bb);
  if (batch < 1 || batch > max)
    {
      g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_BATCH,
                   "A batch of %u images does not fit %s's buffer limit for this backbone (1–%u)",
                   batch, dcr_context_device (bb->ctx)->name, max);
      return NULL;
    }
  g_autoptr (DcrBackboneRun) run = g_new0 (DcrBackboneRun, 1);
  run->bb = bb;
  run->batch = batch;
  run->scratch = g_ptr_array_new_with_free_func ((GDestroyNotify) dcr_tensor_free);
  run->staging = g_ptr_array_new_with_free_func ((GDestroyNotify) dcr_tensor_free);
  run->group = g_ptr_array_new (); /* the tensors are staging's */
  DcrContext *ctx = bb->ctx;
  gint64 in_shape[] = { batch, bb->input_size, bb->input_size, 3 };
  gint64 feat_shape[] = { batch, bb->dim };
  if (!(run->input = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, bb->dtype, 4, in_shape, error)) ||
      !(run->features = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, bb->dtype, 2, feat_shape, error)))
    return NULL;
  run->raw = run->features;
  if (bb->norm_neg_mean && !(run->raw = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, bb->dtype, 2, feat_shape, error)))
    return NULL;
  if (!dcr_buffer_fill_zero (run->input->buf, error) || !dcr_buffer_fill_zero (run->raw->buf, error))
    return NULL;
  if (bb->residual)
    {
      gint64 acc_shape[] = { batch, DCR_FORENSIC_ACC_SIZE };
      if (!(run->forensic_acc = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, acc_shape, error)))
        return NULL;
    }
  if (bb->local)
    {
      gint64 acc_shape[] = { batch, DCR_LOCAL_ACC_SIZE };
      if (!(run->local_acc = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, acc_shape, error)))
        return NULL;
    }
  if (bb->tile_head)
    {
      gint64 lg_shape[] = { batch, DCR_LOCAL_MAX_TILES };
      if (!(run->tile_logits = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, lg_shape, error)))
        return NULL;
      run->tile_nth = g_new0 (guint, batch);
      run->tile_ntw = g_new0 (guint, batch);
    }
  if (bb->cnn)
    {
      /* Scratch for a quarter of the batch at the largest window (at most
       * 4): a whole batch of 16 images of 256 × 256 in one pass, about 8 MiB
       * a buffer for the default network. */
      gint64 bl_shape[] = { batch, DCR_CNN_MAX_BLOCKS }, cnn_n = MAX (1, (MIN (batch, 16) + 3) / 4);
      if (!(run->cnn_gpu = dcr_cnn_gpu_new (ctx, bb->cnn, cnn_n, DCR_CNN_WINDOW, DCR_CNN_WINDOW, error)) ||
          !(run->cnn_blocks = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, bl_shape, error)) ||
          !(run->cnn_blocks1 = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, bl_shape, error)))
        return NULL;
      run->cnn_nbh = g_new0 (guint, batch);
      run->cnn_nbw = g_new0 (guint, batch);
    }
  run->seq = dcr_seq_new (ctx, error);
  if (!run->seq || !record_chunks (run, error))
    return NULL;
  return g_steal_pointer (&run);
}

guint
dcr_backbone_run_batch (DcrBackboneRun *run)
{
  return run->batch;
}

static gboolean
check_slot (DcrBackboneRun *run, guint slot, GError **error)
{
  if (slot >= run->batch)
    {
      g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_BATCH,
                   "Batch slot %u is outside a batch of %u", slot, run->batch);
      return FALSE;
    }
  return TRUE;
}

gboolean
dcr_backbone_check_image (DcrBackbone *bb, guint width, guint height, GError **error)
{
  if (bb->cnn)
    {
      gint64 top, left, h, w, hm, wm;
      dcr_cnn_window (height, width, &top, &left, &h, &w);
      if (!dcr_cnn_map_size (bb->cnn, h, w, &hm, &wm))
        {
          gint64 side = dcr_cnn_min_side (bb->cnn);
          g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_INPUT,
                       "The image is %u×%u pixels; the detector's forensic CNN needs at least %" G_GINT64_FORMAT
                       "×%" G_GINT64_FORMAT " (an image this small carries too little evidence)", width, height,
                       side, side);
          return FALSE;
        }
    }
  if ((!bb->residual && !bb->local) || (width >= DCR_FORENSIC_MIN_SIDE && height >= DCR_FORENSIC_MIN_SIDE))
    return TRUE;
  g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_INPUT,
               "The image is %u×%u pixels; the detector's residual statistics need at least %d×%d "
               "(an image this small carries too little evidence)", width, height, DCR_FORENSIC_MIN_SIDE,
               DCR_FORENSIC_MIN_SIDE);
  return FALSE;
}

/* The most images of h × w one group takes: the CNN's scratch bounds it. */
static guint
group_max (DcrBackboneRun *run, guint32 h, guint32 w)
{
  guint most = run->batch;
  if (run->bb->cnn)
    {
      gint64 top, left, ch, cw;
      dcr_cnn_window (h, w, &top, &left, &ch, &cw);
      most = (guint) CLAMP (dcr_cnn_gpu_capacity (run->cnn_gpu, ch, cw), 1, (gint64) most);
    }
  return most;
}

/* Records the per-image work of the pending group (run->group) into
 * run->images: a group of one image reads its staging tensor, a larger
 * one a copy of the images back to back, so that every op is one dispatch
 * for the group (on lavapipe each dispatch costs about 0.1–0.3 ms whatever
 * its size, more than the work of one small image in most of these ops). */
static gboolean
record_group (DcrBackboneRun *run, GError **error)
{
  guint m = run->group->len;
  if (m == 0)
    return TRUE;
  DcrBackbone *bb = run->bb;
  guint slot = run->group_slot0;
  gint64 H = run->group_h, W = run->group_w;
  g_autoptr (GPtrArray) images = g_steal_pointer (&run->group);
  run->group = g_ptr_array_new ();
  if (!run->images && !(run->images = dcr_seq_new (bb->ctx, error)))
    return FALSE;
  DcrSeq *seq = run->images;
  DcrTensor *t = g_ptr_array_index (images, 0);
  if (m > 1)
    {
      DcrTensor *all = dcr_images_tensor_new (bb->ctx, DCR_POOL_ACTIVATIONS, m, H, W, error);
      if (!all)
        return FALSE;
      g_ptr_array_add (run->staging, all);
      run->staging_bytes += (gsize) m * H * W * 3;
      gsize bytes = (gsize) H * W * 3;
      for (guint i = 0; i < m; i++)
        dcr_seq_copy (seq, ((DcrTensor *) g_ptr_array_index (images, i))->buf, 0, all->buf, i * bytes, bytes);
      t = all;
    }
  DcrPreprocessParams p = { 0 };
  bb->klass->preprocess (bb, H, W, &p);
  p.batch_index = slot;
  if (!dcr_op_preprocess (seq, t, run->input, &p, error))
    return FALSE;
  /* the residual statistics read the pixels as they are, before any resize */
  if (bb->residual
      && !dcr_op_forensic (seq, t, run->forensic_acc, slot, run->raw, slot, bb->residual_column,
                           &dcr_forensic_scales_v1, error))
    return FALSE;
  if (bb->local && !dcr_op_local (seq, t, run->local_acc, slot, run->raw, slot, bb->local_column, error))
    return FALSE;
  if (bb->tile_head
      && !dcr_op_tile_head_batch (seq, run->local_acc, slot, m, run->tile_nth[slot] * run->tile_ntw[slot],
                                  bb->tile_packed, bb->tile_head->hidden, run->tile_logits, run->raw, slot,
                                  bb->tiles_column, error))
    return FALSE;
  if (bb->cnn)
    {
      gint64 top, left, h, w;
      dcr_cnn_window (H, W, &top, &left, &h, &w);
      if (!dcr_cnn_gpu_record (seq, run->cnn_gpu, t, m, H, W, top, left, h, w, run->raw, slot, bb->cnn_column,
                               run->cnn_blocks1, error))
        return FALSE;
      dcr_seq_copy (seq, run->cnn_blocks1->buf, 0, run->cnn_blocks->buf, (gsize) slot * DCR_CNN_MAX_BLOCKS * 4,
                    (gsize) m * DCR_CNN_MAX_BLOCKS * 4);
    }
  return TRUE;
}

/* A failure of earlier images' work found while setting another image:
 * kept for the next forward as well as returned. */
static gboolean
earlier_failed (DcrBackboneRun *run, GError **error)
{
  if (!run->earlier_error)
    run->earlier_error = error && *error ? g_error_copy (*error)
                                         : g_error_new_literal (DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_BATCH,
                                                                "The work of earlier images in the batch failed");
  return FALSE;
}

gboolean
dcr_backbone_run_set_image (DcrBackboneRun *run, guint slot, const DcrImage *img, GError **error)
{
  if (!check_slot (run, slot, error) || !dcr_backbone_check_image (run->bb, img->width, img->height, error))
    return FALSE;
  DcrBackbone *bb = run->bb;
  /* an image of another size or slot, or a full group: the group so far is recorded first */
  if (run->group->len
      && (img->height != run->group_h || img->width != run->group_w || slot != run->group_slot0 + run->group->len
          || run->group->len >= group_max (run, img->height, img->width))
      && !record_group (run, error))
    return earlier_failed (run, error);
  /* large photos: the pixels waiting in staging memory stay bounded (the
   * group's copy counts twice) */
  gsize bytes = (gsize) img->width * img->height * 3;
  if (run->staging_bytes + 2 * bytes > staging_limit () && !run_images (run, error))
    return earlier_failed (run, error);
  DcrTensor *t = dcr_image_tensor_new (bb->ctx, DCR_POOL_STAGING, img->height, img->width, error);
  if (!t)
    return FALSE;
  g_ptr_array_add (run->staging, t); /* freed once the work below ran */
  run->staging_bytes += bytes;
  if (!dcr_buffer_upload (t->buf, 0, img->pixels, bytes, error))
    return FALSE;
  if (!run->group->len)
    {
      run->group_slot0 = slot;
      run->group_h = img->height;
      run->group_w = img->width;
    }
  g_ptr_array_add (run->group, t);
  /* Recorded into one sequence with the batch's other images and run by
   * dcr_backbone_run_forward: one submission a batch rather than one an
   * image (on lavapipe each submission and its wait cost more than most of
   * these dispatches). The grids below depend on the size alone. */
  if (bb->tile_head)
    {
      DcrForensicWindow win;
      DcrLocalTiles tiles;
      dcr_forensic_window (img->height, img->width, &win); /* dcr_backbone_check_image checked the size */
      dcr_local_tiles (&win, &tiles);
      run->tile_nth[slot] = (guint) tiles.nth;
      run->tile_ntw[slot] = (guint) tiles.ntw;
    }
  if (bb->cnn)
    {
      gint64 top, left, h, w, hm, wm;
      dcr_cnn_window (img->height, img->width, &top, &left, &h, &w);
      /* the block grid, as dcr_cnn_columns draws it */
      dcr_cnn_map_size (bb->cnn, h, w, &hm, &wm);
      gint64 bs = dcr_cnn_block (bb->cnn), bh = hm / bs, bw = wm / bs;
      if (bh < 1 || bw < 1)
        bh = bw = 1;
      run->cnn_nbh[slot] = (guint) bh;
      run->cnn_nbw[slot] = (guint) bw;
    }
  return TRUE;
}

gboolean
dcr_backbone_run_tile_logits (DcrBackboneRun *run, guint slot, float logits[DCR_LOCAL_MAX_TILES], guint *nth,
                              guint *ntw, GError **error)
{
  if (!run->bb->tile_head)
    {
      g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC,
                   "Backbone %s has no tile head (its spec has no \"+tiles=HEAD\")", run->bb->id);
      return FALSE;
    }
  if (!check_slot (run, slot, error))
    return FALSE;
  if (!run->tile_nth[slot])
    {
      g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_BATCH,
                   "Batch slot %u holds no image yet (dcr_backbone_run_set_image gives it one)", slot);
      return FALSE;
    }
  g_autofree float *all = g_new (float, (gsize) run->batch * DCR_LOCAL_MAX_TILES);
  if (!dcr_tensor_download (run->tile_logits, all, error))
    return FALSE;
  guint n = run->tile_nth[slot] * run->tile_ntw[slot];
  memset (logits, 0, sizeof (float) * DCR_LOCAL_MAX_TILES);
  memcpy (logits, all + (gsize) slot * DCR_LOCAL_MAX_TILES, sizeof (float) * n);
  *nth = run->tile_nth[slot];
  *ntw = run->tile_ntw[slot];
  return TRUE;
}

gboolean
dcr_backbone_run_cnn_blocks (DcrBackboneRun *run, guint slot, float blocks[DCR_CNN_MAX_BLOCKS], guint *nbh,
                             guint *nbw, GError **error)
{
  if (!run->bb->cnn)
    {
      g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC,
                   "Backbone %s has no forensic CNN (its spec has no \"+cnn=CNN\")", run->bb->id);
      return FALSE;
    }
  if (!check_slot (run, slot, error))
    return FALSE;
  if (!run->cnn_nbh[slot])
    {
      g_set_error (error, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_BATCH,
                   "Batch slot %u holds no image yet (dcr_backbone_run_set_image gives it one)", slot);
      return FALSE;
    }
  g_autofree float *all = g_new (float, (gsize) run->batch * DCR_CNN_MAX_BLOCKS);
  if (!dcr_tensor_download (run->cnn_blocks, all, error))
    return FALSE;
  guint n = run->cnn_nbh[slot] * run->cnn_nbw[slot];
  memset (blocks, 0, sizeof (float) * DCR_CNN_MAX_BLOCKS);
  memcpy (blocks, all + (gsize) slot * DCR_CNN_MAX_BLOCKS, sizeof (float) * n);
  *nbh = run->cnn_nbh[slot];
  *nbw = run->cnn_nbw[slot];
  return TRUE;
}

gboolean
dcr_backbone_run_set_input (DcrBackboneRun *run, const float *nhwc, guint n, GError **error)
{
  if (n > run->batch)
    return check_slot (run, n - 1, error);
  if (!run_images (run, error)) /* an earlier set_image must not overwrite these later */
    return FALSE;
  gsize count = (gsize) n * run->bb->input_size * run->bb->input_size * 3;
  if (run->bb->dtype == DCR_F16)
    {
      g_autofree guint16 *h = g_new (guint16, count);
      dcr_half_from_floats (h, nhwc, count);
      return dcr_buffer_upload (run->input->buf, 0, h, count * 2, error);
    }
  return dcr_buffer_upload (run->input->buf, 0, nhwc, count * 4, error);
}

/* Runs the per-image work recorded since the last forward, then frees it
 * and its staging images. */
static gboolean
run_images (DcrBackboneRun *run, GError **error)
{
  gboolean ok = TRUE;
  if (run->earlier_error)
    {
      g_propagate_error (error, g_steal_pointer (&run->earlier_error));
      g_ptr_array_set_size (run->group, 0);
      ok = FALSE;
    }
  ok = ok && record_group (run, error);
  if (run->images)
    ok = ok && dcr_seq_submit (run->images, TRUE, error);
  g_clear_pointer (&run->images, dcr_seq_free);
  g_ptr_array_set_size (run->group, 0);
  g_ptr_array_set_size (run->staging, 0);
  run->staging_bytes = 0;
  return ok;
}

gboolean
dcr_backbone_run_forward (DcrBackboneRun *run, GError **error)
{
  return run_images (run, error) && dcr_seq_submit (run->seq, TRUE, error);
}

gboolean
dcr_backbone_run_features (DcrBackboneRun *run, float *out, GError **error)
{
  return dcr_tensor_download_floats (run->features, out, (gsize) run->batch * run->bb->dim, error);
}

DcrTensor *
dcr_backbone_run_feature_tensor (DcrBackboneRun *run)
{
  return run->features;
}

gboolean
dcr_backbone_run_raw_features (DcrBackboneRun *run, float *out, GError **error)
{
  return dcr_tensor_download_floats (run->raw, out, (gsize) run->batch * run->bb->dim, error);
}

static int
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

gboolean
dcr_backbone_run_time (DcrBackboneRun *run, int repeats, double *min_ms, double *median_ms, GError **error)
{
  repeats = MAX (repeats, 1);
  if (!run_images (run, error) || !dcr_seq_submit (run->seq, TRUE, error))
    return FALSE;
  g_autofree double *t = g_new (double, repeats);
  for (int i = 0; i < repeats; i++)
    {
      gint64 t0 = g_get_monotonic_time ();
      if (!dcr_seq_submit (run->seq, TRUE, error))
        return FALSE;
      t[i] = (g_get_monotonic_time () - t0) / 1000.0;
    }
  qsort (t, repeats, sizeof (double), cmp_double);
  *min_ms = t[0];
  *median_ms = t[repeats / 2];
  return TRUE;
}
