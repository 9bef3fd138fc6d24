/* dcr-model.c — DCR-Net's heads: parameters (init, model file I/O, device
 * copies), the recorded forward pass in its pair / given-prototypes and
 * single (retrieval) forms, and a double-precision host reference. */
#include "dcr-model-private.h"
#include "dcr-half.h"
#include "dcr-op-attention.h"
#include "dcr-op-eltwise.h"
#include "dcr-op-gemm.h"
#include "dcr-op-heads.h"
#include "dcr-op-norm.h"
#include "dcr-op-reduce.h"
#include "dcr-safetensors.h"

#include <math.h>
#include <string.h>

G_DEFINE_QUARK (dcr-model-error-quark, dcr_model_error)

#define NORM_EPS 1e-12f

static const char *const param_names[DCR_N_PARAMS] = {
  "fusion.query_layer.weight", "fusion.query_layer.bias",
  "fusion.key_layer.weight", "fusion.key_layer.bias",
  "fusion.value_layer.weight", "fusion.value_layer.bias",
  "fusion.out_layer.weight", "fusion.out_layer.bias",
  "fusion.gate.0.weight[:, :D]", "fusion.gate.0.weight[:, D:]", "fusion.gate.0.bias",
  "classifier.weight", "classifier.bias",
  "residual_head.head.0.weight", "residual_head.head.0.bias",
  "residual_head.head.3.weight", "residual_head.head.3.bias",
};

#define GATE_WEIGHT_NAME "fusion.gate.0.weight"

const char *
dcr_verdict_name (DcrVerdict v)
{
  switch (v)
    {
    case DCR_VERDICT_REAL: return "real";
    case DCR_VERDICT_FAKE: return "fake";
    case DCR_VERDICT_INCONCLUSIVE: return "inconclusive";
    }
  return "?";
}

const char *
dcr_model_param_name (DcrParamId id)
{
  return param_names[id];
}

static gboolean
is_gate_param (DcrParamId id)
{
  return id == DCR_P_WGF || id == DCR_P_WGC || id == DCR_P_BG;
}

gboolean
dcr_model_param_present (DcrModel *m, DcrParamId id)
{
  return m->cfg.gate || !is_gate_param (id);
}

int
dcr_model_param_shape (DcrModel *m, DcrParamId id, gint64 shape[2])
{
  gint64 d = m->cfg.dim, h = m->cfg.hidden, hr = m->cfg.head_hidden;
  gint64 out = 0, in = 0;
  switch (id)
    {
    case DCR_P_WQ: case DCR_P_WK: case DCR_P_WV: out = h; in = d; break;
    case DCR_P_BQ: case DCR_P_BK: case DCR_P_BV: out = h; break;
    case DCR_P_WO: out = d; in = h; break;
    case DCR_P_BO: case DCR_P_BG: out = d; break;
    case DCR_P_WGF: case DCR_P_WGC: out = d; in = d; break;
    case DCR_P_WC: out = 2; in = d; break;
    case DCR_P_BC: out = 2; break;
    case DCR_P_W1: out = hr; in = d; break;
    case DCR_P_B1: out = hr; break;
    case DCR_P_W2: out = 1; in = hr; break;
    case DCR_P_B2: out = 1; break;
    case DCR_N_PARAMS: break;
    }
  shape[0] = out;
  shape[1] = in;
  return in ? 2 : 1;
}

static gsize
param_numel (DcrModel *m, DcrParamId id)
{
  gint64 s[2];
  int nd = dcr_model_param_shape (m, id, s);
  return (gsize) (nd == 2 ? s[0] * s[1] : s[0]);
}

/* torch.nn.Linear's fan-in: the bias of a layer shares its weight's */
static gint64
fan_in (DcrModel *m, DcrParamId id)
{
  switch (id)
    {
    case DCR_P_BQ: case DCR_P_BK: case DCR_P_BV: case DCR_P_WQ: case DCR_P_WK: case DCR_P_WV:
    case DCR_P_WC: case DCR_P_BC: case DCR_P_W1: case DCR_P_B1:
      return m->cfg.dim;
    case DCR_P_WO: case DCR_P_BO:
      return m->cfg.hidden;
    case DCR_P_WGF: case DCR_P_WGC: case DCR_P_BG:
      return 2 * (gint64) m->cfg.dim;
    case DCR_P_W2: case DCR_P_B2:
      return m->cfg.head_hidden;
    case DCR_N_PARAMS:
      break;
    }
  return 1;
}

guint
dcr_model_n_params (DcrModel *m)
{
  guint n = 0;
  for (int i = 0; i < DCR_N_PARAMS; i++)
    n += dcr_model_param_present (m, i);
  return n;
}

gsize
dcr_model_param_count (DcrModel *m)
{
  gsize n = 0;
  for (int i = 0; i < DCR_N_PARAMS; i++)
    if (dcr_model_param_present (m, i))
      n += param_numel (m, i);
  return n;
}

static void
config_defaults (DcrModelConfig *c)
{
  if (!c->k)
    c->k = 8;
  if (!c->hidden)
    c->hidden = 512;
  if (!c->head_hidden)
    c->head_hidden = 512;
  if (c->dropout == 0)
    c->dropout = 0.3f;
  if (c->threshold == 0 && c->band_lo == 0 && c->band_hi == 0)
    c->threshold = c->band_lo = c->band_hi = 0.5f;
}

static gboolean
config_valid (const DcrModelConfig *c, const char *where, GError **error)
{
  const char *why = NULL;
  if (!c->backbone_id || !*c->backbone_id)
    why = "no backbone id";
  else if (c->dim == 0 || c->dim > 65536)
    why = "a feature width outside 1…65536";
  else if (c->k == 0 || c->k > DCR_TOPK_MAX)
    why = "k outside 1…32";
  else if (c->hidden == 0 || c->hidden > 8192 || c->head_hidden == 0 || c->head_hidden > 8192)
    why = "a hidden width outside 1…8192";
  else if (!(c->dropout >= 0 && c->dropout < 1))
    why = "a dropout outside [0, 1)";
  else if (!(c->band_lo >= 0 && c->band_lo <= c->threshold && c->threshold <= c->band_hi && c->band_hi <= 1))
    why = "a threshold and band that are not 0 ≤ lo ≤ threshold ≤ hi ≤ 1";
  else if (c->jpeg_decision && !(c->jpeg.band_lo >= 0 && c->jpeg.band_lo <= c->jpeg.threshold &&
                                  c->jpeg.threshold <= c->jpeg.band_hi && c->jpeg.band_hi <= 1))
    why = "a JPEG decision that is not 0 ≤ lo ≤ threshold ≤ hi ≤ 1";
  else if (c->fusion && (c->fusion_column >= c->dim || !isfinite (c->fusion_w[0]) || !isfinite (c->fusion_w[1]) ||
                         !isfinite (c->fusion_w[2])))
    why = "a score fusion with a column outside the feature or weights that are not finite";
  else if (c->fusion_jpeg && (!c->fusion || !c->jpeg_decision || !isfinite (c->fusion_jpeg_w[0]) ||
                              !isfinite (c->fusion_jpeg_w[1]) || !isfinite (c->fusion_jpeg_w[2])))
    why = "a score fusion for JPEG files without a score fusion and a JPEG decision, or with weights that are not "
          "finite";
  if (!why)
    return TRUE;
  g_set_error (error, DCR_MODEL_ERROR, where ? DCR_MODEL_ERROR_FORMAT : DCR_MODEL_ERROR_INVALID,
               "%s%shas %s", where ? where : "the model configuration", where ? ": the model " : " ", why);
  return FALSE;
}

static DcrModel *
model_alloc (DcrContext *ctx, const DcrModelConfig *cfg)
{
  DcrModel *m = g_new0 (DcrModel, 1);
  m->ctx = ctx;
  m->cfg = *cfg;
  m->cfg.backbone_id = g_strdup (cfg->backbone_id);
  m->cfg.training = g_strdup (cfg->training);
  return m;
}

DcrModel *
dcr_model_new (DcrContext *ctx, const DcrModelConfig *cfg, guint64 seed, GError **error)
{
  DcrModelConfig c = *cfg;
  config_defaults (&c);
  if (!config_valid (&c, NULL, error))
    return NULL;
  DcrModel *m = model_alloc (ctx, &c);
  g_autoptr (GRand) rng = g_rand_new_with_seed_array ((const guint32[]) { (guint32) seed, (guint32) (seed >> 32) },
                                                      2);
  for (int i = 0; i < DCR_N_PARAMS; i++)
    {
      if (!dcr_model_param_present (m, i))
        continue;
      gsize n = param_numel (m, i);
      double bound = 1.0 / sqrt ((double) fan_in (m, i));
      m->host[i] = g_new (float, n);
      for (gsize j = 0; j < n; j++)
        m->host[i][j] = (float) g_rand_double_range (rng, -bound, bound);
    }
  return m;
}

void
dcr_model_free (DcrModel *m)
{
  if (!m)
    return;
  for (int i = 0; i < DCR_N_PARAMS; i++)
    {
      g_free (m->host[i]);
      dcr_tensor_free (m->dev[0][i]);
      dcr_tensor_free (m->dev[1][i]);
    }
  g_free (m->cfg.backbone_id);
  g_free (m->cfg.training);
  g_free (m->path);
  g_free (m->sha256);
  g_free (m);
}

const DcrModelConfig *
dcr_model_config (DcrModel *m)
{
  return &m->cfg;
}

DcrContext *
dcr_model_context (DcrModel *m)
{
  return m->ctx;
}

const char *
dcr_model_path (DcrModel *m)
{
  return m->path;
}

const char *
dcr_model_sha256 (DcrModel *m)
{
  return m->sha256;
}

void
dcr_model_set_decision (DcrModel *m, float threshold, float band_lo, float band_hi)
{
  m->cfg.threshold = threshold;
  m->cfg.band_lo = MIN (band_lo, threshold);
  m->cfg.band_hi = MAX (band_hi, threshold);
}

void
dcr_model_set_jpeg_decision (DcrModel *m, const DcrDecision *d)
{
  m->cfg.jpeg_decision = d != NULL;
  if (!d)
    {
      m->cfg.fusion_jpeg = FALSE; /* it belongs to the JPEG decision */
      return;
    }
  m->cfg.jpeg.threshold = d->threshold;
  m->cfg.jpeg.band_lo = MIN (d->band_lo, d->threshold);
  m->cfg.jpeg.band_hi = MAX (d->band_hi, d->threshold);
}

DcrDecision
dcr_model_decision (DcrModel *m, gboolean jpeg)
{
  if (jpeg && m->cfg.jpeg_decision)
    return m->cfg.jpeg;
  return (DcrDecision) { m->cfg.threshold, m->cfg.band_lo, m->cfg.band_hi };
}

void
dcr_model_set_training (DcrModel *m, const char *json)
{
  g_free (m->cfg.training);
  m->cfg.training = g_strdup (json);
}

void
dcr_model_set_fusion (DcrModel *m, guint column, const float *w)
{
  m->cfg.fusion = w != NULL;
  if (!w)
    {
      m->cfg.fusion_jpeg = FALSE;
      return;
    }
  g_return_if_fail (column < m->cfg.dim);
  m->cfg.fusion_column = column;
  memcpy (m->cfg.fusion_w, w, sizeof m->cfg.fusion_w);
}

void
dcr_model_set_fusion_jpeg (DcrModel *m, const float *w)
{
  m->cfg.fusion_jpeg = w != NULL;
  if (!w)
    return;
  g_return_if_fail (m->cfg.fusion);
  memcpy (m->cfg.fusion_jpeg_w, w, sizeof m->cfg.fusion_jpeg_w);
}

static double
sigmoid (double x)
{
  return 1.0 / (1.0 + exp (-x));
}

/* The logit of p_fake from the heads' l1 − l0 (softmax(logits)_1 = σ(l1 − l0))
 * and the raw feature row f, fused when the model has fusion. */
static double
p_fake_logit (const DcrModelConfig *c, double heads, const float *f, gboolean jpeg)
{
  if (!c->fusion)
    return heads;
  const float *w = jpeg && c->fusion_jpeg ? c->fusion_jpeg_w : c->fusion_w;
  return w[0] * heads + (double) w[1] * f[c->fusion_column] + w[2];
}

float
dcr_model_p_fake (DcrModel *m, const float logits[2], const float *f, gboolean jpeg)
{
  return (float) sigmoid (p_fake_logit (&m->cfg, (double) logits[1] - logits[0], f, jpeg));
}

DcrVerdict
dcr_model_verdict (DcrModel *m, float p_fake, gboolean jpeg)
{
  DcrDecision d = dcr_model_decision (m, jpeg);
  if (d.band_lo < d.band_hi && p_fake >= d.band_lo && p_fake < d.band_hi)
    return DCR_VERDICT_INCONCLUSIVE;
  return p_fake >= d.threshold ? DCR_VERDICT_FAKE : DCR_VERDICT_REAL;
}

gboolean
dcr_model_check_backbone (DcrModel *m, const char *backbone_id, guint dim, GError **error)
{
  if (g_strcmp0 (backbone_id, m->cfg.backbone_id) == 0 && dim == m->cfg.dim)
    return TRUE;
  g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_MISMATCH,
               "%s was trained on features of backbone %s (%u wide), not of %s (%u wide); use the backbone it "
               "was trained with or retrain it", m->path ? m->path : "the model", m->cfg.backbone_id, m->cfg.dim,
               backbone_id, dim);
  return FALSE;
}

float *
dcr_model_host_param (DcrModel *m, DcrParamId id)
{
  return m->host[id];
}

void
dcr_model_set_param (DcrModel *m, DcrParamId id, const float *values)
{
  g_return_if_fail (m->host[id]);
  memcpy (m->host[id], values, param_numel (m, id) * sizeof (float));
  for (int t = 0; t < 2; t++)
    if (m->dev[t][id])
      {
        /* re-uploaded on next use */
        g_clear_pointer (&m->dev[t][id], dcr_tensor_free);
      }
}

DcrTensor *
dcr_model_device_param (DcrModel *m, DcrDtype dtype, DcrParamId id, GError **error)
{
  g_return_val_if_fail (dtype == DCR_F32 || dtype == DCR_F16, NULL);
  int t = dtype == DCR_F16;
  if (!m->host[id])
    return NULL;
  if (m->dev[t][id])
    return m->dev[t][id];
  if (t == 1 && m->host_stale && !dcr_model_pull (m, error))
    return NULL;
  gint64 shape[2];
  int nd = dcr_model_param_shape (m, id, shape);
  g_autoptr (DcrTensor) w = dcr_tensor_new (m->ctx, DCR_POOL_WEIGHTS, dtype, nd, shape, error);
  if (!w)
    return NULL;
  gsize n = param_numel (m, id);
  gboolean ok;
  if (dtype == DCR_F16)
    {
      g_autofree guint16 *h = g_new (guint16, n);
      dcr_half_from_floats (h, m->host[id], n);
      ok = dcr_tensor_upload (w, h, error);
    }
  else
    ok = dcr_tensor_upload (w, m->host[id], error);
  if (!ok)
    return NULL;
  return m->dev[t][id] = g_steal_pointer (&w);
}

void
dcr_model_mark_trained (DcrModel *m)
{
  m->host_stale = TRUE;
  for (int i = 0; i < DCR_N_PARAMS; i++)
    g_clear_pointer (&m->dev[1][i], dcr_tensor_free);
}

gboolean
dcr_model_pull (DcrModel *m, GError **error)
{
  if (!m->host_stale)
    return TRUE;
  for (int i = 0; i < DCR_N_PARAMS; i++)
    if (m->dev[0][i] && !dcr_tensor_download (m->dev[0][i], m->host[i], error))
      return FALSE;
  m->host_stale = FALSE;
  return TRUE;
}

/* ---- the model file ------------------------------------------------------ */

static char *
fmt_float (float v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  return g_strdup (g_ascii_formatd (buf, sizeof buf, "%.9g", v));
}

gboolean
dcr_model_save (DcrModel *m, const char *path, GError **error)
{
  if (!dcr_model_pull (m, error))
    return FALSE;
  gsize d = m->cfg.dim;
  g_autofree float *gate = NULL;
  DcrStWriteTensor tensors[DCR_N_PARAMS];
  gint64 shapes[DCR_N_PARAMS][2];
  guint n = 0;
  for (int i = 0; i < DCR_N_PARAMS; i++)
    {
      if (!m->host[i] || i == DCR_P_WGC)
        continue;
      int nd = dcr_model_param_shape (m, i, shapes[n]);
      const char *name = param_names[i];
      gconstpointer data = m->host[i];
      if (i == DCR_P_WGF)
        {
          /* the file keeps PyTorch's [D, 2D] = [W_f | W_c] */
          gate = g_new (float, d * 2 * d);
          for (gsize r = 0; r < d; r++)
            {
              memcpy (gate + r * 2 * d, m->host[DCR_P_WGF] + r * d, d * sizeof (float));
              memcpy (gate + r * 2 * d + d, m->host[DCR_P_WGC] + r * d, d * sizeof (float));
            }
          shapes[n][1] = 2 * d;
          name = GATE_WEIGHT_NAME;
          data = gate;
        }
      tensors[n] = (DcrStWriteTensor) { name, DCR_ST_F32, nd, shapes[n], data };
      n++;
    }
  g_autofree char *dim = g_strdup_printf ("%u", m->cfg.dim);
  g_autofree char *k = g_strdup_printf ("%u", m->cfg.k);
  g_autofree char *hidden = g_strdup_printf ("%u", m->cfg.hidden);
  g_autofree char *head_hidden = g_strdup_printf ("%u", m->cfg.head_hidden);
  g_autofree char *version = g_strdup_printf ("%d", DCR_MODEL_VERSION);
  g_autofree char *dropout = fmt_float (m->cfg.dropout);
  g_autofree char *thr = fmt_float (m->cfg.threshold);
  g_autofree char *lo = fmt_float (m->cfg.band_lo);
  g_autofree char *hi = fmt_float (m->cfg.band_hi);
  g_autofree char *fa = fmt_float (m->cfg.fusion_w[0]), *fb = fmt_float (m->cfg.fusion_w[1]),
                  *fc = fmt_float (m->cfg.fusion_w[2]);
  g_autofree char *fusion = g_strdup_printf ("%s,%s,%s", fa, fb, fc);
  g_autofree char *fusion_column = g_strdup_printf ("%u", m->cfg.fusion_column);
  g_autofree char *jt = fmt_float (m->cfg.jpeg.threshold), *jl = fmt_float (m->cfg.jpeg.band_lo),
                  *jh = fmt_float (m->cfg.jpeg.band_hi);
  g_autofree char *jpeg = g_strdup_printf ("%s,%s,%s", jt, jl, jh);
  g_autofree char *fja = fmt_float (m->cfg.fusion_jpeg_w[0]), *fjb = fmt_float (m->cfg.fusion_jpeg_w[1]),
                  *fjc = fmt_float (m->cfg.fusion_jpeg_w[2]);
  g_autofree char *fusion_jpeg = g_strdup_printf ("%s,%s,%s", fja, fjb, fjc);
  const char *meta[] = {
    "format", DCR_MODEL_FORMAT, "version", version, "backbone", m->cfg.backbone_id, "dim", dim, "k", k,
    "hidden", hidden, "head_hidden", head_hidden, "gate", m->cfg.gate ? "true" : "false", "dropout", dropout,
    "threshold", thr, "band_lo", lo, "band_hi", hi, "training", m->cfg.training ? m->cfg.training : "{}",
    /* optional: left out without them (readers before the JPEG decision ignore it) */
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  };
  guint o = G_N_ELEMENTS (meta) - 9;
  if (m->cfg.jpeg_decision)
    {
      meta[o++] = "jpeg_decision";
      meta[o++] = jpeg;
    }
  if (m->cfg.fusion)
    {
      meta[o++] = "fusion";
      meta[o++] = fusion;
      meta[o++] = "fusion_column";
      meta[o++] = fusion_column;
    }
  if (m->cfg.fusion_jpeg)
    {
      meta[o++] = "fusion_jpeg";
      meta[o++] = fusion_jpeg;
    }
  if (!dcr_safetensors_write (path, tensors, n, meta, error))
    return FALSE;
  g_free (m->path);
  m->path = g_strdup (path);
  g_clear_pointer (&m->sha256, g_free);
  g_autoptr (GMappedFile) mf = g_mapped_file_new (path, FALSE, NULL);
  if (mf)
    {
      g_autoptr (GBytes) b = g_mapped_file_get_bytes (mf);
      m->sha256 = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, b);
    }
  return TRUE;
}

static gboolean
meta_uint (DcrSafetensors *st, const char *key, guint *out, GError **error)
{
  const char *v = dcr_safetensors_metadata (st, key);
  guint64 x;
  if (!v || !g_ascii_string_to_unsigned (v, 10, 0, G_MAXUINT32, &x, NULL))
    {
      g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_FORMAT, "%s: the model's metadata lacks a valid \"%s\"",
                   dcr_safetensors_name (st), key);
      return FALSE;
    }
  *out = (guint) x;
  return TRUE;
}

static gboolean
meta_float (DcrSafetensors *st, const char *key, float *out, GError **error)
{
  const char *v = dcr_safetensors_metadata (st, key);
  char *end = NULL;
  double x = v ? g_ascii_strtod (v, &end) : NAN;
  if (!v || end == v || *end || !isfinite (x))
    {
      g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_FORMAT, "%s: the model's metadata lacks a valid \"%s\"",
                   dcr_safetensors_name (st), key);
      return FALSE;
    }
  *out = (float) x;
  return TRUE;
}

/* Metadata "a,b,c": three numbers into v (finite ones when `finite`; the
 * fusions' weights are checked by config_valid). */
static gboolean
parse_three (const char *text, float v[3], gboolean finite)
{
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  if (g_strv_length (parts) != 3)
    return FALSE;
  for (int i = 0; i < 3; i++)
    {
      char *end = NULL;
      v[i] = (float) g_ascii_strtod (parts[i], &end);
      if (end == parts[i] || *end != '\0' || (finite && !isfinite (v[i])))
        return FALSE;
    }
  return TRUE;
}

DcrModel *
dcr_model_load (DcrContext *ctx, const char *path, GError **error)
{
  g_autoptr (DcrSafetensors) st = dcr_safetensors_open (path, error);
  if (!st)
    return NULL;
  const char *name = dcr_safetensors_name (st);
  if (g_strcmp0 (dcr_safetensors_metadata (st, "format"), DCR_MODEL_FORMAT) != 0)
    {
      g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_FORMAT,
                   "%s is not a DCR model (its metadata has no format \"%s\")", name, DCR_MODEL_FORMAT);
      return NULL;
    }
  guint version = 0;
  if (!meta_uint (st, "version", &version, error))
    return NULL;
  if (version > DCR_MODEL_VERSION || version == 0)
    {
      g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_VERSION,
                   "%s is a version %u model; this DCR reads version %d: update DCR Forensics", name, version,
                   DCR_MODEL_VERSION);
      return NULL;
    }
  DcrModelConfig c = { 0 };
  const char *gate = dcr_safetensors_metadata (st, "gate");
  c.backbone_id = (char *) dcr_safetensors_metadata (st, "backbone");
  c.training = (char *) dcr_safetensors_metadata (st, "training");
  if (!meta_uint (st, "dim", &c.dim, error) || !meta_uint (st, "k", &c.k, error) ||
      !meta_uint (st, "hidden", &c.hidden, error) || !meta_uint (st, "head_hidden", &c.head_hidden, error) ||
      !meta_float (st, "dropout", &c.dropout, error) || !meta_float (st, "threshold", &c.threshold, error) ||
      !meta_float (st, "band_lo", &c.band_lo, error) || !meta_float (st, "band_hi", &c.band_hi, error))
    return NULL;
  if (g_strcmp0 (gate, "true") != 0 && g_strcmp0 (gate, "false") != 0)
    {
      g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_FORMAT, "%s: the model's metadata lacks \"gate\"", name);
      return NULL;
    }
  c.gate = g_strcmp0 (gate, "true") == 0;
  const char *fusion = dcr_safetensors_metadata (st, "fusion");
  if (fusion)
    {
      if (!meta_uint (st, "fusion_column", &c.fusion_column, NULL) || !parse_three (fusion, c.fusion_w, FALSE))
        {
          g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_FORMAT,
                       "%s: the model's score fusion \"%s\" is not three numbers with a \"fusion_column\"", name,
                       fusion);
          return NULL;
        }
      c.fusion = TRUE;
    }
  const char *jpeg = dcr_safetensors_metadata (st, "jpeg_decision");
  if (jpeg)
    {
      float v[3] = { 0 };
      if (!parse_three (jpeg, v, TRUE))
        {
          g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_FORMAT,
                       "%s: the model's JPEG decision \"%s\" is not three numbers (threshold, band low, band high)",
                       name, jpeg);
          return NULL;
        }
      c.jpeg_decision = TRUE;
      c.jpeg = (DcrDecision) { v[0], v[1], v[2] };
    }
  const char *fusion_jpeg = dcr_safetensors_metadata (st, "fusion_jpeg");
  if (fusion_jpeg)
    {
      if (!parse_three (fusion_jpeg, c.fusion_jpeg_w, FALSE))
        {
          g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_FORMAT,
                       "%s: the model's score fusion for JPEG files \"%s\" is not three numbers", name, fusion_jpeg);
          return NULL;
        }
      c.fusion_jpeg = TRUE;
    }
  if (!config_valid (&c, name, error))
    return NULL;

  g_autoptr (DcrModel) m = model_alloc (ctx, &c);
  guint expected = 0;
  for (int i = 0; i < DCR_N_PARAMS; i++)
    {
      if (!dcr_model_param_present (m, i) || i == DCR_P_WGC)
        continue;
      expected++;
      gint64 shape[2];
      int nd = dcr_model_param_shape (m, i, shape);
      const char *tname = param_names[i];
      if (i == DCR_P_WGF)
        {
          shape[1] *= 2;
          tname = GATE_WEIGHT_NAME;
        }
      float *data = NULL;
      if (!dcr_safetensors_get_f32 (st, tname, shape, nd, &data, error))
        return NULL;
      if (i == DCR_P_WGF)
        {
          gsize d = c.dim;
          m->host[DCR_P_WGF] = g_new (float, d * d);
          m->host[DCR_P_WGC] = g_new (float, d * d);
          for (gsize r = 0; r < d; r++)
            {
              memcpy (m->host[DCR_P_WGF] + r * d, data + r * 2 * d, d * sizeof (float));
              memcpy (m->host[DCR_P_WGC] + r * d, data + r * 2 * d + d, d * sizeof (float));
            }
          g_free (data);
        }
      else
        m->host[i] = data;
    }
  if (dcr_safetensors_n_tensors (st) != expected)
    {
      g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_FORMAT,
                   "%s holds %u tensors; a DCR model with these settings has %u", name,
                   dcr_safetensors_n_tensors (st), expected);
      return NULL;
    }
  m->path = g_strdup (path);
  g_autoptr (GMappedFile) mf = g_mapped_file_new (path, FALSE, error);
  if (!mf)
    return NULL;
  g_autoptr (GBytes) b = g_mapped_file_get_bytes (mf);
  m->sha256 = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, b);
  return g_steal_pointer (&m);
}

gboolean
dcr_model_update_memory (DcrModel *m, DcrBank *bank, const DcrPrototypeNew *items, guint n,
                         gboolean skip_duplicates, gint64 *ids_out, GError **error)
{
  if (g_strcmp0 (dcr_bank_backbone_id (bank), m->cfg.backbone_id) != 0 || dcr_bank_dim (bank) != m->cfg.dim)
    {
      g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_MISMATCH,
                   "%s holds features of %s (%u wide); the model compares features of %s (%u wide)",
                   dcr_bank_path (bank), dcr_bank_backbone_id (bank), dcr_bank_dim (bank), m->cfg.backbone_id,
                   m->cfg.dim);
      return FALSE;
    }
  return dcr_bank_add (bank, items, n, skip_duplicates, ids_out, error);
}

/* ---- forward runs -------------------------------------------------------- */

void
dcr_model_run_free (DcrModelRun *run)
{
  if (!run)
    return;
  DcrTensor *all[] = { run->f_in, run->r_in, run->fhat, run->rhat, run->d, run->d1, run->q, run->kt, run->vt,
                       run->ctxh, run->attw, run->ctx, run->zg, run->fused, run->logits, run->ha, run->mask,
                       run->had, run->za };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    dcr_tensor_free (all[i]);
  g_free (run);
}

static DcrTensor *
act_tensor (DcrModelRun *run, int ndim, const gint64 *shape, GError **error)
{
  return dcr_tensor_new (run->m->ctx, DCR_POOL_ACTIVATIONS, run->dtype, ndim, shape, error);
}

DcrModelRun *
dcr_model_run_new (DcrModel *m, DcrDtype dtype, guint batch, guint tokens, gboolean training, GError **error)
{
  if (batch == 0 || tokens == 0 || tokens > DCR_TOPK_MAX || (dtype != DCR_F32 && dtype != DCR_F16) ||
      (training && dtype != DCR_F32))
    {
      g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_INVALID,
                   "a model run needs a batch, 1–%d prototypes per image and f32 (or, not training, f16) storage "
                   "(got batch %u, %u prototypes, %s%s)", DCR_TOPK_MAX, batch, tokens, dcr_dtype_name (dtype),
                   training ? ", training" : "");
      return NULL;
    }
  if (dtype == DCR_F16 && !dcr_context_device (m->ctx)->storage_16bit)
    {
      g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_INVALID, "%s has no 16-bit storage; run the model in f32",
                   dcr_context_device (m->ctx)->name);
      return NULL;
    }
  g_autoptr (DcrModelRun) run = g_new0 (DcrModelRun, 1);
  run->m = m;
  run->dtype = dtype;
  run->batch = batch;
  run->tokens = tokens;
  run->training = training;
  gint64 b = batch, l = tokens, d = m->cfg.dim, h = m->cfg.hidden, hr = m->cfg.head_hidden;
  gint64 s_bd[] = { b, d }, s_bld[] = { b, l, d }, s_bh[] = { b, h }, s_blh[] = { b, l, h };
  gint64 s_w[] = { b, 1, 1, l }, s_b2[] = { b, 2 }, s_bhr[] = { b, hr }, s_b1[] = { b, 1 };
  if (!(run->f_raw = run->f_in = act_tensor (run, 2, s_bd, error)) || !(run->r_in = act_tensor (run, 3, s_bld, error)) ||
      !(run->fhat = act_tensor (run, 2, s_bd, error)) || !(run->rhat = act_tensor (run, 3, s_bld, error)) ||
      !(run->d = act_tensor (run, 3, s_bld, error)) || !(run->d1 = act_tensor (run, 2, s_bd, error)) ||
      !(run->q = act_tensor (run, 2, s_bh, error)) || !(run->kt = act_tensor (run, 3, s_blh, error)) ||
      !(run->vt = act_tensor (run, 3, s_blh, error)) || !(run->ctxh = act_tensor (run, 2, s_bh, error)) ||
      !(run->attw = act_tensor (run, 4, s_w, error)) || !(run->fused = act_tensor (run, 2, s_bd, error)) ||
      !(run->logits = act_tensor (run, 2, s_b2, error)) || !(run->ha = act_tensor (run, 2, s_bhr, error)) ||
      !(run->za = act_tensor (run, 2, s_b1, error)))
    return NULL;
  if (m->cfg.gate && (!(run->ctx = act_tensor (run, 2, s_bd, error)) || !(run->zg = act_tensor (run, 2, s_bd, error))))
    return NULL;
  if (training && (!(run->mask = act_tensor (run, 2, s_bhr, error)) || !(run->had = act_tensor (run, 2, s_bhr, error))))
    return NULL;
  /* every weight on the device before recording */
  for (int i = 0; i < DCR_N_PARAMS; i++)
    if (m->host[i] && !dcr_model_device_param (m, dtype, i, error))
      return NULL;
  run->fhat_used = run->fhat;
  return g_steal_pointer (&run);
}

guint
dcr_model_run_batch (DcrModelRun *run)
{
  return run->batch;
}

guint
dcr_model_run_tokens (DcrModelRun *run)
{
  return run->tokens;
}

static gboolean
upload_floats (DcrTensor *t, const float *src, gsize n, GError **error)
{
  gsize total = (gsize) dcr_tensor_numel (t);
  g_autofree float *buf = NULL;
  if (n < total)
    {
      buf = g_new0 (float, total);
      memcpy (buf, src, n * sizeof (float));
      src = buf;
    }
  if (t->dtype == DCR_F16)
    {
      g_autofree guint16 *h = g_new (guint16, total);
      dcr_half_from_floats (h, src, total);
      return dcr_tensor_upload (t, h, error);
    }
  return dcr_tensor_upload (t, src, error);
}


gboolean
dcr_model_run_set_inputs (DcrModelRun *run, const float *f, const float *r, guint n, GError **error)
{
  g_return_val_if_fail (n <= run->batch, FALSE);
  gsize d = run->m->cfg.dim;
  return upload_floats (run->f_in, f, n * d, error) && upload_floats (run->r_in, r, (gsize) n * run->tokens * d, error);
}

static DcrTensor
view (const DcrTensor *t, int ndim, const gint64 *shape)
{
  DcrTensor v = *t;
  v.ndim = ndim;
  memcpy (v.shape, shape, ndim * sizeof (gint64));
  return v;
}

#define W(id) (run->m->dev[run->dtype == DCR_F16][id])

/* The heads, from f̂ [B, D] and the tokens d, d1 already in the run. */
static gboolean
record_heads (DcrModelRun *run, DcrSeq *seq, const DcrTensor *fhat, GError **error)
{
  DcrModel *m = run->m;
  gint64 b = run->batch, h = m->cfg.hidden;
  run->fhat_used = fhat;
  if (!dcr_op_linear (seq, fhat, W (DCR_P_WQ), W (DCR_P_BQ), run->q, DCR_ACT_NONE, error) ||
      !dcr_op_linear (seq, run->d, W (DCR_P_WK), W (DCR_P_BK), run->kt, DCR_ACT_NONE, error) ||
      !dcr_op_linear (seq, run->d, W (DCR_P_WV), W (DCR_P_BV), run->vt, DCR_ACT_NONE, error))
    return FALSE;
  gint64 s3[] = { b, 1, h };
  DcrTensor q3 = view (run->q, 3, s3), c3 = view (run->ctxh, 3, s3);
  DcrAttentionParams ap = { .heads = 1, .scale = (float) (1.0 / sqrt ((double) h)), .weights = run->attw };
  if (!dcr_op_attention (seq, &q3, run->kt, run->vt, &c3, &ap, error))
    return FALSE;
  if (m->cfg.gate)
    {
      DcrGemmParams acc = { .trans_b = TRUE, .alpha = 1, .beta = 1 };
      if (!dcr_op_linear (seq, run->ctxh, W (DCR_P_WO), W (DCR_P_BO), run->ctx, DCR_ACT_NONE, error) ||
          !dcr_op_linear (seq, fhat, W (DCR_P_WGF), W (DCR_P_BG), run->zg, DCR_ACT_NONE, error) ||
          !dcr_op_gemm (seq, run->ctx, W (DCR_P_WGC), NULL, NULL, run->zg, &acc, error) ||
          !dcr_op_gate (seq, fhat, run->ctx, run->zg, run->fused, error))
        return FALSE;
    }
  else
    {
      /* fused = f̂ + W_o·ctx + b_o in one GEMM epilogue */
      DcrGemmParams gp = { .trans_b = TRUE, .alpha = 1 };
      if (!dcr_op_gemm (seq, run->ctxh, W (DCR_P_WO), W (DCR_P_BO), fhat, run->fused, &gp, error))
        return FALSE;
    }
  if (!dcr_op_linear (seq, run->fused, W (DCR_P_WC), W (DCR_P_BC), run->logits, DCR_ACT_NONE, error) ||
      !dcr_op_linear (seq, run->d1, W (DCR_P_W1), W (DCR_P_B1), run->ha, DCR_ACT_RELU, error))
    return FALSE;
  if (run->training)
    return dcr_op_mul (seq, run->ha, run->mask, run->had, error) &&
           dcr_op_linear (seq, run->had, W (DCR_P_W2), W (DCR_P_B2), run->za, DCR_ACT_NONE, error);
  return dcr_op_linear (seq, run->ha, W (DCR_P_W2), W (DCR_P_B2), run->za, DCR_ACT_NONE, error);
}

gboolean
dcr_model_run_record_tokens (DcrModelRun *run, DcrSeq *seq, GError **error)
{
  return dcr_op_l2_normalize (seq, run->f_in, run->fhat, NORM_EPS, error) &&
         dcr_op_l2_normalize (seq, run->r_in, run->rhat, NORM_EPS, error) &&
         dcr_op_diff_tokens (seq, run->fhat, run->rhat, run->d, run->d1, error) &&
         record_heads (run, seq, run->fhat, error);
}

static gboolean
check_input (DcrModelRun *run, const char *what, const DcrTensor *t, GError **error)
{
  if (t->dtype == run->dtype && dcr_tensor_numel (t) == (gint64) run->batch * run->m->cfg.dim &&
      t->shape[t->ndim - 1] == run->m->cfg.dim)
    return TRUE;
  g_autofree char *s = dcr_ops_shape_string (t);
  g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_INVALID, "the model run takes %s [%u, %u] %s, not %s", what,
               run->batch, run->m->cfg.dim, dcr_dtype_name (run->dtype), s);
  return FALSE;
}

gboolean
dcr_model_run_record_pair (DcrModelRun *run, DcrSeq *seq, const DcrTensor *f, const DcrTensor *f_pair,
                           GError **error)
{
  if (run->tokens != 1)
    {
      g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_INVALID,
                   "pair mode compares each image with one other; this run has %u tokens", run->tokens);
      return FALSE;
    }
  if (!check_input (run, "features", f, error) || !check_input (run, "pair features", f_pair, error))
    return FALSE;
  gsize bytes = dcr_tensor_bytes (run->f_in);
  dcr_seq_copy (seq, f->buf, 0, run->f_in->buf, 0, bytes);
  dcr_seq_copy (seq, f_pair->buf, 0, run->r_in->buf, 0, bytes);
  return dcr_model_run_record_tokens (run, seq, error);
}

gboolean
dcr_model_run_record_single (DcrModelRun *run, DcrSeq *seq, DcrRetrievalRun *rr, const DcrTensor *features,
                             GError **error)
{
  if (!check_input (run, "features", features, error))
    return FALSE;
  if (dcr_retrieval_run_batch (rr) != run->batch || dcr_retrieval_run_k (rr) != run->tokens ||
      dcr_retrieval_run_normalized (rr)->dtype != run->dtype)
    {
      g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_INVALID,
                   "the retrieval run (batch %u, k %u, %s) does not fit the model run (batch %u, %u tokens, %s)",
                   dcr_retrieval_run_batch (rr), dcr_retrieval_run_k (rr),
                   dcr_dtype_name (dcr_retrieval_run_normalized (rr)->dtype), run->batch, run->tokens,
                   dcr_dtype_name (run->dtype));
      return FALSE;
    }
  run->f_raw = features;
  return dcr_retrieval_run_record (rr, seq, features, error) &&
         dcr_retrieval_run_record_diff (rr, seq, run->d, run->d1, error) &&
         record_heads (run, seq, dcr_retrieval_run_normalized (rr), error);
}


gboolean
dcr_model_run_outputs (DcrModelRun *run, guint n, float *logits, float *p_fake, float *anomaly, float *attention,
                       float *residual, float *fused, GError **error)
{
  g_return_val_if_fail (n <= run->batch, FALSE);
  gsize d = run->m->cfg.dim;
  g_autofree float *lg = g_new (float, 2 * MAX (n, 1));
  g_autofree float *za = g_new (float, MAX (n, 1));
  g_autofree float *f = NULL;
  if (!dcr_tensor_download_floats (run->logits, lg, 2 * (gsize) n, error) ||
      !dcr_tensor_download_floats (run->za, za, n, error))
    return FALSE;
  /* score fusion reads a column of the raw features the run was given */
  if (p_fake && run->m->cfg.fusion)
    {
      f = g_new (float, MAX (n, 1) * d);
      if (!dcr_tensor_download_floats ((DcrTensor *) run->f_raw, f, n * d, error))
        return FALSE;
    }
  for (guint i = 0; i < n; i++)
    {
      if (logits)
        memcpy (logits + 2 * i, lg + 2 * i, 2 * sizeof (float));
      if (p_fake)
        p_fake[i] = dcr_model_p_fake (run->m, lg + 2 * i, f ? f + i * d : NULL, FALSE);
      if (anomaly)
        anomaly[i] = (float) sigmoid (za[i]);
    }
  return (!attention || dcr_tensor_download_floats (run->attw, attention, (gsize) n * run->tokens, error)) &&
         (!residual || dcr_tensor_download_floats (run->d1, residual, n * d, error)) &&
         (!fused || dcr_tensor_download_floats (run->fused, fused, n * d, error));
}

/* ---- host reference ------------------------------------------------------ */

/* y[out] = W[out, in]·x + b, in double */
static void
ref_linear (const float *w, const float *bias, const double *x, double *y, gsize out, gsize in)
{
  for (gsize o = 0; o < out; o++)
    {
      double acc = bias ? bias[o] : 0;
      for (gsize i = 0; i < in; i++)
        acc += (double) w[o * in + i] * x[i];
      y[o] = acc;
    }
}

static void
ref_normalize (const float *x, double *y, gsize d)
{
  double ss = 0;
  for (gsize c = 0; c < d; c++)
    ss += (double) x[c] * x[c];
  double inv = 1.0 / MAX (sqrt (ss), (double) NORM_EPS);
  for (gsize c = 0; c < d; c++)
    y[c] = x[c] * inv;
}

void
dcr_model_ref_forward (DcrModel *m, const float *f, const float *r, guint n, guint tokens, float *logits,
                       float *p_fake, float *anomaly, float *attention, float *residual, float *fused)
{
  g_return_if_fail (!m->host_stale);
  gsize d = m->cfg.dim, h = m->cfg.hidden, hr = m->cfg.head_hidden, l = tokens;
  float **P = m->host;
  g_autofree double *fh = g_new (double, d);
  g_autofree double *rh = g_new (double, d);
  g_autofree double *dd = g_new (double, l * d);
  g_autofree double *q = g_new (double, h);
  g_autofree double *kk = g_new (double, l * h);
  g_autofree double *vv = g_new (double, l * h);
  g_autofree double *s = g_new (double, l);
  g_autofree double *ch = g_new (double, h);
  g_autofree double *c = g_new (double, d);
  g_autofree double *z = g_new (double, d);
  g_autofree double *z2 = g_new (double, d);
  g_autofree double *fu = g_new (double, d);
  g_autofree double *a = g_new (double, hr);
  double lg[2], za;
  for (guint i = 0; i < n; i++)
    {
      ref_normalize (f + i * d, fh, d);
      for (gsize j = 0; j < l; j++)
        {
          ref_normalize (r + (i * l + j) * d, rh, d);
          for (gsize e = 0; e < d; e++)
            dd[j * d + e] = fabs (fh[e] - rh[e]);
          ref_linear (P[DCR_P_WK], P[DCR_P_BK], dd + j * d, kk + j * h, h, d);
          ref_linear (P[DCR_P_WV], P[DCR_P_BV], dd + j * d, vv + j * h, h, d);
        }
      ref_linear (P[DCR_P_WQ], P[DCR_P_BQ], fh, q, h, d);
      double mx = -INFINITY, sum = 0;
      for (gsize j = 0; j < l; j++)
        {
          double acc = 0;
          for (gsize e = 0; e < h; e++)
            acc += q[e] * kk[j * h + e];
          s[j] = acc / sqrt ((double) h);
          mx = MAX (mx, s[j]);
        }
      for (gsize j = 0; j < l; j++)
        sum += s[j] = exp (s[j] - mx);
      for (gsize e = 0; e < h; e++)
        {
          double acc = 0;
          for (gsize j = 0; j < l; j++)
            acc += s[j] / sum * vv[j * h + e];
          ch[e] = acc;
        }
      ref_linear (P[DCR_P_WO], P[DCR_P_BO], ch, c, d, h);
      if (m->cfg.gate)
        {
          ref_linear (P[DCR_P_WGF], P[DCR_P_BG], fh, z, d, d);
          ref_linear (P[DCR_P_WGC], NULL, c, z2, d, d);
          for (gsize e = 0; e < d; e++)
            fu[e] = fh[e] + sigmoid (z[e] + z2[e]) * c[e];
        }
      else
        for (gsize e = 0; e < d; e++)
          fu[e] = fh[e] + c[e];
      ref_linear (P[DCR_P_WC], P[DCR_P_BC], fu, lg, 2, d);
      ref_linear (P[DCR_P_W1], P[DCR_P_B1], dd, a, hr, d);
      for (gsize e = 0; e < hr; e++)
        a[e] = MAX (a[e], 0);
      ref_linear (P[DCR_P_W2], P[DCR_P_B2], a, &za, 1, hr);
      if (logits)
        {
          logits[2 * i] = (float) lg[0];
          logits[2 * i + 1] = (float) lg[1];
        }
      if (p_fake)
        p_fake[i] = (float) sigmoid (p_fake_logit (&m->cfg, lg[1] - lg[0], f + i * d, FALSE));
      if (anomaly)
        anomaly[i] = (float) sigmoid (za);
      for (gsize j = 0; attention && j < l; j++)
        attention[i * l + j] = (float) (s[j] / sum);
      for (gsize e = 0; e < d; e++)
        {
          if (residual)
            residual[i * d + e] = (float) dd[e];
          if (fused)
            fused[i * d + e] = (float) fu[e];
        }
    }
}
