/* test-op-optim.c — AdamW (plain and AMSGrad) and SGD (momentum, Nesterov):
 * the references against torch.optim trajectories (tests/golden/
 * loss-torch.py), and the GPU ops against the references and torch over
 * several steps of one recorded sequence re-submitted with new hyper values,
 * plus the argument checks. */
#include "dcr-test-util.h"
#include "dcr-op-optim.h"
#include "golden/loss-torch.h"

#include <math.h>
#include <string.h>

static DcrTensor *
tensor_f32 (gint64 n, const float *data)
{
  return dcr_test_upload_tensor (DCR_POOL_WEIGHTS, DCR_F32, 1, &n, data);
}

typedef enum { RUN_ADAMW, RUN_AMSGRAD, RUN_SGD, RUN_NESTEROV, RUN_PLAIN_SGD } Run;

/* The configurations loss-torch.py runs (plain SGD is ours only). */
static const DcrAdamWConfig adamw_cfg = { 1e-2, 0.9, 0.999, 1e-8, 0.1 };
static const DcrAdamWConfig amsgrad_cfg = { 3e-2, 0.8, 0.99, 1e-6, 0.0 };
static const DcrSgdConfig sgd_cfg = { 0.1, 0.9, 0.1, 0.01, FALSE };
static const DcrSgdConfig nesterov_cfg = { 0.05, 0.8, 0.0, 0.02, TRUE };
static const DcrSgdConfig plain_sgd_cfg = { 0.2, 0.0, 0.0, 0.05, FALSE };

static void
hyper_for (Run run, gint64 step, float *hyper)
{
  switch (run)
    {
    case RUN_ADAMW: dcr_adamw_hyper (&adamw_cfg, step, hyper); break;
    case RUN_AMSGRAD: dcr_adamw_hyper (&amsgrad_cfg, step, hyper); break;
    case RUN_SGD: dcr_sgd_hyper (&sgd_cfg, step, hyper); break;
    case RUN_NESTEROV: dcr_sgd_hyper (&nesterov_cfg, step, hyper); break;
    case RUN_PLAIN_SGD: dcr_sgd_hyper (&plain_sgd_cfg, step, hyper); break;
    }
}

/* Host state of one optimizer run. */
typedef struct {
  float *p, *m, *v, *vmax;
} State;

static void
ref_step (Run run, const float *hyper, State *s, const float *g, gint64 n)
{
  if (run == RUN_ADAMW || run == RUN_AMSGRAD)
    dcr_ref_adamw (hyper, s->p, g, s->m, s->v, run == RUN_AMSGRAD ? s->vmax : NULL, n);
  else
    dcr_ref_sgd (hyper, s->p, g, run == RUN_PLAIN_SGD ? NULL : s->m, run == RUN_NESTEROV, n);
}

static const float *
golden_params (Run run)
{
  switch (run)
    {
    case RUN_ADAMW: return optim_adamw_params;
    case RUN_AMSGRAD: return optim_amsgrad_params;
    case RUN_SGD: return optim_sgd_params;
    case RUN_NESTEROV: return optim_nesterov_params;
    case RUN_PLAIN_SGD: return NULL;
    }
  return NULL;
}

static const char *
run_name (Run run)
{
  static const char *names[] = { "adamw", "amsgrad", "sgd", "nesterov", "plain sgd" };
  return names[run];
}

static void
test_reference_vs_torch (void)
{
  for (Run run = RUN_ADAMW; run <= RUN_NESTEROV; run++)
    {
      float p[OPTIM_N], m[OPTIM_N] = { 0 }, v[OPTIM_N] = { 0 }, vmax[OPTIM_N] = { 0 }, hyper[DCR_OPTIM_HYPER_LEN];
      memcpy (p, optim_p0, sizeof p);
      State s = { p, m, v, vmax };
      for (gint64 step = 1; step <= OPTIM_STEPS; step++)
        {
          hyper_for (run, step, hyper);
          ref_step (run, hyper, &s, optim_grads + (step - 1) * OPTIM_N, OPTIM_N);
          g_autofree char *what = g_strdup_printf ("ref %s step %" G_GINT64_FORMAT " vs torch", run_name (run), step);
          /* the same float operations in the same order; torch's vector code may fuse some */
          dcr_test_assert_close (what, p, golden_params (run) + (step - 1) * OPTIM_N, OPTIM_N, 1e-7, 2e-6);
        }
    }
}

/* Records one update of `run` over n parameters and submits it `steps`
 * times, rewriting the hyper tensor before each, checking every step
 * against the reference (and torch when golden). */
static void
check_gpu_run (Run run, gint64 n, int steps, const float *p0, const float *grads)
{
  g_autoptr (GError) err = NULL;
  g_autofree float *p = g_memdup2 (p0, n * sizeof (float));
  g_autofree float *m = g_new0 (float, n);
  g_autofree float *v = g_new0 (float, n);
  g_autofree float *vmax = g_new0 (float, n);
  g_autofree float *got = g_new (float, n);
  State s = { p, m, v, vmax };
  g_autoptr (DcrTensor) hyper = tensor_f32 (DCR_OPTIM_HYPER_LEN, NULL);
  g_autoptr (DcrTensor) tp = tensor_f32 (n, p0);
  g_autoptr (DcrTensor) tg = tensor_f32 (n, NULL);
  g_autoptr (DcrTensor) tm = tensor_f32 (n, NULL);
  g_autoptr (DcrTensor) tv = tensor_f32 (n, NULL);
  g_autoptr (DcrTensor) tvmax = tensor_f32 (n, NULL);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  gboolean ok;
  if (run == RUN_ADAMW || run == RUN_AMSGRAD)
    ok = dcr_op_adamw (seq, hyper, tp, tg, tm, tv, run == RUN_AMSGRAD ? tvmax : NULL, &err);
  else
    ok = dcr_op_sgd (seq, hyper, tp, tg, run == RUN_PLAIN_SGD ? NULL : tm, run == RUN_NESTEROV, &err);
  g_assert_no_error (err);
  g_assert_true (ok);
  const float *golden = n == OPTIM_N ? golden_params (run) : NULL;
  for (int step = 1; step <= steps; step++)
    {
      float h[DCR_OPTIM_HYPER_LEN];
      hyper_for (run, step, h);
      dcr_test_upload_floats (hyper, h);
      dcr_test_upload_floats (tg, grads + (step - 1) * n);
      dcr_test_submit_wait (seq);
      ref_step (run, h, &s, grads + (step - 1) * n, n);
      g_autofree char *what = g_strdup_printf ("gpu %s n=%" G_GINT64_FORMAT " step %d", run_name (run), n, step);
      /* one rounding apart at most per operation (the GPU may fuse a multiply-add) */
      dcr_test_download_into (tp, got);
      dcr_test_assert_close (what, got, p, n, 1e-7, 2e-6);
      if (golden)
        dcr_test_assert_close (what, got, golden + (step - 1) * n, n, 1e-7, 2e-6);
      if (run != RUN_PLAIN_SGD)
        {
          dcr_test_download_into (tm, got);
          dcr_test_assert_close (what, got, m, n, 1e-7, 2e-6);
        }
      if (run == RUN_ADAMW || run == RUN_AMSGRAD)
        {
          dcr_test_download_into (tv, got);
          dcr_test_assert_close (what, got, v, n, 1e-9, 2e-6);
        }
      if (run == RUN_AMSGRAD)
        {
          dcr_test_download_into (tvmax, got);
          dcr_test_assert_close (what, got, vmax, n, 1e-9, 2e-6);
        }
    }
}

static void
test_gpu_vs_torch (void)
{
  for (Run run = RUN_ADAMW; run <= RUN_NESTEROV; run++)
    check_gpu_run (run, OPTIM_N, OPTIM_STEPS, optim_p0, optim_grads);
  dcr_test_assert_no_validation_errors ();
}

static void
test_gpu_odd_sizes (void)
{
  const gint64 sizes[] = { 1, 7, 65, 1000, 70001 };
  const int steps = 4;
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (Run run = RUN_ADAMW; run <= RUN_PLAIN_SGD; run++)
      {
        gint64 n = sizes[s];
        g_autofree float *p0 = g_new (float, n);
        g_autofree float *grads = g_new (float, n * steps);
        dcr_test_fill (p0, n, 1 + s, -1, 1);
        dcr_test_fill (grads, n * steps, 2 + s, -0.5f, 0.5f);
        grads[0] = 0; /* a zero gradient: AdamW still decays and moves by its momentum */
        check_gpu_run (run, n, steps, p0, grads);
      }
  dcr_test_assert_no_validation_errors ();
}

static void
test_hyper (void)
{
  /* torch's step-1 scalars: no decay of m, the bias corrections undo (1 − β) */
  float h[DCR_OPTIM_HYPER_LEN];
  dcr_adamw_hyper (&adamw_cfg, 1, h);
  g_assert_cmpfloat_with_epsilon (h[0], 1 - 1e-3, 1e-7);
  g_assert_cmpfloat_with_epsilon (h[5], 1e-2 / 0.1, 1e-7);
  g_assert_cmpfloat_with_epsilon (h[6], sqrt (1e-3), 1e-7);
  dcr_adamw_hyper (&adamw_cfg, 100000, h);
  g_assert_cmpfloat_with_epsilon (h[5], 1e-2, 1e-7);
  g_assert_cmpfloat_with_epsilon (h[6], 1, 1e-7);
  dcr_sgd_hyper (&sgd_cfg, 1, h);
  g_assert_cmpfloat (h[4], ==, 1);
  dcr_sgd_hyper (&sgd_cfg, 2, h);
  g_assert_cmpfloat (h[4], ==, 0);
  g_assert_cmpfloat_with_epsilon (h[2], 0.9, 1e-7);
}

static void
test_errors (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrTensor) h = tensor_f32 (DCR_OPTIM_HYPER_LEN, NULL);
  g_autoptr (DcrTensor) short_h = tensor_f32 (3, NULL);
  g_autoptr (DcrTensor) p = tensor_f32 (5, NULL);
  g_autoptr (DcrTensor) q = tensor_f32 (6, NULL);
  gint64 five = 5;
  g_autoptr (DcrTensor) pu32 = dcr_tensor_new (dcr_test_context (), DCR_POOL_WEIGHTS, DCR_U32, 1, &five, &err);
  g_assert_no_error (err);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();

  g_assert_false (dcr_op_adamw (seq, h, p, q, p, p, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "grad"));
  g_clear_error (&err);
  g_assert_false (dcr_op_adamw (seq, short_h, p, p, p, p, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_adamw (seq, h, pu32, p, p, p, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_sgd (seq, h, p, p, NULL, TRUE, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED);
  g_clear_error (&err);
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/optim/hyper", test_hyper);
  g_test_add_func ("/optim/reference-vs-torch", test_reference_vs_torch);
  g_test_add_func ("/optim/gpu-vs-torch", test_gpu_vs_torch);
  g_test_add_func ("/optim/gpu-odd-sizes", test_gpu_odd_sizes);
  g_test_add_func ("/optim/errors", test_errors);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
