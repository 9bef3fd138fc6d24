/* dcr-range-alloc.h — first-fit allocator of byte ranges inside one block,
 * with coalescing on free. Pure bookkeeping (no Vulkan), so the pool logic
 * is tested on its own under valgrind. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  guint64 size;
  GArray *free;      /* DcrRange sorted by offset, never adjacent */
  guint64 used;      /* bytes handed out */
  guint64 n_live;
} DcrRangeAlloc;

typedef struct {
  guint64 offset;
  guint64 size;
} DcrRange;

void dcr_range_alloc_init (DcrRangeAlloc *ra, guint64 size);
void dcr_range_alloc_clear (DcrRangeAlloc *ra);
/* Returns TRUE and the offset of `size` bytes aligned to `align` (a power of
 * two); FALSE when no free range fits. */
gboolean dcr_range_alloc_take (DcrRangeAlloc *ra, guint64 size, guint64 align, guint64 *offset);
void dcr_range_alloc_give (DcrRangeAlloc *ra, guint64 offset, guint64 size);
gboolean dcr_range_alloc_empty (const DcrRangeAlloc *ra);
/* Checks the invariants (sorted, in bounds, coalesced, totals); for tests. */
gboolean dcr_range_alloc_check (const DcrRangeAlloc *ra);

G_END_DECLS
