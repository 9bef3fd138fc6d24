/* dcr-safetensors.c — the safetensors reader and writer. Weight files come
 * from users, so nothing in the header is trusted: every length, offset and
 * shape is checked (without overflow) before a tensor is handed out. */
#include "dcr-safetensors.h"
#include "dcr-half.h"
#include "dcr-util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

G_DEFINE_QUARK (dcr-safetensors-error-quark, dcr_safetensors_error)

/* The reference implementation's limit; real headers are a few hundred KiB. */
#define MAX_HEADER_BYTES 100000000u

struct _DcrSafetensors {
  char *name;
  GBytes *bytes;
  const guint8 *data;  /* start of the data section */
  gsize data_size;
  DcrStTensor *tensors; /* sorted by offset */
  guint n_tensors;
  GHashTable *by_name;  /* name → DcrStTensor*, names owned by tensors[] */
  GHashTable *metadata; /* key → value, owned */
  char **metadata_keys;
};

static const struct {
  const char *name;
  gsize size;
  gboolean floating;
} dtype_info[] = {
  [DCR_ST_BOOL] = { "BOOL", 1, FALSE },
  [DCR_ST_U8] = { "U8", 1, FALSE },
  [DCR_ST_I8] = { "I8", 1, FALSE },
  [DCR_ST_F8_E5M2] = { "F8_E5M2", 1, TRUE },
  [DCR_ST_F8_E4M3] = { "F8_E4M3", 1, TRUE },
  [DCR_ST_I16] = { "I16", 2, FALSE },
  [DCR_ST_U16] = { "U16", 2, FALSE },
  [DCR_ST_F16] = { "F16", 2, TRUE },
  [DCR_ST_BF16] = { "BF16", 2, TRUE },
  [DCR_ST_I32] = { "I32", 4, FALSE },
  [DCR_ST_U32] = { "U32", 4, FALSE },
  [DCR_ST_F32] = { "F32", 4, TRUE },
  [DCR_ST_F64] = { "F64", 8, TRUE },
  [DCR_ST_I64] = { "I64", 8, FALSE },
  [DCR_ST_U64] = { "U64", 8, FALSE },
};

const char *
dcr_st_dtype_name (DcrStDtype dtype)
{
  return (guint) dtype < G_N_ELEMENTS (dtype_info) ? dtype_info[dtype].name : "?";
}

gsize
dcr_st_dtype_size (DcrStDtype dtype)
{
  return (guint) dtype < G_N_ELEMENTS (dtype_info) ? dtype_info[dtype].size : 0;
}

gboolean
dcr_st_dtype_from_name (const char *name, DcrStDtype *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (dtype_info); i++)
    if (g_strcmp0 (name, dtype_info[i].name) == 0)
      {
        *out = (DcrStDtype) i;
        return TRUE;
      }
  return FALSE;
}

static char *
shape_string (int ndim, const gint64 *shape)
{
  GString *s = g_string_new ("[");
  for (int i = 0; i < ndim; i++)
    g_string_append_printf (s, i ? ", %" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

void
dcr_safetensors_free (DcrSafetensors *st)
{
  if (!st)
    return;
  for (guint i = 0; i < st->n_tensors; i++)
    g_free ((char *) st->tensors[i].name);
  g_free (st->tensors);
  g_clear_pointer (&st->by_name, g_hash_table_unref);
  g_clear_pointer (&st->metadata, g_hash_table_unref);
  g_free (st->metadata_keys);
  g_clear_pointer (&st->bytes, g_bytes_unref);
  g_free (st->name);
  g_free (st);
}

/* json-glib keeps the last of two members with the same name; the format
 * forbids duplicates, and a silently dropped tensor would be a wrong model. */
typedef struct {
  GHashTable *seen; /* "object-pointer/name" */
  char *duplicate;
} DupCheck;

static void
on_object_member (JsonParser *parser, JsonObject *object, char *member, gpointer user_data)
{
  DupCheck *dc = user_data;
  char *key = g_strdup_printf ("%p/%s", (void *) object, member);
  if (!g_hash_table_add (dc->seen, key) && !dc->duplicate)
    dc->duplicate = g_strdup (member);
}

static gboolean
json_int (JsonNode *node, gint64 *out)
{
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (node);
  return TRUE;
}

static gboolean
parse_tensor (DcrSafetensors *st, const char *name, JsonNode *node, DcrStTensor *t, guint64 *begin,
              guint64 *end, GError **error)
{
#define FAIL(...) G_STMT_START {                                                                  \
    g_autofree char *why_ = g_strdup_printf (__VA_ARGS__);                                        \
    g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,                     \
                 "%s: tensor '%s': %s", st->name, name, why_);                                    \
    return FALSE;                                                                                 \
  } G_STMT_END

  if (!JSON_NODE_HOLDS_OBJECT (node))
    FAIL ("header entry is not a JSON object");
  JsonObject *o = json_node_get_object (node);
  JsonNode *dtype = json_object_get_member (o, "dtype");
  JsonNode *shape = json_object_get_member (o, "shape");
  JsonNode *offsets = json_object_get_member (o, "data_offsets");
  if (!dtype || !shape || !offsets)
    FAIL ("needs dtype, shape and data_offsets");
  if (json_object_get_size (o) != 3)
    FAIL ("unexpected fields besides dtype, shape and data_offsets");

  if (!JSON_NODE_HOLDS_VALUE (dtype) || json_node_get_value_type (dtype) != G_TYPE_STRING)
    FAIL ("dtype is not a string");
  if (!dcr_st_dtype_from_name (json_node_get_string (dtype), &t->dtype))
    FAIL ("unknown dtype \"%s\"", json_node_get_string (dtype));

  if (!JSON_NODE_HOLDS_ARRAY (shape))
    FAIL ("shape is not an array");
  JsonArray *sa = json_node_get_array (shape);
  guint ndim = json_array_get_length (sa);
  if (ndim > DCR_ST_MAX_DIMS)
    FAIL ("%u dimensions (at most %d are supported)", ndim, DCR_ST_MAX_DIMS);
  t->ndim = (int) ndim;
  guint64 numel = 1;
  gboolean overflow = FALSE;
  for (guint i = 0; i < ndim; i++)
    {
      gint64 d;
      if (!json_int (json_array_get_element (sa, i), &d) || d < 0)
        FAIL ("shape element %u is not a non-negative integer", i);
      t->shape[i] = d;
      if (d != 0 && numel > G_MAXUINT64 / (guint64) d)
        overflow = TRUE;
      else
        numel *= (guint64) d;
    }
  gsize esize = dcr_st_dtype_size (t->dtype);
  g_autofree char *shp = shape_string (t->ndim, t->shape);
  if (overflow || numel > G_MAXUINT64 / esize)
    FAIL ("shape %s is impossibly large", shp);
  /* A zero dimension makes the tensor empty whatever the overflowed product said. */
  for (guint i = 0; i < ndim; i++)
    if (t->shape[i] == 0)
      numel = 0;
  t->numel = numel;

  if (!JSON_NODE_HOLDS_ARRAY (offsets) || json_array_get_length (json_node_get_array (offsets)) != 2)
    FAIL ("data_offsets is not a [begin, end] pair");
  gint64 b, e;
  if (!json_int (json_array_get_element (json_node_get_array (offsets), 0), &b)
      || !json_int (json_array_get_element (json_node_get_array (offsets), 1), &e) || b < 0 || e < 0)
    FAIL ("data_offsets are not non-negative integers");
  if (b > e)
    FAIL ("data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] end before they begin", b, e);
  if ((guint64) e > st->data_size)
    FAIL ("data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] run past the end of the data "
          "(%" G_GSIZE_FORMAT " bytes; truncated file?)", b, e, st->data_size);
  guint64 want = numel * esize;
  if ((guint64) (e - b) != want)
    FAIL ("data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] hold %" G_GINT64_FORMAT
          " bytes, but %s %s needs %" G_GUINT64_FORMAT,
          b, e, e - b, dcr_st_dtype_name (t->dtype), shp, want);
  *begin = (guint64) b;
  *end = (guint64) e;
  t->data = st->data + b;
  t->nbytes = (gsize) want;
  return TRUE;
#undef FAIL
}

typedef struct {
  guint64 begin, end;
  DcrStTensor t;
} Entry;

static int
entry_cmp (gconstpointer a, gconstpointer b)
{
  const Entry *x = a, *y = b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return 0;
}

static int
strv_cmp (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Where the JSON value that starts JSON ends: the offset after its closing
 * bracket or quote (strings and escapes skipped), after a bare number or
 * word, or len when it never closes. A closing bracket of the wrong kind
 * ends it too, at that bracket: the caller then sees data after the value
 * and refuses it before json-glib does (json-glib 1.6 leaks its half-built
 * nodes on such input, e.g. "{\"a\": '[1'}}[1]"). */
static gsize
json_value_end (const char *json, gsize len)
{
  char open[256];
  gsize i = 0, depth = 0;
  while (i < len && g_ascii_isspace (json[i]))
    i++;
  if (i < len && json[i] != '{' && json[i] != '[' && json[i] != '"')
    {
      while (i < len && (g_ascii_isalnum (json[i]) || json[i] == '+' || json[i] == '-' || json[i] == '.'))
        i++;
      return i;
    }
  for (; i < len; i++)
    {
      char c = json[i];
      if (c == '"')
        {
          for (i++; i < len && json[i] != '"'; i++)
            if (json[i] == '\\')
              i++;
          if (depth == 0)
            return MIN (i + 1, len);
        }
      else if (c == '{' || c == '[')
        {
          if (depth == sizeof open)
            return len; /* deeper than any header: json-glib says what is wrong */
          open[depth++] = c;
        }
      else if ((c == '}' || c == ']') && depth > 0)
        {
          if (open[depth - 1] != (c == '}' ? '{' : '['))
            return i;
          if (--depth == 0)
            return i + 1;
        }
    }
  return len;
}

static gboolean
parse_header (DcrSafetensors *st, const char *json, gsize len, GError **error)
{
  if (!g_utf8_validate_len (json, len, NULL))
    {
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                   "%s: the header is not UTF-8 text (not a safetensors file?)", st->name);
      return FALSE;
    }
  /* One JSON value and padding spaces only: json-glib 1.6 leaks what it
   * parsed when a second value follows the first ("{}{}") */
  for (gsize end = json_value_end (json, len), i = end; i < len; i++)
    if (!g_ascii_isspace (json[i]))
      {
        g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                     "%s: the header is not valid JSON (a bracket that does not match, or more data after "
                     "the header object, at byte %" G_GSIZE_FORMAT ")", st->name, 8 + end);
        return FALSE;
      }
  g_autoptr(JsonParser) parser = json_parser_new ();
  DupCheck dc = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL), NULL };
  g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member), &dc);
  g_autoptr(GError) jerr = NULL;
  gboolean parsed = json_parser_load_from_data (parser, json, (gssize) len, &jerr);
  g_hash_table_unref (dc.seen);
  g_autofree char *duplicate = dc.duplicate;
  if (!parsed)
    {
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                   "%s: the header is not valid JSON (%s)", st->name, jerr->message);
      return FALSE;
    }
  if (duplicate)
    {
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                   "%s: the header names '%s' twice", st->name, duplicate);
      return FALSE;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                   "%s: the header is not a JSON object", st->name);
      return FALSE;
    }
  JsonObject *obj = json_node_get_object (root);

  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  JsonNode *meta = json_object_get_member (obj, "__metadata__");
  if (meta)
    {
      if (!JSON_NODE_HOLDS_OBJECT (meta))
        {
          g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                       "%s: __metadata__ is not a JSON object", st->name);
          return FALSE;
        }
      JsonObjectIter it;
      const char *k;
      JsonNode *v;
      json_object_iter_init (&it, json_node_get_object (meta));
      while (json_object_iter_next (&it, &k, &v))
        {
          if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING)
            {
              g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                           "%s: __metadata__ '%s' is not a string", st->name, k);
              return FALSE;
            }
          g_hash_table_insert (st->metadata, g_strdup (k), g_strdup (json_node_get_string (v)));
        }
    }
  st->metadata_keys = (char **) g_hash_table_get_keys_as_array (st->metadata, NULL);
  qsort (st->metadata_keys, g_hash_table_size (st->metadata), sizeof (char *), strv_cmp);

  /* Tensors: parsed, then sorted by offset to prove they tile the data
   * section exactly (no overlap, no gap, nothing after), as the reference
   * implementation demands. */
  g_autofree Entry *entries = g_new0 (Entry, json_object_get_size (obj));
  guint n = 0;
  gboolean ok = TRUE;
  JsonObjectIter it;
  const char *name;
  JsonNode *node;
  json_object_iter_init (&it, obj);
  while (ok && json_object_iter_next (&it, &name, &node))
    {
      if (strcmp (name, "__metadata__") == 0)
        continue;
      Entry *en = &entries[n];
      if (!parse_tensor (st, name, node, &en->t, &en->begin, &en->end, error))
        ok = FALSE;
      else
        en->t.name = g_strdup (name);
      n += ok;
    }
  if (ok && n > 1) /* a header without tensors ("{}") has no array at all: qsort (NULL, 0) is undefined */
    qsort (entries, n, sizeof (Entry), entry_cmp);
  guint64 expect = 0;
  for (guint i = 0; ok && i < n; i++)
    {
      if (entries[i].begin < expect)
        {
          g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                       "%s: tensors '%s' and '%s' overlap (bytes %" G_GUINT64_FORMAT "–%" G_GUINT64_FORMAT
                       " and %" G_GUINT64_FORMAT "–%" G_GUINT64_FORMAT " of the data)",
                       st->name, entries[i - 1].t.name, entries[i].t.name, entries[i - 1].begin,
                       entries[i - 1].end, entries[i].begin, entries[i].end);
          ok = FALSE;
        }
      else if (entries[i].begin > expect)
        {
          g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                       "%s: data bytes %" G_GUINT64_FORMAT "–%" G_GUINT64_FORMAT " before tensor '%s' "
                       "belong to no tensor", st->name, expect, entries[i].begin, entries[i].t.name);
          ok = FALSE;
        }
      else
        expect = entries[i].end;
    }
  if (ok && expect != st->data_size)
    {
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                   "%s: %" G_GUINT64_FORMAT " bytes after the last tensor belong to no tensor",
                   st->name, (guint64) st->data_size - expect);
      ok = FALSE;
    }
  if (!ok)
    {
      for (guint i = 0; i < n; i++)
        g_free ((char *) entries[i].t.name);
      return FALSE;
    }

  st->n_tensors = n;
  st->tensors = g_new0 (DcrStTensor, MAX (n, 1));
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < n; i++)
    {
      st->tensors[i] = entries[i].t;
      g_hash_table_insert (st->by_name, (char *) st->tensors[i].name, &st->tensors[i]);
    }
  return TRUE;
}

DcrSafetensors *
dcr_safetensors_new_from_bytes (GBytes *bytes, const char *name, GError **error)
{
  g_autoptr(DcrSafetensors) st = g_new0 (DcrSafetensors, 1);
  st->name = g_strdup (name ? name : "(memory)");
  st->bytes = g_bytes_ref (bytes);
  gsize size;
  const guint8 *p = g_bytes_get_data (bytes, &size);
  char sz[32];

  if (size == 0)
    {
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                   "%s: the file is empty", st->name);
      return NULL;
    }
  if (size < 8)
    {
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                   "%s: the file ends after %s, before the 8-byte header length (truncated file?)",
                   st->name, dcr_human_size (size, sz, sizeof sz));
      return NULL;
    }
  guint64 hlen;
  memcpy (&hlen, p, 8);
  hlen = GUINT64_FROM_LE (hlen);
  if (hlen > MAX_HEADER_BYTES)
    {
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                   "%s: header length %" G_GUINT64_FORMAT " is beyond the format's limit of %u bytes "
                   "(not a safetensors file?)", st->name, hlen, MAX_HEADER_BYTES);
      return NULL;
    }
  if (hlen > size - 8)
    {
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                   "%s: the file ends after %s, inside its %" G_GUINT64_FORMAT "-byte header "
                   "(truncated file?)", st->name, dcr_human_size (size, sz, sizeof sz), hlen);
      return NULL;
    }
  if (hlen < 2 || p[8] != '{')
    {
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_CORRUPT,
                   "%s: the header is not a JSON object (not a safetensors file?)", st->name);
      return NULL;
    }
  st->data = p + 8 + hlen;
  st->data_size = size - 8 - (gsize) hlen;
  if (!parse_header (st, (const char *) p + 8, (gsize) hlen, error))
    return NULL;
  return g_steal_pointer (&st);
}

DcrSafetensors *
dcr_safetensors_open (const char *path, GError **error)
{
  g_autofree char *display = g_filename_display_name (path);
  g_autoptr(GError) ferr = NULL;
  /* Read-only private mapping: weights of a GiB are not copied, and the file
   * is never opened for writing. */
  g_autoptr(GMappedFile) mf = g_mapped_file_new (path, FALSE, &ferr);
  if (!mf)
    {
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_IO, "%s: %s", display,
                   ferr->message);
      return NULL;
    }
  g_autoptr(GBytes) bytes = g_mapped_file_get_bytes (mf);
  return dcr_safetensors_new_from_bytes (bytes, display, error);
}

const char *
dcr_safetensors_name (const DcrSafetensors *st)
{
  return st->name;
}

guint
dcr_safetensors_n_tensors (const DcrSafetensors *st)
{
  return st->n_tensors;
}

const DcrStTensor *
dcr_safetensors_tensor_at (const DcrSafetensors *st, guint index)
{
  g_return_val_if_fail (index < st->n_tensors, NULL);
  return &st->tensors[index];
}

const DcrStTensor *
dcr_safetensors_lookup (const DcrSafetensors *st, const char *name)
{
  return g_hash_table_lookup (st->by_name, name);
}

const DcrStTensor *
dcr_safetensors_get (const DcrSafetensors *st, const char *name, GError **error)
{
  const DcrStTensor *t = dcr_safetensors_lookup (st, name);
  if (!t)
    g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_NOT_FOUND,
                 "%s: no tensor '%s' (%u tensors in the file; is it the right model?)", st->name, name,
                 st->n_tensors);
  return t;
}

const char *
dcr_safetensors_metadata (const DcrSafetensors *st, const char *key)
{
  return g_hash_table_lookup (st->metadata, key);
}

const char *const *
dcr_safetensors_metadata_keys (const DcrSafetensors *st)
{
  return (const char *const *) st->metadata_keys;
}

/* Index of the first NaN/infinity in a floating-point tensor, or -1. */
static gint64
first_non_finite (const DcrStTensor *t)
{
  const guint8 *p = t->data;
  for (guint64 i = 0; i < t->numel; i++)
    {
      gboolean bad = FALSE;
      switch (t->dtype)
        {
        case DCR_ST_F8_E5M2:
          bad = (p[i] & 0x7c) == 0x7c;
          break;
        case DCR_ST_F8_E4M3: /* the "fn" variant: no infinities, NaN is S.1111.111 */
          bad = (p[i] & 0x7f) == 0x7f;
          break;
        case DCR_ST_F16:
        case DCR_ST_BF16:
          {
            guint16 v;
            memcpy (&v, p + 2 * i, 2);
            v = GUINT16_FROM_LE (v);
            bad = t->dtype == DCR_ST_F16 ? (v & 0x7c00) == 0x7c00 : (v & 0x7f80) == 0x7f80;
            break;
          }
        case DCR_ST_F32:
          {
            guint32 v;
            memcpy (&v, p + 4 * i, 4);
            bad = (GUINT32_FROM_LE (v) & 0x7f800000u) == 0x7f800000u;
            break;
          }
        case DCR_ST_F64:
          {
            guint64 v;
            memcpy (&v, p + 8 * i, 8);
            bad = (GUINT64_FROM_LE (v) & G_GUINT64_CONSTANT (0x7ff0000000000000))
                  == G_GUINT64_CONSTANT (0x7ff0000000000000);
            break;
          }
        default:
          return -1;
        }
      if (bad)
        return (gint64) i;
    }
  return -1;
}

static gboolean
report_non_finite (const DcrSafetensors *st, const DcrStTensor *t, gint64 at, GError **error)
{
  g_autofree char *shp = shape_string (t->ndim, t->shape);
  g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_NOT_FINITE,
               "%s: tensor '%s' (%s %s) holds NaN or infinity (first at element %" G_GINT64_FORMAT
               "); the weights are damaged", st->name, t->name, dcr_st_dtype_name (t->dtype), shp, at);
  return FALSE;
}

gboolean
dcr_safetensors_check_finite (const DcrSafetensors *st, const char *name, GError **error)
{
  if (name)
    {
      const DcrStTensor *t = dcr_safetensors_get (st, name, error);
      if (!t)
        return FALSE;
      gint64 at = first_non_finite (t);
      return at < 0 ? TRUE : report_non_finite (st, t, at, error);
    }
  for (guint i = 0; i < st->n_tensors; i++)
    {
      gint64 at = first_non_finite (&st->tensors[i]);
      if (at >= 0)
        return report_non_finite (st, &st->tensors[i], at, error);
    }
  return TRUE;
}

gboolean
dcr_safetensors_get_f32 (const DcrSafetensors *st, const char *name, const gint64 *expected_shape,
                         int expected_ndim, float **out, GError **error)
{
  *out = NULL;
  const DcrStTensor *t = dcr_safetensors_get (st, name, error);
  if (!t)
    return FALSE;
  if (expected_shape)
    {
      gboolean match = t->ndim == expected_ndim;
      for (int i = 0; match && i < expected_ndim; i++)
        match = expected_shape[i] < 0 || expected_shape[i] == t->shape[i];
      if (!match)
        {
          g_autofree char *have = shape_string (t->ndim, t->shape);
          g_autofree char *want = shape_string (expected_ndim, expected_shape);
          g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_SHAPE,
                       "%s: tensor '%s' has shape %s, the model needs %s (weights of a different model?)",
                       st->name, name, have, want);
          return FALSE;
        }
    }
  if (t->dtype != DCR_ST_F32 && t->dtype != DCR_ST_F16 && t->dtype != DCR_ST_BF16 && t->dtype != DCR_ST_F64)
    {
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_DTYPE,
                   "%s: tensor '%s' is %s; the model needs floating-point weights (F32, F16, BF16 or F64)",
                   st->name, name, dcr_st_dtype_name (t->dtype));
      return FALSE;
    }
  if (t->numel > G_MAXSIZE / sizeof (float))
    {
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_SHAPE,
                   "%s: tensor '%s' is too large for this machine", st->name, name);
      return FALSE;
    }
  gint64 bad = first_non_finite (t);
  if (bad >= 0)
    return report_non_finite (st, t, bad, error);

  float *f = g_new (float, MAX (t->numel, 1));
  const guint8 *p = t->data;
  for (guint64 i = 0; i < t->numel; i++)
    switch (t->dtype)
      {
      case DCR_ST_F32:
        {
          guint32 v;
          memcpy (&v, p + 4 * i, 4);
          v = GUINT32_FROM_LE (v);
          memcpy (&f[i], &v, 4);
          break;
        }
      case DCR_ST_F16:
        {
          guint16 v;
          memcpy (&v, p + 2 * i, 2);
          f[i] = dcr_half_to_float (GUINT16_FROM_LE (v));
          break;
        }
      case DCR_ST_BF16:
        {
          guint16 v;
          memcpy (&v, p + 2 * i, 2);
          guint32 bits = (guint32) GUINT16_FROM_LE (v) << 16;
          memcpy (&f[i], &bits, 4);
          break;
        }
      default: /* F64 */
        {
          guint64 v;
          double d;
          memcpy (&v, p + 8 * i, 8);
          v = GUINT64_FROM_LE (v);
          memcpy (&d, &v, 8);
          f[i] = (float) d;
          if (!isfinite (f[i]))
            {
              g_free (f);
              g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_NOT_FINITE,
                           "%s: tensor '%s' element %" G_GUINT64_FORMAT " (%g) does not fit in a float",
                           st->name, name, i, d);
              return FALSE;
            }
          break;
        }
      }
  *out = f;
  return TRUE;
}

/* ---- writer ---- */

static gboolean
write_all (int fd, const void *buf, gsize len, const char *what, GError **error)
{
  const guint8 *p = buf;
  while (len > 0)
    {
      ssize_t w = write (fd, p, MIN (len, (gsize) 1 << 30));
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        {
          int e = w < 0 ? errno : ENOSPC;
          g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_IO, "%s: cannot write: %s",
                       what, g_strerror (e));
          return FALSE;
        }
      p += w;
      len -= (gsize) w;
    }
  return TRUE;
}

gboolean
dcr_safetensors_write (const char *path, const DcrStWriteTensor *tensors, guint n_tensors,
                       const char *const *metadata, GError **error)
{
  g_autofree char *display = g_filename_display_name (path);
  g_autoptr(GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree guint64 *sizes = g_new0 (guint64, MAX (n_tensors, 1));

#define INVALID(...) G_STMT_START {                                                                   g_autofree char *why_ = g_strdup_printf (__VA_ARGS__);                                            g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_INVALID, "%s: %s", display, why_);     return FALSE;                                                                                   } G_STMT_END

  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  if (metadata && metadata[0])
    {
      json_builder_set_member_name (b, "__metadata__");
      json_builder_begin_object (b);
      g_autoptr(GHashTable) keys = g_hash_table_new (g_str_hash, g_str_equal);
      for (guint i = 0; metadata[i]; i += 2)
        {
          if (!metadata[i + 1])
            INVALID ("metadata key '%s' has no value", metadata[i]);
          if (!g_utf8_validate (metadata[i], -1, NULL) || !g_utf8_validate (metadata[i + 1], -1, NULL))
            INVALID ("metadata '%s' is not UTF-8", metadata[i]);
          if (!g_hash_table_add (keys, (char *) metadata[i]))
            INVALID ("metadata key '%s' given twice", metadata[i]);
          json_builder_set_member_name (b, metadata[i]);
          json_builder_add_string_value (b, metadata[i + 1]);
        }
      json_builder_end_object (b);
    }
  guint64 offset = 0;
  for (guint i = 0; i < n_tensors; i++)
    {
      const DcrStWriteTensor *t = &tensors[i];
      if (!t->name || !t->name[0] || strcmp (t->name, "__metadata__") == 0
          || !g_utf8_validate (t->name, -1, NULL))
        INVALID ("tensor %u has no usable name", i);
      if (!g_hash_table_add (names, (char *) t->name))
        INVALID ("tensor '%s' given twice", t->name);
      if (dcr_st_dtype_size (t->dtype) == 0)
        INVALID ("tensor '%s' has an unknown dtype", t->name);
      if (t->ndim < 0 || t->ndim > DCR_ST_MAX_DIMS || (t->ndim > 0 && !t->shape))
        INVALID ("tensor '%s' has %d dimensions", t->name, t->ndim);
      guint64 numel = 1;
      for (int d = 0; d < t->ndim; d++)
        {
          if (t->shape[d] < 0)
            INVALID ("tensor '%s' has a negative dimension", t->name);
          if (t->shape[d] != 0 && numel > G_MAXUINT64 / 16 / (guint64) t->shape[d])
            INVALID ("tensor '%s' is impossibly large", t->name);
          numel *= (guint64) t->shape[d];
        }
      sizes[i] = numel * dcr_st_dtype_size (t->dtype);
      if (sizes[i] > 0 && !t->data)
        INVALID ("tensor '%s' has no data", t->name);
      json_builder_set_member_name (b, t->name);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "dtype");
      json_builder_add_string_value (b, dcr_st_dtype_name (t->dtype));
      json_builder_set_member_name (b, "shape");
      json_builder_begin_array (b);
      for (int d = 0; d < t->ndim; d++)
        json_builder_add_int_value (b, t->shape[d]);
      json_builder_end_array (b);
      json_builder_set_member_name (b, "data_offsets");
      json_builder_begin_array (b);
      json_builder_add_int_value (b, (gint64) offset);
      json_builder_add_int_value (b, (gint64) (offset + sizes[i]));
      json_builder_end_array (b);
      json_builder_end_object (b);
      offset += sizes[i];
    }
  json_builder_end_object (b);
#undef INVALID

  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  gsize jlen;
  g_autofree char *json = json_generator_to_data (gen, &jlen);
  /* Pad with spaces so the data section starts 8-byte aligned. */
  gsize padded = (jlen + 7) & ~(gsize) 7;
  g_autofree char *header = g_malloc (8 + padded);
  guint64 hlen = GUINT64_TO_LE ((guint64) padded);
  memcpy (header, &hlen, 8);
  memcpy (header + 8, json, jlen);
  memset (header + 8 + jlen, ' ', padded - jlen);

  g_autofree char *tmp = g_strdup_printf ("%s.XXXXXX", path);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_IO,
                   "%s: cannot create a temporary file next to it: %s", display, g_strerror (e));
      return FALSE;
    }
  gboolean ok = write_all (fd, header, 8 + padded, display, error);
  for (guint i = 0; ok && i < n_tensors; i++)
    ok = write_all (fd, tensors[i].data, sizes[i], display, error);
  if (ok && fsync (fd) != 0)
    {
      int e = errno;
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_IO, "%s: cannot sync: %s", display,
                   g_strerror (e));
      ok = FALSE;
    }
  if (close (fd) != 0 && ok)
    {
      int e = errno;
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_IO, "%s: cannot write: %s", display,
                   g_strerror (e));
      ok = FALSE;
    }
  if (ok && g_rename (tmp, path) != 0)
    {
      int e = errno;
      g_set_error (error, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_IO, "%s: cannot replace: %s", display,
                   g_strerror (e));
      ok = FALSE;
    }
  if (!ok)
    {
      g_unlink (tmp);
      return FALSE;
    }
  /* Make the rename itself durable. */
  g_autofree char *dir = g_path_get_dirname (path);
  int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0)
    {
      fsync (dfd);
      close (dfd);
    }
  return TRUE;
}
