/* test-range-alloc.c — the pool's range allocator: alignment, exhaustion,
 * coalescing, and a random alloc/free soak checked against a shadow map. */
#include "dcr-range-alloc.h"

static void
test_basic (void)
{
  DcrRangeAlloc ra;
  dcr_range_alloc_init (&ra, 1024);
  guint64 a, b, c;
  g_assert_true (dcr_range_alloc_take (&ra, 100, 16, &a));
  g_assert_cmpuint (a, ==, 0);
  g_assert_true (dcr_range_alloc_take (&ra, 10, 256, &b));
  g_assert_cmpuint (b, ==, 256);
  g_assert_true (dcr_range_alloc_check (&ra));
  g_assert_false (dcr_range_alloc_take (&ra, 1024, 16, &c)); /* does not fit */
  g_assert_true (dcr_range_alloc_take (&ra, 112, 16, &c));   /* fills the gap 112..224 */
  g_assert_cmpuint (c, ==, 112);
  dcr_range_alloc_give (&ra, b, 10);
  dcr_range_alloc_give (&ra, a, 100);
  g_assert_true (dcr_range_alloc_check (&ra));
  g_assert_false (dcr_range_alloc_empty (&ra));
  dcr_range_alloc_give (&ra, c, 112);
  g_assert_true (dcr_range_alloc_empty (&ra));
  g_assert_true (dcr_range_alloc_check (&ra)); /* back to one free range */
  g_assert_cmpuint (ra.free->len, ==, 1);
  dcr_range_alloc_clear (&ra);
}

static void
test_exact_fill (void)
{
  DcrRangeAlloc ra;
  dcr_range_alloc_init (&ra, 64);
  guint64 o[4];
  for (int i = 0; i < 4; i++)
    g_assert_true (dcr_range_alloc_take (&ra, 16, 16, &o[i]));
  g_assert_cmpuint (ra.free->len, ==, 0);
  guint64 x;
  g_assert_false (dcr_range_alloc_take (&ra, 1, 1, &x));
  /* free out of order: middle pieces first, then the ends join them */
  dcr_range_alloc_give (&ra, o[1], 16);
  dcr_range_alloc_give (&ra, o[2], 16);
  g_assert_cmpuint (ra.free->len, ==, 1);
  dcr_range_alloc_give (&ra, o[3], 16);
  dcr_range_alloc_give (&ra, o[0], 16);
  g_assert_true (dcr_range_alloc_check (&ra));
  g_assert_cmpuint (ra.free->len, ==, 1);
  dcr_range_alloc_clear (&ra);
}

typedef struct { guint64 off, size; } Live;

static void
test_soak (void)
{
  const guint64 size = 1 << 20;
  DcrRangeAlloc ra;
  dcr_range_alloc_init (&ra, size);
  guint8 *shadow = g_malloc0 (size);
  GArray *live = g_array_new (FALSE, FALSE, sizeof (Live));
  GRand *rng = g_rand_new_with_seed (42);
  for (int step = 0; step < 20000; step++)
    {
      if (live->len == 0 || g_rand_int_range (rng, 0, 100) < 55)
        {
          guint64 n = (guint64) g_rand_int_range (rng, 1, 8192);
          guint64 align = (guint64) 1 << g_rand_int_range (rng, 0, 9);
          guint64 off;
          if (dcr_range_alloc_take (&ra, n, align, &off))
            {
              g_assert_cmpuint (off % align, ==, 0);
              g_assert_cmpuint (off + n, <=, size);
              for (guint64 i = off; i < off + n; i++)
                {
                  g_assert_cmpuint (shadow[i], ==, 0); /* never handed out twice */
                  shadow[i] = 1;
                }
              Live l = { off, n };
              g_array_append_val (live, l);
            }
        }
      else
        {
          guint idx = (guint) g_rand_int_range (rng, 0, (gint32) live->len);
          Live l = g_array_index (live, Live, idx);
          g_array_remove_index_fast (live, idx);
          for (guint64 i = l.off; i < l.off + l.size; i++)
            shadow[i] = 0;
          dcr_range_alloc_give (&ra, l.off, l.size);
        }
      if (step % 997 == 0)
        g_assert_true (dcr_range_alloc_check (&ra));
    }
  while (live->len)
    {
      Live l = g_array_index (live, Live, live->len - 1);
      g_array_set_size (live, live->len - 1);
      dcr_range_alloc_give (&ra, l.off, l.size);
    }
  g_assert_true (dcr_range_alloc_empty (&ra));
  g_assert_true (dcr_range_alloc_check (&ra));
  g_rand_free (rng);
  g_array_unref (live);
  g_free (shadow);
  dcr_range_alloc_clear (&ra);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/range-alloc/basic", test_basic);
  g_test_add_func ("/range-alloc/exact-fill", test_exact_fill);
  g_test_add_func ("/range-alloc/soak", test_soak);
  return g_test_run ();
}
