/* dcr-file-facts.c — EXIF/XMP facts for the inspect view through gexiv2.
 * Exiv2 opens the file for reading only (ImageFactory::open → FileIo "rb");
 * nothing here ever calls a gexiv2 save function. */
#include "dcr-config.h"
#include "dcr-file-facts.h"

#include <gexiv2/gexiv2.h>
#include <string.h>

/* Longer values are cut: a tag is display text, not a place for payloads. */
#define MAX_TEXT 255

static void
init_once (void)
{
  static gsize done = 0;
  if (g_once_init_enter (&done))
    {
      gexiv2_initialize ();
      /* Exiv2 would print its complaints about damaged files on stderr; the
       * decoder reports those files properly */
      gexiv2_log_set_level (GEXIV2_LOG_LEVEL_MUTE);
      g_once_init_leave (&done, 1);
    }
}

static char *
clean_text (const char *raw)
{
  if (!raw)
    return NULL;
  g_autofree char *valid = g_utf8_make_valid (raw, -1);
  g_strstrip (valid);
  if (!*valid)
    return NULL;
  for (char *p = valid; *p; p++)
    if ((guchar) *p < 0x20)
      *p = ' ';
  if (strlen (valid) > MAX_TEXT)
    {
      const char *end = g_utf8_find_prev_char (valid, valid + MAX_TEXT);
      return g_strdup_printf ("%.*s…", (int) (end - valid), valid);
    }
  return g_steal_pointer (&valid);
}

static char *
tag_text (GExiv2Metadata *md, const char *tag)
{
  if (!gexiv2_metadata_try_has_tag (md, tag, NULL))
    return NULL;
  g_autofree char *raw = gexiv2_metadata_try_get_tag_string (md, tag, NULL);
  return clean_text (raw);
}

static char *
first_tag_text (GExiv2Metadata *md, const char *const *tags)
{
  for (; *tags; tags++)
    {
      char *s = tag_text (md, *tags);
      if (s)
        return s;
    }
  return NULL;
}

static char *
orientation_text (GExiv2Metadata *md, guint *value)
{
  static const char *const names[] = {
    NULL,
    "as stored",
    "mirrored left to right",
    "rotated 180°",
    "mirrored top to bottom",
    "mirrored and rotated 90° counter-clockwise",
    "rotated 90° clockwise",
    "mirrored and rotated 90° clockwise",
    "rotated 90° counter-clockwise",
  };
  const char *tag = "Exif.Image.Orientation";
  if (!gexiv2_metadata_try_has_tag (md, tag, NULL))
    return NULL;
  g_autoptr (GError) err = NULL;
  glong v = gexiv2_metadata_try_get_tag_long (md, tag, &err);
  if (err)
    return NULL;
  if (v < 1 || v > 8)
    return g_strdup_printf ("%ld — not a valid value (ignored)", v);
  *value = (guint) v;
  return g_strdup_printf ("%ld — displayed %s", v, names[v]);
}

static char *
dimensions_text (GExiv2Metadata *md)
{
  const char *wt = "Exif.Photo.PixelXDimension", *ht = "Exif.Photo.PixelYDimension";
  if (!gexiv2_metadata_try_has_tag (md, wt, NULL) || !gexiv2_metadata_try_has_tag (md, ht, NULL))
    return NULL;
  g_autoptr (GError) err = NULL;
  glong w = gexiv2_metadata_try_get_tag_long (md, wt, &err);
  glong h = err ? 0 : gexiv2_metadata_try_get_tag_long (md, ht, &err);
  if (err || w <= 0 || h <= 0)
    return NULL;
  return g_strdup_printf ("%ld × %ld", w, h);
}

static gboolean
has_location (GExiv2Metadata *md)
{
  static const char *const tags[] = {
    "Exif.GPSInfo.GPSLatitude", "Exif.GPSInfo.GPSLongitude", "Xmp.exif.GPSLatitude", "Xmp.exif.GPSLongitude",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (tags); i++)
    if (gexiv2_metadata_try_has_tag (md, tags[i], NULL))
      return TRUE;
  return FALSE;
}

DcrFileFacts *
dcr_file_facts_read (const char *path)
{
  g_return_val_if_fail (path, NULL);
  init_once ();
  DcrFileFacts *f = g_new0 (DcrFileFacts, 1);
  f->gps = DCR_GPS_UNKNOWN;
  g_autoptr (GExiv2Metadata) md = gexiv2_metadata_new ();
  if (!gexiv2_metadata_open_path (md, path, NULL))
    return f;
  f->has_metadata = gexiv2_metadata_has_exif (md) || gexiv2_metadata_has_xmp (md) || gexiv2_metadata_has_iptc (md);
  static const char *const dates[] = { "Exif.Photo.DateTimeOriginal", "Exif.Image.DateTime",
                                       "Xmp.exif.DateTimeOriginal", "Xmp.xmp.CreateDate", NULL };
  static const char *const software[] = { "Exif.Image.Software", "Xmp.xmp.CreatorTool", NULL };
  f->make = tag_text (md, "Exif.Image.Make");
  f->model = tag_text (md, "Exif.Image.Model");
  f->date_taken = first_tag_text (md, dates);
  f->software = first_tag_text (md, software);
  f->orientation = orientation_text (md, &f->orientation_value);
  f->dimensions = dimensions_text (md);
  f->gps = has_location (md) ? DCR_GPS_PRESENT : DCR_GPS_ABSENT;
  return f;
}

void
dcr_file_facts_free (DcrFileFacts *f)
{
  if (!f)
    return;
  g_free (f->make);
  g_free (f->model);
  g_free (f->date_taken);
  g_free (f->software);
  g_free (f->orientation);
  g_free (f->dimensions);
  g_free (f);
}

const char *
dcr_gps_presence_text (DcrGpsPresence gps)
{
  switch (gps)
    {
    case DCR_GPS_PRESENT:
      return "Yes — the file records where it was taken";
    case DCR_GPS_ABSENT:
      return "No";
    default:
      return NULL;
    }
}
