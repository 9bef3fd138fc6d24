/* dcr-file-facts.h — the metadata an analyst reads about an evidence file
 * (camera, date, software, orientation, GPS, stored dimensions), read
 * through gexiv2 for display only; decoding keeps using libdcr's reader. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  DCR_GPS_UNKNOWN, /* no metadata could be read at all */
  DCR_GPS_ABSENT,
  DCR_GPS_PRESENT,
} DcrGpsPresence;

typedef struct {
  gboolean has_metadata; /* Exiv2 read EXIF, XMP or IPTC from the file */
  char *make, *model;    /* NULL when absent, as every string here */
  char *date_taken;      /* DateTimeOriginal, else DateTime, as stored */
  char *software;        /* EXIF Software, else XMP CreatorTool */
  char *orientation;     /* "6 — displayed rotated 90° clockwise" */
  guint orientation_value; /* the tag's value when 1–8, else 0 */
  char *dimensions;      /* the EXIF PixelX/YDimension, "4000 × 3000" */
  DcrGpsPresence gps;
} DcrFileFacts;

/* Reads `path` read-only. A file Exiv2 cannot parse (or one without any
 * metadata) gives facts with has_metadata FALSE, never an error: the
 * decoder, not this, decides whether the file is an image. Safe to call
 * from any thread. */
DcrFileFacts *dcr_file_facts_read (const char *path);
void dcr_file_facts_free (DcrFileFacts *facts);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrFileFacts, dcr_file_facts_free)

/* "Yes", "No" or NULL (unknown), for display. */
const char *dcr_gps_presence_text (DcrGpsPresence gps);

G_END_DECLS
