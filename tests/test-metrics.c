/* test-metrics.c — detection metrics against hand-computed values (the
 * scikit-learn documentation's four-sample example, ties, perfect and
 * inverted rankings, a missing class), the threshold of the best balanced
 * accuracy and the inconclusive band. */
#include "dcr-metrics.h"

#include <gio/gio.h>
#include <math.h>
#include <string.h>

#define EPS 1e-9

/* sklearn: roc_auc_score = 0.75, average_precision_score = 0.8333…,
 * roc_curve fpr [0, 0, .5, .5, 1], tpr [0, .5, .5, 1, 1] */
static const float ex_s[] = { 0.1f, 0.4f, 0.35f, 0.8f };
static const gint32 ex_y[] = { 0, 0, 1, 1 };

static void
test_sklearn_example (void)
{
  DcrMetrics m;
  dcr_metrics_compute (ex_s, ex_y, 4, 0.5f, &m);
  g_assert_cmpuint (m.n_pos, ==, 2);
  g_assert_cmpuint (m.n_neg, ==, 2);
  g_assert_cmpfloat_with_epsilon (m.auc, 0.75, EPS);
  g_assert_cmpfloat_with_epsilon (m.ap, 5.0 / 6.0, EPS);
  /* (FPR, FNR) goes (0, 1) → (0, .5) → (.5, .5): equal at the score 0.4 */
  g_assert_cmpfloat_with_epsilon (m.eer, 0.5, EPS);
  g_assert_cmpfloat_with_epsilon (m.eer_threshold, 0.4, 1e-7);
  g_assert_cmpfloat_with_epsilon (m.tpr_at_fpr5, 0.5, EPS);
  /* at 0.5 only 0.8 is called fake */
  g_assert_cmpuint (m.tp, ==, 1);
  g_assert_cmpuint (m.fn, ==, 1);
  g_assert_cmpuint (m.tn, ==, 2);
  g_assert_cmpuint (m.fp, ==, 0);
  g_assert_cmpfloat_with_epsilon (m.acc, 0.75, EPS);
}

static void
test_ties_and_extremes (void)
{
  const float tied[] = { 0.5f, 0.5f, 0.5f, 0.5f };
  const gint32 y[] = { 0, 1, 0, 1 };
  g_assert_cmpfloat_with_epsilon (dcr_metrics_roc_auc (tied, y, 4), 0.5, EPS);
  g_assert_cmpfloat_with_epsilon (dcr_metrics_average_precision (tied, y, 4), 0.5, EPS);
  g_assert_cmpfloat_with_epsilon (dcr_metrics_eer (tied, y, 4, NULL), 0.5, EPS);

  /* one tie across the classes counts half: pairs (p, n) = 4, one tied */
  const float half[] = { 0.2f, 0.6f, 0.6f, 0.9f };
  const gint32 hy[] = { 0, 0, 1, 1 };
  g_assert_cmpfloat_with_epsilon (dcr_metrics_roc_auc (half, hy, 4), 3.5 / 4, EPS);

  const float perfect[] = { 0.1f, 0.2f, 0.3f, 0.7f, 0.9f };
  const gint32 py[] = { 0, 0, 0, 1, 1 };
  DcrMetrics m;
  dcr_metrics_compute (perfect, py, 5, 0.5f, &m);
  g_assert_cmpfloat_with_epsilon (m.auc, 1, EPS);
  g_assert_cmpfloat_with_epsilon (m.ap, 1, EPS);
  g_assert_cmpfloat_with_epsilon (m.eer, 0, EPS);
  g_assert_cmpfloat_with_epsilon (m.tpr_at_fpr5, 1, EPS);
  g_assert_cmpfloat_with_epsilon (m.acc, 1, EPS);

  const gint32 inv[] = { 1, 1, 1, 0, 0 };
  dcr_metrics_compute (perfect, inv, 5, 0.5f, &m);
  g_assert_cmpfloat_with_epsilon (m.auc, 0, EPS);
  g_assert_cmpfloat_with_epsilon (m.eer, 1, EPS);
  g_assert_cmpfloat_with_epsilon (m.tpr_at_fpr5, 0, EPS);
  /* AP: precisions 0, 0, 1/3, 2/4, 3/5 at recalls 0, 0, 1/3, 2/3, 1 */
  g_assert_cmpfloat_with_epsilon (m.ap, (1.0 / 3 + 2.0 / 4 + 3.0 / 5) / 3, EPS);

  /* EER interpolated between ROC points: (FPR, FNR) (0, 1) → (0, 2/3) →
   * (1/2, 2/3) → (1/2, 1/3) → (1/2, 0) → … crosses between 3rd and 4th */
  const float s2[] = { 0.9f, 0.8f, 0.7f, 0.6f, 0.5f };
  const gint32 y2[] = { 1, 0, 1, 1, 0 };
  g_assert_cmpfloat_with_epsilon (dcr_metrics_eer (s2, y2, 5, NULL), 0.5, EPS);
  /* AUC by hand: positives 0.9, 0.7, 0.6 against negatives 0.8, 0.5 → 4 of 6 pairs */
  g_assert_cmpfloat_with_epsilon (dcr_metrics_roc_auc (s2, y2, 5), 4.0 / 6, EPS);
  /* TPR with FPR ≤ 5 %: only the first point (FPR 0) — TPR 1/3 */
  g_assert_cmpfloat_with_epsilon (dcr_metrics_tpr_at_fpr (s2, y2, 5, 0.05), 1.0 / 3, EPS);

  const gint32 one_class[] = { 1, 1, 1, 1 };
  dcr_metrics_compute (tied, one_class, 4, 0.5f, &m);
  g_assert_true (isnan (m.auc));
  g_assert_true (isnan (m.ap));
  g_assert_true (isnan (m.eer));
  g_assert_cmpfloat_with_epsilon (m.acc, 1, EPS);
}

static void
test_threshold_and_band (void)
{
  double bal;
  /* balanced accuracy 0.75 first reached calling only 0.8 fake: the
   * midpoint to the next score, 0.4 */
  float thr = dcr_metrics_best_threshold (ex_s, ex_y, 4, &bal);
  g_assert_cmpfloat_with_epsilon (bal, 0.75, EPS);
  g_assert_cmpfloat_with_epsilon (thr, 0.6, 1e-6);
  float lo, hi;
  /* fakes from the top: 0.8 precise, adding 0.4 (real) drops to ½ → hi = 0.6,
   * widened to thr + 0.05; reals from the bottom: 0.1 precise, adding 0.35
   * (fake) drops to ½ → lo = (0.1 + 0.35)/2 */
  dcr_metrics_band (ex_s, ex_y, 4, thr, DCR_BAND_FIRST_BREAK, 0.9, 0.05, &lo, &hi);
  g_assert_cmpfloat_with_epsilon (lo, 0.225, 1e-6);
  g_assert_cmpfloat_with_epsilon (hi, 0.65, 1e-6);

  /* separable scores: the band is the minimum width around the threshold */
  const float s[] = { 0.05f, 0.1f, 0.2f, 0.8f, 0.9f, 0.95f };
  const gint32 y[] = { 0, 0, 0, 1, 1, 1 };
  thr = dcr_metrics_best_threshold (s, y, 6, &bal);
  g_assert_cmpfloat_with_epsilon (bal, 1, EPS);
  g_assert_cmpfloat_with_epsilon (thr, 0.5, 1e-6);
  dcr_metrics_band (s, y, 6, thr, DCR_BAND_FIRST_BREAK, 0.9, 0.05, &lo, &hi);
  g_assert_cmpfloat_with_epsilon (lo, 0.45, 1e-6);
  g_assert_cmpfloat_with_epsilon (hi, 0.55, 1e-6);

  /* one class only: 0.5, and no score is safe to call */
  const gint32 ones[] = { 1, 1, 1, 1, 1, 1 };
  g_assert_cmpfloat (dcr_metrics_best_threshold (s, ones, 6, NULL), ==, 0.5f);
  dcr_metrics_band (s, ones, 6, 0.5f, DCR_BAND_FIRST_BREAK, 0.9, 0.05, &lo, &hi);
  g_assert_cmpfloat (lo, ==, 0.0f);
  g_assert_cmpfloat (hi, ==, 1.0f);

  /* precision at equal prevalence: nine fakes on top, then one of the two
   * reals. Counted as they come, the top ten are 9/10 = 0.9 precise and the
   * band would stop at its minimum (0.55); as rates, calling the real at
   * 0.905 fake costs half the reals against all the fakes, 1/(1 + 0.5) —
   * so "fake" starts above it, at (0.91 + 0.905)/2. */
  const float sk[] = { 0.99f, 0.98f, 0.97f, 0.96f, 0.95f, 0.94f, 0.93f, 0.92f, 0.91f, 0.905f, 0.1f };
  const gint32 yk[] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 };
  dcr_metrics_band (sk, yk, 11, 0.5f, DCR_BAND_FIRST_BREAK, 0.9, 0.05, &lo, &hi);
  g_assert_cmpfloat_with_epsilon (lo, 0.45, 1e-6);
  g_assert_cmpfloat_with_epsilon (hi, 0.9075, 1e-6);

  /* one real above every fake: scanning down from it, the first cut is
   * wrong, so first-break calls nothing fake; most-calls takes the lowest
   * cut whose fake calls together keep 0.9 — all ten fakes and the real,
   * 10/(10 + 1) at equal prevalence (ten reals) — between 0.89 and the
   * highest of the other reals, 0.13 */
  const float st[] = { 0.99f, 0.98f, 0.97f, 0.96f, 0.95f, 0.94f, 0.93f, 0.92f, 0.91f, 0.9f, 0.89f,
                       0.13f, 0.12f, 0.11f, 0.1f, 0.09f, 0.08f, 0.07f, 0.06f, 0.05f };
  const gint32 yt[] = { 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
  dcr_metrics_band (st, yt, 20, 0.3f, DCR_BAND_FIRST_BREAK, 0.9, 0.05, &lo, &hi);
  g_assert_cmpfloat (hi, ==, 1.0f);
  g_assert_cmpfloat_with_epsilon (lo, 0.25, 1e-6);
  dcr_metrics_band (st, yt, 20, 0.3f, DCR_BAND_MOST_CALLS, 0.9, 0.05, &lo, &hi);
  g_assert_cmpfloat_with_epsilon (hi, 0.51, 1e-6);
  g_assert_cmpfloat_with_epsilon (lo, 0.25, 1e-6);
  /* the same from below: a fake under every real, and the reals' edge */
  float sb[20];
  gint32 yb[20];
  for (int i = 0; i < 20; i++)
    {
      sb[i] = 1.0f - st[i];
      yb[i] = !yt[i];
    }
  dcr_metrics_band (sb, yb, 20, 0.7f, DCR_BAND_FIRST_BREAK, 0.9, 0.05, &lo, &hi);
  g_assert_cmpfloat (lo, ==, 0.0f);
  g_assert_cmpfloat_with_epsilon (hi, 0.75, 1e-6);
  dcr_metrics_band (sb, yb, 20, 0.7f, DCR_BAND_MOST_CALLS, 0.9, 0.05, &lo, &hi);
  g_assert_cmpfloat_with_epsilon (lo, 0.49, 1e-6);
  g_assert_cmpfloat_with_epsilon (hi, 0.75, 1e-6);

  DcrBandRule rule = DCR_BAND_FIRST_BREAK;
  g_assert_true (dcr_metrics_band_rule_from_name ("most-calls", &rule));
  g_assert_cmpint (rule, ==, DCR_BAND_MOST_CALLS);
  g_assert_cmpstr (dcr_metrics_band_rule_name (rule), ==, "most-calls");
  g_assert_true (dcr_metrics_band_rule_from_name ("first-break", &rule));
  g_assert_cmpint (rule, ==, DCR_BAND_FIRST_BREAK);
  g_assert_false (dcr_metrics_band_rule_from_name ("lowest", &rule));
  g_assert_false (dcr_metrics_band_rule_from_name (NULL, &rule));
  g_assert_cmpint (rule, ==, DCR_BAND_FIRST_BREAK);
}

/* Two generators, both against all three reals: "good" is ranked above every
 * real, "bad" below every real; the unlisted fake (group -1) is in no row. */
static void
test_by_group (void)
{
  const float s[] = { 0.3f, 0.9f, 0.4f, 0.1f, 0.5f, 0.8f, 0.05f, 0.95f };
  const gint32 y[] = { 0, 1, 0, 1, 0, 1, 1, 1 };
  const gint32 g[] = { 7, 0, 7, 1, 7, 0, 1, -1 };
  DcrMetrics m[2];
  dcr_metrics_by_group (s, y, g, G_N_ELEMENTS (s), 2, 0.45f, m);
  g_assert_cmpuint (m[0].n_neg, ==, 3);
  g_assert_cmpuint (m[0].n_pos, ==, 2);
  g_assert_cmpfloat_with_epsilon (m[0].auc, 1.0, EPS);
  g_assert_cmpuint (m[0].tp, ==, 2);
  g_assert_cmpuint (m[0].fp, ==, 1); /* the real at 0.5 */
  g_assert_cmpfloat_with_epsilon (m[0].acc, 4.0 / 5.0, EPS);
  g_assert_cmpuint (m[1].n_neg, ==, 3);
  g_assert_cmpuint (m[1].n_pos, ==, 2);
  g_assert_cmpfloat_with_epsilon (m[1].auc, 0.0, EPS);
  g_assert_cmpuint (m[1].fn, ==, 2);

  /* a threshold per sample (a JPEG decision for some files): the real at 0.5
   * and the fake at 0.8 now meet 0.6, the rest 0.45; AUC does not change */
  const float t[] = { 0.45f, 0.45f, 0.45f, 0.45f, 0.6f, 0.6f, 0.45f, 0.45f };
  dcr_metrics_by_group_at (s, y, g, t, G_N_ELEMENTS (s), 2, m);
  g_assert_true (isnan (m[0].threshold));
  g_assert_cmpfloat_with_epsilon (m[0].auc, 1.0, EPS);
  g_assert_cmpuint (m[0].tp, ==, 2);
  g_assert_cmpuint (m[0].fp, ==, 0);
  g_assert_cmpfloat_with_epsilon (m[0].acc, 1.0, EPS);
  const float t2[] = { 0.45f, 0.45f, 0.45f, 0.45f, 0.6f, 0.85f, 0.45f, 0.45f };
  DcrMetrics all;
  dcr_metrics_compute_at (s, y, t2, G_N_ELEMENTS (s), &all);
  g_assert_cmpuint (all.tp, ==, 2); /* 0.9, 0.95; 0.8 misses its 0.85 */
  g_assert_cmpuint (all.fn, ==, 3);
  g_assert_cmpuint (all.fp, ==, 0);
  g_assert_cmpuint (all.tn, ==, 3);
  g_assert_cmpfloat_with_epsilon (all.acc, 5.0 / 8.0, EPS);
  DcrMetrics one;
  dcr_metrics_compute (s, y, G_N_ELEMENTS (s), 0.45f, &one);
  g_assert_cmpfloat_with_epsilon (all.auc, one.auc, EPS);
}

static void
test_manifest (void)
{
  const char csv[] = "\xEF\xBB\xBFnote,Generator,file\r\n"
                     "x,sd15,fake/sd/a.png\r\n"
                     "\"y, z\",\"mid\"\"journey\",fake/mj/b.png\n"
                     "\n"
                     ",sd15,/abs/c.png\n"
                     ",mj2,other/a.png\n";
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrManifest) m = dcr_manifest_parse (csv, sizeof csv - 1, "t.csv", &err);
  g_assert_no_error (err);
  g_assert_cmpuint (dcr_manifest_n_generators (m), ==, 3);
  g_assert_cmpstr (dcr_manifest_generator (m, 0), ==, "sd15");
  g_assert_cmpstr (dcr_manifest_generator (m, 1), ==, "mid\"journey");
  g_assert_cmpstr (dcr_manifest_generator (m, 2), ==, "mj2");
  g_assert_cmpint (dcr_manifest_lookup (m, "fake/sd/a.png"), ==, 0);
  g_assert_cmpint (dcr_manifest_lookup (m, "other/a.png"), ==, 2);
  /* a.png is listed under two generators: its basename alone matches nothing */
  g_assert_cmpint (dcr_manifest_lookup (m, "/elsewhere/a.png"), ==, -1);
  g_assert_cmpint (dcr_manifest_lookup (m, "/data/x/b.png"), ==, 1);
  g_assert_cmpint (dcr_manifest_lookup (m, "c.png"), ==, 0);
  g_assert_cmpint (dcr_manifest_lookup (m, "d.png"), ==, -1);
  /* other columns, by name, matched as files are */
  g_assert_cmpint (dcr_manifest_column (m, " NOTE "), ==, 0);
  g_assert_cmpint (dcr_manifest_column (m, "file"), ==, 2);
  g_assert_cmpint (dcr_manifest_column (m, "partial"), ==, -1);
  g_assert_cmpstr (dcr_manifest_value (m, "fake/sd/a.png", 0), ==, "x");
  g_assert_cmpstr (dcr_manifest_value (m, "/data/x/b.png", 0), ==, "y, z");
  g_assert_cmpstr (dcr_manifest_value (m, "/data/x/b.png", 1), ==, "mid\"journey");
  g_assert_cmpstr (dcr_manifest_value (m, "c.png", 0), ==, "");
  g_assert_null (dcr_manifest_value (m, "/elsewhere/a.png", 0));
  g_assert_null (dcr_manifest_value (m, "d.png", 0));
  g_assert_cmpstr (dcr_manifest_value (m, "c.png", 7), ==, "");

  g_autoptr (DcrManifest) bad = dcr_manifest_parse ("path,generator\na,b\n", 20, "u.csv", &err);
  g_assert_null (bad);
  g_assert_error (err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_clear_error (&err);
  g_autoptr (DcrManifest) shortrow = dcr_manifest_parse ("file,generator\na\n", 17, "v.csv", &err);
  g_assert_null (shortrow);
  g_assert_nonnull (strstr (err->message, "v.csv:2"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/metrics/sklearn-example", test_sklearn_example);
  g_test_add_func ("/metrics/ties-and-extremes", test_ties_and_extremes);
  g_test_add_func ("/metrics/threshold-and-band", test_threshold_and_band);
  g_test_add_func ("/metrics/by-group", test_by_group);
  g_test_add_func ("/metrics/manifest", test_manifest);
  return g_test_run ();
}
