/* dcr-backbone-clip.c — the CLIP vision transformer (openai/clip-vit-large-
 * patch14 and its smaller siblings) from Hugging Face CLIPVisionModel or
 * CLIPModel weights: patch embedding, class token, position embedding,
 * pre-LN blocks with QuickGELU MLPs, and RINE's features — the class token
 * after each block's layer_norm2 — plus the pooled output. Width, depth,
 * patch and image size come from the tensor shapes. */
#include "dcr-backbone-private.h"
#include "dcr-op-attention.h"
#include "dcr-op-conv.h"
#include "dcr-op-eltwise.h"
#include "dcr-op-gemm.h"
#include "dcr-op-norm.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

typedef struct {
  DcrTensor *ln1_g, *ln1_b, *qkv_w, *qkv_b, *out_w, *out_b;
  DcrTensor *ln2_g, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} Layer;

typedef struct {
  gint64 width, mlp, patch, grid, tokens;
  guint heads;
  float eps;
  DcrAct act;
  DcrTensor *patch_w, *patch_b, *cls, *pos, *pre_g, *pre_b, *post_g, *post_b;
  GArray *layers; /* Layer */
} Clip;

static void
layer_clear (gpointer p)
{
  Layer *l = p;
  DcrTensor **t[] = { &l->ln1_g, &l->ln1_b, &l->qkv_w, &l->qkv_b, &l->out_w, &l->out_b,
                      &l->ln2_g, &l->ln2_b, &l->fc1_w, &l->fc1_b, &l->fc2_w, &l->fc2_b };
  for (gsize i = 0; i < G_N_ELEMENTS (t); i++)
    g_clear_pointer (t[i], dcr_tensor_free);
}

static void
clip_free (gpointer p)
{
  Clip *c = p;
  DcrTensor **t[] = { &c->patch_w, &c->patch_b, &c->cls, &c->pos, &c->pre_g, &c->pre_b, &c->post_g, &c->post_b };
  for (gsize i = 0; i < G_N_ELEMENTS (t); i++)
    g_clear_pointer (t[i], dcr_tensor_free);
  if (c->layers)
    g_array_unref (c->layers);
  g_free (c);
}

/* Reads tensor `prefix``name` of the given shape and uploads it. */
static DcrTensor *
load (DcrBackbone *bb, DcrSafetensors *st, const char *prefix, const char *name, int ndim, const gint64 *shape,
      GError **error)
{
  g_autofree char *full = g_strconcat (prefix, name, NULL);
  g_autofree float *v = NULL;
  if (!dcr_safetensors_get_f32 (st, full, shape, ndim, &v, error))
    return NULL;
  return dcr_backbone_upload (bb, full, v, ndim, shape, error);
}

/* q, k and v projections stacked into one [3W, W] weight and [3W] bias, the
 * layout dcr_op_attention_qkv reads. */
static gboolean
load_qkv (DcrBackbone *bb, DcrSafetensors *st, const char *pre, gint64 w, Layer *l, GError **error)
{
  const char *names[] = { "q_proj", "k_proj", "v_proj" };
  g_autofree float *weight = g_new (float, 3 * w * w);
  g_autofree float *bias = g_new (float, 3 * w);
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *wn = g_strdup_printf ("%sself_attn.%s.weight", pre, names[i]);
      g_autofree char *bn = g_strdup_printf ("%sself_attn.%s.bias", pre, names[i]);
      gint64 ws[] = { w, w }, bs[] = { w };
      g_autofree float *wv = NULL, *bv = NULL;
      if (!dcr_safetensors_get_f32 (st, wn, ws, 2, &wv, error) || !dcr_safetensors_get_f32 (st, bn, bs, 1, &bv, error))
        return FALSE;
      memcpy (weight + i * w * w, wv, w * w * sizeof (float));
      memcpy (bias + i * w, bv, w * sizeof (float));
    }
  g_autofree char *what = g_strdup_printf ("%sself_attn.{q,k,v}_proj", pre);
  gint64 ws[] = { 3 * w, w }, bs[] = { 3 * w };
  l->qkv_w = dcr_backbone_upload (bb, what, weight, 2, ws, error);
  l->qkv_b = l->qkv_w ? dcr_backbone_upload (bb, what, bias, 1, bs, error) : NULL;
  return l->qkv_b != NULL;
}

/* Heads, activation and layer-norm epsilon are not in the tensor shapes:
 * they come from the file's metadata, else from the config.json that Hugging
 * Face keeps beside the weights (its vision_config for a whole CLIPModel),
 * else OpenAI CLIP's values (64-wide heads, QuickGELU, 1e-5). */
static gboolean
read_config (DcrBackbone *bb, DcrSafetensors *st, Clip *c, GError **error)
{
  gint64 heads = 0;
  const char *act = NULL;
  double eps = 1e-5;
  g_autoptr (JsonParser) parser = NULL;
  const char *m_heads = dcr_safetensors_metadata (st, "num_attention_heads");
  if (m_heads)
    {
      heads = g_ascii_strtoll (m_heads, NULL, 10);
      act = dcr_safetensors_metadata (st, "hidden_act");
      const char *m_eps = dcr_safetensors_metadata (st, "layer_norm_eps");
      if (m_eps)
        eps = g_ascii_strtod (m_eps, NULL);
    }
  else
    {
      g_autofree char *dir = g_path_get_dirname (bb->path);
      g_autofree char *cfg = g_build_filename (dir, "config.json", NULL);
      if (g_file_test (cfg, G_FILE_TEST_IS_REGULAR))
        {
          parser = json_parser_new ();
          g_autoptr (GError) jerr = NULL;
          if (!json_parser_load_from_file (parser, cfg, &jerr) || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
            return dcr_backbone_weights_error (bb, error, "cannot read %s beside it: %s", cfg,
                                               jerr ? jerr->message : "not a JSON object");
          JsonObject *o = json_node_get_object (json_parser_get_root (parser));
          if (json_object_has_member (o, "vision_config") &&
              JSON_NODE_HOLDS_OBJECT (json_object_get_member (o, "vision_config")))
            o = json_object_get_object_member (o, "vision_config");
          heads = json_object_get_int_member_with_default (o, "num_attention_heads", 0);
          act = json_object_get_string_member_with_default (o, "hidden_act", NULL);
          eps = json_object_get_double_member_with_default (o, "layer_norm_eps", eps);
        }
    }
  if (heads == 0)
    heads = c->width / 64;
  if (heads < 1 || c->width % heads != 0)
    return dcr_backbone_weights_error (bb, error, "a width of %" G_GINT64_FORMAT " does not split into %" G_GINT64_FORMAT
                                       " attention heads (put num_attention_heads in a config.json beside the "
                                       "weights)", c->width, heads);
  c->heads = (guint) heads;
  if (!act || strcmp (act, "quick_gelu") == 0)
    c->act = DCR_ACT_QUICK_GELU;
  else if (strcmp (act, "gelu") == 0)
    c->act = DCR_ACT_GELU;
  else
    return dcr_backbone_weights_error (bb, error, "hidden_act \"%s\" is not supported (quick_gelu or gelu)", act);
  if (!(eps > 0 && eps < 1))
    return dcr_backbone_weights_error (bb, error, "layer_norm_eps %g is out of range", eps);
  c->eps = (float) eps;
  return TRUE;
}

static gboolean
clip_load (DcrBackbone *bb, DcrSafetensors *st, GError **error)
{
  Clip *c = g_new0 (Clip, 1);
  bb->impl = c;
  c->layers = g_array_new (FALSE, TRUE, sizeof (Layer));
  g_array_set_clear_func (c->layers, layer_clear);

  /* CLIPModel and CLIPVisionModel files prefix the tower with "vision_model." */
  const char *p = "vision_model.";
  if (!dcr_safetensors_lookup (st, "vision_model.embeddings.patch_embedding.weight"))
    p = "";
  g_autofree char *patch_name = g_strdup_printf ("%sembeddings.patch_embedding.weight", p);
  g_autofree char *pos_name = g_strdup_printf ("%sembeddings.position_embedding.weight", p);
  const DcrStTensor *pw = dcr_safetensors_lookup (st, patch_name);
  if (!pw)
    return dcr_backbone_weights_error (bb, error, "no tensor 'vision_model.embeddings.patch_embedding.weight': not "
                                       "a Hugging Face CLIP vision model");
  if (pw->ndim != 4 || pw->shape[1] != 3 || pw->shape[2] != pw->shape[3] || pw->shape[0] < 1 || pw->shape[2] < 1)
    return dcr_backbone_weights_error (bb, error, "tensor '%s' must be [width, 3, patch, patch]", patch_name);
  c->width = pw->shape[0];
  c->patch = pw->shape[2];
  const DcrStTensor *pos = dcr_safetensors_get (st, pos_name, error);
  if (!pos)
    return FALSE;
  c->tokens = pos->ndim == 2 ? pos->shape[0] : 0;
  c->grid = (gint64) round (sqrt ((double) MAX (c->tokens - 1, 0)));
  if (pos->ndim != 2 || pos->shape[1] != c->width || c->tokens < 2 || c->grid * c->grid != c->tokens - 1)
    return dcr_backbone_weights_error (bb, error, "tensor '%s' must be [1 + n², %" G_GINT64_FORMAT "] (the class "
                                       "token and an n × n grid of patches)", pos_name, c->width);
  if (c->grid * c->patch > 4096)
    return dcr_backbone_weights_error (bb, error, "an input of %" G_GINT64_FORMAT " pixels is too large",
                                       c->grid * c->patch);
  bb->input_size = (guint) (c->grid * c->patch);
  if (!read_config (bb, st, c, error))
    return FALSE;

  gint64 W = c->width;
  gint64 vec[] = { W }, ohwi[] = { W, c->patch, c->patch, 3 };
  g_autofree float *pwv = NULL;
  gint64 pws[] = { W, 3, c->patch, c->patch };
  if (!dcr_safetensors_get_f32 (st, patch_name, pws, 4, &pwv, error))
    return FALSE;
  g_autofree float *pwt = dcr_backbone_oihw_to_ohwi (pwv, W, 3, c->patch, c->patch);
  if (!(c->patch_w = dcr_backbone_upload (bb, patch_name, pwt, 4, ohwi, error)))
    return FALSE;
  g_autofree char *patch_bias = g_strdup_printf ("%sembeddings.patch_embedding.bias", p);
  if (dcr_safetensors_lookup (st, patch_bias) &&
      !(c->patch_b = load (bb, st, "", patch_bias, 1, vec, error)))
    return FALSE;
  g_autofree char *ep = g_strdup_printf ("%sembeddings.", p);
  gint64 pos_shape[] = { c->tokens, W };
  if (!(c->cls = load (bb, st, ep, "class_embedding", 1, vec, error)) ||
      !(c->pos = load (bb, st, ep, "position_embedding.weight", 2, pos_shape, error)) ||
      !(c->pre_g = load (bb, st, p, "pre_layrnorm.weight", 1, vec, error)) ||
      !(c->pre_b = load (bb, st, p, "pre_layrnorm.bias", 1, vec, error)) ||
      !(c->post_g = load (bb, st, p, "post_layernorm.weight", 1, vec, error)) ||
      !(c->post_b = load (bb, st, p, "post_layernorm.bias", 1, vec, error)))
    return FALSE;

  for (int i = 0;; i++)
    {
      g_autofree char *pre = g_strdup_printf ("%sencoder.layers.%d.", p, i);
      g_autofree char *fc1 = g_strdup_printf ("%smlp.fc1.weight", pre);
      const DcrStTensor *f = dcr_safetensors_lookup (st, fc1);
      if (!f)
        {
          g_autofree char *any = g_strdup_printf ("%slayer_norm1.weight", pre);
          if (i == 0 || dcr_safetensors_lookup (st, any))
            return dcr_backbone_weights_error (bb, error, "tensor '%s' is missing", fc1);
          break;
        }
      if (i == 0)
        c->mlp = f->ndim == 2 ? f->shape[0] : 0;
      if (c->mlp < 1)
        return dcr_backbone_weights_error (bb, error, "tensor '%s' must be [mlp width, %" G_GINT64_FORMAT "]", fc1, W);
      Layer layer = { 0 };
      g_array_append_val (c->layers, layer);
      Layer *l = &g_array_index (c->layers, Layer, c->layers->len - 1);
      gint64 ww[] = { W, W }, f1[] = { c->mlp, W }, f1b[] = { c->mlp }, f2[] = { W, c->mlp };
      if (!(l->ln1_g = load (bb, st, pre, "layer_norm1.weight", 1, vec, error)) ||
          !(l->ln1_b = load (bb, st, pre, "layer_norm1.bias", 1, vec, error)) ||
          !load_qkv (bb, st, pre, W, l, error) ||
          !(l->out_w = load (bb, st, pre, "self_attn.out_proj.weight", 2, ww, error)) ||
          !(l->out_b = load (bb, st, pre, "self_attn.out_proj.bias", 1, vec, error)) ||
          !(l->ln2_g = load (bb, st, pre, "layer_norm2.weight", 1, vec, error)) ||
          !(l->ln2_b = load (bb, st, pre, "layer_norm2.bias", 1, vec, error)) ||
          !(l->fc1_w = load (bb, st, pre, "mlp.fc1.weight", 2, f1, error)) ||
          !(l->fc1_b = load (bb, st, pre, "mlp.fc1.bias", 1, f1b, error)) ||
          !(l->fc2_w = load (bb, st, pre, "mlp.fc2.weight", 2, f2, error)) ||
          !(l->fc2_b = load (bb, st, pre, "mlp.fc2.bias", 1, vec, error)))
        return FALSE;
      g_autofree char *tap = g_strdup_printf ("block_%d", i);
      dcr_backbone_add_tap (bb, tap, (guint) W);
    }
  dcr_backbone_add_tap (bb, "pooled", (guint) W);

  bb->max_elems = c->tokens * MAX (3 * W, c->mlp);
  guint depth = c->layers->len;
  if (W == 1024 && depth == 24 && c->patch == 14)
    bb->arch = g_strdup_printf ("clip-vit-l14%s", bb->input_size == 336 ? "-336" : "");
  else if (W == 768 && depth == 12 && (c->patch == 16 || c->patch == 32))
    bb->arch = g_strdup_printf ("clip-vit-b%" G_GINT64_FORMAT, c->patch);
  else
    bb->arch = g_strdup_printf ("clip-vit-w%" G_GINT64_FORMAT "-d%u-p%" G_GINT64_FORMAT "-s%u", W, depth, c->patch,
                                bb->input_size);
  return TRUE;
}

static gboolean
clip_record (DcrBackboneRun *run, GError **error)
{
  DcrBackbone *bb = run->bb;
  Clip *c = bb->impl;
  DcrSeq *seq = run->seq;
  gint64 B = run->batch, L = c->tokens, W = c->width, G = c->grid;
  gint64 tok[] = { B, L, W }, big[] = { B * L * MAX (3 * W, c->mlp) };
  DcrTensor *h, *x, *wide;
  if (!(h = dcr_backbone_run_scratch (run, 3, tok, error)) || !(x = dcr_backbone_run_scratch (run, 3, tok, error)) ||
      !(wide = dcr_backbone_run_scratch (run, 1, big, error)))
    return FALSE;

  /* patches [B, G, G, W] (in x), then tokens [class, patches…] + positions */
  gint64 ps[] = { B, G, G, W };
  DcrTensor patches = dcr_backbone_view (x, 4, ps);
  DcrConv2dParams cp = { .stride_h = (int) c->patch, .stride_w = (int) c->patch };
  if (!dcr_op_conv2d (seq, run->input, c->patch_w, c->patch_b, NULL, &patches, &cp, error))
    return FALSE;
  gsize es = dcr_dtype_size (bb->dtype);
  for (gint64 n = 0; n < B; n++)
    {
      dcr_seq_copy (seq, c->cls->buf, 0, h->buf, n * L * W * es, W * es);
      dcr_seq_copy (seq, x->buf, n * G * G * W * es, h->buf, (n * L + 1) * W * es, G * G * W * es);
    }
  if (!dcr_op_add (seq, h, c->pos, h, error) || !dcr_op_layer_norm (seq, h, c->pre_g, c->pre_b, h, c->eps, error))
    return FALSE;

  gint64 qs[] = { B, L, 3 * W }, ms[] = { B, L, c->mlp };
  DcrTensor qkv = dcr_backbone_view (wide, 3, qs), mid = dcr_backbone_view (wide, 3, ms);
  DcrAttentionParams ap = { .heads = c->heads };
  /* out_proj and fc2 add onto the residual stream h in place */
  DcrGemmParams acc = { .trans_b = TRUE, .alpha = 1, .beta = 1 };
  for (guint i = 0; i < c->layers->len; i++)
    {
      const Layer *l = &g_array_index (c->layers, Layer, i);
      if (!dcr_op_layer_norm (seq, h, l->ln1_g, l->ln1_b, x, c->eps, error) ||
          !dcr_op_linear (seq, x, l->qkv_w, l->qkv_b, &qkv, DCR_ACT_NONE, error) ||
          !dcr_op_attention_qkv (seq, &qkv, x, &ap, error) ||
          !dcr_op_gemm (seq, x, l->out_w, l->out_b, NULL, h, &acc, error) ||
          !dcr_op_layer_norm (seq, h, l->ln2_g, l->ln2_b, x, c->eps, error))
        return FALSE;
      /* RINE's feature: the class token as the MLP sees it */
      dcr_backbone_run_gather (run, x, L * W, 0, dcr_backbone_tap (bb, i)->offset, (guint) W);
      if (!dcr_op_linear (seq, x, l->fc1_w, l->fc1_b, &mid, c->act, error) ||
          !dcr_op_gemm (seq, &mid, l->fc2_w, l->fc2_b, NULL, h, &acc, error))
        return FALSE;
    }
  if (!dcr_op_layer_norm (seq, h, c->post_g, c->post_b, x, c->eps, error))
    return FALSE;
  dcr_backbone_run_gather (run, x, L * W, 0, dcr_backbone_tap (bb, c->layers->len)->offset, (guint) W);
  return TRUE;
}

/* CLIP's mean and std; its resize is bicubic, ours the antialiased
 * triangle filter (the difference is a slight blur, well under the
 * differences between JPEG encoders). */
static void
clip_preprocess (DcrBackbone *bb, gint64 img_h, gint64 img_w, DcrPreprocessParams *p)
{
  static const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
  static const float sd[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
  p->divisor = 255.0f;
  for (int i = 0; i < 3; i++)
    {
      p->mean[i] = mean[i];
      p->std[i] = sd[i];
    }
  dcr_preprocess_set_resize_short_crop (p, img_h, img_w, bb->input_size, bb->input_size, bb->input_size);
  p->filter = DCR_RESIZE_ANTIALIAS;
}

const DcrBackboneClass dcr_backbone_clip_class = {
  .kind = "clip-vit-l14",
  .load = clip_load,
  .free_impl = clip_free,
  .record = clip_record,
  .preprocess = clip_preprocess,
};
