/* test-bank-curate.c — near-duplicates and k-center pruning: the GPU
 * (retrieval top-k; GEMM per pick) against the CPU references, in f32 and
 * f16, whole and split in chunks; groups and which members go (pinned ones
 * stay); a group larger than top-k still whole; cancellation; and both over
 * a bank file (disabled prototypes left out, pinned ones kept). */
#include "dcr-test-tensors.h"
#include "dcr-bank-curate.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static gboolean
skip_dtype (DcrDtype dt)
{
  if (dt == DCR_F16 && !dcr_test_have_f16 ())
    {
      g_test_message ("no 16-bit storage: f16 skipped");
      return TRUE;
    }
  return FALSE;
}

/* n_base random rows, then for each group size g in sizes, g noisy copies
 * (relative noise 0.03: cosine ≈ 0.999 to their base and to each other) of
 * the next base row — far from the 0.98 threshold either way. */
static float *
make_rows (guint n_base, const guint *sizes, guint n_sizes, guint dim, gsize *n_out)
{
  gsize n = n_base;
  for (guint i = 0; i < n_sizes; i++)
    n += sizes[i];
  float *x = dcr_test_random_floats (n * dim, 11, -1, 1);
  g_autofree float *noise = dcr_test_random_floats (n * dim, 12, -0.03f, 0.03f);
  gsize row = n_base;
  for (guint g = 0; g < n_sizes; g++)
    for (guint c = 0; c < sizes[g]; c++, row++)
      for (guint d = 0; d < dim; d++)
        x[row * dim + d] = x[(gsize) g * dim + d] * (1 + noise[row * dim + d]);
  *n_out = n;
  return x;
}

static void
assert_same_pairs (GArray *got, GArray *want, double tol)
{
  g_assert_cmpuint (got->len, ==, want->len);
  for (guint i = 0; i < got->len; i++)
    {
      DcrDuplicatePair *g = &g_array_index (got, DcrDuplicatePair, i);
      DcrDuplicatePair *w = &g_array_index (want, DcrDuplicatePair, i);
      g_assert_cmpint (g->a, ==, w->a);
      g_assert_cmpint (g->b, ==, w->b);
      g_assert_cmpfloat_with_epsilon (g->similarity, w->similarity, tol);
    }
}

static void
check_duplicates (DcrDtype dt, gsize max_chunk_rows)
{
  if (skip_dtype (dt))
    return;
  enum { DIM = 40 };
  const guint sizes[] = { 2, 3, 4, 2, 1 };
  gsize n = 0;
  g_autofree float *x = make_rows (150, sizes, G_N_ELEMENTS (sizes), DIM, &n);
  /* ids that are not positions, so a mix-up shows */
  g_autofree gint64 *ids = g_new (gint64, n);
  for (gsize i = 0; i < n; i++)
    ids[i] = 10 + 3 * (gint64) i;
  g_autoptr (GArray) want = dcr_ref_find_duplicates (x, ids, n, DIM, 0.98f);
  /* base g with its copies: C(size + 1, 2) pairs per group */
  guint expect = 0;
  for (guint g = 0; g < G_N_ELEMENTS (sizes); g++)
    expect += (sizes[g] + 1) * sizes[g] / 2;
  g_assert_cmpuint (want->len, ==, expect);

  g_autoptr (GError) err = NULL;
  g_autoptr (GArray) got = NULL;
  DcrCurateOptions opts = { .dtype = dt, .max_chunk_rows = max_chunk_rows };
  g_assert_true (dcr_find_duplicates (dcr_test_context (), x, ids, n, DIM, 0.98f, &opts, &got, &err));
  g_assert_no_error (err);
  assert_same_pairs (got, want, dt == DCR_F16 ? 2e-3 : 1e-5);

  g_autoptr (GPtrArray) groups = dcr_duplicate_groups ((DcrDuplicatePair *) got->data, got->len);
  g_assert_cmpuint (groups->len, ==, G_N_ELEMENTS (sizes));
  for (guint g = 0; g < groups->len; g++)
    {
      GArray *grp = groups->pdata[g];
      g_assert_cmpuint (grp->len, ==, sizes[g] + 1);
      g_assert_cmpint (g_array_index (grp, gint64, 0), ==, ids[g]);
    }
  dcr_test_assert_no_validation_errors ();
}

static void
test_duplicates_f32 (void)
{
  check_duplicates (DCR_F32, 0);
}

static void
test_duplicates_f16 (void)
{
  check_duplicates (DCR_F16, 0);
}

static void
test_duplicates_chunks (void)
{
  check_duplicates (DCR_F32, 37);
  check_duplicates (DCR_F16, 37);
}

/* 40 copies of one row: more than top-k sees, one group all the same */
static void
test_big_group (void)
{
  enum { DIM = 16, COPIES = 40, OTHERS = 20, N = COPIES + OTHERS };
  g_autofree float *x = dcr_test_random_floats ((gsize) N * DIM, 5, -1, 1);
  for (guint i = 1; i < COPIES; i++)
    memcpy (x + (gsize) (OTHERS + i) * DIM, x + (gsize) OTHERS * DIM, DIM * sizeof (float));
  g_autoptr (GError) err = NULL;
  g_autoptr (GArray) pairs = NULL;
  g_assert_true (dcr_find_duplicates (dcr_test_context (), x, NULL, N, DIM, 0.98f, NULL, &pairs, &err));
  g_assert_no_error (err);
  g_autoptr (GArray) all = dcr_ref_find_duplicates (x, NULL, N, DIM, 0.98f);
  g_assert_cmpuint (all->len, ==, COPIES * (COPIES - 1) / 2);
  g_assert_cmpuint (pairs->len, <, all->len);
  g_autoptr (GPtrArray) groups = dcr_duplicate_groups ((DcrDuplicatePair *) pairs->data, pairs->len);
  g_assert_cmpuint (groups->len, ==, 1);
  GArray *grp = groups->pdata[0];
  g_assert_cmpuint (grp->len, ==, COPIES);
  for (guint i = 0; i < COPIES; i++)
    g_assert_cmpint (g_array_index (grp, gint64, i), ==, OTHERS + i);
  g_autoptr (GArray) drop = dcr_duplicates_redundant (groups, NULL);
  g_assert_cmpuint (drop->len, ==, COPIES - 1);
  g_assert_cmpint (g_array_index (drop, gint64, 0), ==, OTHERS + 1);
}

static void
test_groups (void)
{
  const DcrDuplicatePair pairs[] = { { 1, 2, 1 }, { 3, 4, 1 }, { 2, 5, 1 }, { 7, 9, 1 }, { 1, 5, 1 } };
  g_autoptr (GPtrArray) groups = dcr_duplicate_groups (pairs, G_N_ELEMENTS (pairs));
  const gint64 want[][4] = { { 1, 2, 5, -1 }, { 3, 4, -1 }, { 7, 9, -1 } };
  g_assert_cmpuint (groups->len, ==, 3);
  for (guint g = 0; g < 3; g++)
    {
      GArray *grp = groups->pdata[g];
      guint len = 0;
      while (want[g][len] >= 0)
        len++;
      g_assert_cmpuint (grp->len, ==, len);
      for (guint i = 0; i < len; i++)
        g_assert_cmpint (g_array_index (grp, gint64, i), ==, want[g][i]);
    }
  /* pinned 5 and 4 stay; the others in their groups go; 7 is the first of its group */
  g_autoptr (GHashTable) pinned = g_hash_table_new (g_int64_hash, g_int64_equal);
  static const gint64 five = 5, four = 4;
  g_hash_table_add (pinned, (gpointer) &five);
  g_hash_table_add (pinned, (gpointer) &four);
  g_autoptr (GArray) drop = dcr_duplicates_redundant (groups, pinned);
  const gint64 want_drop[] = { 1, 2, 3, 9 };
  g_assert_cmpuint (drop->len, ==, G_N_ELEMENTS (want_drop));
  for (guint i = 0; i < drop->len; i++)
    g_assert_cmpint (g_array_index (drop, gint64, i), ==, want_drop[i]);
  g_autoptr (GPtrArray) none = dcr_duplicate_groups (NULL, 0);
  g_assert_cmpuint (none->len, ==, 0);
}

/* Points on the unit circle at these angles: the picks worked out by hand
 * (cosine distance 1 − cos Δθ), both by the reference and on the GPU. */
static void
test_kcenter_circle (void)
{
  const double deg[] = { 0, 10, 180, 70, 100, 250 };
  enum { N = G_N_ELEMENTS (deg) };
  float x[N * 2];
  for (guint i = 0; i < N; i++)
    {
      x[i * 2] = (float) cos (deg[i] * G_PI / 180);
      x[i * 2 + 1] = (float) sin (deg[i] * G_PI / 180);
    }
  struct {
    gboolean pinned[N];
    gsize keep;
    guint32 order[N];
    gsize n;
    double radius;
  } cases[] = {
    /* 0°, then 180° (opposite), then 100° (0.826 from both), then 250° */
    { { 0 }, 4, { 0, 2, 4, 5 }, 4, 1 - cos (G_PI / 6) },
    /* pinned 10° and 70° first, then 250° (1.5 from 70°); 180° is left 0.658 away */
    { { 0, 1, 0, 1, 0, 0 }, 3, { 1, 3, 5 }, 3, 1 - cos (70 * G_PI / 180) },
    /* keep below the pinned count keeps every pinned one */
    { { 0, 1, 0, 1, 0, 0 }, 1, { 1, 3 }, 2, -1 },
    { { 0 }, 10, { 0, 2, 4, 5, 3, 1 }, 6, 0 },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    for (int gpu = 0; gpu <= 1; gpu++)
      {
        guint32 order[N];
        gsize n = 0;
        float radius = -2;
        g_autoptr (GError) err = NULL;
        if (gpu)
          g_assert_true (dcr_kcenter (dcr_test_context (), x, N, 2, cases[c].pinned, cases[c].keep, NULL, order, &n,
                                      &radius, &err));
        else
          g_assert_true (dcr_ref_kcenter (x, N, 2, cases[c].pinned, cases[c].keep, order, &n, &radius));
        g_assert_no_error (err);
        g_assert_cmpuint (n, ==, cases[c].n);
        for (gsize i = 0; i < n; i++)
          g_assert_cmpuint (order[i], ==, cases[c].order[i]);
        if (cases[c].radius >= 0)
          g_assert_cmpfloat_with_epsilon (radius, cases[c].radius, 1e-5);
      }
}

static double
cos_dist (const float *x, guint dim, gsize i, gsize j)
{
  double xy = 0, xx = 0, yy = 0;
  for (guint c = 0; c < dim; c++)
    {
      xy += (double) x[i * dim + c] * x[j * dim + c];
      xx += (double) x[i * dim + c] * x[i * dim + c];
      yy += (double) x[j * dim + c] * x[j * dim + c];
    }
  return 1 - xy / sqrt (xx * yy);
}

/* Whatever the rounding, every pick after the pinned ones was (within tol)
 * the farthest row from those chosen before it, and the radius is that of
 * the chosen set. */
static void
check_greedy (const float *x, gsize n, guint dim, const guint32 *order, gsize k, gsize n_pinned, float radius,
              double tol)
{
  g_autofree double *mind = g_new (double, n);
  g_autofree gboolean *chosen = g_new0 (gboolean, n);
  for (gsize i = 0; i < n; i++)
    mind[i] = INFINITY;
  for (gsize t = 0; t < k; t++)
    {
      if (t >= n_pinned && t > 0)
        {
          double best = -1;
          for (gsize i = 0; i < n; i++)
            if (!chosen[i])
              best = MAX (best, mind[i]);
          g_assert_cmpfloat (mind[order[t]], >=, best - tol);
        }
      g_assert_false (chosen[order[t]]);
      chosen[order[t]] = TRUE;
      for (gsize i = 0; i < n; i++)
        mind[i] = MIN (mind[i], cos_dist (x, dim, order[t], i));
    }
  double r = 0;
  for (gsize i = 0; i < n; i++)
    if (!chosen[i])
      r = MAX (r, mind[i]);
  g_assert_cmpfloat_with_epsilon (radius, r, tol);
}

static void
check_kcenter (DcrDtype dt, gsize max_chunk_rows)
{
  if (skip_dtype (dt))
    return;
  enum { N = 300, DIM = 24, KEEP = 40 };
  g_autofree float *x = dcr_test_random_floats ((gsize) N * DIM, 21, -1, 1);
  gboolean pinned[N] = { 0 };
  const guint pins[] = { 3, 77, 78, 150, 299 };
  for (guint i = 0; i < G_N_ELEMENTS (pins); i++)
    pinned[pins[i]] = TRUE;
  guint32 want[N], got[N];
  gsize n_want = 0, n_got = 0;
  float r_want = 0, r_got = 0;
  g_assert_true (dcr_ref_kcenter (x, N, DIM, pinned, KEEP, want, &n_want, &r_want));
  g_autoptr (GError) err = NULL;
  DcrCurateOptions opts = { .dtype = dt, .max_chunk_rows = max_chunk_rows };
  g_assert_true (dcr_kcenter (dcr_test_context (), x, N, DIM, pinned, KEEP, &opts, got, &n_got, &r_got, &err));
  g_assert_no_error (err);
  g_assert_cmpuint (n_got, ==, KEEP);
  g_assert_cmpuint (n_want, ==, KEEP);
  for (guint i = 0; i < G_N_ELEMENTS (pins); i++)
    g_assert_cmpuint (got[i], ==, pins[i]);
  check_greedy (x, N, DIM, want, n_want, G_N_ELEMENTS (pins), r_want, 1e-6);
  if (dt == DCR_F32)
    {
      /* f32 scores are within 1e-6 of the reference: the same picks */
      for (gsize i = 0; i < n_got; i++)
        g_assert_cmpuint (got[i], ==, want[i]);
      g_assert_cmpfloat_with_epsilon (r_got, r_want, 1e-5);
    }
  else
    check_greedy (x, N, DIM, got, n_got, G_N_ELEMENTS (pins), r_got, 3e-3);
  dcr_test_assert_no_validation_errors ();
}

static void
test_kcenter_f32 (void)
{
  check_kcenter (DCR_F32, 0);
  check_kcenter (DCR_F32, 70);
}

static void
test_kcenter_f16 (void)
{
  check_kcenter (DCR_F16, 0);
  check_kcenter (DCR_F16, 70);
}

static gboolean
cancel_at_second (gsize done, gsize total, gpointer data)
{
  guint *calls = data;
  return ++*calls < 2;
}

static void
test_cancel (void)
{
  enum { N = 600, DIM = 8 };
  g_autofree float *x = dcr_test_random_floats ((gsize) N * DIM, 2, -1, 1);
  guint calls = 0;
  DcrCurateOptions opts = { .progress = cancel_at_second, .user_data = &calls };
  g_autoptr (GError) err = NULL;
  g_autoptr (GArray) pairs = NULL;
  g_assert_false (dcr_find_duplicates (dcr_test_context (), x, NULL, N, DIM, 0.98f, &opts, &pairs, &err));
  g_assert_error (err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (pairs);
  g_clear_error (&err);
  calls = 0;
  guint32 order[N];
  gsize k = 0;
  g_assert_false (dcr_kcenter (dcr_test_context (), x, N, DIM, NULL, 10, &opts, order, &k, NULL, &err));
  g_assert_error (err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&err);
  /* a zero row is refused, naming it */
  memset (x + 5 * DIM, 0, DIM * sizeof (float));
  g_assert_false (dcr_kcenter (dcr_test_context (), x, N, DIM, NULL, 10, NULL, order, &k, NULL, &err));
  g_assert_nonnull (err);
  g_assert_nonnull (strstr (err->message, "row 5"));
}

static void
test_bank (void)
{
  enum { DIM = 16 };
  const guint sizes[] = { 2, 1 };
  gsize n = 0;
  g_autofree float *x = make_rows (30, sizes, G_N_ELEMENTS (sizes), DIM, &n);
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dcr-curate-XXXXXX", &err);
  g_assert_no_error (err);
  g_autofree char *path = g_build_filename (dir, "b.dcrbank", NULL);
  g_autoptr (DcrBank) bank = dcr_bank_create (path, "test@0", DIM, &err);
  g_assert_no_error (err);
  g_autofree DcrPrototypeNew *items = g_new0 (DcrPrototypeNew, n);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (gsize i = 0; i < n; i++)
    {
      char *s = g_strdup_printf ("/real/%02u.png", (guint) i);
      g_ptr_array_add (names, s);
      items[i] = (DcrPrototypeNew) { .feature = x + i * DIM, .source = s };
    }
  g_autofree gint64 *ids = g_new (gint64, n);
  g_assert_true (dcr_bank_add (bank, items, (guint) n, FALSE, ids, &err));
  g_assert_no_error (err);
  /* rows 30, 31 copy row 0; row 32 copies row 1. Row 31 disabled: not
   * seen; row 30 pinned: it stays and row 0 goes instead. */
  g_assert_true (dcr_bank_set_enabled (bank, &ids[31], 1, FALSE, &err));
  g_assert_true (dcr_bank_set_pinned (bank, &ids[30], 1, TRUE, &err));
  g_assert_no_error (err);

  for (int gpu = 0; gpu <= 1; gpu++)
    {
      g_autoptr (DcrBankDuplicates) d =
        dcr_bank_find_duplicates (bank, gpu ? dcr_test_context () : NULL, 0.98f, NULL, &err);
      g_assert_no_error (err);
      g_assert_cmpuint (d->pairs->len, ==, 2);
      g_assert_cmpuint (d->groups->len, ==, 2);
      g_assert_cmpuint (d->redundant->len, ==, 2);
      g_assert_cmpint (g_array_index (d->redundant, gint64, 0), ==, ids[0]);
      g_assert_cmpint (g_array_index (d->redundant, gint64, 1), ==, ids[32]);
    }
  g_assert_null (dcr_bank_find_duplicates (bank, NULL, 1.5f, NULL, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_INVALID);
  g_clear_error (&err);

  g_autoptr (DcrBankPrunePlan) cpu = dcr_bank_plan_prune (bank, NULL, 10, NULL, &err);
  g_assert_no_error (err);
  g_autoptr (DcrBankPrunePlan) gpu = dcr_bank_plan_prune (bank, dcr_test_context (), 10, NULL, &err);
  g_assert_no_error (err);
  gint64 enabled = dcr_bank_count (bank, TRUE);
  g_assert_cmpuint (gpu->kept->len, ==, 10);
  g_assert_cmpuint (gpu->dropped->len, ==, enabled - 10);
  g_assert_cmpuint (gpu->n_pinned, ==, 1);
  g_assert_cmpint (g_array_index (gpu->kept, gint64, 0), ==, ids[30]);
  g_assert_cmpuint (cpu->kept->len, ==, gpu->kept->len);
  for (guint i = 0; i < cpu->kept->len; i++)
    g_assert_cmpint (g_array_index (cpu->kept, gint64, i), ==, g_array_index (gpu->kept, gint64, i));
  for (guint i = 0; i < gpu->dropped->len; i++)
    g_assert_cmpint (g_array_index (gpu->dropped, gint64, i), !=, ids[31]);
  g_assert_cmpfloat_with_epsilon (cpu->radius, gpu->radius, 1e-5);
  g_assert_cmpfloat (gpu->radius, >, 0);

  dcr_bank_close (g_steal_pointer (&bank));
  g_unlink (path);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bank-curate/duplicates-f32", test_duplicates_f32);
  g_test_add_func ("/bank-curate/duplicates-f16", test_duplicates_f16);
  g_test_add_func ("/bank-curate/duplicates-chunks", test_duplicates_chunks);
  g_test_add_func ("/bank-curate/big-group", test_big_group);
  g_test_add_func ("/bank-curate/groups", test_groups);
  g_test_add_func ("/bank-curate/kcenter-circle", test_kcenter_circle);
  g_test_add_func ("/bank-curate/kcenter-f32", test_kcenter_f32);
  g_test_add_func ("/bank-curate/kcenter-f16", test_kcenter_f16);
  g_test_add_func ("/bank-curate/cancel", test_cancel);
  g_test_add_func ("/bank-curate/bank", test_bank);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
