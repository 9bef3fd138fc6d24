/* dcr-op-optim.c — AdamW and SGD steps (shader optim.comp), their hyper
 * values and references. */
#include "dcr-op-optim.h"

#include <math.h>

#define OPTIM_LOCAL 256

enum { OPTIM_ADAMW, OPTIM_SGD };

void
dcr_adamw_hyper (const DcrAdamWConfig *cfg, gint64 step, float hyper[DCR_OPTIM_HYPER_LEN])
{
  double bc1 = 1 - pow (cfg->beta1, (double) step), bc2 = 1 - pow (cfg->beta2, (double) step);
  hyper[0] = (float) (1 - cfg->lr * cfg->weight_decay);
  hyper[1] = (float) cfg->beta1;
  hyper[2] = (float) (1 - cfg->beta1);
  hyper[3] = (float) cfg->beta2;
  hyper[4] = (float) (1 - cfg->beta2);
  hyper[5] = (float) (cfg->lr / bc1);
  hyper[6] = (float) sqrt (bc2);
  hyper[7] = (float) cfg->eps;
}

void
dcr_sgd_hyper (const DcrSgdConfig *cfg, gint64 step, float hyper[DCR_OPTIM_HYPER_LEN])
{
  hyper[0] = (float) cfg->lr;
  hyper[1] = (float) cfg->momentum;
  hyper[2] = (float) (1 - cfg->dampening);
  hyper[3] = (float) cfg->weight_decay;
  hyper[4] = step <= 1 ? 1.0f : 0.0f;
  hyper[5] = hyper[6] = hyper[7] = 0;
}

static gboolean
check (const char *op, const char *name, const DcrTensor *t, const DcrTensor *param, GError **error)
{
  if (!t)
    return TRUE;
  if (t->dtype != DCR_F32)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE,
                   "%s: %s is %s; optimizer state and parameters are f32", op, name, dcr_dtype_name (t->dtype));
      return FALSE;
    }
  if (param && dcr_tensor_numel (t) != dcr_tensor_numel (param))
    {
      g_autofree char *a = dcr_ops_shape_string (t);
      g_autofree char *b = dcr_ops_shape_string (param);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "%s: %s %s does not match the parameter %s",
                   op, name, a, b);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_hyper (const char *op, const DcrTensor *hyper, GError **error)
{
  if (!check (op, "hyper", hyper, NULL, error))
    return FALSE;
  if (dcr_tensor_numel (hyper) < DCR_OPTIM_HYPER_LEN)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "%s: hyper needs %d floats, has %" G_GINT64_FORMAT,
                   op, DCR_OPTIM_HYPER_LEN, dcr_tensor_numel (hyper));
      return FALSE;
    }
  return TRUE;
}

static gboolean
optim_dispatch (DcrSeq *seq, guint mode, gboolean flag_a, gboolean flag_b, gboolean flag_c, const DcrTensor *hyper,
                DcrTensor *param, const DcrTensor *grad, DcrTensor *m, DcrTensor *v, DcrTensor *vmax,
                GError **error)
{
  gint64 n = dcr_tensor_numel (param);
  if (n == 0)
    return TRUE;
  guint32 spec[] = { OPTIM_LOCAL, 1, 1, mode };
  /* unused state bindings alias the parameter and are never touched */
  DcrBinding b[] = {
    dcr_ops_bind (hyper, FALSE), dcr_ops_bind (param, TRUE), dcr_ops_bind (grad, FALSE),
    dcr_ops_bind (m ? m : param, TRUE), dcr_ops_bind (v ? v : param, TRUE), dcr_ops_bind (vmax ? vmax : param, TRUE),
  };
  guint32 push[] = { (guint32) n, (flag_a ? 1u : 0u) | (flag_b ? 2u : 0u) | (flag_c ? 4u : 0u) };
  return dcr_ops_dispatch (seq, "optim", spec, G_N_ELEMENTS (spec), b, G_N_ELEMENTS (b), push, sizeof push,
                           dcr_ops_groups (n, OPTIM_LOCAL), 1, 1, error);
}

gboolean
dcr_op_adamw (DcrSeq *seq, const DcrTensor *hyper, DcrTensor *param, const DcrTensor *grad, DcrTensor *exp_avg,
              DcrTensor *exp_avg_sq, DcrTensor *max_exp_avg_sq, GError **error)
{
  g_return_val_if_fail (hyper && param && grad && exp_avg && exp_avg_sq, FALSE);
  const char *op = "adamw";
  if (!check_hyper (op, hyper, error) || !check (op, "param", param, NULL, error)
      || !check (op, "grad", grad, param, error) || !check (op, "exp_avg", exp_avg, param, error)
      || !check (op, "exp_avg_sq", exp_avg_sq, param, error)
      || !check (op, "max_exp_avg_sq", max_exp_avg_sq, param, error))
    return FALSE;
  return optim_dispatch (seq, OPTIM_ADAMW, max_exp_avg_sq != NULL, FALSE, FALSE, hyper, param, grad, exp_avg,
                         exp_avg_sq, max_exp_avg_sq, error);
}

gboolean
dcr_op_sgd (DcrSeq *seq, const DcrTensor *hyper, DcrTensor *param, const DcrTensor *grad, DcrTensor *momentum_buf,
            gboolean nesterov, GError **error)
{
  g_return_val_if_fail (hyper && param && grad, FALSE);
  const char *op = "sgd";
  if (!check_hyper (op, hyper, error) || !check (op, "param", param, NULL, error)
      || !check (op, "grad", grad, param, error) || !check (op, "momentum_buf", momentum_buf, param, error))
    return FALSE;
  if (nesterov && !momentum_buf)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "%s: Nesterov momentum needs a momentum buffer (and momentum > 0)", op);
      return FALSE;
    }
  return optim_dispatch (seq, OPTIM_SGD, FALSE, momentum_buf != NULL, nesterov, hyper, param, grad, momentum_buf,
                         NULL, NULL, error);
}

void
dcr_ref_adamw (const float hyper[DCR_OPTIM_HYPER_LEN], float *param, const float *grad, float *exp_avg,
               float *exp_avg_sq, float *max_exp_avg_sq, gint64 n)
{
  for (gint64 i = 0; i < n; i++)
    {
      float g = grad[i];
      float w = param[i] * hyper[0];
      float m = exp_avg[i] * hyper[1] + hyper[2] * g;
      float v = exp_avg_sq[i] * hyper[3] + hyper[4] * g * g;
      exp_avg[i] = m;
      exp_avg_sq[i] = v;
      if (max_exp_avg_sq)
        {
          v = MAX (max_exp_avg_sq[i], v);
          max_exp_avg_sq[i] = v;
        }
      float denom = sqrtf (v) / hyper[6] + hyper[7];
      param[i] = w - hyper[5] * (m / denom);
    }
}

void
dcr_ref_sgd (const float hyper[DCR_OPTIM_HYPER_LEN], float *param, const float *grad, float *momentum_buf,
             gboolean nesterov, gint64 n)
{
  for (gint64 i = 0; i < n; i++)
    {
      float w = param[i];
      float d = grad[i] + hyper[3] * w;
      if (momentum_buf)
        {
          float buf = hyper[4] != 0 ? d : momentum_buf[i] * hyper[1] + hyper[2] * d;
          momentum_buf[i] = buf;
          d = nesterov ? d + hyper[1] * buf : buf;
        }
      param[i] = w - hyper[0] * d;
    }
}
