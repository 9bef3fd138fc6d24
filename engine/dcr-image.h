/* dcr-image.h — decodes evidence images (PNG through libpng, JPEG through
 * libjpeg-turbo) into 8-bit RGB with the EXIF orientation applied, and
 * records what the file was. Files are opened read-only; size limits are
 * checked from the header before any pixel memory is allocated. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define DCR_IMAGE_ERROR (dcr_image_error_quark ())
GQuark dcr_image_error_quark (void);

typedef enum {
  DCR_IMAGE_ERROR_IO,             /* cannot open or read the file */
  DCR_IMAGE_ERROR_EMPTY,          /* zero bytes */
  DCR_IMAGE_ERROR_UNKNOWN_FORMAT, /* neither PNG nor JPEG by its first bytes */
  DCR_IMAGE_ERROR_TRUNCATED,      /* the data ends before the image does */
  DCR_IMAGE_ERROR_CORRUPT,        /* damaged or invalid data */
  DCR_IMAGE_ERROR_TOO_LARGE,      /* over a DcrImageLimits limit */
  DCR_IMAGE_ERROR_UNSUPPORTED,    /* valid, but a variant we do not decode (12-bit JPEG…) */
} DcrImageError;

typedef enum {
  DCR_IMAGE_FORMAT_PNG,
  DCR_IMAGE_FORMAT_JPEG,
} DcrImageFormat;

/* Colour model as stored in the file. */
typedef enum {
  DCR_IMAGE_COLOR_GRAY,
  DCR_IMAGE_COLOR_GRAY_ALPHA,
  DCR_IMAGE_COLOR_RGB,   /* PNG truecolour, or a JPEG stored as RGB */
  DCR_IMAGE_COLOR_RGBA,
  DCR_IMAGE_COLOR_PALETTE,
  DCR_IMAGE_COLOR_YCBCR, /* ordinary colour JPEG */
  DCR_IMAGE_COLOR_CMYK,
  DCR_IMAGE_COLOR_YCCK,
} DcrImageColor;

const char *dcr_image_color_name (DcrImageColor color);

typedef struct {
  guint64 max_pixels;     /* width × height; 0 → 100 000 000 */
  guint32 max_side;       /* either dimension; 0 → 16384 */
  guint64 max_file_bytes; /* 0 → 1 GiB; at most 4 GiB − 1 */
} DcrImageLimits;

#define DCR_IMAGE_DEFAULT_MAX_PIXELS 100000000u
#define DCR_IMAGE_DEFAULT_MAX_SIDE 16384u
#define DCR_IMAGE_DEFAULT_MAX_FILE_BYTES (G_GUINT64_CONSTANT (1) << 30)

/* The few EXIF facts the UI shows. Strings are NULL when absent, printable
 * UTF-8 (anything else replaced by '?') and at most 255 bytes. */
typedef struct {
  gboolean present;        /* a readable EXIF (TIFF) block was found */
  guint16 orientation;     /* the tag as stored; 0 when absent or not 1–8 */
  char *make;
  char *model;
  char *software;
  char *date_time_original; /* "YYYY:MM:DD HH:MM:SS" as stored */
} DcrExif;

/* Parses an EXIF block: the TIFF structure, optionally preceded by the
 * "Exif\0\0" of a JPEG APP1 segment. Every offset is bounds-checked; a damaged
 * block yields what could be read (present = FALSE if nothing). Never fails. */
void dcr_exif_parse (const guint8 *data, gsize len, DcrExif *out);
void dcr_exif_clear (DcrExif *exif);

typedef struct {
  guint32 width, height;  /* as displayed: after the EXIF orientation */
  guint8 *pixels;         /* RGB, 8 bits per sample, rows top to bottom, stride width × 3 */

  DcrImageFormat format;
  const char *format_name; /* "PNG" or "JPEG" */
  guint32 stored_width, stored_height; /* as in the file, before orientation */
  guint8 bit_depth;       /* bits per sample in the file (PNG 1–16, JPEG 8) */
  DcrImageColor color;
  gboolean has_alpha;     /* the file carries transparency (an alpha channel or
                           * PNG tRNS); it is dropped, the stored colour kept */
  gboolean interlaced;    /* PNG Adam7 */
  gboolean progressive;   /* JPEG */
  guint16 orientation;    /* the orientation applied, 1–8 (1: none) */
  DcrExif exif;
  char *warning;          /* a tolerated oddity of the file (e.g. "extraneous bytes
                           * before marker"), or NULL */
} DcrImage;

/* A blank (black) RGB image, for tests and thumbnails. */
DcrImage *dcr_image_new (guint32 width, guint32 height);
void dcr_image_free (DcrImage *img);

/* Decodes `path` (opened O_RDONLY, never written). `limits` NULL → defaults.
 * Errors name the file: "photo.jpg: JPEG data ends after 12 KiB (truncated file?)". */
DcrImage *dcr_image_load (const char *path, const DcrImageLimits *limits, GError **error);
/* The same from memory; `name` is used in messages. */
DcrImage *dcr_image_load_from_bytes (GBytes *bytes, const char *name, const DcrImageLimits *limits,
                                     GError **error);

/* Whether file bytes start as a JPEG does (what dcr_image_load_from_bytes
 * would decode as JPEG), without decoding them. */
gboolean dcr_image_bytes_are_jpeg (GBytes *bytes);

/* Writes `img` as an 8-bit RGB PNG through a temporary file renamed over
 * `path`. For thumbnails and test output only — never on evidence paths. */
gboolean dcr_image_save_png (const DcrImage *img, const char *path, GError **error);

/* `img` as an 8-bit RGB PNG in memory (thumbnails, lossless test data). */
GBytes *dcr_image_encode_png (const DcrImage *img, GError **error);
/* `img` as a baseline JPEG in memory at `quality` 1–100 (libjpeg's quality
 * scale, 4:2:0 chroma): the re-encoding a shared image typically meets. */
GBytes *dcr_image_encode_jpeg (const DcrImage *img, int quality, GError **error);
/* Half the size in each dimension (floor, at least 1), each pixel the rounded
 * mean of its 2 × 2 source block; an odd last row/column is dropped.
 * Deterministic and CPU-only. Metadata is not copied. */
DcrImage *dcr_image_resize_half (const DcrImage *img);
/* A PNG thumbnail whose longer side is at most max_side (halving by 2×2
 * means until it fits), for the bank's provenance and the UI. */
GBytes *dcr_image_thumbnail_png (const DcrImage *img, guint max_side, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrImage, dcr_image_free)

G_END_DECLS
