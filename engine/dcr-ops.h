/* dcr-ops.h — libdcr's tensor ops: each records GPU work into a DcrSeq
 * and has a plain-C reference (dcr_ref_*) that the tests compare it with.
 *
 * Conventions every op family follows:
 *  - Signature: gboolean dcr_op_NAME (DcrSeq *seq, tensors…, params…, GError **error).
 *    Shapes and dtypes are checked at record time; a mismatch is a
 *    DCR_OPS_ERROR with a message naming the op and both shapes. Recording
 *    never submits; the caller submits the sequence.
 *  - Outputs are preallocated by the caller (dcr_tensor_new) and passed in.
 *  - Storage dtype DCR_F32, or DCR_F16 where the device has 16-bit storage
 *    (dcr_context_device()->storage_16bit); arithmetic and accumulation are
 *    fp32 in both. fp16 variants are the same .comp compiled with -DDCR_FP16.
 *  - Activations are NHWC ([N, H, W, C], channels contiguous). Conv weights
 *    are [Cout, KH, KW, Cin/groups]; linear weights are [out, in] (PyTorch's
 *    layout), so the reduction dimension is contiguous for both.
 *  - Spec constant ids 0–2 are the local size; tile sizes and shape-derived
 *    constants are spec constants from id 3 on.
 *  - References dcr_ref_* take and return float arrays in the same layouts.
 *
 * One header per family is included from here. */
#pragma once

#include "dcr-vk.h"

G_BEGIN_DECLS

#define DCR_OPS_ERROR (dcr_ops_error_quark ())
GQuark dcr_ops_error_quark (void);

typedef enum {
  DCR_OPS_ERROR_SHAPE,       /* tensor shapes do not fit the op */
  DCR_OPS_ERROR_DTYPE,       /* dtype not supported (or not on this device) */
  DCR_OPS_ERROR_UNSUPPORTED, /* a parameter outside what the op implements */
} DcrOpsError;

typedef enum {
  DCR_ACT_NONE,
  DCR_ACT_RELU,
  DCR_ACT_RELU6,
  DCR_ACT_GELU,       /* exact, erf-based (PyTorch's default) */
  DCR_ACT_QUICK_GELU, /* x·sigmoid(1.702x), CLIP's */
} DcrAct;

const char *dcr_act_name (DcrAct act);
/* Reference activation, shared by the CPU references of every family. */
float dcr_ref_act (DcrAct act, float x);

/* Helpers for op implementations. */
gboolean dcr_ops_check_dtype (DcrSeq *seq, const char *op, const DcrTensor *t, GError **error);
/* The shader name for a family and the tensor's dtype: "gemm" → "gemm" or "gemm_f16". */
const char *dcr_ops_shader_name (const char *base, DcrDtype dtype, char *buf, gsize len);
char *dcr_ops_shape_string (const DcrTensor *t);
/* Sets a DCR_OPS_ERROR_SHAPE "op: what (a's shape[ vs b's])" and returns FALSE;
 * b may be NULL. */
gboolean dcr_ops_shape_error (GError **error, const char *op, const char *what, const DcrTensor *a,
                              const DcrTensor *b);
gboolean dcr_ops_same_shape (const DcrTensor *a, const DcrTensor *b);
/* FALSE with DCR_OPS_ERROR_UNSUPPORTED where the device has no subgroup
 * arithmetic, which kernels that reduce with subgroup ops need. */
gboolean dcr_ops_need_subgroups (DcrSeq *seq, const char *op, GError **error);
/* t's buffer seen as [rows, cols] (a copy of the struct; the buffer is t's). */
DcrTensor dcr_ops_view_2d (const DcrTensor *t, gint64 rows, gint64 cols);
/* The whole of t as a storage-buffer binding. */
DcrBinding dcr_ops_bind (const DcrTensor *t, gboolean write);

/* Vulkan's guaranteed minimum of maxComputeWorkGroupCount; kernels dispatched
 * with dcr_ops_groups stride over what does not fit. */
#define DCR_OPS_MAX_GROUPS 65535u
/* Workgroups of `local` invocations for n items, at most DCR_OPS_MAX_GROUPS. */
guint32 dcr_ops_groups (gint64 n, guint32 local);
/* Gets the pipeline of shader with these spec constants (n_bindings storage
 * buffers, push_size bytes of push constants) and records one dispatch. */
gboolean dcr_ops_dispatch (DcrSeq *seq, const char *shader, const guint32 *spec, guint n_spec,
                           const DcrBinding *bindings, guint n_bindings, const void *push, guint push_size,
                           guint32 gx, guint32 gy, guint32 gz, GError **error);

G_END_DECLS
