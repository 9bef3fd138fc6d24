/* test-safetensors.c — the weight-file reader and writer: round trips of
 * every dtype, conversion to float, and a refusal with a clear message for
 * each way a header can lie (plus every truncation and random damage). */
#include "dcr-safetensors.h"

#include <math.h>
#include <string.h>
#include <glib/gstdio.h>

static char *tmpdir;

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmpdir, name, NULL);
}

/* Builds a file from a header (spaces appended to keep it 8-aligned) and
 * `data_len` data bytes (0, 1, 2, …). */
static GBytes *
make_file (const char *json, gsize data_len)
{
  gsize jlen = strlen (json);
  GByteArray *a = g_byte_array_new ();
  guint64 hlen = GUINT64_TO_LE ((guint64) jlen);
  g_byte_array_append (a, (const guint8 *) &hlen, 8);
  g_byte_array_append (a, (const guint8 *) json, (guint) jlen);
  for (gsize i = 0; i < data_len; i++)
    {
      guint8 b = (guint8) i;
      g_byte_array_append (a, &b, 1);
    }
  return g_byte_array_free_to_bytes (a);
}

static void
expect_error (GBytes *bytes, int code, const char *const *needles)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DcrSafetensors) st = dcr_safetensors_new_from_bytes (bytes, "bad.safetensors", &error);
  g_assert_null (st);
  g_assert_error (error, DCR_SAFETENSORS_ERROR, code);
  g_assert_true (g_str_has_prefix (error->message, "bad.safetensors: "));
  for (int i = 0; needles && needles[i]; i++)
    if (!strstr (error->message, needles[i]))
      g_error ("message \"%s\" does not mention \"%s\"", error->message, needles[i]);
}

static void
expect_corrupt (const char *json, gsize data_len, const char *needle1, const char *needle2)
{
  g_autoptr(GBytes) b = make_file (json, data_len);
  const char *needles[] = { needle1, needle2, NULL };
  expect_error (b, DCR_SAFETENSORS_ERROR_CORRUPT, needles);
}

static guint16
bf16_of (float f)
{
  guint32 u;
  memcpy (&u, &f, 4);
  return (guint16) (u >> 16);
}

static void
test_round_trip (void)
{
  const float f32[6] = { 1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-30f };
  /* 1, -2.5, 65504 (max), smallest subnormal (2^-24), largest subnormal, -0 */
  const guint16 f16[6] = { 0x3c00, 0xc100, 0x7bff, 0x0001, 0x03ff, 0x8000 };
  const float f16_want[6] = { 1.0f, -2.5f, 65504.0f, 5.9604644775390625e-8f, 6.097555160522461e-5f, -0.0f };
  const float bf_src[4] = { 1.0f, -3.5f, 1.5e20f, 0.15625f };
  guint16 bf16[4];
  for (int i = 0; i < 4; i++)
    bf16[i] = bf16_of (bf_src[i]);
  const double f64[3] = { 0.5, -1e-3, 12345.0 };
  const gint64 i64[2] = { -7, G_GINT64_CONSTANT (1) << 40 };
  const guint8 u8[5] = { 0, 1, 2, 254, 255 };
  const float scalar = 42.0f;

  const gint64 s23[2] = { 2, 3 }, s6[1] = { 6 }, s22[2] = { 2, 2 }, s3[1] = { 3 }, s2[1] = { 2 }, s5[1] = { 5 };
  const gint64 s03[2] = { 0, 3 };
  DcrStWriteTensor t[] = {
    { "layer.weight", DCR_ST_F32, 2, s23, f32 },
    { "half", DCR_ST_F16, 1, s6, f16 },
    { "brain", DCR_ST_BF16, 2, s22, bf16 },
    { "double", DCR_ST_F64, 1, s3, f64 },
    { "steps", DCR_ST_I64, 1, s2, i64 },
    { "bytes", DCR_ST_U8, 1, s5, u8 },
    { "scalar", DCR_ST_F32, 0, NULL, &scalar },
    { "empty", DCR_ST_F32, 2, s03, NULL },
  };
  const char *meta[] = { "format", "dcr-test", "author", "tests", "ünïcode", "✓", NULL };
  g_autofree char *path = tmp_path ("rt.safetensors");
  g_autoptr(GError) error = NULL;
  g_assert_true (dcr_safetensors_write (path, t, G_N_ELEMENTS (t), meta, &error));
  g_assert_no_error (error);

  g_autoptr(DcrSafetensors) st = dcr_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dcr_safetensors_n_tensors (st), ==, G_N_ELEMENTS (t));
  /* In file order, which is the order written. */
  for (guint i = 0; i < G_N_ELEMENTS (t); i++)
    {
      const DcrStTensor *x = dcr_safetensors_tensor_at (st, i);
      if (t[i].ndim == 2 && t[i].shape[0] == 0)
        {
          /* The empty tensor sits at the end with zero bytes; its order among
           * zero-length neighbours is not defined. */
          g_assert_cmpuint (x->nbytes, ==, 0);
          continue;
        }
      g_assert_cmpstr (x->name, ==, t[i].name);
      g_assert_cmpint (x->dtype, ==, t[i].dtype);
      g_assert_cmpint (x->ndim, ==, t[i].ndim);
      guint64 n = 1;
      for (int d = 0; d < x->ndim; d++)
        {
          g_assert_cmpint (x->shape[d], ==, t[i].shape[d]);
          n *= (guint64) x->shape[d];
        }
      g_assert_cmpuint (x->numel, ==, n);
      g_assert_cmpuint (x->nbytes, ==, n * dcr_st_dtype_size (t[i].dtype));
      g_assert_cmpmem (x->data, x->nbytes, t[i].data, x->nbytes);
    }
  const DcrStTensor *e = dcr_safetensors_lookup (st, "empty");
  g_assert_nonnull (e);
  g_assert_cmpuint (e->numel, ==, 0);
  g_assert_null (dcr_safetensors_lookup (st, "nope"));

  g_assert_cmpstr (dcr_safetensors_metadata (st, "format"), ==, "dcr-test");
  g_assert_cmpstr (dcr_safetensors_metadata (st, "ünïcode"), ==, "✓");
  g_assert_null (dcr_safetensors_metadata (st, "missing"));
  const char *const *keys = dcr_safetensors_metadata_keys (st);
  g_assert_cmpuint (g_strv_length ((char **) keys), ==, 3);
  g_assert_cmpstr (keys[0], ==, "author");
  g_assert_cmpstr (keys[1], ==, "format");

  float *out = NULL;
  const gint64 want23[2] = { 2, 3 }, any3[2] = { -1, 3 }, wrong[2] = { 3, 2 };
  g_assert_true (dcr_safetensors_get_f32 (st, "layer.weight", want23, 2, &out, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (out, sizeof f32, f32, sizeof f32);
  g_clear_pointer (&out, g_free);
  g_assert_true (dcr_safetensors_get_f32 (st, "layer.weight", any3, 2, &out, &error));
  g_clear_pointer (&out, g_free);

  g_assert_true (dcr_safetensors_get_f32 (st, "half", NULL, 0, &out, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 6; i++)
    {
      g_assert_cmpfloat (out[i], ==, f16_want[i]);
      g_assert_cmpint (signbit (out[i]), ==, signbit (f16_want[i]));
    }
  g_clear_pointer (&out, g_free);

  g_assert_true (dcr_safetensors_get_f32 (st, "brain", NULL, 0, &out, &error));
  g_assert_cmpfloat (out[0], ==, 1.0f);
  g_assert_cmpfloat (out[1], ==, -3.5f);
  g_assert_cmpfloat (out[3], ==, 0.15625f);
  g_assert_cmpfloat_with_epsilon (out[2], 1.5e20, 1.5e20 / 128);
  g_clear_pointer (&out, g_free);

  g_assert_true (dcr_safetensors_get_f32 (st, "double", NULL, 0, &out, &error));
  g_assert_cmpfloat (out[0], ==, 0.5f);
  g_assert_cmpfloat (out[1], ==, -1e-3f);
  g_assert_cmpfloat (out[2], ==, 12345.0f);
  g_clear_pointer (&out, g_free);

  g_assert_true (dcr_safetensors_get_f32 (st, "scalar", NULL, 0, &out, &error));
  g_assert_cmpfloat (out[0], ==, 42.0f);
  g_clear_pointer (&out, g_free);
  g_assert_true (dcr_safetensors_get_f32 (st, "empty", NULL, 0, &out, &error));
  g_clear_pointer (&out, g_free);

  g_assert_false (dcr_safetensors_get_f32 (st, "layer.weight", wrong, 2, &out, &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_SHAPE);
  g_assert_nonnull (strstr (error->message, "'layer.weight' has shape [2, 3], the model needs [3, 2]"));
  g_assert_null (out);
  g_clear_error (&error);
  g_assert_false (dcr_safetensors_get_f32 (st, "layer.weight", want23, 1, &out, &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_SHAPE);
  g_clear_error (&error);
  g_assert_false (dcr_safetensors_get_f32 (st, "steps", NULL, 0, &out, &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_DTYPE);
  g_assert_nonnull (strstr (error->message, "'steps' is I64"));
  g_clear_error (&error);
  g_assert_false (dcr_safetensors_get_f32 (st, "conv9.weight", NULL, 0, &out, &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "rt.safetensors: no tensor 'conv9.weight'"));
  g_clear_error (&error);
  g_assert_true (dcr_safetensors_check_finite (st, NULL, &error));
  g_assert_no_error (error);
}

static void
test_dtype_names (void)
{
  const char *names[] = { "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
                          "I32", "U32", "F32", "F64", "I64", "U64" };
  const gsize sizes[] = { 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8 };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      DcrStDtype d;
      g_assert_true (dcr_st_dtype_from_name (names[i], &d));
      g_assert_cmpstr (dcr_st_dtype_name (d), ==, names[i]);
      g_assert_cmpuint (dcr_st_dtype_size (d), ==, sizes[i]);
    }
  DcrStDtype d;
  g_assert_false (dcr_st_dtype_from_name ("f32", &d));
  g_assert_false (dcr_st_dtype_from_name ("F128", &d));
}

static void
test_writer_atomic (void)
{
  g_autofree char *dir = tmp_path ("atomic");
  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  g_autofree char *path = g_build_filename (dir, "head.safetensors", NULL);
  const float a[2] = { 1, 2 }, b[3] = { 3, 4, 5 };
  const gint64 s2[1] = { 2 }, s3[1] = { 3 };
  DcrStWriteTensor ta = { "w", DCR_ST_F32, 1, s2, a }, tb = { "w", DCR_ST_F32, 1, s3, b };
  g_autoptr(GError) error = NULL;
  g_assert_true (dcr_safetensors_write (path, &ta, 1, NULL, &error));
  g_assert_true (dcr_safetensors_write (path, &tb, 1, NULL, &error));
  g_assert_no_error (error);
  g_autoptr(DcrSafetensors) st = dcr_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (dcr_safetensors_lookup (st, "w")->shape[0], ==, 3);
  g_assert_null (dcr_safetensors_metadata_keys (st)[0]);

  /* Refused arguments leave the old file alone and no temporary behind. */
  DcrStWriteTensor dup[2] = { ta, ta };
  g_assert_false (dcr_safetensors_write (path, dup, 2, NULL, &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "'w' given twice"));
  g_clear_error (&error);
  DcrStWriteTensor reserved = { "__metadata__", DCR_ST_F32, 1, s2, a };
  g_assert_false (dcr_safetensors_write (path, &reserved, 1, NULL, &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_INVALID);
  g_clear_error (&error);
  const char *odd[] = { "key", NULL };
  g_assert_false (dcr_safetensors_write (path, &ta, 1, odd, &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_INVALID);
  g_clear_error (&error);
  DcrStWriteTensor nodata = { "x", DCR_ST_F32, 1, s3, NULL };
  g_assert_false (dcr_safetensors_write (path, &nodata, 1, NULL, &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_INVALID);
  g_clear_error (&error);

  /* Unwritable place: an IO error, nothing created. */
  g_autofree char *nodir = g_build_filename (dir, "missing", "x.safetensors", NULL);
  g_assert_false (dcr_safetensors_write (nodir, &ta, 1, NULL, &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_IO);
  g_clear_error (&error);

  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;
  while (g_dir_read_name (d))
    n++;
  g_assert_cmpuint (n, ==, 1);
  g_autoptr(DcrSafetensors) again = dcr_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (dcr_safetensors_lookup (again, "w")->shape[0], ==, 3);
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_open_errors (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = tmp_path ("does-not-exist.safetensors");
  g_assert_null (dcr_safetensors_open (missing, &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "does-not-exist.safetensors"));
  g_clear_error (&error);

  g_autofree char *empty = tmp_path ("empty.safetensors");
  g_assert_true (g_file_set_contents (empty, "", 0, NULL));
  g_assert_null (dcr_safetensors_open (empty, &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "empty.safetensors: the file is empty"));
  g_clear_error (&error);
  g_unlink (empty);
}

static void
test_malformed_header (void)
{
  /* Lengths and framing. */
  {
    g_autoptr(GBytes) b = g_bytes_new_static ("\x10\0\0", 3);
    const char *n[] = { "ends after 3 bytes", "truncated", NULL };
    expect_error (b, DCR_SAFETENSORS_ERROR_CORRUPT, n);
  }
  {
    guint8 raw[16] = { 0x00, 0x01, 0, 0, 0, 0, 0, 0, '{', '}' }; /* claims 256 bytes */
    g_autoptr(GBytes) b = g_bytes_new (raw, sizeof raw);
    const char *n[] = { "inside its 256-byte header", NULL };
    expect_error (b, DCR_SAFETENSORS_ERROR_CORRUPT, n);
  }
  {
    guint8 raw[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}' };
    g_autoptr(GBytes) b = g_bytes_new (raw, sizeof raw);
    const char *n[] = { "header length 18446744073709551615", "limit", NULL };
    expect_error (b, DCR_SAFETENSORS_ERROR_CORRUPT, n);
  }
  {
    guint8 raw[16] = { 0x00, 0xe1, 0xf5, 0x05 + 1, 0, 0, 0, 0, '{', '}' }; /* ~117 MB */
    g_autoptr(GBytes) b = g_bytes_new (raw, sizeof raw);
    const char *n[] = { "beyond the format's limit", NULL };
    expect_error (b, DCR_SAFETENSORS_ERROR_CORRUPT, n);
  }
  {
    guint8 raw[12] = { 4, 0, 0, 0, 0, 0, 0, 0, 0xc3, 0x28, 0xa0, 0xa1 };
    g_autoptr(GBytes) b = g_bytes_new (raw, sizeof raw);
    const char *n[] = { "not a JSON object", NULL };
    expect_error (b, DCR_SAFETENSORS_ERROR_CORRUPT, n);
  }
  {
    guint8 raw[12] = { 4, 0, 0, 0, 0, 0, 0, 0, '{', 0xc3, 0x28, '}' };
    g_autoptr(GBytes) b = g_bytes_new (raw, sizeof raw);
    const char *n[] = { "not UTF-8", NULL };
    expect_error (b, DCR_SAFETENSORS_ERROR_CORRUPT, n);
  }

  /* The JSON itself. */
  expect_corrupt ("{", 0, "not a JSON object", NULL);
  expect_corrupt ("{\"a\"", 0, "not valid JSON", NULL);
  expect_corrupt ("{\"a\": }", 0, "not valid JSON", NULL);
  expect_corrupt ("[1, 2]", 0, "not a JSON object", NULL);
  expect_corrupt ("\"text\"", 0, "not a JSON object", NULL);
  expect_corrupt ("{\"__metadata__\": [1]}", 0, "__metadata__ is not a JSON object", NULL);
  expect_corrupt ("{\"__metadata__\": {\"k\": 3}}", 0, "__metadata__ 'k' is not a string", NULL);
  expect_corrupt ("{\"w\": 5}", 0, "tensor 'w'", "not a JSON object");
  expect_corrupt ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, "tensor 'w'", "needs dtype, shape and data_offsets");
  expect_corrupt ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"x\": 1}}", 4,
                  "tensor 'w'", "unexpected fields");

  /* dtype, shape, offsets. */
  expect_corrupt ("{\"w\": {\"dtype\": \"F7\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w'", "unknown dtype \"F7\"");
  expect_corrupt ("{\"w\": {\"dtype\": 32, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w'", "dtype is not a string");
  expect_corrupt ("{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w'", "shape element 0 is not a non-negative integer");
  expect_corrupt ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w'", "shape element 0");
  expect_corrupt ("{\"w\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w'", "shape is not an array");
  expect_corrupt ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w'", "9 dimensions");
  expect_corrupt ("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w'", "impossibly large");
  expect_corrupt ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4,
                  "tensor 'w'", "not a [begin, end] pair");
  expect_corrupt ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, \"4\"]}}", 4,
                  "tensor 'w'", "not non-negative integers");
  expect_corrupt ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4,
                  "tensor 'w'", "not non-negative integers");
  expect_corrupt ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 4,
                  "tensor 'w'", "end before they begin");
  expect_corrupt ("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4,
                  "tensor 'w'", "run past the end of the data (4 bytes; truncated file?)");
  expect_corrupt ("{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 20]}}", 24,
                  "tensor 'w'", "hold 20 bytes, but F32 [2, 3] needs 24");
  expect_corrupt ("{\"w\": {\"dtype\": \"F16\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 16,
                  "tensor 'w'", "F16 [4] needs 8");

  /* Layout of the data section. */
  expect_corrupt ("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                  " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12,
                  "tensors 'a' and 'b' overlap", NULL);
  expect_corrupt ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                  " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}", 12,
                  "bytes 4–8 before tensor 'b' belong to no tensor", NULL);
  expect_corrupt ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 9,
                  "5 bytes after the last tensor", NULL);
  expect_corrupt ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                  " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
                  "names 'a' twice", NULL);
  expect_corrupt ("{\"a\": {\"dtype\": \"F32\", \"dtype\": \"F16\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                  "names 'dtype' twice", NULL);

  /* The same well-formed header is accepted (the cases above fail for their stated reason). */
  g_autoptr(GBytes) ok = make_file ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                                    " \"__metadata__\": {\"k\": \"v\"}}", 4);
  g_autoptr(GError) error = NULL;
  g_autoptr(DcrSafetensors) st = dcr_safetensors_new_from_bytes (ok, "ok.safetensors", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dcr_safetensors_metadata (st, "k"), ==, "v");
}

static void
test_non_finite (void)
{
  float f[5] = { 0, 1, 2, NAN, 4 };
  guint16 h[3] = { 0x3c00, 0x7c00 /* +inf */, 0 };
  guint16 bf[2] = { 0x3f80, 0xffc1 /* NaN */ };
  double d[2] = { 1, -INFINITY };
  double big[1] = { 1e300 };
  float good[2] = { -1e30f, 1e30f };
  const gint64 s5[1] = { 5 }, s3[1] = { 3 }, s2[1] = { 2 }, s1[1] = { 1 };
  DcrStWriteTensor t[] = {
    { "good", DCR_ST_F32, 1, s2, good },
    { "f", DCR_ST_F32, 1, s5, f },
    { "h", DCR_ST_F16, 1, s3, h },
    { "bf", DCR_ST_BF16, 1, s2, bf },
    { "d", DCR_ST_F64, 1, s2, d },
    { "big", DCR_ST_F64, 1, s1, big },
  };
  g_autofree char *path = tmp_path ("nan.safetensors");
  g_autoptr(GError) error = NULL;
  g_assert_true (dcr_safetensors_write (path, t, G_N_ELEMENTS (t), NULL, &error));
  g_autoptr(DcrSafetensors) st = dcr_safetensors_open (path, &error);
  g_assert_no_error (error);

  g_assert_true (dcr_safetensors_check_finite (st, "good", &error));
  g_assert_no_error (error);
  struct { const char *name, *where; } cases[] = {
    { "f", "element 3" }, { "h", "element 1" }, { "bf", "element 1" }, { "d", "element 1" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *needle = g_strdup_printf ("tensor '%s'", cases[i].name);
      g_assert_false (dcr_safetensors_check_finite (st, cases[i].name, &error));
      g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_NOT_FINITE);
      g_assert_nonnull (strstr (error->message, needle));
      g_assert_nonnull (strstr (error->message, cases[i].where));
      g_assert_true (g_str_has_prefix (error->message, "nan.safetensors") || strstr (error->message, "/nan.safetensors: "));
      g_clear_error (&error);
      float *out = NULL;
      g_assert_false (dcr_safetensors_get_f32 (st, cases[i].name, NULL, 0, &out, &error));
      g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_NOT_FINITE);
      g_assert_null (out);
      g_clear_error (&error);
    }
  /* Whole file: the first damaged tensor in file order. */
  g_assert_false (dcr_safetensors_check_finite (st, NULL, &error));
  g_assert_nonnull (strstr (error->message, "tensor 'f'"));
  g_clear_error (&error);
  /* A double that overflows float is refused on conversion. */
  float *out = NULL;
  g_assert_false (dcr_safetensors_get_f32 (st, "big", NULL, 0, &out, &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_NOT_FINITE);
  g_assert_nonnull (strstr (error->message, "'big'"));
  g_clear_error (&error);
  g_assert_false (dcr_safetensors_check_finite (st, "nope", &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_NOT_FOUND);
}

static GBytes *
small_valid_file (void)
{
  const float a[3] = { 1, 2, 3 };
  const guint16 b[4] = { 0x3c00, 0x4000, 0x4200, 0x4400 };
  const gint64 s3[1] = { 3 }, s22[2] = { 2, 2 };
  DcrStWriteTensor t[] = { { "a", DCR_ST_F32, 1, s3, a }, { "b.weight", DCR_ST_F16, 2, s22, b } };
  const char *meta[] = { "format", "x", NULL };
  g_autofree char *path = tmp_path ("small.safetensors");
  g_assert_true (dcr_safetensors_write (path, t, 2, meta, NULL));
  char *data;
  gsize len;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  g_unlink (path);
  return g_bytes_new_take (data, len);
}

static void
test_truncation (void)
{
  g_autoptr(GBytes) whole = small_valid_file ();
  gsize len;
  const guint8 *p = g_bytes_get_data (whole, &len);
  g_autoptr(GError) error = NULL;
  g_autoptr(DcrSafetensors) st = dcr_safetensors_new_from_bytes (whole, "small", &error);
  g_assert_no_error (error);

  /* Every shorter prefix is refused with a message, never read past. */
  for (gsize cut = 0; cut < len; cut++)
    {
      g_autoptr(GBytes) b = g_bytes_new (p, cut);
      g_autoptr(DcrSafetensors) bad = dcr_safetensors_new_from_bytes (b, "cut.safetensors", &error);
      if (bad)
        g_error ("a file cut to %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes was accepted", cut, len);
      g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT);
      g_assert_true (g_str_has_prefix (error->message, "cut.safetensors: "));
      g_clear_error (&error);
    }
  /* And a longer one (trailing garbage). */
  g_autofree guint8 *longer = g_malloc (len + 1);
  memcpy (longer, p, len);
  longer[len] = 0;
  g_autoptr(GBytes) lb = g_bytes_new (longer, len + 1);
  g_assert_null (dcr_safetensors_new_from_bytes (lb, "long", &error));
  g_assert_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT);
}

/* Random damage: whatever happens, an answer (file or error), no crash, no
 * over-read (valgrind/ASan watch this one). */
static void
test_mutations (void)
{
  g_autoptr(GBytes) whole = small_valid_file ();
  gsize len;
  const guint8 *p = g_bytes_get_data (whole, &len);
  GRand *rand = g_rand_new_with_seed (1234);
  guint accepted = 0;
  for (int iter = 0; iter < 3000; iter++)
    {
      guint8 *m = g_memdup2 (p, len);
      int flips = g_rand_int_range (rand, 1, 4);
      for (int f = 0; f < flips; f++)
        {
          gsize at = (gsize) g_rand_int_range (rand, 0, (gint32) len);
          /* Aim at the header most of the time: that is where the parsing is. */
          if (g_rand_int_range (rand, 0, 4) != 0)
            at = (gsize) g_rand_int_range (rand, 0, (gint32) MIN (len, 8 + 200));
          m[at] = g_rand_int_range (rand, 0, 2) ? (guint8) g_rand_int_range (rand, 0, 256)
                                                : (guint8) "0123456789[]{},:\"-"[g_rand_int_range (rand, 0, 18)];
        }
      g_autoptr(GBytes) b = g_bytes_new_take (m, len);
      g_autoptr(GError) error = NULL;
      g_autoptr(DcrSafetensors) st = dcr_safetensors_new_from_bytes (b, "mut", &error);
      g_assert_true ((st != NULL) != (error != NULL));
      if (st)
        {
          accepted++;
          /* Whatever was accepted is consistent: every tensor lies inside the bytes. */
          gsize blen;
          const guint8 *base = g_bytes_get_data (b, &blen);
          for (guint i = 0; i < dcr_safetensors_n_tensors (st); i++)
            {
              const DcrStTensor *t = dcr_safetensors_tensor_at (st, i);
              g_assert_true (t->data >= base && t->data + t->nbytes <= base + blen);
              g_autoptr(GError) e2 = NULL;
              float *out = NULL;
              if (dcr_safetensors_get_f32 (st, t->name, NULL, 0, &out, &e2))
                g_free (out);
            }
        }
    }
  g_rand_free (rand);
  g_test_message ("%u of 3000 damaged files were still valid (data-only damage)", accepted);
}

/* The default backbone's weights, as shipped. The path is found from this
 * source file's name as the compiler saw it (relative to the build root). */
static char *
source_file (const char *rel)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *self = g_path_is_absolute (__FILE__) ? g_strdup (__FILE__) : NULL;
  if (!self && exe)
    {
      g_autofree char *exedir = g_path_get_dirname (exe);
      g_autofree char *root = g_path_get_dirname (exedir);
      self = g_build_filename (root, __FILE__, NULL);
    }
  if (!self)
    return NULL;
  g_autofree char *testsdir = g_path_get_dirname (self);
  return g_build_filename (testsdir, "..", rel, NULL);
}

static void
test_shipped_backbone (void)
{
  g_autofree char *path = source_file ("data/models/mobilenet_v2_b10.safetensors");
  g_assert_nonnull (path);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    g_error ("%s is missing (source tree layout changed?)", path);
  g_autoptr(GError) error = NULL;
  g_autoptr(DcrSafetensors) st = dcr_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dcr_safetensors_n_tensors (st), ==, 165);
  g_assert_cmpstr (dcr_safetensors_metadata (st, "format"), ==, "dcr-mobilenet-v2-b10");
  g_assert_cmpstr (dcr_safetensors_metadata (st, "bn_eps"), ==, "0.001");
  g_assert_true (dcr_safetensors_check_finite (st, NULL, &error));
  float *w = NULL;
  const gint64 conv1[4] = { 32, 3, 3, 3 }, dw[4] = { 384, 3, 3, 1 }, bn[1] = { 96 };
  g_assert_true (dcr_safetensors_get_f32 (st, "Conv1.weight", conv1, 4, &w, &error));
  g_clear_pointer (&w, g_free);
  g_assert_true (dcr_safetensors_get_f32 (st, "block_10_depthwise.weight", dw, 4, &w, &error));
  g_clear_pointer (&w, g_free);
  g_assert_true (dcr_safetensors_get_f32 (st, "block_10_project_BN.running_var", bn, 1, &w, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 96; i++)
    g_assert_cmpfloat (w[i], >, 0.0f);
  g_free (w);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("dcr-test-st-XXXXXX", NULL);
  g_assert_nonnull (tmpdir);
  g_test_add_func ("/safetensors/round-trip", test_round_trip);
  g_test_add_func ("/safetensors/dtype-names", test_dtype_names);
  g_test_add_func ("/safetensors/writer-atomic", test_writer_atomic);
  g_test_add_func ("/safetensors/open-errors", test_open_errors);
  g_test_add_func ("/safetensors/malformed-header", test_malformed_header);
  g_test_add_func ("/safetensors/non-finite", test_non_finite);
  g_test_add_func ("/safetensors/truncation", test_truncation);
  g_test_add_func ("/safetensors/mutations", test_mutations);
  g_test_add_func ("/safetensors/shipped-backbone", test_shipped_backbone);
  int rc = g_test_run ();
  g_autofree char *rt = tmp_path ("rt.safetensors");
  g_autofree char *nan = tmp_path ("nan.safetensors");
  g_unlink (rt);
  g_unlink (nan);
  g_rmdir (tmpdir);
  g_free (tmpdir);
  return rc;
}
