/* dcr-image.c — PNG and JPEG decoding for evidence files. Both libraries
 * report errors by longjmp, so every decoder keeps what it allocates in a
 * context that lives in the caller's frame and is released on either path;
 * anything that would leave wrong pixels behind (truncation, corrupt entropy
 * data) is an error, never a silently grey image. */
#include "dcr-image.h"
#include "dcr-util.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <glib/gstdio.h>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

G_DEFINE_QUARK (dcr-image-error-quark, dcr_image_error)

/* Ancillary PNG chunks (text, ICC, EXIF) larger than this are refused by
 * libpng; no honest one comes near it. */
#define PNG_CHUNK_MAX (16u << 20)
/* A progressive JPEG normally has about ten scans; thousands are a CPU bomb. */
#define JPEG_MAX_SCANS 1000

static const guint8 png_signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
static const guint8 jpeg_signature[3] = { 0xff, 0xd8, 0xff };

const char *
dcr_image_color_name (DcrImageColor color)
{
  switch (color)
    {
    case DCR_IMAGE_COLOR_GRAY: return "gray";
    case DCR_IMAGE_COLOR_GRAY_ALPHA: return "gray+alpha";
    case DCR_IMAGE_COLOR_RGB: return "RGB";
    case DCR_IMAGE_COLOR_RGBA: return "RGBA";
    case DCR_IMAGE_COLOR_PALETTE: return "palette";
    case DCR_IMAGE_COLOR_YCBCR: return "YCbCr";
    case DCR_IMAGE_COLOR_CMYK: return "CMYK";
    case DCR_IMAGE_COLOR_YCCK: return "YCCK";
    }
  return "?";
}

/* ---- EXIF ---- */

typedef struct {
  const guint8 *p;
  gsize len;
  gboolean le;
} Tiff;

static guint16
tiff16 (const Tiff *t, gsize off)
{
  return t->le ? (guint16) (t->p[off] | t->p[off + 1] << 8) : (guint16) (t->p[off] << 8 | t->p[off + 1]);
}

static guint32
tiff32 (const Tiff *t, gsize off)
{
  const guint8 *b = t->p + off;
  return t->le ? (guint32) b[0] | (guint32) b[1] << 8 | (guint32) b[2] << 16 | (guint32) b[3] << 24
               : (guint32) b[0] << 24 | (guint32) b[1] << 16 | (guint32) b[2] << 8 | (guint32) b[3];
}

static gsize
tiff_type_size (guint16 type)
{
  switch (type)
    {
    case 1: case 2: case 6: case 7: return 1; /* BYTE, ASCII, SBYTE, UNDEFINED */
    case 3: case 8: return 2;                 /* SHORT, SSHORT */
    case 4: case 9: case 11: case 13: return 4; /* LONG, SLONG, FLOAT, IFD */
    case 5: case 10: case 12: return 8;       /* RATIONAL, SRATIONAL, DOUBLE */
    default: return 0;
    }
}

/* Printable UTF-8, at most 255 bytes, NUL- and space-trimmed; NULL if empty. */
static char *
exif_string (const guint8 *s, gsize n)
{
  gsize end = 0;
  while (end < n && s[end])
    end++;
  GString *out = g_string_new (NULL);
  gsize i = 0;
  while (i < end && out->len < 255)
    {
      gunichar c = g_utf8_get_char_validated ((const char *) s + i, (gssize) (end - i));
      if (c != (gunichar) -1 && c != (gunichar) -2 && g_unichar_isprint (c))
        {
          gsize l = (gsize) (g_utf8_next_char ((const char *) s + i) - ((const char *) s + i));
          if (out->len + l > 255)
            break;
          g_string_append_len (out, (const char *) s + i, (gssize) l);
          i += l;
        }
      else
        {
          g_string_append_c (out, '?');
          i++;
        }
    }
  while (out->len > 0 && out->str[out->len - 1] == ' ')
    g_string_truncate (out, out->len - 1);
  if (out->len == 0)
    {
      g_string_free (out, TRUE);
      return NULL;
    }
  return g_string_free (out, FALSE);
}

/* Reads one IFD; returns the Exif sub-IFD offset through `exif_ifd` (0 when
 * none). FALSE when the IFD itself lies outside the block. */
static gboolean
exif_read_ifd (const Tiff *t, guint32 off, gboolean is_exif_ifd, DcrExif *out, guint32 *exif_ifd)
{
  if (off < 8 || off > t->len || t->len - off < 2)
    return FALSE;
  gsize n = tiff16 (t, off);
  gsize room = (t->len - off - 2) / 12;
  n = MIN (n, room); /* a cut-off directory: read the entries that are there */
  for (gsize i = 0; i < n; i++)
    {
      gsize e = off + 2 + 12 * i;
      guint16 tag = tiff16 (t, e), type = tiff16 (t, e + 2);
      guint32 count = tiff32 (t, e + 4);
      gsize esize = tiff_type_size (type);
      if (esize == 0 || count == 0 || count > (1u << 24))
        continue;
      gsize size = esize * count;
      gsize loc = e + 8;
      if (size > 4)
        {
          loc = tiff32 (t, e + 8);
          if (loc > t->len || size > t->len - loc)
            continue;
        }
      char **str = NULL;
      if (!is_exif_ifd)
        switch (tag)
          {
          case 0x0112: /* Orientation */
            if (type == 3 || type == 4)
              {
                guint32 v = type == 3 ? tiff16 (t, loc) : tiff32 (t, loc);
                out->orientation = v >= 1 && v <= 8 ? (guint16) v : 0;
              }
            break;
          case 0x010f: str = &out->make; break;
          case 0x0110: str = &out->model; break;
          case 0x0131: str = &out->software; break;
          case 0x8769: /* Exif IFD pointer */
            if ((type == 4 || type == 13) && count == 1)
              *exif_ifd = tiff32 (t, loc);
            break;
          default: break;
          }
      else if (tag == 0x9003)
        str = &out->date_time_original;
      if (str && !*str && (type == 2 || type == 7))
        *str = exif_string (t->p + loc, size);
    }
  return TRUE;
}

void
dcr_exif_parse (const guint8 *data, gsize len, DcrExif *out)
{
  memset (out, 0, sizeof *out);
  if (!data)
    return;
  if (len >= 6 && memcmp (data, "Exif\0\0", 6) == 0)
    {
      data += 6;
      len -= 6;
    }
  if (len < 8)
    return;
  Tiff t = { data, len, FALSE };
  if (data[0] == 'I' && data[1] == 'I')
    t.le = TRUE;
  else if (!(data[0] == 'M' && data[1] == 'M'))
    return;
  if (tiff16 (&t, 2) != 42)
    return;
  guint32 exif_ifd = 0;
  out->present = exif_read_ifd (&t, tiff32 (&t, 4), FALSE, out, &exif_ifd);
  /* Followed once, from IFD0 only: no pointer chain can loop. */
  if (out->present && exif_ifd)
    {
      guint32 unused = 0;
      exif_read_ifd (&t, exif_ifd, TRUE, out, &unused);
    }
}

void
dcr_exif_clear (DcrExif *exif)
{
  g_clear_pointer (&exif->make, g_free);
  g_clear_pointer (&exif->model, g_free);
  g_clear_pointer (&exif->software, g_free);
  g_clear_pointer (&exif->date_time_original, g_free);
  memset (exif, 0, sizeof *exif);
}

/* ---- images ---- */

DcrImage *
dcr_image_new (guint32 width, guint32 height)
{
  g_return_val_if_fail (width > 0 && height > 0, NULL);
  DcrImage *img = g_new0 (DcrImage, 1);
  img->width = img->stored_width = width;
  img->height = img->stored_height = height;
  img->pixels = g_malloc0 ((gsize) width * height * 3);
  img->format = DCR_IMAGE_FORMAT_PNG;
  img->format_name = "PNG";
  img->bit_depth = 8;
  img->color = DCR_IMAGE_COLOR_RGB;
  img->orientation = 1;
  return img;
}

void
dcr_image_free (DcrImage *img)
{
  if (!img)
    return;
  g_free (img->pixels);
  dcr_exif_clear (&img->exif);
  g_free (img->warning);
  g_free (img);
}

static void
resolve_limits (const DcrImageLimits *in, DcrImageLimits *out)
{
  *out = in ? *in : (DcrImageLimits) { 0 };
  if (!out->max_pixels)
    out->max_pixels = DCR_IMAGE_DEFAULT_MAX_PIXELS;
  if (!out->max_side)
    out->max_side = DCR_IMAGE_DEFAULT_MAX_SIDE;
  if (!out->max_file_bytes)
    out->max_file_bytes = DCR_IMAGE_DEFAULT_MAX_FILE_BYTES;
  /* The file is held in one GByteArray, whose length is 32-bit. */
  out->max_file_bytes = MIN (out->max_file_bytes, (guint64) G_MAXUINT32);
}

/* State of one decode. It lives in the frame of the function that calls
 * the decoder, never in the frame that calls setjmp, so nothing in it is
 * indeterminate after a longjmp. */
typedef struct {
  const char *name;
  const char *format;
  DcrImageLimits limits;
  const guint8 *data;
  gsize len;
  gsize pos;
  gboolean truncated;
  gboolean in_pixels;   /* reading image data: warnings mean wrong pixels */
  char msg[JMSG_LENGTH_MAX + 64]; /* the library's first complaint */
  int jpeg_code;        /* libjpeg message code of msg */
  char *warning;        /* first tolerated warning */
  char *pixel_warning;  /* first warning while reading pixels */
  GError *error;        /* our own refusal (limits, layout), set before bailing out */
  DcrImage *img;
  guint8 **rows;
  guint8 *row;          /* JPEG CMYK scanline */
  /* libpng */
  png_structp png;
  png_infop info;
  /* libjpeg */
  struct jpeg_decompress_struct cinfo;
  struct jpeg_error_mgr jerr;
  struct jpeg_progress_mgr progress;
  jmp_buf jmp;
  gboolean cinfo_created;
} Decode;

static gboolean
check_size (Decode *d, guint64 w, guint64 h)
{
  if (w == 0 || h == 0)
    {
      g_set_error (&d->error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_CORRUPT,
                   "%s: the %s header gives a size of %" G_GUINT64_FORMAT "×%" G_GUINT64_FORMAT " pixels",
                   d->name, d->format, w, h);
      return FALSE;
    }
  if (w > d->limits.max_side || h > d->limits.max_side)
    {
      g_set_error (&d->error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE,
                   "%s: %" G_GUINT64_FORMAT "×%" G_GUINT64_FORMAT " pixels is over the limit of %u pixels "
                   "per side", d->name, w, h, d->limits.max_side);
      return FALSE;
    }
  if (w * h > d->limits.max_pixels)
    {
      g_set_error (&d->error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE,
                   "%s: %" G_GUINT64_FORMAT "×%" G_GUINT64_FORMAT " pixels (%.1f megapixels) is over the "
                   "limit of %.1f megapixels", d->name, w, h, (double) (w * h) / 1e6,
                   (double) d->limits.max_pixels / 1e6);
      return FALSE;
    }
  return TRUE;
}

static void
set_decode_error (Decode *d, GError **error)
{
  char sz[32];
  if (d->error)
    g_propagate_error (error, g_steal_pointer (&d->error));
  else if (d->truncated)
    g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TRUNCATED, "%s: %s data ends after %s (truncated file?)",
                 d->name, d->format, dcr_human_size (d->len, sz, sizeof sz));
  else if (d->jpeg_code == JERR_BAD_PRECISION)
    g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_UNSUPPORTED,
                 "%s: %s (only 8-bit JPEG is supported)", d->name, d->msg);
  else if (d->jpeg_code == JERR_IMAGE_TOO_BIG || d->jpeg_code == JERR_WIDTH_OVERFLOW)
    g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE, "%s: %s", d->name, d->msg);
  else
    g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_CORRUPT, "%s: damaged %s data (%s)", d->name, d->format,
                 d->msg[0] ? d->msg : "unknown error");
}

static void
note_warning (char **slot, const char *msg)
{
  if (!*slot)
    *slot = g_strdup (msg);
}

/* ---- PNG ---- */

static void
png_error_cb (png_structp png, png_const_charp msg)
{
  Decode *d = png_get_error_ptr (png);
  if (!d->msg[0])
    g_strlcpy (d->msg, msg, sizeof d->msg);
  png_longjmp (png, 1);
}

static void
png_warning_cb (png_structp png, png_const_charp msg)
{
  Decode *d = png_get_error_ptr (png);
  /* Surplus compressed data after the last row leaves the pixels intact. */
  gboolean harmless = strstr (msg, "Extra compressed data") || strstr (msg, "Too much image data");
  note_warning (d->in_pixels && !harmless ? &d->pixel_warning : &d->warning, msg);
}

static void
png_read_cb (png_structp png, png_bytep out, size_t n)
{
  Decode *d = png_get_io_ptr (png);
  if (n > d->len - d->pos)
    {
      d->truncated = TRUE;
      png_error (png, "unexpected end of data");
    }
  memcpy (out, d->data + d->pos, n);
  d->pos += n;
}

static guint32
be32 (const guint8 *p)
{
  return (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
}

/* The filtered image data of a w × h PNG: a filter byte per row of each
 * (Adam7) pass plus the packed samples. */
static guint64
png_raw_size (guint64 w, guint64 h, guint bits_per_pixel, gboolean interlaced)
{
  static const guint8 x0[7] = { 0, 4, 0, 2, 0, 1, 0 }, y0[7] = { 0, 0, 4, 0, 2, 0, 1 };
  static const guint8 dx[7] = { 8, 8, 4, 4, 2, 2, 1 }, dy[7] = { 8, 8, 8, 4, 4, 2, 2 };
  if (!interlaced)
    return h * (1 + (w * bits_per_pixel + 7) / 8);
  guint64 n = 0;
  for (int p = 0; p < 7; p++)
    {
      guint64 pw = w > x0[p] ? (w - x0[p] + dx[p] - 1) / dx[p] : 0;
      guint64 ph = h > y0[p] ? (h - y0[p] + dy[p] - 1) / dy[p] : 0;
      if (pw && ph)
        n += ph * (1 + (pw * bits_per_pixel + 7) / 8);
    }
  return n;
}

/* libpng, once it has the last row, inflates whatever compressed data
 * follows it to its end (1 KiB at a time) before it returns the image: a
 * 5 MiB IDAT that inflates to 5 GiB of zeros behind a 64 × 64 header
 * passes every size check and then costs 20 s — hours at the file-size
 * limit. So the IDAT stream is inflated here first, into a scratch buffer,
 * and refused when it holds much more than the header's image needs. The
 * work is bounded by the image size (at worst a second inflate of a large
 * image); small excess (some encoders leave a few bytes) is tolerated as
 * libpng tolerates it. */
static gboolean
png_check_idat_size (Decode *d, guint64 raw)
{
  guint64 budget = raw + raw / 8 + (1u << 20);
  z_stream z = { 0 };
  if (inflateInit (&z) != Z_OK)
    return TRUE; /* libpng reports what it cannot inflate */
  guint8 *scratch = g_malloc (65536);
  gboolean ended = FALSE, broken = FALSE;
  for (gsize pos = 8; !ended && !broken && pos + 12 <= d->len;)
    {
      guint32 len = be32 (d->data + pos);
      const guint8 *type = d->data + pos + 4;
      if (len > d->len - pos - 12)
        break;
      if (memcmp (type, "IEND", 4) == 0)
        break;
      if (memcmp (type, "IDAT", 4) == 0)
        {
          z.next_in = (Bytef *) type + 4;
          z.avail_in = len;
          while (z.avail_in > 0 && !ended && !broken)
            {
              z.next_out = scratch;
              z.avail_out = 65536;
              int rc = inflate (&z, Z_NO_FLUSH);
              ended = rc == Z_STREAM_END;
              broken = (rc != Z_OK && rc != Z_STREAM_END) || z.total_out > budget;
            }
        }
      pos += (gsize) len + 12;
    }
  guint64 out = z.total_out;
  inflateEnd (&z);
  g_free (scratch);
  if (out <= budget)
    return TRUE;
  char have[32], need[32];
  g_set_error (&d->error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_CORRUPT,
               "%s: the PNG image data inflates to more than %s, but a %u×%u image needs %s "
               "(a decompression bomb?)", d->name, dcr_human_size (budget, have, sizeof have),
               png_get_image_width (d->png, d->info), png_get_image_height (d->png, d->info),
               dcr_human_size (raw, need, sizeof need));
  return FALSE;
}

/* Walks the chunk list before libpng sees it. libpng 1.6.39's eXIf handler
 * allocates whatever length the chunk declares, without the
 * png_set_chunk_malloc_max limit: a 182-byte file that declared a 1.9 GiB
 * eXIf had it allocate 1.9 GiB (9 s of CPU when malloc touches its memory,
 * as with MALLOC_PERTURB_). A chunk that runs past the end of the file is a
 * cut file whatever libpng would do first (png_read_end reads through IEND),
 * so it is reported as one here; an eXIf over the ancillary limit is refused
 * as the other ancillary chunks are. */
static gboolean
png_check_chunks (Decode *d)
{
  for (gsize pos = 8;;)
    {
      if (d->len - pos < 12)
        {
          d->truncated = TRUE;
          return FALSE;
        }
      guint32 len = be32 (d->data + pos);
      const guint8 *type = d->data + pos + 4;
      if (len > d->len - pos - 12)
        {
          d->truncated = TRUE;
          return FALSE;
        }
      if (memcmp (type, "eXIf", 4) == 0 && len > PNG_CHUNK_MAX)
        {
          char have[32], max[32];
          g_set_error (&d->error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_CORRUPT,
                       "%s: its EXIF chunk holds %s, more than the %s allowed (a damaged or hostile file?)", d->name,
                       dcr_human_size (len, have, sizeof have), dcr_human_size (PNG_CHUNK_MAX, max, sizeof max));
          return FALSE;
        }
      if (memcmp (type, "IEND", 4) == 0)
        return TRUE;
      pos += (gsize) len + 12;
    }
}

/* Runs under setjmp; TRUE when d->img holds the decoded image. */
static gboolean
png_decode (Decode *d)
{
  if (!png_check_chunks (d))
    return FALSE;
  if (setjmp (png_jmpbuf (d->png)))
    return FALSE;

  png_set_read_fn (d->png, d, png_read_cb);
  /* Our own check below gives the better message; libpng's limits only stop
   * what could not be represented at all. */
  png_set_user_limits (d->png, 0x7fffffff, 0x7fffffff);
  png_set_chunk_malloc_max (d->png, PNG_CHUNK_MAX);
  png_set_chunk_cache_max (d->png, 1000);
  png_read_info (d->png, d->info);

  png_uint_32 w, h;
  int depth, color, interlace;
  png_get_IHDR (d->png, d->info, &w, &h, &depth, &color, &interlace, NULL, NULL);
  if (!check_size (d, w, h))
    return FALSE;
  if (!png_check_idat_size (d, png_raw_size (w, h, (guint) png_get_channels (d->png, d->info) * (guint) depth,
                                             interlace != PNG_INTERLACE_NONE)))
    return FALSE;

  DcrImage *img = d->img = g_new0 (DcrImage, 1);
  img->format = DCR_IMAGE_FORMAT_PNG;
  img->format_name = "PNG";
  img->width = img->stored_width = w;
  img->height = img->stored_height = h;
  img->bit_depth = (guint8) depth;
  img->interlaced = interlace != PNG_INTERLACE_NONE;
  img->orientation = 1;
  img->has_alpha = (color & PNG_COLOR_MASK_ALPHA) || png_get_valid (d->png, d->info, PNG_INFO_tRNS);
  switch (color)
    {
    case PNG_COLOR_TYPE_GRAY: img->color = DCR_IMAGE_COLOR_GRAY; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: img->color = DCR_IMAGE_COLOR_GRAY_ALPHA; break;
    case PNG_COLOR_TYPE_PALETTE: img->color = DCR_IMAGE_COLOR_PALETTE; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: img->color = DCR_IMAGE_COLOR_RGBA; break;
    default: img->color = DCR_IMAGE_COLOR_RGB; break;
    }

  /* To 8-bit RGB. Alpha is dropped, not composited: an analyst sees the
   * colour values the file stores, also under transparent pixels. No gamma
   * or ICC conversion for the same reason. */
  if (color == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb (d->png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
    png_set_expand_gray_1_2_4_to_8 (d->png);
  if (depth == 16)
    png_set_scale_16 (d->png);
  if (img->has_alpha)
    png_set_strip_alpha (d->png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA)
    png_set_gray_to_rgb (d->png);
  png_set_interlace_handling (d->png);
  png_read_update_info (d->png, d->info);
  if (png_get_channels (d->png, d->info) != 3 || png_get_bit_depth (d->png, d->info) != 8
      || png_get_rowbytes (d->png, d->info) != (size_t) w * 3)
    {
      g_set_error (&d->error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_UNSUPPORTED,
                   "%s: PNG layout (colour type %d, %d-bit) did not convert to RGB", d->name, color, depth);
      return FALSE;
    }

  img->pixels = g_try_malloc ((gsize) w * h * 3);
  if (!img->pixels)
    {
      g_set_error (&d->error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE,
                   "%s: not enough memory for %u×%u pixels", d->name, w, h);
      return FALSE;
    }
  d->rows = g_new (guint8 *, h);
  for (png_uint_32 y = 0; y < h; y++)
    d->rows[y] = img->pixels + (gsize) y * w * 3;
  d->in_pixels = TRUE;
  png_read_image (d->png, d->rows);
  d->in_pixels = FALSE;
  if (d->pixel_warning)
    {
      g_set_error (&d->error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_CORRUPT, "%s: damaged PNG image data (%s)",
                   d->name, d->pixel_warning);
      return FALSE;
    }
  /* Through IEND: a file cut anywhere is reported as cut. Chunks after the
   * image data (eXIf may be one) land in the same info. */
  png_read_end (d->png, d->info);

  png_uint_32 exif_len = 0;
  png_bytep exif = NULL;
  if (png_get_eXIf_1 (d->png, d->info, &exif_len, &exif) && exif)
    dcr_exif_parse (exif, exif_len, &img->exif);
  return TRUE;
}

static gboolean
decode_png (Decode *d)
{
  d->format = "PNG";
  d->png = png_create_read_struct (PNG_LIBPNG_VER_STRING, d, png_error_cb, png_warning_cb);
  if (d->png)
    d->info = png_create_info_struct (d->png);
  if (!d->png || !d->info)
    {
      g_strlcpy (d->msg, "libpng could not start (out of memory?)", sizeof d->msg);
      png_destroy_read_struct (&d->png, NULL, NULL);
      return FALSE;
    }
  gboolean ok = png_decode (d);
  png_destroy_read_struct (&d->png, &d->info, NULL);
  return ok;
}

/* ---- JPEG ---- */

static void
jpeg_error_exit_cb (j_common_ptr cinfo)
{
  Decode *d = cinfo->client_data;
  if (!d->msg[0])
    {
      cinfo->err->format_message (cinfo, d->msg);
      d->jpeg_code = cinfo->err->msg_code;
    }
  longjmp (d->jmp, 1);
}

static void
jpeg_emit_message_cb (j_common_ptr cinfo, int level)
{
  if (level >= 0)
    return; /* trace output */
  Decode *d = cinfo->client_data;
  char msg[JMSG_LENGTH_MAX];
  int code = cinfo->err->msg_code;
  cinfo->err->format_message (cinfo, msg);
  switch (code)
    {
    case JWRN_EXTRANEOUS_DATA: /* padding between markers: common, harmless */
    case JWRN_ADOBE_XFORM:
    case JWRN_JFIF_MAJOR:
    case JWRN_BOGUS_ICC:
      note_warning (&d->warning, msg);
      return;
    case JWRN_JPEG_EOF:
      /* libjpeg would pad the rest of the image with grey. */
      d->truncated = TRUE;
      longjmp (d->jmp, 1);
    default:
      /* Corrupt entropy data, bad progression…: the pixels would be wrong. */
      g_strlcpy (d->msg, msg, sizeof d->msg);
      d->jpeg_code = code;
      longjmp (d->jmp, 1);
    }
}

static void
jpeg_progress_cb (j_common_ptr cinfo)
{
  Decode *d = cinfo->client_data;
  if (!cinfo->is_decompressor)
    return;
  if (((j_decompress_ptr) cinfo)->input_scan_number > JPEG_MAX_SCANS)
    {
      g_snprintf (d->msg, sizeof d->msg, "more than %d progressive scans", JPEG_MAX_SCANS);
      longjmp (d->jmp, 1);
    }
}

static guint8
mul255 (unsigned a, unsigned b)
{
  return (guint8) ((a * b + 127) / 255);
}

static gboolean
jpeg_decode (Decode *d)
{
  if (setjmp (d->jmp))
    return FALSE;
  struct jpeg_decompress_struct *ci = &d->cinfo;
  ci->err = jpeg_std_error (&d->jerr);
  d->jerr.error_exit = jpeg_error_exit_cb;
  d->jerr.emit_message = jpeg_emit_message_cb;
  jpeg_create_decompress (ci);
  ci->client_data = d;
  d->cinfo_created = TRUE;
  d->progress.progress_monitor = jpeg_progress_cb;
  ci->progress = &d->progress;

  jpeg_mem_src (ci, d->data, (unsigned long) d->len);
  jpeg_save_markers (ci, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header (ci, TRUE);
  if (!check_size (d, ci->image_width, ci->image_height))
    return FALSE;

  DcrImage *img = d->img = g_new0 (DcrImage, 1);
  img->format = DCR_IMAGE_FORMAT_JPEG;
  img->format_name = "JPEG";
  img->width = img->stored_width = ci->image_width;
  img->height = img->stored_height = ci->image_height;
  img->bit_depth = (guint8) ci->data_precision;
  img->progressive = ci->progressive_mode;
  img->orientation = 1;
  gboolean cmyk = FALSE;
  switch (ci->jpeg_color_space)
    {
    case JCS_GRAYSCALE: img->color = DCR_IMAGE_COLOR_GRAY; break;
    case JCS_YCbCr: img->color = DCR_IMAGE_COLOR_YCBCR; break;
    case JCS_RGB: img->color = DCR_IMAGE_COLOR_RGB; break;
    case JCS_CMYK: img->color = DCR_IMAGE_COLOR_CMYK; cmyk = TRUE; break;
    case JCS_YCCK: img->color = DCR_IMAGE_COLOR_YCCK; cmyk = TRUE; break;
    default:
      g_set_error (&d->error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_UNSUPPORTED,
                   "%s: JPEG with %d colour components in an unknown colour space", d->name,
                   ci->num_components);
      return FALSE;
    }
  /* YCCK comes out of libjpeg as CMYK; both are converted below. */
  ci->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;

  for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next)
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp (m->data, "Exif\0\0", 6) == 0)
      {
        dcr_exif_parse (m->data, m->data_length, &img->exif);
        break;
      }

  jpeg_start_decompress (ci);
  guint w = ci->output_width, h = ci->output_height;
  if (w != img->width || h != img->height || ci->output_components != (cmyk ? 4 : 3))
    {
      g_set_error (&d->error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_UNSUPPORTED,
                   "%s: JPEG decoder produced an unexpected layout", d->name);
      return FALSE;
    }
  img->pixels = g_try_malloc ((gsize) w * h * 3);
  if (!img->pixels)
    {
      g_set_error (&d->error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE,
                   "%s: not enough memory for %u×%u pixels", d->name, w, h);
      return FALSE;
    }
  if (cmyk)
    d->row = g_malloc ((gsize) w * 4);
  /* Adobe writes CMYK (and YCCK) inverted: 0 means full ink. */
  gboolean inverted = ci->saw_Adobe_marker;
  while (ci->output_scanline < h)
    {
      guint y = ci->output_scanline;
      guint8 *dst = img->pixels + (gsize) y * w * 3;
      JSAMPROW r = cmyk ? d->row : dst;
      if (jpeg_read_scanlines (ci, &r, 1) != 1)
        {
          g_strlcpy (d->msg, "decoder returned no scanline", sizeof d->msg);
          return FALSE;
        }
      if (cmyk)
        for (guint x = 0; x < w; x++)
          {
            const guint8 *s = d->row + 4 * x;
            unsigned c = s[0], m = s[1], yy = s[2], k = s[3];
            if (!inverted)
              c = 255 - c, m = 255 - m, yy = 255 - yy, k = 255 - k;
            dst[3 * x] = mul255 (c, k);
            dst[3 * x + 1] = mul255 (m, k);
            dst[3 * x + 2] = mul255 (yy, k);
          }
    }
  /* Reads to EOI: the remaining scans of a progressive file, and a cut end. */
  jpeg_finish_decompress (ci);
  return TRUE;
}

static gboolean
decode_jpeg (Decode *d)
{
  d->format = "JPEG";
  gboolean ok = jpeg_decode (d);
  if (d->cinfo_created)
    jpeg_destroy_decompress (&d->cinfo);
  return ok;
}

/* ---- orientation ---- */

/* Rotates/mirrors into display orientation (EXIF 2–8). For each display pixel
 * (dx, dy) the stored pixel it shows, on a W×H stored image:
 * 2 (W-1-dx, dy) 3 (W-1-dx, H-1-dy) 4 (dx, H-1-dy) 5 (dy, dx)
 * 6 (dy, H-1-dx) 7 (W-1-dy, H-1-dx) 8 (W-1-dy, dx). */
static void
apply_orientation (DcrImage *img, guint16 o)
{
  if (o < 2 || o > 8)
    return;
  guint32 W = img->stored_width, H = img->stored_height;
  gboolean swap = o >= 5;
  guint32 dw = swap ? H : W, dh = swap ? W : H;
  guint8 *out = g_malloc ((gsize) W * H * 3);
  for (guint32 dy = 0; dy < dh; dy++)
    for (guint32 dx = 0; dx < dw; dx++)
      {
        guint32 sx, sy;
        switch (o)
          {
          case 2: sx = W - 1 - dx; sy = dy; break;
          case 3: sx = W - 1 - dx; sy = H - 1 - dy; break;
          case 4: sx = dx; sy = H - 1 - dy; break;
          case 5: sx = dy; sy = dx; break;
          case 6: sx = dy; sy = H - 1 - dx; break;
          case 7: sx = W - 1 - dy; sy = H - 1 - dx; break;
          default: sx = W - 1 - dy; sy = dx; break;
          }
        memcpy (out + ((gsize) dy * dw + dx) * 3, img->pixels + ((gsize) sy * W + sx) * 3, 3);
      }
  g_free (img->pixels);
  img->pixels = out;
  img->width = dw;
  img->height = dh;
  img->orientation = o;
}

/* ---- entry points ---- */

static gboolean
is_prefix_of (const guint8 *data, gsize len, const guint8 *sig, gsize siglen)
{
  return len < siglen && memcmp (data, sig, len) == 0;
}

static void
unknown_format (const char *name, const guint8 *p, gsize len, GError **error)
{
  const char *what = NULL;
  if (len >= 6 && (memcmp (p, "GIF87a", 6) == 0 || memcmp (p, "GIF89a", 6) == 0))
    what = "a GIF image";
  else if (len >= 12 && memcmp (p, "RIFF", 4) == 0 && memcmp (p + 8, "WEBP", 4) == 0)
    what = "a WebP image";
  else if (len >= 2 && memcmp (p, "BM", 2) == 0)
    what = "a BMP image";
  else if (len >= 4 && (memcmp (p, "II*\0", 4) == 0 || memcmp (p, "MM\0*", 4) == 0))
    what = "a TIFF (or camera raw) image";
  else if (len >= 12 && memcmp (p + 4, "ftyp", 4) == 0)
    what = "an ISO media file (HEIF/AVIF/MP4)";
  if (what)
    {
      g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_UNKNOWN_FORMAT,
                   "%s: %s; only PNG and JPEG are supported (convert it losslessly to PNG first)", name, what);
      return;
    }
  GString *hex = g_string_new (NULL);
  for (gsize i = 0; i < MIN (len, 4); i++)
    g_string_append_printf (hex, i ? " %02x" : "%02x", p[i]);
  g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_UNKNOWN_FORMAT,
               "%s: not a PNG or JPEG image (it starts with bytes %s)", name, hex->str);
  g_string_free (hex, TRUE);
}

gboolean
dcr_image_bytes_are_jpeg (GBytes *bytes)
{
  gsize len;
  const guint8 *p = g_bytes_get_data (bytes, &len);
  return len >= sizeof jpeg_signature && memcmp (p, jpeg_signature, sizeof jpeg_signature) == 0;
}

DcrImage *
dcr_image_load_from_bytes (GBytes *bytes, const char *name, const DcrImageLimits *limits, GError **error)
{
  gsize len;
  const guint8 *p = g_bytes_get_data (bytes, &len);
  Decode d;
  memset (&d, 0, sizeof d);
  d.name = name ? name : "(memory)";
  d.data = p;
  d.len = len;
  resolve_limits (limits, &d.limits);
  char sz[32], lim[32];

  if (len == 0)
    {
      g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_EMPTY, "%s: the file is empty", d.name);
      return NULL;
    }
  if (len > d.limits.max_file_bytes)
    {
      g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE,
                   "%s: %s is over the limit of %s for an image file", d.name,
                   dcr_human_size (len, sz, sizeof sz), dcr_human_size (d.limits.max_file_bytes, lim, sizeof lim));
      return NULL;
    }
  gboolean ok;
  if (len >= sizeof png_signature && memcmp (p, png_signature, sizeof png_signature) == 0)
    ok = decode_png (&d);
  else if (dcr_image_bytes_are_jpeg (bytes))
    ok = decode_jpeg (&d);
  else if (is_prefix_of (p, len, png_signature, sizeof png_signature)
           || is_prefix_of (p, len, jpeg_signature, sizeof jpeg_signature))
    {
      g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TRUNCATED, "%s: %s data ends after %s (truncated file?)",
                   d.name, p[0] == 0x89 ? "PNG" : "JPEG", dcr_human_size (len, sz, sizeof sz));
      return NULL;
    }
  else
    {
      unknown_format (d.name, p, len, error);
      return NULL;
    }

  g_free (d.rows);
  g_free (d.row);
  g_free (d.pixel_warning);
  if (!ok)
    {
      dcr_image_free (d.img);
      g_free (d.warning);
      set_decode_error (&d, error);
      return NULL;
    }
  DcrImage *img = d.img;
  img->warning = d.warning;
  apply_orientation (img, img->exif.orientation);
  return img;
}

/* Reads the whole file through a read-only descriptor. O_NOATIME where the
 * kernel allows it, so looking at evidence does not even touch its atime. */
static GBytes *
read_file (const char *path, const char *name, guint64 max_bytes, GError **error)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM)
    fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_IO, "%s: cannot open: %s", name, g_strerror (e));
      return NULL;
    }
  struct stat st;
  if (fstat (fd, &st) == 0 && S_ISDIR (st.st_mode))
    {
      close (fd);
      g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_IO, "%s: is a directory", name);
      return NULL;
    }
  char sz[32], lim[32];
  if (S_ISREG (st.st_mode) && (guint64) st.st_size > max_bytes)
    {
      close (fd);
      g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE, "%s: %s is over the limit of %s for an image file",
                   name, dcr_human_size ((guint64) st.st_size, sz, sizeof sz),
                   dcr_human_size (max_bytes, lim, sizeof lim));
      return NULL;
    }
  GByteArray *buf = g_byte_array_sized_new (S_ISREG (st.st_mode) ? (guint) MIN ((guint64) st.st_size + 1, G_MAXUINT) : 65536);
  guint8 chunk[65536];
  for (;;)
    {
      ssize_t n = read (fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int e = errno;
          close (fd);
          g_byte_array_unref (buf);
          g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_IO, "%s: cannot read: %s", name, g_strerror (e));
          return NULL;
        }
      if (n == 0)
        break;
      if ((guint64) buf->len + (guint64) n > max_bytes)
        {
          close (fd);
          g_byte_array_unref (buf);
          g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_TOO_LARGE, "%s: more than %s, the limit for an image file",
                       name, dcr_human_size (max_bytes, lim, sizeof lim));
          return NULL;
        }
      g_byte_array_append (buf, chunk, (guint) n);
    }
  close (fd);
  return g_byte_array_free_to_bytes (buf);
}

DcrImage *
dcr_image_load (const char *path, const DcrImageLimits *limits, GError **error)
{
  DcrImageLimits lim;
  resolve_limits (limits, &lim);
  g_autofree char *name = g_filename_display_name (path);
  g_autoptr(GBytes) bytes = read_file (path, name, lim.max_file_bytes, error);
  if (!bytes)
    return NULL;
  return dcr_image_load_from_bytes (bytes, name, &lim, error);
}

/* ---- PNG writer ---- */

typedef struct {
  const DcrImage *img;
  FILE *f;
  png_structp png;
  png_infop info;
  guint8 **rows;
  GByteArray *mem; /* when set, the PNG goes here instead of to f */
  char msg[256];
} Encode;

static void
png_write_error_cb (png_structp png, png_const_charp msg)
{
  Encode *e = png_get_error_ptr (png);
  if (!e->msg[0])
    g_strlcpy (e->msg, msg, sizeof e->msg);
  png_longjmp (png, 1);
}

static void
png_write_warning_cb (png_structp png, png_const_charp msg)
{
}

static void
png_write_mem_cb (png_structp png, png_bytep data, png_size_t len)
{
  Encode *e = png_get_io_ptr (png);
  g_byte_array_append (e->mem, data, len);
}

static void
png_flush_mem_cb (png_structp png)
{
}

static gboolean
png_encode (Encode *e)
{
  if (setjmp (png_jmpbuf (e->png)))
    return FALSE;
  if (e->mem)
    png_set_write_fn (e->png, e, png_write_mem_cb, png_flush_mem_cb);
  else
    png_init_io (e->png, e->f);
  png_set_IHDR (e->png, e->info, e->img->width, e->img->height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info (e->png, e->info);
  png_write_image (e->png, e->rows);
  png_write_end (e->png, e->info);
  return TRUE;
}

gboolean
dcr_image_save_png (const DcrImage *img, const char *path, GError **error)
{
  g_return_val_if_fail (img && img->pixels && img->width > 0 && img->height > 0, FALSE);
  g_autofree char *name = g_filename_display_name (path);
  g_autofree char *tmp = g_strdup_printf ("%s.XXXXXX", path);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0)
    {
      int err = errno;
      g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_IO, "%s: cannot create a temporary file next to it: %s",
                   name, g_strerror (err));
      return FALSE;
    }
  Encode e;
  memset (&e, 0, sizeof e);
  e.img = img;
  e.f = fdopen (fd, "wb");
  if (!e.f)
    close (fd);
  else
    {
      e.png = png_create_write_struct (PNG_LIBPNG_VER_STRING, &e, png_write_error_cb, png_write_warning_cb);
      if (e.png)
        e.info = png_create_info_struct (e.png);
    }
  gboolean ok = e.png && e.info;
  if (ok)
    {
      e.rows = g_new (guint8 *, img->height);
      for (guint32 y = 0; y < img->height; y++)
        e.rows[y] = img->pixels + (gsize) y * img->width * 3;
      ok = png_encode (&e);
    }
  if (e.png)
    png_destroy_write_struct (&e.png, &e.info);
  g_free (e.rows);
  int saved = 0;
  if (e.f)
    {
      if (ok && (fflush (e.f) != 0 || fsync (fileno (e.f)) != 0))
        ok = FALSE, saved = errno;
      if (fclose (e.f) != 0 && ok)
        ok = FALSE, saved = errno;
    }
  if (ok && g_rename (tmp, path) != 0)
    ok = FALSE, saved = errno;
  if (!ok)
    {
      g_unlink (tmp);
      g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_IO, "%s: cannot write the PNG: %s", name,
                   e.msg[0] ? e.msg : g_strerror (saved ? saved : EIO));
      return FALSE;
    }
  return TRUE;
}

GBytes *
dcr_image_encode_png (const DcrImage *img, GError **error)
{
  g_return_val_if_fail (img && img->pixels && img->width > 0 && img->height > 0, NULL);
  Encode e;
  memset (&e, 0, sizeof e);
  e.img = img;
  e.mem = g_byte_array_new ();
  e.png = png_create_write_struct (PNG_LIBPNG_VER_STRING, &e, png_write_error_cb, png_write_warning_cb);
  if (e.png)
    e.info = png_create_info_struct (e.png);
  gboolean ok = e.png && e.info;
  if (ok)
    {
      e.rows = g_new (guint8 *, img->height);
      for (guint32 y = 0; y < img->height; y++)
        e.rows[y] = img->pixels + (gsize) y * img->width * 3;
      ok = png_encode (&e);
    }
  if (e.png)
    png_destroy_write_struct (&e.png, &e.info);
  g_free (e.rows);
  if (!ok)
    {
      g_byte_array_unref (e.mem);
      g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_IO, "cannot encode a %u × %u PNG: %s", img->width,
                   img->height, e.msg[0] ? e.msg : "libpng could not start (out of memory?)");
      return NULL;
    }
  return g_byte_array_free_to_bytes (e.mem);
}

/* ---- JPEG writer ---- */

typedef struct {
  struct jpeg_error_mgr jerr;
  jmp_buf jmp;
  char msg[JMSG_LENGTH_MAX];
} JpegEncodeError;

static void
jpeg_encode_error_exit_cb (j_common_ptr cinfo)
{
  JpegEncodeError *je = (JpegEncodeError *) cinfo->err;
  cinfo->err->format_message (cinfo, je->msg);
  longjmp (je->jmp, 1);
}

static void
jpeg_encode_emit_message_cb (j_common_ptr cinfo, int level)
{
}

GBytes *
dcr_image_encode_jpeg (const DcrImage *img, int quality, GError **error)
{
  g_return_val_if_fail (img && img->pixels && img->width > 0 && img->height > 0, NULL);
  g_return_val_if_fail (quality >= 1 && quality <= 100, NULL);
  /* ci, je and out live in memory (their addresses are taken), so they are
   * valid after the longjmp. */
  struct jpeg_compress_struct ci;
  JpegEncodeError je;
  unsigned char *out = NULL;
  unsigned long size = 0;
  memset (&je, 0, sizeof je);
  ci.err = jpeg_std_error (&je.jerr);
  je.jerr.error_exit = jpeg_encode_error_exit_cb;
  je.jerr.emit_message = jpeg_encode_emit_message_cb;
  if (setjmp (je.jmp))
    {
      jpeg_destroy_compress (&ci);
      free (out);
      g_set_error (error, DCR_IMAGE_ERROR, DCR_IMAGE_ERROR_IO, "cannot encode a %u × %u JPEG at quality %d: %s",
                   img->width, img->height, quality, je.msg);
      return NULL;
    }
  jpeg_create_compress (&ci);
  jpeg_mem_dest (&ci, &out, &size);
  ci.image_width = img->width;
  ci.image_height = img->height;
  ci.input_components = 3;
  ci.in_color_space = JCS_RGB;
  jpeg_set_defaults (&ci);
  /* libjpeg's defaults (4:2:0, islow DCT) are what most software writes:
   * the re-encoding a shared image would meet. */
  jpeg_set_quality (&ci, quality, TRUE);
  jpeg_start_compress (&ci, TRUE);
  while (ci.next_scanline < ci.image_height)
    {
      JSAMPROW row = img->pixels + (gsize) ci.next_scanline * img->width * 3;
      jpeg_write_scanlines (&ci, &row, 1);
    }
  jpeg_finish_compress (&ci);
  jpeg_destroy_compress (&ci);
  GBytes *bytes = g_bytes_new (out, size);
  free (out);
  return bytes;
}

/* ---- resize ---- */

DcrImage *
dcr_image_resize_half (const DcrImage *img)
{
  g_return_val_if_fail (img && img->pixels && img->width > 0 && img->height > 0, NULL);
  guint32 w = MAX (img->width / 2, 1), h = MAX (img->height / 2, 1);
  DcrImage *out = dcr_image_new (w, h);
  gsize stride = (gsize) img->width * 3;
  for (guint32 y = 0; y < h; y++)
    {
      const guint8 *r0 = img->pixels + (gsize) MIN (2 * y, img->height - 1) * stride;
      const guint8 *r1 = img->pixels + (gsize) MIN (2 * y + 1, img->height - 1) * stride;
      guint8 *o = out->pixels + (gsize) y * w * 3;
      for (guint32 x = 0; x < w; x++)
        {
          gsize a = (gsize) MIN (2 * x, img->width - 1) * 3, b = (gsize) MIN (2 * x + 1, img->width - 1) * 3;
          for (int c = 0; c < 3; c++)
            o[x * 3 + c] = (guint8) ((r0[a + c] + r0[b + c] + r1[a + c] + r1[b + c] + 2) / 4);
        }
    }
  return out;
}

GBytes *
dcr_image_thumbnail_png (const DcrImage *img, guint max_side, GError **error)
{
  g_return_val_if_fail (max_side > 0, NULL);
  g_autoptr (DcrImage) small = NULL;
  const DcrImage *cur = img;
  while (MAX (cur->width, cur->height) > max_side)
    {
      DcrImage *half = dcr_image_resize_half (cur);
      g_clear_pointer (&small, dcr_image_free);
      small = half;
      cur = small;
    }
  return dcr_image_encode_png (cur, error);
}
