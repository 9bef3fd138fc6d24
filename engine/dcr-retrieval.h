/* dcr-retrieval.h — exact cosine top-k over the memory bank on the GPU: the
 * enabled prototypes are uploaded once (fp16 where the device stores 16-bit
 * values) and reloaded when the bank's generation changes; a query batch is
 * L2-normalised, scored against the bank with one GEMM per chunk (a bank
 * larger than the device's buffer limit is split) and reduced by top-k,
 * the chunks' candidates merged by a second top-k. */
#pragma once

#include "dcr-vk.h"
#include "dcr-bank.h"

G_BEGIN_DECLS

#define DCR_RETRIEVAL_ERROR (dcr_retrieval_error_quark ())
GQuark dcr_retrieval_error_quark (void);

typedef enum {
  DCR_RETRIEVAL_ERROR_EMPTY,     /* no enabled prototype to retrieve from */
  DCR_RETRIEVAL_ERROR_MISMATCH,  /* feature width or dtype differs */
  DCR_RETRIEVAL_ERROR_INVALID,   /* bad argument (k, batch, NaN feature…) */
  DCR_RETRIEVAL_ERROR_STALE,     /* a run recorded before the prototypes were reloaded */
} DcrRetrievalError;

typedef struct _DcrRetrieval DcrRetrieval;

/* `dtype` is the storage of prototypes, queries and scores (DCR_F16 needs
 * 16-bit storage); `max_batch` the most queries one run may take (0 → 256):
 * it bounds the score matrix of a chunk, and so the chunk size. */
DcrRetrieval *dcr_retrieval_new (DcrContext *ctx, guint dim, DcrDtype dtype, guint max_batch, GError **error);
void dcr_retrieval_free (DcrRetrieval *r);

DcrContext *dcr_retrieval_context (DcrRetrieval *r);
guint dcr_retrieval_dim (DcrRetrieval *r);
DcrDtype dcr_retrieval_dtype (DcrRetrieval *r);
/* Caps the rows per chunk below what the buffer limit allows (tests use it
 * to split small banks); applies from the next load. 0 → no cap. */
void dcr_retrieval_set_max_chunk_rows (DcrRetrieval *r, gsize rows);

/* Loads n prototypes [n, dim] (normalised on the way in; a zero or
 * non-finite row is refused) with their ids (NULL → 0 … n−1). */
gboolean dcr_retrieval_set_features (DcrRetrieval *r, const float *features, const gint64 *ids, gsize n,
                                     GError **error);
/* Loads the bank's enabled prototypes unless this bank at this generation is
 * what is loaded already; *reloaded (may be NULL) says whether it loaded. */
gboolean dcr_retrieval_sync (DcrRetrieval *r, DcrBank *bank, gboolean *reloaded, GError **error);

gsize dcr_retrieval_count (DcrRetrieval *r);
guint dcr_retrieval_n_chunks (DcrRetrieval *r);
/* Bumped by every load: runs recorded against an older load are refused. */
guint64 dcr_retrieval_serial (DcrRetrieval *r);
/* The bank id of prototype `pos` (a position as retrieval returns it). */
gint64 dcr_retrieval_id_at (DcrRetrieval *r, gsize pos);
/* The stored unit vector of prototype `pos` (fp16-rounded with f16 storage). */
void dcr_retrieval_row (DcrRetrieval *r, gsize pos, float *out);

/* The device tensors of a batch of `batch` queries against the loaded
 * prototypes, recorded into a caller's sequence and replayed. k is clamped
 * to the number of prototypes (dcr_retrieval_run_k says what it became);
 * no prototypes at all is DCR_RETRIEVAL_ERROR_EMPTY. */
typedef struct _DcrRetrievalRun DcrRetrievalRun;

DcrRetrievalRun *dcr_retrieval_run_new (DcrRetrieval *r, guint batch, guint k, GError **error);
void dcr_retrieval_run_free (DcrRetrievalRun *run);
guint dcr_retrieval_run_batch (DcrRetrievalRun *run);
guint dcr_retrieval_run_k (DcrRetrievalRun *run);
/* Records: q̂ = normalise(queries [batch, dim]) into the run's normalised
 * tensor, scores against every chunk, top-k and merge into values [batch, k]
 * (similarities, storage dtype, descending; ties to the lower position) and
 * indices [batch, k] (u32 positions). */
gboolean dcr_retrieval_run_record (DcrRetrievalRun *run, DcrSeq *seq, const DcrTensor *queries, GError **error);
DcrTensor *dcr_retrieval_run_normalized (DcrRetrievalRun *run);
DcrTensor *dcr_retrieval_run_values (DcrRetrievalRun *run);
DcrTensor *dcr_retrieval_run_indices (DcrRetrievalRun *run);
/* Records the DCR difference tokens of the retrieved prototypes:
 * d [batch, k, dim] = |q̂ − r̂_j| and d1 [batch, dim] (or NULL) = token 0,
 * gathered from the chunks on the GPU. */
gboolean dcr_retrieval_run_record_diff (DcrRetrievalRun *run, DcrSeq *seq, DcrTensor *d, DcrTensor *d1,
                                        GError **error);
/* After the sequence ran: the first n rows' results, [n, k] bank ids and
 * similarities (either may be NULL); positions (may be NULL) as u32. */
gboolean dcr_retrieval_run_results (DcrRetrievalRun *run, guint n, gint64 *ids, float *sims, guint32 *positions,
                                    GError **error);

/* One-shot search of n host queries [n, dim]; outputs [n, k_out] where k_out
 * = min(k, count) is stored in *k_out. */
gboolean dcr_retrieval_search (DcrRetrieval *r, const float *queries, guint n, guint k, gint64 *ids,
                               float *sims, guint32 *positions, guint *k_out, GError **error);

/* Reference: exact cosine similarity in double of normalised queries
 * against the rows of bank [n, dim] as given (normalise them first for
 * cosine), the k best per query descending, ties to the lower position. */
void dcr_ref_cosine_topk (const float *bank, gsize n, guint dim, const float *queries, guint b, guint k,
                          guint32 *positions, float *sims);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrRetrieval, dcr_retrieval_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrRetrievalRun, dcr_retrieval_run_free)

G_END_DECLS
