/* dcr-backbone-private.h — what a backbone implementation provides (the
 * vtable) and the shared pieces it builds on: the common DcrBackbone and
 * DcrBackboneRun structs, weight upload, tap bookkeeping and scratch tensors. */
#pragma once

#include "dcr-backbone.h"
#include "dcr-op-preprocess.h"
#include "dcr-safetensors.h"
#include "dcr-tile-head.h"
#include "dcr-cnn.h"

G_BEGIN_DECLS

typedef struct {
  const char *kind;  /* the spec prefix: "mobilenet_v2", "resnet50", "clip-vit-l14" */
  /* Reads and checks every tensor of `st`, uploads the weights in bb->dtype,
   * and sets input_size, max_elems and the taps (dcr_backbone_add_tap);
   * bb->impl is the implementation's own state. */
  gboolean (*load) (DcrBackbone *bb, DcrSafetensors *st, GError **error);
  void (*free_impl) (gpointer impl);
  /* Records the forward pass from run->input into run->features, allocating
   * what it needs with dcr_backbone_run_scratch. */
  gboolean (*record) (DcrBackboneRun *run, GError **error);
  /* The resize, crop and normalisation of an img_h × img_w picture. */
  void (*preprocess) (DcrBackbone *bb, gint64 img_h, gint64 img_w, DcrPreprocessParams *p);
} DcrBackboneClass;

extern const DcrBackboneClass dcr_backbone_mobilenet_class;
extern const DcrBackboneClass dcr_backbone_resnet_class;
extern const DcrBackboneClass dcr_backbone_clip_class;

struct _DcrBackbone {
  const DcrBackboneClass *klass;
  DcrContext *ctx;
  DcrDtype dtype;
  char *path, *sha256, *id;
  char *arch;          /* the id's first part; set by load (default: klass->kind) */
  guint input_size;    /* square network input, pixels */
  gint64 max_elems;    /* the largest tensor a run allocates, elements per image */
  GArray *taps;        /* DcrBackboneTap; names owned by tap_names */
  GPtrArray *tap_names;
  guint dim;
  gpointer impl;
  gboolean residual;   /* the forensic residual tap follows the network's */
  guint residual_column;
  gboolean local;      /* the tiled forensic tap (dcr-op-local.h) follows */
  guint local_column;
  /* The tile head (dcr-tile-head.h) after the local tap, or NULL: its
   * weights packed for the GPU (f32, uploaded once) at column tiles_column. */
  DcrTileHead *tile_head;
  DcrTensor *tile_packed;
  guint tiles_column;
  /* The forensic CNN (dcr-cnn.h) after the others, or NULL, at column
   * cnn_column; each run uploads its own weights and scratch. */
  DcrCnn *cnn;
  guint cnn_column;
  guint net_taps;      /* the network's own taps, which `record` fills */
  /* The fixed standardisation of the default backbone, or NULL: features =
   * (raw − mean) · inv_std per column. */
  DcrTensor *norm_neg_mean, *norm_inv_std;
};

/* While `record` runs, batch, input and row0 describe the chunk being
 * recorded: a batch whose activations exceed the device's buffer limit is
 * recorded as several chunks that share one set of scratch tensors. */
struct _DcrBackboneRun {
  DcrBackbone *bb;
  guint batch;
  DcrTensor *input;     /* [B, S, S, 3] */
  DcrTensor *features;  /* [B, dim] of the whole batch */
  DcrTensor *raw;       /* before standardisation: == features without it */
  guint row0;           /* the chunk's first row of features */
  DcrSeq *seq;
  DcrSeq *images;       /* the per-image work set since the last forward, run before it */
  GPtrArray *staging;   /* DcrTensor: those images' pixels, kept until that work ran */
  gsize staging_bytes;  /* their size */
  /* Images set but not recorded yet: consecutive slots from group_slot0,
   * all group_h × group_w (DcrTensor * of their pixels, owned by staging).
   * Their per-image work is recorded together, one dispatch an op for the
   * group, when an image of another size or slot comes, the group is full
   * (group_max) or the work runs. */
  GPtrArray *group;
  guint group_slot0;
  guint32 group_h, group_w;
  /* Set when recording or running earlier images' work failed inside a
   * later dcr_backbone_run_set_image: the next forward fails with it rather
   * than give those images' rows as if they were done. */
  GError *earlier_error;
  GPtrArray *scratch;   /* DcrTensor, freed with the run */
  guint scratch_next;   /* chunks after the first get the first's scratch, in order */
  DcrTensor *whole_input, *chunk_input;
  DcrTensor *forensic_acc; /* f32 [B, DCR_FORENSIC_ACC_SIZE] with the residual tap */
  DcrTensor *local_acc;    /* f32 [B, DCR_LOCAL_ACC_SIZE] with the local tap */
  DcrTensor *tile_logits;  /* f32 [B, DCR_LOCAL_MAX_TILES] with the tile head */
  guint *tile_nth, *tile_ntw; /* per slot: its image's tile grid (0 × 0: no image yet) */
  DcrCnnGpu *cnn_gpu;      /* the CNN's weights and scratch for a group of images */
  DcrTensor *cnn_blocks;   /* f32 [B, DCR_CNN_MAX_BLOCKS] with the CNN */
  DcrTensor *cnn_blocks1;  /* f32 [B, DCR_CNN_MAX_BLOCKS]: a group's, copied to its slots */
  guint *cnn_nbh, *cnn_nbw; /* per slot: its image's block grid (0 × 0: no image yet) */
};

/* Appends a tap of `width` columns at the end of the feature. */
void dcr_backbone_add_tap (DcrBackbone *bb, const char *name, guint width);

/* A DCR_BACKBONE_ERROR_WEIGHTS error "PATH: message". */
gboolean dcr_backbone_weights_error (DcrBackbone *bb, GError **error, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

/* Uploads host floats as a weight tensor in bb->dtype; `what` names the
 * tensor in the error when a value does not fit fp16 storage. */
DcrTensor *dcr_backbone_upload (DcrBackbone *bb, const char *what, const float *data, int ndim,
                                const gint64 *shape, GError **error);

/* PyTorch's conv weight [cout, cin, kh, kw] → ours [cout, kh, kw, cin] (new array). */
float *dcr_backbone_oihw_to_ohwi (const float *w, gint64 cout, gint64 cin, gint64 kh, gint64 kw);

/* Reads `bn`.weight/bias/running_mean/running_var ([cout] each) and folds
 * them into w [cout, per_out] and bias [cout] (zeros for a bias-free conv). */
gboolean dcr_backbone_fold_bn (DcrBackbone *bb, DcrSafetensors *st, const char *bn, float *w, float *bias,
                               gint64 cout, gint64 per_out, float eps, GError **error);

/* An activation tensor owned by the run (freed with it); every chunk asks
 * for the same tensors in the same order. */
DcrTensor *dcr_backbone_run_scratch (DcrBackboneRun *run, int ndim, const gint64 *shape, GError **error);

/* A view with another shape on (the start of) a tensor's buffer. */
static inline DcrTensor
dcr_backbone_view (const DcrTensor *t, int ndim, const gint64 *shape)
{
  DcrTensor v = { t->buf, t->dtype, ndim, { 0 } };
  for (int i = 0; i < ndim; i++)
    v.shape[i] = shape[i];
  return v;
}

/* Records the copy of `width` values per image of the chunk from src (row
 * n at n·src_stride + src_offset elements) to the features at column
 * `column`. */
void dcr_backbone_run_gather (DcrBackboneRun *run, const DcrTensor *src, gint64 src_stride, gint64 src_offset,
                              guint column, guint width);

G_END_DECLS
