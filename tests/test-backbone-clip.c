/* test-backbone-clip.c — the "clip-vit-l14:" backbone against PyTorch: a
 * small ViT in Hugging Face CLIP names run through torch's
 * TransformerEncoderLayer(norm_first=True) (tests/golden/clip_tiny*.
 * safetensors, make-backbone-golden.py) in f32 and f16 storage; the head
 * count from a config.json; the image path's preprocessing; broken weight
 * files; and, when DCR_GOLDEN_FULL_DIR is set, a full-size ViT-L/14. */
#include "test-backbone-common.h"
#include "dcr-op-preprocess.h"

#define WIDTH 64
#define LAYERS 3
#define TINY_DIM ((LAYERS + 1) * WIDTH)
#define SIZE 56

static DcrBackbone *
load_path (const char *path, DcrDtype dtype)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *spec = g_strdup_printf ("clip-vit-l14:%s", path);
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
  g_autofree char *path = golden_path ("clip_tiny.safetensors");
  g_autoptr (DcrBackbone) bb = load_path (path, dtype);
  g_assert_cmpuint (dcr_backbone_dim (bb), ==, TINY_DIM);
  g_assert_cmpuint (dcr_backbone_input_size (bb), ==, SIZE);
  g_assert_cmpstr (dcr_backbone_kind (bb), ==, "clip-vit-l14");
  g_assert_true (g_str_has_prefix (dcr_backbone_id (bb), "clip-vit-w64-d3-p14-s56@"));
  g_assert_cmpuint (dcr_backbone_n_taps (bb), ==, LAYERS + 1);
  for (guint t = 0; t <= LAYERS; t++)
    {
      const DcrBackboneTap *tap = dcr_backbone_tap (bb, t);
      g_autofree char *name = t < LAYERS ? g_strdup_printf ("block_%u", t) : g_strdup ("pooled");
      g_assert_cmpstr (tap->name, ==, name);
      g_assert_cmpuint (tap->offset, ==, t * WIDTH);
      g_assert_cmpuint (tap->width, ==, WIDTH);
    }
  g_autofree float *got = run_on_golden_input (bb, 12, 3);
  g_autofree char *ref = golden_path ("clip_tiny_ref.safetensors");
  g_autofree float *want = golden_features (ref, 3, TINY_DIM);
  assert_scaled_close (dtype == DCR_F32 ? "clip f32" : "clip f16", got, want, 3 * TINY_DIM, frac);
  dcr_test_assert_no_validation_errors ();
}

/* Reference: float64 from the same fp16-exact weights. f32 differs by
 * accumulation order (seen 4e-7 of the largest value; allowed 1e-4); f16
 * storage rounds each activation to 2^-11 relative (seen 0.08%; allowed
 * 1%). */
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

/* Without num_attention_heads in the file's metadata, the heads come from
 * the config.json beside it (a CLIPConfig's vision_config) — and without
 * either, 64-wide heads (1 here), which must give other features. */
static void
test_config_json (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *src = golden_path ("clip_tiny.safetensors");
  g_autoptr (DcrSafetensors) st = dcr_safetensors_open (src, &err);
  g_assert_no_error (err);
  g_autofree char *dir = g_dir_make_tmp ("dcr-clip-XXXXXX", &err);
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree char *cfg = g_build_filename (dir, "config.json", NULL);
  /* the same tensors, no metadata */
  guint n = dcr_safetensors_n_tensors (st);
  g_autofree DcrStWriteTensor *t = g_new0 (DcrStWriteTensor, n);
  for (guint i = 0; i < n; i++)
    {
      const DcrStTensor *s = dcr_safetensors_tensor_at (st, i);
      t[i] = (DcrStWriteTensor) { s->name, s->dtype, s->ndim, s->shape, s->data };
    }
  g_assert_true (dcr_safetensors_write (path, t, n, NULL, &err));
  g_assert_no_error (err);

  g_autofree char *ref = golden_path ("clip_tiny_ref.safetensors");
  g_autofree float *want = golden_features (ref, 3, TINY_DIM);
  {
    g_autoptr (DcrBackbone) bb = load_path (path, DCR_F32);
    g_autofree float *got = run_on_golden_input (bb, 12, 1);
    double worst = 0;
    for (guint i = 0; i < TINY_DIM; i++)
      worst = MAX (worst, fabs (got[i] - want[i]));
    g_assert_cmpfloat (worst, >, 0.05);
  }
  const char *json = "{\"model_type\": \"clip\", \"vision_config\": {\"hidden_size\": 64, "
                     "\"num_attention_heads\": 4, \"hidden_act\": \"quick_gelu\", \"layer_norm_eps\": 1e-05}}";
  g_assert_true (g_file_set_contents (cfg, json, -1, &err));
  {
    g_autoptr (DcrBackbone) bb = load_path (path, DCR_F32);
    g_autofree float *got = run_on_golden_input (bb, 12, 1);
    assert_scaled_close ("heads from config.json", got, want, TINY_DIM, 1e-4);
  }
  g_assert_true (g_file_set_contents (cfg, "{\"num_attention_heads\": 5}", -1, &err));
  assert_load_fails ("clip-vit-l14", path, NULL);
  g_assert_true (g_file_set_contents (cfg, "{\"num_attention_heads\": 4, \"hidden_act\": \"swish\"}", -1, &err));
  assert_load_fails ("clip-vit-l14", path, NULL);
  g_remove (cfg);
  g_remove (path);
  g_rmdir (dir);
}

/* set_image must equal CLIP's transform — short side to 56, centre crop,
 * CLIP mean/std (with our antialiased triangle filter for the resize) —
 * applied on the CPU and fed in. */
static void
test_image_path (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *path = golden_path ("clip_tiny.safetensors");
  g_autoptr (DcrBackbone) bb = load_path (path, DCR_F32);
  const guint32 w = 70, h = 90;
  g_autoptr (DcrImage) img = dcr_image_new (w, h);
  for (guint32 i = 0; i < w * h * 3; i++)
    img->pixels[i] = (guint8) (golden_lowbias32 (i) % 120 + (i / 3 / w));
  g_autoptr (DcrBackboneRun) run = dcr_backbone_run_new (bb, 1, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_backbone_run_set_image (run, 0, img, &err));
  g_assert_no_error (err);
  g_assert_true (dcr_backbone_run_forward (run, &err));
  g_autofree float *got = g_new (float, TINY_DIM);
  g_assert_true (dcr_backbone_run_features (run, got, &err));

  static const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
  static const float sd[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
  DcrPreprocessParams p = { .divisor = 255.0f, .filter = DCR_RESIZE_ANTIALIAS };
  memcpy (p.mean, mean, sizeof mean);
  memcpy (p.std, sd, sizeof sd);
  dcr_preprocess_set_resize_short_crop (&p, h, w, SIZE, SIZE, SIZE);
  g_assert_cmpint (p.resize_h, ==, 72);
  g_autofree float *in = g_new0 (float, SIZE * SIZE * 3);
  dcr_ref_preprocess (img->pixels, h, w, in, SIZE, SIZE, &p);
  g_assert_true (dcr_backbone_run_set_input (run, in, 1, &err));
  g_assert_true (dcr_backbone_run_forward (run, &err));
  g_autofree float *want = g_new (float, TINY_DIM);
  g_assert_true (dcr_backbone_run_features (run, want, &err));
  g_assert_no_error (err);
  assert_scaled_close ("image path vs CPU preprocessing", got, want, TINY_DIM, 1e-4);
  dcr_test_assert_no_validation_errors ();
}

static void
test_bad_weights (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dcr-clip-XXXXXX", &err);
  g_autofree char *src = golden_path ("clip_tiny.safetensors");
  g_autofree char *path = g_build_filename (dir, "bad-clip.safetensors", NULL);

  gchar *data = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (src, &data, &len, &err));
  g_assert_true (g_file_set_contents (path, data, (gssize) (len - 1000), &err));
  g_free (data);
  assert_load_fails ("clip-vit-l14", path, NULL);

  struct {
    Damage damage;
    const char *tensor;
  } cases[] = {
    { DAMAGE_DROP, "vision_model.encoder.layers.2.self_attn.k_proj.bias" },
    { DAMAGE_DROP, "vision_model.encoder.layers.1.mlp.fc1.weight" },
    { DAMAGE_DROP, "vision_model.post_layernorm.weight" },
    { DAMAGE_DROP, "vision_model.embeddings.position_embedding.weight" },
    { DAMAGE_DROP, "vision_model.embeddings.patch_embedding.weight" },
    { DAMAGE_RESHAPE, "vision_model.pre_layrnorm.bias" },
    { DAMAGE_RESHAPE, "vision_model.encoder.layers.0.mlp.fc2.weight" },
    { DAMAGE_RESHAPE, "vision_model.embeddings.position_embedding.weight" },
    { DAMAGE_NAN, "vision_model.encoder.layers.1.self_attn.v_proj.weight" },
    { DAMAGE_NAN, "vision_model.embeddings.class_embedding" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      write_damaged (src, path, cases[i].damage, cases[i].tensor);
      /* the message names the tensor as the file has it, with or without the prefix */
      assert_load_fails ("clip-vit-l14", path, cases[i].tensor + strlen ("vision_model."));
    }
  g_autofree char *resnet = golden_path ("resnet_tiny.safetensors");
  assert_load_fails ("clip-vit-l14", resnet, "patch_embedding");
  g_remove (path);
  g_rmdir (dir);
}

/* The full-size check (not in CI): a random ViT-L/14 vision tower written
 * by `make-backbone-golden.py --full DIR`. */
static void
test_full_size (void)
{
  const char *dir = g_getenv ("DCR_GOLDEN_FULL_DIR");
  g_autofree char *path = dir ? g_strdup_printf ("%s/clip-vit-l14/model.safetensors", dir) : NULL;
  if (!path || !g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("set DCR_GOLDEN_FULL_DIR (make-backbone-golden.py --full DIR) for the full-size ViT-L/14");
      return;
    }
  DcrDtype dtypes[] = { DCR_F32, DCR_F16 };
  for (gsize d = 0; d < G_N_ELEMENTS (dtypes); d++)
    {
      g_autoptr (DcrBackbone) bb = load_path (path, dtypes[d]);
      g_assert_cmpuint (dcr_backbone_dim (bb), ==, 25 * 1024);
      g_assert_true (g_str_has_prefix (dcr_backbone_id (bb), "clip-vit-l14@"));
      g_autofree float *got = run_on_golden_input (bb, 22, 1);
      g_autofree char *ref = g_strdup_printf ("%s/clip-vit-l14_ref.safetensors", dir);
      g_autofree float *want = golden_features (ref, 1, 25 * 1024);
      assert_scaled_close (dtypes[d] == DCR_F32 ? "full ViT-L/14 f32" : "full ViT-L/14 f16", got, want, 25 * 1024,
                           dtypes[d] == DCR_F32 ? 1e-4 : 0.02);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/backbone/clip/golden-f32", test_golden_f32);
  g_test_add_func ("/backbone/clip/golden-f16", test_golden_f16);
  g_test_add_func ("/backbone/clip/config-json", test_config_json);
  g_test_add_func ("/backbone/clip/image-path", test_image_path);
  g_test_add_func ("/backbone/clip/bad-weights", test_bad_weights);
  g_test_add_func ("/backbone/clip/full-size", test_full_size);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
