/* dcr-vk-private.h — the runtime's structs, shared by the dcr-vk-*.c files. */
#pragma once

#include "dcr-vk.h"
#include "dcr-range-alloc.h"

typedef struct {
  VkDeviceMemory memory;
  VkBuffer buffer;        /* one VkBuffer spans the block; bindings use offsets */
  void *mapped;           /* non-NULL when host-visible */
  DcrRangeAlloc ranges;
} DcrPoolBlock;

typedef struct {
  DcrPoolKind kind;
  guint32 memory_type;
  gboolean host_visible;
  GPtrArray *blocks;      /* DcrPoolBlock* */
} DcrPool;

struct _DcrBuffer {
  DcrContext *ctx;
  DcrPool *pool;
  DcrPoolBlock *block;
  guint64 offset;         /* within block */
  guint64 size;           /* requested size */
  guint64 alloc_size;     /* size taken from the block */
};

struct _DcrPipeline {
  char *key;
  VkShaderModule module;
  VkDescriptorSetLayout set_layout;
  VkPipelineLayout layout;
  VkPipeline pipeline;
  guint n_bindings;
  guint push_size;
  gboolean used;       /* returned to a caller other than the warm-up thread */
};

struct _DcrContext {
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  VkPhysicalDevice phys;
  VkDevice device;
  VkQueue queue;
  guint32 queue_family;
  DcrDeviceInfo info;
  VkPhysicalDeviceMemoryProperties mem_props;
  guint64 min_storage_align;
  guint64 block_size;
  DcrPool pools[DCR_N_POOLS];
  VkCommandPool cmd_pool;       /* for transfers done by the context itself */
  VkPipelineCache pipeline_cache;
  char *pipeline_cache_path;
  GHashTable *pipelines;        /* key -> DcrPipeline* */
  GHashTable *building;         /* keys being built (outside the lock) */
  GCond built;                  /* signalled when a build ends */
  GPtrArray *used_keys;         /* keys of the used pipelines, in order of first use */
  char *warm_path;              /* the warm-up list (DcrContextOptions.warm_profile) */
  GPtrArray *warm_keys;         /* the list as loaded */
  GThread *warm_thread;
  gint warm_stop;
  GMutex lock;                  /* pools, pipelines, queue */
  guint validation_errors;
  DcrContextStats stats;
  /* DCR_INJECT_FAULT: make submits or allocations fail as a broken GPU
   * would, to test that every caller reports it and stays alive. */
  VkResult inject_submit;
  VkResult inject_alloc;
};

gboolean dcr_vk_check (VkResult r, const char *what, GError **error);
void dcr_vk_memory_init (DcrContext *ctx);
void dcr_vk_memory_destroy (DcrContext *ctx);
void dcr_vk_pipelines_destroy (DcrContext *ctx);
/* The warm-up (DcrContextOptions.warm_profile): starts the thread that
 * builds the listed pipelines; stops it and saves the used keys. */
void dcr_vk_warm_start (DcrContext *ctx);
void dcr_vk_warm_finish (DcrContext *ctx);
/* Runs a one-shot command buffer on the context's queue and waits. */
gboolean dcr_vk_run_once (DcrContext *ctx, void (*record) (VkCommandBuffer cb, gpointer data),
                          gpointer data, GError **error);
