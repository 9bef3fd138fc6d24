/* dcr-shaders.h — the SPIR-V modules embedded at build time (shaders/embed.py). */
#pragma once

#include <glib.h>

typedef struct {
  const char *name;
  const guint32 *words;
  gsize size; /* bytes */
} DcrShaderBlob;

/* Terminated by an entry with name == NULL. */
extern const DcrShaderBlob dcr_shader_blobs[];
