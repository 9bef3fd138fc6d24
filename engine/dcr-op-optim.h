/* dcr-op-optim.h — optimizer steps on f32 parameter tensors: AdamW (and
 * SGD with momentum), each one fused kernel in exactly the update order of
 * PyTorch 1.13's torch.optim implementations.
 *
 * The scalars that change from step to step (bias corrections, the first
 * step, a scheduled learning rate) are read from a small f32 "hyper" tensor
 * rather than recorded into the sequence: record the training step once,
 * then before each submit fill the hyper values with dcr_adamw_hyper /
 * dcr_sgd_hyper and upload them (dcr_tensor_upload). One hyper tensor serves
 * every parameter that shares the settings. */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

#define DCR_OPTIM_HYPER_LEN 8 /* floats in a hyper tensor */

typedef struct {
  double lr;           /* 1e-3 in torch */
  double beta1, beta2; /* 0.9, 0.999 */
  double eps;          /* 1e-8 */
  double weight_decay; /* 1e-2 */
} DcrAdamWConfig;

/* The hyper values of update number `step` (1 for the first update — torch's
 * count after its increment), computed in double as torch does. */
void dcr_adamw_hyper (const DcrAdamWConfig *cfg, gint64 step, float hyper[DCR_OPTIM_HYPER_LEN]);

/* One AdamW update of param from grad, exp_avg and exp_avg_sq (zeros before
 * the first step), all of one shape. max_exp_avg_sq non-NULL selects the
 * AMSGrad variant. hyper is [DCR_OPTIM_HYPER_LEN] f32. */
gboolean dcr_op_adamw (DcrSeq *seq, const DcrTensor *hyper, DcrTensor *param, const DcrTensor *grad,
                       DcrTensor *exp_avg, DcrTensor *exp_avg_sq, DcrTensor *max_exp_avg_sq, GError **error);

typedef struct {
  double lr;
  double momentum;     /* 0: plain SGD, no buffer */
  double dampening;
  double weight_decay;
  gboolean nesterov;   /* recorded into the pipeline, not the hyper values */
} DcrSgdConfig;

void dcr_sgd_hyper (const DcrSgdConfig *cfg, gint64 step, float hyper[DCR_OPTIM_HYPER_LEN]);

/* One SGD update; momentum_buf (same shape) is needed when momentum != 0 and
 * is initialised from the first step's gradient, as torch does. */
gboolean dcr_op_sgd (DcrSeq *seq, const DcrTensor *hyper, DcrTensor *param, const DcrTensor *grad,
                     DcrTensor *momentum_buf, gboolean nesterov, GError **error);

/* References with the same float arithmetic, updating in place. */
void dcr_ref_adamw (const float hyper[DCR_OPTIM_HYPER_LEN], float *param, const float *grad, float *exp_avg,
                    float *exp_avg_sq, float *max_exp_avg_sq, gint64 n);
void dcr_ref_sgd (const float hyper[DCR_OPTIM_HYPER_LEN], float *param, const float *grad, float *momentum_buf,
                  gboolean nesterov, gint64 n);

G_END_DECLS
