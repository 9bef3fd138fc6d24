/* dcr-test-util.h — shared by the GPU test suites: one context per test
 * binary (with validation when the build enables it) and comparison helpers
 * that name the first mismatching element. */
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
