/* dcr-test-util.h — shared by the GPU test suites: one context per test
 * binary (with validation when the build enables it), comparison helpers
 * that name the first mismatching element, and host <-> tensor transfers. */
#pragma once

#include "dcr-vk.h"

DcrContext *dcr_test_context (void);
/* Fails the test if the validation layer reported anything so far. */
void dcr_test_assert_no_validation_errors (void);
void dcr_test_context_teardown (void);

/* |got - want| <= atol + rtol * |want| for every element. */
void dcr_test_assert_close (const char *what, const float *got, const float *want, gsize n,
                            double atol, double rtol);
/* Deterministic pseudo-random floats in [lo, hi). */
void dcr_test_fill (float *x, gsize n, guint32 seed, float lo, float hi);
/* dcr_test_fill into a new array (at least one element, so n = 0 is fine); g_free it. */
float *dcr_test_random_floats (gsize n, guint32 seed, float lo, float hi);

/* ---- tensors from host floats, in f32 or f16 storage ---- */

/* Whether the test device has 16-bit storage, i.e. runs the f16 variants. */
gboolean dcr_test_device_has_f16 (void);
/* Rounds x in place to what a dt tensor holds (f16: to nearest even; other
 * dtypes unchanged), so that a reference sees exactly what the device reads. */
void dcr_test_round_to_dtype (float *x, gsize n, DcrDtype dt);
/* Writes numel floats into t, converted to f16 for an f16 tensor (any other
 * dtype gets the bytes as they are). */
void dcr_test_upload_floats (DcrTensor *t, const float *data);
/* An 8-bit RGB image tensor (dcr_image_tensor_new, activations pool) holding
 * h × w × 3 pixels. */
DcrTensor *dcr_test_image_tensor (const guint8 *pixels, gint64 h, gint64 w);
/* m such images back to back (dcr_images_tensor_new, [m, h, w, 3]). */
DcrTensor *dcr_test_images_tensor (const guint8 *pixels, gint64 m, gint64 h, gint64 w);
/* A new tensor in pool holding data as above, or zeros when data is NULL. */
DcrTensor *dcr_test_upload_tensor (DcrPoolKind pool, DcrDtype dt, int ndim, const gint64 *shape,
                                   const float *data);
/* dcr_test_upload_tensor into the activations pool, then data rounded in
 * place to dt: a reference computed from data sees what the GPU reads. */
DcrTensor *dcr_test_upload_rounded (DcrDtype dt, int ndim, const gint64 *shape, float *data);
/* t's numel values as floats (converted from f16) into out. */
void dcr_test_download_into (DcrTensor *t, float *out);
/* The same into a new array; g_free it. */
float *dcr_test_download_floats (DcrTensor *t);

DcrSeq *dcr_test_seq_new (void);
/* Submits seq, waits, and fails the test on an error. */
void dcr_test_submit_wait (DcrSeq *seq);
