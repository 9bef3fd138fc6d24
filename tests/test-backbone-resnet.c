/* test-backbone-resnet.c — the "resnet50:" backbone against torchvision: a
 * narrow ResNet built from torchvision's own ResNet/Bottleneck classes
 * (tests/golden/resnet_tiny*.safetensors, make-backbone-golden.py) in f32
 * and f16 storage; the image path's preprocessing; broken weight files; and,
 * when DCR_GOLDEN_FULL_DIR is set, the full-size ResNet-50. */
#include "test-backbone-common.h"
#include "dcr-op-preprocess.h"

#define TINY_DIM (32 + 64 + 128 + 256)

static DcrBackbone *
load_tiny (DcrDtype dtype)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *path = golden_path ("resnet_tiny.safetensors");
  g_autofree char *spec = g_strdup_printf ("resnet50:%s", path);
  DcrBackbone *bb = dcr_backbone_load (dcr_test_context (), spec, dtype, &err);
  g_assert_no_error (err);
  return bb;
}

static void
check_golden (DcrDtype dtype, double frac)
{
  DcrContext *ctx = dcr_test_context ();
  if (dtype == DCR_F16 && !dcr_context_device (ctx)->storage_16bit)
    {
      g_test_skip ("no 16-bit storage on this device");
      return;
    }
  g_autoptr (DcrBackbone) bb = load_tiny (dtype);
  g_assert_cmpuint (dcr_backbone_dim (bb), ==, TINY_DIM);
  g_assert_cmpuint (dcr_backbone_input_size (bb), ==, 224);
  g_assert_cmpstr (dcr_backbone_kind (bb), ==, "resnet50");
  /* depth 2 + 3·5 blocks; not the standard widths */
  g_assert_true (g_str_has_prefix (dcr_backbone_id (bb), "resnet17-w8@"));
  g_assert_cmpuint (dcr_backbone_n_taps (bb), ==, 4);
  const char *names[] = { "layer1", "layer2", "layer3", "layer4" };
  guint widths[] = { 32, 64, 128, 256 }, offset = 0;
  for (guint t = 0; t < 4; t++)
    {
      const DcrBackboneTap *tap = dcr_backbone_tap (bb, t);
      g_assert_cmpstr (tap->name, ==, names[t]);
      g_assert_cmpuint (tap->offset, ==, offset);
      g_assert_cmpuint (tap->width, ==, widths[t]);
      offset += widths[t];
    }
  g_autofree float *got = run_on_golden_input (bb, 11, 2);
  g_autofree char *ref = golden_path ("resnet_tiny_ref.safetensors");
  g_autofree float *want = golden_features (ref, 2, TINY_DIM);
  assert_scaled_close (dtype == DCR_F32 ? "resnet f32" : "resnet f16", got, want, 2 * TINY_DIM, frac);
  dcr_test_assert_no_validation_errors ();
}

/* The reference is float64 from the same fp16-exact weights. f32: the GPU
 * differs by accumulation order over 17 layers (seen 9e-7 of the largest
 * value; allowed 1e-4). f16 storage rounds every activation to 2^-11
 * relative at each layer (seen 0.16%; allowed 1%). */
static void
test_golden_f32 (void)
{
  check_golden (DCR_F32, 1e-4);
}

static void
test_golden_f16 (void)
{
  check_golden (DCR_F16, 0.01);
}

/* set_image must equal torchvision's transform — Resize(256, antialias) +
 * CenterCrop(224) + ImageNet Normalize — applied on the CPU and fed in. */
static void
test_image_path (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBackbone) bb = load_tiny (DCR_F32);
  const guint32 w = 300, h = 260;
  g_autoptr (DcrImage) img = dcr_image_new (w, h);
  for (guint32 i = 0; i < w * h * 3; i++)
    img->pixels[i] = (guint8) (golden_lowbias32 (i) % 97 + (i / 3 % w) / 2);
  g_autoptr (DcrBackboneRun) run = dcr_backbone_run_new (bb, 2, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_backbone_run_set_image (run, 1, img, &err));
  g_assert_no_error (err);
  g_assert_true (dcr_backbone_run_forward (run, &err));
  guint dim = dcr_backbone_dim (bb);
  g_autofree float *got = g_new (float, 2 * dim);
  g_assert_true (dcr_backbone_run_features (run, got, &err));

  DcrPreprocessParams p = { 0 };
  dcr_preprocess_set_imagenet (&p);
  dcr_preprocess_set_resize_short_crop (&p, h, w, 256, 224, 224);
  p.filter = DCR_RESIZE_ANTIALIAS;
  g_assert_cmpint (p.resize_w, ==, 295);
  g_autofree float *in = g_new0 (float, 2 * 224 * 224 * 3);
  dcr_ref_preprocess (img->pixels, h, w, in + 224 * 224 * 3, 224, 224, &p);
  g_assert_true (dcr_backbone_run_set_input (run, in, 2, &err));
  g_assert_true (dcr_backbone_run_forward (run, &err));
  g_autofree float *want = g_new (float, 2 * dim);
  g_assert_true (dcr_backbone_run_features (run, want, &err));
  g_assert_no_error (err);
  assert_scaled_close ("image path vs CPU preprocessing", got + dim, want + dim, dim, 1e-4);
  dcr_test_assert_no_validation_errors ();
}

/* A batch recorded in chunks (here 2 + 2 overlapping for 3 images, as when
 * the activations outgrow a buffer or the CPU's caches) gives what one
 * chunk gives. */
static void
test_chunks (void)
{
  g_autoptr (DcrBackbone) bb = load_tiny (DCR_F32);
  g_unsetenv ("DCR_BACKBONE_CHUNK");
  g_autofree float *whole = run_on_golden_input (bb, 11, 3);
  g_setenv ("DCR_BACKBONE_CHUNK", "2", TRUE);
  g_autofree float *chunked = run_on_golden_input (bb, 11, 3);
  g_unsetenv ("DCR_BACKBONE_CHUNK");
  dcr_test_assert_close ("chunked vs whole", chunked, whole, 3 * TINY_DIM, 1e-6, 1e-6);
  g_autofree char *ref = golden_path ("resnet_tiny_ref.safetensors");
  g_autofree float *want = golden_features (ref, 2, TINY_DIM);
  assert_scaled_close ("chunked vs torchvision", chunked, want, 2 * TINY_DIM, 1e-4);
  dcr_test_assert_no_validation_errors ();
}

/* A DataParallel checkpoint ("module." before every name) loads as well. */
static void
test_prefixed_names (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dcr-resnet-XXXXXX", &err);
  g_autofree char *src = golden_path ("resnet_tiny.safetensors");
  g_autofree char *dst = g_build_filename (dir, "module.safetensors", NULL);
  write_damaged (src, dst, DAMAGE_PREFIX, "module.");
  g_autofree char *spec = g_strdup_printf ("resnet50:%s", dst);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (dcr_test_context (), spec, DCR_F32, &err);
  g_assert_no_error (err);
  g_autofree float *got = run_on_golden_input (bb, 11, 1);
  g_autofree char *ref = golden_path ("resnet_tiny_ref.safetensors");
  g_autofree float *want = golden_features (ref, 2, TINY_DIM);
  assert_scaled_close ("module.-prefixed", got, want, TINY_DIM, 1e-4);
  g_remove (dst);
  g_rmdir (dir);
}

static void
test_bad_weights (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dcr-resnet-XXXXXX", &err);
  g_autofree char *src = golden_path ("resnet_tiny.safetensors");
  g_autofree char *path = g_build_filename (dir, "bad-resnet.safetensors", NULL);

  /* truncated */
  gchar *data = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (src, &data, &len, &err));
  g_assert_true (g_file_set_contents (path, data, (gssize) (len * 2 / 3), &err));
  g_free (data);
  assert_load_fails ("resnet50", path, NULL);

  struct {
    Damage damage;
    const char *tensor;
  } cases[] = {
    { DAMAGE_DROP, "layer3.0.bn2.running_var" },
    { DAMAGE_DROP, "layer2.0.downsample.0.weight" },
    { DAMAGE_DROP, "layer4.0.conv3.weight" },
    { DAMAGE_RESHAPE, "layer1.1.conv3.weight" },
    { DAMAGE_RESHAPE, "bn1.bias" },
    { DAMAGE_NAN, "layer2.0.conv2.weight" },
    { DAMAGE_NAN, "layer4.0.downsample.1.running_mean" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      write_damaged (src, path, cases[i].damage, cases[i].tensor);
      assert_load_fails ("resnet50", path, cases[i].tensor);
    }
  /* not a ResNet at all */
  g_autofree char *clip = golden_path ("clip_tiny.safetensors");
  assert_load_fails ("resnet50", clip, "conv1.weight");
  g_remove (path);
  g_rmdir (dir);
}

/* The full-size check (not in CI): torchvision resnet50(weights=None) with
 * calibrated BatchNorm, written by `make-backbone-golden.py --full DIR`. */
static void
test_full_size (void)
{
  const char *dir = g_getenv ("DCR_GOLDEN_FULL_DIR");
  if (!dir)
    {
      g_test_skip ("set DCR_GOLDEN_FULL_DIR (make-backbone-golden.py --full DIR) for the full-size ResNet-50");
      return;
    }
  DcrDtype dtypes[] = { DCR_F32, DCR_F16 };
  for (gsize d = 0; d < G_N_ELEMENTS (dtypes); d++)
    {
      g_autoptr (GError) err = NULL;
      g_autofree char *spec = g_strdup_printf ("resnet50:%s/resnet50.safetensors", dir);
      g_autoptr (DcrBackbone) bb = dcr_backbone_load (dcr_test_context (), spec, dtypes[d], &err);
      g_assert_no_error (err);
      g_assert_cmpuint (dcr_backbone_dim (bb), ==, 3840);
      g_assert_true (g_str_has_prefix (dcr_backbone_id (bb), "resnet50@"));
      g_autofree float *got = run_on_golden_input (bb, 21, 2);
      g_autofree char *ref = g_strdup_printf ("%s/resnet50_ref.safetensors", dir);
      g_autofree float *want = golden_features (ref, 2, 3840);
      assert_scaled_close (dtypes[d] == DCR_F32 ? "full resnet50 f32" : "full resnet50 f16", got, want, 2 * 3840,
                           dtypes[d] == DCR_F32 ? 1e-4 : 0.01);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/backbone/resnet/golden-f32", test_golden_f32);
  g_test_add_func ("/backbone/resnet/golden-f16", test_golden_f16);
  g_test_add_func ("/backbone/resnet/image-path", test_image_path);
  g_test_add_func ("/backbone/resnet/chunks", test_chunks);
  g_test_add_func ("/backbone/resnet/prefixed-names", test_prefixed_names);
  g_test_add_func ("/backbone/resnet/bad-weights", test_bad_weights);
  g_test_add_func ("/backbone/resnet/full-size", test_full_size);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
