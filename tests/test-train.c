/* test-train.c — the training engine end to end on a synthetic task that
 * bypasses the backbone: "scenes" are random feature vectors, real photos
 * are scenes plus noise, fakes are photos with a shift on a few channels.
 * The loss must fall, the held-out AUC (new photos and fakes of the bank's
 * scenes, scored in single mode through GPU retrieval) must beat chance by
 * far, the threshold and band must land in the model; an interrupted run
 * resumed from its checkpoint must end where an uninterrupted one does. */
#include "dcr-test-tensors.h"
#include "dcr-model-private.h"
#include "dcr-metrics.h"
#include "dcr-op-loss.h"
#include "dcr-train.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#define D 24
#define SCENES 24
#define SHIFTED 6 /* channels a fake moves */

typedef struct {
  float *features;
  gint32 *labels;
  gint64 *pair;
  char **keys;
  gsize n;
  float *bank;       /* the training reals */
  char **bank_keys;
  gsize n_bank;
} Synth;

static float
gauss (GRand *r)
{
  double u = g_rand_double_range (r, 1e-12, 1), v = g_rand_double (r);
  return (float) (sqrt (-2 * log (u)) * cos (2 * G_PI * v));
}

static void
photo (GRand *r, const float *scene, float *out)
{
  for (int c = 0; c < D; c++)
    out[c] = scene[c] + 0.05f * gauss (r);
}

static void
fake_of (GRand *r, const float *real, float *out)
{
  for (int c = 0; c < D; c++)
    out[c] = real[c] + (c < SHIFTED ? 0.4f : 0) + 0.03f * gauss (r);
}

/* A held-out set: a new photo of every scene (real, rows 0 … SCENES − 1)
 * and a fake of another new photo of it (rows SCENES …). */
static void
held_out_set (GRand *rng, const float *scenes, float *test_f, gint32 *test_y)
{
  for (guint i = 0; i < SCENES; i++)
    {
      float tmp[D];
      photo (rng, scenes + i * D, test_f + i * D);
      photo (rng, scenes + i * D, tmp);
      fake_of (rng, tmp, test_f + (SCENES + i) * D);
      test_y[i] = 0;
      test_y[SCENES + i] = 1;
    }
}

/* Two real photos per scene (each other's nearest prototype), one fake per
 * real photo paired with it. */
static void
synth_make (Synth *s, float *scenes, GRand *r)
{
  for (int i = 0; i < SCENES * D; i++)
    scenes[i] = (float) g_rand_double (r);
  s->n = SCENES * 4;
  s->n_bank = SCENES * 2;
  s->features = g_new (float, s->n * D);
  s->labels = g_new (gint32, s->n);
  s->pair = g_new (gint64, s->n);
  s->keys = g_new0 (char *, s->n + 1);
  s->bank = g_new (float, s->n_bank * D);
  s->bank_keys = g_new0 (char *, s->n_bank + 1);
  for (gsize i = 0; i < s->n_bank; i++)
    {
      photo (r, scenes + (i / 2) * D, s->features + i * D);
      memcpy (s->bank + i * D, s->features + i * D, D * sizeof (float));
      s->labels[i] = 0;
      s->pair[i] = -1;
      s->keys[i] = g_strdup_printf ("real-%02" G_GSIZE_FORMAT, i);
      s->bank_keys[i] = g_strdup (s->keys[i]);
    }
  for (gsize i = 0; i < s->n_bank; i++)
    {
      gsize j = s->n_bank + i;
      fake_of (r, s->features + i * D, s->features + j * D);
      s->labels[j] = 1;
      s->pair[j] = (gint64) i;
      s->keys[j] = g_strdup_printf ("fake-%02" G_GSIZE_FORMAT, i);
    }
}

static void
synth_clear (Synth *s)
{
  g_free (s->features);
  g_free (s->labels);
  g_free (s->pair);
  g_strfreev (s->keys);
  g_free (s->bank);
  g_strfreev (s->bank_keys);
}

static DcrModel *
new_model (guint64 seed)
{
  g_autoptr (GError) err = NULL;
  DcrModelConfig c = { .backbone_id = "synthetic@0", .dim = D, .k = 3, .hidden = 32, .head_hidden = 16,
                       .gate = TRUE };
  DcrModel *m = dcr_model_new (dcr_test_context (), &c, seed, &err);
  g_assert_no_error (err);
  return m;
}

static DcrRetrieval *
bank_of (const Synth *s)
{
  g_autoptr (GError) err = NULL;
  DcrRetrieval *r = dcr_retrieval_new (dcr_test_context (), D, DCR_F32, 64, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_retrieval_set_features (r, s->bank, NULL, s->n_bank, &err));
  g_assert_no_error (err);
  return r;
}

typedef struct {
  guint epochs_seen;
  guint stop_after;
  double first, last;
} Progress;

static gboolean
on_progress (const DcrTrainProgress *p, gpointer data)
{
  Progress *pr = data;
  pr->epochs_seen++;
  if (pr->epochs_seen == 1)
    pr->first = p->loss[0];
  pr->last = p->loss[0];
  g_assert_true (isfinite (p->loss[0]));
  g_assert_cmpuint (p->epoch, <=, p->epochs);
  g_assert_cmpint (p->update, <=, p->updates);
  g_test_message ("epoch %u/%u loss %.4f (CE %.4f BCE %.4f SupCon %.4f) val AUC %.3f", p->epoch, p->epochs,
                  p->loss[0], p->loss[1], p->loss[2], p->loss[3], p->val_auc);
  return pr->stop_after == 0 || pr->epochs_seen < pr->stop_after;
}

/* p_fake of held-out features in single mode: GPU retrieval over the bank,
 * tokens gathered on the GPU, the heads. */
static void
score_single_logits (DcrModel *m, DcrRetrieval *r, const float *f, guint n, float *p_fake, float *logits)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrRetrievalRun) rr = dcr_retrieval_run_new (r, n, dcr_model_config (m)->k, &err);
  g_autoptr (DcrModelRun) run = dcr_model_run_new (m, DCR_F32, n, dcr_retrieval_run_k (rr), FALSE, &err);
  g_assert_no_error (err);
  gint64 s[] = { n, D };
  g_autoptr (DcrTensor) t = dcr_tensor_new (dcr_test_context (), DCR_POOL_ACTIVATIONS, DCR_F32, 2, s, &err);
  g_assert_true (dcr_tensor_upload (t, f, &err));
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_true (dcr_model_run_record_single (run, seq, rr, t, &err));
  g_assert_no_error (err);
  dcr_test_submit (seq);
  g_assert_true (dcr_model_run_outputs (run, n, logits, p_fake, NULL, NULL, NULL, NULL, &err));
  g_assert_no_error (err);
}

static void
score_single (DcrModel *m, DcrRetrieval *r, const float *f, guint n, float *p_fake)
{
  score_single_logits (m, r, f, n, p_fake, NULL);
}

static void
test_end_to_end (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GRand) rng = g_rand_new_with_seed (11);
  float scenes[SCENES * D];
  Synth s;
  synth_make (&s, scenes, rng);
  g_autoptr (DcrRetrieval) bank = bank_of (&s);
  g_autoptr (DcrModel) m = new_model (1);

  /* held out: a new photo and a new fake of every scene */
  const guint nt = SCENES * 2;
  float test_f[SCENES * 2 * D];
  gint32 test_y[SCENES * 2];
  held_out_set (rng, scenes, test_f, test_y);
  float before[SCENES * 2];
  score_single (m, bank, test_f, nt, before);
  double auc_before = dcr_metrics_roc_auc (before, test_y, nt);

  DcrTrainData data = { s.features, s.labels, s.pair, (const char *const *) s.keys, s.n, bank,
                        (const char *const *) s.bank_keys };
  DcrTrainOptions o = { .epochs = 30, .batch = 16, .seed = 3, .lr = 1e-2, .weight_decay = 1e-4 };
  Progress pr = { 0 };
  DcrTrainSummary sum;
  g_assert_true (dcr_train_run (m, &data, &o, on_progress, &pr, &sum, &err));
  g_assert_no_error (err);
  g_assert_cmpuint (pr.epochs_seen, ==, 30);
  g_assert_cmpuint (sum.tokens, ==, 3);
  g_assert_cmpuint (sum.n_train + sum.n_val, ==, s.n);
  g_assert_cmpuint (sum.n_val, >, 0);
  g_assert_cmpfloat (sum.last_loss, <, 0.7 * sum.first_loss);
  g_assert_cmpfloat (sum.val_auc, >, 0.8);

  float after[SCENES * 2];
  score_single (m, bank, test_f, nt, after);
  double auc = dcr_metrics_roc_auc (after, test_y, nt);
  g_test_message ("held-out AUC %.3f before training, %.3f after; loss %.3f -> %.3f; threshold %.3f band [%.3f, %.3f]",
                  auc_before, auc, sum.first_loss, sum.last_loss, sum.threshold, sum.band_lo, sum.band_hi);
  g_assert_cmpfloat (auc, >, 0.85);

  /* the decision and the summary are in the model, and survive the file */
  const DcrModelConfig *c = dcr_model_config (m);
  g_assert_cmpfloat (c->threshold, ==, sum.threshold);
  g_assert_cmpfloat (c->band_lo, <=, c->threshold);
  g_assert_cmpfloat (c->band_hi, >=, c->threshold);
  g_assert_cmpfloat (c->band_hi - c->band_lo, >=, 0.099);
  g_assert_nonnull (strstr (c->training, "\"val_auc\""));
  g_autofree char *dir = g_dir_make_tmp ("dcr-train-XXXXXX", &err);
  g_autofree char *path = g_build_filename (dir, "m.safetensors", NULL);
  g_assert_true (dcr_model_save (m, path, &err));
  g_autoptr (DcrModel) l = dcr_model_load (dcr_test_context (), path, &err);
  g_assert_no_error (err);
  float reloaded[SCENES * 2];
  score_single (l, bank, test_f, nt, reloaded);
  dcr_test_assert_close ("reloaded model", reloaded, after, nt, 1e-6, 1e-6);
  g_remove (path);
  g_rmdir (dir);
  synth_clear (&s);
  dcr_test_assert_no_validation_errors ();
}

static void
test_resume (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GRand) rng = g_rand_new_with_seed (12);
  float scenes[SCENES * D];
  Synth s;
  synth_make (&s, scenes, rng);
  g_autoptr (DcrRetrieval) bank = bank_of (&s);
  DcrTrainData data = { s.features, s.labels, s.pair, (const char *const *) s.keys, s.n, bank,
                        (const char *const *) s.bank_keys };
  g_autofree char *dir = g_dir_make_tmp ("dcr-train-XXXXXX", &err);
  g_autofree char *ck = g_build_filename (dir, "run.checkpoint", NULL);
  DcrTrainOptions o = { .epochs = 4, .batch = 16, .seed = 9, .lr = 3e-3, .warmup = 2, .checkpoint = ck };

  g_autoptr (DcrModel) whole = new_model (2);
  g_assert_true (dcr_train_run (whole, &data, &o, NULL, NULL, NULL, &err));
  g_assert_no_error (err);
  g_remove (ck);

  g_autoptr (DcrModel) part = new_model (2);
  Progress stop = { .stop_after = 2 };
  g_assert_false (dcr_train_run (part, &data, &o, on_progress, &stop, NULL, &err));
  g_assert_error (err, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_CANCELLED);
  g_clear_error (&err);
  g_assert_true (g_file_test (ck, G_FILE_TEST_EXISTS));

  /* a fresh model (other initial weights) resumes from the checkpoint */
  g_autoptr (DcrModel) resumed = new_model (77);
  o.resume = TRUE;
  Progress pr = { 0 };
  g_assert_true (dcr_train_run (resumed, &data, &o, on_progress, &pr, NULL, &err));
  g_assert_no_error (err);
  g_assert_cmpuint (pr.epochs_seen, ==, 2);
  for (int i = 0; i < DCR_N_PARAMS; i++)
    {
      gint64 sh[2];
      int nd = dcr_model_param_shape (whole, i, sh);
      gsize n = nd == 2 ? sh[0] * sh[1] : sh[0];
      dcr_test_assert_close (dcr_model_param_name (i), dcr_model_host_param (resumed, i),
                             dcr_model_host_param (whole, i), n, 1e-6, 1e-5);
    }

  /* a checkpoint of another run is refused */
  g_autoptr (DcrModel) other = new_model (2);
  o.seed = 10;
  g_assert_false (dcr_train_run (other, &data, &o, NULL, NULL, NULL, &err));
  g_assert_error (err, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_CHECKPOINT);
  g_assert_nonnull (strstr (err->message, "seed"));
  g_remove (ck);
  g_rmdir (dir);
  synth_clear (&s);
  dcr_test_assert_no_validation_errors ();
}

/* Without a bank: one token, a random real of the training split. */
static void
test_pair_only (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GRand) rng = g_rand_new_with_seed (13);
  float scenes[SCENES * D];
  Synth s;
  synth_make (&s, scenes, rng);
  g_autoptr (DcrModel) m = new_model (4);
  DcrTrainData data = { s.features, s.labels, NULL, (const char *const *) s.keys, s.n, NULL, NULL };
  DcrTrainOptions o = { .epochs = 3, .batch = 16, .seed = 1, .lr = 3e-3 };
  DcrTrainSummary sum;
  g_assert_true (dcr_train_run (m, &data, &o, NULL, NULL, &sum, &err));
  g_assert_no_error (err);
  g_assert_cmpuint (sum.tokens, ==, 1);

  /* keys shared by a group exclude the whole group: with every sample and
   * prototype in one group, no sample has a token */
  g_autoptr (DcrRetrieval) bank = bank_of (&s);
  const char *group = "group:all";
  g_autofree const char **same = g_new (const char *, s.n);
  g_autofree const char **bank_same = g_new (const char *, s.n_bank);
  for (gsize i = 0; i < s.n; i++)
    same[i] = group;
  for (gsize i = 0; i < s.n_bank; i++)
    bank_same[i] = group;
  DcrTrainData grouped = { s.features, s.labels, NULL, same, s.n, bank, bank_same };
  g_assert_false (dcr_train_run (m, &grouped, &o, NULL, NULL, &sum, &err));
  g_assert_error (err, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DATA);
  g_assert_nonnull (strstr (err->message, "no prototype other than itself"));
  g_clear_error (&err);

  /* one class only is refused */
  for (gsize i = 0; i < s.n; i++)
    s.labels[i] = 0;
  g_assert_false (dcr_train_run (m, &data, &o, NULL, NULL, &sum, &err));
  g_assert_error (err, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DATA);
  synth_clear (&s);
}

/* Augmented views reach training: the clean fakes here carry no trace
 * (they are plain photos of their scene), only their views do. Trained
 * with the views, the model finds the fakes of a held-out set; trained on
 * the clean features alone, it cannot (it even learns the reverse: a
 * clean fake lies nearer its bank prototypes than a real photo, which
 * never meets itself there). The summary records the views. */
static double
views_run (guint n_views, char **training)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GRand) rng = g_rand_new_with_seed (21);
  float scenes[SCENES * D];
  Synth s;
  synth_make (&s, scenes, rng);
  const guint V = 3;
  g_autofree float *views = g_new (float, V * s.n * D);
  for (guint v = 0; v < V; v++)
    for (gsize i = 0; i < s.n_bank; i++)
      {
        float *real = views + ((gsize) v * s.n + i) * D;
        photo (rng, scenes + (i / 2) * D, real);
        fake_of (rng, s.features + i * D, views + ((gsize) v * s.n + s.n_bank + i) * D);
      }
  for (gsize i = 0; i < s.n_bank; i++)
    photo (rng, scenes + (i / 2) * D, s.features + (s.n_bank + i) * D);
  g_autoptr (DcrRetrieval) bank = bank_of (&s);
  g_autoptr (DcrModel) m = new_model (5);
  DcrTrainData data = { s.features, s.labels, s.pair, (const char *const *) s.keys, s.n, bank,
                        (const char *const *) s.bank_keys, NULL, n_views ? views : NULL, n_views, "test views" };
  DcrTrainOptions o = { .epochs = 30, .batch = 16, .seed = 3, .lr = 1e-2, .weight_decay = 1e-4 };
  DcrTrainSummary sum;
  g_assert_true (dcr_train_run (m, &data, &o, NULL, NULL, &sum, &err));
  g_assert_no_error (err);

  const guint nt = SCENES * 2;
  float test_f[SCENES * 2 * D], p[SCENES * 2];
  gint32 test_y[SCENES * 2];
  held_out_set (rng, scenes, test_f, test_y);
  score_single (m, bank, test_f, nt, p);
  *training = g_strdup (dcr_model_config (m)->training);
  synth_clear (&s);
  return dcr_metrics_roc_auc (p, test_y, nt);
}

static void
test_views (void)
{
  g_autofree char *with_json = NULL, *without_json = NULL;
  double with = views_run (3, &with_json), without = views_run (0, &without_json);
  g_test_message ("held-out AUC trained with views %.3f, without %.3f", with, without);
  g_assert_cmpfloat (with, >, 0.85);
  g_assert_cmpfloat (without, <, 0.7);
  g_assert_nonnull (strstr (with_json, "\"views\":3"));
  g_assert_nonnull (strstr (with_json, "\"augment\":\"test views\""));
  g_assert_null (strstr (without_json, "\"views\""));
  dcr_test_assert_no_validation_errors ();
}

/* normalise(fused) of a model's difference attention on tokens r, by an
 * inference run (the fused feature does not depend on dropout). */
static void
fused_unit (DcrModel *m, const float *f, const float *r, guint b, guint l, float *out)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrModelRun) run = dcr_model_run_new (m, DCR_F32, b, l, FALSE, &err);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_no_error (err);
  g_assert_true (dcr_model_run_record_tokens (run, seq, &err));
  g_assert_true (dcr_model_run_set_inputs (run, f, r, b, &err));
  g_assert_no_error (err);
  dcr_test_submit (seq);
  g_assert_true (dcr_tensor_download (run->fused, out, &err));
  for (guint i = 0; i < b; i++)
    {
      double n2 = 0;
      for (int c = 0; c < D; c++)
        n2 += (double) out[i * D + c] * out[i * D + c];
      for (int c = 0; c < D; c++)
        out[i * D + c] = (float) (out[i * D + c] / MAX (sqrt (n2), 1e-12));
    }
}

static gsize
param_n (DcrModel *m, int i)
{
  gint64 sh[2];
  return dcr_model_param_shape (m, i, sh) == 2 ? sh[0] * sh[1] : sh[0];
}

/* normalise(fused) of the step's key encoder (its difference attention,
 * the model's heads) on tokens r. */
static void
key_copy_fused (DcrTrainStep *step, DcrModel *m, const float *f, const float *r, guint b, guint l, float *out)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrModel) key = new_model (9);
  for (int i = 0; i < DCR_N_PARAMS; i++)
    if (dcr_model_host_param (m, i))
      {
        g_autofree float *v = g_new (float, param_n (m, i));
        if (i >= DCR_P_WQ && i <= DCR_P_BG)
          g_assert_true (dcr_train_step_key_param (step, i, v, &err));
        else
          memcpy (v, dcr_model_host_param (m, i), param_n (m, i) * sizeof (float));
        dcr_model_set_param (key, i, v);
      }
  g_assert_no_error (err);
  fused_unit (key, f, r, b, l, out);
}

/* One MoCo step on tiny shapes against the host: InfoNCE of (q, k⁺ = q as
 * the key encoder starts as a copy, the initial queue), the key encoder's
 * momentum move, and the queue's whole-batch wrapping writes. */
static void
test_moco_step (void)
{
  g_autoptr (GError) err = NULL;
  enum { B = 4, L = 2, Q = 6 };
  const float mom = 0.9f;
  g_autoptr (GRand) rng = g_rand_new_with_seed (21);
  g_autoptr (DcrModel) m = new_model (5);
  float f[B * D], r[B * L * D];
  gint32 y[B] = { 0, 1, 0, 1 };
  for (int i = 0; i < B * D; i++)
    f[i] = (float) g_rand_double (rng);
  for (int i = 0; i < B * L * D; i++)
    r[i] = (float) g_rand_double (rng);
  float q[B * D];
  fused_unit (m, f, r, B, L, q);
  float *theta0[DCR_N_PARAMS] = { 0 };
  for (int i = DCR_P_WQ; i <= DCR_P_BG; i++)
    if (dcr_model_host_param (m, i))
      theta0[i] = g_memdup2 (dcr_model_host_param (m, i), param_n (m, i) * sizeof (float));

  DcrTrainLoss loss = { .lambda_supcon = 0.2f, .temperature = 0.5f, .moco = TRUE, .moco_queue = Q, .lambda_infonce = 0.5f,
                        .moco_momentum = mom, .moco_seed = 4 };
  g_autoptr (DcrTrainStep) step = dcr_train_step_new (m, B, L, &loss, TRUE, &err);
  g_assert_no_error (err);
  DcrMocoQueue *queue = dcr_train_step_queue (step);
  g_assert_cmpuint (dcr_moco_queue_size (queue), ==, Q);
  float q0[Q * D], q1[Q * D], q2[Q * D];
  g_assert_true (dcr_tensor_download ((DcrTensor *) dcr_moco_queue_tensor (queue), q0, &err));
  g_assert_true (dcr_train_step_set_batch (step, f, r, y, NULL, rng, &err));
  double l[4];
  g_assert_true (dcr_train_step_run (step, 1, 1e-2, l, &err));
  g_assert_no_error (err);

  /* InfoNCE value and its share of the total */
  double want = dcr_ref_infonce (q, q, q0, B, Q, D, 0.5f, 1.0f, NULL, NULL);
  g_test_message ("InfoNCE %.6f (host %.6f)", dcr_train_step_infonce (step), want);
  g_assert_cmpfloat_with_epsilon (dcr_train_step_infonce (step), want, 1e-4 * MAX (1, fabs (want)));
  g_assert_cmpfloat_with_epsilon (l[0], l[1] + l[2] + 0.2 * l[3] + 0.5 * want, 1e-4 * MAX (1, fabs (l[0])));

  /* θ_k ← m·θ_k + (1 − m)·θ_q after the update, θ_k having started at θ_q */
  g_assert_true (dcr_model_pull (m, &err));
  for (int i = DCR_P_WQ; i <= DCR_P_BG; i++)
    {
      if (!theta0[i])
        continue;
      gsize n = param_n (m, i);
      g_autofree float *k = g_new (float, n);
      g_autofree float *w = g_new (float, n);
      g_assert_true (dcr_train_step_key_param (step, i, k, &err));
      const float *tq = dcr_model_host_param (m, i);
      double moved = 0;
      for (gsize j = 0; j < n; j++)
        {
          w[j] = theta0[i][j];
          moved += fabs (tq[j] - theta0[i][j]);
        }
      g_assert_cmpfloat (moved, >, 0);
      dcr_ref_momentum_update (w, tq, (gint64) n, mom);
      dcr_test_assert_close (dcr_model_param_name (i), k, w, n, 1e-7, 1e-6);
      g_free (theta0[i]);
    }

  /* the queue: k⁺ (= q) at rows 0…3, pointer 4 */
  g_assert_cmpuint (dcr_moco_queue_pointer (queue), ==, 4);
  g_assert_true (dcr_tensor_download ((DcrTensor *) dcr_moco_queue_tensor (queue), q1, &err));
  dcr_test_assert_close ("queue after one step", q1, q, B * D, 1e-5, 1e-4);
  dcr_test_assert_close ("untouched ring rows", q1 + B * D, q0 + B * D, (Q - B) * D, 0, 0);

  /* a second step wraps: its keys from the moved key encoder go to rows 4, 5, 0, 1 */
  float k2[B * D];
  key_copy_fused (step, m, f, r, B, L, k2);
  g_assert_true (dcr_train_step_set_batch (step, f, r, y, NULL, rng, &err));
  g_assert_true (dcr_train_step_run (step, 2, 1e-2, l, &err));
  g_assert_no_error (err);
  g_assert_cmpuint (dcr_moco_queue_pointer (queue), ==, 2);
  g_assert_true (dcr_tensor_download ((DcrTensor *) dcr_moco_queue_tensor (queue), q2, &err));
  dcr_test_assert_close ("wrapped head", q2 + 4 * D, k2, 2 * D, 1e-5, 1e-4);
  dcr_test_assert_close ("wrapped tail", q2, k2 + 2 * D, 2 * D, 1e-5, 1e-4);
  dcr_test_assert_close ("kept rows", q2 + 2 * D, q1 + 2 * D, 2 * D, 0, 0);
  dcr_test_assert_no_validation_errors ();
}

/* Pinned prototypes in the MoCo queue: their rows hold the key encoder's
 * keys of the pinned inputs, the ring's writes (wrapping several times)
 * never touch them, and a refresh follows the moved key encoder. A run of
 * the loop with pinned bank prototypes records them. */
static void
test_moco_pinned (void)
{
  g_autoptr (GError) err = NULL;
  enum { B = 4, L = 2, Q = 6, P = 3 };
  g_autoptr (GRand) rng = g_rand_new_with_seed (31);
  g_autoptr (DcrModel) m = new_model (7);
  float f[B * D], r[B * L * D], pf[P * D], pr[P * L * D];
  gint32 y[B] = { 0, 1, 0, 1 };
  for (int i = 0; i < B * D; i++)
    f[i] = (float) g_rand_double (rng);
  for (int i = 0; i < B * L * D; i++)
    r[i] = (float) g_rand_double (rng);
  for (int i = 0; i < P * D; i++)
    pf[i] = (float) g_rand_double (rng);
  for (int i = 0; i < P * L * D; i++)
    pr[i] = (float) g_rand_double (rng);
  DcrTrainLoss loss = { .moco = TRUE, .moco_queue = Q, .moco_momentum = 0.9f, .moco_seed = 2, .moco_pinned = P };
  g_autoptr (DcrTrainStep) step = dcr_train_step_new (m, B, L, &loss, TRUE, &err);
  g_assert_no_error (err);
  DcrMocoQueue *queue = dcr_train_step_queue (step);
  g_assert_cmpuint (dcr_moco_queue_n_pinned (queue), ==, P);
  g_assert_false (dcr_train_step_set_pinned (step, pf, pr, P - 1, &err));
  g_assert_error (err, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DATA);
  g_clear_error (&err);

  float want[P * D], q0[(P + Q) * D], q1[(P + Q) * D];
  key_copy_fused (step, m, pf, pr, P, L, want);
  g_assert_true (dcr_train_step_set_pinned (step, pf, pr, P, &err));
  g_assert_no_error (err);
  g_assert_true (dcr_tensor_download ((DcrTensor *) dcr_moco_queue_tensor (queue), q0, &err));
  dcr_test_assert_close ("pinned keys", q0, want, P * D, 1e-5, 1e-4);

  double l[4];
  for (int u = 1; u <= 4; u++) /* 16 keys through a ring of 6 */
    {
      g_assert_true (dcr_train_step_set_batch (step, f, r, y, NULL, rng, &err));
      g_assert_true (dcr_train_step_run (step, u, 1e-2, l, &err));
      g_assert_no_error (err);
    }
  g_assert_true (dcr_tensor_download ((DcrTensor *) dcr_moco_queue_tensor (queue), q1, &err));
  dcr_test_assert_close ("pinned rows after the ring wrapped", q1, q0, P * D, 0, 0);
  double ring_moved = 0;
  for (int i = P * D; i < (P + Q) * D; i++)
    ring_moved += fabs (q1[i] - q0[i]);
  g_assert_cmpfloat (ring_moved, >, 0.1);

  /* a refresh takes the key encoder as it is now (it moved) */
  float moved[P * D], q2[(P + Q) * D];
  key_copy_fused (step, m, pf, pr, P, L, moved);
  g_assert_true (dcr_train_step_set_pinned (step, pf, pr, P, &err));
  g_assert_true (dcr_tensor_download ((DcrTensor *) dcr_moco_queue_tensor (queue), q2, &err));
  dcr_test_assert_close ("refreshed pinned keys", q2, moved, P * D, 1e-5, 1e-4);
  dcr_test_assert_close ("ring untouched by the refresh", q2 + P * D, q1 + P * D, Q * D, 0, 0);
  double diff = 0;
  for (int i = 0; i < P * D; i++)
    diff += fabs (moved[i] - want[i]);
  g_assert_cmpfloat (diff, >, 0);

  /* the loop: every fourth bank prototype pinned */
  Synth s;
  float scenes[SCENES * D];
  synth_make (&s, scenes, rng);
  g_autoptr (DcrRetrieval) bank = bank_of (&s);
  g_autofree gboolean *pinned = g_new0 (gboolean, s.n_bank);
  for (gsize i = 0; i < s.n_bank; i += 4)
    pinned[i] = TRUE;
  g_autoptr (DcrModel) m2 = new_model (8);
  DcrTrainData data = { s.features, s.labels, s.pair, (const char *const *) s.keys, s.n, bank,
                        (const char *const *) s.bank_keys, .bank_pinned = pinned };
  DcrTrainOptions o = { .epochs = 8, .batch = 16, .seed = 3, .lr = 1e-2, .weight_decay = 1e-4,
                        .loss = { .moco = TRUE, .moco_queue = 32 } };
  DcrTrainSummary sum;
  g_assert_true (dcr_train_run (m2, &data, &o, NULL, NULL, &sum, &err));
  g_assert_no_error (err);
  g_assert_cmpfloat (sum.last_loss, <, sum.first_loss);
  g_autofree char *want_json = g_strdup_printf ("\"moco_pinned\":%" G_GSIZE_FORMAT, s.n_bank / 4);
  g_assert_nonnull (strstr (dcr_model_config (m2)->training, want_json));
  synth_clear (&s);
  dcr_test_assert_no_validation_errors ();
}

/* The synthetic run still learns with MoCo, and a run resumed from its
 * checkpoint (key encoder, queue and pointer included) ends where an
 * uninterrupted one does. */
static void
test_moco_end_to_end_resume (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GRand) rng = g_rand_new_with_seed (13);
  float scenes[SCENES * D];
  Synth s;
  synth_make (&s, scenes, rng);
  g_autoptr (DcrRetrieval) bank = bank_of (&s);
  DcrTrainData data = { s.features, s.labels, s.pair, (const char *const *) s.keys, s.n, bank,
                        (const char *const *) s.bank_keys };
  DcrTrainLoss moco = { .moco = TRUE, .moco_queue = 40, .lambda_infonce = 0.1f, .moco_momentum = 0.99f };

  /* learns: held-out photos and fakes of every scene */
  g_autoptr (DcrModel) m = new_model (1);
  DcrTrainOptions o = { .epochs = 30, .batch = 16, .seed = 3, .lr = 1e-2, .weight_decay = 1e-4, .loss = moco };
  DcrTrainSummary sum;
  g_assert_true (dcr_train_run (m, &data, &o, NULL, NULL, &sum, &err));
  g_assert_no_error (err);
  g_assert_nonnull (strstr (dcr_model_config (m)->training, "\"moco_queue\":40"));
  float test_f[SCENES * 2 * D], after[SCENES * 2];
  gint32 test_y[SCENES * 2];
  held_out_set (rng, scenes, test_f, test_y);
  score_single (m, bank, test_f, SCENES * 2, after);
  double auc = dcr_metrics_roc_auc (after, test_y, SCENES * 2);
  g_test_message ("MoCo: held-out AUC %.3f, val AUC %.3f, loss %.3f -> %.3f", auc, sum.val_auc, sum.first_loss,
                  sum.last_loss);
  g_assert_cmpfloat (auc, >, 0.85);
  g_assert_cmpfloat (sum.last_loss, <, 0.7 * sum.first_loss);

  /* resume: the queue (40) wraps within the 2 epochs before the stop */
  g_autofree char *dir = g_dir_make_tmp ("dcr-train-XXXXXX", &err);
  g_autofree char *ck = g_build_filename (dir, "run.checkpoint", NULL);
  DcrTrainOptions r = { .epochs = 4, .batch = 16, .seed = 9, .lr = 3e-3, .warmup = 2, .checkpoint = ck,
                        .loss = moco };
  g_autoptr (DcrModel) whole = new_model (2);
  g_assert_true (dcr_train_run (whole, &data, &r, NULL, NULL, NULL, &err));
  g_assert_no_error (err);
  g_remove (ck);
  g_autoptr (DcrModel) part = new_model (2);
  Progress stop = { .stop_after = 2 };
  g_assert_false (dcr_train_run (part, &data, &r, on_progress, &stop, NULL, &err));
  g_assert_error (err, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_CANCELLED);
  g_clear_error (&err);
  g_autoptr (DcrModel) resumed = new_model (77);
  r.resume = TRUE;
  g_assert_true (dcr_train_run (resumed, &data, &r, NULL, NULL, NULL, &err));
  g_assert_no_error (err);
  for (int i = 0; i < DCR_N_PARAMS; i++)
    if (dcr_model_host_param (whole, i))
      dcr_test_assert_close (dcr_model_param_name (i), dcr_model_host_param (resumed, i),
                             dcr_model_host_param (whole, i), param_n (whole, i), 1e-6, 1e-5);

  /* a MoCo checkpoint is refused by a run without MoCo */
  g_autoptr (DcrModel) other = new_model (2);
  r.loss = (DcrTrainLoss) { 0 };
  g_assert_false (dcr_train_run (other, &data, &r, NULL, NULL, NULL, &err));
  g_assert_error (err, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_CHECKPOINT);
  g_assert_nonnull (strstr (err->message, "MoCo"));
  g_remove (ck);
  g_rmdir (dir);
  synth_clear (&s);
  dcr_test_assert_no_validation_errors ();
}

/* The fusion's logistic regression recovers the weights that generated its
 * data, and refuses data it cannot fit. */
static void
test_fit_fusion (void)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (21);
  const gsize n = 20000;
  g_autofree double *x = g_new (double, 2 * n);
  g_autofree gint32 *y = g_new (gint32, n);
  const double a = 1.5, b = -0.8, c = 0.3;
  for (gsize i = 0; i < n; i++)
    {
      x[2 * i] = 2.0 * gauss (rng);
      x[2 * i + 1] = 1.0 + gauss (rng);
      double p = 1.0 / (1.0 + exp (-(a * x[2 * i] + b * x[2 * i + 1] + c)));
      y[i] = g_rand_double (rng) < p;
    }
  float w[3];
  g_assert_true (dcr_train_fit_fusion (x, y, n, w));
  g_test_message ("fusion fit %.3f %.3f %.3f (true %.1f %.1f %.1f)", w[0], w[1], w[2], a, b, c);
  g_assert_cmpfloat (fabs (w[0] - a), <, 0.1);
  g_assert_cmpfloat (fabs (w[1] - b), <, 0.1);
  g_assert_cmpfloat (fabs (w[2] - c), <, 0.1);
  /* one class only: the intercept runs away */
  for (gsize i = 0; i < n; i++)
    y[i] = 1;
  g_assert_false (dcr_train_fit_fusion (x, y, n, w));
}

/* With fusion on, training fits it on the validation split: the model
 * carries it, the summary records it, and the fused score follows the
 * column that carries the evidence. */
static void
test_fusion_end_to_end (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GRand) rng = g_rand_new_with_seed (12);
  float scenes[SCENES * D];
  Synth s;
  synth_make (&s, scenes, rng);
  /* column 5: a noisy copy of the label (as a tile score would be) */
  for (gsize i = 0; i < s.n; i++)
    s.features[i * D + 5] = (float) (s.labels[i] * 1.0 + 0.5 * gauss (rng));
  g_autoptr (DcrRetrieval) bank = bank_of (&s);
  g_autoptr (DcrModel) m = new_model (2);
  DcrTrainData data = { s.features, s.labels, s.pair, (const char *const *) s.keys, s.n, bank,
                        (const char *const *) s.bank_keys };
  DcrTrainOptions o = { .epochs = 4, .batch = 16, .seed = 3, .lr = 1e-2, .weight_decay = 1e-4, .fusion = TRUE,
                        .fusion_column = 5 };
  DcrTrainSummary sum;
  g_assert_true (dcr_train_run (m, &data, &o, NULL, NULL, &sum, &err));
  g_assert_no_error (err);
  g_assert_true (sum.fusion);
  const DcrModelConfig *c = dcr_model_config (m);
  g_assert_true (c->fusion);
  g_assert_cmpuint (c->fusion_column, ==, 5);
  g_assert_cmpfloat (c->fusion_w[1], >, 0.5);
  for (int i = 0; i < 3; i++)
    g_assert_cmpfloat (c->fusion_w[i], ==, sum.fusion_w[i]);
  g_test_message ("fusion %.3f %.3f %.3f; val AUC heads %.3f, fused %.3f", sum.fusion_w[0], sum.fusion_w[1],
                  sum.fusion_w[2], sum.val_auc_heads, sum.val_auc);
  g_assert_cmpfloat (sum.val_auc, >=, sum.val_auc_heads - 0.02);
  g_assert_nonnull (strstr (c->training, "\"fusion\""));
  /* the fused p_fake of a batch: σ(a·(l1 − l0) + b·f[5] + c) */
  const guint n = 8;
  float lg[2 * 8], p[8];
  score_single_logits (m, bank, s.features, n, p, lg);
  for (guint i = 0; i < n; i++)
    {
      double z = c->fusion_w[0] * ((double) lg[2 * i + 1] - lg[2 * i]) + c->fusion_w[1] * s.features[i * D + 5] +
                 c->fusion_w[2];
      g_assert_cmpfloat (fabs (p[i] - 1.0 / (1.0 + exp (-z))), <, 1e-6);
    }
  synth_clear (&s);
  dcr_test_assert_no_validation_errors ();
}

/* The JPEG tests' split: 8 reals and their 8 fakes train; 40 reals and 40
 * fakes validate, every other one of each a "JPEG" (20 per class and kind:
 * the minimum), whose fakes are fresh photos of their scenes (as evidence
 * that JPEG erased would be). */
static void
jpeg_split (Synth *s, const float *scenes, GRand *rng, gboolean **held, gboolean **jpeg)
{
  gsize nr = s->n_bank;
  *held = g_new0 (gboolean, s->n);
  *jpeg = g_new0 (gboolean, s->n);
  for (gsize i = 0; i < s->n; i++)
    {
      gsize j = i < nr ? i : i - nr;
      (*held)[i] = j >= 8;
      (*jpeg)[i] = (*held)[i] && (j % 2);
      if ((*jpeg)[i] && s->labels[i])
        photo (rng, scenes + (j / 2) * D, s->features + i * D);
    }
}

/* One JPEG real fewer: one too few for a decision of its own. */
static void
drop_one_jpeg_real (const Synth *s, gboolean *jpeg)
{
  for (gsize i = 0; i < s->n; i++)
    if (jpeg[i] && !s->labels[i])
      {
        jpeg[i] = FALSE;
        return;
      }
}

/* A decision per kind of file: the validation split's "JPEG" fakes are fresh
 * photos of their scenes (indistinguishable from reals, as evidence that
 * JPEG erased would be), its other fakes keep their shift. The JPEG decision
 * must come from the JPEG files alone (a chance AUC, a wide band), the
 * model's own from the others. */
static void
test_jpeg_decision (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GRand) rng = g_rand_new_with_seed (13);
  float scenes[SCENES * D];
  Synth s;
  synth_make (&s, scenes, rng);
  g_autoptr (DcrRetrieval) bank = bank_of (&s);
  g_autofree gboolean *held = NULL, *jpeg = NULL;
  jpeg_split (&s, scenes, rng, &held, &jpeg);
  g_assert_cmpuint (DCR_TRAIN_DECISION_MIN_PER_CLASS, ==, 20);
  DcrTrainData data = { s.features, s.labels, s.pair, (const char *const *) s.keys, s.n, bank,
                        (const char *const *) s.bank_keys, held };
  data.jpeg = jpeg;
  DcrTrainOptions o = { .epochs = 20, .batch = 16, .seed = 3, .lr = 1e-2, .weight_decay = 1e-4,
                        .jpeg_decision = TRUE };
  g_autoptr (DcrModel) m = new_model (4);
  DcrTrainSummary sum;
  g_assert_true (dcr_train_run (m, &data, &o, NULL, NULL, &sum, &err));
  g_assert_no_error (err);
  g_test_message ("other: AUC %.3f threshold %.3f band [%.3f, %.3f); JPEG: AUC %.3f threshold %.3f band [%.3f, %.3f)",
                  sum.val_auc_other, sum.threshold, sum.band_lo, sum.band_hi, sum.val_auc_jpeg, sum.jpeg.threshold,
                  sum.jpeg.band_lo, sum.jpeg.band_hi);
  g_assert_cmpuint (sum.n_val, ==, 80);
  g_assert_true (sum.jpeg_decision);
  g_assert_cmpuint (sum.n_val_jpeg, ==, 40);
  g_assert_cmpfloat (sum.val_auc_other, >, 0.85);
  g_assert_cmpfloat (sum.val_auc_jpeg, <, 0.75);
  g_assert_cmpfloat (sum.jpeg.band_hi - sum.jpeg.band_lo, >, sum.band_hi - sum.band_lo + 0.1);
  const DcrModelConfig *c = dcr_model_config (m);
  g_assert_true (c->jpeg_decision);
  g_assert_cmpfloat (c->threshold, ==, sum.threshold);
  g_assert_cmpfloat (c->band_lo, ==, sum.band_lo);
  g_assert_cmpfloat (c->jpeg.threshold, ==, sum.jpeg.threshold);
  g_assert_cmpfloat (c->jpeg.band_lo, ==, sum.jpeg.band_lo);
  g_assert_cmpfloat (c->jpeg.band_hi, ==, sum.jpeg.band_hi);
  g_assert_cmpfloat (c->jpeg.band_lo, <=, c->jpeg.threshold);
  g_assert_cmpfloat (c->jpeg.threshold, <=, c->jpeg.band_hi);
  g_assert_nonnull (strstr (c->training, "\"jpeg_decision\""));
  g_assert_nonnull (strstr (c->training, "\"n_val_jpeg\":40"));

  /* asked for one decision, or given one JPEG too few: one decision */
  o.jpeg_decision = FALSE;
  g_autoptr (DcrModel) one = new_model (4);
  g_assert_true (dcr_train_run (one, &data, &o, NULL, NULL, &sum, &err));
  g_assert_false (sum.jpeg_decision);
  g_assert_false (dcr_model_config (one)->jpeg_decision);
  g_assert_null (strstr (dcr_model_config (one)->training, "jpeg_decision"));
  o.jpeg_decision = TRUE;
  drop_one_jpeg_real (&s, jpeg);
  g_autoptr (DcrModel) few = new_model (4);
  g_assert_true (dcr_train_run (few, &data, &o, NULL, NULL, &sum, &err));
  g_assert_no_error (err);
  g_assert_false (sum.jpeg_decision);
  g_assert_false (dcr_model_config (few)->jpeg_decision);
  synth_clear (&s);
  dcr_test_assert_no_validation_errors ();
}

/* JPEG files' own fusion weights: in the validation split's "JPEG" files
 * the heads' evidence is erased (fresh photos for the fakes) and column 5
 * carries the label; in its other files column 5 says the opposite (noise
 * in training). The JPEG weights, fitted on the JPEG files alone, must lean
 * on column 5 where the shared ones cannot, score those files better, and
 * be what the model applies to files judged as JPEG. */
static void
test_jpeg_fusion (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GRand) rng = g_rand_new_with_seed (14);
  float scenes[SCENES * D];
  Synth s;
  synth_make (&s, scenes, rng);
  g_autoptr (DcrRetrieval) bank = bank_of (&s);
  g_autofree gboolean *held = NULL, *jpeg = NULL;
  jpeg_split (&s, scenes, rng, &held, &jpeg);
  for (gsize i = 0; i < s.n; i++)
    {
      double sign = !held[i] ? 0.0 : jpeg[i] ? 1.5 : -1.5;
      s.features[i * D + 5] = (float) (sign * s.labels[i] + 0.5 * gauss (rng));
    }
  DcrTrainData data = { s.features, s.labels, s.pair, (const char *const *) s.keys, s.n, bank,
                        (const char *const *) s.bank_keys, held };
  data.jpeg = jpeg;
  DcrTrainOptions o = { .epochs = 20, .batch = 16, .seed = 3, .lr = 1e-2, .weight_decay = 1e-4, .fusion = TRUE,
                        .fusion_column = 5, .jpeg_decision = TRUE, .jpeg_fusion = TRUE };
  g_autoptr (DcrModel) m = new_model (4);
  DcrTrainSummary sum;
  g_assert_true (dcr_train_run (m, &data, &o, NULL, NULL, &sum, &err));
  g_assert_no_error (err);
  g_test_message ("shared fusion %.3f %.3f %.3f; JPEG %.3f %.3f %.3f; JPEG validation AUC %.3f (shared weights "
                  "%.3f), others %.3f", sum.fusion_w[0], sum.fusion_w[1], sum.fusion_w[2], sum.fusion_jpeg_w[0],
                  sum.fusion_jpeg_w[1], sum.fusion_jpeg_w[2], sum.val_auc_jpeg, sum.val_auc_jpeg_shared,
                  sum.val_auc_other);
  g_assert_true (sum.fusion && sum.jpeg_decision && sum.fusion_jpeg);
  g_assert_cmpfloat (sum.fusion_jpeg_w[1], >, 1.0);
  g_assert_cmpfloat (sum.fusion_jpeg_w[1], >, sum.fusion_w[1] + 1.0);
  g_assert_cmpfloat (sum.val_auc_jpeg, >, sum.val_auc_jpeg_shared + 0.05);
  g_assert_cmpfloat (sum.val_auc_jpeg, >, 0.85);
  const DcrModelConfig *c = dcr_model_config (m);
  g_assert_true (c->fusion_jpeg);
  for (int i = 0; i < 3; i++)
    g_assert_cmpfloat (c->fusion_jpeg_w[i], ==, sum.fusion_jpeg_w[i]);
  g_assert_nonnull (strstr (c->training, "\"fusion_rule\""));
  g_assert_nonnull (strstr (c->training, "\"band_edges\":\"first-break\""));
  g_assert_null (strstr (c->training, "most-calls\""));

  /* the band's edges by most calls: the same networks and threshold (the
   * same seed), a band no wider; the JPEG decision keeps first-break */
  DcrTrainOptions om = o;
  om.band_rule = DCR_BAND_MOST_CALLS;
  g_autoptr (DcrModel) mm = new_model (4);
  DcrTrainSummary summ;
  g_assert_true (dcr_train_run (mm, &data, &om, NULL, NULL, &summ, &err));
  g_assert_no_error (err);
  g_assert_cmpfloat (summ.threshold, ==, sum.threshold);
  g_assert_cmpfloat (summ.band_hi, <=, sum.band_hi);
  g_assert_cmpfloat (summ.band_lo, >=, sum.band_lo);
  g_assert_cmpfloat (summ.jpeg.threshold, ==, sum.jpeg.threshold);
  g_assert_cmpfloat (summ.jpeg.band_lo, ==, sum.jpeg.band_lo);
  g_assert_cmpfloat (summ.jpeg.band_hi, ==, sum.jpeg.band_hi);
  const char *tm = dcr_model_config (mm)->training;
  g_assert_nonnull (strstr (tm, "\"band_edges\":\"most-calls\""));
  g_assert_nonnull (strstr (tm, "\"band_edges\":\"first-break\"")); /* the JPEG decision's */
  /* the model's p_fake: the JPEG weights for a file judged as JPEG, the shared ones otherwise */
  const guint n = 8;
  float lg[2 * 8], p[8];
  score_single_logits (m, bank, s.features, n, p, lg);
  for (guint i = 0; i < n; i++)
    for (int k = 0; k < 2; k++)
      {
        const float *w = k ? c->fusion_jpeg_w : c->fusion_w;
        double z = w[0] * ((double) lg[2 * i + 1] - lg[2 * i]) + w[1] * s.features[i * D + 5] + w[2];
        float got = dcr_model_p_fake (m, lg + 2 * i, s.features + i * D, k);
        g_assert_cmpfloat (fabs (got - 1.0 / (1.0 + exp (-z))), <, 1e-6);
      }

  /* too few JPEG files for a JPEG decision: no JPEG fusion either */
  drop_one_jpeg_real (&s, jpeg);
  g_autoptr (DcrModel) few = new_model (4);
  g_assert_true (dcr_train_run (few, &data, &o, NULL, NULL, &sum, &err));
  g_assert_no_error (err);
  g_assert_false (sum.jpeg_decision);
  g_assert_false (sum.fusion_jpeg);
  g_assert_true (sum.fusion);
  g_assert_false (dcr_model_config (few)->fusion_jpeg);
  synth_clear (&s);
  dcr_test_assert_no_validation_errors ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/train/end-to-end", test_end_to_end);
  g_test_add_func ("/train/jpeg-fusion", test_jpeg_fusion);
  g_test_add_func ("/train/resume", test_resume);
  g_test_add_func ("/train/pair-only", test_pair_only);
  g_test_add_func ("/train/views", test_views);
  g_test_add_func ("/train/moco-step", test_moco_step);
  g_test_add_func ("/train/moco-pinned", test_moco_pinned);
  g_test_add_func ("/train/moco-end-to-end-resume", test_moco_end_to_end_resume);
  g_test_add_func ("/train/fit-fusion", test_fit_fusion);
  g_test_add_func ("/train/fusion-end-to-end", test_fusion_end_to_end);
  g_test_add_func ("/train/jpeg-decision", test_jpeg_decision);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
