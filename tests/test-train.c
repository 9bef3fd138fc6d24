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
score_single (DcrModel *m, DcrRetrieval *r, const float *f, guint n, float *p_fake)
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
  g_assert_true (dcr_model_run_outputs (run, n, NULL, p_fake, NULL, NULL, NULL, NULL, &err));
  g_assert_no_error (err);
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
  for (guint i = 0; i < SCENES; i++)
    {
      photo (rng, scenes + i * D, test_f + i * D);
      float tmp[D];
      photo (rng, scenes + i * D, tmp);
      fake_of (rng, tmp, test_f + (SCENES + i) * D);
      test_y[i] = 0;
      test_y[SCENES + i] = 1;
    }
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

  /* one class only is refused */
  for (gsize i = 0; i < s.n; i++)
    s.labels[i] = 0;
  g_assert_false (dcr_train_run (m, &data, &o, NULL, NULL, &sum, &err));
  g_assert_error (err, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DATA);
  synth_clear (&s);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/train/end-to-end", test_end_to_end);
  g_test_add_func ("/train/resume", test_resume);
  g_test_add_func ("/train/pair-only", test_pair_only);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
