/* dcr-metrics.c — ROC / precision-recall metrics, threshold and band, on
 * scores sorted once: every metric walks the distinct scores from the top,
 * as scikit-learn's roc_curve and precision_recall_curve do. */
#include "dcr-metrics.h"

#include <math.h>
#include <stdlib.h>

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

void
dcr_metrics_compute (const float *scores, const gint32 *labels, gsize n, float threshold, DcrMetrics *out)
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
  out->threshold = threshold;
  for (gsize i = 0; i < n; i++)
    {
      gboolean fake = scores[i] >= threshold;
      if (labels[i])
        fake ? out->tp++ : out->fn++;
      else
        fake ? out->fp++ : out->tn++;
    }
  gsize total = out->tp + out->fp + out->tn + out->fn;
  out->acc = total ? (double) (out->tp + out->tn) / total : NAN;
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

void
dcr_metrics_band (const float *scores, const gint32 *labels, gsize n, float threshold, double min_precision,
                  double min_half_width, float *lo, float *hi)
{
  Curve c;
  curve_init (&c, scores, labels, n);
  /* down from the top: fakes called at ≥ score[i] keep their precision */
  double h = 1.0;
  for (gsize i = 0; i < c.n; i++)
    {
      if ((double) c.tp[i] / (c.tp[i] + c.fp[i]) < min_precision)
        break;
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
      if ((double) tn / (tn + fn) < min_precision)
        break;
      l = i > 0 ? (c.score[i] + c.score[i - 1]) / 2.0 : c.score[i];
    }
  curve_clear (&c);
  h = MAX (h, threshold + min_half_width);
  l = MIN (l, threshold - min_half_width);
  *lo = (float) CLAMP (l, 0.0, threshold);
  *hi = (float) CLAMP (h, threshold, 1.0);
}
