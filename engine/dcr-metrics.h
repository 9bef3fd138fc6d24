/* dcr-metrics.h — detection metrics over scores (higher = more likely
 * fake) and labels (1 fake, 0 real), defined as scikit-learn defines them,
 * plus the two decisions training takes on a validation split: the
 * threshold and the inconclusive band around it. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  gsize n_pos, n_neg;       /* fakes, reals */
  double auc;               /* ROC AUC (trapezoids over the ROC points: ties count half) */
  double ap;                /* average precision, Σ (Rₙ − Rₙ₋₁)·Pₙ over distinct thresholds */
  double eer;               /* equal error rate, FPR = FNR interpolated between ROC points */
  double eer_threshold;     /* the score where the ROC crosses it */
  double tpr_at_fpr5;       /* the best TPR with FPR ≤ 5 % (no interpolation) */
  float threshold;          /* what acc and the confusion matrix use: fake when score ≥ threshold
                             * (NaN: a threshold per sample, the _at functions) */
  double acc;
  gsize tp, fp, tn, fn;
} DcrMetrics;

/* Everything at once; AUC, AP, EER are NaN when a class is missing. */
void dcr_metrics_compute (const float *scores, const gint32 *labels, gsize n, float threshold, DcrMetrics *out);
/* The same with a threshold per sample (e.g. a model's JPEG decision for its
 * JPEG files): the confusion matrix and acc count sample i as fake when
 * scores[i] ≥ thresholds[i]. */
void dcr_metrics_compute_at (const float *scores, const gint32 *labels, const float *thresholds, gsize n,
                             DcrMetrics *out);
double dcr_metrics_roc_auc (const float *scores, const gint32 *labels, gsize n);
double dcr_metrics_average_precision (const float *scores, const gint32 *labels, gsize n);
double dcr_metrics_eer (const float *scores, const gint32 *labels, gsize n, double *threshold);
double dcr_metrics_tpr_at_fpr (const float *scores, const gint32 *labels, gsize n, double max_fpr);

/* The threshold of the highest balanced accuracy ((TPR + TNR) / 2): the
 * midpoint between the lowest score called fake and the next lower score,
 * so the split generalises rather than sits on a sample. *bal_acc may be
 * NULL. 0.5 when a class is missing. */
float dcr_metrics_best_threshold (const float *scores, const gint32 *labels, gsize n, double *bal_acc);

/* How dcr_metrics_band finds where calls keep their precision. */
typedef enum {
  /* scanning down from the top score (up from the lowest), the band's edge
   * is the last cut before the first whose calls fall under the precision:
   * every cut above hi keeps it, down to the highest scores alone */
  DCR_BAND_FIRST_BREAK,
  /* the lowest cut whose "fake" calls, all of them together, keep the
   * precision (the highest for "real" calls): the most calls at that
   * precision, as a precision-recall curve reads it; one high-scoring real
   * among the top scores no longer sets the edge by itself */
  DCR_BAND_MOST_CALLS,
} DcrBandRule;

/* The inconclusive band around `threshold`: scores at or above hi are the
 * region where "fake" calls keep a precision ≥ min_precision, scores below
 * lo where "real" calls keep it, the edges found under `rule`; in between
 * the validation data could not tell. Precision is taken at equal
 * prevalence (TPR / (TPR + FPR) for "fake" calls, TNR / (TNR + FNR) for
 * "real" ones), so the band does not depend on the ratio of fakes to reals
 * in the data. The band is at least ±min_half_width around the threshold
 * and inside [0, 1]; with one class missing it is all of [0, 1]. */
void dcr_metrics_band (const float *scores, const gint32 *labels, gsize n, float threshold, DcrBandRule rule,
                       double min_precision, double min_half_width, float *lo, float *hi);
/* The rule's name in a model's training record and on dcr train's command
 * line ("first-break", "most-calls"); dcr_metrics_band_rule_from_name gives
 * FALSE for any other name. */
const char *dcr_metrics_band_rule_name (DcrBandRule rule);
gboolean dcr_metrics_band_rule_from_name (const char *name, DcrBandRule *rule);

/* Per-generator breakdown: each generator's fakes against ALL reals, so
 * every row answers "how well are this generator's images told from real
 * ones". group[i] is the generator index of fake i (ignored for reals; a
 * fake with a negative group counts in no row). out[n_groups]. */
void dcr_metrics_by_group (const float *scores, const gint32 *labels, const gint32 *group, gsize n, guint n_groups,
                           float threshold, DcrMetrics *out);
void dcr_metrics_by_group_at (const float *scores, const gint32 *labels, const gint32 *group,
                              const float *thresholds, gsize n, guint n_groups, DcrMetrics *out);

/* A manifest CSV naming the generator of each file: a header row with the
 * columns `file` and `generator` (any order, other columns kept), one row
 * per file; quoted fields with "" escapes are accepted. */
typedef struct _DcrManifest DcrManifest;

DcrManifest *dcr_manifest_load (const char *path, GError **error);
DcrManifest *dcr_manifest_parse (const char *text, gsize len, const char *origin, GError **error);
void dcr_manifest_free (DcrManifest *m);
/* The generators in order of first appearance. */
guint dcr_manifest_n_generators (const DcrManifest *m);
const char *dcr_manifest_generator (const DcrManifest *m, guint i);
/* The generator index of file, matched by its path as written in the
 * manifest, then by basename (unique basenames only: an ambiguous basename
 * matches nothing); -1 when not listed. */
gint32 dcr_manifest_lookup (const DcrManifest *m, const char *file);
/* Every column is kept: the index of the header's column `name` (compared
 * case-insensitively, spaces trimmed), or -1 when there is none. */
gint dcr_manifest_column (const DcrManifest *m, const char *name);
/* file's value in that column (spaces trimmed; "" when the field is empty
 * or the row shorter), matched as dcr_manifest_lookup matches files except
 * that a basename must be unique among the rows; NULL when not listed. */
const char *dcr_manifest_value (const DcrManifest *m, const char *file, gint column);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrManifest, dcr_manifest_free)

G_END_DECLS
