/* dcr-safetensors.h — reads model weights in the safetensors format (mapped
 * read-only, every header field validated before a byte of data is trusted)
 * and writes our own files (trained heads, test fixtures) atomically.
 * Format: u64 little-endian header length N, N bytes of JSON, then the data. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define DCR_SAFETENSORS_ERROR (dcr_safetensors_error_quark ())
GQuark dcr_safetensors_error_quark (void);

typedef enum {
  DCR_SAFETENSORS_ERROR_IO,         /* cannot open, read or write the file */
  DCR_SAFETENSORS_ERROR_CORRUPT,    /* header or offsets invalid: not a usable safetensors file */
  DCR_SAFETENSORS_ERROR_NOT_FOUND,  /* no tensor of that name */
  DCR_SAFETENSORS_ERROR_SHAPE,      /* the tensor's shape is not the one the model needs */
  DCR_SAFETENSORS_ERROR_DTYPE,      /* a dtype the request cannot convert */
  DCR_SAFETENSORS_ERROR_NOT_FINITE, /* NaN or infinity in a weight */
  DCR_SAFETENSORS_ERROR_INVALID,    /* a bad argument to the writer */
} DcrSafetensorsError;

/* The dtypes of the safetensors specification. */
typedef enum {
  DCR_ST_BOOL,
  DCR_ST_U8,
  DCR_ST_I8,
  DCR_ST_F8_E5M2,
  DCR_ST_F8_E4M3,
  DCR_ST_I16,
  DCR_ST_U16,
  DCR_ST_F16,
  DCR_ST_BF16,
  DCR_ST_I32,
  DCR_ST_U32,
  DCR_ST_F32,
  DCR_ST_F64,
  DCR_ST_I64,
  DCR_ST_U64,
} DcrStDtype;

#define DCR_ST_MAX_DIMS 8

const char *dcr_st_dtype_name (DcrStDtype dtype);
gsize dcr_st_dtype_size (DcrStDtype dtype);
/* FALSE for a name the specification does not define. */
gboolean dcr_st_dtype_from_name (const char *name, DcrStDtype *out);

typedef struct {
  const char *name;
  DcrStDtype dtype;
  int ndim;                        /* 0 for a scalar */
  gint64 shape[DCR_ST_MAX_DIMS];
  guint64 numel;
  /* Little-endian, inside the mapping: valid until the file is freed. Not
   * necessarily aligned to the element size — copy rather than cast. */
  const guint8 *data;
  gsize nbytes;
} DcrStTensor;

typedef struct _DcrSafetensors DcrSafetensors;

/* Maps `path` read-only and validates the whole header: length, JSON, every
 * tensor's dtype, shape and byte range (inside the data section, no overlaps,
 * no gaps, span = numel × dtype size), duplicate names, __metadata__ strings. */
DcrSafetensors *dcr_safetensors_open (const char *path, GError **error);
/* The same on bytes already in memory; `name` is used in messages. */
DcrSafetensors *dcr_safetensors_new_from_bytes (GBytes *bytes, const char *name, GError **error);
void dcr_safetensors_free (DcrSafetensors *st);

/* The file name as messages show it. */
const char *dcr_safetensors_name (const DcrSafetensors *st);
guint dcr_safetensors_n_tensors (const DcrSafetensors *st);
/* Tensors in the order of their data in the file. */
const DcrStTensor *dcr_safetensors_tensor_at (const DcrSafetensors *st, guint index);
/* NULL when there is no such tensor. */
const DcrStTensor *dcr_safetensors_lookup (const DcrSafetensors *st, const char *name);
/* Like lookup, with a NOT_FOUND error naming the file and the tensor. */
const DcrStTensor *dcr_safetensors_get (const DcrSafetensors *st, const char *name, GError **error);

/* __metadata__ value for `key`, or NULL. */
const char *dcr_safetensors_metadata (const DcrSafetensors *st, const char *key);
/* The metadata keys, sorted, NULL-terminated (owned by st). */
const char *const *dcr_safetensors_metadata_keys (const DcrSafetensors *st);

/* Copies tensor `name` into a new float array (g_free it), converting F16,
 * BF16 and F64. With `expected_shape` non-NULL the tensor must have
 * `expected_ndim` dimensions of those sizes (−1 accepts any size in that
 * place). Refuses integer dtypes and NaN/infinity, naming the tensor. */
gboolean dcr_safetensors_get_f32 (const DcrSafetensors *st, const char *name,
                                  const gint64 *expected_shape, int expected_ndim,
                                  float **out, GError **error);

/* Checks every element of the floating-point tensor `name` (NULL: of every
 * floating-point tensor) for NaN and infinity; the error names the tensor and
 * the first bad element. */
gboolean dcr_safetensors_check_finite (const DcrSafetensors *st, const char *name, GError **error);

typedef struct {
  const char *name;
  DcrStDtype dtype;
  int ndim;
  const gint64 *shape;
  gconstpointer data;  /* numel × dtype size bytes, little-endian */
} DcrStWriteTensor;

/* Writes the tensors (data in the order given) and the metadata — key, value
 * pairs in a NULL-terminated array, or NULL — to `path`, through a temporary
 * file in the same directory that is synced and renamed over `path`, so
 * readers see the old file or the new one, never half of one. */
gboolean dcr_safetensors_write (const char *path, const DcrStWriteTensor *tensors, guint n_tensors,
                                const char *const *metadata, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrSafetensors, dcr_safetensors_free)

G_END_DECLS
