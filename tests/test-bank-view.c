/* test-bank-view.c — the Memory Bank page under Xvfb, reached from the main
 * window's menu action: a bank of five prototypes for the default backbone
 * (one a copy of another) lists five rows; the thumbnail grid shows them and
 * selects; the selected one's nearest neighbours match a CPU computation and
 * select on a click; disable, note, remove and their undo reach the bank
 * file; search filters; the near-duplicate search finds the copy and
 * disabling it is undone; pruning to 3 drops one of the two copies and is
 * undone; adding a folder runs the backbone in the background and is undone
 * too; the audit log lists what the test did; the statistics match the
 * bank; choosing another bank (300 prototypes in three clusters) keeps the
 * page up. Screenshots (bank-view-*.png) go to the directory given as the
 * first argument (the build's tests/), else the temporary directory.
 * Without a display only the GTK-free computations are tested: PCA,
 * nearest neighbours, the summary. */
#include "dcr-config.h"
#include "dcr-application.h"
#include "dcr-bank-view.h"
#include "dcr-bank-model.h"
#include "dcr-bank-stats.h"
#include "dcr-retrieval.h"
#include "dcr-window.h"
#include "dcr-backbone.h"
#include "dcr-image.h"
#include "dcr-test-files.h"
#include "dcr-test-gui.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

enum { N_PROTOS = 5, N_CLUSTER = 100, N_CLUSTERS = 3, N_CLUSTER_DISABLED = 20 };

static char *tmpdir, *bank_path, *cluster_path, *folder;
static const char *outdir;

/* ---- without a display: the computations -------------------------------- */

/* Gaussian noise, Box–Muller. */
static double
gauss (GRand *rand)
{
  double u = g_rand_double_range (rand, 1e-12, 1), v = g_rand_double (rand);
  return sqrt (-2 * log (u)) * cos (2 * G_PI * v);
}

/* An orthonormal pair in dim dimensions. */
static void
random_plane (GRand *rand, guint dim, double *u, double *v)
{
  double nu = 0, uv = 0, nv = 0;
  for (guint j = 0; j < dim; j++)
    {
      u[j] = gauss (rand);
      v[j] = gauss (rand);
      nu += u[j] * u[j];
    }
  for (guint j = 0; j < dim; j++)
    {
      u[j] /= sqrt (nu);
      uv += u[j] * v[j];
    }
  for (guint j = 0; j < dim; j++)
    {
      v[j] -= uv * u[j];
      nv += v[j] * v[j];
    }
  for (guint j = 0; j < dim; j++)
    v[j] /= sqrt (nv);
}

/* Points c + a·u + b·v on a plane in 64-d (a with three times b's spread):
 * the projection explains all the variance, puts the wider spread on axis 1,
 * and keeps every distance (a 2-D isometry of the plane). A little noise off
 * the plane only costs its own share. */
static void
test_pca_plane (void)
{
  enum { N = 400, DIM = 64 };
  g_autoptr (GRand) rand = g_rand_new_with_seed (42);
  double u[DIM], v[DIM], c[DIM];
  random_plane (rand, DIM, u, v);
  for (guint j = 0; j < DIM; j++)
    c[j] = g_rand_double_range (rand, -2, 2);
  for (int noisy = 0; noisy < 2; noisy++)
    {
      g_autofree float *x = g_new (float, N * DIM);
      g_autofree double *ab = g_new (double, N * 2);
      for (guint i = 0; i < N; i++)
        {
          ab[2 * i] = 3 * gauss (rand);
          ab[2 * i + 1] = gauss (rand);
          for (guint j = 0; j < DIM; j++)
            x[i * DIM + j] = (float) (c[j] + ab[2 * i] * u[j] + ab[2 * i + 1] * v[j] +
                                      (noisy ? 0.01 * gauss (rand) : 0));
        }
      g_autofree float *xy = g_new (float, N * 2);
      double var[2], total;
      g_autoptr (GError) err = NULL;
      g_assert_true (dcr_pca_2d (x, N, DIM, xy, var, &total, NULL, &err));
      g_assert_no_error (err);
      double explained = (var[0] + var[1]) / total;
      g_test_message ("PCA %s: var %.4f %.4f of %.4f (%.6f explained)", noisy ? "noisy plane" : "plane", var[0],
                      var[1], total, explained);
      g_assert_cmpfloat (var[0], >=, var[1]);
      g_assert_cmpfloat (var[0], >, 5 * var[1]); /* 9 : 1 expected */
      if (!noisy)
        g_assert_cmpfloat (explained, >, 0.99999);
      else
        {
          g_assert_cmpfloat (explained, >, 0.99);
          g_assert_cmpfloat (explained, <, 1);
        }
      /* distances between points are kept */
      for (guint t = 0; t < 200; t++)
        {
          guint i = g_rand_int_range (rand, 0, N), k = g_rand_int_range (rand, 0, N);
          double d_plane = hypot (ab[2 * i] - ab[2 * k], ab[2 * i + 1] - ab[2 * k + 1]);
          double d_proj = hypot (xy[2 * i] - xy[2 * k], xy[2 * i + 1] - xy[2 * k + 1]);
          g_assert_cmpfloat (fabs (d_plane - d_proj), <, noisy ? 0.1 : 1e-3 * (1 + d_plane));
        }
      /* axis 1 is the a direction: the projection on it correlates with a */
      double saa = 0, sxx = 0, sax = 0, ma = 0, mx = 0;
      for (guint i = 0; i < N; i++)
        {
          ma += ab[2 * i] / N;
          mx += xy[2 * i] / N;
        }
      for (guint i = 0; i < N; i++)
        {
          saa += (ab[2 * i] - ma) * (ab[2 * i] - ma);
          sxx += (xy[2 * i] - mx) * (xy[2 * i] - mx);
          sax += (ab[2 * i] - ma) * (xy[2 * i] - mx);
        }
      g_assert_cmpfloat (fabs (sax) / sqrt (saa * sxx), >, 0.99);
    }
}

static void
test_pca_edges (void)
{
  g_autoptr (GError) err = NULL;
  float xy[6], one[3] = { 1, 2, 3 };
  double var[2], total;
  g_assert_false (dcr_pca_2d (one, 0, 3, xy, var, &total, NULL, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_INVALID);
  g_clear_error (&err);
  /* one point: nothing varies, it sits at the origin */
  g_assert_true (dcr_pca_2d (one, 1, 3, xy, var, &total, NULL, &err));
  g_assert_no_error (err);
  g_assert_cmpfloat (total, ==, 0);
  g_assert_cmpfloat (xy[0], ==, 0);
  g_assert_cmpfloat (xy[1], ==, 0);
  /* points on a line: one axis carries everything */
  float line[3 * 3] = { 0, 0, 0, 1, 1, 1, 2, 2, 2 };
  g_assert_true (dcr_pca_2d (line, 3, 3, xy, var, &total, NULL, &err));
  g_assert_cmpfloat (fabs (var[0] - total), <, 1e-9);
  g_assert_cmpfloat (var[1], <, 1e-12);
  g_assert_cmpfloat (fabs (xy[4] - xy[0] - 2 * sqrt (3)), <, 1e-5);
  g_autoptr (GCancellable) cancelled = g_cancellable_new ();
  g_cancellable_cancel (cancelled);
  g_assert_false (dcr_pca_2d (line, 3, 3, xy, var, &total, cancelled, &err));
  g_assert_error (err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&err);
  float bad[2 * 3] = { 0, 1, 2, 3, NAN, 5 };
  g_assert_false (dcr_pca_2d (bad, 2, 3, xy, var, &total, NULL, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_INVALID);
  g_autofree gsize *rows = g_new (gsize, 10);
  g_assert_cmpuint (dcr_sample_rows (7, 10, rows), ==, 7);
  g_assert_cmpuint (rows[6], ==, 6);
  g_assert_cmpuint (dcr_sample_rows (100, 10, rows), ==, 10);
  for (guint i = 1; i < 10; i++)
    g_assert_cmpuint (rows[i], >, rows[i - 1]);
  g_assert_cmpuint (rows[9], <, 100);
}

/* Against the engine's double-precision reference top-k. */
static void
test_nearest (void)
{
  enum { N = 300, DIM = 37, K = 5 };
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  g_autofree float *f = g_new (float, N * DIM);
  g_autofree gint64 *ids = g_new (gint64, N);
  for (guint i = 0; i < N; i++)
    {
      ids[i] = 1000 + 3 * i;
      for (guint j = 0; j < DIM; j++)
        f[i * DIM + j] = (float) gauss (rand);
    }
  memcpy (f + 40 * DIM, f + 17 * DIM, DIM * sizeof (float)); /* 40 copies 17 */
  g_autofree float *unit = g_new (float, N * DIM);
  for (guint i = 0; i < N; i++)
    {
      double nn = 0;
      for (guint j = 0; j < DIM; j++)
        nn += (double) f[i * DIM + j] * f[i * DIM + j];
      for (guint j = 0; j < DIM; j++)
        unit[i * DIM + j] = (float) (f[i * DIM + j] / sqrt (nn));
    }
  guint rows[] = { 0, 17, 40, 123, N - 1 };
  for (guint t = 0; t < G_N_ELEMENTS (rows); t++)
    {
      guint r = rows[t];
      DcrBankNeighbour out[K];
      g_assert_cmpuint (dcr_bank_nearest (f, ids, N, DIM, r, K, out), ==, K);
      guint32 pos[K + 1];
      float sims[K + 1];
      dcr_ref_cosine_topk (unit, N, DIM, unit + r * DIM, 1, K + 1, pos, sims);
      guint m = 0;
      for (guint i = 0; i < K + 1 && m < K; i++)
        {
          if (pos[i] == r)
            continue;
          g_assert_cmpint (out[m].id, ==, ids[pos[i]]);
          g_assert_cmpfloat (fabs (out[m].similarity - sims[i]), <, 1e-5);
          m++;
        }
      for (guint i = 0; i < K; i++)
        {
          g_assert_cmpint (out[i].id, !=, ids[r]);
          if (i)
            g_assert_cmpfloat (out[i].similarity, <=, out[i - 1].similarity);
        }
      if (r == 17 || r == 40)
        {
          g_assert_cmpint (out[0].id, ==, ids[r == 17 ? 40 : 17]);
          g_assert_cmpfloat (out[0].similarity, >, 0.99999);
        }
    }
  /* fewer rows than asked for; ids NULL gives positions */
  DcrBankNeighbour out[K];
  g_assert_cmpuint (dcr_bank_nearest (f, NULL, 3, DIM, 1, K, out), ==, 2);
  g_assert_true ((out[0].id == 0 && out[1].id == 2) || (out[0].id == 2 && out[1].id == 0));
  g_assert_cmpuint (dcr_bank_nearest (f, NULL, 1, DIM, 0, K, out), ==, 0);
}

static void
test_summary (void)
{
  const char *sources[] = { "/a/x/1.png", "/a/y/2.png", "/a/x/3.png", NULL, "/a/x/4.png" };
  DcrPrototype p[5] = { 0 };
  const DcrPrototype *pp[5];
  for (guint i = 0; i < 5; i++)
    {
      p[i].id = i + 1;
      p[i].source = (char *) sources[i];
      p[i].enabled = i != 1 && i != 3;
      p[i].pinned = i == 4;
      p[i].added = i == 3 ? NULL : g_date_time_new_utc (2026, 1 + i, 5, 12, 0, 0);
      pp[i] = &p[i];
    }
  g_autoptr (DcrBankSummary) s = dcr_bank_summarize (pp, 5);
  g_assert_cmpuint (s->total, ==, 5);
  g_assert_cmpuint (s->enabled, ==, 3);
  g_assert_cmpuint (s->disabled, ==, 2);
  g_assert_cmpuint (s->pinned, ==, 1);
  g_assert_cmpuint (s->sources->len, ==, 3);
  g_assert_cmpstr (s->sources->pdata[0], ==, "/a/x");
  g_assert_cmpuint (g_array_index (s->source_counts, guint, 0), ==, 3);
  g_assert_cmpstr (s->sources->pdata[1], ==, "(unknown)"); /* ties by name */
  g_assert_cmpstr (s->sources->pdata[2], ==, "/a/y");
  g_assert_cmpint (g_date_time_get_month (s->first_added), ==, 1);
  g_assert_cmpint (g_date_time_get_month (s->last_added), ==, 5);
  for (guint i = 0; i < 5; i++)
    g_clear_pointer (&p[i].added, g_date_time_unref);
}

/* ---- with a display: the page ------------------------------------------- */

/* Prototypes 1–5 with random features; 2 is 1 negated, 5 a copy of 2. */
static void
make_fixtures (void)
{
  g_autoptr (GError) err = NULL;
  tmpdir = dcr_test_make_tmpdir ("dcr-bank-view-XXXXXX");
  bank_path = g_build_filename (tmpdir, "bank.dcrbank", NULL);
  folder = g_build_filename (tmpdir, "new-reals", NULL);
  g_assert_cmpint (g_mkdir (folder, 0700), ==, 0);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *name = g_strdup_printf ("photo-%u.png", i);
      g_autofree char *path = g_build_filename (folder, name, NULL);
      dcr_test_write_pattern_png (path, 96, 80, i);
    }

  g_autoptr (DcrContext) ctx = dcr_context_new (NULL, &err);
  g_assert_no_error (err);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, "default", DCR_F32, &err);
  g_assert_no_error (err);
  guint dim = dcr_backbone_dim (bb);
  g_autoptr (DcrBank) bank = dcr_bank_create (bank_path, dcr_backbone_id (bb), dim, &err);
  g_assert_no_error (err);
  g_autofree float *feat = g_new (float, (gsize) N_PROTOS * dim);
  g_autoptr (GRand) rand = g_rand_new_with_seed (9);
  for (gsize i = 0; i < (gsize) N_PROTOS * dim; i++)
    feat[i] = (float) g_rand_double_range (rand, -1, 1);
  /* 2 opposite 1, so that pruning from the first pick (1) takes 2 (or its
   * copy 5) next whatever the other draws are */
  for (gsize j = 0; j < dim; j++)
    feat[1 * (gsize) dim + j] = -feat[j];
  memcpy (feat + 4 * (gsize) dim, feat + 1 * (gsize) dim, dim * sizeof (float));
  DcrPrototypeNew items[N_PROTOS];
  char *names[N_PROTOS], *hashes[N_PROTOS];
  for (guint i = 0; i < N_PROTOS; i++)
    {
      names[i] = g_strdup_printf ("/evidence/real/proto-%u.png", i + 1);
      hashes[i] = g_compute_checksum_for_string (G_CHECKSUM_SHA256, names[i], -1);
      items[i] = (DcrPrototypeNew) { .feature = feat + (gsize) i * dim, .source = names[i], .sha256 = hashes[i],
                                     .thumbnail = dcr_test_thumbnail_png (32, i), .note = i == 0 ? "camera A" : NULL };
    }
  g_assert_true (dcr_bank_add (bank, items, N_PROTOS, FALSE, NULL, &err));
  g_assert_no_error (err);
  for (guint i = 0; i < N_PROTOS; i++)
    {
      g_free (names[i]);
      g_free (hashes[i]);
      g_bytes_unref (items[i].thumbnail);
    }

  /* three clusters from three folders, some disabled, for the grid and the plot */
  cluster_path = g_build_filename (tmpdir, "clusters.dcrbank", NULL);
  g_autoptr (DcrBank) cb = dcr_bank_create (cluster_path, dcr_backbone_id (bb), dim, &err);
  g_assert_no_error (err);
  enum { NC = N_CLUSTER * N_CLUSTERS };
  g_autofree float *centres = g_new (float, (gsize) N_CLUSTERS * dim);
  for (gsize i = 0; i < (gsize) N_CLUSTERS * dim; i++)
    centres[i] = (float) g_rand_double_range (rand, -1, 1);
  g_autofree float *cf = g_new (float, (gsize) NC * dim);
  g_autofree DcrPrototypeNew *citems = g_new0 (DcrPrototypeNew, NC);
  g_autoptr (GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) thumbs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (guint c = 0; c < N_CLUSTERS; c++)
    g_ptr_array_add (thumbs, dcr_test_thumbnail_png (32, c * 2));
  for (guint i = 0; i < NC; i++)
    {
      guint c = i % N_CLUSTERS;
      for (guint j = 0; j < dim; j++)
        cf[(gsize) i * dim + j] = centres[(gsize) c * dim + j] + 0.3f * (float) g_rand_double_range (rand, -1, 1);
      char *name = g_strdup_printf ("/cases/%c/img-%03u.png", 'A' + c, i);
      char *hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, name, -1);
      g_ptr_array_add (keep, name);
      g_ptr_array_add (keep, hash);
      citems[i] = (DcrPrototypeNew) { .feature = cf + (gsize) i * dim, .source = name, .sha256 = hash,
                                      .thumbnail = thumbs->pdata[c] };
    }
  g_autofree gint64 *cids = g_new (gint64, NC);
  g_assert_true (dcr_bank_add (cb, citems, NC, FALSE, cids, &err));
  g_assert_no_error (err);
  g_assert_true (dcr_bank_set_enabled (cb, cids, N_CLUSTER_DISABLED, FALSE, &err));
  g_assert_no_error (err);
}

static void
wait_while_busy (DcrBankView *view)
{
  gint64 deadline = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;
  while (dcr_bank_view_is_busy (view))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
}

static guint
n_rows (DcrBankView *view)
{
  return g_list_model_get_n_items (G_LIST_MODEL (dcr_bank_view_get_selection (view)));
}

/* The shown row of a prototype, or NULL. */
static DcrBankItem *
row_of (DcrBankView *view, gint64 id, guint *pos)
{
  GListModel *rows = G_LIST_MODEL (dcr_bank_view_get_selection (view));
  for (guint i = 0; i < g_list_model_get_n_items (rows); i++)
    {
      g_autoptr (DcrBankItem) item = g_list_model_get_item (rows, i);
      if (dcr_bank_item_get_id (item) == id)
        {
          if (pos)
            *pos = i;
          return item;
        }
    }
  return NULL;
}

static void
select_only (DcrBankView *view, gint64 id)
{
  guint pos = 0;
  g_assert_nonnull (row_of (view, id, &pos));
  g_assert_true (gtk_selection_model_select_item (dcr_bank_view_get_selection (view), pos, TRUE));
}

static void
activate (DcrBankView *view, const char *action)
{
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (view), action, NULL));
}

/* What the bank file holds, through a handle of its own. */
static void
assert_bank (gint64 total, gint64 enabled)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = dcr_bank_open (bank_path, NULL, 0, TRUE, &err);
  g_assert_no_error (err);
  g_assert_cmpint (dcr_bank_count (bank, FALSE), ==, total);
  g_assert_cmpint (dcr_bank_count (bank, TRUE), ==, enabled);
}

/* The grid's cells on screen: the widgets holding a bound picture. */
static guint
n_grid_cells (GtkWidget *grid, GtkWidget **nth, guint want)
{
  guint n = 0;
  for (GtkWidget *c = gtk_widget_get_first_child (grid); c; c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *pic = dcr_test_gui_find (c, GTK_TYPE_PICTURE);
      if (!pic || !gtk_widget_get_mapped (c) || !gtk_picture_get_paintable (GTK_PICTURE (pic)))
        continue;
      if (nth && n == want)
        *nth = c;
      n++;
    }
  return n;
}

static gint64
selected_id (DcrBankView *view)
{
  GtkSelectionModel *sel = dcr_bank_view_get_selection (view);
  g_autoptr (GtkBitset) set = gtk_selection_model_get_selection (sel);
  if (gtk_bitset_get_size (set) != 1)
    return -1;
  g_autoptr (DcrBankItem) item = g_list_model_get_item (G_LIST_MODEL (sel), gtk_bitset_get_minimum (set));
  return dcr_bank_item_get_id (item);
}

static GArray *
wait_neighbours (DcrBankView *view)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  GArray *nb;
  while (!(nb = dcr_bank_view_get_neighbours (view)))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  return nb;
}

/* Whether w is the neighbour button of the prototype whose id `id` points to. */
static gboolean
is_neighbour_button (GtkWidget *w, gconstpointer id)
{
  const gint64 *data = GTK_IS_BUTTON (w) ? g_object_get_data (G_OBJECT (w), "prototype-id") : NULL;
  return data && *data == *(const gint64 *) id;
}

/* The neighbour button of prototype id in the detail pane, or NULL. */
static GtkWidget *
neighbour_button (GtkWidget *w, gint64 id)
{
  return dcr_test_gui_find_match (w, is_neighbour_button, &id);
}

/* The selected prototype's neighbours against cosine similarity in double
 * over the bank file's features. */
static void
check_neighbours (DcrBankView *view, gint64 query)
{
  GArray *nb = wait_neighbours (view);
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = dcr_bank_open (bank_path, NULL, 0, TRUE, &err);
  g_assert_no_error (err);
  g_autofree float *f = NULL;
  g_autofree gint64 *ids = NULL;
  gsize n = 0;
  g_assert_true (dcr_bank_load_features (bank, FALSE, &f, &ids, &n, &err));
  guint dim = dcr_bank_dim (bank);
  gsize q = n;
  for (gsize i = 0; i < n; i++)
    if (ids[i] == query)
      q = i;
  g_assert_cmpuint (q, <, n);
  g_assert_cmpuint (nb->len, ==, MIN (n - 1, 5));
  g_autofree double *sims = g_new (double, n);
  for (gsize i = 0; i < n; i++)
    {
      double d = 0, a = 0, b = 0;
      for (guint j = 0; j < dim; j++)
        {
          d += (double) f[q * dim + j] * f[i * dim + j];
          a += (double) f[q * dim + j] * f[q * dim + j];
          b += (double) f[i * dim + j] * f[i * dim + j];
        }
      sims[i] = d / sqrt (a * b);
    }
  for (guint k = 0; k < nb->len; k++)
    {
      const DcrBankNeighbour *x = &g_array_index (nb, DcrBankNeighbour, k);
      g_assert_cmpint (x->id, !=, query);
      if (k)
        g_assert_cmpfloat (x->similarity, <=, g_array_index (nb, DcrBankNeighbour, k - 1).similarity);
      gsize row = n;
      for (gsize i = 0; i < n; i++)
        if (ids[i] == x->id)
          row = i;
      g_assert_cmpuint (row, <, n);
      g_assert_cmpfloat (fabs (x->similarity - sims[row]), <, 1e-4);
      /* nothing left out is more similar than the last one shown */
      for (gsize i = 0; i < n; i++)
        {
          gboolean listed = i == q;
          for (guint m = 0; m < nb->len; m++)
            listed |= ids[i] == g_array_index (nb, DcrBankNeighbour, m).id;
          if (!listed)
            g_assert_cmpfloat (sims[i], <=, g_array_index (nb, DcrBankNeighbour, nb->len - 1).similarity + 1e-4);
        }
    }
}

static void
wait_stats (DcrBankStatsWindow *stats)
{
  gint64 deadline = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;
  while (dcr_bank_stats_window_is_busy (stats))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  g_assert_null (dcr_bank_stats_window_get_error (stats));
}

/* The statistics window's counts against the bank file. */
static void
check_statistics (DcrBankStatsWindow *stats, const char *path, guint n_sources)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = dcr_bank_open (path, NULL, 0, TRUE, &err);
  g_assert_no_error (err);
  g_autoptr (GPtrArray) all = dcr_bank_list (bank, &err);
  g_assert_no_error (err);
  guint pinned = 0;
  for (guint i = 0; i < all->len; i++)
    pinned += ((DcrPrototype *) all->pdata[i])->pinned;
  const DcrBankSummary *s = dcr_bank_stats_window_get_summary (stats);
  g_assert_cmpint (s->total, ==, dcr_bank_count (bank, FALSE));
  g_assert_cmpint (s->enabled, ==, dcr_bank_count (bank, TRUE));
  g_assert_cmpint (s->disabled, ==, dcr_bank_count (bank, FALSE) - dcr_bank_count (bank, TRUE));
  g_assert_cmpuint (s->pinned, ==, pinned);
  g_assert_cmpuint (s->sources->len, ==, n_sources);
  g_assert_nonnull (s->first_added);
  g_assert_nonnull (s->last_added);
  g_assert_cmpint (g_date_time_compare (s->first_added, s->last_added), <=, 0);
  wait_stats (stats);
  double explained = 0;
  g_assert_cmpuint (dcr_bank_stats_window_get_n_points (stats, &explained), ==, s->total);
  g_assert_cmpfloat (explained, >, 0);
  g_assert_cmpfloat (explained, <=, 1 + 1e-9);
}

static void
on_activate (GApplication *app, gpointer data)
{
  gboolean *done = data;
  DcrWindow *win = DCR_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  while (!gtk_widget_get_mapped (GTK_WIDGET (win)))
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (win), "win.show-bank", NULL));
  g_assert_cmpstr (dcr_window_get_page (win), ==, "bank");
  DcrBankView *view = DCR_BANK_VIEW (dcr_test_gui_find (GTK_WIDGET (win), DCR_TYPE_BANK_VIEW));
  g_assert_nonnull (view);
  dcr_test_gui_spin (300);
  g_assert_true (gtk_widget_get_mapped (GTK_WIDGET (view)));
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS);
  g_assert_false (dcr_bank_view_get_grid (view));

  /* the thumbnail grid: every prototype a cell; a cell's own select action selects */
  g_autoptr (GSettings) settings = g_settings_new (DCR_APP_ID);
  dcr_bank_view_set_grid (view, TRUE);
  g_autofree char *mode = g_settings_get_string (settings, "bank-view-mode");
  g_assert_cmpstr (mode, ==, "grid");
  GtkWidget *grid = dcr_test_gui_find (GTK_WIDGET (view), GTK_TYPE_GRID_VIEW);
  g_assert_nonnull (grid);
  dcr_test_gui_spin (300);
  g_assert_true (gtk_widget_get_mapped (grid));
  GtkWidget *cell = NULL;
  /* thumbnails are decoded in workers */
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while (n_grid_cells (grid, NULL, 0) < N_PROTOS && g_get_monotonic_time () < deadline)
    dcr_test_gui_spin (20);
  g_assert_cmpuint (n_grid_cells (grid, &cell, 2), ==, N_PROTOS);
  g_assert_true (gtk_widget_activate_action (cell, "listitem.select", "(bb)", FALSE, FALSE));
  g_assert_cmpint (selected_id (view), ==, 3); /* in id order */

  /* sorting applies to the grid too: by source, descending */
  /* the filter dropdown comes first, then the sort dropdown and its direction */
  GtkWidget *filter = dcr_test_gui_find (GTK_WIDGET (view), GTK_TYPE_DROP_DOWN);
  GtkDropDown *sort = GTK_DROP_DOWN (dcr_test_gui_find (gtk_widget_get_next_sibling (filter), GTK_TYPE_DROP_DOWN));
  g_assert_nonnull (sort);
  gtk_drop_down_set_selected (sort, 1);
  GtkToggleButton *descending = GTK_TOGGLE_BUTTON (gtk_widget_get_next_sibling (GTK_WIDGET (sort)));
  gtk_toggle_button_set_active (descending, TRUE);
  {
    g_autoptr (DcrBankItem) top = g_list_model_get_item (G_LIST_MODEL (dcr_bank_view_get_selection (view)), 0);
    g_assert_cmpint (dcr_bank_item_get_id (top), ==, N_PROTOS);
  }
  gtk_toggle_button_set_active (descending, FALSE);
  gtk_drop_down_set_selected (sort, 0);
  {
    g_autoptr (DcrBankItem) top = g_list_model_get_item (G_LIST_MODEL (dcr_bank_view_get_selection (view)), 0);
    g_assert_cmpint (dcr_bank_item_get_id (top), ==, 1);
  }

  /* nearest neighbours of 2: 5 (its copy) first, itself never; a click selects */
  select_only (view, 2);
  check_neighbours (view, 2);
  GArray *nb = dcr_bank_view_get_neighbours (view);
  g_assert_cmpint (g_array_index (nb, DcrBankNeighbour, 0).id, ==, 5);
  g_assert_cmpfloat (g_array_index (nb, DcrBankNeighbour, 0).similarity, >, 0.999);
  dcr_test_gui_spin (300);
  g_object_unref (dcr_test_gui_snapshot_named (GTK_WIDGET (win), outdir, "bank-view-grid"));
  /* a neighbour hidden by the search is still reached */
  dcr_bank_view_set_search (view, "proto-2");
  GtkWidget *button = neighbour_button (GTK_WIDGET (view), 4);
  g_assert_nonnull (button);
  g_signal_emit_by_name (button, "clicked");
  g_assert_cmpint (selected_id (view), ==, 4);
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS);
  check_neighbours (view, 4);
  dcr_bank_view_set_grid (view, FALSE);
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS);

  /* disable one; undo */
  select_only (view, 3);
  activate (view, "bank.disable");
  g_assert_cmpstr (dcr_bank_view_get_last_message (view), ==, "1 prototype disabled");
  g_assert_false (dcr_bank_item_get_prototype (row_of (view, 3, NULL))->enabled);
  assert_bank (N_PROTOS, N_PROTOS - 1);
  activate (view, "bank.undo");
  g_assert_true (dcr_bank_item_get_prototype (row_of (view, 3, NULL))->enabled);
  assert_bank (N_PROTOS, N_PROTOS);
  g_assert_cmpstr (dcr_bank_view_get_last_message (view), ==, "Undone");

  /* search by source, note and SHA-256 prefix */
  dcr_bank_view_set_search (view, "PROTO-4");
  g_assert_cmpuint (n_rows (view), ==, 1);
  g_assert_nonnull (row_of (view, 4, NULL));
  dcr_bank_view_set_search (view, "camera a");
  g_assert_cmpuint (n_rows (view), ==, 1);
  g_assert_nonnull (row_of (view, 1, NULL));
  dcr_bank_view_set_search (view, NULL);
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS);

  /* edit a note in the detail pane; undo */
  select_only (view, 1);
  GtkEditable *note = GTK_EDITABLE (dcr_test_gui_find (GTK_WIDGET (view), GTK_TYPE_ENTRY));
  g_assert_cmpstr (gtk_editable_get_text (note), ==, "camera A");
  gtk_editable_set_text (note, "camera A, re-checked");
  activate (view, "bank.save-note");
  g_assert_cmpstr (dcr_bank_item_get_prototype (row_of (view, 1, NULL))->note, ==, "camera A, re-checked");
  activate (view, "bank.undo");
  g_assert_cmpstr (dcr_bank_item_get_prototype (row_of (view, 1, NULL))->note, ==, "camera A");

  /* remove one; undo brings it back with its provenance */
  select_only (view, 4);
  activate (view, "bank.remove");
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS - 1);
  g_assert_null (row_of (view, 4, NULL));
  assert_bank (N_PROTOS - 1, N_PROTOS - 1);
  activate (view, "bank.undo");
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS);
  DcrBankItem *back = row_of (view, 4, NULL);
  g_assert_nonnull (back);
  g_assert_cmpstr (dcr_bank_item_get_prototype (back)->source, ==, "/evidence/real/proto-4.png");
  g_autoptr (GdkTexture) back_thumb = dcr_bank_item_load_thumbnail (back);
  g_assert_nonnull (back_thumb);
  assert_bank (N_PROTOS, N_PROTOS);

  /* near-duplicates: 5 copies 2, so 5 goes; undo */
  activate (view, "bank.find-duplicates");
  g_assert_true (dcr_bank_view_is_busy (view));
  wait_while_busy (view);
  const DcrBankDuplicates *d = dcr_bank_view_get_duplicates (view);
  g_assert_nonnull (d);
  g_assert_cmpuint (d->groups->len, ==, 1);
  GArray *grp = d->groups->pdata[0];
  g_assert_cmpuint (grp->len, ==, 2);
  g_assert_cmpint (g_array_index (grp, gint64, 0), ==, 2);
  g_assert_cmpint (g_array_index (grp, gint64, 1), ==, 5);
  activate (view, "bank.show-duplicates");
  g_assert_cmpuint (n_rows (view), ==, 2);
  dcr_test_gui_spin (300);
  g_object_unref (dcr_test_gui_snapshot_named (GTK_WIDGET (win), outdir, "bank-view-duplicates"));
  activate (view, "bank.disable-redundant");
  g_assert_cmpstr (dcr_bank_view_get_last_message (view), ==, "1 near-duplicate disabled");
  g_assert_false (dcr_bank_item_get_prototype (row_of (view, 5, NULL))->enabled);
  assert_bank (N_PROTOS, N_PROTOS - 1);
  activate (view, "bank.undo");
  assert_bank (N_PROTOS, N_PROTOS);

  /* prune to 3 (k-center): 2 and 5 are one point, so exactly one of them goes */
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (dcr_test_gui_find (GTK_WIDGET (view), GTK_TYPE_SPIN_BUTTON)), 3);
  activate (view, "bank.plan-prune");
  g_assert_true (dcr_bank_view_is_busy (view));
  wait_while_busy (view);
  activate (view, "bank.show-pruned");
  g_assert_cmpuint (n_rows (view), ==, 2);
  g_assert_true ((row_of (view, 2, NULL) != NULL) != (row_of (view, 5, NULL) != NULL));
  g_assert_null (row_of (view, 1, NULL)); /* the first pick */
  activate (view, "bank.apply-prune");
  g_assert_cmpstr (dcr_bank_view_get_last_message (view), ==, "Pruned: 2 prototypes disabled");
  assert_bank (N_PROTOS, 3);
  activate (view, "bank.undo");
  assert_bank (N_PROTOS, N_PROTOS);

  /* add a folder: the backbone runs in the background; undo removes what it added */
  dcr_bank_view_add_folder (view, folder);
  g_assert_true (dcr_bank_view_is_busy (view));
  wait_while_busy (view);
  g_assert_nonnull (strstr (dcr_bank_view_get_last_message (view), "Added 2 images from new-reals"));
  assert_bank (N_PROTOS + 2, N_PROTOS + 2);
  gtk_drop_down_set_selected (GTK_DROP_DOWN (dcr_test_gui_find (GTK_WIDGET (view), GTK_TYPE_DROP_DOWN)), 0);
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS + 2);
  /* adding the same folder again adds nothing */
  dcr_bank_view_add_folder (view, folder);
  wait_while_busy (view);
  g_assert_nonnull (strstr (dcr_bank_view_get_last_message (view), "Added 0 images from new-reals (2 already"));
  assert_bank (N_PROTOS + 2, N_PROTOS + 2);
  activate (view, "bank.undo");
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS);
  assert_bank (N_PROTOS, N_PROTOS);

  /* pin one, disable another: the audit log lists both, newest first, after
   * everything above */
  select_only (view, 1);
  activate (view, "bank.pin");
  select_only (view, 3);
  activate (view, "bank.disable");
  DcrBankAuditWindow *audit = dcr_bank_view_show_audit_log (view);
  g_assert_nonnull (audit);
  GPtrArray *entries = dcr_bank_audit_window_get_entries (audit);
  g_assert_cmpuint (entries->len, >=, 12);
  const DcrBankAudit *e0 = entries->pdata[0], *e1 = entries->pdata[1];
  g_assert_cmpstr (e0->action, ==, "disable");
  g_assert_cmpstr (e0->ids, ==, "3");
  g_assert_cmpstr (e1->action, ==, "pin");
  g_assert_cmpstr (e1->ids, ==, "1");
  const char *seen[] = { "note", "remove", "restore", "enable", "add" };
  for (guint k = 0; k < G_N_ELEMENTS (seen); k++)
    {
      gboolean found = FALSE;
      for (guint i = 0; i < entries->len; i++)
        found |= g_strcmp0 (((DcrBankAudit *) entries->pdata[i])->action, seen[k]) == 0;
      g_assert_true (found);
    }
  for (guint i = 1; i < entries->len; i++)
    g_assert_cmpint (g_date_time_compare (((DcrBankAudit *) entries->pdata[i - 1])->time,
                                          ((DcrBankAudit *) entries->pdata[i])->time), >=, 0);
  dcr_test_gui_spin (300);
  g_object_unref (dcr_test_gui_snapshot_named (GTK_WIDGET (audit), outdir, "bank-view-audit"));
  gtk_window_destroy (GTK_WINDOW (audit));

  /* statistics: the counts are the bank's */
  DcrBankStatsWindow *stats = dcr_bank_view_show_statistics (view);
  g_assert_nonnull (stats);
  check_statistics (stats, bank_path, 1);
  const DcrBankSummary *sum = dcr_bank_stats_window_get_summary (stats);
  g_assert_cmpuint (sum->disabled, ==, 1);
  g_assert_cmpuint (sum->pinned, ==, 1);
  g_assert_cmpstr (sum->sources->pdata[0], ==, "/evidence/real");
  gtk_window_destroy (GTK_WINDOW (stats));

  /* three clusters: the grid, and the plot of three coloured groups */
  g_settings_set_string (settings, "bank-file", cluster_path);
  g_assert_cmpuint (n_rows (view), ==, N_CLUSTER * N_CLUSTERS);
  dcr_bank_view_set_grid (view, TRUE);
  deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while (n_grid_cells (grid, NULL, 0) == 0 && g_get_monotonic_time () < deadline)
    dcr_test_gui_spin (20);
  g_assert_cmpuint (n_grid_cells (grid, NULL, 0), >, 0);
  g_assert_true (dcr_bank_view_select_prototype (view, 7));
  wait_neighbours (view);
  dcr_test_gui_spin (300);
  g_object_unref (dcr_test_gui_snapshot_named (GTK_WIDGET (win), outdir, "bank-view-grid-clusters"));
  stats = dcr_bank_view_show_statistics (view);
  check_statistics (stats, cluster_path, N_CLUSTERS);
  double explained = 0;
  dcr_bank_stats_window_get_n_points (stats, &explained);
  g_test_message ("clusters: the plot's two axes explain %.3f of the variance", explained);
  g_assert_cmpfloat (explained, >, 0.6);
  dcr_test_gui_spin (400);
  g_object_unref (dcr_test_gui_snapshot_named (GTK_WIDGET (stats), outdir, "bank-view-statistics"));
  gtk_window_destroy (GTK_WINDOW (stats));
  dcr_bank_view_set_grid (view, FALSE);

  /* another bank chosen while the page is up: it follows, the page stays */
  g_autofree char *missing = g_build_filename (tmpdir, "missing.dcrbank", NULL);
  g_settings_set_string (settings, "bank-file", missing);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "bank");
  g_assert_cmpuint (n_rows (view), ==, 0);
  g_assert_nonnull (strstr (dcr_bank_view_get_last_message (view), "missing.dcrbank"));
  g_assert_false (g_file_test (missing, G_FILE_TEST_EXISTS));
  g_settings_set_string (settings, "bank-file", bank_path);
  g_assert_cmpuint (n_rows (view), ==, N_PROTOS);

  gtk_widget_activate_action (GTK_WIDGET (win), "win.close-bank", NULL);
  g_assert_cmpstr (dcr_window_get_page (win), !=, "bank");
  *done = TRUE;
  gtk_window_close (GTK_WINDOW (win));
}

static void
test_bank_view (void)
{
  g_autoptr (GSettings) settings = g_settings_new (DCR_APP_ID);
  g_settings_set_string (settings, "bank-file", bank_path);
  g_settings_set_int (settings, "window-width", 1240);
  g_settings_set_int (settings, "window-height", 1000);
  g_autoptr (DcrApplication) app = dcr_application_new ();
  gboolean done = FALSE;
  dcr_test_gui_run (G_APPLICATION (app), G_CALLBACK (on_activate), &done);
  g_assert_true (done);
}

static void
on_activate_close_busy (GApplication *app, gpointer data)
{
  GtkWidget **weak = data;
  DcrWindow *win = DCR_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  while (!gtk_widget_get_mapped (GTK_WIDGET (win)))
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (win), "win.show-bank", NULL));
  DcrBankView *view = DCR_BANK_VIEW (dcr_test_gui_find (GTK_WIDGET (win), DCR_TYPE_BANK_VIEW));
  g_assert_nonnull (view);
  dcr_test_gui_spin (200);
  *weak = GTK_WIDGET (view);
  g_object_add_weak_pointer (G_OBJECT (view), (gpointer *) weak);
  activate (view, "bank.find-duplicates");
  g_assert_true (dcr_bank_view_is_busy (view));
  gtk_window_close (GTK_WINDOW (win));
}

/* Closing the window while a GPU job of the page runs: the application
 * waits for the worker, and the page is finalised on the main thread
 * before g_application_run returns. */
static void
test_bank_view_close_busy (void)
{
  g_autoptr (GSettings) settings = g_settings_new (DCR_APP_ID);
  g_settings_set_string (settings, "bank-file", bank_path);
  g_autoptr (DcrApplication) app = dcr_application_new ();
  GtkWidget *weak = NULL;
  dcr_test_gui_run (G_APPLICATION (app), G_CALLBACK (on_activate_close_busy), &weak);
  g_assert_null (weak);
}

int
main (int argc, char **argv)
{
  gboolean display = g_getenv ("DISPLAY") || g_getenv ("WAYLAND_DISPLAY");
  gtk_disable_setlocale ();
  g_test_init (&argc, &argv, NULL);
  outdir = argc > 1 ? argv[1] : g_get_tmp_dir ();
  g_test_add_func ("/bank-stats/pca-plane", test_pca_plane);
  g_test_add_func ("/bank-stats/pca-edges", test_pca_edges);
  g_test_add_func ("/bank-stats/nearest", test_nearest);
  g_test_add_func ("/bank-stats/summary", test_summary);
  if (display)
    {
      gtk_init ();
      make_fixtures ();
      g_test_add_func ("/app/bank-view", test_bank_view);
      g_test_add_func ("/app/bank-view/close-while-busy", test_bank_view_close_busy);
    }
  else
    g_test_message ("no display: the page itself is not tested (run the suite under xvfb-run, see README)");
  int rc = g_test_run ();
  if (tmpdir)
    dcr_test_remove_tree (tmpdir);
  return rc;
}
