/* dcr-vk-context.c — instance, device discovery and choice, the logical
 * device, the validation-layer hook and the on-disk pipeline cache. */
#include "dcr-vk-private.h"

#include <glib/gstdio.h>
#include <string.h>

G_DEFINE_QUARK (dcr-vk-error-quark, dcr_vk_error)

static const char install_hint[] =
  "Install a Vulkan driver: on Debian, `apt install mesa-vulkan-drivers` gives the CPU "
  "driver (lavapipe); for a GPU, install its vendor's Vulkan driver.";

gboolean
dcr_vk_check (VkResult r, const char *what, GError **error)
{
  if (r == VK_SUCCESS)
    return TRUE;
  switch (r)
    {
    case VK_ERROR_DEVICE_LOST:
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_DEVICE_LOST,
                   "%s: the GPU device was lost (driver reset or hang); results of this run "
                   "are void — restart the analysis, and check the driver log if it repeats", what);
      break;
    case VK_ERROR_OUT_OF_HOST_MEMORY:
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    case VK_ERROR_FRAGMENTED_POOL:
    case VK_ERROR_OUT_OF_POOL_MEMORY:
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_OUT_OF_MEMORY,
                   "%s: out of %s memory; use a smaller batch or close other GPU programs", what,
                   r == VK_ERROR_OUT_OF_HOST_MEMORY ? "host" : "device");
      break;
    case VK_ERROR_INCOMPATIBLE_DRIVER:
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_NO_DEVICE,
                   "%s: no compatible Vulkan driver. %s", what, install_hint);
      break;
    default:
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_FAILED, "%s failed (VkResult %d)", what, r);
    }
  return FALSE;
}

const char *
dcr_device_type_name (VkPhysicalDeviceType type)
{
  switch (type)
    {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
    }
}

static gboolean
has_extension (VkExtensionProperties *exts, guint32 n, const char *name)
{
  for (guint32 i = 0; i < n; i++)
    if (strcmp (exts[i].extensionName, name) == 0)
      return TRUE;
  return FALSE;
}

static int
compute_queue_family (VkPhysicalDevice pd, gboolean *timestamps)
{
  guint32 n = 0;
  vkGetPhysicalDeviceQueueFamilyProperties (pd, &n, NULL);
  g_autofree VkQueueFamilyProperties *q = g_new0 (VkQueueFamilyProperties, n);
  vkGetPhysicalDeviceQueueFamilyProperties (pd, &n, q);
  int best = -1;
  for (guint32 i = 0; i < n; i++)
    {
      if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT))
        continue;
      /* a family with graphics also has compute; any will do, first wins */
      if (best < 0)
        best = (int) i;
    }
  if (best >= 0 && timestamps)
    *timestamps = q[best].timestampValidBits > 0;
  return best;
}

/* Whether the NV cooperative-matrix extension offers the configuration the
 * coopmat GEMM is written for: 16×16×16, A and B f16, C and D f32, subgroup
 * scope. */
static gboolean
coopmat_nv_f16_config (VkInstance inst, VkPhysicalDevice pd)
{
  PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get = (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)
    vkGetInstanceProcAddr (inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
  guint32 n = 0;
  if (!get || get (pd, &n, NULL) != VK_SUCCESS || n == 0)
    return FALSE;
  g_autofree VkCooperativeMatrixPropertiesNV *cp = g_new0 (VkCooperativeMatrixPropertiesNV, n);
  for (guint32 i = 0; i < n; i++)
    cp[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
  if (get (pd, &n, cp) != VK_SUCCESS)
    return FALSE;
  for (guint32 i = 0; i < n; i++)
    if (cp[i].MSize == 16 && cp[i].NSize == 16 && cp[i].KSize == 16 &&
        cp[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV && cp[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
        cp[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV && cp[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV &&
        cp[i].scope == VK_SCOPE_SUBGROUP_NV)
      return TRUE;
  return FALSE;
}

static void
describe_device (VkInstance inst, VkPhysicalDevice pd, guint index, DcrDeviceInfo *info)
{
  memset (info, 0, sizeof *info);
  info->index = index;

  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties (pd, &props);
  g_strlcpy (info->name, props.deviceName, sizeof info->name);
  info->type = props.deviceType;
  info->api_version = props.apiVersion;
  info->vendor_id = props.vendorID;
  info->max_storage_buffer_range = props.limits.maxStorageBufferRange;
  info->max_workgroup_invocations = props.limits.maxComputeWorkGroupInvocations;
  memcpy (info->max_workgroup_count, props.limits.maxComputeWorkGroupCount, sizeof info->max_workgroup_count);
  info->max_shared_memory = props.limits.maxComputeSharedMemorySize;
  info->timestamp_period_ns = props.limits.timestampPeriod;

  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties (pd, &mem);
  for (guint32 i = 0; i < mem.memoryHeapCount; i++)
    if (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      info->device_local_bytes = MAX (info->device_local_bytes, mem.memoryHeaps[i].size);

  guint32 n_ext = 0;
  vkEnumerateDeviceExtensionProperties (pd, NULL, &n_ext, NULL);
  g_autofree VkExtensionProperties *exts = g_new0 (VkExtensionProperties, n_ext);
  vkEnumerateDeviceExtensionProperties (pd, NULL, &n_ext, exts);
  info->coopmat_khr = has_extension (exts, n_ext, "VK_KHR_cooperative_matrix");
  info->coopmat_nv = has_extension (exts, n_ext, "VK_NV_cooperative_matrix");

  compute_queue_family (pd, &info->timestamps);

  if (props.apiVersion < VK_API_VERSION_1_2)
    return; /* too old for the rest; dcr_context_new refuses it */

  VkPhysicalDeviceDriverProperties drv = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES };
  VkPhysicalDeviceSubgroupProperties sg = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES, .pNext = &drv };
  VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg };
  vkGetPhysicalDeviceProperties2 (pd, &p2);
  g_strlcpy (info->driver_name, drv.driverName, sizeof info->driver_name);
  g_strlcpy (info->driver_info, drv.driverInfo, sizeof info->driver_info);
  memcpy (info->uuid, props.pipelineCacheUUID, VK_UUID_SIZE);
  info->subgroup_size = sg.subgroupSize;
  VkSubgroupFeatureFlags need = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT |
                                VK_SUBGROUP_FEATURE_SHUFFLE_BIT | VK_SUBGROUP_FEATURE_BALLOT_BIT;
  info->subgroup_arithmetic = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                              (sg.supportedOperations & need) == need;

  VkPhysicalDeviceCooperativeMatrixFeaturesNV fcm = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV };
  VkPhysicalDeviceVulkan11Features f11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                           .pNext = info->coopmat_nv ? &fcm : NULL };
  VkPhysicalDeviceVulkan12Features f12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, .pNext = &f11 };
  VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12 };
  vkGetPhysicalDeviceFeatures2 (pd, &f2);
  info->shader_float16 = f12.shaderFloat16;
  info->storage_16bit = f11.storageBuffer16BitAccess;
  info->vulkan_memory_model = f12.vulkanMemoryModel;
  /* The coopmat GEMM (shaders/gemm_coopmat.comp, GL_NV_cooperative_matrix)
   * needs the NV feature, f16 arithmetic and storage, the Vulkan memory
   * model glslang emits for it, a subgroup of at least 16 and the 16×16×16
   * f16·f16+f32 configuration. */
  info->coopmat_f16 = info->coopmat_nv && fcm.cooperativeMatrix && info->shader_float16 && info->storage_16bit &&
                      info->vulkan_memory_model && info->subgroup_size >= 16 &&
                      !g_getenv ("DCR_NO_COOPMAT") && coopmat_nv_f16_config (inst, pd);
}

static VkResult
create_instance (gboolean validation, VkInstance *out, gboolean *have_debug_utils)
{
  const char *layers[1];
  guint n_layers = 0;
  const char *exts[1];
  guint n_exts = 0;
  *have_debug_utils = FALSE;

  if (validation)
    {
      guint32 n = 0;
      vkEnumerateInstanceLayerProperties (&n, NULL);
      g_autofree VkLayerProperties *lp = g_new0 (VkLayerProperties, n);
      vkEnumerateInstanceLayerProperties (&n, lp);
      for (guint32 i = 0; i < n; i++)
        if (strcmp (lp[i].layerName, "VK_LAYER_KHRONOS_validation") == 0)
          layers[n_layers++] = "VK_LAYER_KHRONOS_validation";
      if (n_layers == 0)
        g_printerr ("dcr: validation requested but VK_LAYER_KHRONOS_validation is not installed "
                    "(apt install vulkan-validationlayers); running without it\n");

      guint32 ne = 0;
      vkEnumerateInstanceExtensionProperties (NULL, &ne, NULL);
      g_autofree VkExtensionProperties *ep = g_new0 (VkExtensionProperties, ne);
      vkEnumerateInstanceExtensionProperties (NULL, &ne, ep);
      if (n_layers && has_extension (ep, ne, VK_EXT_DEBUG_UTILS_EXTENSION_NAME))
        {
          exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
          *have_debug_utils = TRUE;
        }
    }

  VkApplicationInfo app = {
    .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
    .pApplicationName = "dcr-forensics",
    .pEngineName = "libdcr",
    .apiVersion = VK_API_VERSION_1_3,
  };
  VkInstanceCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
    .pApplicationInfo = &app,
    .enabledLayerCount = n_layers,
    .ppEnabledLayerNames = layers,
    .enabledExtensionCount = n_exts,
    .ppEnabledExtensionNames = exts,
  };
  return vkCreateInstance (&ci, NULL, out);
}

static gboolean
enumerate (VkInstance inst, GPtrArray **phys_out, GArray **infos_out, GError **error)
{
  guint32 n = 0;
  VkResult r = vkEnumeratePhysicalDevices (inst, &n, NULL);
  if (r != VK_SUCCESS && r != VK_INCOMPLETE)
    return dcr_vk_check (r, "Listing Vulkan devices", error);
  if (n == 0)
    {
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_NO_DEVICE,
                   "No Vulkan device found. %s", install_hint);
      return FALSE;
    }
  g_autofree VkPhysicalDevice *pds = g_new0 (VkPhysicalDevice, n);
  vkEnumeratePhysicalDevices (inst, &n, pds);
  GArray *infos = g_array_sized_new (FALSE, TRUE, sizeof (DcrDeviceInfo), n);
  GPtrArray *phys = g_ptr_array_new ();
  for (guint32 i = 0; i < n; i++)
    {
      DcrDeviceInfo info;
      describe_device (inst, pds[i], i, &info);
      g_array_append_val (infos, info);
      g_ptr_array_add (phys, pds[i]);
    }
  *infos_out = infos;
  if (phys_out)
    *phys_out = phys;
  else
    g_ptr_array_unref (phys);
  return TRUE;
}

static gboolean
instance_or_error (gboolean validation, VkInstance *inst, gboolean *debug_utils, GError **error)
{
  VkResult r = create_instance (validation, inst, debug_utils);
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED)
    {
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_NO_DEVICE,
                   "No Vulkan driver could be loaded. %s", install_hint);
      return FALSE;
    }
  return dcr_vk_check (r, "Creating the Vulkan instance", error);
}

GArray *
dcr_vk_list_devices (GError **error)
{
  VkInstance inst;
  gboolean du;
  if (!instance_or_error (FALSE, &inst, &du, error))
    return NULL;
  GArray *infos = NULL;
  enumerate (inst, NULL, &infos, error);
  vkDestroyInstance (inst, NULL);
  return infos;
}

static int
type_rank (VkPhysicalDeviceType t)
{
  switch (t)
    {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

int
dcr_vk_pick_device (const GArray *devices, const char *selector, GError **error)
{
  if (devices->len == 0)
    {
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_NO_DEVICE, "No Vulkan device found. %s", install_hint);
      return -1;
    }
  if (selector && *selector)
    {
      char *end = NULL;
      guint64 idx = g_ascii_strtoull (selector, &end, 10);
      if (end && end != selector && *end == '\0')
        {
          if (idx < devices->len)
            return (int) idx;
          g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_NO_DEVICE,
                       "Device index %s does not exist: this machine has %u Vulkan device(s), "
                       "numbered 0–%u (see `dcr devices`)", selector, devices->len, devices->len - 1);
          return -1;
        }
      g_autofree char *needle = g_utf8_casefold (selector, -1);
      for (guint i = 0; i < devices->len; i++)
        {
          g_autofree char *hay = g_utf8_casefold (g_array_index (devices, DcrDeviceInfo, i).name, -1);
          if (strstr (hay, needle))
            return (int) i;
        }
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_NO_DEVICE,
                   "No Vulkan device name contains \"%s\" (see `dcr devices` for the list)", selector);
      return -1;
    }
  int best = -1, best_rank = -1;
  for (guint i = 0; i < devices->len; i++)
    {
      const DcrDeviceInfo *d = &g_array_index (devices, DcrDeviceInfo, i);
      int rank = type_rank (d->type);
      if (d->api_version < VK_API_VERSION_1_2)
        rank -= 10; /* usable only if nothing else is there, and then refused */
      if (rank > best_rank)
        {
          best = (int) i;
          best_rank = rank;
        }
    }
  return best;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
on_validation (VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT types,
               const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
  DcrContext *ctx = user;
  if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)
    {
      g_atomic_int_inc (&ctx->validation_errors);
      g_printerr ("dcr: Vulkan validation error: %s\n", data->pMessage);
    }
  return VK_FALSE;
}

static char *
default_cache_dir (void)
{
  return g_build_filename (g_get_user_cache_dir (), "dcr-forensics", NULL);
}

/* The device's UUID in hex: the on-disk files are per device. */
static char *
uuid_hex (DcrContext *ctx)
{
  char *uuid = g_malloc0 (2 * VK_UUID_SIZE + 1);
  for (guint i = 0; i < VK_UUID_SIZE; i++)
    g_snprintf (uuid + 2 * i, 3, "%02x", ctx->info.uuid[i]);
  return uuid;
}

static gboolean
cache_header_ok (DcrContext *ctx, const char *data, gsize len)
{
  guint32 words[4];
  if (len < 16 + VK_UUID_SIZE)
    return FALSE;
  memcpy (words, data, sizeof words);
  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties (ctx->phys, &props);
  return words[0] >= 16 + VK_UUID_SIZE && words[0] <= len &&
         words[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE &&
         words[2] == props.vendorID && words[3] == props.deviceID &&
         memcmp (data + 16, props.pipelineCacheUUID, VK_UUID_SIZE) == 0;
}

static void
load_pipeline_cache (DcrContext *ctx, const DcrContextOptions *opts)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!opts->no_pipeline_cache)
    {
      g_autofree char *dir = opts->pipeline_cache_dir ? g_strdup (opts->pipeline_cache_dir) : default_cache_dir ();
      g_autofree char *uuid = uuid_hex (ctx);
      g_autofree char *base = g_strdup_printf ("pipelines-%s.bin", uuid);
      ctx->pipeline_cache_path = g_build_filename (dir, base, NULL);
      /* A missing, unreadable or foreign cache only costs compile time.
       * Check the header (VkPipelineCacheHeaderVersionOne) ourselves
       * rather than handing a driver bytes meant for another one. */
      if (!g_file_get_contents (ctx->pipeline_cache_path, &data, &len, NULL) || !cache_header_ok (ctx, data, len))
        len = 0;
    }
  VkPipelineCacheCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
    .initialDataSize = len,
    .pInitialData = data,
  };
  if (vkCreatePipelineCache (ctx->device, &ci, NULL, &ctx->pipeline_cache) == VK_SUCCESS)
    ctx->stats.pipeline_cache_loaded_bytes = len;
  else
    {
      /* a corrupt file from another driver: start empty */
      ci.initialDataSize = 0;
      ci.pInitialData = NULL;
      if (vkCreatePipelineCache (ctx->device, &ci, NULL, &ctx->pipeline_cache) != VK_SUCCESS)
        ctx->pipeline_cache = VK_NULL_HANDLE;
    }
}

gboolean
dcr_context_save_pipeline_cache (DcrContext *ctx, GError **error)
{
  if (!ctx->pipeline_cache_path || ctx->pipeline_cache == VK_NULL_HANDLE)
    return TRUE;
  gsize len = 0;
  if (!dcr_vk_check (vkGetPipelineCacheData (ctx->device, ctx->pipeline_cache, &len, NULL),
                     "Reading the pipeline cache", error))
    return FALSE;
  g_autofree char *data = g_malloc (MAX (len, 1));
  if (!dcr_vk_check (vkGetPipelineCacheData (ctx->device, ctx->pipeline_cache, &len, data),
                     "Reading the pipeline cache", error))
    return FALSE;
  g_autofree char *dir = g_path_get_dirname (ctx->pipeline_cache_path);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int e = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e),
                   "Cannot create the cache directory %s: %s", dir, g_strerror (e));
      return FALSE;
    }
  /* g_file_set_contents writes a temporary file and renames it: a crash
   * leaves the old cache or the new one, never half of one. */
  return g_file_set_contents (ctx->pipeline_cache_path, data, (gssize) len, error);
}

const char *
dcr_context_pipeline_cache_path (DcrContext *ctx)
{
  return ctx->pipeline_cache_path;
}

void
dcr_vk_default_cpu_threads (void)
{
  g_autofree char *n = g_strdup_printf ("%u", MIN (4 * g_get_num_processors (), 16));
  g_setenv ("LP_NUM_THREADS", n, FALSE); /* FALSE: a value the user set stays */
}

DcrContext *
dcr_context_new (const DcrContextOptions *opts_in, GError **error)
{
  DcrContextOptions opts = { 0 };
  if (opts_in)
    opts = *opts_in;
  const char *sel = opts.device;
  if (!sel)
    sel = g_getenv ("DCR_DEVICE");
  gboolean validation = opts.validation || g_strcmp0 (g_getenv ("DCR_VALIDATION"), "1") == 0;

  DcrContext *ctx = g_new0 (DcrContext, 1);
  g_mutex_init (&ctx->lock);
  g_cond_init (&ctx->built);
  const char *fault = g_getenv ("DCR_INJECT_FAULT");
  if (g_strcmp0 (fault, "device-lost") == 0)
    ctx->inject_submit = VK_ERROR_DEVICE_LOST;
  else if (g_strcmp0 (fault, "out-of-memory") == 0)
    ctx->inject_alloc = VK_ERROR_OUT_OF_DEVICE_MEMORY;
  else if (fault && *fault)
    g_printerr ("dcr: ignoring DCR_INJECT_FAULT=%s (known: device-lost, out-of-memory)\n", fault);
  g_autoptr (GPtrArray) phys = NULL;
  g_autoptr (GArray) infos = NULL;
  gboolean debug_utils = FALSE;
  if (!instance_or_error (validation, &ctx->instance, &debug_utils, error))
    goto fail;

  if (debug_utils)
    {
      PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
        vkGetInstanceProcAddr (ctx->instance, "vkCreateDebugUtilsMessengerEXT");
      VkDebugUtilsMessengerCreateInfoEXT mci = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT,
        .pfnUserCallback = on_validation,
        .pUserData = ctx,
      };
      if (create)
        create (ctx->instance, &mci, NULL, &ctx->messenger);
    }

  if (!enumerate (ctx->instance, &phys, &infos, error))
    goto fail;
  int idx = dcr_vk_pick_device (infos, sel, error);
  if (idx < 0)
    goto fail;
  ctx->phys = g_ptr_array_index (phys, idx);
  ctx->info = g_array_index (infos, DcrDeviceInfo, idx);
  if (ctx->info.api_version < VK_API_VERSION_1_2)
    {
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_INIT,
                   "%s supports Vulkan %u.%u only; DCR Forensics needs Vulkan 1.2 (update the driver "
                   "or pick another device with --device)", ctx->info.name,
                   VK_API_VERSION_MAJOR (ctx->info.api_version), VK_API_VERSION_MINOR (ctx->info.api_version));
      goto fail;
    }

  gboolean ts = FALSE;
  int qf = compute_queue_family (ctx->phys, &ts);
  if (qf < 0)
    {
      g_set_error (error, DCR_VK_ERROR, DCR_VK_ERROR_INIT, "%s has no compute queue", ctx->info.name);
      goto fail;
    }
  ctx->queue_family = (guint32) qf;

  float prio = 1.0f;
  VkDeviceQueueCreateInfo qci = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
    .queueFamilyIndex = ctx->queue_family,
    .queueCount = 1,
    .pQueuePriorities = &prio,
  };
  /* The NV cooperative-matrix extension and feature only where the coopmat
   * GEMM will run: other devices get exactly the device they had before. */
  VkPhysicalDeviceCooperativeMatrixFeaturesNV fcm = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
    .cooperativeMatrix = VK_TRUE,
  };
  VkPhysicalDeviceVulkan11Features f11 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
    .pNext = ctx->info.coopmat_f16 ? &fcm : NULL,
    .storageBuffer16BitAccess = ctx->info.storage_16bit,
  };
  VkPhysicalDeviceVulkan12Features f12 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
    .pNext = &f11,
    .shaderFloat16 = ctx->info.shader_float16,
    .vulkanMemoryModel = ctx->info.coopmat_f16,
  };
  VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12 };
  const char *dev_exts[] = { VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME };
  VkDeviceCreateInfo dci = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
    .pNext = &f2,
    .queueCreateInfoCount = 1,
    .pQueueCreateInfos = &qci,
    .enabledExtensionCount = ctx->info.coopmat_f16 ? 1 : 0,
    .ppEnabledExtensionNames = dev_exts,
  };
  if (!dcr_vk_check (vkCreateDevice (ctx->phys, &dci, NULL, &ctx->device), "Creating the Vulkan device", error))
    goto fail;
  vkGetDeviceQueue (ctx->device, ctx->queue_family, 0, &ctx->queue);
  vkGetPhysicalDeviceMemoryProperties (ctx->phys, &ctx->mem_props);

  VkCommandPoolCreateInfo cpi = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT | VK_COMMAND_POOL_CREATE_TRANSIENT_BIT,
    .queueFamilyIndex = ctx->queue_family,
  };
  if (!dcr_vk_check (vkCreateCommandPool (ctx->device, &cpi, NULL, &ctx->cmd_pool), "Creating a command pool", error))
    goto fail;

  dcr_vk_memory_init (ctx);
  ctx->pipelines = g_hash_table_new (g_str_hash, g_str_equal);
  ctx->building = g_hash_table_new (g_str_hash, g_str_equal);
  ctx->used_keys = g_ptr_array_new_with_free_func (g_free);
  load_pipeline_cache (ctx, &opts);
  if (opts.warm_profile && ctx->pipeline_cache_path)
    {
      g_autofree char *dir = g_path_get_dirname (ctx->pipeline_cache_path);
      g_autofree char *uuid = uuid_hex (ctx);
      g_autofree char *base = g_strdup_printf ("warm-%s-%s.txt", uuid, opts.warm_profile);
      ctx->warm_path = g_build_filename (dir, base, NULL);
      dcr_vk_warm_start (ctx);
    }
  return ctx;

fail:
  dcr_context_free (ctx);
  return NULL;
}

void
dcr_context_free (DcrContext *ctx)
{
  if (!ctx)
    return;
  if (ctx->device)
    {
      vkDeviceWaitIdle (ctx->device);
      if (ctx->pipelines)
        {
          dcr_vk_warm_finish (ctx);
          g_autoptr (GError) err = NULL;
          if (!dcr_context_save_pipeline_cache (ctx, &err))
            g_printerr ("dcr: could not save the pipeline cache: %s\n", err->message);
          dcr_vk_pipelines_destroy (ctx);
          g_hash_table_unref (ctx->pipelines);
        }
      if (ctx->pipeline_cache)
        vkDestroyPipelineCache (ctx->device, ctx->pipeline_cache, NULL);
      if (ctx->pools[0].blocks)
        dcr_vk_memory_destroy (ctx);
      if (ctx->cmd_pool)
        vkDestroyCommandPool (ctx->device, ctx->cmd_pool, NULL);
      vkDestroyDevice (ctx->device, NULL);
    }
  if (ctx->messenger)
    {
      PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)
        vkGetInstanceProcAddr (ctx->instance, "vkDestroyDebugUtilsMessengerEXT");
      if (destroy)
        destroy (ctx->instance, ctx->messenger, NULL);
    }
  if (ctx->instance)
    vkDestroyInstance (ctx->instance, NULL);
  g_free (ctx->pipeline_cache_path);
  g_free (ctx->warm_path);
  g_clear_pointer (&ctx->warm_keys, g_ptr_array_unref);
  g_clear_pointer (&ctx->used_keys, g_ptr_array_unref);
  g_clear_pointer (&ctx->building, g_hash_table_unref);
  g_cond_clear (&ctx->built);
  g_mutex_clear (&ctx->lock);
  g_free (ctx);
}

const DcrDeviceInfo *
dcr_context_device (DcrContext *ctx)
{
  return &ctx->info;
}

guint
dcr_context_validation_errors (DcrContext *ctx)
{
  return (guint) g_atomic_int_get (&ctx->validation_errors);
}

void
dcr_context_stats (DcrContext *ctx, DcrContextStats *out)
{
  g_mutex_lock (&ctx->lock);
  *out = ctx->stats;
  g_mutex_unlock (&ctx->lock);
}

gboolean
dcr_vk_run_once (DcrContext *ctx, void (*record) (VkCommandBuffer cb, gpointer data),
                 gpointer data, GError **error)
{
  VkCommandBufferAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = ctx->cmd_pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  VkCommandBuffer cb;
  gboolean ok = FALSE;
  g_mutex_lock (&ctx->lock);
  if (!dcr_vk_check (vkAllocateCommandBuffers (ctx->device, &ai, &cb), "Allocating a command buffer", error))
    {
      g_mutex_unlock (&ctx->lock);
      return FALSE;
    }
  VkCommandBufferBeginInfo bi = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
  };
  vkBeginCommandBuffer (cb, &bi);
  record (cb, data);
  vkEndCommandBuffer (cb);
  VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  VkFence fence = VK_NULL_HANDLE;
  VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb };
  if (dcr_vk_check (vkCreateFence (ctx->device, &fi, NULL, &fence), "Creating a fence", error) &&
      dcr_vk_check (ctx->inject_submit ? ctx->inject_submit : vkQueueSubmit (ctx->queue, 1, &si, fence),
                    "Submitting a transfer", error) &&
      dcr_vk_check (vkWaitForFences (ctx->device, 1, &fence, VK_TRUE, UINT64_MAX), "Waiting for a transfer", error))
    ok = TRUE;
  ctx->stats.submits++;
  if (fence)
    vkDestroyFence (ctx->device, fence, NULL);
  vkFreeCommandBuffers (ctx->device, ctx->cmd_pool, 1, &cb);
  g_mutex_unlock (&ctx->lock);
  return ok;
}
