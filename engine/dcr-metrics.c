/* dcr-metrics.c — ROC / precision-recall metrics, threshold and band, on
 * scores sorted once: every metric walks the distinct scores from the top,
 * as scikit-learn's roc_curve and precision_recall_curve do. */
#include "dcr-metrics.h"

#include <math.h>
#include <gio/gio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  float s;
  gint32 y;
} Sample;

static int
by_score_desc (const void *a, const void *b)
{
  float x = ((const Sample *) a)->s, y = ((const Sample *) b)->s;
  return x > y ? -1 : x < y ? 1 : 0;
}

/* The ROC points at each distinct score, from the top: cumulative true and
 * false positives when everything scoring ≥ that score is called fake. */
typedef struct {
  gsize n;          /* distinct scores */
  float *score;
  gsize *tp, *fp;
  gsize pos, neg;
} Curve;

static void
curve_init (Curve *c, const float *scores, const gint32 *labels, gsize n)
{
  Sample *s = g_new (Sample, MAX (n, 1));
  gsize m = 0;
  for (gsize i = 0; i < n; i++)
    if (!isnan (scores[i]))
      s[m++] = (Sample) { scores[i], labels[i] != 0 };
  qsort (s, m, sizeof *s, by_score_desc);
  c->score = g_new (float, MAX (m, 1));
  c->tp = g_new (gsize, MAX (m, 1));
  c->fp = g_new (gsize, MAX (m, 1));
  c->n = 0;
  gsize tp = 0, fp = 0;
  for (gsize i = 0; i < m; i++)
    {
      if (s[i].y)
        tp++;
      else
        fp++;
      if (i + 1 == m || s[i + 1].s != s[i].s)
        {
          c->score[c->n] = s[i].s;
          c->tp[c->n] = tp;
          c->fp[c->n] = fp;
          c->n++;
        }
    }
  c->pos = tp;
  c->neg = fp;
  g_free (s);
}

static void
curve_clear (Curve *c)
{
  g_free (c->score);
  g_free (c->tp);
  g_free (c->fp);
}

static double
roc_auc (const Curve *c)
{
  if (!c->pos || !c->neg)
    return NAN;
  double auc = 0, px = 0, py = 0;
  for (gsize i = 0; i < c->n; i++)
    {
      double x = (double) c->fp[i] / c->neg, y = (double) c->tp[i] / c->pos;
      auc += (x - px) * (y + py) / 2;
      px = x;
      py = y;
    }
  return auc;
}

static double
average_precision (const Curve *c)
{
  if (!c->pos || !c->neg)
    return NAN;
  double ap = 0, prev_r = 0;
  for (gsize i = 0; i < c->n; i++)
    {
      double r = (double) c->tp[i] / c->pos, p = (double) c->tp[i] / (c->tp[i] + c->fp[i]);
      ap += (r - prev_r) * p;
      prev_r = r;
    }
  return ap;
}

static double
eer (const Curve *c, double *threshold)
{
  if (threshold)
    *threshold = NAN;
  if (!c->pos || !c->neg)
    return NAN;
  /* from (FPR 0, FNR 1) at +∞ down the distinct scores until FNR ≤ FPR */
  double pf = 0, pn = 1;
  for (gsize i = 0; i < c->n; i++)
    {
      double f = (double) c->fp[i] / c->neg, m = 1.0 - (double) c->tp[i] / c->pos;
      if (m <= f)
        {
          double d0 = pn - pf, d1 = m - f;
          double t = d0 - d1 > 0 ? d0 / (d0 - d1) : 0;
          if (threshold)
            *threshold = c->score[i];
          return pf + t * (f - pf);
        }
      pf = f;
      pn = m;
    }
  return 1; /* not reached: the last point has FNR 0 */
}

static double
tpr_at_fpr (const Curve *c, double max_fpr)
{
  if (!c->pos || !c->neg)
    return NAN;
  double best = 0;
  for (gsize i = 0; i < c->n; i++)
    if ((double) c->fp[i] / c->neg <= max_fpr + 1e-12)
      best = MAX (best, (double) c->tp[i] / c->pos);
  return best;
}

double
dcr_metrics_roc_auc (const float *scores, const gint32 *labels, gsize n)
{
  Curve c;
  curve_init (&c, scores, labels, n);
  double v = roc_auc (&c);
  curve_clear (&c);
  return v;
}

double
dcr_metrics_average_precision (const float *scores, const gint32 *labels, gsize n)
{
  Curve c;
  curve_init (&c, scores, labels, n);
  double v = average_precision (&c);
  curve_clear (&c);
  return v;
}

double
dcr_metrics_eer (const float *scores, const gint32 *labels, gsize n, double *threshold)
{
  Curve c;
  curve_init (&c, scores, labels, n);
  double v = eer (&c, threshold);
  curve_clear (&c);
  return v;
}

double
dcr_metrics_tpr_at_fpr (const float *scores, const gint32 *labels, gsize n, double max_fpr)
{
  Curve c;
  curve_init (&c, scores, labels, n);
  double v = tpr_at_fpr (&c, max_fpr);
  curve_clear (&c);
  return v;
}

static void
compute (const float *scores, const gint32 *labels, const float *thresholds, gsize n, float threshold,
         DcrMetrics *out)
{
  Curve c;
  curve_init (&c, scores, labels, n);
  *out = (DcrMetrics) { 0 };
  out->n_pos = c.pos;
  out->n_neg = c.neg;
  out->auc = roc_auc (&c);
  out->ap = average_precision (&c);
  out->eer = eer (&c, &out->eer_threshold);
  out->tpr_at_fpr5 = tpr_at_fpr (&c, 0.05);
  curve_clear (&c);
  out->threshold = thresholds ? NAN : threshold;
  for (gsize i = 0; i < n; i++)
    {
      gboolean fake = scores[i] >= (thresholds ? thresholds[i] : threshold);
      if (labels[i])
        fake ? out->tp++ : out->fn++;
      else
        fake ? out->fp++ : out->tn++;
    }
  gsize total = out->tp + out->fp + out->tn + out->fn;
  out->acc = total ? (double) (out->tp + out->tn) / total : NAN;
}

void
dcr_metrics_compute (const float *scores, const gint32 *labels, gsize n, float threshold, DcrMetrics *out)
{
  compute (scores, labels, NULL, n, threshold, out);
}

void
dcr_metrics_compute_at (const float *scores, const gint32 *labels, const float *thresholds, gsize n,
                        DcrMetrics *out)
{
  compute (scores, labels, thresholds, n, NAN, out);
}

float
dcr_metrics_best_threshold (const float *scores, const gint32 *labels, gsize n, double *bal_acc)
{
  Curve c;
  curve_init (&c, scores, labels, n);
  float thr = 0.5f;
  double best = NAN;
  if (c.pos && c.neg)
    {
      /* calling nothing fake: TPR 0, TNR 1 */
      best = 0.5;
      thr = c.n ? nextafterf (c.score[0], INFINITY) : 0.5f;
      for (gsize i = 0; i < c.n; i++)
        {
          double b = ((double) c.tp[i] / c.pos + 1.0 - (double) c.fp[i] / c.neg) / 2;
          if (b > best)
            {
              best = b;
              thr = i + 1 < c.n ? (c.score[i] + c.score[i + 1]) / 2 : c.score[i];
              if (i + 1 < c.n && !(thr > c.score[i + 1]))
                thr = c.score[i]; /* adjacent floats: no midpoint between them */
            }
        }
    }
  curve_clear (&c);
  if (bal_acc)
    *bal_acc = best;
  return thr;
}

const char *
dcr_metrics_band_rule_name (DcrBandRule rule)
{
  return rule == DCR_BAND_MOST_CALLS ? "most-calls" : "first-break";
}

gboolean
dcr_metrics_band_rule_from_name (const char *name, DcrBandRule *rule)
{
  for (DcrBandRule r = DCR_BAND_FIRST_BREAK; r <= DCR_BAND_MOST_CALLS; r++)
    if (name && strcmp (name, dcr_metrics_band_rule_name (r)) == 0)
      {
        *rule = r;
        return TRUE;
      }
  return FALSE;
}

void
dcr_metrics_band (const float *scores, const gint32 *labels, gsize n, float threshold, DcrBandRule rule,
                  double min_precision, double min_half_width, float *lo, float *hi)
{
  Curve c;
  curve_init (&c, scores, labels, n);
  if (!c.pos || !c.neg)
    {
      /* one class only: nothing says where a verdict would be safe */
      curve_clear (&c);
      *lo = 0.0f;
      *hi = 1.0f;
      return;
    }
  /* Precision at equal prevalence: each class's counts as rates, so that
   * the band does not move with how many fakes the validation folders
   * happen to hold (a validation set with three fake families for one of
   * reals would otherwise buy "fake" calls cheap precision). */
  double wp = 1.0 / c.pos, wn = 1.0 / c.neg;
  /* down from the top: fakes called at ≥ score[i] keep their precision */
  double h = 1.0;
  for (gsize i = 0; i < c.n; i++)
    {
      if (c.tp[i] * wp / (c.tp[i] * wp + c.fp[i] * wn) < min_precision)
        {
          if (rule == DCR_BAND_FIRST_BREAK)
            break;
          continue;
        }
      h = i + 1 < c.n ? (c.score[i] + c.score[i + 1]) / 2.0 : c.score[i];
    }
  /* up from the bottom: reals called below a score keep theirs */
  double l = 0.0;
  gsize tn = 0, fn = 0;
  for (gssize i = (gssize) c.n - 1; i >= 0; i--)
    {
      gsize above_tp = i > 0 ? c.tp[i - 1] : 0, above_fp = i > 0 ? c.fp[i - 1] : 0;
      tn = c.neg - above_fp;
      fn = c.pos - above_tp;
      if (tn * wn / (tn * wn + fn * wp) < min_precision)
        {
          if (rule == DCR_BAND_FIRST_BREAK)
            break;
          continue;
        }
      l = i > 0 ? (c.score[i] + c.score[i - 1]) / 2.0 : c.score[i];
    }
  curve_clear (&c);
  h = MAX (h, threshold + min_half_width);
  l = MIN (l, threshold - min_half_width);
  *lo = (float) CLAMP (l, 0.0, threshold);
  *hi = (float) CLAMP (h, threshold, 1.0);
}

static void
by_group (const float *scores, const gint32 *labels, const gint32 *group, const float *thresholds, gsize n,
          guint n_groups, float threshold, DcrMetrics *out)
{
  g_autofree float *s = g_new (float, MAX (n, 1));
  g_autofree float *t = thresholds ? g_new (float, MAX (n, 1)) : NULL;
  g_autofree gint32 *y = g_new (gint32, MAX (n, 1));
  for (guint g = 0; g < n_groups; g++)
    {
      gsize m = 0;
      for (gsize i = 0; i < n; i++)
        if (!labels[i] || group[i] == (gint32) g)
          {
            s[m] = scores[i];
            if (t)
              t[m] = thresholds[i];
            y[m++] = labels[i];
          }
      compute (s, y, t, m, threshold, &out[g]);
    }
}

void
dcr_metrics_by_group (const float *scores, const gint32 *labels, const gint32 *group, gsize n, guint n_groups,
                      float threshold, DcrMetrics *out)
{
  by_group (scores, labels, group, NULL, n, n_groups, threshold, out);
}

void
dcr_metrics_by_group_at (const float *scores, const gint32 *labels, const gint32 *group, const float *thresholds,
                         gsize n, guint n_groups, DcrMetrics *out)
{
  by_group (scores, labels, group, thresholds, n, n_groups, NAN, out);
}

struct _DcrManifest {
  GPtrArray *generators;
  GHashTable *by_path;      /* path → index + 1 */
  GHashTable *by_basename;  /* basename → index + 1, or 0 when ambiguous */
  GPtrArray *columns;       /* header names, lower case, trimmed */
  GPtrArray *rows;          /* of GPtrArray of trimmed fields */
  GHashTable *row_by_path;  /* path → row + 1 */
  GHashTable *row_by_basename; /* basename → row + 1, or 0 when several rows have it */
};

void
dcr_manifest_free (DcrManifest *m)
{
  if (!m)
    return;
  g_ptr_array_unref (m->generators);
  g_hash_table_unref (m->by_path);
  g_hash_table_unref (m->by_basename);
  g_clear_pointer (&m->columns, g_ptr_array_unref);
  g_clear_pointer (&m->rows, g_ptr_array_unref);
  g_clear_pointer (&m->row_by_path, g_hash_table_unref);
  g_clear_pointer (&m->row_by_basename, g_hash_table_unref);
  g_free (m);
}

/* One CSV record from *p (RFC 4180 quoting); NULL at the end of text. */
static GPtrArray *
csv_record (const char **p, const char *end)
{
  if (*p >= end)
    return NULL;
  GPtrArray *fields = g_ptr_array_new_with_free_func (g_free);
  GString *f = g_string_new (NULL);
  gboolean quoted = FALSE;
  const char *c = *p;
  for (; c < end; c++)
    {
      if (quoted)
        {
          if (*c == '"' && c + 1 < end && c[1] == '"')
            g_string_append_c (f, *c++);
          else if (*c == '"')
            quoted = FALSE;
          else
            g_string_append_c (f, *c);
        }
      else if (*c == '"')
        quoted = TRUE;
      else if (*c == ',')
        {
          g_ptr_array_add (fields, g_string_free (f, FALSE));
          f = g_string_new (NULL);
        }
      else if (*c == '\n')
        {
          c++;
          break;
        }
      else if (*c != '\r')
        g_string_append_c (f, *c);
    }
  g_ptr_array_add (fields, g_string_free (f, FALSE));
  *p = c;
  return fields;
}

DcrManifest *
dcr_manifest_parse (const char *text, gsize len, const char *origin, GError **error)
{
  const char *p = text, *end = text + len;
  if (len >= 3 && memcmp (p, "\xEF\xBB\xBF", 3) == 0)
    p += 3;
  g_autoptr (GPtrArray) header = csv_record (&p, end);
  gint fcol = -1, gcol = -1;
  g_autoptr (GPtrArray) columns = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; header && i < header->len; i++)
    {
      char *name = g_strstrip (g_ascii_strdown (header->pdata[i], -1));
      g_ptr_array_add (columns, name);
      if (g_str_equal (name, "file"))
        fcol = (gint) i;
      else if (g_str_equal (name, "generator"))
        gcol = (gint) i;
    }
  if (fcol < 0 || gcol < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "%s: the first row must name the columns, including “file” and “generator”", origin);
      return NULL;
    }
  DcrManifest *m = g_new0 (DcrManifest, 1);
  m->generators = g_ptr_array_new_with_free_func (g_free);
  m->by_path = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  m->by_basename = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  m->columns = g_steal_pointer (&columns);
  m->rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  m->row_by_path = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  m->row_by_basename = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) gen_index = g_hash_table_new (g_str_hash, g_str_equal);
  guint line = 1;
  for (GPtrArray *rec; (rec = csv_record (&p, end)); g_ptr_array_unref (rec))
    {
      line++;
      if (rec->len == 1 && !*g_strstrip ((char *) rec->pdata[0]))
        continue;
      if ((gint) rec->len <= MAX (fcol, gcol))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s:%u: %u columns where the header has %u",
                       origin, line, rec->len, header->len);
          g_ptr_array_unref (rec);
          dcr_manifest_free (m);
          return NULL;
        }
      const char *file = g_strstrip ((char *) rec->pdata[fcol]), *gen = g_strstrip ((char *) rec->pdata[gcol]);
      if (!*file || !*gen)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s:%u: empty file or generator", origin, line);
          g_ptr_array_unref (rec);
          dcr_manifest_free (m);
          return NULL;
        }
      gpointer v;
      if (!g_hash_table_lookup_extended (gen_index, gen, NULL, &v))
        {
          g_ptr_array_add (m->generators, g_strdup (gen));
          v = GUINT_TO_POINTER (m->generators->len);
          g_hash_table_insert (gen_index, m->generators->pdata[m->generators->len - 1], v);
        }
      g_hash_table_insert (m->by_path, g_strdup (file), v);
      g_autofree char *base = g_path_get_basename (file);
      gpointer old;
      if (g_hash_table_lookup_extended (m->by_basename, base, NULL, &old) && old != v)
        v = NULL;
      gboolean seen = g_hash_table_contains (m->row_by_basename, base);
      g_hash_table_insert (m->row_by_basename, g_strdup (base), seen ? NULL : GUINT_TO_POINTER (m->rows->len + 1));
      g_hash_table_insert (m->by_basename, g_steal_pointer (&base), v);
      g_hash_table_insert (m->row_by_path, g_strdup (file), GUINT_TO_POINTER (m->rows->len + 1));
      for (guint i = 0; i < rec->len; i++)
        g_strstrip ((char *) rec->pdata[i]);
      g_ptr_array_add (m->rows, g_ptr_array_ref (rec));
    }
  return m;
}

DcrManifest *
dcr_manifest_load (const char *path, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &text, &len, error))
    return NULL;
  return dcr_manifest_parse (text, len, path, error);
}

guint
dcr_manifest_n_generators (const DcrManifest *m)
{
  return m->generators->len;
}

const char *
dcr_manifest_generator (const DcrManifest *m, guint i)
{
  return m->generators->pdata[i];
}

gint32
dcr_manifest_lookup (const DcrManifest *m, const char *file)
{
  gpointer v;
  if (g_hash_table_lookup_extended (m->by_path, file, NULL, &v))
    return (gint32) GPOINTER_TO_UINT (v) - 1;
  g_autofree char *base = g_path_get_basename (file);
  if (g_hash_table_lookup_extended (m->by_basename, base, NULL, &v))
    return (gint32) GPOINTER_TO_UINT (v) - 1;
  return -1;
}

gint
dcr_manifest_column (const DcrManifest *m, const char *name)
{
  g_autofree char *want = g_strstrip (g_ascii_strdown (name, -1));
  for (guint i = 0; i < m->columns->len; i++)
    if (g_str_equal (m->columns->pdata[i], want))
      return (gint) i;
  return -1;
}

const char *
dcr_manifest_value (const DcrManifest *m, const char *file, gint column)
{
  g_return_val_if_fail (column >= 0, NULL);
  gpointer v = g_hash_table_lookup (m->row_by_path, file);
  if (!v)
    {
      g_autofree char *base = g_path_get_basename (file);
      v = g_hash_table_lookup (m->row_by_basename, base);
    }
  if (!v)
    return NULL;
  GPtrArray *row = m->rows->pdata[GPOINTER_TO_UINT (v) - 1];
  return (guint) column < row->len ? row->pdata[column] : "";
}
