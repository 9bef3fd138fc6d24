/* dcr-backbone-resnet.c — ResNet-50 (and any bottleneck ResNet) from a
 * torchvision or timm state dict: the 7×7/2 stem, the 3×3/2 max-pool, four
 * stages of bottlenecks with the stride on the 3×3 convolution (torchvision's
 * "v1.5"), BatchNorm folded at load, ReLU after the residual add. Depth and
 * widths come from the tensor shapes. The feature is the global average of
 * each stage's output, concatenated (see dcr-backbone.h). */
#include "dcr-backbone-private.h"
#include "dcr-op-conv.h"
#include "dcr-op-pool.h"

#include <string.h>

#define INPUT_SIZE 224
#define RESIZE_SHORT 256
#define N_STAGES 4
#define BN_EPS 1e-5f

typedef struct {
  DcrTensor *w, *b;
  gint64 cin, cout;
  DcrConv2dParams p;
  int k;
} Conv;

typedef struct {
  Conv c1, c2, c3, ds;
  gboolean has_ds;
  int stage;
  gboolean last_of_stage;
} Block;

typedef struct {
  char *prefix;  /* "" or e.g. "module." before every tensor name */
  Conv stem;
  GArray *blocks; /* Block */
} ResNet;

static void
conv_clear (Conv *c)
{
  g_clear_pointer (&c->w, dcr_tensor_free);
  g_clear_pointer (&c->b, dcr_tensor_free);
}

static void
block_clear (gpointer p)
{
  Block *b = p;
  conv_clear (&b->c1);
  conv_clear (&b->c2);
  conv_clear (&b->c3);
  conv_clear (&b->ds);
}

static void
resnet_free (gpointer p)
{
  ResNet *r = p;
  conv_clear (&r->stem);
  if (r->blocks)
    g_array_unref (r->blocks);
  g_free (r->prefix);
  g_free (r);
}

/* Loads the convolution `name`.weight (PyTorch [cout, cin, k, k]; cin and
 * cout −1 take what the file has) and the BatchNorm `bn` after it. */
static gboolean
load_conv (DcrBackbone *bb, DcrSafetensors *st, const char *name, const char *bn, gint64 cin, gint64 cout, int k,
           int stride, int pad, DcrAct act, Conv *c, GError **error)
{
  ResNet *r = bb->impl;
  g_autofree char *wname = g_strdup_printf ("%s%s.weight", r->prefix, name);
  g_autofree char *bname = g_strdup_printf ("%s%s.bias", r->prefix, name);
  g_autofree char *bnname = g_strdup_printf ("%s%s", r->prefix, bn);
  const DcrStTensor *t = dcr_safetensors_get (st, wname, error);
  if (!t)
    return FALSE;
  if (t->ndim == 4)
    {
      cout = cout < 0 ? t->shape[0] : cout;
      cin = cin < 0 ? t->shape[1] : cin;
    }
  gint64 shape[] = { cout, cin, k, k };
  g_autofree float *w = NULL;
  if (!dcr_safetensors_get_f32 (st, wname, shape, 4, &w, error))
    return FALSE;
  g_autofree float *bias = NULL;
  gint64 bshape[] = { cout };
  if (dcr_safetensors_lookup (st, bname))
    {
      if (!dcr_safetensors_get_f32 (st, bname, bshape, 1, &bias, error))
        return FALSE;
    }
  else
    bias = g_new0 (float, cout);
  g_autofree float *ohwi = dcr_backbone_oihw_to_ohwi (w, cout, cin, k, k);
  if (!dcr_backbone_fold_bn (bb, st, bnname, ohwi, bias, cout, cin * k * k, BN_EPS, error))
    return FALSE;
  c->cin = cin;
  c->cout = cout;
  c->k = k;
  memset (&c->p, 0, sizeof c->p);
  c->p.stride_h = c->p.stride_w = stride;
  c->p.pad_top = c->p.pad_bottom = c->p.pad_left = c->p.pad_right = pad;
  c->p.act = act;
  gint64 oshape[] = { cout, k, k, cin };
  c->w = dcr_backbone_upload (bb, wname, ohwi, 4, oshape, error);
  c->b = c->w ? dcr_backbone_upload (bb, bnname, bias, 1, bshape, error) : NULL;
  return c->b != NULL;
}

/* The text before "conv1.weight" of the stem: "" for torchvision and timm,
 * "module." for a DataParallel checkpoint, and so on. */
static char *
find_prefix (DcrSafetensors *st)
{
  char *best = NULL;
  for (guint i = 0; i < dcr_safetensors_n_tensors (st); i++)
    {
      const char *name = dcr_safetensors_tensor_at (st, i)->name;
      if (!g_str_has_suffix (name, "conv1.weight"))
        continue;
      g_autofree char *prefix = g_strndup (name, strlen (name) - strlen ("conv1.weight"));
      g_autofree char *first = g_strdup_printf ("%slayer1.0.conv1.weight", prefix);
      if (dcr_safetensors_lookup (st, first) && (!best || strlen (prefix) < strlen (best)))
        {
          g_free (best);
          best = g_steal_pointer (&prefix);
        }
    }
  return best;
}

static gboolean
resnet_load (DcrBackbone *bb, DcrSafetensors *st, GError **error)
{
  ResNet *r = g_new0 (ResNet, 1);
  bb->impl = r;
  r->blocks = g_array_new (FALSE, TRUE, sizeof (Block));
  g_array_set_clear_func (r->blocks, block_clear);
  r->prefix = find_prefix (st);
  if (!r->prefix)
    return dcr_backbone_weights_error (bb, error, "no tensors 'conv1.weight' and 'layer1.0.conv1.weight': not a "
                                       "torchvision or timm ResNet state dict");
  bb->input_size = INPUT_SIZE;

  if (!load_conv (bb, st, "conv1", "bn1", 3, -1, 7, 2, 3, DCR_ACT_RELU, &r->stem, error))
    return FALSE;
  gint64 size = dcr_conv2d_out_size (INPUT_SIZE, 7, 2, 3, 3, 1);
  bb->max_elems = MAX ((gint64) INPUT_SIZE * INPUT_SIZE * 3, size * size * r->stem.cout);
  size = dcr_pool2d_out_size (size, 3, 2, 1, 1);
  gint64 channels = r->stem.cout;
  int n_blocks[N_STAGES] = { 0 };
  gint64 width[N_STAGES] = { 0 };
  gboolean standard = r->stem.cout == 64;

  for (int s = 0; s < N_STAGES; s++)
    {
      for (int i = 0;; i++)
        {
          g_autofree char *pre = g_strdup_printf ("layer%d.%d", s + 1, i);
          g_autofree char *c1 = g_strdup_printf ("%s%s.conv1.weight", r->prefix, pre);
          if (!dcr_safetensors_lookup (st, c1))
            {
              if (i == 0)
                return dcr_backbone_weights_error (bb, error, "tensor '%s' is missing: a ResNet has four stages, "
                                                   "layer1 to layer4", c1);
              break;
            }
          g_autofree char *c3 = g_strdup_printf ("%s%s.conv3.weight", r->prefix, pre);
          if (!dcr_safetensors_lookup (st, c3))
            return dcr_backbone_weights_error (bb, error, "tensor '%s' is missing: only bottleneck ResNets "
                                               "(ResNet-50 and deeper) are supported, not basic-block ones", c3);
          int stride = s > 0 && i == 0 ? 2 : 1;
          Block blk = { .stage = s };
          g_array_append_val (r->blocks, blk);
          Block *b = &g_array_index (r->blocks, Block, r->blocks->len - 1);
          g_autofree char *n1 = g_strdup_printf ("%s.conv1", pre), *bn1 = g_strdup_printf ("%s.bn1", pre);
          g_autofree char *n2 = g_strdup_printf ("%s.conv2", pre), *bn2 = g_strdup_printf ("%s.bn2", pre);
          g_autofree char *n3 = g_strdup_printf ("%s.conv3", pre), *bn3 = g_strdup_printf ("%s.bn3", pre);
          g_autofree char *nd = g_strdup_printf ("%s.downsample.0", pre);
          g_autofree char *bnd = g_strdup_printf ("%s.downsample.1", pre);
          g_autofree char *ndw = g_strdup_printf ("%s%s.weight", r->prefix, nd);
          if (!load_conv (bb, st, n1, bn1, channels, -1, 1, 1, 0, DCR_ACT_RELU, &b->c1, error) ||
              !load_conv (bb, st, n2, bn2, b->c1.cout, b->c1.cout, 3, stride, 1, DCR_ACT_RELU, &b->c2, error) ||
              !load_conv (bb, st, n3, bn3, b->c1.cout, -1, 1, 1, 0, DCR_ACT_RELU, &b->c3, error))
            return FALSE;
          b->has_ds = dcr_safetensors_lookup (st, ndw) != NULL;
          if (b->has_ds &&
              !load_conv (bb, st, nd, bnd, channels, b->c3.cout, 1, stride, 0, DCR_ACT_NONE, &b->ds, error))
            return FALSE;
          if (!b->has_ds && (stride != 1 || channels != b->c3.cout))
            return dcr_backbone_weights_error (bb, error, "tensor '%s' is missing: block %s changes the shape "
                                               "(%" G_GINT64_FORMAT " → %" G_GINT64_FORMAT " channels, stride %d) "
                                               "and needs a downsample", ndw, pre, channels, b->c3.cout, stride);
          if (i == 0)
            width[s] = b->c1.cout;
          else if (b->c1.cout != width[s])
            return dcr_backbone_weights_error (bb, error, "block %s is %" G_GINT64_FORMAT " channels wide, the "
                                               "first of its stage %" G_GINT64_FORMAT, pre, b->c1.cout, width[s]);
          bb->max_elems = MAX (bb->max_elems, size * size * b->c1.cout);
          size = dcr_conv2d_out_size (size, 3, stride, 1, 1, 1);
          bb->max_elems = MAX (bb->max_elems, size * size * MAX (b->c1.cout, b->c3.cout));
          channels = b->c3.cout;
          n_blocks[s]++;
        }
      g_array_index (r->blocks, Block, r->blocks->len - 1).last_of_stage = TRUE;
      g_autofree char *tap = g_strdup_printf ("layer%d", s + 1);
      dcr_backbone_add_tap (bb, tap, (guint) channels);
      standard = standard && width[s] == 64 << s && channels == 4 * width[s];
    }

  int depth = 2 + 3 * (n_blocks[0] + n_blocks[1] + n_blocks[2] + n_blocks[3]);
  bb->arch = standard ? g_strdup_printf ("resnet%d", depth)
                      : g_strdup_printf ("resnet%d-w%" G_GINT64_FORMAT, depth, width[0]);
  return TRUE;
}

static gboolean
resnet_record (DcrBackboneRun *run, GError **error)
{
  DcrBackbone *bb = run->bb;
  ResNet *r = bb->impl;
  DcrSeq *seq = run->seq;
  gint64 B = run->batch;
  /* four rotating buffers: a block's input, two intermediates and the shortcut */
  gint64 act_shape[] = { B * bb->max_elems };
  DcrTensor *act[4];
  for (int i = 0; i < 4; i++)
    if (!(act[i] = dcr_backbone_run_scratch (run, 1, act_shape, error)))
      return FALSE;
  DcrTensor *pooled[N_STAGES];
  for (int s = 0; s < N_STAGES; s++)
    {
      gint64 shape[] = { B, dcr_backbone_tap (bb, s)->width };
      if (!(pooled[s] = dcr_backbone_run_scratch (run, 2, shape, error)))
        return FALSE;
    }

  gint64 size = dcr_conv2d_out_size (INPUT_SIZE, 7, 2, 3, 3, 1);
  gint64 stem_shape[] = { B, size, size, r->stem.cout };
  DcrTensor stem = dcr_backbone_view (act[0], 4, stem_shape);
  if (!dcr_op_conv2d (seq, run->input, r->stem.w, r->stem.b, NULL, &stem, &r->stem.p, error))
    return FALSE;
  DcrPool2dParams mp = { .mode = DCR_POOL_MAX, .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2,
                         .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1 };
  size = dcr_pool2d_out_size (size, 3, 2, 1, 1);
  gint64 pool_shape[] = { B, size, size, r->stem.cout };
  DcrTensor cur = dcr_backbone_view (act[1], 4, pool_shape);
  if (!dcr_op_pool2d (seq, &stem, &cur, &mp, error))
    return FALSE;
  int x = 1;
  for (guint i = 0; i < r->blocks->len; i++)
    {
      const Block *b = &g_array_index (r->blocks, Block, i);
      DcrTensor *t1 = act[(x + 1) % 4], *t2 = act[(x + 2) % 4], *t3 = act[(x + 3) % 4];
      gint64 s1[] = { B, size, size, b->c1.cout };
      DcrTensor y1 = dcr_backbone_view (t1, 4, s1);
      if (!dcr_op_conv2d (seq, &cur, b->c1.w, b->c1.b, NULL, &y1, &b->c1.p, error))
        return FALSE;
      gint64 out = dcr_conv2d_out_size (size, 3, b->c2.p.stride_h, 1, 1, 1);
      gint64 s2[] = { B, out, out, b->c2.cout };
      DcrTensor y2 = dcr_backbone_view (t2, 4, s2);
      if (!dcr_op_conv2d (seq, &y1, b->c2.w, b->c2.b, NULL, &y2, &b->c2.p, error))
        return FALSE;
      gint64 s3[] = { B, out, out, b->c3.cout };
      DcrTensor shortcut = cur;
      if (b->has_ds)
        {
          shortcut = dcr_backbone_view (t3, 4, s3);
          if (!dcr_op_conv2d (seq, &cur, b->ds.w, b->ds.b, NULL, &shortcut, &b->ds.p, error))
            return FALSE;
        }
      /* the output replaces the first intermediate, consumed by now */
      DcrTensor y3 = dcr_backbone_view (t1, 4, s3);
      if (!dcr_op_conv2d (seq, &y2, b->c3.w, b->c3.b, &shortcut, &y3, &b->c3.p, error))
        return FALSE;
      if (b->last_of_stage)
        {
          const DcrBackboneTap *tap = dcr_backbone_tap (bb, b->stage);
          if (!dcr_op_global_avg_pool (seq, &y3, pooled[b->stage], error))
            return FALSE;
          dcr_backbone_run_gather (run, pooled[b->stage], tap->width, 0, tap->offset, tap->width);
        }
      cur = y3;
      size = out;
      x = (x + 1) % 4;
    }
  return TRUE;
}

static void
resnet_preprocess (DcrBackbone *bb, gint64 img_h, gint64 img_w, DcrPreprocessParams *p)
{
  dcr_preprocess_set_imagenet (p);
  dcr_preprocess_set_resize_short_crop (p, img_h, img_w, RESIZE_SHORT, INPUT_SIZE, INPUT_SIZE);
  p->filter = DCR_RESIZE_ANTIALIAS;
}

const DcrBackboneClass dcr_backbone_resnet_class = {
  .kind = "resnet50",
  .load = resnet_load,
  .free_impl = resnet_free,
  .record = resnet_record,
  .preprocess = resnet_preprocess,
};
