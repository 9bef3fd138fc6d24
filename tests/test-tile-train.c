/* test-tile-train.c — the tile head's trainer: recorded GPU steps against a
 * host reference in double (forward, BCE gradient, backward, AdamW with
 * PyTorch's update order), with and without a dropout mask; learning a
 * synthetic task where fake tiles sit shifted along a random direction,
 * without and with dropout; seeded runs that repeat exactly; bad data. */
#include "dcr-test-util.h"
#include "dcr-metrics.h"
#include "dcr-tile-train.h"

#include <math.h>
#include <string.h>

#define NIN DCR_TILES_NIN

/* ---- one step against the reference ------------------------------------- */

typedef struct {
  guint hidden;
  double *w1, *b1, *w2, b2;
  double *m[4], *v[4]; /* AdamW state of w1, b1, w2, b2 */
} Ref;

static void
ref_init (Ref *r, const DcrTileHead *h)
{
  guint H = h->hidden;
  r->hidden = H;
  r->w1 = g_new (double, H * NIN);
  r->b1 = g_new (double, H);
  r->w2 = g_new (double, H);
  for (guint i = 0; i < H * NIN; i++)
    r->w1[i] = h->w1[i];
  for (guint i = 0; i < H; i++)
    {
      r->b1[i] = h->b1[i];
      r->w2[i] = h->w2[i];
    }
  r->b2 = h->b2;
  gsize sizes[4] = { H * NIN, H, H, 1 };
  for (int i = 0; i < 4; i++)
    {
      r->m[i] = g_new0 (double, sizes[i]);
      r->v[i] = g_new0 (double, sizes[i]);
    }
}

static void
ref_clear (Ref *r)
{
  g_free (r->w1);
  g_free (r->b1);
  g_free (r->w2);
  for (int i = 0; i < 4; i++)
    {
      g_free (r->m[i]);
      g_free (r->v[i]);
    }
}

/* torch.optim.AdamW, one parameter tensor */
static void
ref_adamw (const DcrAdamWConfig *c, gint64 t, double *p, const double *g, double *m, double *v, gsize n)
{
  double bc1 = 1 - pow (c->beta1, (double) t), bc2 = 1 - pow (c->beta2, (double) t);
  for (gsize i = 0; i < n; i++)
    {
      p[i] *= 1 - c->lr * c->weight_decay;
      m[i] = c->beta1 * m[i] + (1 - c->beta1) * g[i];
      v[i] = c->beta2 * v[i] + (1 - c->beta2) * g[i] * g[i];
      double denom = sqrt (v[i]) / sqrt (bc2) + c->eps;
      p[i] -= c->lr / bc1 * m[i] / denom;
    }
}

/* One step; returns the batch's mean BCE before the update. */
static double
ref_step (Ref *r, const DcrAdamWConfig *c, gint64 t, const float *z, const gint32 *y, const float *mask, guint B)
{
  guint H = r->hidden;
  g_autofree double *pre = g_new (double, B * H), *ad = g_new (double, B * H), *dl = g_new (double, B);
  g_autofree double *gw1 = g_new0 (double, H * NIN), *gb1 = g_new0 (double, H), *gw2 = g_new0 (double, H);
  double gb2 = 0, loss = 0;
  for (guint i = 0; i < B; i++)
    {
      double l = r->b2;
      for (guint h = 0; h < H; h++)
        {
          double a = r->b1[h];
          for (int j = 0; j < NIN; j++)
            a += r->w1[h * NIN + j] * z[i * NIN + j];
          pre[i * H + h] = a;
          ad[i * H + h] = (a > 0 ? a : 0) * (mask ? mask[i * H + h] : 1);
          l += r->w2[h] * ad[i * H + h];
        }
      loss += fmax (l, 0) - l * y[i] + log1p (exp (-fabs (l)));
      dl[i] = (1 / (1 + exp (-l)) - y[i]) / B;
    }
  for (guint i = 0; i < B; i++)
    {
      gb2 += dl[i];
      for (guint h = 0; h < H; h++)
        {
          gw2[h] += dl[i] * ad[i * H + h];
          double d = dl[i] * r->w2[h] * (mask ? mask[i * H + h] : 1) * (pre[i * H + h] > 0);
          gb1[h] += d;
          for (int j = 0; j < NIN; j++)
            gw1[h * NIN + j] += d * z[i * NIN + j];
        }
    }
  ref_adamw (c, t, r->w1, gw1, r->m[0], r->v[0], H * NIN);
  ref_adamw (c, t, r->b1, gb1, r->m[1], r->v[1], H);
  ref_adamw (c, t, r->w2, gw2, r->m[2], r->v[2], H);
  ref_adamw (c, t, &r->b2, &gb2, r->m[3], r->v[3], 1);
  return loss / B;
}

static void
assert_weights (const char *what, const DcrTileHead *h, const Ref *r)
{
  guint H = h->hidden;
  g_autofree float *w = g_new (float, H * NIN + 2 * H + 1);
  g_autofree float *want = g_new (float, H * NIN + 2 * H + 1);
  memcpy (w, h->w1, sizeof (float) * H * NIN);
  memcpy (w + H * NIN, h->b1, sizeof (float) * H);
  memcpy (w + H * NIN + H, h->w2, sizeof (float) * H);
  w[H * NIN + 2 * H] = h->b2;
  for (guint i = 0; i < H * NIN; i++)
    want[i] = (float) r->w1[i];
  for (guint i = 0; i < H; i++)
    {
      want[H * NIN + i] = (float) r->b1[i];
      want[H * NIN + H + i] = (float) r->w2[i];
    }
  want[H * NIN + 2 * H] = (float) r->b2;
  dcr_test_assert_close (what, w, want, H * NIN + 2 * H + 1, 1e-5, 0);
}

static void
step_case (double dropout)
{
  enum { B = 7, H = 3, STEPS = 3 };
  g_autoptr (GError) err = NULL;
  g_autoptr (GRand) rng = g_rand_new_with_seed (11);
  g_autoptr (DcrTileHead) h = dcr_tile_head_new (H);
  dcr_tile_train_init (h, rng);
  /* nn.Linear's bounds */
  for (guint i = 0; i < H * NIN; i++)
    g_assert_cmpfloat (fabsf (h->w1[i]), <=, 1 / sqrt (NIN));
  for (guint i = 0; i < H; i++)
    g_assert_cmpfloat (fabsf (h->w2[i]), <=, 1 / sqrt (H));
  /* a larger rate than training's, so that the updates are well above the tolerance */
  DcrAdamWConfig c = { 1e-2, 0.9, 0.999, 1e-8, 0.1 };
  g_autoptr (DcrTileTrainStep) step = dcr_tile_train_step_new (dcr_test_context (), h, B, dropout, &c, &err);
  g_assert_no_error (err);
  Ref r;
  ref_init (&r, h);
  g_autoptr (DcrTileHead) got = dcr_tile_head_new (H);
  for (gint64 t = 1; t <= STEPS; t++)
    {
      float z[B * NIN], mask[B * H];
      gint32 y[B];
      dcr_test_fill (z, B * NIN, 100 + (guint32) t, -2, 2);
      for (int i = 0; i < B; i++)
        y[i] = (i + t) % 3 == 0;
      for (int i = 0; i < B * H; i++)
        mask[i] = (i * 7 + t) % 5 < 2 ? 0.0f : (float) (1 / (1 - dropout));
      gboolean drop = dropout > 0;
      double loss = 0;
      g_assert_true (dcr_tile_train_step_set_batch (step, z, y, drop ? mask : NULL, NULL, &err));
      g_assert_true (dcr_tile_train_step_run (step, t, &loss, &err));
      g_assert_no_error (err);
      double want = ref_step (&r, &c, t, z, y, drop ? mask : NULL, B);
      g_assert_cmpfloat (fabs (loss - want), <=, 1e-5 * (1 + fabs (want)));
      g_assert_true (dcr_tile_train_step_weights (step, got, &err));
      g_autofree char *what = g_strdup_printf ("weights after step %" G_GINT64_FORMAT, t);
      assert_weights (what, got, &r);
    }
  ref_clear (&r);
  dcr_test_assert_no_validation_errors ();
}

static void
test_step (void)
{
  step_case (0);
}

static void
test_step_dropout_mask (void)
{
  step_case (0.4);
}

/* ---- learning ------------------------------------------------------------ */

static double
gauss (GRand *r)
{
  double u = g_rand_double_range (r, 1e-12, 1), v = g_rand_double (r);
  return sqrt (-2 * log (u)) * cos (2 * G_PI * v);
}

/* Standardised tiles, a quarter of them "fake": shifted by delta along a
 * random unit direction (the same for every set made with dir_seed). */
static void
synth (gsize n, guint32 seed, guint32 dir_seed, double delta, float *z, gint32 *y)
{
  g_autoptr (GRand) dr = g_rand_new_with_seed (dir_seed);
  double u[NIN], norm = 0;
  for (int j = 0; j < NIN; j++)
    {
      u[j] = gauss (dr);
      norm += u[j] * u[j];
    }
  g_autoptr (GRand) r = g_rand_new_with_seed (seed);
  for (gsize i = 0; i < n; i++)
    {
      y[i] = g_rand_double (r) < 0.25;
      for (int j = 0; j < NIN; j++)
        z[i * NIN + j] = (float) (gauss (r) + (y[i] ? delta * u[j] / sqrt (norm) : 0));
    }
}

/* The head's logits straight from standardised inputs. */
static void
logits_of (const DcrTileHead *h, const float *z, gsize n, float *out)
{
  for (gsize i = 0; i < n; i++)
    {
      double s = h->b2;
      for (guint k = 0; k < h->hidden; k++)
        {
          double a = h->b1[k];
          for (int j = 0; j < NIN; j++)
            a += (double) h->w1[k * NIN + j] * z[i * NIN + j];
          s += h->w2[k] * (a > 0 ? a : 0);
        }
      out[i] = (float) s;
    }
}

static double
auc_of (const DcrTileHead *h, const float *z, const gint32 *y, gsize n)
{
  g_autofree float *s = g_new (float, n);
  logits_of (h, z, n, s);
  return dcr_metrics_roc_auc (s, y, n);
}

typedef struct {
  double first, last;
  guint calls;
} Losses;

static gboolean
on_epoch (guint epoch, guint epochs, double loss, gpointer data)
{
  Losses *l = data;
  if (epoch == 1)
    l->first = loss;
  l->last = loss;
  l->calls++;
  g_assert_cmpuint (epoch, ==, l->calls);
  return TRUE;
}

static void
learn_case (double dropout)
{
  enum { N = 3000, NT = 2000 };
  /* shift 3 along one direction: the best possible AUC is Φ(3/√2) ≈ 0.983 */
  g_autofree float *z = g_new (float, N * NIN), *zt = g_new (float, NT * NIN);
  g_autofree gint32 *y = g_new (gint32, N), *yt = g_new (gint32, NT);
  synth (N, 1, 7, 3.0, z, y);
  synth (NT, 2, 7, 3.0, zt, yt);
  DcrTileTrainOptions o;
  dcr_tile_train_options_init (&o);
  o.epochs = 8;
  o.hidden = 16;
  o.dropout = dropout;
  o.seed = 3;
  /* the untrained head does not already rank the tiles */
  {
    g_autoptr (GRand) rng = g_rand_new_with_seed (3);
    g_autoptr (DcrTileHead) h0 = dcr_tile_head_new (o.hidden);
    dcr_tile_train_init (h0, rng);
    double auc0 = auc_of (h0, zt, yt, NT);
    g_test_message ("untrained AUC %.4f", auc0);
    g_assert_cmpfloat (auc0, <, 0.9);
  }
  g_autoptr (GError) err = NULL;
  Losses l = { 0 };
  double final = 0;
  g_autoptr (DcrTileHead) h = dcr_tile_train (dcr_test_context (), z, y, N, &o, on_epoch, &l, &final, &err);
  g_assert_no_error (err);
  g_assert_nonnull (h);
  g_assert_cmpuint (h->hidden, ==, 16);
  g_assert_cmpuint (l.calls, ==, 8);
  g_assert_cmpfloat (final, ==, l.last);
  double auc = auc_of (h, zt, yt, NT);
  g_test_message ("dropout %.1f: loss %.4f -> %.4f, held-out AUC %.4f", dropout, l.first, l.last, auc);
  g_assert_cmpfloat (l.last, <, l.first);
  g_assert_cmpfloat (auc, >, 0.95);
  for (int j = 0; j < NIN; j++)
    g_assert_true (h->mean[j] == 0 && h->std[j] == 1);
  dcr_test_assert_no_validation_errors ();
}

static void
test_learn (void)
{
  learn_case (0);
}

static void
test_learn_dropout (void)
{
  learn_case (0.3);
}

static DcrTileHead *
small_run (guint64 seed)
{
  enum { N = 600 };
  g_autofree float *z = g_new (float, N * NIN);
  g_autofree gint32 *y = g_new (gint32, N);
  synth (N, 5, 9, 2.0, z, y);
  DcrTileTrainOptions o;
  dcr_tile_train_options_init (&o);
  o.epochs = 2;
  o.hidden = 8;
  o.batch = 128;
  o.seed = seed;
  g_autoptr (GError) err = NULL;
  DcrTileHead *h = dcr_tile_train (dcr_test_context (), z, y, N, &o, NULL, NULL, NULL, &err);
  g_assert_no_error (err);
  return h;
}

static void
test_seeded (void)
{
  g_autoptr (DcrTileHead) a = small_run (4), b = small_run (4), c = small_run (5);
  g_assert_cmpmem (a->w1, sizeof (float) * 8 * NIN, b->w1, sizeof (float) * 8 * NIN);
  g_assert_cmpmem (a->w2, sizeof (float) * 8, b->w2, sizeof (float) * 8);
  g_assert_true (a->b2 == b->b2);
  g_assert_true (memcmp (a->w1, c->w1, sizeof (float) * 8 * NIN) != 0);
}

static void
test_bad_data (void)
{
  enum { N = 10 };
  float z[N * NIN];
  gint32 y[N] = { 0 };
  dcr_test_fill (z, N * NIN, 3, -1, 1);
  DcrTileTrainOptions o;
  dcr_tile_train_options_init (&o);
  g_autoptr (GError) err = NULL;
  /* one class only */
  g_assert_null (dcr_tile_train (dcr_test_context (), z, y, N, &o, NULL, NULL, NULL, &err));
  g_assert_error (err, DCR_TILE_TRAIN_ERROR, DCR_TILE_TRAIN_ERROR_DATA);
  g_assert_nonnull (strstr (err->message, "both"));
  g_clear_error (&err);
  y[3] = 2;
  g_assert_null (dcr_tile_train (dcr_test_context (), z, y, N, &o, NULL, NULL, NULL, &err));
  g_assert_error (err, DCR_TILE_TRAIN_ERROR, DCR_TILE_TRAIN_ERROR_DATA);
  g_clear_error (&err);
  y[3] = 1;
  z[5] = NAN;
  g_assert_null (dcr_tile_train (dcr_test_context (), z, y, N, &o, NULL, NULL, NULL, &err));
  g_assert_error (err, DCR_TILE_TRAIN_ERROR, DCR_TILE_TRAIN_ERROR_DATA);
  g_clear_error (&err);
  z[5] = 0;
  o.dropout = 1;
  g_assert_null (dcr_tile_train (dcr_test_context (), z, y, N, &o, NULL, NULL, NULL, &err));
  g_assert_error (err, DCR_TILE_TRAIN_ERROR, DCR_TILE_TRAIN_ERROR_DATA);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tile-train/step", test_step);
  g_test_add_func ("/tile-train/step-dropout-mask", test_step_dropout_mask);
  g_test_add_func ("/tile-train/learn", test_learn);
  g_test_add_func ("/tile-train/learn-dropout", test_learn_dropout);
  g_test_add_func ("/tile-train/seeded", test_seeded);
  g_test_add_func ("/tile-train/bad-data", test_bad_data);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
