/* dcr-cmd-devices.c — `dcr devices`: what Vulkan devices this machine has,
 * which one DCR would pick, and the features the engine cares about. */
#include "dcr-cli.h"
#include "dcr-vk.h"

#include <json-glib/json-glib.h>
#include <stdio.h>

static char *
api_string (guint32 v)
{
  return g_strdup_printf ("%u.%u.%u", VK_API_VERSION_MAJOR (v), VK_API_VERSION_MINOR (v), VK_API_VERSION_PATCH (v));
}

static JsonNode *
device_json (const DcrDeviceInfo *d, gboolean picked)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *api = api_string (d->api_version);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "index"); json_builder_add_int_value (b, d->index);
  json_builder_set_member_name (b, "name"); json_builder_add_string_value (b, d->name);
  json_builder_set_member_name (b, "type"); json_builder_add_string_value (b, dcr_device_type_name (d->type));
  json_builder_set_member_name (b, "selected"); json_builder_add_boolean_value (b, picked);
  json_builder_set_member_name (b, "api_version"); json_builder_add_string_value (b, api);
  json_builder_set_member_name (b, "driver"); json_builder_add_string_value (b, d->driver_name);
  json_builder_set_member_name (b, "driver_info"); json_builder_add_string_value (b, d->driver_info);
  json_builder_set_member_name (b, "device_local_bytes"); json_builder_add_int_value (b, (gint64) d->device_local_bytes);
  json_builder_set_member_name (b, "max_storage_buffer_bytes"); json_builder_add_int_value (b, (gint64) d->max_storage_buffer_range);
  json_builder_set_member_name (b, "subgroup_size"); json_builder_add_int_value (b, d->subgroup_size);
  json_builder_set_member_name (b, "subgroup_arithmetic"); json_builder_add_boolean_value (b, d->subgroup_arithmetic);
  json_builder_set_member_name (b, "shader_float16"); json_builder_add_boolean_value (b, d->shader_float16);
  json_builder_set_member_name (b, "storage_16bit"); json_builder_add_boolean_value (b, d->storage_16bit);
  json_builder_set_member_name (b, "cooperative_matrix_khr"); json_builder_add_boolean_value (b, d->coopmat_khr);
  json_builder_set_member_name (b, "cooperative_matrix_nv"); json_builder_add_boolean_value (b, d->coopmat_nv);
  json_builder_set_member_name (b, "coopmat_gemm_f16"); json_builder_add_boolean_value (b, d->coopmat_f16);
  json_builder_set_member_name (b, "timestamps"); json_builder_add_boolean_value (b, d->timestamps);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static const char *
yes (gboolean v)
{
  return v ? "yes" : "no";
}

int
dcr_cmd_devices (int argc, char **argv)
{
  gboolean json = FALSE;
  const char *device = NULL;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Mark the device this selector picks", "INDEX|NAME" },
    { NULL }
  };
  g_autoptr (GOptionContext) oc = g_option_context_new ("- list Vulkan devices");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!dcr_cli_parse (oc, entries, &argc, &argv))
    return 2;

  g_autoptr (GError) err = NULL;
  g_autoptr (GArray) devs = dcr_vk_list_devices (&err);
  if (!devs)
    return dcr_cli_fail (err);
  if (!device)
    device = g_getenv ("DCR_DEVICE");
  int pick = dcr_vk_pick_device (devs, device, &err);
  if (pick < 0)
    return dcr_cli_fail (err);

  if (json)
    {
      g_autoptr (JsonArray) arr = json_array_new ();
      for (guint i = 0; i < devs->len; i++)
        json_array_add_element (arr, device_json (&g_array_index (devs, DcrDeviceInfo, i), (int) i == pick));
      g_autoptr (JsonNode) root = json_node_new (JSON_NODE_ARRAY);
      json_node_set_array (root, arr);
      g_autofree char *s = json_to_string (root, TRUE);
      printf ("%s\n", s);
      return 0;
    }

  for (guint i = 0; i < devs->len; i++)
    {
      const DcrDeviceInfo *d = &g_array_index (devs, DcrDeviceInfo, i);
      g_autofree char *api = api_string (d->api_version);
      printf ("%c %u: %s (%s)\n", (int) i == pick ? '*' : ' ', d->index, d->name, dcr_device_type_name (d->type));
      printf ("     driver: %s %s, Vulkan %s\n", d->driver_name, d->driver_info, api);
      printf ("     memory: %.1f GiB device-local, %.0f MiB max storage buffer\n",
              d->device_local_bytes / 1073741824.0, d->max_storage_buffer_range / 1048576.0);
      printf ("     fp16 arithmetic: %s, 16-bit storage: %s, cooperative matrix: KHR %s / NV %s\n",
              yes (d->shader_float16), yes (d->storage_16bit), yes (d->coopmat_khr), yes (d->coopmat_nv));
      printf ("     subgroup size: %u (arithmetic/shuffle/ballot: %s), timestamps: %s\n",
              d->subgroup_size, yes (d->subgroup_arithmetic), yes (d->timestamps));
      printf ("     fp16 GEMM/conv kernels: %s\n", d->coopmat_f16 ? "cooperative matrix (NV, 16×16×16 f16·f16+f32)"
                                                             : "fallback (no usable NV cooperative matrix)");
    }
  printf ("* = the device DCR uses (override with --device or DCR_DEVICE)\n");
  return 0;
}
