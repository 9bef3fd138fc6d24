/* dcr-backbone-mobilenet.c — the default backbone: Keras MobileNetV2
 * (ImageNet) up to block 10, BatchNorm folded into the convolutions at load;
 * its feature is the global average of the block_2, 5, 8 and 10 outputs,
 * concatenated (24 + 32 + 64 + 96). The weight file is our own conversion
 * (data/models/convert-mobilenet-v2.mjs), already in our conv layout. */
#include "dcr-backbone-private.h"
#include "dcr-op-conv.h"
#include "dcr-op-pool.h"

#include <json-glib/json-glib.h>
#include <string.h>

#define INPUT_SIZE 224

typedef struct {
  DcrTensor *w, *b;
  gint64 cin, cout;
  DcrConv2dParams p;
} Conv;

typedef struct {
  char *name;
  gboolean has_expand, residual;
  Conv expand, dw, project;
  DcrTensor *fused;  /* the three packed for dcr_op_mbblock, or NULL */
  int tap;  /* index of the tap, or -1 */
} Block;

typedef struct {
  Conv stem;
  GArray *blocks; /* Block */
} MobileNet;

/* Whether blocks with an expansion run as one dcr_op_mbblock dispatch: on a
 * CPU device (lavapipe), where blocks 1–6 run 2–5× faster than as three
 * convolutions (BENCHMARKS.md, 2026-11-28 third session); DCR_MBBLOCK=0 or 1
 * overrides. */
static gboolean
use_fused_blocks (DcrContext *ctx)
{
  const char *env = g_getenv ("DCR_MBBLOCK");
  if (env && *env)
    return strcmp (env, "0") != 0;
  return dcr_context_device (ctx)->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
}

/* Loads conv `wname` [cout, k, k, cin/groups] (Keras order, as converted) and
 * the BatchNorm `bn` after it, folds the BN in, and uploads both. */
static gboolean
load_conv (DcrBackbone *bb, DcrSafetensors *st, const char *wname, const char *bn, gint64 cin, gint64 cout,
           int k, int groups, int stride, gint64 in_size, DcrAct act, Conv *c, float **w_keep, float **b_keep,
           GError **error)
{
  gint64 wshape[] = { cout, k, k, cin / groups };
  g_autofree float *w = NULL;
  if (!dcr_safetensors_get_f32 (st, wname, wshape, 4, &w, error))
    return FALSE;
  g_autofree float *bias = g_new0 (float, cout);
  if (!dcr_backbone_fold_bn (bb, st, bn, w, bias, cout, k * k * (cin / groups), 1e-3f, error))
    return FALSE;
  c->cin = cin;
  c->cout = cout;
  memset (&c->p, 0, sizeof c->p);
  c->p.stride_h = c->p.stride_w = stride;
  c->p.groups = groups;
  c->p.act = act;
  /* Keras 'same' (stride 2: the extra pixel at the bottom/right) */
  dcr_conv2d_same_padding (in_size, k, stride, 1, &c->p.pad_top, &c->p.pad_bottom);
  dcr_conv2d_same_padding (in_size, k, stride, 1, &c->p.pad_left, &c->p.pad_right);
  gint64 bshape[] = { cout };
  c->w = dcr_backbone_upload (bb, wname, w, 4, wshape, error);
  c->b = c->w ? dcr_backbone_upload (bb, bn, bias, 1, bshape, error) : NULL;
  if (w_keep)
    *w_keep = g_steal_pointer (&w);
  if (b_keep)
    *b_keep = g_steal_pointer (&bias);
  return c->b != NULL;
}

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
  g_free (b->name);
  conv_clear (&b->expand);
  conv_clear (&b->dw);
  conv_clear (&b->project);
  g_clear_pointer (&b->fused, dcr_tensor_free);
}

static void
mobilenet_free (gpointer p)
{
  MobileNet *m = p;
  conv_clear (&m->stem);
  if (m->blocks)
    g_array_unref (m->blocks);
  g_free (m);
}

static gboolean
mobilenet_load (DcrBackbone *bb, DcrSafetensors *st, GError **error)
{
  const char *format = dcr_safetensors_metadata (st, "format");
  if (g_strcmp0 (format, "dcr-mobilenet-v2-b10") != 0)
    return dcr_backbone_weights_error (bb, error, "not a DCR MobileNetV2 weight file (metadata format is \"%s\")",
                                       format ? format : "missing");
  const char *blocks_json = dcr_safetensors_metadata (st, "blocks");
  if (!blocks_json)
    return dcr_backbone_weights_error (bb, error, "no \"blocks\" entry in the metadata; not a DCR MobileNetV2 "
                                       "file (convert it with data/models/convert-mobilenet-v2.mjs)");
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, blocks_json, -1, NULL) ||
      !JSON_NODE_HOLDS_ARRAY (json_parser_get_root (parser)))
    return dcr_backbone_weights_error (bb, error, "the \"blocks\" metadata is not a JSON array");
  JsonArray *arr = json_node_get_array (json_parser_get_root (parser));

  MobileNet *m = g_new0 (MobileNet, 1);
  bb->impl = m;
  bb->arch = g_strdup ("mobilenet_v2_b10");
  bb->input_size = INPUT_SIZE;
  const char *tap_names[] = { "block_2", "block_5", "block_8", "block_10" };
  m->blocks = g_array_new (FALSE, TRUE, sizeof (Block));
  g_array_set_clear_func (m->blocks, block_clear);
  gint64 size = INPUT_SIZE;
  gint64 channels = 3;
  bb->max_elems = (gint64) INPUT_SIZE * INPUT_SIZE * 3;
  gboolean fused = use_fused_blocks (bb->ctx);

  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonObject *o = json_array_get_object_element (arr, i);
      if (!o || !json_object_has_member (o, "name") || !json_object_has_member (o, "keras_prefix"))
        return dcr_backbone_weights_error (bb, error, "block %u of the \"blocks\" metadata is malformed", i);
      const char *name = json_object_get_string_member (o, "name");
      const char *prefix = json_object_get_string_member (o, "keras_prefix");
      gint64 cin = json_object_get_int_member_with_default (o, "in_channels", 0);
      gint64 expand = json_object_get_int_member_with_default (o, "expand", 0);
      gint64 cout = json_object_get_int_member_with_default (o, "out_channels", 0);
      int stride = (int) json_object_get_int_member_with_default (o, "stride", 0);
      gboolean residual = json_object_get_boolean_member_with_default (o, "residual", FALSE);
      if (!name || !prefix || cin != channels || cout < 1 || cout > 4096 || expand < 0 || expand > 8192 ||
          (stride != 1 && stride != 2) || (residual && (stride != 1 || cin != cout)))
        return dcr_backbone_weights_error (bb, error, "block %u (%s) of the \"blocks\" metadata is inconsistent",
                                           i, name ? name : "?");
      gint64 out_size = (size + stride - 1) / stride;

      if (i == 0)
        {
          /* the stem: a full 3×3 convolution */
          g_autofree char *bn = g_strdup_printf ("bn_%s", prefix);
          g_autofree char *w = g_strdup_printf ("%s.weight", prefix);
          if (!load_conv (bb, st, w, bn, cin, cout, 3, 1, stride, size, DCR_ACT_RELU6, &m->stem, NULL, NULL, error))
            return FALSE;
          bb->max_elems = MAX (bb->max_elems, out_size * out_size * cout);
        }
      else
        {
          Block blk = { g_strdup (name), expand > 0, residual, { 0 }, { 0 }, { 0 }, NULL, -1 };
          g_array_append_val (m->blocks, blk);
          Block *b = &g_array_index (m->blocks, Block, m->blocks->len - 1);
          gint64 mid = expand > 0 ? expand : cin;
          g_autofree char *ew = g_strdup_printf ("%s_expand.weight", prefix);
          g_autofree char *ebn = g_strdup_printf ("%s_expand_BN", prefix);
          g_autofree char *dw = g_strdup_printf ("%s_depthwise.weight", prefix);
          g_autofree char *dbn = g_strdup_printf ("%s_depthwise_BN", prefix);
          g_autofree char *pw = g_strdup_printf ("%s_project.weight", prefix);
          g_autofree char *pbn = g_strdup_printf ("%s_project_BN", prefix);
          /* blocks 7–10 (14×14, 64 input channels) are as fast unfused: the
           * halo's 64 channels make the recomputed expansion cost what the
           * fusion saves in memory traffic (BENCHMARKS.md) */
          gboolean fuse = b->has_expand && fused && cin <= 32 && dcr_mbblock_supported (bb->ctx, cin, cout);
          g_autofree float *we = NULL, *be = NULL, *wd = NULL, *bd = NULL, *wp = NULL;
          if ((b->has_expand &&
               !load_conv (bb, st, ew, ebn, cin, mid, 1, 1, 1, size, DCR_ACT_RELU6, &b->expand,
                           fuse ? &we : NULL, fuse ? &be : NULL, error)) ||
              !load_conv (bb, st, dw, dbn, mid, mid, 3, (int) mid, stride, size, DCR_ACT_RELU6, &b->dw,
                          fuse ? &wd : NULL, fuse ? &bd : NULL, error) ||
              !load_conv (bb, st, pw, pbn, mid, cout, 1, 1, 1, out_size, DCR_ACT_NONE, &b->project,
                          fuse ? &wp : NULL, NULL, error))
            return FALSE;
          if (fuse)
            {
              gint64 pshape[] = { mid, dcr_mbblock_row_length (bb->ctx, cin, cout) };
              g_autofree float *packed = g_new (float, pshape[0] * pshape[1]);
              dcr_mbblock_pack_weights (bb->ctx, we, be, wd, bd, wp, cin, mid, cout, packed);
              g_autofree char *what = g_strdup_printf ("%s (fused)", prefix);
              if (!(b->fused = dcr_backbone_upload (bb, what, packed, 2, pshape, error)))
                return FALSE;
            }
          bb->max_elems = MAX (bb->max_elems, MAX (size * size * mid, out_size * out_size * mid));
          for (gsize t = 0; t < G_N_ELEMENTS (tap_names); t++)
            if (strcmp (name, tap_names[t]) == 0)
              {
                b->tap = (int) dcr_backbone_n_taps (bb);
                dcr_backbone_add_tap (bb, name, (guint) cout);
              }
        }
      channels = cout;
      size = out_size;
    }
  if (dcr_backbone_n_taps (bb) != G_N_ELEMENTS (tap_names))
    return dcr_backbone_weights_error (bb, error, "the network lacks some of the tapped blocks (block_2, 5, 8, 10)");
  return TRUE;
}

static gboolean
record_conv (DcrSeq *seq, const Conv *c, DcrTensor *x, DcrTensor *residual, DcrTensor *y, GError **error)
{
  return dcr_op_conv2d (seq, x, c->w, c->b, residual, y, &c->p, error);
}

static DcrTensor
nhwc (DcrTensor *t, gint64 n, gint64 h, gint64 w, gint64 c)
{
  gint64 shape[] = { n, h, w, c };
  return dcr_backbone_view (t, 4, shape);
}

static gboolean
mobilenet_record (DcrBackboneRun *run, GError **error)
{
  DcrBackbone *bb = run->bb;
  MobileNet *m = bb->impl;
  DcrSeq *seq = run->seq;
  gint64 B = run->batch;
  /* three rotating activation buffers */
  gint64 act_shape[] = { B * bb->max_elems };
  DcrTensor *act[3];
  for (int i = 0; i < 3; i++)
    if (!(act[i] = dcr_backbone_run_scratch (run, 1, act_shape, error)))
      return FALSE;
  DcrTensor *pooled[8] = { NULL };
  for (guint t = 0; t < bb->net_taps; t++)
    {
      gint64 s[] = { B, dcr_backbone_tap (bb, t)->width };
      if (!(pooled[t] = dcr_backbone_run_scratch (run, 2, s, error)))
        return FALSE;
    }

  gint64 size = (INPUT_SIZE + 1) / 2;
  DcrTensor cur = nhwc (act[0], B, size, size, m->stem.cout);
  if (!record_conv (seq, &m->stem, run->input, NULL, &cur, error))
    return FALSE;
  int x = 0;
  for (guint i = 0; i < m->blocks->len; i++)
    {
      const Block *b = &g_array_index (m->blocks, Block, i);
      DcrTensor *e_buf = act[(x + 1) % 3], *d_buf = act[(x + 2) % 3];
      gint64 mid = b->dw.cout;
      gint64 out = dcr_conv2d_out_size (size, 3, b->dw.p.stride_h, b->dw.p.pad_top, b->dw.p.pad_bottom, 1);
      if (b->fused)
        {
          /* expansion, depthwise and projection in one dispatch */
          DcrMbBlockParams mp = {
            b->dw.p.stride_h, b->dw.p.pad_top, b->dw.p.pad_bottom, b->dw.p.pad_left, b->dw.p.pad_right, b->residual,
          };
          DcrTensor y = nhwc (e_buf, B, out, out, b->project.cout);
          if (!dcr_op_mbblock (seq, &cur, b->fused, b->project.b, &y, &mp, error))
            return FALSE;
          if (b->tap >= 0 && !dcr_op_global_avg_pool (seq, &y, pooled[b->tap], error))
            return FALSE;
          cur = y;
          size = out;
          x = (x + 1) % 3;
          continue;
        }
      DcrTensor e = cur;
      if (b->has_expand)
        {
          e = nhwc (e_buf, B, size, size, mid);
          if (!record_conv (seq, &b->expand, &cur, NULL, &e, error))
            return FALSE;
        }
      DcrTensor d = nhwc (d_buf, B, out, out, mid);
      if (!record_conv (seq, &b->dw, &e, NULL, &d, error))
        return FALSE;
      /* the project output goes where the expansion was (consumed by now) */
      DcrTensor y = nhwc (e_buf, B, out, out, b->project.cout);
      if (!record_conv (seq, &b->project, &d, b->residual ? &cur : NULL, &y, error))
        return FALSE;
      if (b->tap >= 0 && !dcr_op_global_avg_pool (seq, &y, pooled[b->tap], error))
        return FALSE;
      cur = y;
      size = out;
      x = (x + 1) % 3;
    }
  for (guint t = 0; t < bb->net_taps; t++)
    {
      const DcrBackboneTap *tap = dcr_backbone_tap (bb, t);
      dcr_backbone_run_gather (run, pooled[t], tap->width, 0, tap->offset, tap->width);
    }
  return TRUE;
}

static void
mobilenet_preprocess (DcrBackbone *bb, gint64 img_h, gint64 img_w, DcrPreprocessParams *p)
{
  dcr_preprocess_set_keras_tf (p);
  dcr_preprocess_set_resize_short_crop (p, img_h, img_w, INPUT_SIZE, INPUT_SIZE, INPUT_SIZE);
  p->filter = DCR_RESIZE_ANTIALIAS;
}

const DcrBackboneClass dcr_backbone_mobilenet_class = {
  .kind = "mobilenet_v2",
  .load = mobilenet_load,
  .free_impl = mobilenet_free,
  .record = mobilenet_record,
  .preprocess = mobilenet_preprocess,
};
