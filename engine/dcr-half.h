/* dcr-half.h — IEEE 754 binary16 <-> binary32 on the host (round to nearest
 * even, subnormals, inf and NaN kept), for fp16 tensors, banks and weights. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

guint16 dcr_half_from_float (float f);
float dcr_half_to_float (guint16 h);
void dcr_half_from_floats (guint16 *dst, const float *src, gsize n);
void dcr_half_to_floats (float *dst, const guint16 *src, gsize n);

G_END_DECLS
