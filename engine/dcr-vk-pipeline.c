/* dcr-vk-pipeline.c — compute pipelines from the embedded SPIR-V, keyed by
 * (shader, specialization constants, bindings, push-constant size) and
 * built once per context; VkPipelineCache makes the next process's build
 * cheap too. */
#include "dcr-vk-private.h"
#include "dcr-shaders.h"

#include <string.h>

static const DcrShaderBlob *
find_blob (const char *name)
{
  for (const DcrShaderBlob *b = dcr_shader_blobs; b->name; b++)
    if (strcmp (b->name, name) == 0)
      return b;
  return NULL;
}

gboolean
dcr_shader_exists (const char *shader)
{
  return find_blob (shader) != NULL;
}

static void
pipeline_destroy (DcrContext *ctx, DcrPipeline *p)
{
  if (p->pipeline)
    vkDestroyPipeline (ctx->device, p->pipeline, NULL);
  if (p->layout)
    vkDestroyPipelineLayout (ctx->device, p->layout, NULL);
  if (p->set_layout)
    vkDestroyDescriptorSetLayout (ctx->device, p->set_layout, NULL);
  if (p->module)
    vkDestroyShaderModule (ctx->device, p->module, NULL);
  g_free (p->key);
  g_free (p);
}

void
dcr_vk_pipelines_destroy (DcrContext *ctx)
{
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init (&it, ctx->pipelines);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      g_hash_table_iter_steal (&it);
      pipeline_destroy (ctx, v);
    }
}

#define DCR_MAX_SPEC 32
#define DCR_MAX_BINDINGS 16

static DcrPipeline *
pipeline_build (DcrContext *ctx, const DcrShaderBlob *blob, const guint32 *spec, guint n_spec,
                guint n_bindings, guint push_size, GError **error)
{
  DcrPipeline *p = g_new0 (DcrPipeline, 1);
  p->n_bindings = n_bindings;
  p->push_size = push_size;

  VkShaderModuleCreateInfo smci = {
    .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
    .codeSize = blob->size,
    .pCode = blob->words,
  };
  if (!dcr_vk_check (vkCreateShaderModule (ctx->device, &smci, NULL, &p->module), "Loading a shader", error))
    goto fail;

  VkDescriptorSetLayoutBinding b[DCR_MAX_BINDINGS];
  for (guint i = 0; i < n_bindings; i++)
    b[i] = (VkDescriptorSetLayoutBinding) {
      .binding = i,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .descriptorCount = 1,
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    };
  VkDescriptorSetLayoutCreateInfo dslci = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
    .bindingCount = n_bindings,
    .pBindings = b,
  };
  if (!dcr_vk_check (vkCreateDescriptorSetLayout (ctx->device, &dslci, NULL, &p->set_layout),
                     "Creating a descriptor set layout", error))
    goto fail;

  VkPushConstantRange pcr = { VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size };
  VkPipelineLayoutCreateInfo plci = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
    .setLayoutCount = 1,
    .pSetLayouts = &p->set_layout,
    .pushConstantRangeCount = push_size ? 1 : 0,
    .pPushConstantRanges = &pcr,
  };
  if (!dcr_vk_check (vkCreatePipelineLayout (ctx->device, &plci, NULL, &p->layout), "Creating a pipeline layout", error))
    goto fail;

  VkSpecializationMapEntry entries[DCR_MAX_SPEC];
  for (guint i = 0; i < n_spec; i++)
    entries[i] = (VkSpecializationMapEntry) { i, i * 4, 4 };
  VkSpecializationInfo si = {
    .mapEntryCount = n_spec,
    .pMapEntries = entries,
    .dataSize = n_spec * 4,
    .pData = spec,
  };
  VkComputePipelineCreateInfo cpci = {
    .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
    .stage = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
      .module = p->module,
      .pName = "main",
      .pSpecializationInfo = n_spec ? &si : NULL,
    },
    .layout = p->layout,
  };
  VkResult r = vkCreateComputePipelines (ctx->device, ctx->pipeline_cache, 1, &cpci, NULL, &p->pipeline);
  if (r != VK_SUCCESS)
    {
      g_autoptr (GError) e = NULL;
      dcr_vk_check (r, "Creating a compute pipeline", &e);
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_SHADER, "Shader %s: %s", blob->name, e->message);
      p->pipeline = VK_NULL_HANDLE;
      goto fail;
    }
  return p;

fail:
  pipeline_destroy (ctx, p);
  return NULL;
}

/* The pipeline of a key, built once. The build runs outside the context's
 * lock, so that the warm-up thread and the caller build different pipelines
 * at the same time; whoever asks for a key already being built waits for
 * it. `warm`: asked by the warm-up thread (the pipeline does not count as
 * used). */
static DcrPipeline *
pipeline_get (DcrContext *ctx, const char *shader, const guint32 *spec, guint n_spec, guint n_bindings,
              guint push_size, gboolean warm, GError **error)
{
  if (n_spec > DCR_MAX_SPEC || n_bindings > DCR_MAX_BINDINGS || push_size > 128 || push_size % 4)
    {
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_SHADER,
                   "Shader %s: unsupported pipeline shape (%u spec constants, %u bindings, %u push bytes)",
                   shader, n_spec, n_bindings, push_size);
      return NULL;
    }
  const DcrShaderBlob *blob = find_blob (shader);
  if (!blob)
    {
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_SHADER,
                   "Shader %s is not built into this libdcr (rebuild, or check the name)", shader);
      return NULL;
    }

  GString *key = g_string_new (shader);
  g_string_append_printf (key, "|b%u|p%u|", n_bindings, push_size);
  for (guint i = 0; i < n_spec; i++)
    g_string_append_printf (key, "%x,", spec[i]);

  g_mutex_lock (&ctx->lock);
  DcrPipeline *p;
  while (!(p = g_hash_table_lookup (ctx->pipelines, key->str)) && g_hash_table_contains (ctx->building, key->str))
    g_cond_wait (&ctx->built, &ctx->lock);
  if (p)
    {
      ctx->stats.pipeline_cache_hits++;
      if (!warm && !p->used)
        {
          p->used = TRUE;
          g_ptr_array_add (ctx->used_keys, g_strdup (p->key));
        }
      g_mutex_unlock (&ctx->lock);
      g_string_free (key, TRUE);
      return p;
    }
  g_hash_table_add (ctx->building, key->str);
  g_mutex_unlock (&ctx->lock);

  gint64 t0 = g_get_monotonic_time ();
  p = pipeline_build (ctx, blob, spec, n_spec, n_bindings, push_size, error);
  /* DCR_DEBUG_PIPELINES=1: one line per pipeline built, with its compile
   * time — the way to find shape-specialised pipelines that multiply. */
  if (g_strcmp0 (g_getenv ("DCR_DEBUG_PIPELINES"), "1") == 0)
    g_printerr ("dcr: pipeline %s built in %.1f ms%s\n", key->str, (g_get_monotonic_time () - t0) / 1000.0,
                warm ? " (warm-up)" : "");

  g_mutex_lock (&ctx->lock);
  g_hash_table_remove (ctx->building, key->str);
  if (p)
    {
      p->key = g_string_free (key, FALSE);
      g_hash_table_insert (ctx->pipelines, p->key, p);
      ctx->stats.pipelines_created++;
      if (!warm)
        {
          p->used = TRUE;
          g_ptr_array_add (ctx->used_keys, g_strdup (p->key));
        }
    }
  else
    g_string_free (key, TRUE);
  g_cond_broadcast (&ctx->built);
  g_mutex_unlock (&ctx->lock);
  return p;
}

DcrPipeline *
dcr_pipeline_get (DcrContext *ctx, const char *shader, const guint32 *spec, guint n_spec,
                  guint n_bindings, guint push_size, GError **error)
{
  return pipeline_get (ctx, shader, spec, n_spec, n_bindings, push_size, FALSE, error);
}

/* A key back into its parts: "shader|bN|pM|spec,spec,…," (hex spec values). */
static gboolean
parse_key (const char *key, char *shader, gsize shader_size, guint32 *spec, guint *n_spec, guint *n_bindings,
           guint *push_size)
{
  g_auto (GStrv) parts = g_strsplit (key, "|", 0);
  if (g_strv_length (parts) != 4 || !parts[0][0] || strlen (parts[0]) >= shader_size || parts[1][0] != 'b'
      || parts[2][0] != 'p')
    return FALSE;
  guint64 b, pu;
  if (!g_ascii_string_to_unsigned (parts[1] + 1, 10, 0, DCR_MAX_BINDINGS, &b, NULL)
      || !g_ascii_string_to_unsigned (parts[2] + 1, 10, 0, 128, &pu, NULL))
    return FALSE;
  g_strlcpy (shader, parts[0], shader_size);
  *n_bindings = (guint) b;
  *push_size = (guint) pu;
  *n_spec = 0;
  g_auto (GStrv) vals = g_strsplit (parts[3], ",", 0);
  for (guint i = 0; vals[i]; i++)
    {
      if (!vals[i][0] && !vals[i + 1])
        break; /* the trailing comma */
      guint64 v;
      if (*n_spec >= DCR_MAX_SPEC || !g_ascii_string_to_unsigned (vals[i], 16, 0, G_MAXUINT32, &v, NULL))
        return FALSE;
      spec[(*n_spec)++] = (guint32) v;
    }
  return TRUE;
}

static gpointer
warm_thread (gpointer data)
{
  DcrContext *ctx = data;
  for (guint i = 0; i < ctx->warm_keys->len && !g_atomic_int_get (&ctx->warm_stop); i++)
    {
      char shader[64];
      guint32 spec[DCR_MAX_SPEC];
      guint n_spec, n_bindings, push_size;
      /* a line this build cannot use (another version's shader) is skipped */
      if (parse_key (ctx->warm_keys->pdata[i], shader, sizeof shader, spec, &n_spec, &n_bindings, &push_size)
          && find_blob (shader))
        pipeline_get (ctx, shader, spec, n_spec, n_bindings, push_size, TRUE, NULL);
    }
  return NULL;
}

void
dcr_vk_warm_start (DcrContext *ctx)
{
  g_autofree char *text = NULL;
  if (!ctx->warm_path || !g_file_get_contents (ctx->warm_path, &text, NULL, NULL))
    return;
  g_auto (GStrv) lines = g_strsplit (text, "\n", 0);
  ctx->warm_keys = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; lines[i]; i++)
    if (lines[i][0])
      g_ptr_array_add (ctx->warm_keys, g_strdup (lines[i]));
  if (ctx->warm_keys->len)
    ctx->warm_thread = g_thread_new ("dcr-warm-up", warm_thread, ctx);
}

void
dcr_vk_warm_finish (DcrContext *ctx)
{
  if (ctx->warm_thread)
    {
      g_atomic_int_set (&ctx->warm_stop, 1);
      g_thread_join (ctx->warm_thread);
      ctx->warm_thread = NULL;
    }
  if (!ctx->warm_path || !ctx->used_keys || !ctx->used_keys->len)
    return;
  /* unchanged: leave the file alone */
  gboolean same = ctx->warm_keys && ctx->warm_keys->len == ctx->used_keys->len;
  for (guint i = 0; same && i < ctx->used_keys->len; i++)
    same = g_str_equal (ctx->warm_keys->pdata[i], ctx->used_keys->pdata[i]);
  if (same)
    return;
  GString *out = g_string_new (NULL);
  for (guint i = 0; i < ctx->used_keys->len; i++)
    g_string_append_printf (out, "%s\n", (const char *) ctx->used_keys->pdata[i]);
  g_autofree char *dir = g_path_get_dirname (ctx->warm_path);
  /* a list that cannot be written only costs the next run its warm-up */
  if (g_mkdir_with_parents (dir, 0700) == 0)
    g_file_set_contents (ctx->warm_path, out->str, (gssize) out->len, NULL);
  g_string_free (out, TRUE);
}
