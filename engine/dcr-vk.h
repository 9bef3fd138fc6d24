/* dcr-vk.h — libdcr's Vulkan compute runtime, in the shape of Kompute: a
 * context (manager) owns the device; buffers and tensors live in
 * sub-allocating pools; pipelines (algorithms) are a shader plus
 * specialization constants, cached; sequences record dispatches and
 * transfers into one re-submittable command buffer. */
#pragma once

#include <glib.h>
#include <vulkan/vulkan.h>

G_BEGIN_DECLS

#define DCR_VK_ERROR (dcr_vk_error_quark ())
GQuark dcr_vk_error_quark (void);

typedef enum {
  DCR_VK_ERROR_NO_DEVICE,    /* no Vulkan driver / no device, or selector matched none */
  DCR_VK_ERROR_INIT,         /* instance or device creation failed */
  DCR_VK_ERROR_OUT_OF_MEMORY,
  DCR_VK_ERROR_TOO_LARGE,    /* request exceeds a device limit */
  DCR_VK_ERROR_DEVICE_LOST,
  DCR_VK_ERROR_SHADER,       /* unknown shader or pipeline creation failed */
  DCR_VK_ERROR_FAILED,
} DcrVkError;

typedef struct {
  guint index;                  /* position in vkEnumeratePhysicalDevices */
  char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
  VkPhysicalDeviceType type;
  char driver_name[VK_MAX_DRIVER_NAME_SIZE];
  char driver_info[VK_MAX_DRIVER_INFO_SIZE];
  guint32 api_version;
  guint32 vendor_id;
  guint64 device_local_bytes;   /* largest device-local heap */
  guint64 max_storage_buffer_range;
  guint32 max_workgroup_invocations;
  guint32 max_workgroup_count[3];
  guint32 max_shared_memory;
  guint32 subgroup_size;
  gboolean subgroup_arithmetic; /* basic + arithmetic + shuffle + ballot in compute */
  gboolean shader_float16;
  gboolean storage_16bit;
  gboolean coopmat_khr;
  gboolean coopmat_nv;
  gboolean vulkan_memory_model;
  /* VK_NV_cooperative_matrix usable for the coopmat GEMM: the feature, the
   * 16×16×16 f16·f16+f32 subgroup configuration, f16 arithmetic and storage,
   * the Vulkan memory model, subgroups ≥ 16 (enabled at device creation
   * then; $DCR_NO_COOPMAT=1 turns it off) */
  gboolean coopmat_f16;
  gboolean timestamps;          /* compute queue supports timestamps */
  double timestamp_period_ns;
  guint8 uuid[VK_UUID_SIZE];
} DcrDeviceInfo;

const char *dcr_device_type_name (VkPhysicalDeviceType type);

/* Every device this machine's Vulkan loader reports, in enumeration order. */
GArray *dcr_vk_list_devices (GError **error); /* of DcrDeviceInfo */

/* Index of the device `selector` names (a decimal index or a case-insensitive
 * substring of the name); NULL/"" picks the preferred one: discrete >
 * integrated > virtual > CPU. -1 with error when nothing matches. */
int dcr_vk_pick_device (const GArray *devices, const char *selector, GError **error);

typedef struct _DcrContext DcrContext;

typedef struct {
  const char *device;          /* selector; NULL → $DCR_DEVICE → preferred */
  gboolean validation;         /* enable VK_LAYER_KHRONOS_validation; also $DCR_VALIDATION=1 */
  const char *pipeline_cache_dir; /* NULL → $XDG_CACHE_HOME/dcr-forensics */
  gboolean no_pipeline_cache;  /* neither load nor save the on-disk cache */
  /* A name for this kind of run ("gui", "detect-…"), or NULL. With a name
   * and the on-disk cache, the pipelines the last run of that name used
   * are built again on a background thread from the start (on lavapipe a
   * pipeline takes 5–300 ms to build, a scan's first batch about 40 of
   * them), and the ones this run used are remembered for the next. */
  const char *warm_profile;
} DcrContextOptions;

/* For programs' main(), before any thread starts (it sets an environment
 * variable): when $LP_NUM_THREADS is unset, asks Mesa's lavapipe for 4
 * threads per CPU, at most 16 (its limit). lavapipe's default is one per
 * CPU; every dispatch then waits for the thread the OS preempted last
 * (for the decoding thread, say), and more, smaller shares of each
 * dispatch cut that wait. BENCHMARKS.md has the measurements. No effect
 * on other drivers. */
void dcr_vk_default_cpu_threads (void);

DcrContext *dcr_context_new (const DcrContextOptions *opts, GError **error);
void dcr_context_free (DcrContext *ctx);
const DcrDeviceInfo *dcr_context_device (DcrContext *ctx);
/* Validation-layer errors seen so far (0 unless validation is on). */
guint dcr_context_validation_errors (DcrContext *ctx);
/* Writes the VkPipelineCache to disk now (also done by dcr_context_free). */
gboolean dcr_context_save_pipeline_cache (DcrContext *ctx, GError **error);
const char *dcr_context_pipeline_cache_path (DcrContext *ctx);

typedef struct {
  guint64 pool_blocks;         /* VkDeviceMemory objects alive */
  guint64 pool_block_bytes;    /* bytes in those blocks */
  guint64 live_buffers;        /* sub-allocations not yet freed */
  guint64 live_bytes;
  guint64 pipelines_created;
  guint64 pipeline_cache_hits; /* dcr_pipeline_get answered from the in-memory cache */
  gsize pipeline_cache_loaded_bytes; /* size of the on-disk cache given to Vulkan */
  guint64 submits;
} DcrContextStats;

void dcr_context_stats (DcrContext *ctx, DcrContextStats *out);

/* ---- memory ---------------------------------------------------------- */

typedef enum {
  DCR_POOL_WEIGHTS,      /* long-lived, device-local */
  DCR_POOL_ACTIVATIONS,  /* per-run scratch, device-local */
  DCR_POOL_STAGING,      /* host-visible, for transfers */
  DCR_N_POOLS
} DcrPoolKind;

typedef struct _DcrBuffer DcrBuffer;

/* A sub-allocation of at least `size` bytes. Requests above the device's
 * maxStorageBufferRange are refused with DCR_VK_ERROR_TOO_LARGE: split them. */
DcrBuffer *dcr_buffer_new (DcrContext *ctx, DcrPoolKind pool, gsize size, GError **error);
void dcr_buffer_free (DcrBuffer *buf);
gsize dcr_buffer_size (const DcrBuffer *buf);
/* Synchronous host <-> buffer copies (through staging when not mappable). */
gboolean dcr_buffer_upload (DcrBuffer *buf, gsize offset, const void *src, gsize n, GError **error);
gboolean dcr_buffer_download (DcrBuffer *buf, gsize offset, void *dst, gsize n, GError **error);
gboolean dcr_buffer_fill_zero (DcrBuffer *buf, GError **error);

typedef enum { DCR_F32, DCR_F16, DCR_U8, DCR_I32, DCR_U32 } DcrDtype;
gsize dcr_dtype_size (DcrDtype dt);
const char *dcr_dtype_name (DcrDtype dt);

#define DCR_MAX_DIMS 6

/* A buffer with a dtype and a row-major shape. */
typedef struct {
  DcrBuffer *buf;
  DcrDtype dtype;
  int ndim;
  gint64 shape[DCR_MAX_DIMS];
} DcrTensor;

DcrTensor *dcr_tensor_new (DcrContext *ctx, DcrPoolKind pool, DcrDtype dtype,
                           int ndim, const gint64 *shape, GError **error);
void dcr_tensor_free (DcrTensor *t);
gint64 dcr_tensor_numel (const DcrTensor *t);
gsize dcr_tensor_bytes (const DcrTensor *t);
gboolean dcr_tensor_upload (DcrTensor *t, const void *src, GError **error);
gboolean dcr_tensor_download (DcrTensor *t, void *dst, GError **error);
/* The first n elements of an f32 or f16 tensor as floats. */
gboolean dcr_tensor_download_floats (DcrTensor *t, float *dst, gsize n, GError **error);

/* ---- pipelines ------------------------------------------------------- */

typedef struct _DcrPipeline DcrPipeline;

/* Spec constant ids 0, 1, 2 are the local size (x, y, z) by convention;
 * ids 3.. are kernel parameters. `spec` holds values for ids 0..n_spec-1.
 * Bindings 0..n_bindings-1 are storage buffers. Pipelines are owned by the
 * context and cached by (shader, spec constants, bindings, push size). */
DcrPipeline *dcr_pipeline_get (DcrContext *ctx, const char *shader,
                               const guint32 *spec, guint n_spec,
                               guint n_bindings, guint push_size, GError **error);
/* TRUE when the embedded shader exists (variants are optional per build). */
gboolean dcr_shader_exists (const char *shader);

/* ---- sequences -------------------------------------------------------- */

typedef struct _DcrSeq DcrSeq;

DcrSeq *dcr_seq_new (DcrContext *ctx, GError **error);
void dcr_seq_free (DcrSeq *seq);
DcrContext *dcr_seq_context (DcrSeq *seq);
/* Per-dispatch GPU timestamps (when the queue supports them). */
void dcr_seq_enable_timing (DcrSeq *seq);

typedef struct {
  DcrBuffer *buf;
  gsize offset;
  gsize size;      /* 0 = to the end of the buffer */
  gboolean write;  /* the shader writes this range (for barriers) */
} DcrBinding;

/* Records a dispatch. Barriers are inserted only where this dispatch reads
 * or writes memory that an earlier, unbarriered command wrote (or writes
 * memory an earlier one read). Errors are latched and reported by submit. */
void dcr_seq_dispatch (DcrSeq *seq, DcrPipeline *pipe,
                       const DcrBinding *bindings, guint n_bindings,
                       const void *push, guint push_size,
                       guint32 gx, guint32 gy, guint32 gz);
void dcr_seq_copy (DcrSeq *seq, DcrBuffer *src, gsize src_off,
                   DcrBuffer *dst, gsize dst_off, gsize n);
/* Records zeroing of n bytes at offset (both multiples of 4; n = 0 → to the
 * end of the buffer), e.g. gradients before an accumulating step. */
void dcr_seq_fill_zero (DcrSeq *seq, DcrBuffer *buf, gsize offset, gsize n);
/* Ends recording on first use; may be called again to replay the same
 * commands. With wait=FALSE, call dcr_seq_wait before reading results or
 * re-submitting. */
gboolean dcr_seq_submit (DcrSeq *seq, gboolean wait, GError **error);
gboolean dcr_seq_wait (DcrSeq *seq, GError **error);
guint dcr_seq_n_dispatches (DcrSeq *seq);
guint dcr_seq_n_barriers (DcrSeq *seq);
/* Milliseconds per dispatch of the last completed submit; NULL without timing. */
const double *dcr_seq_timings_ms (DcrSeq *seq, guint *n);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrContext, dcr_context_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrBuffer, dcr_buffer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrTensor, dcr_tensor_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrSeq, dcr_seq_free)

G_END_DECLS
