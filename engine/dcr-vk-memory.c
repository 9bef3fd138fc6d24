/* dcr-vk-memory.c — sub-allocating memory pools (weights, activations,
 * staging), buffers and tensors. A pool holds large VkDeviceMemory blocks,
 * each with one VkBuffer; a DcrBuffer is a range inside a block, so a model
 * with hundreds of tensors needs a handful of device allocations. */
#include "dcr-vk-private.h"
#include "dcr-half.h"

#include <string.h>

#define DCR_BLOCK_SIZE ((guint64) 64 << 20)
#define DCR_STAGING_CHUNK ((gsize) 16 << 20)

static int
find_memory_type (const VkPhysicalDeviceMemoryProperties *mp, guint32 bits,
                  VkMemoryPropertyFlags want)
{
  for (guint32 i = 0; i < mp->memoryTypeCount; i++)
    if ((bits & (1u << i)) && (mp->memoryTypes[i].propertyFlags & want) == want)
      return (int) i;
  return -1;
}

static VkBufferUsageFlags
buffer_usage (void)
{
  return VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
         VK_BUFFER_USAGE_TRANSFER_DST_BIT;
}

void
dcr_vk_memory_init (DcrContext *ctx)
{
  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties (ctx->phys, &props);
  ctx->min_storage_align = MAX (props.limits.minStorageBufferOffsetAlignment, 16);
  ctx->block_size = MIN (DCR_BLOCK_SIZE, ctx->info.max_storage_buffer_range);

  /* Which memory types a storage buffer may use on this device. */
  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = 4096,
    .usage = buffer_usage (),
  };
  VkBuffer probe;
  guint32 bits = ~0u;
  if (vkCreateBuffer (ctx->device, &bci, NULL, &probe) == VK_SUCCESS)
    {
      VkMemoryRequirements req;
      vkGetBufferMemoryRequirements (ctx->device, probe, &req);
      bits = req.memoryTypeBits;
      vkDestroyBuffer (ctx->device, probe, NULL);
    }

  const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  const VkMemoryPropertyFlags dl = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  /* On a CPU or integrated GPU, device memory is host memory: map it and
   * skip staging copies. A discrete GPU gets plain device-local memory. */
  gboolean unified = ctx->info.type != VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
  int device_type = unified ? find_memory_type (&ctx->mem_props, bits, dl | hv) : -1;
  if (device_type < 0)
    device_type = find_memory_type (&ctx->mem_props, bits, dl);
  if (device_type < 0)
    device_type = find_memory_type (&ctx->mem_props, bits, 0);
  int staging_type = find_memory_type (&ctx->mem_props, bits, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
  if (staging_type < 0)
    staging_type = find_memory_type (&ctx->mem_props, bits, hv);

  for (int k = 0; k < DCR_N_POOLS; k++)
    {
      DcrPool *p = &ctx->pools[k];
      p->kind = (DcrPoolKind) k;
      p->memory_type = (guint32) (k == DCR_POOL_STAGING ? staging_type : device_type);
      p->host_visible = (ctx->mem_props.memoryTypes[p->memory_type].propertyFlags & hv) == hv;
      p->blocks = g_ptr_array_new ();
    }
}

static void
block_destroy (DcrContext *ctx, DcrPoolBlock *b)
{
  if (b->mapped)
    vkUnmapMemory (ctx->device, b->memory);
  vkDestroyBuffer (ctx->device, b->buffer, NULL);
  vkFreeMemory (ctx->device, b->memory, NULL);
  ctx->stats.pool_blocks--;
  ctx->stats.pool_block_bytes -= b->ranges.size;
  dcr_range_alloc_clear (&b->ranges);
  g_free (b);
}

void
dcr_vk_memory_destroy (DcrContext *ctx)
{
  for (int k = 0; k < DCR_N_POOLS; k++)
    {
      DcrPool *p = &ctx->pools[k];
      for (guint i = 0; i < p->blocks->len; i++)
        {
          DcrPoolBlock *b = g_ptr_array_index (p->blocks, i);
          if (b->ranges.n_live)
            g_warning ("dcr: %" G_GUINT64_FORMAT " buffer(s) still alive in a pool at context teardown",
                       b->ranges.n_live);
          block_destroy (ctx, b);
        }
      g_ptr_array_unref (p->blocks);
      p->blocks = NULL;
    }
}

static DcrPoolBlock *
block_new (DcrContext *ctx, DcrPool *pool, guint64 size, GError **error)
{
  DcrPoolBlock *b = g_new0 (DcrPoolBlock, 1);
  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = size,
    .usage = buffer_usage (),
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  if (!dcr_vk_check (vkCreateBuffer (ctx->device, &bci, NULL, &b->buffer), "Creating a buffer", error))
    {
      g_free (b);
      return NULL;
    }
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements (ctx->device, b->buffer, &req);
  VkMemoryAllocateInfo mai = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
    .allocationSize = req.size,
    .memoryTypeIndex = pool->memory_type,
  };
  VkResult ar = ctx->inject_alloc ? ctx->inject_alloc : vkAllocateMemory (ctx->device, &mai, NULL, &b->memory);
  if (!dcr_vk_check (ar, "Allocating GPU memory", error))
    goto fail_buffer;
  if (!dcr_vk_check (vkBindBufferMemory (ctx->device, b->buffer, b->memory, 0), "Binding GPU memory", error))
    goto fail_memory;
  if (pool->host_visible &&
      !dcr_vk_check (vkMapMemory (ctx->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped), "Mapping GPU memory", error))
    goto fail_memory;
  dcr_range_alloc_init (&b->ranges, size);
  ctx->stats.pool_blocks++;
  ctx->stats.pool_block_bytes += size;
  return b;

fail_memory:
  vkFreeMemory (ctx->device, b->memory, NULL);
fail_buffer:
  vkDestroyBuffer (ctx->device, b->buffer, NULL);
  g_free (b);
  return NULL;
}

DcrBuffer *
dcr_buffer_new (DcrContext *ctx, DcrPoolKind kind, gsize size, GError **error)
{
  g_return_val_if_fail (kind < DCR_N_POOLS, NULL);
  if (size > ctx->info.max_storage_buffer_range)
    {
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_TOO_LARGE,
                   "A %.1f MiB buffer exceeds this device's limit of %.1f MiB per storage buffer "
                   "(%s); split the tensor or use a smaller batch",
                   size / 1048576.0, ctx->info.max_storage_buffer_range / 1048576.0, ctx->info.name);
      return NULL;
    }
  guint64 align = ctx->min_storage_align;
  guint64 alloc = (MAX (size, 1) + align - 1) & ~(align - 1);
  DcrPool *pool = &ctx->pools[kind];
  DcrPoolBlock *block = NULL;
  guint64 offset = 0;

  g_mutex_lock (&ctx->lock);
  for (guint i = 0; i < pool->blocks->len && !block; i++)
    {
      DcrPoolBlock *b = g_ptr_array_index (pool->blocks, i);
      if (dcr_range_alloc_take (&b->ranges, alloc, align, &offset))
        block = b;
    }
  if (!block)
    {
      block = block_new (ctx, pool, MAX (alloc, ctx->block_size), error);
      if (!block)
        {
          g_mutex_unlock (&ctx->lock);
          return NULL;
        }
      g_ptr_array_add (pool->blocks, block);
      gboolean ok = dcr_range_alloc_take (&block->ranges, alloc, align, &offset);
      g_assert (ok);
    }
  ctx->stats.live_buffers++;
  ctx->stats.live_bytes += alloc;
  g_mutex_unlock (&ctx->lock);

  DcrBuffer *buf = g_new0 (DcrBuffer, 1);
  buf->ctx = ctx;
  buf->pool = pool;
  buf->block = block;
  buf->offset = offset;
  buf->size = size;
  buf->alloc_size = alloc;
  return buf;
}

void
dcr_buffer_free (DcrBuffer *buf)
{
  if (!buf)
    return;
  DcrContext *ctx = buf->ctx;
  DcrPool *pool = buf->pool;
  g_mutex_lock (&ctx->lock);
  dcr_range_alloc_give (&buf->block->ranges, buf->offset, buf->alloc_size);
  ctx->stats.live_buffers--;
  ctx->stats.live_bytes -= buf->alloc_size;
  /* Keep the first block of each pool for reuse; give back the others
   * (oversized ones in particular) as soon as they empty. */
  if (dcr_range_alloc_empty (&buf->block->ranges) && g_ptr_array_index (pool->blocks, 0) != buf->block)
    {
      g_ptr_array_remove (pool->blocks, buf->block);
      block_destroy (ctx, buf->block);
    }
  g_mutex_unlock (&ctx->lock);
  g_free (buf);
}

gsize
dcr_buffer_size (const DcrBuffer *buf)
{
  return buf->size;
}

typedef struct {
  VkBuffer src, dst;
  VkBufferCopy region;
} CopyJob;

static void
record_copy (VkCommandBuffer cb, gpointer data)
{
  CopyJob *job = data;
  vkCmdCopyBuffer (cb, job->src, job->dst, 1, &job->region);
}

static gboolean
check_range (DcrBuffer *buf, gsize offset, gsize n, GError **error)
{
  if (offset > buf->size || n > buf->size - offset)
    {
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_FAILED,
                   "Transfer of %" G_GSIZE_FORMAT " bytes at offset %" G_GSIZE_FORMAT
                   " runs past the end of a %" G_GUINT64_FORMAT "-byte buffer", n, offset, buf->size);
      return FALSE;
    }
  return TRUE;
}

static gboolean
transfer (DcrBuffer *buf, gsize offset, void *host, gsize n, gboolean upload, GError **error)
{
  if (!check_range (buf, offset, n, error))
    return FALSE;
  if (buf->block->mapped)
    {
      char *dev = (char *) buf->block->mapped + buf->offset + offset;
      if (upload)
        memcpy (dev, host, n);
      else
        memcpy (host, dev, n);
      return TRUE;
    }
  g_autoptr (DcrBuffer) staging = dcr_buffer_new (buf->ctx, DCR_POOL_STAGING, MIN (n, DCR_STAGING_CHUNK), error);
  if (!staging)
    return FALSE;
  char *stage = (char *) staging->block->mapped + staging->offset;
  for (gsize done = 0; done < n;)
    {
      gsize chunk = MIN (n - done, DCR_STAGING_CHUNK);
      CopyJob job;
      if (upload)
        {
          memcpy (stage, (char *) host + done, chunk);
          job = (CopyJob) { staging->block->buffer, buf->block->buffer,
                            { staging->offset, buf->offset + offset + done, chunk } };
        }
      else
        job = (CopyJob) { buf->block->buffer, staging->block->buffer,
                          { buf->offset + offset + done, staging->offset, chunk } };
      if (!dcr_vk_run_once (buf->ctx, record_copy, &job, error))
        return FALSE;
      if (!upload)
        memcpy ((char *) host + done, stage, chunk);
      done += chunk;
    }
  return TRUE;
}

gboolean
dcr_buffer_upload (DcrBuffer *buf, gsize offset, const void *src, gsize n, GError **error)
{
  return transfer (buf, offset, (void *) src, n, TRUE, error);
}

gboolean
dcr_buffer_download (DcrBuffer *buf, gsize offset, void *dst, gsize n, GError **error)
{
  return transfer (buf, offset, dst, n, FALSE, error);
}

typedef struct {
  VkBuffer buffer;
  VkDeviceSize offset, size;
} FillJob;

static void
record_fill (VkCommandBuffer cb, gpointer data)
{
  FillJob *job = data;
  vkCmdFillBuffer (cb, job->buffer, job->offset, job->size, 0);
}

gboolean
dcr_buffer_fill_zero (DcrBuffer *buf, GError **error)
{
  if (buf->block->mapped)
    {
      memset ((char *) buf->block->mapped + buf->offset, 0, buf->size);
      return TRUE;
    }
  /* alloc_size is a multiple of 16, as vkCmdFillBuffer wants */
  FillJob job = { buf->block->buffer, buf->offset, buf->alloc_size };
  return dcr_vk_run_once (buf->ctx, record_fill, &job, error);
}

gsize
dcr_dtype_size (DcrDtype dt)
{
  switch (dt)
    {
    case DCR_F32: case DCR_I32: case DCR_U32: return 4;
    case DCR_F16: return 2;
    case DCR_U8: return 1;
    }
  return 0;
}

const char *
dcr_dtype_name (DcrDtype dt)
{
  static const char *names[] = { "f32", "f16", "u8", "i32", "u32" };
  return dt <= DCR_U32 ? names[dt] : "?";
}

DcrTensor *
dcr_tensor_new (DcrContext *ctx, DcrPoolKind pool, DcrDtype dtype, int ndim,
                const gint64 *shape, GError **error)
{
  g_return_val_if_fail (ndim >= 1 && ndim <= DCR_MAX_DIMS, NULL);
  DcrTensor *t = g_new0 (DcrTensor, 1);
  t->dtype = dtype;
  t->ndim = ndim;
  gint64 n = 1;
  for (int i = 0; i < ndim; i++)
    {
      if (shape[i] <= 0 || n > G_MAXINT64 / shape[i])
        {
          g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_TOO_LARGE,
                       "Invalid tensor shape (dimension %d is %" G_GINT64_FORMAT ")", i, shape[i]);
          g_free (t);
          return NULL;
        }
      t->shape[i] = shape[i];
      n *= shape[i];
    }
  if ((guint64) n > G_MAXSIZE / dcr_dtype_size (dtype))
    {
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_TOO_LARGE, "Tensor too large");
      g_free (t);
      return NULL;
    }
  t->buf = dcr_buffer_new (ctx, pool, (gsize) n * dcr_dtype_size (dtype), error);
  if (!t->buf)
    {
      g_free (t);
      return NULL;
    }
  return t;
}

void
dcr_tensor_free (DcrTensor *t)
{
  if (!t)
    return;
  dcr_buffer_free (t->buf);
  g_free (t);
}

gint64
dcr_tensor_numel (const DcrTensor *t)
{
  gint64 n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

gsize
dcr_tensor_bytes (const DcrTensor *t)
{
  return (gsize) dcr_tensor_numel (t) * dcr_dtype_size (t->dtype);
}

gboolean
dcr_tensor_upload (DcrTensor *t, const void *src, GError **error)
{
  return dcr_buffer_upload (t->buf, 0, src, dcr_tensor_bytes (t), error);
}

gboolean
dcr_tensor_download (DcrTensor *t, void *dst, GError **error)
{
  return dcr_buffer_download (t->buf, 0, dst, dcr_tensor_bytes (t), error);
}

gboolean
dcr_tensor_download_floats (DcrTensor *t, float *dst, gsize n, GError **error)
{
  g_return_val_if_fail (t->dtype == DCR_F32 || t->dtype == DCR_F16, FALSE);
  g_return_val_if_fail (n <= (gsize) dcr_tensor_numel (t), FALSE);
  if (t->dtype == DCR_F16)
    {
      g_autofree guint16 *h = g_new (guint16, MAX (n, 1));
      if (!dcr_buffer_download (t->buf, 0, h, n * sizeof (guint16), error))
        return FALSE;
      dcr_half_to_floats (dst, h, n);
      return TRUE;
    }
  return dcr_buffer_download (t->buf, 0, dst, n * sizeof (float), error);
}
