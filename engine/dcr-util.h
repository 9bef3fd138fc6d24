/* dcr-util.h — small helpers the engine's modules share that belong to no
 * one of them (sizes written for people in error messages). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* n bytes as "N bytes", "N KiB" or "N.N MiB" into buf (len bytes); returns buf. */
const char *dcr_human_size (guint64 n, char *buf, gsize len);

G_END_DECLS
