/* test-image.c — PNG/JPEG decoding: every PNG colour type and depth,
 * baseline/progressive/gray/CMYK/YCCK JPEG, EXIF orientations 1–8 and tags,
 * and the refusals: truncation at every offset, wrong magic, oversize
 * headers, corrupt data, random damage. Test images are written here with
 * libpng/libjpeg, so the expected pixels are known exactly. */
#include "dcr-image.h"

#include <png.h>
#include <stdio.h>
#include <jpeglib.h>
#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

static char *tmpdir;

/* ---- writers ---- */

typedef struct {
  int color_type;
  int depth;
  gboolean interlace;
  gboolean trns;
} PngSpec;

static void
png_write_cb (png_structp png, png_bytep data, size_t n)
{
  g_byte_array_append (png_get_io_ptr (png), data, (guint) n);
}

static void
png_flush_cb (png_structp png)
{
}

static guint8
pal_r (int i)
{
  return (guint8) (i * 50);
}

static guint8
pal_g (int i)
{
  return (guint8) (255 - i * 30);
}

static guint8
pal_b (int i)
{
  return (guint8) (i * 7 + 3);
}

/* A w×h PNG of the given kind; `want` receives the RGB the decoder must give. */
static GBytes *
make_png (guint w, guint h, const PngSpec *s, const guint8 *exif, guint exif_len, guint8 *want)
{
  GByteArray *out = g_byte_array_new ();
  png_structp png = png_create_write_struct (PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct (png);
  g_assert_nonnull (info);
  png_set_write_fn (png, out, png_write_cb, png_flush_cb);
  png_set_IHDR (png, info, w, h, s->depth, s->color_type,
                s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                PNG_FILTER_TYPE_DEFAULT);
  int ncolors = s->color_type == PNG_COLOR_TYPE_PALETTE ? MIN (1 << s->depth, 9) : 0;
  png_color pal[16];
  guint8 alpha[16];
  for (int i = 0; i < ncolors; i++)
    {
      pal[i] = (png_color) { pal_r (i), pal_g (i), pal_b (i) };
      alpha[i] = (guint8) (i * 40);
    }
  if (ncolors)
    png_set_PLTE (png, info, pal, ncolors);
  if (s->trns)
    {
      png_color_16 tc = { 0, 10, 20, 30, 5 };
      png_set_tRNS (png, info, ncolors ? alpha : NULL, ncolors, ncolors ? NULL : &tc);
    }
  if (exif)
    png_set_eXIf_1 (png, info, exif_len, (png_bytep) exif);
  png_text text = { PNG_TEXT_COMPRESSION_NONE, (char *) "Comment", (char *) "dcr test image", 14 };
  png_set_text (png, info, &text, 1);
  png_write_info (png, info);

  int channels = png_get_channels (png, info);
  gsize rowbytes = png_get_rowbytes (png, info);
  guint8 *img = g_malloc0 (rowbytes * h);
  guint maxv = (1u << s->depth) - 1;
  for (guint y = 0; y < h; y++)
    for (guint x = 0; x < w; x++)
      {
        guint8 *px = want + (y * w + x) * 3;
        guint8 *row = img + y * rowbytes;
        guint samples[4];
        if (s->color_type == PNG_COLOR_TYPE_PALETTE)
          {
            int idx = (int) ((x + 2 * y) % (guint) ncolors);
            samples[0] = (guint) idx;
            px[0] = pal_r (idx), px[1] = pal_g (idx), px[2] = pal_b (idx);
          }
        else
          {
            for (int c = 0; c < channels; c++)
              {
                guint v8 = (x * 37 + y * 11 + (guint) c * 71) & 255;
                if (c == channels - 1 && (s->color_type & PNG_COLOR_MASK_ALPHA))
                  v8 = (x * 13 + y) & 255; /* alpha, zero in places */
                guint v = s->depth == 16 ? v8 * 257 : s->depth < 8 ? v8 & maxv : v8;
                samples[c] = v;
                guint8 e = (guint8) (s->depth < 8 ? v * (255 / maxv) : v8);
                if (s->color_type == PNG_COLOR_TYPE_GRAY || s->color_type == PNG_COLOR_TYPE_GRAY_ALPHA)
                  {
                    if (c == 0)
                      px[0] = px[1] = px[2] = e;
                  }
                else if (c < 3)
                  px[c] = e;
              }
          }
        int nsamp = s->color_type == PNG_COLOR_TYPE_PALETTE ? 1 : channels;
        for (int c = 0; c < nsamp; c++)
          {
            if (s->depth == 16)
              {
                row[(x * nsamp + c) * 2] = (guint8) (samples[c] >> 8);
                row[(x * nsamp + c) * 2 + 1] = (guint8) samples[c];
              }
            else if (s->depth == 8)
              row[x * nsamp + c] = (guint8) samples[c];
            else
              {
                guint bit = x * (guint) s->depth; /* one sample per pixel below 8 bits */
                row[bit / 8] |= (guint8) (samples[c] << (8 - s->depth - bit % 8));
              }
          }
      }
  guint8 **rows = g_new (guint8 *, h);
  for (guint y = 0; y < h; y++)
    rows[y] = img + y * rowbytes;
  png_write_image (png, rows);
  png_write_end (png, info);
  png_destroy_write_struct (&png, &info);
  g_free (rows);
  g_free (img);
  return g_byte_array_free_to_bytes (out);
}

/* A JPEG from packed pixels with `comps` components in `in_cs`. jpeg_cs:
 * the colour space to store (JCS_UNKNOWN: libjpeg's default for in_cs). */
static GBytes *
make_jpeg (guint w, guint h, const guint8 *pixels, J_COLOR_SPACE in_cs, int comps, J_COLOR_SPACE jpeg_cs,
           gboolean progressive, const guint8 *app1, guint app1_len, gboolean subsampled)
{
  struct jpeg_compress_struct ci;
  struct jpeg_error_mgr jerr;
  ci.err = jpeg_std_error (&jerr);
  jpeg_create_compress (&ci);
  unsigned char *buf = NULL;
  unsigned long size = 0;
  jpeg_mem_dest (&ci, &buf, &size);
  ci.image_width = w;
  ci.image_height = h;
  ci.input_components = comps;
  ci.in_color_space = in_cs;
  jpeg_set_defaults (&ci);
  if (jpeg_cs != JCS_UNKNOWN)
    jpeg_set_colorspace (&ci, jpeg_cs);
  jpeg_set_quality (&ci, 100, TRUE);
  /* 4:4:4, so solid blocks decode to their colour up to the edges (libjpeg's
   * chroma upsampling would blend neighbours); test_jpeg_subsampled covers 4:2:0. */
  for (int c = 0; c < ci.num_components && !subsampled; c++)
    ci.comp_info[c].h_samp_factor = ci.comp_info[c].v_samp_factor = 1;
  if (progressive)
    jpeg_simple_progression (&ci);
  jpeg_start_compress (&ci, TRUE);
  if (app1)
    jpeg_write_marker (&ci, JPEG_APP0 + 1, app1, app1_len);
  while (ci.next_scanline < h)
    {
      JSAMPROW r = (JSAMPROW) pixels + (gsize) ci.next_scanline * w * (guint) comps;
      jpeg_write_scanlines (&ci, &r, 1);
    }
  jpeg_finish_compress (&ci);
  jpeg_destroy_compress (&ci);
  GBytes *b = g_bytes_new (buf, size);
  free (buf);
  return b;
}

/* 16×16 solid blocks, so chroma subsampling cannot blur them. */
static const guint8 block_rgb[6][3] = {
  { 220, 20, 30 }, { 30, 200, 40 }, { 20, 40, 210 }, { 230, 220, 40 }, { 40, 210, 220 }, { 200, 40, 190 },
};

static guint8 *
blocks_image (guint bw, guint bh)
{
  guint w = bw * 16, h = bh * 16;
  guint8 *p = g_malloc (w * h * 3);
  for (guint y = 0; y < h; y++)
    for (guint x = 0; x < w; x++)
      memcpy (p + (y * w + x) * 3, block_rgb[((y / 16) * bw + x / 16) % 6], 3);
  return p;
}

/* ---- EXIF builder ---- */

typedef struct {
  GByteArray *a;
  gboolean le;
} TiffW;

static void
put16 (TiffW *t, gsize at, guint v)
{
  t->a->data[at] = (guint8) (t->le ? v : v >> 8);
  t->a->data[at + 1] = (guint8) (t->le ? v >> 8 : v);
}

static void
put32 (TiffW *t, gsize at, guint32 v)
{
  for (int i = 0; i < 4; i++)
    t->a->data[at + (gsize) i] = (guint8) (t->le ? v >> (8 * i) : v >> (8 * (3 - i)));
}

/* "Exif\0\0" + TIFF: IFD0 {Make, Model, Orientation, Software, ExifIFD} →
 * Exif IFD {DateTimeOriginal}. Offsets are relative to the TIFF header. */
static GBytes *
make_exif (gboolean le, guint orientation, gboolean with_prefix)
{
  TiffW t = { g_byte_array_new (), le };
  const char *make = "TestCam", *model = "X-100", *software = "dcr-test 1.0", *date = "2024:01:02 03:04:05";
  const guint n0 = 5;
  gsize ifd0 = 8, ifd0_end = ifd0 + 2 + 12 * n0 + 4;
  gsize s_make = ifd0_end, s_model = s_make + 8, s_soft = s_model + 6;
  gsize exif_ifd = s_soft + strlen (software) + 1;
  exif_ifd += exif_ifd & 1;
  gsize s_date = exif_ifd + 2 + 12 + 4;
  gsize total = s_date + 20;
  g_byte_array_set_size (t.a, (guint) total);
  memset (t.a->data, 0, total);
  memcpy (t.a->data, le ? "II" : "MM", 2);
  put16 (&t, 2, 42);
  put32 (&t, 4, (guint32) ifd0);
  put16 (&t, ifd0, n0);
  struct { guint tag, type; guint32 count, value; } e[5] = {
    { 0x010f, 2, 8, (guint32) s_make },
    { 0x0110, 2, 6, (guint32) s_model },
    { 0x0112, 3, 1, orientation },
    { 0x0131, 2, (guint32) strlen (software) + 1, (guint32) s_soft },
    { 0x8769, 4, 1, (guint32) exif_ifd },
  };
  for (guint i = 0; i < n0; i++)
    {
      gsize at = ifd0 + 2 + 12 * i;
      put16 (&t, at, e[i].tag);
      put16 (&t, at + 2, e[i].type);
      put32 (&t, at + 4, e[i].count);
      if (e[i].type == 3)
        put16 (&t, at + 8, e[i].value); /* a SHORT sits in the first two bytes */
      else
        put32 (&t, at + 8, e[i].value);
    }
  memcpy (t.a->data + s_make, make, 8);
  memcpy (t.a->data + s_model, model, 6);
  memcpy (t.a->data + s_soft, software, strlen (software) + 1);
  put16 (&t, exif_ifd, 1);
  put16 (&t, exif_ifd + 2, 0x9003);
  put16 (&t, exif_ifd + 4, 2);
  put32 (&t, exif_ifd + 6, 20);
  put32 (&t, exif_ifd + 10, (guint32) s_date);
  memcpy (t.a->data + s_date, date, 20);
  if (with_prefix)
    g_byte_array_prepend (t.a, (const guint8 *) "Exif\0\0", 6);
  return g_byte_array_free_to_bytes (t.a);
}

/* ---- helpers ---- */

static DcrImage *
load (GBytes *b, const char *name, GError **error)
{
  return dcr_image_load_from_bytes (b, name, NULL, error);
}

static void
assert_message (const GError *error, const char *needle)
{
  if (!strstr (error->message, needle))
    g_error ("message \"%s\" does not mention \"%s\"", error->message, needle);
}

static void
assert_pixels_near (const DcrImage *img, const guint8 *want, int tol)
{
  gsize n = (gsize) img->width * img->height * 3;
  for (gsize i = 0; i < n; i++)
    if (ABS ((int) img->pixels[i] - (int) want[i]) > tol)
      g_error ("pixel %" G_GSIZE_FORMAT " (x %u, y %u, channel %u): got %u, want %u (±%d)", i / 3,
               (guint) (i / 3 % img->width), (guint) (i / 3 / img->width), (guint) (i % 3), img->pixels[i], want[i],
               tol);
}

/* ---- PNG ---- */

static void
test_png_kinds (void)
{
  const PngSpec specs[] = {
    { PNG_COLOR_TYPE_GRAY, 1, FALSE, FALSE },
    { PNG_COLOR_TYPE_GRAY, 2, TRUE, FALSE },
    { PNG_COLOR_TYPE_GRAY, 4, FALSE, TRUE },
    { PNG_COLOR_TYPE_GRAY, 8, FALSE, FALSE },
    { PNG_COLOR_TYPE_GRAY, 16, TRUE, FALSE },
    { PNG_COLOR_TYPE_GRAY_ALPHA, 8, FALSE, FALSE },
    { PNG_COLOR_TYPE_GRAY_ALPHA, 16, FALSE, FALSE },
    { PNG_COLOR_TYPE_RGB, 8, FALSE, FALSE },
    { PNG_COLOR_TYPE_RGB, 8, TRUE, TRUE },
    { PNG_COLOR_TYPE_RGB, 16, FALSE, FALSE },
    { PNG_COLOR_TYPE_RGB, 16, TRUE, FALSE },
    { PNG_COLOR_TYPE_RGB_ALPHA, 8, FALSE, FALSE },
    { PNG_COLOR_TYPE_RGB_ALPHA, 8, TRUE, FALSE },
    { PNG_COLOR_TYPE_RGB_ALPHA, 16, FALSE, FALSE },
    { PNG_COLOR_TYPE_PALETTE, 1, FALSE, FALSE },
    { PNG_COLOR_TYPE_PALETTE, 2, FALSE, TRUE },
    { PNG_COLOR_TYPE_PALETTE, 4, TRUE, FALSE },
    { PNG_COLOR_TYPE_PALETTE, 8, FALSE, TRUE },
    { PNG_COLOR_TYPE_PALETTE, 8, TRUE, TRUE },
  };
  const guint w = 13, h = 7; /* odd sizes: partial bytes at low depths, every Adam7 pass short */
  for (guint i = 0; i < G_N_ELEMENTS (specs); i++)
    {
      const PngSpec *s = &specs[i];
      g_autofree guint8 *want = g_malloc (w * h * 3);
      g_autoptr(GBytes) b = make_png (w, h, s, NULL, 0, want);
      g_autoptr(GError) error = NULL;
      g_autoptr(DcrImage) img = load (b, "kinds.png", &error);
      g_assert_no_error (error);
      g_test_message ("PNG colour type %d, %d-bit%s%s", s->color_type, s->depth, s->interlace ? ", interlaced" : "",
                      s->trns ? ", tRNS" : "");
      g_assert_cmpint (img->format, ==, DCR_IMAGE_FORMAT_PNG);
      g_assert_cmpstr (img->format_name, ==, "PNG");
      g_assert_cmpuint (img->width, ==, w);
      g_assert_cmpuint (img->height, ==, h);
      g_assert_cmpuint (img->bit_depth, ==, (guint) s->depth);
      g_assert_cmpint (img->interlaced, ==, s->interlace);
      g_assert_false (img->progressive);
      g_assert_cmpint (img->has_alpha, ==, (s->color_type & PNG_COLOR_MASK_ALPHA) || s->trns);
      DcrImageColor c = s->color_type == PNG_COLOR_TYPE_GRAY ? DCR_IMAGE_COLOR_GRAY
                        : s->color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? DCR_IMAGE_COLOR_GRAY_ALPHA
                        : s->color_type == PNG_COLOR_TYPE_RGB ? DCR_IMAGE_COLOR_RGB
                        : s->color_type == PNG_COLOR_TYPE_RGB_ALPHA ? DCR_IMAGE_COLOR_RGBA
                                                                     : DCR_IMAGE_COLOR_PALETTE;
      g_assert_cmpint (img->color, ==, c);
      g_assert_cmpuint (img->orientation, ==, 1);
      g_assert_false (img->exif.present);
      /* Lossless: exact, alpha dropped with the stored colour kept. */
      assert_pixels_near (img, want, 0);
    }
}

/* Display image from the stored one by composing plain rotations and flips
 * (independent of the decoder's table): 2 flipH, 3 rot180, 4 flipV,
 * 5 rot90cw then flipH, 6 rot90cw, 7 flipH then rot90cw, 8 rot270cw. */
static guint8 *
rot90cw (const guint8 *p, guint *w, guint *h)
{
  guint W = *w, H = *h;
  guint8 *o = g_malloc (W * H * 3);
  for (guint y = 0; y < H; y++)
    for (guint x = 0; x < W; x++)
      memcpy (o + (x * H + (H - 1 - y)) * 3, p + (y * W + x) * 3, 3); /* (x,y) → (H-1-y, x) */
  *w = H;
  *h = W;
  return o;
}

static guint8 *
flip_h (const guint8 *p, guint w, guint h)
{
  guint8 *o = g_malloc (w * h * 3);
  for (guint y = 0; y < h; y++)
    for (guint x = 0; x < w; x++)
      memcpy (o + (y * w + (w - 1 - x)) * 3, p + (y * w + x) * 3, 3);
  return o;
}

static guint8 *
oriented (const guint8 *stored, guint *w, guint *h, guint o)
{
  guint8 *cur = g_memdup2 (stored, *w * *h * 3), *n;
  int rot = o == 3 || o == 4 ? 2 : o == 5 || o == 6 || o == 7 ? 1 : o == 8 ? 3 : 0;
  gboolean flip_first = o == 2 || o == 4 || o == 7;
  gboolean flip_last = o == 5;
  if (flip_first)
    n = flip_h (cur, *w, *h), g_free (cur), cur = n;
  for (int i = 0; i < rot; i++)
    n = rot90cw (cur, w, h), g_free (cur), cur = n;
  if (flip_last)
    n = flip_h (cur, *w, *h), g_free (cur), cur = n;
  return cur;
}

static void
test_png_exif_orientation (void)
{
  const PngSpec rgb = { PNG_COLOR_TYPE_RGB, 8, FALSE, FALSE };
  const guint W = 11, H = 6;
  for (guint o = 1; o <= 8; o++)
    {
      g_autoptr(GBytes) exif = make_exif (o % 2 == 0, o, FALSE); /* PNG eXIf: no "Exif\0\0" */
      g_autofree guint8 *stored = g_malloc (W * H * 3);
      gsize elen;
      const guint8 *e = g_bytes_get_data (exif, &elen);
      g_autoptr(GBytes) b = make_png (W, H, &rgb, e, (guint) elen, stored);
      guint w = W, h = H;
      g_autofree guint8 *want = oriented (stored, &w, &h, o);
      g_autoptr(GError) error = NULL;
      g_autoptr(DcrImage) img = load (b, "exif.png", &error);
      g_assert_no_error (error);
      g_assert_true (img->exif.present);
      g_assert_cmpuint (img->exif.orientation, ==, o);
      g_assert_cmpuint (img->orientation, ==, o);
      g_assert_cmpuint (img->stored_width, ==, W);
      g_assert_cmpuint (img->width, ==, w);
      g_assert_cmpuint (img->height, ==, h);
      assert_pixels_near (img, want, 0);
    }
}

/* The eXIf chunk's declared length is checked against the file before
 * libpng reads it: libpng 1.6.39 allocates whatever an eXIf declares, so a
 * few hundred bytes could make it allocate gigabytes. */
static void
test_png_exif_length (void)
{
  const PngSpec rgb = { PNG_COLOR_TYPE_RGB, 8, FALSE, FALSE };
  g_autoptr(GBytes) exif = make_exif (FALSE, 6, FALSE);
  gsize elen, len;
  const guint8 *e = g_bytes_get_data (exif, &elen);
  g_autofree guint8 *stored = g_malloc (6 * 4 * 3);
  g_autoptr(GBytes) b = make_png (6, 4, &rgb, e, (guint) elen, stored);
  const guint8 *orig = g_bytes_get_data (b, &len);
  const guint8 *chunk = memmem (orig, len, "eXIf", 4);
  g_assert_nonnull (chunk);
  gsize at = (gsize) (chunk - orig) - 4; /* the chunk's length field */

  /* declared past the end of the file: a cut file, and no big allocation */
  g_autofree guint8 *cut = g_memdup2 (orig, len);
  cut[at] = 0x79, cut[at + 1] = 0x00, cut[at + 2] = 0x00, cut[at + 3] = 0x1a;
  g_autoptr(GBytes) cb = g_bytes_new_static (cut, len);
  g_autoptr(GError) error = NULL;
  g_assert_null (load (cb, "exif.png", &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TRUNCATED);
  g_autofree char *want = g_strdup_printf ("exif.png: PNG data ends after %" G_GSIZE_FORMAT " bytes (truncated file?)",
                                           len);
  g_assert_cmpstr (error->message, ==, want);

  /* really there, but over the ancillary limit (16 MiB): refused by name */
  gsize big = (16u << 20) + 1, old = elen + 12;
  GByteArray *a = g_byte_array_new ();
  g_byte_array_append (a, orig, (guint) at);
  guint8 head[8] = { big >> 24, (big >> 16) & 0xff, (big >> 8) & 0xff, big & 0xff, 'e', 'X', 'I', 'f' };
  g_byte_array_append (a, head, 8);
  g_byte_array_set_size (a, a->len + (guint) big + 4); /* data and CRC: never read */
  g_byte_array_append (a, orig + at + old, (guint) (len - at - old));
  g_autoptr(GBytes) bb = g_byte_array_free_to_bytes (a);
  g_clear_error (&error);
  g_assert_null (load (bb, "exif.png", &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "exif.png: its EXIF chunk holds"));

  /* the file as made still loads */
  g_clear_error (&error);
  g_autoptr(DcrImage) img = load (b, "exif.png", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (img->orientation, ==, 6);
}

/* ---- JPEG ---- */

static void
test_jpeg_kinds (void)
{
  const guint bw = 3, bh = 2, w = 48, h = 32;
  g_autofree guint8 *rgb = blocks_image (bw, bh);
  struct { const char *what; gboolean progressive; } kinds[] = { { "baseline", FALSE }, { "progressive", TRUE } };
  for (guint k = 0; k < G_N_ELEMENTS (kinds); k++)
    {
      g_autoptr(GBytes) b = make_jpeg (w, h, rgb, JCS_RGB, 3, JCS_UNKNOWN, kinds[k].progressive, NULL, 0, FALSE);
      g_autoptr(GError) error = NULL;
      g_autoptr(DcrImage) img = load (b, "kinds.jpg", &error);
      g_assert_no_error (error);
      g_test_message ("JPEG %s", kinds[k].what);
      g_assert_cmpint (img->format, ==, DCR_IMAGE_FORMAT_JPEG);
      g_assert_cmpstr (img->format_name, ==, "JPEG");
      g_assert_cmpuint (img->width, ==, w);
      g_assert_cmpuint (img->height, ==, h);
      g_assert_cmpuint (img->bit_depth, ==, 8);
      g_assert_cmpint (img->color, ==, DCR_IMAGE_COLOR_YCBCR);
      g_assert_cmpint (img->progressive, ==, kinds[k].progressive);
      g_assert_false (img->has_alpha);
      g_assert_null (img->warning);
      assert_pixels_near (img, rgb, 4);
    }

  /* Grayscale: R = G = B exactly. */
  g_autofree guint8 *gray = g_malloc (w * h);
  g_autofree guint8 *gray_rgb = g_malloc (w * h * 3);
  for (guint i = 0; i < w * h; i++)
    {
      gray[i] = (guint8) (((i % w) / 16 + (i / w) / 16 * 3) * 40 + 20);
      memset (gray_rgb + 3 * i, gray[i], 3);
    }
  g_autoptr(GBytes) gb = make_jpeg (w, h, gray, JCS_GRAYSCALE, 1, JCS_UNKNOWN, FALSE, NULL, 0, FALSE);
  g_autoptr(GError) error = NULL;
  g_autoptr(DcrImage) gi = load (gb, "gray.jpg", &error);
  g_assert_no_error (error);
  g_assert_cmpint (gi->color, ==, DCR_IMAGE_COLOR_GRAY);
  for (guint i = 0; i < w * h; i++)
    g_assert_true (gi->pixels[3 * i] == gi->pixels[3 * i + 1] && gi->pixels[3 * i] == gi->pixels[3 * i + 2]);
  assert_pixels_near (gi, gray_rgb, 3);

  /* CMYK and YCCK, Adobe-inverted as libjpeg writes them (stored 255 = no
   * ink): colour blocks with no black, plus a block at half black. */
  g_autofree guint8 *cmyk = g_malloc (w * h * 4);
  g_autofree guint8 *cmyk_rgb = g_malloc (w * h * 3);
  for (guint y = 0; y < h; y++)
    for (guint x = 0; x < w; x++)
      {
        guint blk = (y / 16) * bw + x / 16;
        guint8 *s = cmyk + (y * w + x) * 4, *d = cmyk_rgb + (y * w + x) * 3;
        if (blk == 5)
          {
            s[0] = s[1] = s[2] = 255;
            s[3] = 128; /* half black ink */
            d[0] = d[1] = d[2] = 128;
          }
        else
          {
            memcpy (s, block_rgb[blk], 3);
            s[3] = 255;
            memcpy (d, block_rgb[blk], 3);
          }
      }
  struct { J_COLOR_SPACE cs; DcrImageColor want; } cm[] = {
    { JCS_CMYK, DCR_IMAGE_COLOR_CMYK }, { JCS_YCCK, DCR_IMAGE_COLOR_YCCK },
  };
  for (guint k = 0; k < G_N_ELEMENTS (cm); k++)
    {
      g_autoptr(GBytes) cb = make_jpeg (w, h, cmyk, JCS_CMYK, 4, cm[k].cs, k == 1, NULL, 0, FALSE);
      g_autoptr(DcrImage) ci = load (cb, "cmyk.jpg", &error);
      g_assert_no_error (error);
      g_assert_cmpint (ci->color, ==, cm[k].want);
      assert_pixels_near (ci, cmyk_rgb, 6);
    }
}

static void
test_jpeg_subsampled (void)
{
  const guint bw = 3, bh = 2, w = 48, h = 32;
  g_autofree guint8 *rgb = blocks_image (bw, bh);
  g_autoptr(GBytes) b = make_jpeg (w, h, rgb, JCS_RGB, 3, JCS_UNKNOWN, FALSE, NULL, 0, TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(DcrImage) img = load (b, "420.jpg", &error);
  g_assert_no_error (error);
  /* Block centres: far enough from the edges that upsampling does not reach. */
  for (guint by = 0; by < bh; by++)
    for (guint bx = 0; bx < bw; bx++)
      for (guint c = 0; c < 3; c++)
        {
          guint8 got = img->pixels[((by * 16 + 8) * w + bx * 16 + 8) * 3 + c];
          g_assert_cmpint (ABS ((int) got - (int) block_rgb[by * bw + bx][c]), <=, 4);
        }
}

static void
test_jpeg_exif (void)
{
  const guint bw = 3, bh = 2, W = 48, H = 32;
  g_autofree guint8 *rgb = blocks_image (bw, bh);
  for (guint o = 1; o <= 8; o++)
    {
      g_autoptr(GBytes) exif = make_exif (o % 2 == 1, o, TRUE);
      gsize elen;
      const guint8 *e = g_bytes_get_data (exif, &elen);
      g_autoptr(GBytes) b = make_jpeg (W, H, rgb, JCS_RGB, 3, JCS_UNKNOWN, o == 6, e, (guint) elen, FALSE);
      g_autoptr(GError) error = NULL;
      g_autoptr(DcrImage) img = load (b, "exif.jpg", &error);
      g_assert_no_error (error);
      g_assert_true (img->exif.present);
      g_assert_cmpuint (img->exif.orientation, ==, o);
      g_assert_cmpuint (img->orientation, ==, o);
      g_assert_cmpstr (img->exif.make, ==, "TestCam");
      g_assert_cmpstr (img->exif.model, ==, "X-100");
      g_assert_cmpstr (img->exif.software, ==, "dcr-test 1.0");
      g_assert_cmpstr (img->exif.date_time_original, ==, "2024:01:02 03:04:05");
      guint w = W, h = H;
      g_autofree guint8 *want = oriented (rgb, &w, &h, o);
      g_assert_cmpuint (img->width, ==, w);
      g_assert_cmpuint (img->height, ==, h);
      assert_pixels_near (img, want, 4);
    }
}

static void
test_exif_parser (void)
{
  for (int le = 0; le <= 1; le++)
    {
      g_autoptr(GBytes) b = make_exif (le, 6, TRUE);
      gsize len;
      const guint8 *p = g_bytes_get_data (b, &len);
      DcrExif x;
      dcr_exif_parse (p, len, &x);
      g_assert_true (x.present);
      g_assert_cmpuint (x.orientation, ==, 6);
      g_assert_cmpstr (x.make, ==, "TestCam");
      g_assert_cmpstr (x.date_time_original, ==, "2024:01:02 03:04:05");
      dcr_exif_clear (&x);

      /* Every truncation: whatever is inside the block is read, nothing past it. */
      for (gsize cut = 0; cut < len; cut++)
        {
          guint8 *c = g_memdup2 (p, cut); /* exact-size copy: valgrind sees any over-read */
          dcr_exif_parse (c, cut, &x);
          if (cut < 6 + 8)
            g_assert_false (x.present);
          dcr_exif_clear (&x);
          g_free (c);
        }
    }

  /* Out-of-range orientation, hostile offsets, a pointer back to IFD0. */
  g_autoptr(GBytes) b = make_exif (TRUE, 9, FALSE);
  gsize len;
  const guint8 *p = g_bytes_get_data (b, &len);
  DcrExif x;
  dcr_exif_parse (p, len, &x);
  g_assert_true (x.present);
  g_assert_cmpuint (x.orientation, ==, 0);
  dcr_exif_clear (&x);
  guint8 *m = g_memdup2 (p, len);
  m[4] = 0xf0, m[5] = 0xff, m[6] = 0xff, m[7] = 0xff; /* IFD0 at 4 GiB */
  dcr_exif_parse (m, len, &x);
  g_assert_false (x.present);
  memcpy (m, p, len);
  /* Make's offset far outside; Exif IFD pointer back to IFD0. */
  m[8 + 2 + 8] = 0xff, m[8 + 2 + 9] = 0xff, m[8 + 2 + 10] = 0xff, m[8 + 2 + 11] = 0x7f;
  gsize exif_ptr = 8 + 2 + 12 * 4 + 8;
  m[exif_ptr] = 8, m[exif_ptr + 1] = 0, m[exif_ptr + 2] = 0, m[exif_ptr + 3] = 0;
  dcr_exif_parse (m, len, &x);
  g_assert_true (x.present);
  g_assert_null (x.make);
  g_assert_cmpstr (x.model, ==, "X-100");
  g_assert_null (x.date_time_original);
  dcr_exif_clear (&x);
  /* Control characters and invalid UTF-8 in a string are replaced. */
  memcpy (m, p, len);
  gsize make_at = 8 + 2 + 12 * 5 + 4;
  m[make_at + 1] = 0x07, m[make_at + 2] = 0xc3;
  dcr_exif_parse (m, len, &x);
  g_assert_cmpstr (x.make, ==, "T??tCam");
  dcr_exif_clear (&x);
  g_free (m);

  GRand *r = g_rand_new_with_seed (99);
  for (int i = 0; i < 5000; i++)
    {
      guint8 *d = g_memdup2 (p, len);
      for (int f = 0; f < 4; f++)
        d[g_rand_int_range (r, 0, (gint32) len)] = (guint8) g_rand_int_range (r, 0, 256);
      dcr_exif_parse (d, len, &x);
      g_assert_true (x.orientation <= 8);
      g_assert_true (!x.make || strlen (x.make) <= 255);
      dcr_exif_clear (&x);
      g_free (d);
    }
  g_rand_free (r);
  dcr_exif_parse (NULL, 0, &x);
  g_assert_false (x.present);
}

/* ---- refusals ---- */

static GBytes *
small_png (void)
{
  const PngSpec s = { PNG_COLOR_TYPE_RGB, 8, TRUE, FALSE };
  guint8 want[9 * 5 * 3];
  return make_png (9, 5, &s, NULL, 0, want);
}

static GBytes *
small_jpeg (gboolean progressive)
{
  g_autofree guint8 *rgb = blocks_image (2, 1);
  g_autoptr(GBytes) exif = make_exif (TRUE, 3, TRUE);
  gsize elen;
  const guint8 *e = g_bytes_get_data (exif, &elen);
  return make_jpeg (32, 16, rgb, JCS_RGB, 3, JCS_UNKNOWN, progressive, e, (guint) elen, FALSE);
}

static void
check_every_truncation (GBytes *whole, const char *name, const char *format)
{
  gsize len;
  const guint8 *p = g_bytes_get_data (whole, &len);
  g_autoptr(GError) error = NULL;
  g_autoptr(DcrImage) ok = load (whole, name, &error);
  g_assert_no_error (error);
  for (gsize cut = 0; cut < len; cut++)
    {
      /* An exact-size heap copy, so an over-read is a valgrind error. */
      g_autoptr(GBytes) b = g_bytes_new_take (g_memdup2 (p, cut), cut);
      g_autoptr(DcrImage) img = load (b, name, &error);
      if (img)
        g_error ("%s cut to %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes decoded without error", name, cut, len);
      if (cut == 0)
        g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_EMPTY);
      else
        {
          g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TRUNCATED);
          g_autofree char *want = g_strdup_printf ("%s: %s data ends after", name, format);
          assert_message (error, want);
          assert_message (error, "(truncated file?)");
        }
      g_clear_error (&error);
    }
}

static void
test_truncation (void)
{
  g_autoptr(GBytes) png = small_png ();
  g_autoptr(GBytes) jpeg = small_jpeg (FALSE);
  g_autoptr(GBytes) prog = small_jpeg (TRUE);
  g_test_message ("PNG %" G_GSIZE_FORMAT " bytes, JPEG %" G_GSIZE_FORMAT ", progressive JPEG %" G_GSIZE_FORMAT,
                  g_bytes_get_size (png), g_bytes_get_size (jpeg), g_bytes_get_size (prog));
  check_every_truncation (png, "cut.png", "PNG");
  check_every_truncation (jpeg, "cut.jpg", "JPEG");
  check_every_truncation (prog, "cut-progressive.jpg", "JPEG");

  /* The message format people see. */
  gsize len;
  const guint8 *p = g_bytes_get_data (jpeg, &len);
  g_autoptr(GBytes) b = g_bytes_new (p, len - 100);
  g_autoptr(GError) error = NULL;
  g_assert_null (load (b, "photo.jpg", &error));
  g_autofree char *want = g_strdup_printf ("photo.jpg: JPEG data ends after %" G_GSIZE_FORMAT " bytes (truncated file?)",
                                           len - 100);
  g_assert_cmpstr (error->message, ==, want);
}

static guint32
crc32_png (const guint8 *p, gsize n)
{
  guint32 c = 0xffffffffu;
  for (gsize i = 0; i < n; i++)
    {
      c ^= p[i];
      for (int k = 0; k < 8; k++)
        c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
  return c ^ 0xffffffffu;
}

static GBytes *
png_with_size (guint32 w, guint32 h)
{
  g_autoptr(GBytes) b = small_png ();
  gsize len;
  const guint8 *orig = g_bytes_get_data (b, &len);
  guint8 *p = g_memdup2 (orig, len);
  /* signature (8), IHDR length (4), "IHDR" (4), width, height, …, CRC over type+data */
  guint8 *ihdr = p + 8;
  g_assert_cmpmem (ihdr + 4, 4, "IHDR", 4);
  for (int i = 0; i < 4; i++)
    {
      ihdr[8 + i] = (guint8) (w >> (24 - 8 * i));
      ihdr[12 + i] = (guint8) (h >> (24 - 8 * i));
    }
  guint32 crc = crc32_png (ihdr + 4, 4 + 13);
  for (int i = 0; i < 4; i++)
    ihdr[8 + 13 + i] = (guint8) (crc >> (24 - 8 * i));
  return g_bytes_new_take (p, len);
}

static GBytes *
jpeg_patched (guint w, guint h, int precision)
{
  g_autoptr(GBytes) b = small_jpeg (FALSE);
  gsize len;
  const guint8 *orig = g_bytes_get_data (b, &len);
  guint8 *p = g_memdup2 (orig, len);
  gsize i = 2;
  /* Walk the marker segments to the SOF. */
  while (i + 4 < len && !(p[i] == 0xff && (p[i + 1] == 0xc0 || p[i + 1] == 0xc2)))
    i += 2 + ((gsize) p[i + 2] << 8 | p[i + 3]);
  g_assert_true (i + 9 < len);
  if (precision)
    p[i + 4] = (guint8) precision;
  p[i + 5] = (guint8) (h >> 8), p[i + 6] = (guint8) h;
  p[i + 7] = (guint8) (w >> 8), p[i + 8] = (guint8) w;
  return g_bytes_new_take (p, len);
}

static void
test_limits (void)
{
  g_autoptr(GError) error = NULL;
  struct { guint32 w, h; const char *needle; } cases[] = {
    { 100000, 100000, "100000×100000 pixels is over the limit of 16384 pixels per side" },
    { 20000, 10, "over the limit of 16384 pixels per side" },
    { 12000, 9000, "(108.0 megapixels) is over the limit of 100.0 megapixels" },
    { 0x7fffffff, 1, "per side" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) b = png_with_size (cases[i].w, cases[i].h);
      g_assert_null (load (b, "huge.png", &error));
      g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE);
      assert_message (error, "huge.png: ");
      assert_message (error, cases[i].needle);
      g_clear_error (&error);
    }
  g_autoptr(GBytes) zero = png_with_size (0, 5);
  g_assert_null (load (zero, "zero.png", &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_CORRUPT);
  g_clear_error (&error);

  g_autoptr(GBytes) bigj = jpeg_patched (60000, 60000, 0);
  g_assert_null (load (bigj, "huge.jpg", &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE);
  assert_message (error, "huge.jpg: 60000×60000 pixels");
  g_clear_error (&error);
  g_autoptr(GBytes) deep = jpeg_patched (32, 16, 12);
  g_assert_null (load (deep, "deep.jpg", &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_UNSUPPORTED);
  assert_message (error, "12");
  g_clear_error (&error);

  /* Caller limits. */
  g_autoptr(GBytes) png = small_png ();
  DcrImageLimits few = { .max_pixels = 40 };
  g_assert_null (dcr_image_load_from_bytes (png, "x.png", &few, &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE);
  g_clear_error (&error);
  DcrImageLimits narrow = { .max_side = 8 };
  g_assert_null (dcr_image_load_from_bytes (png, "x.png", &narrow, &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE);
  g_clear_error (&error);
  DcrImageLimits tiny = { .max_file_bytes = 16 };
  g_assert_null (dcr_image_load_from_bytes (png, "x.png", &tiny, &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE);
  g_clear_error (&error);
  DcrImageLimits enough = { .max_pixels = 45, .max_side = 9 };
  g_autoptr(DcrImage) img = dcr_image_load_from_bytes (png, "x.png", &enough, &error);
  g_assert_no_error (error);
}

static void
test_wrong_format (void)
{
  struct { const char *data; gsize len; int code; const char *needle; } cases[] = {
    { "GIF89a\x01\0\x01\0", 10, DCR_IMAGE_ERROR_UNKNOWN_FORMAT, "a GIF image; only PNG and JPEG" },
    { "RIFF\0\0\0\0WEBPVP8 ", 16, DCR_IMAGE_ERROR_UNKNOWN_FORMAT, "a WebP image" },
    { "BM\0\0\0\0", 6, DCR_IMAGE_ERROR_UNKNOWN_FORMAT, "a BMP image" },
    { "II*\0\x08\0\0\0", 8, DCR_IMAGE_ERROR_UNKNOWN_FORMAT, "TIFF" },
    { "\0\0\0\x18" "ftypheic", 12, DCR_IMAGE_ERROR_UNKNOWN_FORMAT, "HEIF" },
    { "<!DOCTYPE html>", 15, DCR_IMAGE_ERROR_UNKNOWN_FORMAT, "not a PNG or JPEG image (it starts with bytes 3c 21 44 4f)" },
    { "\x89PNG\r\n\x1a", 7, DCR_IMAGE_ERROR_TRUNCATED, "PNG data ends after 7 bytes" },
    { "\xff\xd8", 2, DCR_IMAGE_ERROR_TRUNCATED, "JPEG data ends after 2 bytes" },
    { "\x89PNX\r\n\x1a\n", 8, DCR_IMAGE_ERROR_UNKNOWN_FORMAT, "not a PNG or JPEG" },
    { "\xff\xd8\xfe\xff", 4, DCR_IMAGE_ERROR_UNKNOWN_FORMAT, "not a PNG or JPEG" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) b = g_bytes_new (cases[i].data, cases[i].len);
      g_autoptr(GError) error = NULL;
      g_assert_null (load (b, "evidence.img", &error));
      g_assert_error (error, DCR_IMAGE_ERROR, cases[i].code);
      assert_message (error, "evidence.img: ");
      assert_message (error, cases[i].needle);
    }
}

static void
test_corrupt_data (void)
{
  g_autoptr(GError) error = NULL;
  /* JPEG: a restart marker dropped into the entropy data of a file without
   * restart intervals — libjpeg only warns and resyncs; we refuse. */
  g_autofree guint8 *rgb = blocks_image (4, 4);
  g_autoptr(GBytes) b = make_jpeg (64, 64, rgb, JCS_RGB, 3, JCS_UNKNOWN, FALSE, NULL, 0, FALSE);
  gsize len;
  const guint8 *p = g_bytes_get_data (b, &len);
  gsize sos = 2;
  while (!(p[sos] == 0xff && p[sos + 1] == 0xda))
    sos += 2 + ((gsize) p[sos + 2] << 8 | p[sos + 3]);
  gsize data = sos + 2 + ((gsize) p[sos + 2] << 8 | p[sos + 3]);
  guint8 *m = g_memdup2 (p, len);
  gsize at = data + (len - data) / 3;
  m[at] = 0xff, m[at + 1] = 0xd3;
  g_autoptr(GBytes) mb = g_bytes_new_take (m, len);
  g_assert_null (load (mb, "damaged.jpg", &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_CORRUPT);
  assert_message (error, "damaged.jpg: damaged JPEG data (Corrupt JPEG data");
  g_clear_error (&error);

  /* PNG: a flipped bit in the image data fails the chunk CRC. */
  g_autoptr(GBytes) png = small_png ();
  const guint8 *pp = g_bytes_get_data (png, &len);
  const guint8 *idat = memmem (pp, len, "IDAT", 4);
  g_assert_nonnull (idat);
  guint8 *pm = g_memdup2 (pp, len);
  pm[(idat - pp) + 6] ^= 0x10;
  g_autoptr(GBytes) pmb = g_bytes_new_take (pm, len);
  g_assert_null (load (pmb, "damaged.png", &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_CORRUPT);
  assert_message (error, "damaged.png: damaged PNG data (");
}

/* Damage libjpeg/libpng report but that leaves the pixels right is tolerated
 * and recorded; a text chunk that would inflate past libpng's chunk limit is
 * dropped after inflating only up to that limit, not the whole bomb. */
static void
test_tolerated (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) jpeg = small_jpeg (FALSE);
  gsize len;
  const guint8 *p = g_bytes_get_data (jpeg, &len);
  gsize i = 2;
  while (!(p[i] == 0xff && p[i + 1] == 0xdb)) /* first DQT */
    i += 2 + ((gsize) p[i + 2] << 8 | p[i + 3]);
  GByteArray *a = g_byte_array_new ();
  g_byte_array_append (a, p, (guint) i);
  g_byte_array_append (a, (const guint8 *) "junk", 4);
  g_byte_array_append (a, p + i, (guint) (len - i));
  g_autoptr(GBytes) padded = g_byte_array_free_to_bytes (a);
  g_autoptr(DcrImage) img = load (padded, "padded.jpg", &error);
  g_assert_no_error (error);
  g_assert_nonnull (img->warning);
  g_assert_nonnull (strstr (img->warning, "4 extraneous bytes before marker 0xdb"));

  /* 20 MiB of text compressed into a zTXt chunk of about 20 KiB. */
  const gsize big = 20u << 20;
  char *text = g_malloc (big + 1);
  memset (text, 'A', big);
  text[big] = 0;
  GByteArray *out = g_byte_array_new ();
  png_structp png = png_create_write_struct (PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct (png);
  png_set_write_fn (png, out, png_write_cb, png_flush_cb);
  png_set_IHDR (png, info, 4, 4, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                PNG_FILTER_TYPE_DEFAULT);
  png_text t = { PNG_TEXT_COMPRESSION_zTXt, (char *) "Bomb", text, big };
  png_set_text (png, info, &t, 1);
  png_write_info (png, info);
  guint8 row[4] = { 1, 2, 3, 4 };
  for (int y = 0; y < 4; y++)
    png_write_row (png, row);
  png_write_end (png, info);
  png_destroy_write_struct (&png, &info);
  g_free (text);
  g_autoptr(GBytes) bomb = g_byte_array_free_to_bytes (out);
  g_assert_cmpuint (g_bytes_get_size (bomb), <, 200000);
  g_autoptr(DcrImage) bi = load (bomb, "bomb.png", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bi->pixels[3 * 3], ==, 4);
  g_assert_nonnull (bi->warning);
  g_test_message ("bomb.png: %s", bi->warning);
}

/* Random damage: an image or an error, never a crash or an over-read. */
static void
mutate (GBytes *whole, const char *name, guint32 seed, int iterations)
{
  gsize len;
  const guint8 *p = g_bytes_get_data (whole, &len);
  GRand *r = g_rand_new_with_seed (seed);
  int decoded = 0;
  for (int i = 0; i < iterations; i++)
    {
      guint8 *m = g_memdup2 (p, len);
      int flips = g_rand_int_range (r, 1, 5);
      for (int f = 0; f < flips; f++)
        m[g_rand_int_range (r, 0, (gint32) len)] = (guint8) g_rand_int_range (r, 0, 256);
      gsize cut = g_rand_int_range (r, 0, 4) == 0 ? (gsize) g_rand_int_range (r, 1, (gint32) len) : len;
      g_autoptr(GBytes) b = g_bytes_new_take (m, cut);
      g_autoptr(GError) error = NULL;
      g_autoptr(DcrImage) img = load (b, name, &error);
      g_assert_true ((img != NULL) != (error != NULL));
      if (img)
        {
          decoded++;
          g_assert_nonnull (img->pixels);
          g_assert_true (img->width > 0 && img->height > 0);
        }
      else
        g_assert_true (error->domain == DCR_IMAGE_ERROR && g_str_has_prefix (error->message, name));
    }
  g_rand_free (r);
  g_test_message ("%s: %d of %d damaged copies still decoded", name, decoded, iterations);
}

static void
test_mutations (void)
{
  g_autoptr(GBytes) png = small_png ();
  g_autoptr(GBytes) jpeg = small_jpeg (FALSE);
  g_autoptr(GBytes) prog = small_jpeg (TRUE);
  const PngSpec pal = { PNG_COLOR_TYPE_PALETTE, 4, FALSE, TRUE };
  guint8 want[12 * 12 * 3];
  g_autoptr(GBytes) palb = make_png (12, 12, &pal, NULL, 0, want);
  mutate (png, "m.png", 1, 1500);
  mutate (palb, "m-palette.png", 2, 1500);
  mutate (jpeg, "m.jpg", 3, 1500);
  mutate (prog, "m-progressive.jpg", 4, 1500);
}

/* ---- files ---- */

static void
test_files (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = g_build_filename (tmpdir, "missing.jpg", NULL);
  g_assert_null (dcr_image_load (missing, NULL, &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_IO);
  assert_message (error, "missing.jpg: cannot open");
  g_clear_error (&error);
  g_assert_null (dcr_image_load (tmpdir, NULL, &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_IO);
  g_clear_error (&error);

  g_autofree char *empty = g_build_filename (tmpdir, "empty.png", NULL);
  g_assert_true (g_file_set_contents (empty, "", 0, NULL));
  g_assert_null (dcr_image_load (empty, NULL, &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_EMPTY);
  assert_message (error, "empty.png: the file is empty");
  g_clear_error (&error);
  g_unlink (empty);

  /* Evidence in a read-only file: decoded, and left exactly as it was. */
  g_autoptr(GBytes) jpeg = small_jpeg (FALSE);
  g_autofree char *ev = g_build_filename (tmpdir, "evidence.jpg", NULL);
  g_assert_true (g_file_set_contents (ev, g_bytes_get_data (jpeg, NULL), (gssize) g_bytes_get_size (jpeg), NULL));
  g_assert_cmpint (g_chmod (ev, 0400), ==, 0);
  GStatBuf before, after;
  g_assert_cmpint (g_stat (ev, &before), ==, 0);
  g_autoptr(DcrImage) img = dcr_image_load (ev, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (img->width, ==, 32); /* orientation 3 (180°) keeps 32×16 */
  g_assert_cmpuint (img->height, ==, 16);
  g_assert_cmpuint (img->orientation, ==, 3);
  g_assert_cmpint (g_stat (ev, &after), ==, 0);
  g_assert_cmpint (before.st_mtime, ==, after.st_mtime);
  g_assert_cmpint (before.st_size, ==, after.st_size);
  g_autofree char *back = NULL;
  gsize back_len;
  g_assert_true (g_file_get_contents (ev, &back, &back_len, NULL));
  g_assert_cmpmem (back, back_len, g_bytes_get_data (jpeg, NULL), g_bytes_get_size (jpeg));
  g_chmod (ev, 0600);
  g_unlink (ev);

  DcrImageLimits tiny = { .max_file_bytes = 100 };
  g_autofree char *big = g_build_filename (tmpdir, "big.jpg", NULL);
  g_assert_true (g_file_set_contents (big, g_bytes_get_data (jpeg, NULL), (gssize) g_bytes_get_size (jpeg), NULL));
  g_assert_null (dcr_image_load (big, &tiny, &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE);
  assert_message (error, "big.jpg: ");
  g_clear_error (&error);
  g_unlink (big);
}

static void
test_save_png (void)
{
  g_autoptr(DcrImage) img = dcr_image_new (17, 9);
  for (gsize i = 0; i < 17 * 9 * 3; i++)
    img->pixels[i] = (guint8) (i * 7);
  g_autofree char *dir = g_build_filename (tmpdir, "save", NULL);
  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  g_autofree char *path = g_build_filename (dir, "thumb.png", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true (dcr_image_save_png (img, path, &error));
  g_assert_true (dcr_image_save_png (img, path, &error)); /* replaces */
  g_assert_no_error (error);
  g_autoptr(DcrImage) back = dcr_image_load (path, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->width, ==, 17);
  g_assert_cmpuint (back->height, ==, 9);
  g_assert_cmpmem (back->pixels, 17 * 9 * 3, img->pixels, 17 * 9 * 3);
  g_autofree char *bad = g_build_filename (dir, "no", "such", "dir.png", NULL);
  g_assert_false (dcr_image_save_png (img, bad, &error));
  g_assert_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_IO);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;
  while (g_dir_read_name (d))
    n++;
  g_assert_cmpuint (n, ==, 1); /* no temporaries left */
  g_unlink (path);
  g_rmdir (dir);
}

/* A smooth gradient with a soft disc: JPEG-friendly content, so the error
 * measures quantisation rather than ringing on hard edges. */
static DcrImage *
smooth_image (guint32 w, guint32 h)
{
  DcrImage *img = dcr_image_new (w, h);
  for (guint32 y = 0; y < h; y++)
    for (guint32 x = 0; x < w; x++)
      {
        guint8 *p = img->pixels + ((gsize) y * w + x) * 3;
        double dx = x - w / 2.0, dy = y - h / 2.0;
        double disc = 80.0 / (1.0 + (dx * dx + dy * dy) / 200.0);
        p[0] = (guint8) CLAMP (40 + 150.0 * x / w + disc, 0, 255);
        p[1] = (guint8) CLAMP (60 + 120.0 * y / h, 0, 255);
        p[2] = (guint8) CLAMP (200 - 100.0 * x / w + disc / 2, 0, 255);
      }
  return img;
}

static double
mean_abs_error (const DcrImage *a, const DcrImage *b)
{
  gsize n = (gsize) a->width * a->height * 3;
  double sum = 0;
  for (gsize i = 0; i < n; i++)
    sum += ABS ((int) a->pixels[i] - (int) b->pixels[i]);
  return sum / n;
}

static void
test_encode_jpeg (void)
{
  g_autoptr (DcrImage) img = smooth_image (67, 45);
  double err[2];
  int qualities[2] = { 90, 75 };
  gsize sizes[2];
  for (int i = 0; i < 2; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) jpeg = dcr_image_encode_jpeg (img, qualities[i], &error);
      g_assert_no_error (error);
      sizes[i] = g_bytes_get_size (jpeg);
      g_autoptr (DcrImage) back = dcr_image_load_from_bytes (jpeg, "re-encoded", NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (back->format_name, ==, "JPEG");
      g_assert_cmpuint (back->width, ==, 67);
      g_assert_cmpuint (back->height, ==, 45);
      err[i] = mean_abs_error (img, back);
    }
  /* loose bounds (libjpeg versions differ); q75 must lose more than q90 */
  g_assert_cmpfloat (err[0], >, 0.0);
  g_assert_cmpfloat (err[0], <, 2.5);
  g_assert_cmpfloat (err[1], <, 4.0);
  g_assert_cmpfloat (err[1], >, err[0]);
  g_assert_cmpuint (sizes[1], <, sizes[0]);
}

static void
test_encode_png (void)
{
  g_autoptr (DcrImage) img = dcr_image_new (13, 7);
  for (gsize i = 0; i < 13 * 7 * 3; i++)
    img->pixels[i] = (guint8) (i * 37 + 11);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) png = dcr_image_encode_png (img, &error);
  g_assert_no_error (error);
  g_autoptr (DcrImage) back = dcr_image_load_from_bytes (png, "png", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (back->format_name, ==, "PNG");
  g_assert_cmpuint (back->width, ==, 13);
  g_assert_cmpuint (back->height, ==, 7);
  g_assert_cmpmem (back->pixels, 13 * 7 * 3, img->pixels, 13 * 7 * 3);
}

static void
test_resize_half (void)
{
  /* 5 × 3: the odd last column and row are dropped → 2 × 1 */
  g_autoptr (DcrImage) img = dcr_image_new (5, 3);
  for (guint32 y = 0; y < 3; y++)
    for (guint32 x = 0; x < 5; x++)
      {
        guint8 *p = img->pixels + ((gsize) y * 5 + x) * 3;
        p[0] = (guint8) (10 * x + 100 * y); /* block (0,0): 0,10,100,110 → 55 */
        p[1] = (x + y) % 2 ? 255 : 0;       /* checkerboard → 127.5 → 128 */
        p[2] = 7;
      }
  g_autoptr (DcrImage) half = dcr_image_resize_half (img);
  g_assert_cmpuint (half->width, ==, 2);
  g_assert_cmpuint (half->height, ==, 1);
  g_assert_cmpuint (half->pixels[0], ==, 55);
  g_assert_cmpuint (half->pixels[1], ==, 128);
  g_assert_cmpuint (half->pixels[2], ==, 7);
  g_assert_cmpuint (half->pixels[3], ==, 75); /* 20,30,120,130 */
  g_assert_cmpuint (half->pixels[4], ==, 128);
  g_assert_cmpuint (half->pixels[5], ==, 7);

  g_autoptr (DcrImage) big = dcr_image_new (64, 48);
  g_autoptr (DcrImage) bh = dcr_image_resize_half (big);
  g_assert_cmpuint (bh->width, ==, 32);
  g_assert_cmpuint (bh->height, ==, 24);
  g_autoptr (DcrImage) one = dcr_image_new (1, 1);
  one->pixels[0] = 9;
  g_autoptr (DcrImage) oh = dcr_image_resize_half (one);
  g_assert_cmpuint (oh->width, ==, 1);
  g_assert_cmpuint (oh->height, ==, 1);
  g_assert_cmpuint (oh->pixels[0], ==, 9);
}

static void
test_thumbnail (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrImage) img = dcr_image_new (1000, 300);
  for (gsize i = 0; i < (gsize) 1000 * 300 * 3; i++)
    img->pixels[i] = (guint8) (i % 251);
  g_autoptr (GBytes) png = dcr_image_thumbnail_png (img, 128, &err);
  g_assert_no_error (err);
  g_autoptr (DcrImage) back = dcr_image_load_from_bytes (png, "thumb.png", NULL, &err);
  g_assert_no_error (err);
  /* 1000×300 halves three times to 125×37 */
  g_assert_cmpuint (back->width, ==, 125);
  g_assert_cmpuint (back->height, ==, 37);
  /* an image already small enough is kept as it is */
  g_autoptr (DcrImage) tiny = dcr_image_new (40, 30);
  g_autoptr (GBytes) png2 = dcr_image_thumbnail_png (tiny, 128, &err);
  g_autoptr (DcrImage) back2 = dcr_image_load_from_bytes (png2, "thumb2.png", NULL, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (back2->width, ==, 40);
  g_assert_cmpuint (back2->height, ==, 30);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("dcr-test-image-XXXXXX", NULL);
  g_assert_nonnull (tmpdir);
  g_test_add_func ("/image/png-kinds", test_png_kinds);
  g_test_add_func ("/image/png-exif-orientation", test_png_exif_orientation);
  g_test_add_func ("/image/png-exif-length", test_png_exif_length);
  g_test_add_func ("/image/jpeg-kinds", test_jpeg_kinds);
  g_test_add_func ("/image/jpeg-subsampled", test_jpeg_subsampled);
  g_test_add_func ("/image/jpeg-exif", test_jpeg_exif);
  g_test_add_func ("/image/exif-parser", test_exif_parser);
  g_test_add_func ("/image/truncation", test_truncation);
  g_test_add_func ("/image/limits", test_limits);
  g_test_add_func ("/image/wrong-format", test_wrong_format);
  g_test_add_func ("/image/corrupt-data", test_corrupt_data);
  g_test_add_func ("/image/tolerated", test_tolerated);
  g_test_add_func ("/image/mutations", test_mutations);
  g_test_add_func ("/image/files", test_files);
  g_test_add_func ("/image/save-png", test_save_png);
  g_test_add_func ("/image/encode-jpeg", test_encode_jpeg);
  g_test_add_func ("/image/encode-png", test_encode_png);
  g_test_add_func ("/image/resize-half", test_resize_half);
  g_test_add_func ("/image/thumbnail", test_thumbnail);
  int rc = g_test_run ();
  g_rmdir (tmpdir);
  g_free (tmpdir);
  return rc;
}
