/* test-backbone.c — the default MobileNetV2 backbone against the original
 * model: pooled taps of four synthetic images, as computed by nsfwjs's own
 * tfjs model (tests/golden/mobilenet_v2_tfjs.safetensors, written by
 * data/models/tfjs-reference.mjs), in f32 and f16 storage; plus the image
 * path through GPU preprocessing, and refusals of broken weight files. */
#include "test-backbone-common.h"
#include "dcr-tile-head.h"
#include "dcr-op-forensic.h"
#include "dcr-op-local.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#define S 224

/* The golden file's inputs, as its metadata defines them. */
static guint8
golden_pixel (int k, guint32 y, guint32 x, guint32 c)
{
  switch (k)
    {
    case 0: return (guint8) (c == 0 ? x : c == 1 ? y : (x + y) >> 1);
    case 1: return (guint8) (golden_lowbias32 ((y * 224 + x) * 3 + c) & 255);
    case 2: return (guint8) ((((x >> 4) ^ (y >> 4)) & 1) ? 230 - 40 * c : 20 + 60 * c);
    default: return (guint8) (((x * x + 2 * y * y + 5000 * c) >> 6) & 255);
    }
}

/* The pooled taps of the tfjs golden file, laid out as the backbone's feature. */
static float *
tfjs_features (DcrBackbone *bb, guint n_images)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *path = golden_path ("mobilenet_v2_tfjs.safetensors");
  g_autoptr (DcrSafetensors) st = dcr_safetensors_open (path, &err);
  g_assert_no_error (err);
  guint dim = dcr_backbone_dim (bb);
  float *want = g_new0 (float, n_images * dim);
  for (guint t = 0; t < dcr_backbone_n_taps (bb); t++)
    {
      const DcrBackboneTap *tap = dcr_backbone_tap (bb, t);
      if (g_str_equal (tap->name, "residual"))
        continue; /* ours, not the network's */
      g_autofree char *name = g_strdup_printf ("%s.pooled", tap->name);
      gint64 shape[] = { 4, tap->width };
      g_autofree float *v = NULL;
      g_assert_true (dcr_safetensors_get_f32 (st, name, shape, 2, &v, &err));
      g_assert_no_error (err);
      for (guint i = 0; i < n_images; i++)
        memcpy (want + i * dim + tap->offset, v + i * tap->width, tap->width * sizeof (float));
    }
  return want;
}

static void
check_against_golden (DcrDtype dtype, double atol, double rtol)
{
  DcrContext *ctx = dcr_test_context ();
  if (dtype == DCR_F16 && !dcr_context_device (ctx)->storage_16bit)
    {
      g_test_skip ("no 16-bit storage on this device");
      return;
    }
  g_autoptr (GError) err = NULL;
  g_autofree char *weights = dcr_backbone_default_path ();
  g_autofree char *spec = g_strconcat ("mobilenet_v2:", weights, NULL);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, spec, dtype, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (dcr_backbone_dim (bb), ==, 24 + 32 + 64 + 96);
  g_assert_true (g_str_has_prefix (dcr_backbone_id (bb), "mobilenet_v2_b10@"));

  g_autoptr (DcrBackboneRun) run = dcr_backbone_run_new (bb, 4, &err);
  g_assert_no_error (err);
  g_autofree float *in = g_new (float, 4 * S * S * 3);
  for (int k = 0; k < 4; k++)
    for (guint32 y = 0; y < S; y++)
      for (guint32 x = 0; x < S; x++)
        for (guint32 c = 0; c < 3; c++)
          in[(((gsize) k * S + y) * S + x) * 3 + c] = (float) golden_pixel (k, y, x, c) / 127.5f - 1.0f;
  g_assert_true (dcr_backbone_run_set_input (run, in, 4, &err));
  g_assert_true (dcr_backbone_run_forward (run, &err));
  g_assert_no_error (err);
  guint dim = dcr_backbone_dim (bb);
  g_autofree float *got = g_new (float, 4 * dim);
  g_assert_true (dcr_backbone_run_features (run, got, &err));
  g_autofree float *want = tfjs_features (bb, 4);
  if (dtype == DCR_F32)
    dcr_test_assert_close ("MobileNetV2 pooled taps vs tfjs", got, want, 4 * dim, atol, rtol);
  else
    assert_scaled_close ("MobileNetV2 pooled taps vs tfjs (f16)", got, want, 4 * dim, atol);

  /* replaying the recorded pass gives the same answer */
  g_assert_true (dcr_backbone_run_forward (run, &err));
  g_autofree float *again = g_new (float, 4 * dim);
  g_assert_true (dcr_backbone_run_features (run, again, &err));
  dcr_test_assert_close ("replay", again, got, 4 * dim, 0, 0);
  dcr_test_assert_no_validation_errors ();
}

/* Largest pooled value is ~26; tfjs and torch agree to 7e-6. f32 on the GPU
 * differs by accumulation order only: 1e-3 absolute + 1e-3 relative. f16
 * storage rounds every weight and activation (2^-11 relative) through 30
 * layers: within 1% of the largest pooled value. */
static void
test_golden_f32 (void)
{
  check_against_golden (DCR_F32, 1e-3, 1e-3);
}

static void
test_golden_f16 (void)
{
  check_against_golden (DCR_F16, 0.01, 0);
}

/* An image whose size is already 224×224 passes preprocessing unchanged
 * (up to the x/127.5 − 1 scaling), so the image path must give the same
 * network features as the direct input; the default backbone appends the
 * residual statistics of the same pixels (dcr-op-forensic.h). */
static void
test_image_path (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  g_autofree char *weights = dcr_backbone_default_path ();
  g_autofree char *spec = g_strconcat ("mobilenet_v2+residual:", weights, NULL);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, spec, DCR_F32, &err);
  g_assert_no_error (err);
  g_autoptr (DcrBackboneRun) run = dcr_backbone_run_new (bb, 2, &err);
  g_assert_no_error (err);
  g_autoptr (DcrImage) img = dcr_image_new (S, S);
  for (guint32 y = 0; y < S; y++)
    for (guint32 x = 0; x < S; x++)
      for (guint32 c = 0; c < 3; c++)
        img->pixels[(y * S + x) * 3 + c] = golden_pixel (3, y, x, c);
  g_assert_true (dcr_backbone_run_set_image (run, 1, img, &err));
  g_assert_no_error (err);
  g_assert_false (dcr_backbone_run_set_image (run, 2, img, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_BATCH);
  g_clear_error (&err);
  g_assert_true (dcr_backbone_run_forward (run, &err));
  guint dim = dcr_backbone_dim (bb);
  g_autofree float *got = g_new (float, 2 * dim);
  g_assert_true (dcr_backbone_run_features (run, got, &err));
  g_assert_true (g_str_has_prefix (dcr_backbone_id (bb), "mobilenet_v2_b10+residual-v1@"));
  const DcrBackboneTap *res = dcr_backbone_tap (bb, dcr_backbone_n_taps (bb) - 1);
  g_assert_cmpstr (res->name, ==, "residual");
  g_assert_cmpuint (res->offset, ==, 216);
  g_assert_cmpuint (res->width, ==, DCR_FORENSIC_DIM);
  g_assert_cmpuint (dim, ==, 216 + DCR_FORENSIC_DIM);
  g_autofree float *want = tfjs_features (bb, 4);
  dcr_test_assert_close ("image 3 through preprocessing", got + dim, want + 3 * dim, res->offset, 1e-3, 1e-3);
  DcrForensicWindow win;
  g_assert_true (dcr_forensic_window (S, S, &win));
  g_autofree double *acc = g_new (double, DCR_FORENSIC_ACC_SIZE);
  dcr_ref_forensic_stats (img->pixels, S, S, &win, acc);
  float ref[DCR_FORENSIC_DIM];
  dcr_ref_forensic_features (acc, &win, &dcr_forensic_scales_v1, ref);
  dcr_test_assert_close ("residual tap", got + dim + res->offset, ref, DCR_FORENSIC_DIM, 2e-4, 1e-4);
  /* slot 0 never got an image: its residual columns stay zero */
  for (guint i = 0; i < DCR_FORENSIC_DIM; i++)
    g_assert_cmpfloat (got[res->offset + i], ==, 0.0f);

  /* an image too small for the statistics is refused, naming the minimum */
  g_autoptr (DcrImage) tiny = dcr_image_new (20, 30);
  g_assert_false (dcr_backbone_run_set_image (run, 0, tiny, &err));
  g_assert_nonnull (strstr (err->message, "36"));
  g_clear_error (&err);

  /* "default" is the raw "+residual+local+tiles+cnn" feature (the columns
   * above, then the local tap's, the shipped tile head's and the shipped
   * CNN's) standardised column by column with the shipped mean and std */
  g_autofree char *head = dcr_backbone_default_tile_head_path ();
  g_autofree char *cnn = dcr_backbone_default_cnn_path ();
  g_assert_nonnull (head);
  g_assert_nonnull (cnn);
  g_autofree char *lspec = g_strconcat ("mobilenet_v2+residual+local+tiles=", head, "+cnn=", cnn, ":", weights, NULL);
  g_clear_pointer (&run, dcr_backbone_run_free);
  g_clear_pointer (&bb, dcr_backbone_free);
  bb = dcr_backbone_load (ctx, lspec, DCR_F32, &err);
  g_assert_no_error (err);
  run = dcr_backbone_run_new (bb, 1, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_backbone_run_set_image (run, 0, img, &err));
  g_assert_true (dcr_backbone_run_forward (run, &err));
  g_assert_no_error (err);
  guint rdim = dim;
  dim = dcr_backbone_dim (bb);
  g_assert_cmpuint (dim, ==, rdim + DCR_LOCAL_DIM + DCR_TILES_DIM + DCR_CNN_DIM);
  g_assert_true (dcr_backbone_has_tiles (bb));
  g_assert_cmpuint (dcr_backbone_tiles_column (bb), ==, rdim + DCR_LOCAL_DIM);
  g_assert_true (dcr_backbone_has_cnn (bb));
  g_assert_cmpuint (dcr_backbone_cnn_column (bb), ==, rdim + DCR_LOCAL_DIM + DCR_TILES_DIM);
  g_autofree float *raw = g_new (float, dim);
  g_assert_true (dcr_backbone_run_features (run, raw, &err));
  dcr_test_assert_close ("the same network and residual columns", raw, got + rdim, rdim, 1e-5, 1e-5);
  g_autofree char *norm_path = dcr_backbone_default_norm_path ();
  g_assert_nonnull (norm_path);
  g_autoptr (DcrSafetensors) st = dcr_safetensors_open (norm_path, &err);
  g_assert_no_error (err);
  g_assert_cmpstr (dcr_safetensors_metadata (st, "backbone"), ==, dcr_backbone_id (bb));
  gint64 nshape[] = { dim };
  g_autofree float *mean = NULL, *sd = NULL;
  g_assert_true (dcr_safetensors_get_f32 (st, "mean", nshape, 1, &mean, &err));
  g_assert_true (dcr_safetensors_get_f32 (st, "std", nshape, 1, &sd, &err));
  g_autoptr (DcrBackbone) def = dcr_backbone_load (ctx, "default", DCR_F32, &err);
  g_assert_no_error (err);
  g_assert_true (g_str_has_prefix (dcr_backbone_id (def), dcr_backbone_id (bb)));
  g_assert_nonnull (strstr (dcr_backbone_id (def), "+norm@"));
  g_autoptr (DcrBackboneRun) drun = dcr_backbone_run_new (def, 1, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_backbone_run_set_image (drun, 0, img, &err));
  g_assert_true (dcr_backbone_run_forward (drun, &err));
  g_assert_no_error (err);
  g_autofree float *dgot = g_new (float, dim), *dwant = g_new (float, dim);
  g_assert_true (dcr_backbone_run_features (drun, dgot, &err));
  for (guint i = 0; i < dim; i++)
    dwant[i] = (raw[i] - mean[i]) / sd[i];
  dcr_test_assert_close ("standardised default feature", dgot, dwant, dim, 1e-3, 1e-3);
  /* replaying the pass does not standardise twice */
  g_assert_true (dcr_backbone_run_forward (drun, &err));
  g_assert_true (dcr_backbone_run_features (drun, dgot, &err));
  dcr_test_assert_close ("replayed standardisation", dgot, dwant, dim, 1e-3, 1e-3);
  /* set_image's GPU work runs at the next forward, in the order the images
   * were set: a slot set twice holds the later image, and an image freed
   * right after set_image is still analysed (its pixels were copied) */
  g_autoptr (DcrImage) other = dcr_image_new (S + 40, S);
  gsize other_bytes = (gsize) other->width * other->height * 3;
  for (gsize i = 0; i < other_bytes; i++)
    other->pixels[i] = (guint8) (i * 7 % 251);
  g_assert_true (dcr_backbone_run_set_image (drun, 0, other, &err));
  g_assert_true (dcr_backbone_run_forward (drun, &err));
  g_autofree float *ogot = g_new (float, dim);
  g_assert_true (dcr_backbone_run_features (drun, ogot, &err));
  DcrImage *copy = dcr_image_new (other->width, other->height);
  memcpy (copy->pixels, other->pixels, other_bytes);
  g_assert_true (dcr_backbone_run_set_image (drun, 0, img, &err));
  g_assert_true (dcr_backbone_run_set_image (drun, 0, copy, &err));
  memset (copy->pixels, 0, other_bytes);
  dcr_image_free (copy);
  g_assert_true (dcr_backbone_run_forward (drun, &err));
  g_assert_no_error (err);
  g_assert_true (dcr_backbone_run_features (drun, dgot, &err));
  dcr_test_assert_close ("the later of two images set", dgot, ogot, dim, 0, 0);
  /* the same when each image's work runs before the next is set (what
   * large photos get, past the staging limit) */
  g_setenv ("DCR_BACKBONE_STAGING_MB", "0", TRUE);
  g_assert_true (dcr_backbone_run_set_image (drun, 0, img, &err));
  g_assert_true (dcr_backbone_run_set_image (drun, 0, other, &err));
  g_unsetenv ("DCR_BACKBONE_STAGING_MB");
  g_assert_true (dcr_backbone_run_forward (drun, &err));
  g_assert_true (dcr_backbone_run_features (drun, dgot, &err));
  dcr_test_assert_close ("the later of two images set, run one by one", dgot, ogot, dim, 0, 0);
  float most = 0; /* the two images' features differ */
  for (guint i = 0; i < dim; i++)
    most = MAX (most, fabsf (ogot[i] - dwant[i]));
  g_assert_cmpfloat (most, >, 0.1f);
  dcr_test_assert_no_validation_errors ();
}

/* "+residual+local": tap "local" (dcr-op-local.h) after "residual", both
 * the references' values for the image's own pixels (a 300 × 260 picture:
 * 6 × 5 tiles, a clipped window), the network's columns those of the plain
 * "+residual" backbone; "+local" alone, and the suffixes out of order. */
static void
test_local_tap (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  g_autofree char *weights = dcr_backbone_default_path ();
  g_autofree char *spec = g_strconcat ("mobilenet_v2+residual+local:", weights, NULL);
  g_autofree char *rspec = g_strconcat ("mobilenet_v2+residual:", weights, NULL);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, spec, DCR_F32, &err);
  g_assert_no_error (err);
  g_autoptr (DcrBackbone) rb = dcr_backbone_load (ctx, rspec, DCR_F32, &err);
  g_assert_no_error (err);
  g_assert_true (g_str_has_prefix (dcr_backbone_id (bb), "mobilenet_v2_b10+residual-v1+local-v1@"));
  guint dim = dcr_backbone_dim (bb), n = dcr_backbone_n_taps (bb);
  g_assert_cmpuint (dim, ==, 216 + DCR_FORENSIC_DIM + DCR_LOCAL_DIM);
  const DcrBackboneTap *res = dcr_backbone_tap (bb, n - 2), *loc = dcr_backbone_tap (bb, n - 1);
  g_assert_cmpstr (res->name, ==, "residual");
  g_assert_cmpuint (res->offset, ==, 216);
  g_assert_cmpstr (loc->name, ==, "local");
  g_assert_cmpuint (loc->offset, ==, 216 + DCR_FORENSIC_DIM);
  g_assert_cmpuint (loc->width, ==, DCR_LOCAL_DIM);

  const guint32 w = 300, h = 260;
  g_autoptr (DcrImage) img = dcr_image_new (w, h);
  for (guint32 y = 0; y < h; y++)
    for (guint32 x = 0; x < w; x++)
      for (guint32 c = 0; c < 3; c++)
        img->pixels[(y * w + x) * 3 + c] = (guint8) ((x * 7 + y * 3 + c * 50) % 200
                                                     + (golden_lowbias32 ((y * w + x) * 3 + c) % (x / 40 + 3)));
  g_autoptr (DcrBackboneRun) run = dcr_backbone_run_new (bb, 2, &err);
  g_assert_no_error (err);
  g_autoptr (DcrBackboneRun) rrun = dcr_backbone_run_new (rb, 1, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_backbone_run_set_image (run, 1, img, &err));
  g_assert_true (dcr_backbone_run_set_image (rrun, 0, img, &err));
  g_assert_true (dcr_backbone_run_forward (run, &err));
  g_assert_true (dcr_backbone_run_forward (rrun, &err));
  g_assert_no_error (err);
  g_autofree float *got = g_new (float, 2 * dim), *rgot = g_new (float, dcr_backbone_dim (rb));
  g_assert_true (dcr_backbone_run_features (run, got, &err));
  g_assert_true (dcr_backbone_run_features (rrun, rgot, &err));
  g_assert_no_error (err);
  dcr_test_assert_close ("network and residual columns", got + dim, rgot, dcr_backbone_dim (rb), 0, 0);
  DcrForensicWindow win;
  g_assert_true (dcr_forensic_window (h, w, &win));
  g_autofree double *acc = g_new (double, DCR_LOCAL_ACC_SIZE);
  dcr_ref_local_stats (img->pixels, h, w, &win, acc);
  float ref[DCR_LOCAL_DIM];
  dcr_ref_local_features (acc, &win, ref);
  dcr_test_assert_close ("local tap", got + dim + loc->offset, ref, DCR_LOCAL_DIM, 2e-4, 1e-4);
  /* slot 0 never got an image: its forensic columns stay zero */
  for (guint i = res->offset; i < dim; i++)
    g_assert_cmpfloat (got[i], ==, 0.0f);
  /* the local tap needs no more pixels than the residual one */
  g_autoptr (DcrImage) small = dcr_image_new (36, 36);
  g_assert_true (dcr_backbone_check_image (bb, 36, 36, &err));
  g_assert_true (dcr_backbone_run_set_image (run, 0, small, &err));
  g_assert_no_error (err);
  g_assert_false (dcr_backbone_check_image (bb, 35, 200, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_INPUT);
  g_clear_error (&err);

  g_autofree char *lspec = g_strconcat ("mobilenet_v2+local:", weights, NULL);
  g_autoptr (DcrBackbone) lb = dcr_backbone_load (ctx, lspec, DCR_F32, &err);
  g_assert_no_error (err);
  g_assert_true (g_str_has_prefix (dcr_backbone_id (lb), "mobilenet_v2_b10+local-v1@"));
  g_assert_cmpuint (dcr_backbone_dim (lb), ==, 216 + DCR_LOCAL_DIM);
  g_assert_cmpstr (dcr_backbone_tap (lb, dcr_backbone_n_taps (lb) - 1)->name, ==, "local");
  g_autofree char *bad = g_strconcat ("mobilenet_v2+local+residual:", weights, NULL);
  g_assert_null (dcr_backbone_load (ctx, bad, DCR_F32, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC);
  dcr_test_assert_no_validation_errors ();
}

static void
test_bad_weights (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dcr-bb-XXXXXX", &err);
  g_autofree char *src = dcr_backbone_default_path ();
  gchar *data = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (src, &data, &len, &err));

  /* truncated */
  g_autofree char *cut = g_build_filename (dir, "cut.safetensors", NULL);
  g_assert_true (g_file_set_contents (cut, data, (gssize) (len / 2), &err));
  g_autofree char *spec = g_strdup_printf ("mobilenet_v2:%s", cut);
  g_assert_null (dcr_backbone_load (ctx, spec, DCR_F32, &err));
  g_assert_nonnull (err);
  g_assert_nonnull (strstr (err->message, "cut.safetensors"));
  g_clear_error (&err);

  /* missing file, unknown spec */
  g_assert_null (dcr_backbone_load (ctx, "mobilenet_v2:/nonexistent/w.safetensors", DCR_F32, &err));
  g_assert_nonnull (err);
  g_clear_error (&err);
  g_assert_null (dcr_backbone_load (ctx, "vgg16", DCR_F32, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC);
  g_clear_error (&err);

  /* a valid safetensors file that is not this network */
  g_autofree char *other = g_build_filename (dir, "other.safetensors", NULL);
  float v[4] = { 1, 2, 3, 4 };
  gint64 shape[] = { 4 };
  DcrStWriteTensor t = { "Conv1.weight", DCR_ST_F32, 1, shape, v };
  const char *meta[] = { "format", "dcr-mobilenet-v2-b10", NULL };
  g_assert_true (dcr_safetensors_write (other, &t, 1, meta, &err));
  g_free (spec);
  spec = g_strdup_printf ("mobilenet_v2:%s", other);
  g_assert_null (dcr_backbone_load (ctx, spec, DCR_F32, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_WEIGHTS);
  g_clear_error (&err);

  g_free (data);
  g_remove (cut);
  g_remove (other);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/backbone/mobilenet-v2/golden-f32", test_golden_f32);
  g_test_add_func ("/backbone/mobilenet-v2/golden-f16", test_golden_f16);
  g_test_add_func ("/backbone/mobilenet-v2/image-path", test_image_path);
  g_test_add_func ("/backbone/mobilenet-v2/local-tap", test_local_tap);
  g_test_add_func ("/backbone/bad-weights", test_bad_weights);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
