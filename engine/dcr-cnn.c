/* dcr-cnn.c — the learned forensic CNN (definition in the header): its
 * file, its geometry (window, map, blocks), the columns from a map, and the
 * references in double. The GPU ops are in dcr-op-cnn.c. */
#include "dcr-cnn.h"
#include "dcr-safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK (dcr-cnn-error-quark, dcr_cnn_error)

/* Checks one architecture against the limits; FALSE with a message. */
static gboolean
check_arch (guint n_layers, const guint *channels, const guint *kernels, const guint *strides, const char *where,
            GError **error)
{
  const char *pre = where ? where : "CNN", *sep = ": ";
  if (n_layers < 1 || n_layers > DCR_CNN_MAX_LAYERS)
    {
      g_set_error (error, DCR_CNN_ERROR, DCR_CNN_ERROR_SHAPE, "%s%s%u layers; a cnn-v1 network has 1 to %d", pre,
                   sep, n_layers, DCR_CNN_MAX_LAYERS);
      return FALSE;
    }
  if (channels[0] != 3 || channels[n_layers] != 1)
    {
      g_set_error (error, DCR_CNN_ERROR, DCR_CNN_ERROR_SHAPE,
                   "%s%sthe network takes %u channels and gives %u; it must take 3 (RGB) and give 1 (the logit "
                   "map)", pre, sep, channels[0], channels[n_layers]);
      return FALSE;
    }
  for (guint l = 0; l < n_layers; l++)
    {
      if (channels[l + 1] < 1 || channels[l + 1] > DCR_CNN_MAX_CHANNELS)
        {
          g_set_error (error, DCR_CNN_ERROR, DCR_CNN_ERROR_SHAPE,
                       "%s%slayer %u has %u output channels; the limit is 1 to %d", pre, sep, l, channels[l + 1],
                       DCR_CNN_MAX_CHANNELS);
          return FALSE;
        }
      if (kernels[l] < 1 || kernels[l] > DCR_CNN_MAX_KERNEL)
        {
          g_set_error (error, DCR_CNN_ERROR, DCR_CNN_ERROR_SHAPE, "%s%slayer %u has a %u × %u kernel; the limit is "
                       "1 to %d", pre, sep, l, kernels[l], kernels[l], DCR_CNN_MAX_KERNEL);
          return FALSE;
        }
      if (strides[l] < 1 || strides[l] > DCR_CNN_MAX_STRIDE)
        {
          g_set_error (error, DCR_CNN_ERROR, DCR_CNN_ERROR_SHAPE, "%s%slayer %u has stride %u; the limit is 1 to %d",
                       pre, sep, l, strides[l], DCR_CNN_MAX_STRIDE);
          return FALSE;
        }
    }
  /* the geometry at the largest window: the map must exist, its blocks fit */
  DcrCnn tmp = { n_layers, { { 0 } }, NULL, NULL };
  for (guint l = 0; l < n_layers; l++)
    tmp.layers[l] = (DcrCnnLayer) { channels[l], channels[l + 1], kernels[l], strides[l], NULL, NULL };
  gint64 min_side = dcr_cnn_min_side (&tmp);
  if (min_side > DCR_CNN_WINDOW)
    {
      g_set_error (error, DCR_CNN_ERROR, DCR_CNN_ERROR_SHAPE,
                   "%s%sthe network needs a window of at least %" G_GINT64_FORMAT " pixels a side, more than the "
                   "%d it is given; use fewer or smaller strides and kernels", pre, sep, min_side, DCR_CNN_WINDOW);
      return FALSE;
    }
  gint64 hm, wm;
  dcr_cnn_map_size (&tmp, DCR_CNN_WINDOW, DCR_CNN_WINDOW, &hm, &wm);
  guint t = dcr_cnn_block (&tmp);
  gint64 nb = MAX (hm / t, 1) * MAX (wm / t, 1);
  if (nb > DCR_CNN_MAX_BLOCKS)
    {
      g_set_error (error, DCR_CNN_ERROR, DCR_CNN_ERROR_SHAPE,
                   "%s%sat total stride %u the %d-pixel window makes %" G_GINT64_FORMAT " blocks of %u × %u map "
                   "cells, more than %d; choose strides whose product is closer to a divisor of %d", pre, sep,
                   dcr_cnn_stride (&tmp), DCR_CNN_WINDOW, nb, t, t, DCR_CNN_MAX_BLOCKS, DCR_CNN_BLOCK_PX);
      return FALSE;
    }
  return TRUE;
}

DcrCnn *
dcr_cnn_new (guint n_layers, const guint *channels, const guint *kernels, const guint *strides, GError **error)
{
  if (!check_arch (n_layers, channels, kernels, strides, NULL, error))
    return NULL;
  DcrCnn *c = g_new0 (DcrCnn, 1);
  c->n_layers = n_layers;
  for (guint l = 0; l < n_layers; l++)
    {
      DcrCnnLayer *L = &c->layers[l];
      *L = (DcrCnnLayer) { channels[l], channels[l + 1], kernels[l], strides[l], NULL, NULL };
      L->weight = g_new0 (float, (gsize) L->cout * L->kernel * L->kernel * L->cin);
      L->bias = g_new0 (float, L->cout);
    }
  return c;
}

void
dcr_cnn_free (DcrCnn *c)
{
  if (!c)
    return;
  for (guint l = 0; l < c->n_layers; l++)
    {
      g_free (c->layers[l].weight);
      g_free (c->layers[l].bias);
    }
  g_free (c->sha256);
  g_free (c->training);
  g_free (c);
}

static void
file_error (GError **error, const char *path, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

static void
file_error (GError **error, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, DCR_CNN_ERROR, DCR_CNN_ERROR_FILE, "%s: %s", path, msg);
}

/* "2,2,1,1" → strides; FALSE when malformed. */
static gboolean
parse_strides (const char *text, guint *strides, guint *n)
{
  *n = 0;
  if (!text || !*text)
    return FALSE;
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  for (guint i = 0; parts[i]; i++)
    {
      const char *s = parts[i];
      if (!*s || strlen (s) > 3 || *n >= DCR_CNN_MAX_LAYERS + 1)
        return FALSE;
      for (const char *p = s; *p; p++)
        if (!g_ascii_isdigit (*p))
          return FALSE;
      if (*n < DCR_CNN_MAX_LAYERS)
        strides[*n] = (guint) atoi (s);
      (*n)++;
    }
  return TRUE;
}

DcrCnn *
dcr_cnn_load (const char *path, GError **error)
{
  g_autoptr (DcrSafetensors) st = dcr_safetensors_open (path, error);
  if (!st)
    return NULL;
  if (g_strcmp0 (dcr_safetensors_metadata (st, "format"), "dcr-cnn") != 0)
    {
      file_error (error, path, "not a forensic CNN (its metadata lacks format \"dcr-cnn\"; make one with "
                               "`dcr train-cnn`)");
      return NULL;
    }
  const char *version = dcr_safetensors_metadata (st, "version");
  if (g_strcmp0 (version, "cnn-v1") != 0)
    {
      file_error (error, path, "forensic CNN version \"%s\"; this build reads \"cnn-v1\"",
                  version ? version : "(none)");
      return NULL;
    }
  const char *stext = dcr_safetensors_metadata (st, "strides");
  guint strides[DCR_CNN_MAX_LAYERS] = { 0 }, n_strides = 0;
  if (!stext)
    {
      file_error (error, path, "the metadata lacks \"strides\" (each layer's stride, e.g. \"2,2,1,1\")");
      return NULL;
    }
  if (!parse_strides (stext, strides, &n_strides))
    {
      file_error (error, path, "metadata \"strides\" is \"%s\"; it must be 1 to %d decimal integers joined by "
                  "\",\" (e.g. \"2,2,1,1\")", stext, DCR_CNN_MAX_LAYERS);
      return NULL;
    }
  /* the layers present: layer0 … layer{L−1}, nothing else */
  guint n_layers = 0;
  while (n_layers <= DCR_CNN_MAX_LAYERS)
    {
      char name[32];
      g_snprintf (name, sizeof name, "layer%u.weight", n_layers);
      if (!dcr_safetensors_lookup (st, name))
        break;
      n_layers++;
    }
  if (n_layers == 0)
    {
      file_error (error, path, "no tensor \"layer0.weight\"; a forensic CNN has layer0 … layer{L−1}");
      return NULL;
    }
  if (n_layers > DCR_CNN_MAX_LAYERS)
    {
      file_error (error, path, "more than %d layers; a cnn-v1 network has at most %d", DCR_CNN_MAX_LAYERS,
                  DCR_CNN_MAX_LAYERS);
      return NULL;
    }
  guint n_tensors = dcr_safetensors_n_tensors (st);
  for (guint i = 0; i < n_tensors; i++)
    {
      const char *name = dcr_safetensors_tensor_at (st, i)->name;
      gboolean known = FALSE;
      for (guint l = 0; l < n_layers && !known; l++)
        {
          char w[32], b[32];
          g_snprintf (w, sizeof w, "layer%u.weight", l);
          g_snprintf (b, sizeof b, "layer%u.bias", l);
          known = strcmp (name, w) == 0 || strcmp (name, b) == 0;
        }
      if (!known)
        {
          file_error (error, path, "unexpected tensor \"%s\" (a %u-layer network has layer{0…%u}.weight and .bias "
                      "only)", name, n_layers, n_layers - 1);
          return NULL;
        }
    }
  if (n_strides != n_layers)
    {
      file_error (error, path, "metadata \"strides\" gives %u strides (\"%s\") for %u layers", n_strides, stext,
                  n_layers);
      return NULL;
    }
  guint channels[DCR_CNN_MAX_LAYERS + 1], kernels[DCR_CNN_MAX_LAYERS];
  channels[0] = 3;
  for (guint l = 0; l < n_layers; l++)
    {
      char name[32];
      g_snprintf (name, sizeof name, "layer%u.weight", l);
      const DcrStTensor *t = dcr_safetensors_lookup (st, name);
      if (t->ndim != 4 || t->shape[1] != t->shape[2] || t->shape[0] < 1 || t->shape[1] < 1 || t->shape[3] < 1)
        {
          file_error (error, path, "\"%s\" must be [cout, k, k, cin] (a square kernel)", name);
          return NULL;
        }
      if (t->shape[3] != channels[l])
        {
          if (l == 0)
            file_error (error, path, "\"%s\" takes %" G_GINT64_FORMAT " input channels; the first layer takes "
                        "the 3 of RGB", name, t->shape[3]);
          else
            file_error (error, path, "\"%s\" takes %" G_GINT64_FORMAT " input channels, but layer %u gives %u",
                        name, t->shape[3], l - 1, channels[l]);
          return NULL;
        }
      if (t->shape[0] > DCR_CNN_MAX_CHANNELS || t->shape[1] > DCR_CNN_MAX_KERNEL)
        {
          file_error (error, path, "\"%s\" is %" G_GINT64_FORMAT " channels of %" G_GINT64_FORMAT "×%"
                      G_GINT64_FORMAT " kernels; the limits are %d channels and %d×%d", name, t->shape[0],
                      t->shape[1], t->shape[1], DCR_CNN_MAX_CHANNELS, DCR_CNN_MAX_KERNEL, DCR_CNN_MAX_KERNEL);
          return NULL;
        }
      channels[l + 1] = (guint) t->shape[0];
      kernels[l] = (guint) t->shape[1];
    }
  if (channels[n_layers] != 1)
    {
      file_error (error, path, "the last layer gives %u channels; it must give 1 (the logit map)",
                  channels[n_layers]);
      return NULL;
    }
  g_autoptr (GError) arch_error = NULL;
  if (!check_arch (n_layers, channels, kernels, strides, path, &arch_error))
    {
      /* a file error: the file holds an architecture outside the limits */
      g_set_error_literal (error, DCR_CNN_ERROR, DCR_CNN_ERROR_FILE, arch_error->message);
      return NULL;
    }
  g_autoptr (DcrCnn) c = dcr_cnn_new (n_layers, channels, kernels, strides, error);
  if (!c)
    return NULL;
  for (guint l = 0; l < n_layers; l++)
    {
      DcrCnnLayer *L = &c->layers[l];
      char wn[32], bn[32];
      g_snprintf (wn, sizeof wn, "layer%u.weight", l);
      g_snprintf (bn, sizeof bn, "layer%u.bias", l);
      gint64 ws[] = { L->cout, L->kernel, L->kernel, L->cin }, bs[] = { L->cout };
      g_autofree float *w = NULL, *b = NULL;
      if (!dcr_safetensors_lookup (st, bn))
        {
          file_error (error, path, "no tensor \"%s\" (every layer has a bias, [%u])", bn, L->cout);
          return NULL;
        }
      if (!dcr_safetensors_get_f32 (st, wn, ws, 4, &w, error) || !dcr_safetensors_get_f32 (st, bn, bs, 1, &b, error))
        return NULL;
      memcpy (L->weight, w, sizeof (float) * ws[0] * ws[1] * ws[2] * ws[3]);
      memcpy (L->bias, b, sizeof (float) * L->cout);
    }
  c->training = g_strdup (dcr_safetensors_metadata (st, "training"));
  g_autoptr (GMappedFile) mf = g_mapped_file_new (path, FALSE, error);
  if (!mf)
    return NULL;
  c->sha256 = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) g_mapped_file_get_contents (mf),
                                           g_mapped_file_get_length (mf));
  return g_steal_pointer (&c);
}

gboolean
dcr_cnn_save (const DcrCnn *c, const char *path, const char *training, GError **error)
{
  DcrStWriteTensor t[2 * DCR_CNN_MAX_LAYERS];
  gint64 shapes[DCR_CNN_MAX_LAYERS][5];
  char names[2 * DCR_CNN_MAX_LAYERS][32];
  GString *strides = g_string_new (NULL);
  for (guint l = 0; l < c->n_layers; l++)
    {
      const DcrCnnLayer *L = &c->layers[l];
      gint64 *s = shapes[l];
      s[0] = L->cout;
      s[1] = L->kernel;
      s[2] = L->kernel;
      s[3] = L->cin;
      s[4] = L->cout;
      g_snprintf (names[2 * l], 32, "layer%u.weight", l);
      g_snprintf (names[2 * l + 1], 32, "layer%u.bias", l);
      t[2 * l] = (DcrStWriteTensor) { names[2 * l], DCR_ST_F32, 4, s, L->weight };
      t[2 * l + 1] = (DcrStWriteTensor) { names[2 * l + 1], DCR_ST_F32, 1, s + 4, L->bias };
      g_string_append_printf (strides, "%s%u", l ? "," : "", L->stride);
    }
  const char *meta[] = { "format", "dcr-cnn", "version", "cnn-v1", "strides", strides->str,
                         "training", training ? training : "{}", NULL };
  gboolean ok = dcr_safetensors_write (path, t, 2 * c->n_layers, meta, error);
  g_string_free (strides, TRUE);
  return ok;
}

guint
dcr_cnn_stride (const DcrCnn *c)
{
  guint s = 1;
  for (guint l = 0; l < c->n_layers; l++)
    s *= c->layers[l].stride;
  return s;
}

guint
dcr_cnn_block (const DcrCnn *c)
{
  long t = lround ((double) DCR_CNN_BLOCK_PX / dcr_cnn_stride (c));
  return (guint) MAX (t, 1);
}

gboolean
dcr_cnn_map_size (const DcrCnn *c, gint64 h, gint64 w, gint64 *hm, gint64 *wm)
{
  *hm = *wm = 0;
  h -= DCR_CNN_BOX - 1;
  w -= DCR_CNN_BOX - 1;
  if (h < 1 || w < 1)
    return FALSE;
  for (guint l = 0; l < c->n_layers; l++)
    {
      gint64 k = c->layers[l].kernel, s = c->layers[l].stride;
      if (h < k || w < k)
        return FALSE;
      h = (h - k) / s + 1;
      w = (w - k) / s + 1;
    }
  *hm = h;
  *wm = w;
  return TRUE;
}

void
dcr_cnn_window (gint64 H, gint64 W, gint64 *top, gint64 *left, gint64 *h, gint64 *w)
{
  *h = MIN (H, DCR_CNN_WINDOW);
  *w = MIN (W, DCR_CNN_WINDOW);
  *top = (H - *h) / 2 / DCR_CNN_ALIGN * DCR_CNN_ALIGN;
  *left = (W - *w) / 2 / DCR_CNN_ALIGN * DCR_CNN_ALIGN;
}

gint64
dcr_cnn_min_side (const DcrCnn *c)
{
  gint64 need = 1;
  for (guint l = c->n_layers; l-- > 0;)
    need = (need - 1) * c->layers[l].stride + c->layers[l].kernel;
  return need + DCR_CNN_BOX - 1;
}

void
dcr_cnn_columns (const DcrCnn *c, const float *map, gint64 hm, gint64 wm, float out[DCR_CNN_DIM], float *blocks,
                 guint *nbh, guint *nbw)
{
  g_return_if_fail (hm >= 1 && wm >= 1);
  gint64 t = dcr_cnn_block (c), bh = hm / t, bw = wm / t;
  double all = 0;
  for (gint64 i = 0; i < hm * wm; i++)
    all += map[i];
  all /= (double) (hm * wm);
  double means[DCR_CNN_MAX_BLOCKS];
  if (bh < 1 || bw < 1)
    {
      bh = bw = 1;
      means[0] = all;
    }
  else
    {
      g_return_if_fail (bh * bw <= DCR_CNN_MAX_BLOCKS);
      for (gint64 a = 0; a < bh; a++)
        for (gint64 b = 0; b < bw; b++)
          {
            double s = 0;
            for (gint64 y = 0; y < t; y++)
              for (gint64 x = 0; x < t; x++)
                s += map[(a * t + y) * wm + b * t + x];
            means[a * bw + b] = s / (double) (t * t);
          }
    }
  guint nb = (guint) (bh * bw), k = MIN (DCR_CNN_TOPK, nb);
  gboolean used[DCR_CNN_MAX_BLOCKS] = { FALSE };
  double sum = 0, top = 0;
  for (guint i = 0; i < k; i++)
    {
      guint best = G_MAXUINT;
      for (guint b = 0; b < nb; b++)
        if (!used[b] && (best == G_MAXUINT || means[b] > means[best]))
          best = b;
      used[best] = TRUE;
      sum += means[best];
      if (i == 0)
        top = means[best];
    }
  out[0] = (float) all;
  out[1] = (float) (sum / k);
  out[2] = (float) top;
  if (blocks)
    for (guint b = 0; b < nb; b++)
      blocks[b] = (float) means[b];
  if (nbh)
    *nbh = (guint) bh;
  if (nbw)
    *nbw = (guint) bw;
}

void
dcr_ref_cnn_prep (const guint8 *rgb, gint64 stride, gint64 h, gint64 w, float *q)
{
  gint64 oh = h - (DCR_CNN_BOX - 1), ow = w - (DCR_CNN_BOX - 1);
  for (gint64 i = 0; i < oh; i++)
    for (gint64 j = 0; j < ow; j++)
      for (int ch = 0; ch < 3; ch++)
        {
          double s = 0;
          for (int a = 0; a < DCR_CNN_BOX; a++)
            for (int b = 0; b < DCR_CNN_BOX; b++)
              s += rgb[(i + a) * stride + (j + b) * 3 + ch] * DCR_CNN_SCALE;
          double centre = rgb[(i + 2) * stride + (j + 2) * 3 + ch] * DCR_CNN_SCALE;
          q[(i * ow + j) * 3 + ch] = (float) (centre - s / (DCR_CNN_BOX * DCR_CNN_BOX));
        }
}

gboolean
dcr_ref_cnn (const DcrCnn *c, const guint8 *rgb, gint64 stride, gint64 h, gint64 w, float *map,
             float out[DCR_CNN_DIM])
{
  gint64 hm, wm;
  if (!dcr_cnn_map_size (c, h, w, &hm, &wm))
    return FALSE;
  gint64 ih = h - (DCR_CNN_BOX - 1), iw = w - (DCR_CNN_BOX - 1);
  g_autofree float *q = g_new (float, ih * iw * 3);
  dcr_ref_cnn_prep (rgb, stride, h, w, q);
  /* activations in double between layers */
  double *x = g_new (double, ih * iw * 3);
  for (gint64 i = 0; i < ih * iw * 3; i++)
    x[i] = q[i];
  for (guint l = 0; l < c->n_layers; l++)
    {
      const DcrCnnLayer *L = &c->layers[l];
      gint64 k = L->kernel, s = L->stride, oh = (ih - k) / s + 1, ow = (iw - k) / s + 1;
      double *y = g_new (double, oh * ow * L->cout);
      for (gint64 i = 0; i < oh; i++)
        for (gint64 j = 0; j < ow; j++)
          for (guint o = 0; o < L->cout; o++)
            {
              double acc = L->bias[o];
              for (gint64 a = 0; a < k; a++)
                for (gint64 b = 0; b < k; b++)
                  {
                    const double *xp = x + ((i * s + a) * iw + j * s + b) * L->cin;
                    const float *wp = L->weight + ((o * k + a) * k + b) * L->cin;
                    for (guint ci = 0; ci < L->cin; ci++)
                      acc += xp[ci] * wp[ci];
                  }
              if (l + 1 < c->n_layers && acc < 0)
                acc = 0;
              y[(i * ow + j) * L->cout + o] = acc;
            }
      g_free (x);
      x = y;
      ih = oh;
      iw = ow;
    }
  g_assert (ih == hm && iw == wm);
  g_autofree float *m = g_new (float, hm * wm);
  for (gint64 i = 0; i < hm * wm; i++)
    m[i] = (float) x[i];
  g_free (x);
  if (map)
    memcpy (map, m, sizeof (float) * hm * wm);
  dcr_cnn_columns (c, m, hm, wm, out, NULL, NULL, NULL);
  return TRUE;
}

void
dcr_cnn_block_rect (const DcrCnn *c, gint64 H, gint64 W, guint nbw, guint block, gint64 *x, gint64 *y, gint64 *w,
                    gint64 *h)
{
  *x = *y = *w = *h = 0;
  gint64 top, left, wh, ww, hm, wm;
  dcr_cnn_window (H, W, &top, &left, &wh, &ww);
  if (!dcr_cnn_map_size (c, wh, ww, &hm, &wm))
    return;
  gint64 s = dcr_cnn_stride (c), t = dcr_cnn_block (c), bh = hm / t, bw = wm / t;
  gint64 x0, y0, x1, y1;
  if (bh < 1 || bw < 1)
    {
      /* no whole block: the whole map is the one block */
      if (block != 0 || nbw != 1)
        return;
      x0 = 2;
      y0 = 2;
      x1 = 2 + wm * s;
      y1 = 2 + hm * s;
    }
  else
    {
      if (nbw != (guint) bw || block >= (guint) (bh * bw))
        return;
      gint64 a = block / nbw, b = block % nbw;
      x0 = 2 + b * t * s;
      y0 = 2 + a * t * s;
      x1 = x0 + t * s;
      y1 = y0 + t * s;
    }
  x1 = MIN (x1, ww);
  y1 = MIN (y1, wh);
  *x = left + x0;
  *y = top + y0;
  *w = MAX (0, x1 - x0);
  *h = MAX (0, y1 - y0);
}
