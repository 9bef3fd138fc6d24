/* dcr-util.h — small helpers the engine's modules share that belong to no
 * one of them (sizes written for people in error messages). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* n bytes as "N bytes", "N KiB" or "N.N MiB" into buf (len bytes); returns buf. */
const char *dcr_human_size (guint64 n, char *buf, gsize len);

/* Fisher–Yates from the end, j = g_rand_int_range (rng, 0, i) for i = n … 2
 * (the order the trainers' seeded runs depend on); n < 2³¹. */
void dcr_shuffle_indices (gsize *order, gsize n, GRand *rng);

G_END_DECLS
