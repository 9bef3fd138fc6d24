/* dcr-backbone.h — the frozen feature extractors behind one interface:
 * load weights, describe the feature (width and taps), and run batches of
 * images on the GPU. A run records the whole forward pass once into a
 * sequence and replays it for every batch. */
#pragma once

#include "dcr-vk.h"
#include "dcr-image.h"
#include "dcr-op-local.h"
#include "dcr-cnn.h"

G_BEGIN_DECLS

#define DCR_BACKBONE_ERROR (dcr_backbone_error_quark ())
GQuark dcr_backbone_error_quark (void);

typedef enum {
  DCR_BACKBONE_ERROR_SPEC,     /* unknown backbone name */
  DCR_BACKBONE_ERROR_WEIGHTS,  /* missing or mis-shaped tensors */
  DCR_BACKBONE_ERROR_BATCH,    /* batch too large for the device, or slot out of range */
  DCR_BACKBONE_ERROR_INPUT,    /* an image this backbone cannot analyse (too small) */
} DcrBackboneError;

/* A tap: one block's part of the feature — its globally average-pooled
 * output (CNNs) or its class token (ViTs) — at columns [offset, offset +
 * width). Every backbone concatenates several levels, as RINE does, so the
 * detector sees low-level traces as well as semantics; a consumer that wants
 * only the classic output takes the last tap (ResNet's "layer4", CLIP's
 * "pooled"). */
typedef struct {
  const char *name;
  guint offset;
  guint width;
} DcrBackboneTap;

typedef struct _DcrBackbone DcrBackbone;

/* `spec` names the architecture and, after a colon, a .safetensors file:
 *
 *  "default"            "mobilenet_v2+residual+local:" the shipped weights
 *                       (with "+tiles=" the shipped tile head,
 *                       dcr_backbone_default_tile_head_path, when present,
 *                       and "+cnn=" the shipped learned forensic CNN when the
 *                       standardisation's folder has cnn.safetensors), then
 *                       the shipped standardisation of every column
 *                       (dcr_backbone_default_norm_path) when present.
 *  "mobilenet_v2:PATH"  MobileNetV2 (Keras, ImageNet) up to block 10;
 *                       feature = the pooled block_2, 5, 8, 10 outputs
 *                       (24 + 32 + 64 + 96). Input 224, resize short side 224
 *                       + centre crop, x/127.5 − 1.
 *  "KIND+residual:PATH" any of these, followed by tap "residual": the
 *                       forensic residual statistics of the image at its
 *                       native resolution (dcr-op-forensic.h, 330 columns),
 *                       computed from the pixels dcr_backbone_run_set_image
 *                       receives (dcr_backbone_run_set_input leaves them 0).
 *                       The id gains "+residual-v1".
 *  "KIND+residual+local:PATH", "KIND+local:PATH"
 *                       the same, then tap "local": the residual statistics
 *                       per tile of the window aggregated over the tiles
 *                       (dcr-op-local.h, 276 columns), from the same pixels.
 *                       The id gains "+local-v1" (after "+residual-v1").
 *  "KIND[+residual]+local+tiles=HEAD:PATH"
 *                       the same, then tap "tiles" (DCR_TILES_DIM columns):
 *                       the tile head of the .safetensors file HEAD
 *                       (dcr-tile-head.h; HEAD may not contain ':') on the
 *                       local tap's tiles: the mean of the 4 highest tile
 *                       scores, then the highest. The id gains
 *                       "+tiles-v1@" and the first 12 hex digits of HEAD's
 *                       SHA-256, before "@" and the weights' digits.
 *  "KIND[+residual][+local[+tiles=HEAD]]+cnn=CNN:PATH"
 *                       any of the above, then tap "cnn" (DCR_CNN_DIM
 *                       columns): the learned forensic CNN of the
 *                       .safetensors file CNN (dcr-cnn.h; CNN may not contain
 *                       ':') on the pixels of its window (dcr_cnn_window):
 *                       the mean logit, the mean of the 4 highest block
 *                       means, the highest. The id gains "+cnn-v1@" and the
 *                       first 12 hex digits of CNN's SHA-256, after the
 *                       tile head's part.
 *  "resnet50:PATH"      a torchvision or timm bottleneck ResNet state dict
 *                       (conv1, bn1, layer1.0.conv1, …, downsample.0/1; fc is
 *                       ignored; any prefix such as "module." is accepted);
 *                       depth and widths from the shapes, so ResNet-101/152
 *                       and wide variants load too. Feature = the pooled
 *                       output of each stage, layer1…layer4, concatenated
 *                       (256 + 512 + 1024 + 2048 = 3840 for ResNet-50): the
 *                       usual 2048-d pooled output is the "layer4" tap, the
 *                       last 2048 columns. Input 224, resize short side 256
 *                       + centre crop 224, ImageNet mean/std.
 *  "clip-vit-l14:PATH"  a Hugging Face CLIPVisionModel or CLIPModel file
 *                       (vision_model.embeddings…, encoder.layers.N…,
 *                       post_layernorm; text tower ignored). Width, depth,
 *                       patch and input size from the shapes (ViT-B/16 and
 *                       B/32 load too); heads, activation and LN epsilon from
 *                       the file's metadata or the config.json beside it,
 *                       else 64-wide heads, QuickGELU, 1e-5. Feature = RINE's:
 *                       the class token after layer_norm2 (the MLP's input)
 *                       of every block, taps "block_0" … "block_23" (1024
 *                       each for ViT-L), then the pooled output
 *                       post_layernorm(class token) as tap "pooled": 25 ×
 *                       1024 = 25600 columns. Input 224 (grid × patch),
 *                       resize short side 224 + centre crop, CLIP mean/std;
 *                       CLIP resizes bicubic, we use the antialiased
 *                       triangle filter of the other backbones.
 *
 * The weights are checked (names, shapes, finite values) and uploaded in
 * `dtype` (DCR_F32, or DCR_F16 storage); errors name the file and tensor. */
DcrBackbone *dcr_backbone_load (DcrContext *ctx, const char *spec, DcrDtype dtype, GError **error);
void dcr_backbone_free (DcrBackbone *bb);

/* Where the default weights are: $DCR_DATA_DIR/models, the source tree
 * (for uninstalled builds), then the installed data directory. */
char *dcr_backbone_default_path (void);
/* The default backbone's fixed feature standardisation
 * (models/default/feature-norm.safetensors: "mean" and "std" per column,
 * metadata "backbone" = the raw backbone's id), searched like the weights;
 * NULL when none is there. With it, "default" outputs (raw − mean) / std and
 * its id gains "+norm@" and the file's hash. */
char *dcr_backbone_default_norm_path (void);
/* models/default/tile-head.safetensors, found as the norm is; NULL when none. */
char *dcr_backbone_default_tile_head_path (void);
/* models/default/cnn.safetensors, found as the norm is; NULL when none.
 * "default" takes the CNN from the folder of the standardisation it uses
 * (and none when that folder has none). */
char *dcr_backbone_default_cnn_path (void);

/* "mobilenet_v2_b10@1a2b3c4d5e6f": the architecture as read from the
 * weights ("resnet50", "resnet101", "clip-vit-l14", "clip-vit-b16", …) and
 * the first 12 hex digits of the weight file's SHA-256 — features from
 * different weights are not comparable, so a bank records this. */
const char *dcr_backbone_id (DcrBackbone *bb);
/* The spec's architecture name: "mobilenet_v2", "resnet50" or "clip-vit-l14". */
const char *dcr_backbone_kind (DcrBackbone *bb);
const char *dcr_backbone_weights_path (DcrBackbone *bb);
const char *dcr_backbone_weights_sha256 (DcrBackbone *bb);
guint dcr_backbone_dim (DcrBackbone *bb);
guint dcr_backbone_input_size (DcrBackbone *bb);
guint dcr_backbone_n_taps (DcrBackbone *bb);
const DcrBackboneTap *dcr_backbone_tap (DcrBackbone *bb, guint i);
DcrDtype dcr_backbone_dtype (DcrBackbone *bb);
/* The largest batch a run takes (the input and feature tensors must fit the
 * device's buffer limit). A batch whose activations do not fit one buffer
 * is recorded as several chunks in the same sequence ($DCR_BACKBONE_CHUNK=N
 * caps the chunk). */
guint dcr_backbone_max_batch (DcrBackbone *bb);

typedef struct _DcrBackboneRun DcrBackboneRun;

DcrBackboneRun *dcr_backbone_run_new (DcrBackbone *bb, guint batch, GError **error);
void dcr_backbone_run_free (DcrBackboneRun *run);
guint dcr_backbone_run_batch (DcrBackboneRun *run);
/* Whether a width × height picture can be analysed (the residual and local
 * taps need DCR_FORENSIC_MIN_SIDE pixels a side, the CNN dcr_cnn_min_side); a DCR_BACKBONE_ERROR_INPUT
 * error saying so otherwise. Callers check each image before batching it, so
 * that one small picture does not fail a whole batch. */
gboolean dcr_backbone_check_image (DcrBackbone *bb, guint width, guint height, GError **error);
/* Decodes nothing: takes an RGB image, resizes (short side, antialiased),
 * centre-crops and normalises it on the GPU into batch slot `slot`, and
 * computes its forensic taps there. The GPU work is recorded with the
 * batch's other images and runs at the next dcr_backbone_run_forward (the
 * image's pixels are copied; `img` may be freed at once). Images of one
 * size set to consecutive slots are recorded together, one dispatch an op
 * for the group (same results as one by one, bit for bit): a caller that
 * fills slots in order gets that for free. A FALSE return from a failure
 * of an earlier image's work (not this image's) also fails the next
 * forward. */
gboolean dcr_backbone_run_set_image (DcrBackboneRun *run, guint slot, const DcrImage *img, GError **error);
/* Tests: sets slots 0..n-1 from already-normalised NHWC floats. */
gboolean dcr_backbone_run_set_input (DcrBackboneRun *run, const float *nhwc, guint n, GError **error);
/* Runs the recorded forward pass over the whole batch. */
gboolean dcr_backbone_run_forward (DcrBackboneRun *run, GError **error);
/* [batch, dim] features as floats. */
gboolean dcr_backbone_run_features (DcrBackboneRun *run, float *out, GError **error);
/* The device tensor holding the features, for GPU consumers (the heads). */
DcrTensor *dcr_backbone_run_feature_tensor (DcrBackboneRun *run);
/* [batch, dim] features before the default backbone's standardisation
 * (dcr_backbone_default_norm_path; the same as dcr_backbone_run_features
 * without one): the taps' own values, e.g. the CNN's logits. */
gboolean dcr_backbone_run_raw_features (DcrBackboneRun *run, float *out, GError **error);

/* Whether the feature has the tile head's tap, and its first column (the
 * mean of the highest tile scores; the highest is the next). */
gboolean dcr_backbone_has_tiles (DcrBackbone *bb);
guint dcr_backbone_tiles_column (DcrBackbone *bb);
/* The tile head's score of every tile of the image in `slot` (row-major,
 * nth × ntw of them, the tiles of dcr-op-local.h; the rest of logits set to
 * 0) from its last dcr_backbone_run_set_image and the forward pass after
 * it. Errors when the backbone has no tile head or the slot no image. */
gboolean dcr_backbone_run_tile_logits (DcrBackboneRun *run, guint slot, float logits[DCR_LOCAL_MAX_TILES],
                                       guint *nth, guint *ntw, GError **error);

/* Whether the feature has the forensic CNN's tap, and its first column
 * (the mean logit; the mean of the top block means and the largest follow). */
gboolean dcr_backbone_has_cnn (DcrBackbone *bb);
guint dcr_backbone_cnn_column (DcrBackbone *bb);
/* The CNN itself (its geometry places the blocks: dcr_cnn_block_rect), or NULL. */
const DcrCnn *dcr_backbone_cnn (DcrBackbone *bb);
/* The CNN's block means of the image in `slot` (row-major, nbh × nbw of
 * them, the blocks of dcr-cnn.h; the rest set to 0) from its last
 * dcr_backbone_run_set_image and the forward pass after it. Errors when the
 * backbone has no CNN or the slot no image. */
gboolean dcr_backbone_run_cnn_blocks (DcrBackboneRun *run, guint slot, float blocks[DCR_CNN_MAX_BLOCKS], guint *nbh,
                                      guint *nbw, GError **error);

/* Benchmarks: replays the recorded pass once to warm up, then `repeats`
 * times, and gives the fastest and the median wall-clock milliseconds per
 * batch (submit to completion). */
gboolean dcr_backbone_run_time (DcrBackboneRun *run, int repeats, double *min_ms, double *median_ms, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrBackbone, dcr_backbone_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrBackboneRun, dcr_backbone_run_free)

G_END_DECLS
