/* test-tile-head.c — the tile head ("tiles-v1", dcr-tile-head.h): the GPU op
 * against the double reference on the tiles of real images (1 tile, 2 tiles
 * with their even-count median, 5 × 5, 10 × 10, a flat image whose tiles all
 * tie), hidden widths 1, 7 and 64, f32 and f16 output, with and without the
 * logits; the GPU on hand-made tile values (ties, even counts) and on the
 * torch golden inputs; the reference against torch
 * (tests/golden/tile-head-torch.py) and the median against hand-computed
 * ones; the file's round trip and refusals; and the backbone's "tiles" tap
 * (spec, id, columns, logits, errors). */
#include "test-backbone-common.h"
#include "dcr-op-local.h"
#include "dcr-tile-head.h"
#include "golden/tile_head_golden.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#define NIN DCR_TILES_NIN

/* Tolerances. A logit is a sum of hidden·69 products and hidden + 1 more in
 * float32 on the GPU (the reference: double from the same float inputs), so
 * its error is bounded against the sum of the terms' magnitudes, M =
 * |b2| + Σ_h |w2_h|·(|b1_h| + Σ_j |w1_hj·z_j|): LOGIT_RTOL · M (float32's
 * 6e-8 per operation, with room for the sums' length and the GPU's own
 * order of operations; lavapipe stays below 6e-8 · M). The columns against
 * the largest M of the image's tiles; f16 storage adds half an f16 ulp,
 * F16_RTOL of the value. */
#define LOGIT_RTOL 2e-6
#define LOGIT_ATOL 1e-6
#define F16_RTOL 1e-3


/* A head of hidden width `hidden` with random weights of a useful size. */
static DcrTileHead *
random_head (guint hidden, guint32 seed)
{
  DcrTileHead *h = dcr_tile_head_new (hidden);
  dcr_test_fill (h->mean, NIN, seed, -0.2f, 0.2f);
  dcr_test_fill (h->std, NIN, seed + 1, 0.3f, 2.0f);
  dcr_test_fill (h->w1, (gsize) hidden * NIN, seed + 2, -0.3f, 0.3f);
  dcr_test_fill (h->b1, hidden, seed + 3, -0.5f, 0.5f);
  dcr_test_fill (h->w2, hidden, seed + 4, -1.0f, 1.0f);
  float b2;
  dcr_test_fill (&b2, 1, seed + 5, -0.5f, 0.5f);
  h->b2 = b2;
  return h;
}

/* M of every tile (above), in double from the reference's relative inputs. */
static void
logit_scales (const DcrTileHead *h, const float *x, guint n, double *m)
{
  g_autofree float *r = g_new (float, (gsize) n * NIN);
  dcr_tile_relative (x, n, r);
  for (guint t = 0; t < n; t++)
    {
      double s = fabs (h->b2);
      for (guint k = 0; k < h->hidden; k++)
        {
          double a = fabs (h->b1[k]);
          for (int j = 0; j < NIN; j++)
            a += fabs (h->w1[(gsize) k * NIN + j] * (((double) r[(gsize) t * NIN + j] - h->mean[j]) / h->std[j]));
          s += fabs (h->w2[k]) * a;
        }
      m[t] = s;
    }
}

/* The GPU's output (columns of row 1 of a [3, 9] output at column 5,
 * everything else checked untouched; logits of slot `slot` of a 2-slot
 * buffer when want_logits) against the reference on the tile values in the
 * scratch slot of acc. */
static void
check_op (const char *what, DcrTensor *acc, guint slot, guint ntiles, const DcrTileHead *h, DcrDtype dt,
          gboolean want_logits, DcrSeq *seq_with_local)
{
  g_autoptr (GError) err = NULL;
  const gint64 D = 9, row = 1, column = 5;
  gint64 pshape[] = { DCR_TILES_PACKED ((gint64) h->hidden) };
  g_autofree float *packed = g_new (float, pshape[0]);
  dcr_tile_head_pack (h, packed);
  g_autoptr (DcrTensor) pt = dcr_test_upload_tensor (DCR_POOL_WEIGHTS, DCR_F32, 1, pshape, packed);
  gint64 yshape[] = { 3, D }, lshape[] = { 2 * DCR_LOCAL_MAX_TILES };
  float fill[27], lfill[2 * DCR_LOCAL_MAX_TILES];
  for (int i = 0; i < 27; i++)
    fill[i] = -7.0f;
  for (int i = 0; i < 2 * DCR_LOCAL_MAX_TILES; i++)
    lfill[i] = -9.0f;
  g_autoptr (DcrTensor) y = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, dt, 2, yshape, fill);
  g_autoptr (DcrTensor) lg = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, lshape, lfill);
  g_autoptr (DcrSeq) own = seq_with_local ? NULL : dcr_test_seq_new ();
  DcrSeq *seq = seq_with_local ? seq_with_local : own;
  g_assert_true (dcr_op_tile_head (seq, acc, slot, ntiles, pt, h->hidden, want_logits ? lg : NULL, y, row, column,
                                   &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);

  g_autofree float *all_acc = dcr_test_download_floats (acc);
  g_autofree float *x = g_new (float, (gsize) ntiles * NIN);
  dcr_tile_values_from_acc (all_acc + (gsize) slot * DCR_LOCAL_ACC_SIZE, ntiles, x);
  g_autofree float *want_lg = g_new (float, ntiles);
  g_autofree double *m = g_new (double, ntiles);
  float want[DCR_TILES_DIM];
  dcr_ref_tile_head (h, x, ntiles, want_lg, want);
  logit_scales (h, x, ntiles, m);
  double mmax = 0;
  for (guint t = 0; t < ntiles; t++)
    mmax = MAX (mmax, m[t]);

  g_autofree float *got_y = dcr_test_download_floats (y);
  for (gint64 i = 0; i < 3 * D; i++)
    if (i < row * D + column || i >= row * D + column + DCR_TILES_DIM)
      g_assert_cmpfloat (got_y[i], ==, -7.0f);
  double worst = 0;
  for (int c = 0; c < DCR_TILES_DIM; c++)
    {
      double got = got_y[row * D + column + c], tol = LOGIT_ATOL + LOGIT_RTOL * mmax;
      if (dt == DCR_F16)
        tol += F16_RTOL * fabs (want[c]);
      worst = MAX (worst, fabs (got - want[c]) / mmax);
      if (!(fabs (got - want[c]) <= tol))
        g_error ("%s: column %d = %.9g, want %.9g (tolerance %.3g)", what, c, got, want[c], tol);
    }
  g_autofree float *got_lg = dcr_test_download_floats (lg);
  for (guint t = 0; t < 2 * DCR_LOCAL_MAX_TILES; t++)
    {
      guint tile = t - slot * DCR_LOCAL_MAX_TILES;
      if (!want_logits || t < slot * DCR_LOCAL_MAX_TILES || tile >= ntiles)
        {
          g_assert_cmpfloat (got_lg[t], ==, -9.0f);
          continue;
        }
      double tol = LOGIT_ATOL + LOGIT_RTOL * m[tile];
      worst = MAX (worst, fabs (got_lg[t] - want_lg[tile]) / m[tile]);
      if (!(fabs (got_lg[t] - want_lg[tile]) <= tol))
        g_error ("%s: logit %u = %.9g, want %.9g (tolerance %.3g)", what, tile, got_lg[t], want_lg[tile], tol);
    }
  g_test_message ("%s: largest |error| / M %.3g", what, worst);
}

static void
test_gpu_vs_ref (void)
{
  static const struct {
    gint64 h, w;
    guint ntiles;
    gboolean flat;
  } images[] = {
    { 48, 48, 1, FALSE },   { 48, 120, 2, FALSE },  { 256, 256, 25, FALSE },
    { 700, 600, 100, FALSE }, { 256, 256, 25, TRUE },
  };
  static const guint hiddens[] = { 1, 7, 64 };
  for (gsize i = 0; i < G_N_ELEMENTS (images); i++)
    {
      gint64 h = images[i].h, w = images[i].w;
      g_autofree guint8 *img = photo_image (h, w, (guint32) i * 104729u + 11, TRUE);
      if (images[i].flat)
        memset (img, 91, h * w * 3);
      DcrForensicWindow win;
      DcrLocalTiles t;
      g_assert_true (dcr_forensic_window (h, w, &win));
      dcr_local_tiles (&win, &t);
      g_assert_cmpint (t.nth * t.ntw, ==, images[i].ntiles);
      g_autoptr (DcrTensor) it = dcr_test_image_tensor (img, h, w);
      gint64 ashape[] = { 2 * DCR_LOCAL_ACC_SIZE }, fshape[] = { 1, DCR_LOCAL_DIM };
      g_autoptr (DcrTensor) acc = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, ashape, NULL);
      g_autoptr (DcrTensor) feat = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 2, fshape, NULL);
      for (gsize k = 0; k < G_N_ELEMENTS (hiddens); k++)
        for (int dt = 0; dt < 2; dt++)
          {
            DcrDtype dtype = dt ? DCR_F16 : DCR_F32;
            if (dtype == DCR_F16 && !dcr_test_device_has_f16 ())
              continue;
            guint slot = (guint) ((i + k + dt) & 1);
            g_autoptr (DcrTileHead) head = random_head (hiddens[k], (guint32) (i * 31 + k * 7 + 1));
            /* the local op and the head in one sequence, as the backbone records them */
            g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
            g_autoptr (GError) err = NULL;
            g_assert_true (dcr_op_local (seq, it, acc, slot, feat, 0, 0, &err));
            g_assert_no_error (err);
            g_autofree char *what = g_strdup_printf ("%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "%s H=%u %s slot %u",
                                                     w, h, images[i].flat ? " flat" : "", hiddens[k],
                                                     dt ? "f16" : "f32", slot);
            check_op (what, acc, slot, images[i].ntiles, head, dtype, (k + dt) % 3 != 2, seq);
          }
    }
  dcr_test_assert_no_validation_errors ();
}

/* dcr_op_tile_head_batch: three images' tile values in slots 1–3 of a
 * 5-slot scratch (the accumulators' places garbage), one dispatch: each
 * image's columns in rows 1–3 and its logits in logit slots 1–3 as the
 * reference gives them; the rows and logits around them untouched. */
static void
test_gpu_batch (void)
{
  g_autoptr (GError) err = NULL;
  const guint m = 3, ntiles = 25;
  const gint64 D = 9, column = 5;
  g_autoptr (DcrTileHead) h = random_head (64, 77);
  gint64 pshape[] = { DCR_TILES_PACKED ((gint64) h->hidden) };
  g_autofree float *packed = g_new (float, pshape[0]);
  dcr_tile_head_pack (h, packed);
  g_autoptr (DcrTensor) pt = dcr_test_upload_tensor (DCR_POOL_WEIGHTS, DCR_F32, 1, pshape, packed);
  g_autofree float *a = g_new (float, (m + 2) * DCR_LOCAL_ACC_SIZE);
  for (gsize i = 0; i < (m + 2) * DCR_LOCAL_ACC_SIZE; i++)
    a[i] = 1e30f;
  g_autofree float *x = g_new (float, (gsize) m * ntiles * NIN);
  dcr_test_fill (x, (gsize) m * ntiles * NIN, 4242, -2.0f, 2.0f);
  for (guint i = 0; i < m; i++)
    for (guint t = 0; t < ntiles; t++)
      for (int c = 0; c < 3; c++)
        memcpy (a + (gsize) (1 + i) * DCR_LOCAL_ACC_SIZE + ((gsize) t * 3 + c) * DCR_LOCAL_ACC_STRIDE + DCR_LOCAL_NACC,
                x + ((gsize) i * ntiles + t) * NIN + c * DCR_LOCAL_NVAL, sizeof (float) * DCR_LOCAL_NVAL);
  gint64 ashape[] = { (m + 2) * DCR_LOCAL_ACC_SIZE }, yshape[] = { m + 2, D }, lshape[] = { (m + 2) * DCR_LOCAL_MAX_TILES };
  g_autofree float *yfill = g_new (float, yshape[0] * D), *lfill = g_new (float, lshape[0]);
  for (gint64 i = 0; i < yshape[0] * D; i++)
    yfill[i] = -7.0f;
  for (gint64 i = 0; i < lshape[0]; i++)
    lfill[i] = -9.0f;
  g_autoptr (DcrTensor) acc = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, ashape, a);
  g_autoptr (DcrTensor) y = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 2, yshape, yfill);
  g_autoptr (DcrTensor) lg = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, lshape, lfill);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_true (dcr_op_tile_head_batch (seq, acc, 1, m, ntiles, pt, h->hidden, lg, y, 1, column, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
  g_autofree float *got_y = dcr_test_download_floats (y), *got_lg = dcr_test_download_floats (lg);
  for (guint i = 0; i < m; i++)
    {
      const float *xi = x + (gsize) i * ntiles * NIN;
      float want_lg[25], want[DCR_TILES_DIM];
      double sc[25], mmax = 0;
      dcr_ref_tile_head (h, xi, ntiles, want_lg, want);
      logit_scales (h, xi, ntiles, sc);
      for (guint t = 0; t < ntiles; t++)
        {
          mmax = MAX (mmax, sc[t]);
          float got = got_lg[(1 + i) * DCR_LOCAL_MAX_TILES + t];
          if (!(fabs (got - want_lg[t]) <= LOGIT_ATOL + LOGIT_RTOL * sc[t]))
            g_error ("batch image %u: logit %u = %.9g, want %.9g", i, t, got, want_lg[t]);
        }
      for (int c = 0; c < DCR_TILES_DIM; c++)
        {
          float got = got_y[(1 + i) * D + column + c];
          if (!(fabs (got - want[c]) <= LOGIT_ATOL + LOGIT_RTOL * mmax))
            g_error ("batch image %u: column %d = %.9g, want %.9g", i, c, got, want[c]);
        }
    }
  for (gint64 r = 0; r < m + 2; r++)
    for (gint64 k = 0; k < D; k++)
      if (r < 1 || r > m || k < column || k >= column + DCR_TILES_DIM)
        g_assert_cmpfloat (got_y[r * D + k], ==, -7.0f);
  for (gint64 r = 0; r < m + 2; r++)
    for (gint64 t = 0; t < DCR_LOCAL_MAX_TILES; t++)
      if (r < 1 || r > m || t >= ntiles)
        g_assert_cmpfloat (got_lg[r * DCR_LOCAL_MAX_TILES + t], ==, -9.0f);
  /* no images, or past the last slot or row */
  g_assert_false (dcr_op_tile_head_batch (seq, acc, 1, 0, ntiles, pt, h->hidden, lg, y, 1, column, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_tile_head_batch (seq, acc, 3, m, ntiles, pt, h->hidden, NULL, y, 1, column, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_tile_head_batch (seq, acc, 1, m, ntiles, pt, h->hidden, lg, y, 3, column, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  dcr_test_assert_no_validation_errors ();
}

/* A scratch buffer of two slots whose slot `slot` holds the tile values x
 * (the accumulators' places hold garbage the head must not read). */
static DcrTensor *
acc_with_values (const float *x, guint n, guint slot)
{
  g_autofree float *a = g_new (float, 2 * DCR_LOCAL_ACC_SIZE);
  for (gsize i = 0; i < 2 * DCR_LOCAL_ACC_SIZE; i++)
    a[i] = 1e30f;
  float *s = a + (gsize) slot * DCR_LOCAL_ACC_SIZE;
  for (guint t = 0; t < n; t++)
    for (int c = 0; c < 3; c++)
      memcpy (s + ((gsize) t * 3 + c) * DCR_LOCAL_ACC_STRIDE + DCR_LOCAL_NACC, x + (gsize) t * NIN + c * DCR_LOCAL_NVAL,
              sizeof (float) * DCR_LOCAL_NVAL);
  gint64 shape[] = { 2 * DCR_LOCAL_ACC_SIZE };
  return dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, shape, a);
}

static DcrTileHead *
golden_head (void)
{
  DcrTileHead *h = dcr_tile_head_new (TILE_GOLDEN_HIDDEN);
  memcpy (h->mean, tile_golden_mean, sizeof h->mean);
  memcpy (h->std, tile_golden_std, sizeof h->std);
  memcpy (h->w1, tile_golden_w1, sizeof tile_golden_w1);
  memcpy (h->b1, tile_golden_b1, sizeof tile_golden_b1);
  memcpy (h->w2, tile_golden_w2, sizeof tile_golden_w2);
  h->b2 = tile_golden_b2[0];
  return h;
}

/* Tile values with many ties: every column drawn from a few levels, for
 * every count from 1 to 100 (odd and even), and one column all equal. */
static void
test_gpu_ties (void)
{
  g_autoptr (DcrTileHead) head = random_head (7, 99);
  static const guint counts[] = { 1, 2, 3, 4, 5, 6, 9, 16, 25, 36, 49, 64, 99, 100 };
  for (gsize i = 0; i < G_N_ELEMENTS (counts); i++)
    {
      guint n = counts[i];
      g_autofree float *x = g_new (float, (gsize) n * NIN);
      for (guint t = 0; t < n; t++)
        for (int j = 0; j < NIN; j++)
          {
            guint levels = 1 + j % 5;
            float level = (float) (golden_lowbias32 (t * 977 + j * 31 + n) % levels);
            x[(gsize) t * NIN + j] = j == 0 ? 2.5f : level * 0.75f - 1;
          }
      g_autoptr (DcrTensor) acc = acc_with_values (x, n, (guint) (i & 1));
      g_autofree char *what = g_strdup_printf ("ties, %u tiles", n);
      check_op (what, acc, (guint) (i & 1), n, head, DCR_F32, TRUE, NULL);
    }
  dcr_test_assert_no_validation_errors ();
}

/* The reference against torch, and the GPU on the same inputs. */
static void
test_golden (void)
{
  g_autoptr (DcrTileHead) head = golden_head ();
  for (gsize i = 0; i < G_N_ELEMENTS (tile_golden_cases); i++)
    {
      const TileGoldenCase *g = &tile_golden_cases[i];
      float lg[DCR_LOCAL_MAX_TILES], cols[DCR_TILES_DIM];
      dcr_ref_tile_head (head, g->x, g->ntiles, lg, cols);
      g_autofree char *what = g_strdup_printf ("torch golden, %u tiles", g->ntiles);
      g_autofree char *what_c = g_strdup_printf ("torch golden columns, %u tiles", g->ntiles);
      dcr_test_assert_close (what, lg, g->logits, g->ntiles, 1e-5, 1e-5);
      dcr_test_assert_close (what_c, cols, g->columns, DCR_TILES_DIM, 1e-5, 1e-5);
      g_autoptr (DcrTensor) acc = acc_with_values (g->x, g->ntiles, 1);
      g_autofree char *what_g = g_strdup_printf ("GPU on the torch golden inputs, %u tiles", g->ntiles);
      check_op (what_g, acc, 1, g->ntiles, head, DCR_F32, TRUE, NULL);
    }
  /* one tile: r = 0, so the logit is the head's value at z = −mean/std */
  g_assert_cmpfloat (tile_golden_columns0[0], ==, tile_golden_columns0[1]);
  dcr_test_assert_no_validation_errors ();
}

/* dcr_tile_relative against medians worked out by hand. */
static void
test_relative (void)
{
  static const struct {
    guint n;
    float v[6];
    float med;
  } cases[] = {
    { 1, { 4.5f }, 4.5f },
    { 3, { 3, 1, 2 }, 2 },
    { 4, { 4, 1, 3, 2 }, 2.5f },
    { 2, { -1, 6 }, 2.5f },
    { 5, { 2, 2, 1, 2, 5 }, 2 },       /* odd, a tie at the middle */
    { 4, { 1, 3, 1, 3 }, 2 },          /* even, the middle pair from two ties */
    { 4, { 3, 1, 3, 3 }, 3 },          /* even, both middle values tied */
    { 6, { 7, 7, 7, 7, 7, 7 }, 7 },    /* all equal */
    { 6, { -2, 8, 0, -5, 1, 9 }, 0.5f },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      guint n = cases[i].n;
      float x[6 * NIN], r[6 * NIN];
      /* column j: the case's values times (j + 1), so the median scales too */
      for (guint t = 0; t < n; t++)
        for (int j = 0; j < NIN; j++)
          x[t * NIN + j] = cases[i].v[t] * (float) (j + 1);
      dcr_tile_relative (x, n, r);
      for (guint t = 0; t < n; t++)
        for (int j = 0; j < NIN; j++)
          g_assert_cmpfloat (r[t * NIN + j], ==, x[t * NIN + j] - cases[i].med * (float) (j + 1));
    }
}

static char *
tmp_dir (void)
{
  g_autoptr (GError) err = NULL;
  char *dir = g_dir_make_tmp ("dcr-tile-head-XXXXXX", &err);
  g_assert_no_error (err);
  return dir;
}

static void
test_file (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = tmp_dir ();
  g_autofree char *path = g_build_filename (dir, "head.safetensors", NULL);
  g_autoptr (DcrTileHead) h = random_head (13, 5);
  g_assert_true (dcr_tile_head_save (h, path, "{\"epochs\": 3}", &err));
  g_assert_no_error (err);
  g_autoptr (DcrTileHead) l = dcr_tile_head_load (path, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (l->hidden, ==, 13);
  g_assert_cmpmem (l->mean, sizeof l->mean, h->mean, sizeof h->mean);
  g_assert_cmpmem (l->std, sizeof l->std, h->std, sizeof h->std);
  g_assert_cmpmem (l->w1, sizeof (float) * 13 * NIN, h->w1, sizeof (float) * 13 * NIN);
  g_assert_cmpmem (l->b1, sizeof (float) * 13, h->b1, sizeof (float) * 13);
  g_assert_cmpmem (l->w2, sizeof (float) * 13, h->w2, sizeof (float) * 13);
  g_assert_cmpfloat (l->b2, ==, h->b2);
  g_assert_cmpstr (l->training, ==, "{\"epochs\": 3}");
  gchar *data = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (path, &data, &len, &err));
  g_autofree char *sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
  g_assert_cmpstr (l->sha256, ==, sha);
  /* the packed layout of the header */
  g_autofree float *p = g_new (float, DCR_TILES_PACKED (13));
  dcr_tile_head_pack (l, p);
  g_assert_cmpfloat (p[0], ==, h->mean[0]);
  g_assert_cmpfloat (p[NIN + 4], ==, 1.0f / h->std[4]);
  g_assert_cmpfloat (p[2 * NIN + 3 * NIN + 2], ==, h->w1[3 * NIN + 2]);
  g_assert_cmpfloat (p[2 * NIN + 13 * NIN + 12], ==, h->b1[12]);
  g_assert_cmpfloat (p[2 * NIN + 13 * NIN + 13 + 5], ==, h->w2[5]);
  g_assert_cmpfloat (p[DCR_TILES_PACKED (13) - 1], ==, h->b2);

  struct {
    const char *name, *expect;
  } bad[] = {
    { "format", "not a tile head" },
    { "truncated", "truncated file?" },
    { "std0", "\"std\" of input 5 is 0; it must be positive" },
    { "nan", "holds NaN or infinity" },
    { "hidden300", "1 to 256 entries" },
    { "version", "tile head version \"tiles-v0\"" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *name = g_strdup_printf ("%s.safetensors", bad[i].name);
      g_autofree char *bpath = g_build_filename (dir, name, NULL);
      const char *n = bad[i].name;
      if (g_str_equal (n, "truncated"))
        g_assert_true (g_file_set_contents (bpath, data, (gssize) (len * 2 / 3), &err));
      else if (g_str_equal (n, "std0") || g_str_equal (n, "nan"))
        {
          g_autoptr (DcrTileHead) b = random_head (4, 8);
          if (g_str_equal (n, "std0"))
            b->std[5] = 0;
          else
            b->w1[70] = NAN;
          g_assert_true (dcr_tile_head_save (b, bpath, NULL, &err));
        }
      else
        {
          /* written by hand: another format or version, or a hidden width
           * dcr_tile_head_new refuses */
          guint hid = g_str_equal (n, "hidden300") ? 300 : 4;
          g_autofree float *w1 = g_new0 (float, (gsize) hid * NIN);
          g_autofree float *hv = g_new0 (float, hid);
          float mean[NIN] = { 0 }, sd[NIN], b2 = 0;
          for (int j = 0; j < NIN; j++)
            sd[j] = 1;
          gint64 s_in[] = { NIN }, s_w1[] = { hid, NIN }, s_h[] = { hid }, s_w2[] = { 1, hid }, s_b2[] = { 1 };
          DcrStWriteTensor t[] = {
            { "mean", DCR_ST_F32, 1, s_in, mean }, { "std", DCR_ST_F32, 1, s_in, sd },
            { "w1", DCR_ST_F32, 2, s_w1, w1 },     { "b1", DCR_ST_F32, 1, s_h, hv },
            { "w2", DCR_ST_F32, 2, s_w2, hv },     { "b2", DCR_ST_F32, 1, s_b2, &b2 },
          };
          const char *meta[] = { "format", g_str_equal (n, "format") ? "dcr-detector" : "dcr-tile-head", "version",
                                 g_str_equal (n, "version") ? "tiles-v0" : "tiles-v1", NULL };
          g_assert_true (dcr_safetensors_write (bpath, t, G_N_ELEMENTS (t), meta, &err));
        }
      g_assert_no_error (err);
      g_assert_null (dcr_tile_head_load (bpath, &err));
      g_assert_nonnull (err);
      if (!strstr (err->message, bad[i].expect) || !strstr (err->message, name))
        g_error ("%s: \"%s\" does not say \"%s\"", n, err->message, bad[i].expect);
      g_clear_error (&err);
      g_remove (bpath);
    }
  g_free (data);
  g_remove (path);
  g_rmdir (dir);
}

static void
test_op_errors (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrTileHead) h = random_head (3, 1);
  gint64 pshape[] = { DCR_TILES_PACKED (3) }, ashape[] = { DCR_LOCAL_ACC_SIZE }, yshape[] = { 2, 4 },
         lshape[] = { DCR_LOCAL_MAX_TILES };
  g_autofree float *packed = g_new (float, pshape[0]);
  dcr_tile_head_pack (h, packed);
  g_autoptr (DcrTensor) pt = dcr_test_upload_tensor (DCR_POOL_WEIGHTS, DCR_F32, 1, pshape, packed);
  g_autoptr (DcrTensor) acc = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, ashape, NULL);
  g_autoptr (DcrTensor) y = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 2, yshape, NULL);
  g_autoptr (DcrTensor) lg = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, lshape, NULL);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  struct {
    guint slot, ntiles, hidden;
    gboolean logits;
    gint64 row, column;
  } bad[] = {
    { 0, 0, 3, TRUE, 0, 0 },   { 0, 101, 3, TRUE, 0, 0 }, { 0, 4, 0, TRUE, 0, 0 }, { 0, 4, 257, TRUE, 0, 0 },
    { 0, 4, 4, TRUE, 0, 0 },   /* packed too short for hidden 4 */
    { 1, 4, 3, FALSE, 0, 0 },  /* no slot 1 in acc */
    { 0, 4, 3, TRUE, 2, 0 },   { 0, 4, 3, TRUE, 0, 3 }, { 0, 4, 3, TRUE, -1, 0 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_false (dcr_op_tile_head (seq, acc, bad[i].slot, bad[i].ntiles, pt, bad[i].hidden,
                                        bad[i].logits ? lg : NULL, y, bad[i].row, bad[i].column, &err));
      g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
      g_clear_error (&err);
    }
  /* logits too short for slot 1: a 2-slot acc, a 1-slot logits buffer */
  gint64 a2shape[] = { 2 * DCR_LOCAL_ACC_SIZE };
  g_autoptr (DcrTensor) acc2 = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, a2shape, NULL);
  g_assert_false (dcr_op_tile_head (seq, acc2, 1, 4, pt, 3, lg, y, 0, 0, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  /* within bounds: accepted */
  g_assert_true (dcr_op_tile_head (seq, acc2, 1, 4, pt, 3, NULL, y, 1, 2, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
  dcr_test_assert_no_validation_errors ();
}

/* The backbone's "tiles" tap. */
static void
test_backbone (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = tmp_dir ();
  g_autofree char *head_path = g_build_filename (dir, "tile-head.safetensors", NULL);
  g_autoptr (DcrTileHead) head = random_head (7, 42);
  g_assert_true (dcr_tile_head_save (head, head_path, NULL, &err));
  g_assert_no_error (err);
  g_autoptr (DcrTileHead) loaded = dcr_tile_head_load (head_path, &err);
  g_assert_no_error (err);
  g_autofree char *weights = dcr_backbone_default_path ();
  g_autofree char *spec = g_strdup_printf ("mobilenet_v2+residual+local+tiles=%s:%s", head_path, weights);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, spec, DCR_F32, &err);
  g_assert_no_error (err);
  g_autofree char *want_id = g_strdup_printf ("mobilenet_v2_b10+residual-v1+local-v1+tiles-v1@%.12s@%.12s",
                                              loaded->sha256, dcr_backbone_weights_sha256 (bb));
  g_assert_cmpstr (dcr_backbone_id (bb), ==, want_id);
  g_assert_true (dcr_backbone_has_tiles (bb));
  guint dim = dcr_backbone_dim (bb), n = dcr_backbone_n_taps (bb);
  g_assert_cmpuint (dim, ==, 216 + DCR_FORENSIC_DIM + DCR_LOCAL_DIM + DCR_TILES_DIM);
  const DcrBackboneTap *loc = dcr_backbone_tap (bb, n - 2), *til = dcr_backbone_tap (bb, n - 1);
  g_assert_cmpstr (loc->name, ==, "local");
  g_assert_cmpstr (til->name, ==, "tiles");
  g_assert_cmpuint (til->offset, ==, loc->offset + DCR_LOCAL_DIM);
  g_assert_cmpuint (til->width, ==, DCR_TILES_DIM);
  g_assert_cmpuint (dcr_backbone_tiles_column (bb), ==, til->offset);

  /* a 300 × 260 picture in slot 1 of 3 (6 × 5 tiles), a 48 × 120 one (2
   * tiles) in slot 2; slot 0 gets none */
  const gint64 sizes[][2] = { { 260, 300 }, { 48, 120 } };
  g_autoptr (DcrBackboneRun) run = dcr_backbone_run_new (bb, 3, &err);
  g_assert_no_error (err);
  g_autoptr (DcrImage) img0 = NULL;
  g_autoptr (DcrImage) img1 = NULL;
  DcrImage **img[2] = { &img0, &img1 };
  for (int k = 0; k < 2; k++)
    {
      gint64 h = sizes[k][0], w = sizes[k][1];
      g_autofree guint8 *px = photo_image (h, w, 17 + k, TRUE);
      *img[k] = dcr_image_new ((guint) w, (guint) h);
      memcpy ((*img[k])->pixels, px, h * w * 3);
      g_assert_true (dcr_backbone_run_set_image (run, 1 + k, *img[k], &err));
      g_assert_no_error (err);
    }
  g_assert_true (dcr_backbone_run_forward (run, &err));
  g_assert_no_error (err);
  g_autofree float *got = g_new (float, 3 * dim);
  g_assert_true (dcr_backbone_run_features (run, got, &err));
  g_assert_no_error (err);
  for (int k = 0; k < 2; k++)
    {
      gint64 h = sizes[k][0], w = sizes[k][1];
      /* the scratch values the backbone's local op left: the same op on the same pixels */
      g_autoptr (DcrTensor) it = dcr_test_image_tensor ((*img[k])->pixels, h, w);
      gint64 ashape[] = { DCR_LOCAL_ACC_SIZE }, fshape[] = { 1, DCR_LOCAL_DIM };
      g_autoptr (DcrTensor) acc = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, ashape, NULL);
      g_autoptr (DcrTensor) feat = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 2, fshape, NULL);
      g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
      g_assert_true (dcr_op_local (seq, it, acc, 0, feat, 0, 0, &err));
      g_assert_no_error (err);
      dcr_test_submit_wait (seq);
      g_autofree float *a = dcr_test_download_floats (acc), *local = dcr_test_download_floats (feat);
      DcrForensicWindow win;
      DcrLocalTiles t;
      g_assert_true (dcr_forensic_window (h, w, &win));
      dcr_local_tiles (&win, &t);
      guint nt = (guint) (t.nth * t.ntw);
      g_assert_cmpuint (nt, ==, k ? 2 : 30);
      g_autofree float *x = g_new (float, (gsize) nt * NIN);
      dcr_tile_values_from_acc (a, nt, x);
      float want_lg[DCR_LOCAL_MAX_TILES], want[DCR_TILES_DIM], lg[DCR_LOCAL_MAX_TILES];
      double m[DCR_LOCAL_MAX_TILES], mmax = 0;
      dcr_ref_tile_head (loaded, x, nt, want_lg, want);
      logit_scales (loaded, x, nt, m);
      for (guint i = 0; i < nt; i++)
        mmax = MAX (mmax, m[i]);
      const float *row = got + (gsize) (1 + k) * dim;
      dcr_test_assert_close ("local tap", row + loc->offset, local, DCR_LOCAL_DIM, 0, 0);
      for (int c = 0; c < DCR_TILES_DIM; c++)
        if (!(fabs (row[til->offset + c] - want[c]) <= LOGIT_ATOL + LOGIT_RTOL * mmax))
          g_error ("backbone tiles column %d = %.9g, want %.9g", c, row[til->offset + c], want[c]);
      guint nth = 0, ntw = 0;
      g_assert_true (dcr_backbone_run_tile_logits (run, 1 + k, lg, &nth, &ntw, &err));
      g_assert_no_error (err);
      g_assert_cmpuint (nth, ==, t.nth);
      g_assert_cmpuint (ntw, ==, t.ntw);
      for (guint i = 0; i < DCR_LOCAL_MAX_TILES; i++)
        if (i >= nt)
          g_assert_cmpfloat (lg[i], ==, 0.0f);
        else if (!(fabs (lg[i] - want_lg[i]) <= LOGIT_ATOL + LOGIT_RTOL * m[i]))
          g_error ("backbone tile logit %u = %.9g, want %.9g", i, lg[i], want_lg[i]);
    }
  /* slot 0 has no image: its forensic columns stay 0 and it has no logits */
  for (guint i = dcr_backbone_tap (bb, n - 3)->offset; i < dim; i++)
    g_assert_cmpfloat (got[i], ==, 0.0f);
  float lg[DCR_LOCAL_MAX_TILES];
  guint nth, ntw;
  g_assert_false (dcr_backbone_run_tile_logits (run, 0, lg, &nth, &ntw, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_BATCH);
  g_clear_error (&err);
  g_assert_false (dcr_backbone_run_tile_logits (run, 3, lg, &nth, &ntw, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_BATCH);
  g_clear_error (&err);

  /* f16 storage: the columns rounded to f16 */
  if (dcr_test_device_has_f16 ())
    {
      g_autoptr (DcrBackbone) hb = dcr_backbone_load (ctx, spec, DCR_F16, &err);
      g_assert_no_error (err);
      g_autoptr (DcrBackboneRun) hrun = dcr_backbone_run_new (hb, 1, &err);
      g_assert_no_error (err);
      g_assert_true (dcr_backbone_run_set_image (hrun, 0, img1, &err));
      g_assert_true (dcr_backbone_run_forward (hrun, &err));
      g_autofree float *hgot = g_new (float, dim);
      g_assert_true (dcr_backbone_run_features (hrun, hgot, &err));
      g_assert_no_error (err);
      float lg16[DCR_LOCAL_MAX_TILES];
      guint nth16, ntw16;
      g_assert_true (dcr_backbone_run_tile_logits (hrun, 0, lg16, &nth16, &ntw16, &err));
      g_assert_no_error (err);
      g_assert_cmpuint (nth16 * ntw16, ==, 2);
      /* the same tiles as the f32 run's slot 2: its columns within f16 rounding */
      for (int c = 0; c < DCR_TILES_DIM; c++)
        g_assert_cmpfloat_with_epsilon (hgot[til->offset + c], got[2 * dim + til->offset + c],
                                        1e-5 + F16_RTOL * fabs (got[2 * dim + til->offset + c]));
    }

  /* "+local+tiles" without "+residual"; a backbone without the head */
  g_autofree char *lspec = g_strdup_printf ("mobilenet_v2+local+tiles=%s:%s", head_path, weights);
  g_autoptr (DcrBackbone) lb = dcr_backbone_load (ctx, lspec, DCR_F32, &err);
  g_assert_no_error (err);
  g_assert_true (g_str_has_prefix (dcr_backbone_id (lb), "mobilenet_v2_b10+local-v1+tiles-v1@"));
  g_assert_cmpuint (dcr_backbone_tiles_column (lb), ==, 216 + DCR_LOCAL_DIM);
  g_autofree char *pspec = g_strdup_printf ("mobilenet_v2+residual+local:%s", weights);
  g_autoptr (DcrBackbone) pb = dcr_backbone_load (ctx, pspec, DCR_F32, &err);
  g_assert_no_error (err);
  g_assert_false (dcr_backbone_has_tiles (pb));
  g_assert_null (strstr (dcr_backbone_id (pb), "tiles"));
  g_autoptr (DcrBackboneRun) prun = dcr_backbone_run_new (pb, 1, &err);
  g_assert_no_error (err);
  g_assert_false (dcr_backbone_run_tile_logits (prun, 0, lg, &nth, &ntw, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC);
  g_clear_error (&err);
  /* "default" has the shipped tile head, after the local tap (and before
   * the shipped CNN's columns) */
  g_autoptr (DcrBackbone) db = dcr_backbone_load (ctx, "default", DCR_F32, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_backbone_has_tiles (db));
  g_assert_true (dcr_backbone_has_cnn (db));
  g_assert_cmpuint (dcr_backbone_tiles_column (db), ==, dcr_backbone_dim (db) - DCR_TILES_DIM - DCR_CNN_DIM);
  g_assert_nonnull (strstr (dcr_backbone_id (db), "+local-v1+tiles-v1@"));

  /* spec errors */
  g_autofree char *nolocal = g_strdup_printf ("mobilenet_v2+residual+tiles=%s:%s", head_path, weights);
  g_assert_null (dcr_backbone_load (ctx, nolocal, DCR_F32, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC);
  g_assert_nonnull (strstr (err->message, "must follow \"+local\""));
  g_clear_error (&err);
  g_autofree char *nohead = g_strdup_printf ("mobilenet_v2+local+tiles=:%s", weights);
  g_assert_null (dcr_backbone_load (ctx, nohead, DCR_F32, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC);
  g_clear_error (&err);
  g_assert_null (dcr_backbone_load (ctx, "mobilenet_v2+local+tiles", DCR_F32, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC);
  g_clear_error (&err);
  g_autofree char *missing = g_strdup_printf ("mobilenet_v2+local+tiles=%s/none.safetensors:%s", dir, weights);
  g_assert_null (dcr_backbone_load (ctx, missing, DCR_F32, &err));
  g_assert_nonnull (err);
  g_assert_nonnull (strstr (err->message, "none.safetensors"));
  g_clear_error (&err);
  /* the weights file is no tile head: dcr_tile_head_load's message */
  g_autofree char *wrong = g_strdup_printf ("mobilenet_v2+local+tiles=%s:%s", weights, weights);
  g_assert_null (dcr_backbone_load (ctx, wrong, DCR_F32, &err));
  g_assert_error (err, DCR_TILE_HEAD_ERROR, DCR_TILE_HEAD_ERROR_FILE);
  g_assert_nonnull (strstr (err->message, "not a tile head"));
  g_clear_error (&err);

  g_remove (head_path);
  g_rmdir (dir);
  dcr_test_assert_no_validation_errors ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tile-head/gpu-vs-ref", test_gpu_vs_ref);
  g_test_add_func ("/tile-head/gpu-batch", test_gpu_batch);
  g_test_add_func ("/tile-head/gpu-ties", test_gpu_ties);
  g_test_add_func ("/tile-head/golden", test_golden);
  g_test_add_func ("/tile-head/relative", test_relative);
  g_test_add_func ("/tile-head/file", test_file);
  g_test_add_func ("/tile-head/op-errors", test_op_errors);
  g_test_add_func ("/tile-head/backbone", test_backbone);
  int ret = g_test_run ();
  dcr_test_context_teardown ();
  return ret;
}
