/* test-op-grad.c — the backward ops: every reference gradient against
 * central finite differences of a double-precision forward, then the GPU
 * ops against the references over odd shapes (f32; f16 storage for the
 * pointwise ones), overwriting and accumulating, plus the argument checks. */
#include "dcr-test-util.h"
#include "dcr-op-grad.h"

#include <math.h>
#include <string.h>

static double *
to_double (const float *x, gsize n)
{
  double *d = g_new (double, MAX (n, 1));
  for (gsize i = 0; i < n; i++)
    d[i] = x[i];
  return d;
}

/* ---- finite differences --------------------------------------------------- */

typedef double (*Objective) (gpointer data);

/* Central differences of f with respect to each element of var (a double
 * array the objective reads through data), against the analytic grad. */
static void
check_fd (const char *what, double *var, gsize n, Objective f, gpointer data, const float *grad, double atol,
          double rtol)
{
  for (gsize i = 0; i < n; i++)
    {
      double v = var[i], h = 1e-5 * MAX (1.0, fabs (v));
      var[i] = v + h;
      double fp = f (data);
      var[i] = v - h;
      double fm = f (data);
      var[i] = v;
      double fd = (fp - fm) / (2 * h);
      if (!(fabs (fd - grad[i]) <= atol + rtol * fabs (fd)))
        {
          g_test_fail_printf ("%s: d/d[%" G_GSIZE_FORMAT "] is %.9g, finite differences say %.9g", what, i,
                              grad[i], fd);
          return;
        }
    }
}

/* ---- activations ------------------------------------------------------------ */

static const DcrAct acts[] = { DCR_ACT_NONE, DCR_ACT_RELU, DCR_ACT_RELU6, DCR_ACT_GELU, DCR_ACT_QUICK_GELU };

static double
act_d (DcrAct act, double x)
{
  switch (act)
    {
    case DCR_ACT_RELU: return x > 0 ? x : 0;
    case DCR_ACT_RELU6: return x < 0 ? 0 : x > 6 ? 6 : x;
    case DCR_ACT_GELU: return 0.5 * x * (1 + erf (x / sqrt (2.0)));
    case DCR_ACT_QUICK_GELU: return x / (1 + exp (-1.702 * x));
    case DCR_ACT_NONE:
    default: return x;
    }
}

typedef struct {
  DcrAct act;
  double *x, *w;
  gsize n;
} ActObj;

static double
act_obj (gpointer p)
{
  ActObj *o = p;
  double s = 0;
  for (gsize i = 0; i < o->n; i++)
    s += o->w[i] * act_d (o->act, o->x[i]);
  return s;
}

/* inputs away from the kinks at 0 and 6, where differences straddle them */
static float *
act_inputs (gsize n, guint32 seed)
{
  float *x = dcr_test_random_floats (n, seed, -8, 8);
  for (gsize i = 0; i < n; i++)
    {
      if (fabsf (x[i]) < 0.05f)
        x[i] += 0.1f;
      if (fabsf (x[i] - 6) < 0.05f)
        x[i] += 0.1f;
    }
  return x;
}

static void
test_act_fd (void)
{
  const gsize n = 200;
  g_autofree float *x = act_inputs (n, 1);
  g_autofree float *dy = dcr_test_random_floats (n, 2, -1, 1);
  g_autofree float *dx = g_new (float, n);
  for (guint a = 0; a < G_N_ELEMENTS (acts); a++)
    {
      dcr_ref_act_backward (acts[a], x, dy, dx, n, DCR_GRAD_OVERWRITE);
      g_autofree double *xd = to_double (x, n);
      g_autofree double *wd = to_double (dy, n);
      ActObj o = { acts[a], xd, wd, n };
      g_autofree char *what = g_strdup_printf ("%s backward vs finite differences", dcr_act_name (acts[a]));
      check_fd (what, xd, n, act_obj, &o, dx, 1e-6, 1e-5);
    }
  /* the mask from the output: relu(x) > 0 exactly where x > 0 */
  g_autofree float *y = g_new (float, n);
  g_autofree float *dx_out = g_new (float, n);
  for (guint a = 1; a <= 2; a++)
    {
      for (gsize i = 0; i < n; i++)
        y[i] = dcr_ref_act (acts[a], x[i]);
      dcr_ref_act_backward (acts[a], x, dy, dx, n, DCR_GRAD_OVERWRITE);
      dcr_ref_act_backward (acts[a], y, dy, dx_out, n, DCR_GRAD_OVERWRITE);
      g_assert_cmpmem (dx, n * sizeof (float), dx_out, n * sizeof (float));
    }
}

static void
test_act_gpu (void)
{
  const gint64 sizes[] = { 1, 3, 17, 65, 1000, 70001 };
  for (int f16 = 0; f16 <= dcr_test_device_has_f16 (); f16++)
    for (guint a = 0; a < G_N_ELEMENTS (acts); a++)
      for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
        for (int acc = 0; acc < 2; acc++)
          {
            if (sizes[s] > 1000 && (acc || acts[a] == DCR_ACT_NONE))
              continue;
            DcrDtype dt = f16 ? DCR_F16 : DCR_F32;
            gint64 n = sizes[s];
            g_autofree float *x = act_inputs (n, 10 + s);
            g_autofree float *dy = dcr_test_random_floats (n, 20 + s, -2, 2);
            g_autofree float *dx0 = dcr_test_random_floats (n, 30 + s, -1, 1);
            g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (dt, 1, &n, x);
            g_autoptr (DcrTensor) tdy = dcr_test_upload_rounded (dt, 1, &n, dy);
            g_autoptr (DcrTensor) tdx = dcr_test_upload_rounded (dt, 1, &n, dx0);
            DcrGradFlags fl = acc ? DCR_GRAD_ACCUMULATE_INPUT : DCR_GRAD_OVERWRITE;
            g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
            g_autoptr (GError) err = NULL;
            g_assert_true (dcr_op_act_backward (seq, acts[a], tx, tdy, tdx, fl, &err));
            g_assert_no_error (err);
            dcr_test_submit_wait (seq);
            g_autofree float *got = dcr_test_download_floats (tdx);
            dcr_ref_act_backward (acts[a], x, dy, dx0, n, fl);
            g_autofree char *what = g_strdup_printf ("%s backward n=%" G_GINT64_FORMAT " %s%s", dcr_act_name (acts[a]),
                                                     n, dcr_dtype_name (dt), acc ? " accumulate" : "");
            /* f32: the shader's erfc approximation (1.5e-7); f16: one rounding of the result */
            dcr_test_assert_close (what, got, dx0, n, f16 ? 2e-3 : 2e-6, f16 ? 1e-3 : 1e-5);
          }
  dcr_test_assert_no_validation_errors ();
}

/* ---- |a − b| ---------------------------------------------------------------- */

typedef struct {
  double *a, *b, *w;
  gint64 rows, k, d;
} AbsObj;

static double
abs_obj (gpointer p)
{
  AbsObj *o = p;
  double s = 0;
  for (gint64 r = 0; r < o->rows; r++)
    for (gint64 j = 0; j < o->k; j++)
      for (gint64 c = 0; c < o->d; c++)
        {
          gint64 i = (r * o->k + j) * o->d + c;
          s += o->w[i] * fabs (o->a[r * o->d + c] - o->b[i]);
        }
  return s;
}

static void
test_abs_diff_fd (void)
{
  const gint64 rows = 3, k = 4, d = 5, na = rows * d, nb = rows * k * d;
  g_autofree float *a = dcr_test_random_floats (na, 1, -1, 1);
  g_autofree float *b = dcr_test_random_floats (nb, 2, -1, 1);
  g_autofree float *dd = dcr_test_random_floats (nb, 3, -1, 1);
  for (gint64 i = 0; i < nb; i++)
    if (fabsf (a[(i / (k * d)) * d + i % d] - b[i]) < 0.01f)
      b[i] += 0.05f;
  g_autofree float *da = g_new (float, na);
  g_autofree float *db = g_new (float, nb);
  dcr_ref_abs_diff_backward (a, b, dd, da, db, rows, k, d, DCR_GRAD_OVERWRITE);
  g_autofree double *ad = to_double (a, na);
  g_autofree double *bd = to_double (b, nb);
  g_autofree double *wd = to_double (dd, nb);
  AbsObj o = { ad, bd, wd, rows, k, d };
  check_fd ("abs_diff da vs finite differences", ad, na, abs_obj, &o, da, 1e-6, 1e-6);
  check_fd ("abs_diff db vs finite differences", bd, nb, abs_obj, &o, db, 1e-6, 1e-6);

  /* at a == b the subgradient is 0, as torch.abs's */
  float a1 = 0.5f, b1 = 0.5f, g1 = 3.0f, da1 = 7, db1 = 7;
  dcr_ref_abs_diff_backward (&a1, &b1, &g1, &da1, &db1, 1, 1, 1, DCR_GRAD_OVERWRITE);
  g_assert_cmpfloat (da1, ==, 0);
  g_assert_cmpfloat (db1, ==, 0);
}

static void
test_abs_diff_gpu (void)
{
  /* a's shape, b's shape: same, a [R,1,D] and a [R,D] against b [R,K,D], broadcast first axis */
  static const struct {
    int na, nb;
    gint64 a[3], b[3];
    gint64 rows, k, d;
  } cases[] = {
    { 1, 1, { 1 }, { 1 }, 1, 1, 1 },
    { 2, 2, { 7, 17 }, { 7, 17 }, 1, 1, 119 },
    { 3, 3, { 3, 1, 65 }, { 3, 5, 65 }, 3, 5, 65 },
    { 2, 3, { 5, 33 }, { 5, 7, 33 }, 5, 7, 33 },
    { 2, 2, { 1, 9 }, { 13, 9 }, 1, 13, 9 },
  };
  for (int f16 = 0; f16 <= dcr_test_device_has_f16 (); f16++)
    for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
      for (int mode = 0; mode < 4; mode++)
        {
          /* mode 0 both outputs, 1 da only, 2 db only, 3 both accumulating */
          DcrDtype dt = f16 ? DCR_F16 : DCR_F32;
          gint64 na = cases[c].rows * cases[c].d, nb = na * cases[c].k;
          g_autofree float *a = dcr_test_random_floats (na, 40 + c, -1, 1);
          g_autofree float *b = dcr_test_random_floats (nb, 50 + c, -1, 1);
          g_autofree float *dd = dcr_test_random_floats (nb, 60 + c, -1, 1);
          b[0] = a[0]; /* the a == b subgradient */
          g_autofree float *da = dcr_test_random_floats (na, 70 + c, -1, 1);
          g_autofree float *db = dcr_test_random_floats (nb, 80 + c, -1, 1);
          g_autoptr (DcrTensor) ta = dcr_test_upload_rounded (dt, cases[c].na, cases[c].a, a);
          g_autoptr (DcrTensor) tb = dcr_test_upload_rounded (dt, cases[c].nb, cases[c].b, b);
          g_autoptr (DcrTensor) tdd = dcr_test_upload_rounded (dt, cases[c].nb, cases[c].b, dd);
          g_autoptr (DcrTensor) tda = dcr_test_upload_rounded (dt, cases[c].na, cases[c].a, da);
          g_autoptr (DcrTensor) tdb = dcr_test_upload_rounded (dt, cases[c].nb, cases[c].b, db);
          DcrGradFlags fl = mode == 3 ? DCR_GRAD_ACCUMULATE_INPUT : DCR_GRAD_OVERWRITE;
          g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
          g_autoptr (GError) err = NULL;
          g_assert_true (dcr_op_abs_diff_backward (seq, ta, tb, tdd, mode == 2 ? NULL : tda, mode == 1 ? NULL : tdb,
                                                   fl, &err));
          g_assert_no_error (err);
          dcr_test_submit_wait (seq);
          g_autofree float *got_a = dcr_test_download_floats (tda);
          g_autofree float *got_b = dcr_test_download_floats (tdb);
          dcr_ref_abs_diff_backward (a, b, dd, mode == 2 ? NULL : da, mode == 1 ? NULL : db, cases[c].rows,
                                     cases[c].k, cases[c].d, fl);
          g_autofree char *what = g_strdup_printf ("abs_diff case %u mode %d %s", c, mode, dcr_dtype_name (dt));
          /* an unrequested output must stay untouched: compared to its initial values */
          dcr_test_assert_close (what, got_a, da, na, f16 ? 4e-3 : 1e-6, f16 ? 1e-3 : 1e-6);
          dcr_test_assert_close (what, got_b, db, nb, f16 ? 1e-3 : 1e-6, f16 ? 1e-3 : 1e-6);
        }
  dcr_test_assert_no_validation_errors ();
}

/* ---- linear and bias ------------------------------------------------------------ */

typedef struct {
  double *x, *w, *b, *g;
  gint64 rows, in, out;
} LinObj;

static double
lin_obj (gpointer p)
{
  LinObj *o = p;
  double s = 0;
  for (gint64 r = 0; r < o->rows; r++)
    for (gint64 j = 0; j < o->out; j++)
      {
        double y = o->b[j];
        for (gint64 i = 0; i < o->in; i++)
          y += o->x[r * o->in + i] * o->w[j * o->in + i];
        s += y * o->g[r * o->out + j];
      }
  return s;
}

static void
test_linear_fd (void)
{
  const gint64 rows = 3, in = 5, out = 4;
  g_autofree float *x = dcr_test_random_floats (rows * in, 1, -1, 1);
  g_autofree float *w = dcr_test_random_floats (out * in, 2, -1, 1);
  g_autofree float *bias = dcr_test_random_floats (out, 3, -1, 1);
  g_autofree float *dy = dcr_test_random_floats (rows * out, 4, -1, 1);
  g_autofree float *dx = g_new (float, rows * in);
  g_autofree float *dw = g_new (float, out * in);
  g_autofree float *db = g_new (float, out);
  dcr_ref_linear_backward (x, w, dy, dx, dw, db, rows, in, out, DCR_GRAD_OVERWRITE);
  g_autofree double *xd = to_double (x, rows * in);
  g_autofree double *wd = to_double (w, out * in);
  g_autofree double *bd = to_double (bias, out);
  g_autofree double *gd = to_double (dy, rows * out);
  LinObj o = { xd, wd, bd, gd, rows, in, out };
  check_fd ("linear dx", xd, rows * in, lin_obj, &o, dx, 1e-6, 1e-5);
  check_fd ("linear dW", wd, out * in, lin_obj, &o, dw, 1e-6, 1e-5);
  check_fd ("linear db", bd, out, lin_obj, &o, db, 1e-6, 1e-5);
}

static void
test_linear_gpu (void)
{
  static const gint64 shapes[][3] = { { 1, 1, 1 }, { 3, 7, 5 }, { 17, 65, 33 }, { 2, 300, 129 } };
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (int mode = 0; mode < 3; mode++)
      {
        /* mode 0 all three, 1 all accumulating, 2 params only, x given as [rows/…, 1, in] */
        gint64 rows = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        g_autofree float *x = dcr_test_random_floats (rows * in, 1 + s, -1, 1);
        g_autofree float *w = dcr_test_random_floats (out * in, 2 + s, -1, 1);
        g_autofree float *dy = dcr_test_random_floats (rows * out, 3 + s, -1, 1);
        g_autofree float *dx = dcr_test_random_floats (rows * in, 4 + s, -1, 1);
        g_autofree float *dw = dcr_test_random_floats (out * in, 5 + s, -1, 1);
        g_autofree float *db = dcr_test_random_floats (out, 6 + s, -1, 1);
        gint64 xs[] = { rows, 1, in }, ys[] = { rows, 1, out }, ws[] = { out, in };
        g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (DCR_F32, 3, xs, x);
        g_autoptr (DcrTensor) tw = dcr_test_upload_rounded (DCR_F32, 2, ws, w);
        g_autoptr (DcrTensor) tdy = dcr_test_upload_rounded (DCR_F32, 3, ys, dy);
        g_autoptr (DcrTensor) tdx = dcr_test_upload_rounded (DCR_F32, 3, xs, dx);
        g_autoptr (DcrTensor) tdw = dcr_test_upload_rounded (DCR_F32, 2, ws, dw);
        g_autoptr (DcrTensor) tdb = dcr_test_upload_rounded (DCR_F32, 1, &out, db);
        DcrGradFlags fl = mode == 1 ? DCR_GRAD_ACCUMULATE_ALL : DCR_GRAD_OVERWRITE;
        g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
        g_autoptr (GError) err = NULL;
        g_assert_true (dcr_op_linear_backward (seq, tx, tw, tdy, mode == 2 ? NULL : tdx, tdw, tdb, fl, &err));
        g_assert_no_error (err);
        dcr_test_submit_wait (seq);
        g_autofree float *gx = g_new (float, rows * in);
        g_autofree float *gw = g_new (float, out * in);
        g_autofree float *gb = g_new (float, out);
        dcr_test_download_into (tdx, gx);
        dcr_test_download_into (tdw, gw);
        dcr_test_download_into (tdb, gb);
        dcr_ref_linear_backward (x, w, dy, mode == 2 ? NULL : dx, dw, db, rows, in, out, fl);
        g_autofree char *what = g_strdup_printf ("linear_backward %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                                                 "->%" G_GINT64_FORMAT " mode %d", rows, in, out, mode);
        /* fp32 sums of up to 300 terms in another order */
        dcr_test_assert_close (what, gx, dx, rows * in, 1e-5 * out, 1e-4);
        dcr_test_assert_close (what, gw, dw, out * in, 1e-5 * rows, 1e-4);
        dcr_test_assert_close (what, gb, db, out, 1e-5 * rows, 1e-4);
      }
  dcr_test_assert_no_validation_errors ();
}

static void
test_bias_gpu (void)
{
  static const gint64 shapes[][2] = { { 1, 1 }, { 7, 3 }, { 1000, 2 }, { 33, 65 }, { 5, 1025 } };
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (int acc = 0; acc < 2; acc++)
      {
        gint64 rows = shapes[s][0], n = shapes[s][1];
        g_autofree float *dy = dcr_test_random_floats (rows * n, 7 + s, -1, 1);
        g_autofree float *db = dcr_test_random_floats (n, 8 + s, -1, 1);
        g_autoptr (DcrTensor) tdy = dcr_test_upload_rounded (DCR_F32, 2, shapes[s], dy);
        g_autoptr (DcrTensor) tdb = dcr_test_upload_rounded (DCR_F32, 1, &n, db);
        DcrGradFlags fl = acc ? DCR_GRAD_ACCUMULATE_PARAMS : DCR_GRAD_OVERWRITE;
        g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
        g_autoptr (GError) err = NULL;
        g_assert_true (dcr_op_bias_backward (seq, tdy, tdb, fl, &err));
        g_assert_no_error (err);
        dcr_test_submit_wait (seq);
        g_autofree float *got = dcr_test_download_floats (tdb);
        dcr_ref_bias_backward (dy, db, rows, n, fl);
        g_autofree char *what = g_strdup_printf ("bias_backward %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " acc %d",
                                                 rows, n, acc);
        dcr_test_assert_close (what, got, db, n, 1e-6 * rows, 1e-5);
      }
  dcr_test_assert_no_validation_errors ();
}

/* ---- layer norm -------------------------------------------------------------- */

typedef struct {
  double *x, *gamma, *beta, *w;
  gint64 rows, n;
  double eps;
} LnObj;

static double
ln_obj (gpointer p)
{
  LnObj *o = p;
  double s = 0;
  for (gint64 r = 0; r < o->rows; r++)
    {
      const double *x = o->x + r * o->n;
      double mean = 0, var = 0;
      for (gint64 j = 0; j < o->n; j++)
        mean += x[j];
      mean /= o->n;
      for (gint64 j = 0; j < o->n; j++)
        var += (x[j] - mean) * (x[j] - mean);
      var /= o->n;
      for (gint64 j = 0; j < o->n; j++)
        s += o->w[r * o->n + j] * ((x[j] - mean) / sqrt (var + o->eps) * o->gamma[j] + o->beta[j]);
    }
  return s;
}

static void
test_layer_norm_fd (void)
{
  const gint64 rows = 3, n = 7;
  const float eps = 1e-5f;
  g_autofree float *x = dcr_test_random_floats (rows * n, 1, -2, 2);
  g_autofree float *gamma = dcr_test_random_floats (n, 2, 0.5, 1.5);
  g_autofree float *beta = dcr_test_random_floats (n, 3, -1, 1);
  g_autofree float *dy = dcr_test_random_floats (rows * n, 4, -1, 1);
  g_autofree float *dx = g_new (float, rows * n);
  g_autofree float *dg = g_new (float, n);
  g_autofree float *dbt = g_new (float, n);
  dcr_ref_layer_norm_backward (x, gamma, dy, eps, dx, dg, dbt, rows, n, DCR_GRAD_OVERWRITE);
  g_autofree double *xd = to_double (x, rows * n);
  g_autofree double *gd = to_double (gamma, n);
  g_autofree double *bd = to_double (beta, n);
  g_autofree double *wd = to_double (dy, rows * n);
  LnObj o = { xd, gd, bd, wd, rows, n, eps };
  check_fd ("layer_norm dx", xd, rows * n, ln_obj, &o, dx, 1e-6, 1e-4);
  check_fd ("layer_norm dgamma", gd, n, ln_obj, &o, dg, 1e-6, 1e-4);
  check_fd ("layer_norm dbeta", bd, n, ln_obj, &o, dbt, 1e-6, 1e-4);
}

static void
test_layer_norm_gpu (void)
{
  static const gint64 shapes[][2] = { { 1, 1 }, { 3, 7 }, { 17, 65 }, { 65, 17 }, { 2, 1025 }, { 40, 3 } };
  const float eps = 1e-5f;
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (int mode = 0; mode < 3; mode++)
      {
        /* mode 0 with γ, 1 accumulating, 2 without γ and without parameter grads */
        gint64 rows = shapes[s][0], n = shapes[s][1], ss[] = { rows, 2 };
        g_autofree float *x = dcr_test_random_floats (rows * n, 1 + s, -3, 2);
        g_autofree float *gamma = dcr_test_random_floats (n, 2 + s, 0.5, 1.5);
        g_autofree float *dy = dcr_test_random_floats (rows * n, 3 + s, -1, 1);
        g_autofree float *dx = dcr_test_random_floats (rows * n, 4 + s, -1, 1);
        g_autofree float *dg = dcr_test_random_floats (n, 5 + s, -1, 1);
        g_autofree float *dbt = dcr_test_random_floats (n, 6 + s, -1, 1);
        g_autofree float *stats = g_new0 (float, rows * 2);
        g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (DCR_F32, 2, shapes[s], x);
        g_autoptr (DcrTensor) tg = dcr_test_upload_rounded (DCR_F32, 1, &n, gamma);
        g_autoptr (DcrTensor) tdy = dcr_test_upload_rounded (DCR_F32, 2, shapes[s], dy);
        g_autoptr (DcrTensor) tdx = dcr_test_upload_rounded (DCR_F32, 2, shapes[s], dx);
        g_autoptr (DcrTensor) tdg = dcr_test_upload_rounded (DCR_F32, 1, &n, dg);
        g_autoptr (DcrTensor) tdb = dcr_test_upload_rounded (DCR_F32, 1, &n, dbt);
        g_autoptr (DcrTensor) tst = dcr_test_upload_rounded (DCR_F32, 2, ss, stats);
        DcrGradFlags fl = mode == 1 ? DCR_GRAD_ACCUMULATE_ALL : DCR_GRAD_OVERWRITE;
        g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
        g_autoptr (GError) err = NULL;
        g_assert_true (dcr_op_layer_norm_backward (seq, tx, mode == 2 ? NULL : tg, tdy, eps, tdx,
                                                   mode == 2 ? NULL : tdg, mode == 2 ? NULL : tdb,
                                                   mode == 2 ? NULL : tst, fl, &err));
        g_assert_no_error (err);
        dcr_test_submit_wait (seq);
        g_autofree float *gx = g_new (float, rows * n);
        g_autofree float *gg = g_new (float, n);
        g_autofree float *gb = g_new (float, n);
        dcr_test_download_into (tdx, gx);
        dcr_test_download_into (tdg, gg);
        dcr_test_download_into (tdb, gb);
        dcr_ref_layer_norm_backward (x, mode == 2 ? NULL : gamma, dy, eps, dx, mode == 2 ? NULL : dg,
                                     mode == 2 ? NULL : dbt, rows, n, fl);
        g_autofree char *what = g_strdup_printf ("layer_norm_backward %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                                                 " mode %d", rows, n, mode);
        /* rstd up to ~1/σ amplifies fp32 rounding of the row sums */
        dcr_test_assert_close (what, gx, dx, rows * n, 2e-5, 1e-4);
        dcr_test_assert_close (what, gg, dg, n, 1e-5 * rows, 1e-4);
        dcr_test_assert_close (what, gb, dbt, n, 1e-5 * rows, 1e-4);
        if (mode == 0)
          {
            /* the saved statistics are the row's mean and 1/√(var + eps) */
            g_autofree float *st = dcr_test_download_floats (tst);
            for (gint64 r = 0; r < rows; r++)
              {
                double mean = 0, var = 0;
                for (gint64 j = 0; j < n; j++)
                  mean += x[r * n + j];
                mean /= n;
                for (gint64 j = 0; j < n; j++)
                  var += (x[r * n + j] - mean) * (x[r * n + j] - mean);
                float want[2] = { (float) mean, (float) (1 / sqrt (var / n + eps)) };
                dcr_test_assert_close ("layer_norm stats", st + 2 * r, want, 2, 1e-5, 1e-4);
              }
          }
      }
  dcr_test_assert_no_validation_errors ();
}

/* ---- softmax and L2 normalise -------------------------------------------------- */

typedef struct {
  double *x, *w;
  gint64 rows, n;
  double eps;
} RowObj;

static double
softmax_obj (gpointer p)
{
  RowObj *o = p;
  double s = 0;
  for (gint64 r = 0; r < o->rows; r++)
    {
      const double *x = o->x + r * o->n;
      double m = -INFINITY, z = 0;
      for (gint64 j = 0; j < o->n; j++)
        m = MAX (m, x[j]);
      for (gint64 j = 0; j < o->n; j++)
        z += exp (x[j] - m);
      for (gint64 j = 0; j < o->n; j++)
        s += o->w[r * o->n + j] * exp (x[j] - m) / z;
    }
  return s;
}

static double
l2_obj (gpointer p)
{
  RowObj *o = p;
  double s = 0;
  for (gint64 r = 0; r < o->rows; r++)
    {
      const double *x = o->x + r * o->n;
      double n2 = 0;
      for (gint64 j = 0; j < o->n; j++)
        n2 += x[j] * x[j];
      double d = MAX (sqrt (n2), o->eps);
      for (gint64 j = 0; j < o->n; j++)
        s += o->w[r * o->n + j] * x[j] / d;
    }
  return s;
}

static void
softmax_rows (const float *x, float *y, gint64 rows, gint64 n)
{
  for (gint64 r = 0; r < rows; r++)
    {
      double m = -INFINITY, z = 0;
      for (gint64 j = 0; j < n; j++)
        m = MAX (m, x[r * n + j]);
      for (gint64 j = 0; j < n; j++)
        z += exp (x[r * n + j] - m);
      for (gint64 j = 0; j < n; j++)
        y[r * n + j] = (float) (exp (x[r * n + j] - m) / z);
    }
}

static void
test_softmax_l2_fd (void)
{
  const gint64 rows = 3, n = 6;
  g_autofree float *x = dcr_test_random_floats (rows * n, 1, -2, 2);
  g_autofree float *y = g_new (float, rows * n);
  g_autofree float *dy = dcr_test_random_floats (rows * n, 2, -1, 1);
  g_autofree float *dx = g_new (float, rows * n);
  softmax_rows (x, y, rows, n);
  dcr_ref_softmax_backward (y, dy, dx, rows, n, DCR_GRAD_OVERWRITE);
  g_autofree double *xd = to_double (x, rows * n);
  g_autofree double *wd = to_double (dy, rows * n);
  RowObj o = { xd, wd, rows, n, 1e-12 };
  /* y is rounded to f32 before the backward: 1e-7-level agreement */
  check_fd ("softmax dx", xd, rows * n, softmax_obj, &o, dx, 1e-6, 1e-5);

  dcr_ref_l2_normalize_backward (x, dy, 1e-12f, dx, rows, n, DCR_GRAD_OVERWRITE);
  check_fd ("l2_normalize dx", xd, rows * n, l2_obj, &o, dx, 1e-6, 1e-5);
  /* below eps the norm is a constant: dx = dy / eps */
  float tiny[3] = { 1e-4f, -2e-4f, 0 }, g3[3] = { 1, 2, 3 }, d3[3];
  dcr_ref_l2_normalize_backward (tiny, g3, 0.01f, d3, 1, 3, DCR_GRAD_OVERWRITE);
  g_autofree double *td = to_double (tiny, 3);
  g_autofree double *tw = to_double (g3, 3);
  RowObj o2 = { td, tw, 1, 3, 0.01f };
  check_fd ("l2_normalize dx below eps", td, 3, l2_obj, &o2, d3, 1e-4, 1e-5);
}

static void
test_softmax_l2_gpu (void)
{
  static const gint64 shapes[][2] = { { 1, 1 }, { 3, 2 }, { 7, 17 }, { 65, 33 }, { 2, 1025 }, { 300, 7 } };
  for (int op = 0; op < 3; op++)
    for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
      for (int acc = 0; acc < 2; acc++)
        {
          /* op 0 softmax, 1 L2 normalise (eps 1e-12), 2 L2 with rows below eps */
          gint64 rows = shapes[s][0], n = shapes[s][1];
          float eps = op == 2 ? 1.0f : 1e-12f;
          g_autofree float *x = dcr_test_random_floats (rows * n, 11 + s, -2, 2);
          if (op == 2)
            for (gint64 i = 0; i < rows * n; i++)
              x[i] *= (i / n) % 2 ? 1.0f : 0.01f; /* every other row under eps */
          g_autofree float *a = g_new (float, rows * n);
          if (op == 0)
            softmax_rows (x, a, rows, n);
          else
            memcpy (a, x, sizeof (float) * rows * n);
          g_autofree float *dy = dcr_test_random_floats (rows * n, 12 + s, -1, 1);
          g_autofree float *dx = dcr_test_random_floats (rows * n, 13 + s, -1, 1);
          g_autoptr (DcrTensor) ta = dcr_test_upload_rounded (DCR_F32, 2, shapes[s], a);
          g_autoptr (DcrTensor) tdy = dcr_test_upload_rounded (DCR_F32, 2, shapes[s], dy);
          g_autoptr (DcrTensor) tdx = dcr_test_upload_rounded (DCR_F32, 2, shapes[s], dx);
          DcrGradFlags fl = acc ? DCR_GRAD_ACCUMULATE_INPUT : DCR_GRAD_OVERWRITE;
          g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
          g_autoptr (GError) err = NULL;
          if (op == 0)
            g_assert_true (dcr_op_softmax_backward (seq, ta, tdy, tdx, fl, &err));
          else
            g_assert_true (dcr_op_l2_normalize_backward (seq, ta, tdy, eps, tdx, fl, &err));
          g_assert_no_error (err);
          dcr_test_submit_wait (seq);
          g_autofree float *got = dcr_test_download_floats (tdx);
          if (op == 0)
            dcr_ref_softmax_backward (a, dy, dx, rows, n, fl);
          else
            dcr_ref_l2_normalize_backward (a, dy, eps, dx, rows, n, fl);
          g_autofree char *what = g_strdup_printf ("%s %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " acc %d",
                                                   op ? "l2_normalize_backward" : "softmax_backward", rows, n, acc);
          dcr_test_assert_close (what, got, dx, rows * n, 1e-5, 1e-4);
        }
  dcr_test_assert_no_validation_errors ();
}

/* ---- attention -------------------------------------------------------------------- */

typedef struct {
  double *q, *k, *v, *w;
  gint64 b, lq, lk, h, dh, dv;
  double scale;
} AttnObj;

static double
attn_obj (gpointer p)
{
  AttnObj *o = p;
  double s = 0;
  gint64 qr = o->h * o->dh, vr = o->h * o->dv;
  g_autofree double *pr = g_new (double, o->lk);
  for (gint64 b = 0; b < o->b; b++)
    for (gint64 h = 0; h < o->h; h++)
      for (gint64 i = 0; i < o->lq; i++)
        {
          const double *qi = o->q + (b * o->lq + i) * qr + h * o->dh;
          double m = -INFINITY, z = 0;
          for (gint64 j = 0; j < o->lk; j++)
            {
              double d = 0;
              for (gint64 c = 0; c < o->dh; c++)
                d += qi[c] * o->k[(b * o->lk + j) * qr + h * o->dh + c];
              pr[j] = d * o->scale;
              m = MAX (m, pr[j]);
            }
          for (gint64 j = 0; j < o->lk; j++)
            z += (pr[j] = exp (pr[j] - m));
          for (gint64 c = 0; c < o->dv; c++)
            {
              double out = 0;
              for (gint64 j = 0; j < o->lk; j++)
                out += pr[j] / z * o->v[(b * o->lk + j) * vr + h * o->dv + c];
              s += out * o->w[(b * o->lq + i) * vr + h * o->dv + c];
            }
        }
  return s;
}

static void
test_attention_fd (void)
{
  const gint64 b = 2, lq = 2, lk = 3, h = 2, dh = 3, dv = 2;
  gint64 nq = b * lq * h * dh, nk = b * lk * h * dh, nv = b * lk * h * dv, no = b * lq * h * dv;
  g_autofree float *q = dcr_test_random_floats (nq, 1, -1, 1);
  g_autofree float *k = dcr_test_random_floats (nk, 2, -1, 1);
  g_autofree float *v = dcr_test_random_floats (nv, 3, -1, 1);
  g_autofree float *dout = dcr_test_random_floats (no, 4, -1, 1);
  g_autofree float *dq = g_new (float, nq);
  g_autofree float *dk = g_new (float, nk);
  g_autofree float *dvv = g_new (float, nv);
  const float scale = 0.7f;
  dcr_ref_attention_backward (q, k, v, dout, b, lq, lk, h, dh, dv, scale, dq, dk, dvv, DCR_GRAD_OVERWRITE);
  g_autofree double *qd = to_double (q, nq);
  g_autofree double *kd = to_double (k, nk);
  g_autofree double *vd = to_double (v, nv);
  g_autofree double *wd = to_double (dout, no);
  AttnObj o = { qd, kd, vd, wd, b, lq, lk, h, dh, dv, scale };
  check_fd ("attention dq", qd, nq, attn_obj, &o, dq, 1e-6, 1e-5);
  check_fd ("attention dk", kd, nk, attn_obj, &o, dk, 1e-6, 1e-5);
  check_fd ("attention dv", vd, nv, attn_obj, &o, dvv, 1e-6, 1e-5);
}

static void
test_attention_gpu (void)
{
  /* b, lq, lk, heads, dh, dv, 2-D tensors (B = 1) */
  static const gint64 cases[][7] = {
    { 1, 1, 1, 1, 1, 1, 0 },   /* the single-key case: softmax ≡ 1, dq = dk = 0 */
    { 3, 1, 5, 1, 7, 7, 0 },   /* one query against 5 keys */
    { 2, 1, 17, 2, 8, 4, 0 },  /* two heads, dv ≠ dh */
    { 5, 3, 32, 4, 16, 16, 0 },
    { 1, 2, 65, 1, 33, 3, 1 },
    { 2, 1, 300, 2, 5, 9, 0 },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    for (int mode = 0; mode < 3; mode++)
      {
        /* mode 0 all grads, 1 accumulating, 2 dk and dv only */
        gint64 b = cases[c][0], lq = cases[c][1], lk = cases[c][2], h = cases[c][3];
        gint64 dh = cases[c][4], dv = cases[c][5];
        int nd = cases[c][6] ? 2 : 3;
        gint64 qs[] = { b, lq, h * dh }, ks[] = { b, lk, h * dh }, vs[] = { b, lk, h * dv }, os[] = { b, lq, h * dv };
        const gint64 *q_shape = qs + 3 - nd, *k_shape = ks + 3 - nd, *v_shape = vs + 3 - nd, *o_shape = os + 3 - nd;
        gint64 nq = b * lq * h * dh, nk = b * lk * h * dh, nv = b * lk * h * dv, no = b * lq * h * dv;
        g_autofree float *q = dcr_test_random_floats (nq, 21 + c, -1, 1);
        g_autofree float *k = dcr_test_random_floats (nk, 22 + c, -1, 1);
        g_autofree float *v = dcr_test_random_floats (nv, 23 + c, -1, 1);
        g_autofree float *dout = dcr_test_random_floats (no, 24 + c, -1, 1);
        g_autofree float *dq = dcr_test_random_floats (nq, 25 + c, -1, 1);
        g_autofree float *dk = dcr_test_random_floats (nk, 26 + c, -1, 1);
        g_autofree float *dvv = dcr_test_random_floats (nv, 27 + c, -1, 1);
        g_autoptr (DcrTensor) tq = dcr_test_upload_rounded (DCR_F32, nd, q_shape, q);
        g_autoptr (DcrTensor) tk = dcr_test_upload_rounded (DCR_F32, nd, k_shape, k);
        g_autoptr (DcrTensor) tv = dcr_test_upload_rounded (DCR_F32, nd, v_shape, v);
        g_autoptr (DcrTensor) to = dcr_test_upload_rounded (DCR_F32, nd, o_shape, dout);
        g_autoptr (DcrTensor) tdq = dcr_test_upload_rounded (DCR_F32, nd, q_shape, dq);
        g_autoptr (DcrTensor) tdk = dcr_test_upload_rounded (DCR_F32, nd, k_shape, dk);
        g_autoptr (DcrTensor) tdv = dcr_test_upload_rounded (DCR_F32, nd, v_shape, dvv);
        DcrGradFlags fl = mode == 1 ? DCR_GRAD_ACCUMULATE_INPUT : DCR_GRAD_OVERWRITE;
        g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
        g_autoptr (GError) err = NULL;
        g_assert_true (dcr_op_attention_backward (seq, tq, tk, tv, to, h, 0, mode == 2 ? NULL : tdq, tdk, tdv, fl,
                                                  &err));
        g_assert_no_error (err);
        dcr_test_submit_wait (seq);
        g_autofree float *gq = g_new (float, nq);
        g_autofree float *gk = g_new (float, nk);
        g_autofree float *gv = g_new (float, nv);
        dcr_test_download_into (tdq, gq);
        dcr_test_download_into (tdk, gk);
        dcr_test_download_into (tdv, gv);
        dcr_ref_attention_backward (q, k, v, dout, b, lq, lk, h, dh, dv, 0, mode == 2 ? NULL : dq, dk, dvv, fl);
        g_autofree char *what = g_strdup_printf ("attention_backward case %u mode %d", c, mode);
        dcr_test_assert_close (what, gq, dq, nq, 1e-5, 1e-4);
        dcr_test_assert_close (what, gk, dk, nk, 1e-5, 1e-4);
        dcr_test_assert_close (what, gv, dvv, nv, 1e-5, 1e-4);
        if (c == 0 && mode == 0)
          {
            /* one key: the attention is the identity on v, nothing flows to q or k */
            g_assert_cmpfloat (gq[0], ==, 0);
            g_assert_cmpfloat (gk[0], ==, 0);
            g_assert_cmpfloat_with_epsilon (gv[0], dout[0], 1e-7);
          }
      }
  dcr_test_assert_no_validation_errors ();
}

/* ---- argument checks ---------------------------------------------------------------- */

static void
test_errors (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  gint64 s4[] = { 4 }, s5[] = { 5 }, s23[] = { 2, 3 }, s32[] = { 3, 2 }, s243[] = { 2, 4, 3 }, s2k[] = { 1, 1, 4097 };
  g_autoptr (DcrTensor) a4 = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 1, s4, &err);
  g_autoptr (DcrTensor) a5 = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 1, s5, &err);
  g_autoptr (DcrTensor) i4 = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_I32, 1, s4, &err);
  g_autoptr (DcrTensor) m23 = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, s23, &err);
  g_autoptr (DcrTensor) m32 = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, s32, &err);
  g_autoptr (DcrTensor) t243 = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 3, s243, &err);
  g_autoptr (DcrTensor) big = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 3, s2k, &err);
  g_assert_no_error (err);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();

  g_assert_false (dcr_op_act_backward (seq, DCR_ACT_RELU, a4, a5, a4, 0, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "act_backward"));
  g_clear_error (&err);
  g_assert_false (dcr_op_act_backward (seq, DCR_ACT_RELU, i4, i4, i4, 0, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE);
  g_clear_error (&err);
  /* a [2, 3] cannot broadcast against b [3, 2] */
  g_assert_false (dcr_op_abs_diff_backward (seq, m23, m32, m32, m23, m32, 0, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  /* w [3, 2] wants x [..., 2] */
  g_assert_false (dcr_op_linear_backward (seq, m23, m32, m23, NULL, NULL, NULL, 0, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "[2, 3]"));
  g_clear_error (&err);
  g_assert_false (dcr_op_layer_norm_backward (seq, m23, NULL, m23, 1e-5f, m23, a4, NULL, NULL, 0, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  /* dgamma without stats */
  g_autoptr (DcrTensor) g3 = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 1, (gint64[]) { 3 }, &err);
  g_assert_false (dcr_op_layer_norm_backward (seq, m23, NULL, m23, 1e-5f, m23, g3, NULL, NULL, 0, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "stats"));
  g_clear_error (&err);
  g_assert_false (dcr_op_softmax_backward (seq, m23, m32, m23, 0, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_l2_normalize_backward (seq, m23, m23, 0, m23, 0, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED);
  g_clear_error (&err);
  /* 3 heads do not divide a width of 3·… fine, but 2 heads do not divide 3 */
  g_assert_false (dcr_op_attention_backward (seq, t243, t243, t243, t243, 2, 0, t243, NULL, NULL, 0, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  /* a head of 4097 scalars does not fit the lanes' registers (64 chunks per lane) */
  g_assert_false (dcr_op_attention_backward (seq, big, big, big, big, 1, 0, big, NULL, NULL, 0, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (err->message, "too large"));
  g_clear_error (&err);
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/grad/act/finite-differences", test_act_fd);
  g_test_add_func ("/grad/act/gpu", test_act_gpu);
  g_test_add_func ("/grad/abs-diff/finite-differences", test_abs_diff_fd);
  g_test_add_func ("/grad/abs-diff/gpu", test_abs_diff_gpu);
  g_test_add_func ("/grad/linear/finite-differences", test_linear_fd);
  g_test_add_func ("/grad/linear/gpu", test_linear_gpu);
  g_test_add_func ("/grad/bias/gpu", test_bias_gpu);
  g_test_add_func ("/grad/layer-norm/finite-differences", test_layer_norm_fd);
  g_test_add_func ("/grad/layer-norm/gpu", test_layer_norm_gpu);
  g_test_add_func ("/grad/softmax-l2/finite-differences", test_softmax_l2_fd);
  g_test_add_func ("/grad/softmax-l2/gpu", test_softmax_l2_gpu);
  g_test_add_func ("/grad/attention/finite-differences", test_attention_fd);
  g_test_add_func ("/grad/attention/gpu", test_attention_gpu);
  g_test_add_func ("/grad/errors", test_errors);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
