/* dcr-bench.h — the op benchmark harness behind `dcr bench ops`: each op
 * family registers one function that records its ops at realistic shapes
 * (ResNet-50, MobileNetV2, ViT-L/14 layers) and times them. */
#pragma once

#include "dcr-vk.h"

G_BEGIN_DECLS

typedef struct {
  char *op;         /* "gemm", "conv2d", … */
  char *shape;      /* human-readable, e.g. "M=3136 N=256 K=64 (resnet50 layer1 1x1)" */
  DcrDtype dtype;
  double flop;      /* floating-point ops per run (0 when not meaningful) */
  double bytes;     /* bytes moved per run, for bandwidth-bound ops */
  double min_ms;
  double median_ms;
  int repeats;
} DcrBenchResult;

typedef struct {
  int repeats;          /* timed runs per case (after one warm-up) */
  gboolean quick;       /* small shapes only (for smoke-testing the harness) */
  const char *filter;   /* run only ops whose name contains this */
} DcrBenchOptions;

/* A family's benchmark: appends DcrBenchResult to `results`. */
typedef gboolean (*DcrBenchFamily) (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error);

/* Every registered family, NULL-terminated. */
extern const DcrBenchFamily dcr_bench_families[];

gboolean dcr_bench_attn (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error);
gboolean dcr_bench_conv (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error);
gboolean dcr_bench_dcr (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error);
gboolean dcr_bench_forensic (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error);
gboolean dcr_bench_bank (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error);
gboolean dcr_bench_gemm (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error);
gboolean dcr_bench_grad (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error);

GArray *dcr_bench_results_new (void);
/* Submits `seq` (record it after dcr_seq_enable_timing) once to warm up, then `repeats` times; per-run time is the
 * sum of GPU timestamps when the device has them, else wall-clock. */
gboolean dcr_bench_time (DcrSeq *seq, int repeats, double *min_ms, double *median_ms, GError **error);
void dcr_bench_add (GArray *results, const char *op, const char *shape, DcrDtype dtype,
                    double flop, double bytes, double min_ms, double median_ms, int repeats);
gboolean dcr_bench_wanted (const DcrBenchOptions *opts, const char *op);

G_END_DECLS
