/* test-retrieval.c — GPU cosine top-k against the CPU reference: odd bank
 * and query sizes, k from 1 to 32, k above the bank size (clamped), banks
 * split in chunks with the merge, exact ties, the difference tokens of the
 * retrieved prototypes, a real bank file (disabled prototypes excluded,
 * reloaded only when its generation changes), f32 and f16 storage, the
 * GEMV that scores a few queries on GPUs. */
#include "dcr-test-tensors.h"
#include "dcr-retrieval.h"
#include "dcr-op-heads.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

/* Similarities: f32 GEMM accumulation against a double reference on the
 * same stored rows (1e-5); with f16 storage the query and the score are
 * rounded to f16 (2^-11 relative on values ≤ 1: 1e-3). A returned prototype
 * may differ from the reference's only where their scores are that close. */
#define F32_TOL 1e-5
#define F16_TOL 1.5e-3

static double
tol_for (DcrDtype dt)
{
  return dt == DCR_F16 ? F16_TOL : F32_TOL;
}

static gboolean
skip_dtype (DcrDtype dt)
{
  return dt == DCR_F16 && !dcr_test_have_f16 ();
}

/* The rows as stored (normalised, fp16-rounded for f16) for the reference. */
static float *
stored_rows (DcrRetrieval *r)
{
  gsize n = dcr_retrieval_count (r);
  guint dim = dcr_retrieval_dim (r);
  float *rows = g_new (float, MAX (n, 1) * dim);
  for (gsize i = 0; i < n; i++)
    dcr_retrieval_row (r, i, rows + i * dim);
  return rows;
}

/* Every returned prototype is distinct, scores descend, each score matches
 * the reference score of the prototype returned, and no prototype left out
 * scores better than the last one returned (beyond tolerance). */
static void
check_results (const char *what, DcrRetrieval *r, const float *queries, guint b, guint k,
               const guint32 *pos, const float *sims, double tol)
{
  gsize n = dcr_retrieval_count (r);
  guint dim = dcr_retrieval_dim (r);
  g_autofree float *rows = stored_rows (r);
  g_autofree float *all_sims = g_new (float, n);
  g_autofree guint32 *all_pos = g_new (guint32, n);
  for (guint i = 0; i < b; i++)
    {
      dcr_ref_cosine_topk (rows, n, dim, queries + (gsize) i * dim, 1, (guint) n, all_pos, all_sims);
      g_autofree float *by_pos = g_new (float, n);
      for (gsize j = 0; j < n; j++)
        by_pos[all_pos[j]] = all_sims[j];
      for (guint t = 0; t < k; t++)
        {
          guint32 p = pos[(gsize) i * k + t];
          float s = sims[(gsize) i * k + t];
          if (p >= n)
            {
              g_test_fail_printf ("%s: query %u rank %u: position %u of %" G_GSIZE_FORMAT, what, i, t, p, n);
              return;
            }
          if (fabs (s - by_pos[p]) > tol)
            {
              g_test_fail_printf ("%s: query %u rank %u: similarity %.7f, reference %.7f", what, i, t, s, by_pos[p]);
              return;
            }
          if (fabs (by_pos[p] - all_sims[t]) > 2 * tol)
            {
              g_test_fail_printf ("%s: query %u rank %u: got position %u (%.7f), reference %u (%.7f)", what, i, t,
                                  p, by_pos[p], all_pos[t], all_sims[t]);
              return;
            }
          for (guint u = 0; u < t; u++)
            if (pos[(gsize) i * k + u] == p || sims[(gsize) i * k + u] < s)
              {
                g_test_fail_printf ("%s: query %u: rank %u repeats or outranks rank %u", what, i, t, u);
                return;
              }
        }
    }
}

static void
run_case (DcrDtype dt, gsize n, guint dim, guint b, guint k, gsize chunk_cap, guint32 seed)
{
  g_autoptr (GError) err = NULL;
  g_autofree float *bank = g_new (float, n * dim);
  g_autofree float *q = g_new (float, (gsize) b * dim);
  dcr_test_fill (bank, n * dim, seed, -1, 1);
  dcr_test_fill (q, (gsize) b * dim, seed + 1000, -1, 1);
  g_autoptr (DcrRetrieval) r = dcr_retrieval_new (dcr_test_context (), dim, dt, 64, &err);
  g_assert_no_error (err);
  dcr_retrieval_set_max_chunk_rows (r, chunk_cap);
  g_assert_true (dcr_retrieval_set_features (r, bank, NULL, n, &err));
  g_assert_no_error (err);
  if (chunk_cap)
    g_assert_cmpuint (dcr_retrieval_n_chunks (r), ==, (n + chunk_cap - 1) / chunk_cap);
  guint kk = (guint) MIN (k, n);
  g_autofree guint32 *pos = g_new (guint32, (gsize) b * kk);
  g_autofree float *sims = g_new (float, (gsize) b * kk);
  g_autofree gint64 *ids = g_new (gint64, (gsize) b * kk);
  guint k_out = 0;
  g_assert_true (dcr_retrieval_search (r, q, b, k, ids, sims, pos, &k_out, &err));
  g_assert_no_error (err);
  g_assert_cmpuint (k_out, ==, kk);
  for (gsize i = 0; i < (gsize) b * kk; i++)
    g_assert_cmpint (ids[i], ==, pos[i]); /* ids default to positions */
  g_autofree char *what = g_strdup_printf ("%s n=%" G_GSIZE_FORMAT " dim=%u b=%u k=%u chunks=%u",
                                           dcr_dtype_name (dt), n, dim, b, k, dcr_retrieval_n_chunks (r));
  check_results (what, r, q, b, kk, pos, sims, tol_for (dt));
}

static void
test_odd_sizes (void)
{
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  for (guint t = 0; t < G_N_ELEMENTS (dts); t++)
    {
      if (skip_dtype (dts[t]))
        continue;
      run_case (dts[t], 1, 3, 1, 1, 0, 1);
      run_case (dts[t], 7, 17, 3, 5, 0, 2);
      run_case (dts[t], 65, 24, 5, 32, 0, 3);
      run_case (dts[t], 300, 216, 7, 8, 0, 4);
      run_case (dts[t], 1000, 65, 1, 17, 0, 5);
      run_case (dts[t], 70, 33, 130, 3, 0, 6); /* more queries than one run takes */
    }
  dcr_test_assert_no_validation_errors ();
}

/* On GPUs up to 8 queries are scored by the GEMV (a bank read once; forced
 * here with $DCR_RETRIEVAL_GEMV=1, lavapipe keeps the GEMM by default): on
 * widths that take its vector loads (216, 1024) and odd ones, a partial last
 * workgroup, chunks; then the same case through the GEMM. */
static void
test_gemv (void)
{
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  /* the GEMM, the GEMV, and the GEMV at four rows per subgroup and round
   * ($DCR_GEMV_RPS; the row counts below are not multiples of 4) */
  const char *modes[] = { "1", "0", "rps4" };
  for (guint m = 0; m < G_N_ELEMENTS (modes); m++)
    {
      gboolean rps4 = g_str_equal (modes[m], "rps4");
      g_setenv ("DCR_RETRIEVAL_GEMV", rps4 ? "1" : modes[m], TRUE);
      if (rps4)
        g_setenv ("DCR_GEMV_RPS", "4", TRUE);
      for (guint t = 0; t < G_N_ELEMENTS (dts); t++)
        {
          if (skip_dtype (dts[t]))
            continue;
          run_case (dts[t], 1000, 216, 1, 5, 0, 41);
          run_case (dts[t], 777, 1024, 8, 8, 0, 42);
          run_case (dts[t], 301, 65, 3, 4, 0, 43);    /* scalar loads */
          run_case (dts[t], 250, 36, 2, 32, 100, 44); /* chunks; 36 takes f32's loads of 4, not f16's of 8 */
        }
      g_unsetenv ("DCR_GEMV_RPS");
    }
  g_unsetenv ("DCR_RETRIEVAL_GEMV");
  dcr_test_assert_no_validation_errors ();
}

static void
test_k_above_count (void)
{
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  for (guint t = 0; t < G_N_ELEMENTS (dts); t++)
    {
      if (skip_dtype (dts[t]))
        continue;
      run_case (dts[t], 3, 17, 2, 5, 0, 7);   /* clamped to 3 */
      run_case (dts[t], 10, 9, 2, 32, 3, 8);  /* clamped, and chunks shorter than k */
    }
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrRetrieval) r = dcr_retrieval_new (dcr_test_context (), 4, DCR_F32, 8, &err);
  float f[4] = { 1, 0, 0, 0 };
  g_assert_true (dcr_retrieval_set_features (r, f, NULL, 1, &err));
  g_assert_null (dcr_retrieval_run_new (r, 1, 33, &err));
  g_assert_error (err, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_INVALID);
  g_clear_error (&err);
  g_assert_null (dcr_retrieval_run_new (r, 9, 1, &err)); /* above max_batch */
  g_assert_error (err, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_INVALID);
}

static void
test_chunks (void)
{
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  for (guint t = 0; t < G_N_ELEMENTS (dts); t++)
    {
      if (skip_dtype (dts[t]))
        continue;
      run_case (dts[t], 65, 17, 3, 5, 7, 11);    /* 10 chunks, the last of 2 rows */
      run_case (dts[t], 100, 24, 2, 32, 40, 12); /* 3 chunks, k = 32 > the last chunk's 20 */
      run_case (dts[t], 33, 8, 1, 1, 1, 13);     /* one row per chunk */
    }
  dcr_test_assert_no_validation_errors ();
}

/* Identical prototypes score identically; the lower position ranks first,
 * across a chunk boundary too. */
static void
test_ties (void)
{
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  const guint dim = 8;
  for (guint t = 0; t < G_N_ELEMENTS (dts); t++)
    for (gsize cap = 0; cap <= 4; cap += 4)
      {
        if (skip_dtype (dts[t]))
          continue;
        g_autoptr (GError) err = NULL;
        float bank[10 * 8];
        dcr_test_fill (bank, G_N_ELEMENTS (bank), 21, -1, 1);
        float q[8];
        for (guint c = 0; c < dim; c++)
          q[c] = (float) (c + 1);
        memcpy (bank + 7 * dim, q, sizeof q);
        memcpy (bank + 3 * dim, q, sizeof q);
        for (guint c = 0; c < dim; c++)
          bank[5 * dim + c] = 2 * q[c]; /* the same direction, another length */
        gint64 ids[10];
        for (guint i = 0; i < 10; i++)
          ids[i] = 100 + i;
        g_autoptr (DcrRetrieval) r = dcr_retrieval_new (dcr_test_context (), dim, dts[t], 4, &err);
        dcr_retrieval_set_max_chunk_rows (r, cap);
        g_assert_true (dcr_retrieval_set_features (r, bank, ids, 10, &err));
        g_assert_no_error (err);
        gint64 got[3];
        float sims[3];
        g_assert_true (dcr_retrieval_search (r, q, 1, 3, got, sims, NULL, NULL, &err));
        g_assert_no_error (err);
        g_assert_cmpint (got[0], ==, 103);
        g_assert_cmpint (got[1], ==, 105);
        g_assert_cmpint (got[2], ==, 107);
        for (guint i = 0; i < 3; i++)
          g_assert_cmpfloat_with_epsilon (sims[i], 1.0, tol_for (dts[t]));
      }
}

/* The tokens gathered on the GPU are |q̂ − r̂_j| of the prototypes retrieval chose. */
static void
test_diff_tokens (void)
{
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  const gsize n = 23;
  const guint dim = 19, b = 3, k = 4;
  for (guint t = 0; t < G_N_ELEMENTS (dts); t++)
    for (gsize cap = 0; cap <= 6; cap += 6)
      {
        if (skip_dtype (dts[t]))
          continue;
        g_autoptr (GError) err = NULL;
        g_autofree float *bank = g_new (float, n * dim);
        float q[3 * 19];
        dcr_test_fill (bank, n * dim, 31, -1, 1);
        dcr_test_fill (q, G_N_ELEMENTS (q), 32, -1, 1);
        g_autoptr (DcrRetrieval) r = dcr_retrieval_new (dcr_test_context (), dim, dts[t], b, &err);
        dcr_retrieval_set_max_chunk_rows (r, cap);
        g_assert_true (dcr_retrieval_set_features (r, bank, NULL, n, &err));
        g_autoptr (DcrRetrievalRun) run = dcr_retrieval_run_new (r, b, k, &err);
        g_assert_no_error (err);
        gint64 qs[] = { b, dim }, ds[] = { b, k, dim };
        g_autoptr (DcrTensor) tq = dcr_test_tensor (dts[t], 2, qs, q);
        g_autoptr (DcrTensor) td = dcr_test_tensor (dts[t], 3, ds, NULL);
        g_autoptr (DcrTensor) td1 = dcr_test_tensor (dts[t], 2, qs, NULL);
        g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
        g_assert_true (dcr_retrieval_run_record (run, seq, tq, &err));
        g_assert_true (dcr_retrieval_run_record_diff (run, seq, td, td1, &err));
        g_assert_no_error (err);
        dcr_test_submit (seq);
        guint32 pos[3 * 4];
        g_assert_true (dcr_retrieval_run_results (run, b, NULL, NULL, pos, &err));
        g_autofree float *rows = stored_rows (r);
        g_autofree float *qn = dcr_test_read (dcr_retrieval_run_normalized (run));
        float want[3 * 4 * 19], want1[3 * 19];
        dcr_ref_diff_tokens_gather (qn, rows, pos, want, want1, b, k, dim);
        g_autofree float *got = dcr_test_read (td);
        g_autofree float *got1 = dcr_test_read (td1);
        /* one rounding of |a − b| to the storage type */
        double tt = dts[t] == DCR_F16 ? 1e-3 : 1e-6;
        dcr_test_assert_close ("gathered tokens", got, want, G_N_ELEMENTS (want), tt, tt);
        dcr_test_assert_close ("gathered d1", got1, want1, G_N_ELEMENTS (want1), tt, tt);
        /* and q̂ is the normalised query */
        for (guint i = 0; i < b; i++)
          {
            double ss = 0;
            for (guint c = 0; c < dim; c++)
              ss += (double) qn[i * dim + c] * qn[i * dim + c];
            g_assert_cmpfloat_with_epsilon (ss, 1.0, 4 * tol_for (dts[t]));
          }
      }
  dcr_test_assert_no_validation_errors ();
}

static void
test_bank (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dcr-retrieval-XXXXXX", &err);
  g_autofree char *path = g_build_filename (dir, "bank.dcrbank", NULL);
  const guint dim = 12, n = 20;
  {
    g_autoptr (DcrBank) bank = dcr_bank_create (path, "test@0", dim, &err);
    g_assert_no_error (err);
    g_autofree float *f = g_new (float, n * dim);
    dcr_test_fill (f, n * dim, 41, -1, 1);
    DcrPrototypeNew items[20];
    char *names[20] = { NULL };
    for (guint i = 0; i < n; i++)
      {
        names[i] = g_strdup_printf ("real-%u.png", i);
        items[i] = (DcrPrototypeNew) { .feature = f + i * dim, .source = names[i] };
      }
    gint64 ids[20];
    g_assert_true (dcr_bank_add (bank, items, n, FALSE, ids, &err));
    g_assert_no_error (err);
    for (guint i = 0; i < n; i++)
      g_free (names[i]);

    g_autoptr (DcrRetrieval) r = dcr_retrieval_new (dcr_test_context (), dim, DCR_F32, 8, &err);
    gboolean reloaded = FALSE;
    g_assert_true (dcr_retrieval_sync (r, bank, &reloaded, &err));
    g_assert_true (reloaded);
    g_assert_cmpuint (dcr_retrieval_count (r), ==, n);
    g_assert_true (dcr_retrieval_sync (r, bank, &reloaded, &err));
    g_assert_false (reloaded);

    /* a query equal to prototype 5 finds it first; disabled, it is never returned */
    gint64 got[3];
    float sims[3];
    g_assert_true (dcr_retrieval_search (r, f + 5 * dim, 1, 3, got, sims, NULL, NULL, &err));
    g_assert_cmpint (got[0], ==, ids[5]);
    g_assert_cmpfloat_with_epsilon (sims[0], 1.0, 1e-5);
    g_autoptr (DcrRetrievalRun) old = dcr_retrieval_run_new (r, 1, 3, &err);
    g_assert_true (dcr_bank_set_enabled (bank, &ids[5], 1, FALSE, &err));
    g_assert_true (dcr_retrieval_sync (r, bank, &reloaded, &err));
    g_assert_no_error (err);
    g_assert_true (reloaded);
    g_assert_cmpuint (dcr_retrieval_count (r), ==, n - 1);
    g_assert_true (dcr_retrieval_search (r, f + 5 * dim, 1, 3, got, sims, NULL, NULL, &err));
    for (guint i = 0; i < 3; i++)
      g_assert_cmpint (got[i], !=, ids[5]);
    g_assert_cmpfloat (sims[0], <, 0.999);

    /* a run made before the reload is refused rather than read freed memory */
    g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
    g_assert_false (dcr_retrieval_run_record (old, seq, dcr_retrieval_run_normalized (old), &err));
    g_assert_error (err, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_STALE);
    g_clear_error (&err);

    /* every prototype disabled: nothing to compare with */
    g_assert_true (dcr_bank_set_enabled (bank, ids, n, FALSE, &err));
    g_assert_true (dcr_retrieval_sync (r, bank, &reloaded, &err));
    g_assert_null (dcr_retrieval_run_new (r, 1, 1, &err));
    g_assert_error (err, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_EMPTY);
    g_clear_error (&err);

    /* a bank of another width is refused */
    g_autoptr (DcrRetrieval) r2 = dcr_retrieval_new (dcr_test_context (), dim + 1, DCR_F32, 8, &err);
    g_assert_false (dcr_retrieval_sync (r2, bank, NULL, &err));
    g_assert_error (err, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_MISMATCH);
    g_clear_error (&err);
  }
  g_autofree char *wal = g_strconcat (path, "-wal", NULL);
  g_autofree char *shm = g_strconcat (path, "-shm", NULL);
  g_remove (wal);
  g_remove (shm);
  g_remove (path);
  g_rmdir (dir);
  dcr_test_assert_no_validation_errors ();
}

static void
test_invalid_features (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrRetrieval) r = dcr_retrieval_new (dcr_test_context (), 3, DCR_F32, 8, &err);
  float f[] = { 1, 2, 3, 0, 0, 0 };
  g_assert_false (dcr_retrieval_set_features (r, f, NULL, 2, &err));
  g_assert_error (err, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_INVALID);
  g_clear_error (&err);
  f[4] = NAN;
  g_assert_false (dcr_retrieval_set_features (r, f, NULL, 2, &err));
  g_assert_error (err, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_INVALID);
  g_clear_error (&err);
  g_assert_true (dcr_retrieval_set_features (r, f, NULL, 0, &err));
  g_assert_null (dcr_retrieval_run_new (r, 1, 1, &err));
  g_assert_error (err, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_EMPTY);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/retrieval/odd-sizes", test_odd_sizes);
  g_test_add_func ("/retrieval/k-above-count", test_k_above_count);
  g_test_add_func ("/retrieval/gemv", test_gemv);
  g_test_add_func ("/retrieval/chunks", test_chunks);
  g_test_add_func ("/retrieval/ties", test_ties);
  g_test_add_func ("/retrieval/diff-tokens", test_diff_tokens);
  g_test_add_func ("/retrieval/bank", test_bank);
  g_test_add_func ("/retrieval/invalid-features", test_invalid_features);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
