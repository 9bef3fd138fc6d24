/* dcr-half.c — see the header. Bit manipulation rather than _Float16 so
 * that any C11 compiler and any x86-64 (no F16C) gives the same bits. */
#include "dcr-half.h"

#include <string.h>

guint16
dcr_half_from_float (float f)
{
  guint32 x;
  memcpy (&x, &f, 4);
  guint32 sign = (x >> 16) & 0x8000;
  guint32 exp = (x >> 23) & 0xff;
  guint32 man = x & 0x7fffff;
  if (exp == 0xff) /* inf or NaN (keep NaN quiet and non-zero) */
    return (guint16) (sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
  gint32 e = (gint32) exp - 127 + 15;
  if (e >= 31)
    return (guint16) (sign | 0x7c00); /* overflow → inf */
  if (e <= 0)
    {
      if (e < -10)
        return (guint16) sign; /* underflow → ±0 */
      man |= 0x800000;
      guint32 shift = (guint32) (14 - e);
      guint32 half = man >> shift;
      guint32 rem = man & ((1u << shift) - 1);
      guint32 mid = 1u << (shift - 1);
      if (rem > mid || (rem == mid && (half & 1)))
        half++;
      return (guint16) (sign | half);
    }
  guint32 half = ((guint32) e << 10) | (man >> 13);
  guint32 rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
    half++; /* may carry into the exponent, up to inf: correct */
  return (guint16) (sign | half);
}

float
dcr_half_to_float (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exp = (h >> 10) & 0x1f;
  guint32 man = h & 0x3ff;
  guint32 x;
  if (exp == 0)
    {
      if (man == 0)
        x = sign;
      else
        {
          /* subnormal: normalise */
          int e = -1;
          do
            {
              e++;
              man <<= 1;
            }
          while (!(man & 0x400));
          x = sign | ((guint32) (127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    }
  else if (exp == 31)
    x = sign | 0x7f800000 | (man << 13);
  else
    x = sign | ((exp - 15 + 127) << 23) | (man << 13);
  float f;
  memcpy (&f, &x, 4);
  return f;
}

void
dcr_half_from_floats (guint16 *dst, const float *src, gsize n)
{
  for (gsize i = 0; i < n; i++)
    dst[i] = dcr_half_from_float (src[i]);
}

void
dcr_half_to_floats (float *dst, const guint16 *src, gsize n)
{
  for (gsize i = 0; i < n; i++)
    dst[i] = dcr_half_to_float (src[i]);
}
