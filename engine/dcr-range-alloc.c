/* dcr-range-alloc.c — see the header. Free lists stay short (tensors are
 * freed in bulk at the end of a run), so a sorted array is enough. */
#include "dcr-range-alloc.h"

void
dcr_range_alloc_init (DcrRangeAlloc *ra, guint64 size)
{
  ra->size = size;
  ra->free = g_array_new (FALSE, FALSE, sizeof (DcrRange));
  DcrRange all = { 0, size };
  if (size > 0)
    g_array_append_val (ra->free, all);
  ra->used = 0;
  ra->n_live = 0;
}

void
dcr_range_alloc_clear (DcrRangeAlloc *ra)
{
  g_clear_pointer (&ra->free, g_array_unref);
}

gboolean
dcr_range_alloc_take (DcrRangeAlloc *ra, guint64 size, guint64 align, guint64 *offset)
{
  g_return_val_if_fail (align > 0 && (align & (align - 1)) == 0, FALSE);
  if (size == 0)
    size = 1;
  for (guint i = 0; i < ra->free->len; i++)
    {
      DcrRange *r = &g_array_index (ra->free, DcrRange, i);
      guint64 start = (r->offset + align - 1) & ~(align - 1);
      if (start < r->offset || start - r->offset > r->size || r->size - (start - r->offset) < size)
        continue;
      guint64 head = start - r->offset;
      guint64 tail = r->size - head - size;
      guint64 tail_off = start + size;
      if (head > 0)
        {
          r->size = head;
          if (tail > 0)
            {
              DcrRange t = { tail_off, tail };
              g_array_insert_val (ra->free, i + 1, t);
            }
        }
      else if (tail > 0)
        {
          r->offset = tail_off;
          r->size = tail;
        }
      else
        g_array_remove_index (ra->free, i);
      ra->used += size;
      ra->n_live++;
      *offset = start;
      return TRUE;
    }
  return FALSE;
}

void
dcr_range_alloc_give (DcrRangeAlloc *ra, guint64 offset, guint64 size)
{
  if (size == 0)
    size = 1;
  g_return_if_fail (offset + size <= ra->size);
  guint i = 0;
  while (i < ra->free->len && g_array_index (ra->free, DcrRange, i).offset < offset)
    i++;
  DcrRange *prev = i > 0 ? &g_array_index (ra->free, DcrRange, i - 1) : NULL;
  DcrRange *next = i < ra->free->len ? &g_array_index (ra->free, DcrRange, i) : NULL;
  g_return_if_fail (!prev || prev->offset + prev->size <= offset);
  g_return_if_fail (!next || offset + size <= next->offset);

  gboolean join_prev = prev && prev->offset + prev->size == offset;
  gboolean join_next = next && offset + size == next->offset;
  if (join_prev && join_next)
    {
      prev->size += size + next->size;
      g_array_remove_index (ra->free, i);
    }
  else if (join_prev)
    prev->size += size;
  else if (join_next)
    {
      next->offset = offset;
      next->size += size;
    }
  else
    {
      DcrRange r = { offset, size };
      g_array_insert_val (ra->free, i, r);
    }
  ra->used -= size;
  ra->n_live--;
}

gboolean
dcr_range_alloc_empty (const DcrRangeAlloc *ra)
{
  return ra->n_live == 0;
}

gboolean
dcr_range_alloc_check (const DcrRangeAlloc *ra)
{
  guint64 free_bytes = 0, end = 0;
  for (guint i = 0; i < ra->free->len; i++)
    {
      const DcrRange *r = &g_array_index (ra->free, DcrRange, i);
      if (r->size == 0 || r->offset + r->size > ra->size)
        return FALSE;
      if (i > 0 && r->offset <= end) /* overlapping or adjacent (not coalesced) */
        return FALSE;
      end = r->offset + r->size;
      free_bytes += r->size;
    }
  if (free_bytes + ra->used > ra->size)
    return FALSE;
  /* with nothing live, everything must be one free range again */
  if (ra->n_live == 0 && ra->size > 0 && (ra->free->len != 1 || free_bytes != ra->size))
    return FALSE;
  return TRUE;
}
