/* dcr-augment.c — training augmentations on the CPU (see dcr-augment.h). */
#include "dcr-augment.h"

#include <gio/gio.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SIDE 36u /* dcr_backbone_check_image's minimum */

void
dcr_augment_config_default (DcrAugmentConfig *c)
{
  *c = (DcrAugmentConfig) { .views = 2, .crop_p = 0.5, .crop_min = 0.75, .flip_p = 0.5, .blur_p = 0.1,
                            .blur_sigma = 1.0, .jpeg_p = 0.5, .jpeg_qmin = 60, .jpeg_qmax = 95, .seed = 0 };
}

static gboolean
bad (GError **error, const char *item, const char *why)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "augmentation \"%s\": %s", item, why);
  return FALSE;
}

/* A probability "P" or "P:X" (X parsed by the caller from *rest). */
static gboolean
parse_p (const char *item, const char *val, double *p, const char **rest, GError **error)
{
  char *end = NULL;
  *p = g_ascii_strtod (val, &end);
  if (end == val || !(*p >= 0 && *p <= 1))
    return bad (error, item, "the probability must be a number from 0 to 1");
  *rest = *end == ':' ? end + 1 : NULL;
  if (*end && *end != ':')
    return bad (error, item, "expected P or P:VALUE");
  return TRUE;
}

gboolean
dcr_augment_config_parse (const char *spec, DcrAugmentConfig *c, GError **error)
{
  dcr_augment_config_default (c);
  if (!spec || !*spec || g_str_equal (spec, "default"))
    return TRUE;
  if (g_str_equal (spec, "none"))
    {
      c->views = 0;
      return TRUE;
    }
  g_auto (GStrv) items = g_strsplit (spec, ",", -1);
  for (guint i = 0; items[i]; i++)
    {
      char *item = g_strstrip (items[i]);
      if (!*item || g_str_equal (item, "default"))
        continue;
      char *eq = strchr (item, '=');
      if (!eq)
        return bad (error, item, "expected NAME=VALUE (views, crop, flip, blur, jpeg, seed)");
      *eq = 0;
      const char *name = item, *val = eq + 1, *rest = NULL;
      char *end = NULL;
      if (g_str_equal (name, "views"))
        {
          guint64 v = g_ascii_strtoull (val, &end, 10);
          if (end == val || *end || v > 64)
            return bad (error, name, "views must be a whole number from 0 to 64");
          c->views = (guint) v;
        }
      else if (g_str_equal (name, "seed"))
        {
          c->seed = g_ascii_strtoull (val, &end, 10);
          if (end == val || *end)
            return bad (error, name, "the seed must be a whole number");
        }
      else if (g_str_equal (name, "flip"))
        {
          if (!parse_p (name, val, &c->flip_p, &rest, error))
            return FALSE;
          if (rest)
            return bad (error, name, "flip takes a probability only");
        }
      else if (g_str_equal (name, "crop"))
        {
          if (!parse_p (name, val, &c->crop_p, &rest, error))
            return FALSE;
          if (rest)
            {
              c->crop_min = g_ascii_strtod (rest, &end);
              if (end == rest || *end || !(c->crop_min >= 0.25 && c->crop_min <= 1))
                return bad (error, name, "the kept fraction of a side must be from 0.25 to 1 (crop=P:MIN)");
            }
        }
      else if (g_str_equal (name, "blur"))
        {
          if (!parse_p (name, val, &c->blur_p, &rest, error))
            return FALSE;
          if (rest)
            {
              c->blur_sigma = g_ascii_strtod (rest, &end);
              if (end == rest || *end || !(c->blur_sigma >= 0.2 && c->blur_sigma <= 8))
                return bad (error, name, "the largest sigma must be from 0.2 to 8 pixels (blur=P:SIGMA)");
            }
        }
      else if (g_str_equal (name, "jpeg"))
        {
          if (!parse_p (name, val, &c->jpeg_p, &rest, error))
            return FALSE;
          if (rest)
            {
              guint64 lo = g_ascii_strtoull (rest, &end, 10), hi = lo;
              if (end != rest && *end == '-')
                {
                  const char *h = end + 1;
                  hi = g_ascii_strtoull (h, &end, 10);
                  if (end == h)
                    hi = 0;
                }
              if (end == rest || *end || lo < 1 || hi > 100 || lo > hi)
                return bad (error, name, "qualities must be QMIN-QMAX within 1…100 (jpeg=P:QMIN-QMAX)");
              c->jpeg_qmin = (int) lo;
              c->jpeg_qmax = (int) hi;
            }
        }
      else
        return bad (error, name, "unknown; expected views, crop, flip, blur, jpeg or seed");
    }
  return TRUE;
}

char *
dcr_augment_config_to_string (const DcrAugmentConfig *c)
{
  if (!c->views)
    return g_strdup ("none");
  char a[G_ASCII_DTOSTR_BUF_SIZE], b[G_ASCII_DTOSTR_BUF_SIZE], d[G_ASCII_DTOSTR_BUF_SIZE],
    e[G_ASCII_DTOSTR_BUF_SIZE], f[G_ASCII_DTOSTR_BUF_SIZE], g[G_ASCII_DTOSTR_BUF_SIZE];
  return g_strdup_printf ("views=%u,crop=%s:%s,flip=%s,blur=%s:%s,jpeg=%s:%d-%d,seed=%" G_GUINT64_FORMAT, c->views,
                          g_ascii_formatd (a, sizeof a, "%g", c->crop_p), g_ascii_formatd (b, sizeof b, "%g", c->crop_min),
                          g_ascii_formatd (d, sizeof d, "%g", c->flip_p), g_ascii_formatd (e, sizeof e, "%g", c->blur_p),
                          g_ascii_formatd (f, sizeof f, "%g", c->blur_sigma), g_ascii_formatd (g, sizeof g, "%g", c->jpeg_p),
                          c->jpeg_qmin, c->jpeg_qmax, c->seed);
}

void
dcr_augment_draw (const DcrAugmentConfig *c, const char *sha256, guint view, DcrAugmentParams *p)
{
  /* the seed: the file's hash, the view and the configured seed */
  guint32 s[6] = { 0, 0, view, (guint32) c->seed, (guint32) (c->seed >> 32), 0xa06e };
  char part[9] = { 0 };
  for (int i = 0; i < 2 && sha256 && strlen (sha256) >= (gsize) (i + 1) * 8; i++)
    {
      memcpy (part, sha256 + i * 8, 8);
      s[i] = (guint32) g_ascii_strtoull (part, NULL, 16);
    }
  g_autoptr (GRand) r = g_rand_new_with_seed_array (s, G_N_ELEMENTS (s));
  memset (p, 0, sizeof *p);
  /* every draw is made whether or not it is used, so one setting does not
   * shift the others' random numbers */
  double u_crop = g_rand_double (r), u_size = g_rand_double (r), u_x = g_rand_double (r), u_y = g_rand_double (r);
  double u_flip = g_rand_double (r), u_blur = g_rand_double (r), u_sigma = g_rand_double (r);
  double u_jpeg = g_rand_double (r), u_q = g_rand_double (r);
  if (u_crop < c->crop_p)
    {
      guint lo = (guint) ceil (c->crop_min * 64);
      lo = CLAMP (lo, 16u, 64u);
      p->crop_q = lo + (guint) floor (u_size * (65 - lo));
      p->crop_q = MIN (p->crop_q, 64u);
      p->crop_x = (guint) floor (u_x * 256);
      p->crop_y = (guint) floor (u_y * 256);
      p->crop = p->crop_q < 64;
      if (!p->crop)
        p->crop_x = p->crop_y = 0;
    }
  p->flip = u_flip < c->flip_p;
  if (u_blur < c->blur_p)
    p->blur_ms = (guint) floor ((0.2 + u_sigma * MAX (c->blur_sigma - 0.2, 0)) * 1000 + 0.5);
  if (u_jpeg < c->jpeg_p)
    p->quality = c->jpeg_qmin + (int) floor (u_q * (c->jpeg_qmax - c->jpeg_qmin + 1));
  p->quality = MIN (p->quality, c->jpeg_qmax);
}

gboolean
dcr_augment_is_identity (const DcrAugmentParams *p)
{
  return !p->crop && !p->flip && !p->blur_ms && !p->quality;
}

char *
dcr_augment_params_key (const DcrAugmentParams *p)
{
  if (dcr_augment_is_identity (p))
    return g_strdup ("none");
  GString *s = g_string_new (NULL);
  if (p->crop)
    g_string_append_printf (s, "c%u@%u,%u;", p->crop_q, p->crop_x, p->crop_y);
  if (p->flip)
    g_string_append (s, "f;");
  if (p->blur_ms)
    g_string_append_printf (s, "b%u;", p->blur_ms);
  if (p->quality)
    g_string_append_printf (s, "q%d;", p->quality);
  g_string_truncate (s, s->len - 1);
  return g_string_free (s, FALSE);
}

static inline int
reflect (int i, int n)
{
  if (n == 1)
    return 0;
  while (i < 0 || i >= n)
    i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

DcrImage *
dcr_image_gaussian_blur (const DcrImage *img, double sigma)
{
  int w = (int) img->width, h = (int) img->height, rad = (int) ceil (3 * sigma);
  g_autofree float *k = g_new (float, 2 * rad + 1);
  double sum = 0;
  for (int i = -rad; i <= rad; i++)
    sum += k[i + rad] = (float) exp (-(double) i * i / (2 * sigma * sigma));
  for (int i = 0; i <= 2 * rad; i++)
    k[i] = (float) (k[i] / sum);
  g_autofree float *tmp = g_new (float, (gsize) w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int ch = 0; ch < 3; ch++)
        {
          float a = 0;
          for (int i = -rad; i <= rad; i++)
            a += k[i + rad] * img->pixels[((gsize) y * w + reflect (x + i, w)) * 3 + ch];
          tmp[((gsize) y * w + x) * 3 + ch] = a;
        }
  DcrImage *out = dcr_image_new (img->width, img->height);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int ch = 0; ch < 3; ch++)
        {
          float a = 0;
          for (int i = -rad; i <= rad; i++)
            a += k[i + rad] * tmp[((gsize) reflect (y + i, h) * w + x) * 3 + ch];
          out->pixels[((gsize) y * w + x) * 3 + ch] = (guint8) CLAMP (lrintf (a), 0, 255);
        }
  return out;
}

DcrImage *
dcr_augment_apply (const DcrImage *img, const DcrAugmentParams *p, GError **error)
{
  guint w = img->width, h = img->height, x0 = 0, y0 = 0;
  if (p->crop)
    {
      guint cw = (guint) ((guint64) w * p->crop_q / 64), ch = (guint) ((guint64) h * p->crop_q / 64);
      cw = MIN (MAX (cw, MIN (MIN_SIDE, w)), w);
      ch = MIN (MAX (ch, MIN (MIN_SIDE, h)), h);
      x0 = (guint) ((guint64) (w - cw) * p->crop_x / 255);
      y0 = (guint) ((guint64) (h - ch) * p->crop_y / 255);
      w = cw;
      h = ch;
    }
  g_autoptr (DcrImage) out = dcr_image_new (w, h);
  for (guint y = 0; y < h; y++)
    {
      const guint8 *src = img->pixels + ((gsize) (y0 + y) * img->width + x0) * 3;
      guint8 *dst = out->pixels + (gsize) y * w * 3;
      if (!p->flip)
        memcpy (dst, src, (gsize) w * 3);
      else
        for (guint x = 0; x < w; x++)
          memcpy (dst + (gsize) x * 3, src + (gsize) (w - 1 - x) * 3, 3);
    }
  if (p->blur_ms)
    {
      DcrImage *b = dcr_image_gaussian_blur (out, p->blur_ms / 1000.0);
      dcr_image_free (out);
      out = b;
    }
  if (p->quality)
    {
      g_autoptr (GBytes) jpg = dcr_image_encode_jpeg (out, p->quality, error);
      if (!jpg)
        return NULL;
      DcrImage *d = dcr_image_load_from_bytes (jpg, "augmented view", NULL, error);
      if (!d)
        return NULL;
      dcr_image_free (out);
      out = d;
    }
  return g_steal_pointer (&out);
}
