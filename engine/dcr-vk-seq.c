/* dcr-vk-seq.c — sequences: dispatches and copies recorded once into a
 * command buffer, with a barrier only where a command touches memory that
 * an earlier one wrote (or writes memory an earlier one read), then
 * submitted as often as wanted. Optional timestamps per dispatch. */
#include "dcr-vk-private.h"

#include <stdlib.h>
#include <string.h>

#define SETS_PER_POOL 256
#define MAX_TIMESTAMPS 4096

typedef struct {
  VkBuffer buffer;
  guint64 start, end;
} Span;

typedef enum { SEQ_RECORDING, SEQ_EXECUTABLE, SEQ_PENDING } SeqState;

struct _DcrSeq {
  DcrContext *ctx;
  VkCommandPool cmd_pool;
  VkCommandBuffer cb;
  VkFence fence;
  GArray *desc_pools;   /* VkDescriptorPool */
  guint sets_in_pool;
  SeqState state;
  gboolean begun;
  GError *error;        /* first recording error, reported at submit */
  GArray *writes;       /* Span: written since the last barrier */
  GArray *reads;        /* Span: read since the last barrier */
  guint n_dispatches;
  guint n_barriers;
  gboolean timing;
  VkQueryPool queries;
  guint n_queries;
  GArray *timings;      /* double ms per dispatch */
  GPtrArray *names;     /* pipeline key per timed dispatch (DCR_PROFILE) */
};

/* DCR_PROFILE=1: every sequence records timestamps, and the GPU time of
 * each pipeline (by its cache key: shader and spec constants) is summed
 * over the process and printed to stderr at exit, largest first. A
 * developer's tool for finding where a run spends its time. */
typedef struct {
  char *key;
  double ms;       /* all calls but the first */
  double first_ms; /* lavapipe compiles a pipeline's code on its first dispatch */
  guint64 n;
} ProfileEntry;

static GMutex profile_lock;
static GHashTable *profile_table;

static gint
profile_cmp (gconstpointer a, gconstpointer b)
{
  const ProfileEntry *x = *(ProfileEntry *const *) a, *y = *(ProfileEntry *const *) b;
  return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : 0;
}

static void
profile_print (void)
{
  g_mutex_lock (&profile_lock);
  g_autoptr (GPtrArray) all = g_ptr_array_new ();
  double total = 0;
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init (&it, profile_table);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      g_ptr_array_add (all, v);
      total += ((ProfileEntry *) v)->ms;
    }
  g_ptr_array_sort (all, profile_cmp);
  double first = 0;
  for (guint i = 0; i < all->len; i++)
    first += ((ProfileEntry *) all->pdata[i])->first_ms;
  g_printerr ("DCR_PROFILE: %.1f ms of GPU time in %u pipelines, first calls apart (%.1f ms: they include "
              "compiling on some drivers); ms, share, calls after the first, first call's ms, pipeline\n",
              total, all->len, first);
  for (guint i = 0; i < all->len; i++)
    {
      ProfileEntry *e = all->pdata[i];
      g_printerr ("%10.1f ms %5.1f %% %8" G_GUINT64_FORMAT " x %8.1f ms  %s\n", e->ms,
                  total > 0 ? 100 * e->ms / total : 0, e->n - 1, e->first_ms, e->key);
    }
  g_mutex_unlock (&profile_lock);
}

static gboolean
profile_enabled (void)
{
  static gsize once;
  static gboolean on;
  if (g_once_init_enter (&once))
    {
      on = g_strcmp0 (g_getenv ("DCR_PROFILE"), "1") == 0;
      if (on)
        {
          profile_table = g_hash_table_new (g_str_hash, g_str_equal);
          atexit (profile_print);
        }
      g_once_init_leave (&once, 1);
    }
  return on;
}

static void
profile_add (DcrSeq *seq)
{
  g_mutex_lock (&profile_lock);
  for (guint i = 0; i < seq->timings->len && i < seq->names->len; i++)
    {
      const char *key = seq->names->pdata[i];
      ProfileEntry *e = g_hash_table_lookup (profile_table, key);
      if (!e)
        {
          e = g_new0 (ProfileEntry, 1);
          e->key = g_strdup (key);
          g_hash_table_insert (profile_table, e->key, e);
        }
      double ms = g_array_index (seq->timings, double, i);
      if (e->n++)
        e->ms += ms;
      else
        e->first_ms = ms;
    }
  g_mutex_unlock (&profile_lock);
}

DcrSeq *
dcr_seq_new (DcrContext *ctx, GError **error)
{
  DcrSeq *seq = g_new0 (DcrSeq, 1);
  seq->ctx = ctx;
  seq->desc_pools = g_array_new (FALSE, FALSE, sizeof (VkDescriptorPool));
  seq->writes = g_array_new (FALSE, FALSE, sizeof (Span));
  seq->reads = g_array_new (FALSE, FALSE, sizeof (Span));
  seq->timings = g_array_new (FALSE, TRUE, sizeof (double));
  seq->names = g_ptr_array_new_with_free_func (g_free);

  VkCommandPoolCreateInfo cpi = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .queueFamilyIndex = ctx->queue_family,
  };
  VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  if (!dcr_vk_check (vkCreateCommandPool (ctx->device, &cpi, NULL, &seq->cmd_pool), "Creating a command pool", error) ||
      !dcr_vk_check (vkCreateFence (ctx->device, &fi, NULL, &seq->fence), "Creating a fence", error))
    {
      dcr_seq_free (seq);
      return NULL;
    }
  VkCommandBufferAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = seq->cmd_pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  if (!dcr_vk_check (vkAllocateCommandBuffers (ctx->device, &ai, &seq->cb), "Allocating a command buffer", error))
    {
      dcr_seq_free (seq);
      return NULL;
    }
  if (profile_enabled ())
    dcr_seq_enable_timing (seq);
  return seq;
}

void
dcr_seq_free (DcrSeq *seq)
{
  if (!seq)
    return;
  VkDevice dev = seq->ctx->device;
  if (seq->state == SEQ_PENDING)
    vkWaitForFences (dev, 1, &seq->fence, VK_TRUE, UINT64_MAX);
  for (guint i = 0; i < seq->desc_pools->len; i++)
    vkDestroyDescriptorPool (dev, g_array_index (seq->desc_pools, VkDescriptorPool, i), NULL);
  if (seq->queries)
    vkDestroyQueryPool (dev, seq->queries, NULL);
  if (seq->fence)
    vkDestroyFence (dev, seq->fence, NULL);
  if (seq->cmd_pool)
    vkDestroyCommandPool (dev, seq->cmd_pool, NULL);
  g_array_unref (seq->desc_pools);
  g_array_unref (seq->writes);
  g_array_unref (seq->reads);
  g_array_unref (seq->timings);
  g_ptr_array_unref (seq->names);
  g_clear_error (&seq->error);
  g_free (seq);
}

DcrContext *
dcr_seq_context (DcrSeq *seq)
{
  return seq->ctx;
}

void
dcr_seq_enable_timing (DcrSeq *seq)
{
  g_return_if_fail (!seq->begun);
  if (seq->timing || !seq->ctx->info.timestamps)
    return;
  VkQueryPoolCreateInfo qci = {
    .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
    .queryType = VK_QUERY_TYPE_TIMESTAMP,
    .queryCount = MAX_TIMESTAMPS,
  };
  if (vkCreateQueryPool (seq->ctx->device, &qci, NULL, &seq->queries) == VK_SUCCESS)
    seq->timing = TRUE;
}

static gboolean
begin (DcrSeq *seq)
{
  if (seq->error)
    return FALSE;
  if (seq->state != SEQ_RECORDING)
    {
      g_set_error (&seq->error, DCR_VK_ERROR, DCR_VK_ERROR_FAILED,
                   "A sequence cannot record more commands after it was submitted");
      return FALSE;
    }
  if (!seq->begun)
    {
      VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
      vkBeginCommandBuffer (seq->cb, &bi);
      if (seq->timing)
        {
          vkCmdResetQueryPool (seq->cb, seq->queries, 0, MAX_TIMESTAMPS);
          vkCmdWriteTimestamp (seq->cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, seq->queries, 0);
          seq->n_queries = 1;
        }
      seq->begun = TRUE;
    }
  return TRUE;
}

static gboolean
overlaps (GArray *spans, const Span *s)
{
  for (guint i = 0; i < spans->len; i++)
    {
      const Span *o = &g_array_index (spans, Span, i);
      if (o->buffer == s->buffer && o->start < s->end && s->start < o->end)
        return TRUE;
    }
  return FALSE;
}

static Span
span_of (DcrBuffer *buf, gsize offset, gsize size)
{
  if (size == 0)
    size = buf->size > offset ? buf->size - offset : 0;
  Span s = { buf->block->buffer, buf->offset + offset, buf->offset + offset + size };
  return s;
}

/* Inserts a barrier when any of the spans conflicts with unbarriered
 * accesses, then records the spans as this command's accesses. */
static void
hazard (DcrSeq *seq, const Span *spans, const gboolean *writes, guint n)
{
  gboolean need = FALSE;
  for (guint i = 0; i < n && !need; i++)
    need = overlaps (seq->writes, &spans[i]) || (writes[i] && overlaps (seq->reads, &spans[i]));
  if (need)
    {
      VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
      };
      VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
      vkCmdPipelineBarrier (seq->cb, stages, stages, 0, 1, &mb, 0, NULL, 0, NULL);
      seq->n_barriers++;
      g_array_set_size (seq->writes, 0);
      g_array_set_size (seq->reads, 0);
    }
  for (guint i = 0; i < n; i++)
    g_array_append_val (writes[i] ? seq->writes : seq->reads, spans[i]);
}

static VkDescriptorSet
alloc_set (DcrSeq *seq, DcrPipeline *pipe)
{
  VkDevice dev = seq->ctx->device;
  VkDescriptorSet set = VK_NULL_HANDLE;
  if (seq->desc_pools->len == 0 || seq->sets_in_pool == SETS_PER_POOL)
    {
      VkDescriptorPoolSize ps = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SETS_PER_POOL * 16 };
      VkDescriptorPoolCreateInfo dpci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = SETS_PER_POOL,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
      };
      VkDescriptorPool pool;
      if (!dcr_vk_check (vkCreateDescriptorPool (dev, &dpci, NULL, &pool), "Creating a descriptor pool", &seq->error))
        return VK_NULL_HANDLE;
      g_array_append_val (seq->desc_pools, pool);
      seq->sets_in_pool = 0;
    }
  VkDescriptorSetAllocateInfo dsai = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
    .descriptorPool = g_array_index (seq->desc_pools, VkDescriptorPool, seq->desc_pools->len - 1),
    .descriptorSetCount = 1,
    .pSetLayouts = &pipe->set_layout,
  };
  if (!dcr_vk_check (vkAllocateDescriptorSets (dev, &dsai, &set), "Allocating a descriptor set", &seq->error))
    return VK_NULL_HANDLE;
  seq->sets_in_pool++;
  return set;
}

void
dcr_seq_dispatch (DcrSeq *seq, DcrPipeline *pipe, const DcrBinding *bindings, guint n_bindings,
                  const void *push, guint push_size, guint32 gx, guint32 gy, guint32 gz)
{
  g_return_if_fail (pipe != NULL);
  if (!begin (seq))
    return;
  const DcrDeviceInfo *info = &seq->ctx->info;
  if (n_bindings != pipe->n_bindings || push_size != pipe->push_size)
    {
      g_set_error (&seq->error, DCR_VK_ERROR, DCR_VK_ERROR_FAILED,
                   "Dispatch of %s with %u bindings / %u push bytes; the pipeline wants %u / %u",
                   pipe->key, n_bindings, push_size, pipe->n_bindings, pipe->push_size);
      return;
    }
  if (gx == 0 || gy == 0 || gz == 0)
    return; /* nothing to do: an empty tensor */
  if (gx > info->max_workgroup_count[0] || gy > info->max_workgroup_count[1] || gz > info->max_workgroup_count[2])
    {
      g_set_error (&seq->error, DCR_VK_ERROR, DCR_VK_ERROR_TOO_LARGE,
                   "Dispatch of %s with %u×%u×%u workgroups exceeds the device limit %u×%u×%u",
                   pipe->key, gx, gy, gz, info->max_workgroup_count[0], info->max_workgroup_count[1],
                   info->max_workgroup_count[2]);
      return;
    }

  VkDescriptorSet set = alloc_set (seq, pipe);
  if (!set)
    return;
  VkDescriptorBufferInfo dbi[16];
  VkWriteDescriptorSet w[16];
  Span spans[16];
  gboolean writes[16];
  for (guint i = 0; i < n_bindings; i++)
    {
      const DcrBinding *b = &bindings[i];
      gsize size = b->size ? b->size : b->buf->size - b->offset;
      if (b->offset > b->buf->size || size > b->buf->size - b->offset || size == 0)
        {
          g_set_error (&seq->error, DCR_VK_ERROR, DCR_VK_ERROR_FAILED,
                       "Dispatch of %s: binding %u (offset %" G_GSIZE_FORMAT ", %" G_GSIZE_FORMAT
                       " bytes) lies outside its %" G_GUINT64_FORMAT "-byte buffer",
                       pipe->key, i, b->offset, size, b->buf->size);
          return;
        }
      dbi[i] = (VkDescriptorBufferInfo) { b->buf->block->buffer, b->buf->offset + b->offset, size };
      w[i] = (VkWriteDescriptorSet) {
        .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
        .dstSet = set,
        .dstBinding = i,
        .descriptorCount = 1,
        .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        .pBufferInfo = &dbi[i],
      };
      spans[i] = span_of (b->buf, b->offset, size);
      writes[i] = b->write;
    }
  vkUpdateDescriptorSets (seq->ctx->device, n_bindings, w, 0, NULL);

  hazard (seq, spans, writes, n_bindings);
  vkCmdBindPipeline (seq->cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->pipeline);
  vkCmdBindDescriptorSets (seq->cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->layout, 0, 1, &set, 0, NULL);
  if (push_size)
    vkCmdPushConstants (seq->cb, pipe->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
  vkCmdDispatch (seq->cb, gx, gy, gz);
  if (seq->timing && seq->n_queries < MAX_TIMESTAMPS)
    {
      vkCmdWriteTimestamp (seq->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, seq->queries, seq->n_queries++);
      g_ptr_array_add (seq->names, g_strdup (pipe->key));
    }
  seq->n_dispatches++;
}

void
dcr_seq_copy (DcrSeq *seq, DcrBuffer *src, gsize src_off, DcrBuffer *dst, gsize dst_off, gsize n)
{
  if (!begin (seq) || n == 0)
    return;
  if (src_off > src->size || n > src->size - src_off || dst_off > dst->size || n > dst->size - dst_off)
    {
      g_set_error (&seq->error, DCR_VK_ERROR, DCR_VK_ERROR_FAILED,
                   "Copy of %" G_GSIZE_FORMAT " bytes runs past the end of a buffer", n);
      return;
    }
  Span spans[2] = { span_of (src, src_off, n), span_of (dst, dst_off, n) };
  gboolean writes[2] = { FALSE, TRUE };
  hazard (seq, spans, writes, 2);
  VkBufferCopy region = { src->offset + src_off, dst->offset + dst_off, n };
  vkCmdCopyBuffer (seq->cb, src->block->buffer, dst->block->buffer, 1, &region);
}

void
dcr_seq_fill_zero (DcrSeq *seq, DcrBuffer *buf, gsize offset, gsize n)
{
  if (!begin (seq))
    return;
  if (n == 0)
    n = buf->size > offset ? buf->size - offset : 0;
  if (offset % 4 || n % 4 || offset > buf->size || n > buf->size - offset || n == 0)
    {
      g_set_error (&seq->error, DCR_VK_ERROR, DCR_VK_ERROR_FAILED,
                   "Zeroing %" G_GSIZE_FORMAT " bytes at offset %" G_GSIZE_FORMAT " of a %" G_GUINT64_FORMAT
                   "-byte buffer: both must be multiples of 4 and inside the buffer", n, offset, buf->size);
      return;
    }
  Span span = span_of (buf, offset, n);
  gboolean w = TRUE;
  hazard (seq, &span, &w, 1);
  vkCmdFillBuffer (seq->cb, buf->block->buffer, buf->offset + offset, n, 0);
}

static void
read_timings (DcrSeq *seq)
{
  if (!seq->timing || seq->n_queries < 2)
    return;
  g_autofree guint64 *ts = g_new0 (guint64, seq->n_queries);
  if (vkGetQueryPoolResults (seq->ctx->device, seq->queries, 0, seq->n_queries, seq->n_queries * sizeof (guint64),
                             ts, sizeof (guint64), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
    return;
  g_array_set_size (seq->timings, seq->n_queries - 1);
  for (guint i = 0; i + 1 < seq->n_queries; i++)
    g_array_index (seq->timings, double, i) =
      (double) (ts[i + 1] - ts[i]) * seq->ctx->info.timestamp_period_ns * 1e-6;
  if (profile_table)
    profile_add (seq);
}

gboolean
dcr_seq_wait (DcrSeq *seq, GError **error)
{
  if (seq->state != SEQ_PENDING)
    return TRUE;
  VkResult r = vkWaitForFences (seq->ctx->device, 1, &seq->fence, VK_TRUE, UINT64_MAX);
  seq->state = SEQ_EXECUTABLE;
  if (!dcr_vk_check (r, "Running GPU work", error))
    return FALSE;
  read_timings (seq);
  return TRUE;
}

gboolean
dcr_seq_submit (DcrSeq *seq, gboolean wait, GError **error)
{
  if (seq->error)
    {
      g_propagate_error (error, g_error_copy (seq->error));
      return FALSE;
    }
  if (seq->state == SEQ_PENDING && !dcr_seq_wait (seq, error))
    return FALSE;
  if (seq->state == SEQ_RECORDING)
    {
      if (!seq->begun && !begin (seq))
        {
          g_propagate_error (error, g_error_copy (seq->error));
          return FALSE;
        }
      if (!dcr_vk_check (vkEndCommandBuffer (seq->cb), "Recording GPU commands", error))
        return FALSE;
      seq->state = SEQ_EXECUTABLE;
    }
  DcrContext *ctx = seq->ctx;
  VkSubmitInfo si = {
    .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
    .commandBufferCount = 1,
    .pCommandBuffers = &seq->cb,
  };
  vkResetFences (ctx->device, 1, &seq->fence);
  g_mutex_lock (&ctx->lock);
  VkResult r = ctx->inject_submit ? ctx->inject_submit : vkQueueSubmit (ctx->queue, 1, &si, seq->fence);
  ctx->stats.submits++;
  g_mutex_unlock (&ctx->lock);
  if (!dcr_vk_check (r, "Submitting GPU work", error))
    return FALSE;
  seq->state = SEQ_PENDING;
  return wait ? dcr_seq_wait (seq, error) : TRUE;
}

guint
dcr_seq_n_dispatches (DcrSeq *seq)
{
  return seq->n_dispatches;
}

guint
dcr_seq_n_barriers (DcrSeq *seq)
{
  return seq->n_barriers;
}

const double *
dcr_seq_timings_ms (DcrSeq *seq, guint *n)
{
  if (!seq->timing || seq->timings->len == 0)
    {
      *n = 0;
      return NULL;
    }
  *n = seq->timings->len;
  return (const double *) seq->timings->data;
}
