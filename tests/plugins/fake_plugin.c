/* Test-only fake plugins: one source, many variants chosen by compile definitions, so that the
 * registry tests can load every broken shape a real plugin could have (see CMakeLists.txt here).
 *
 *   FAKE_NAME          plugin name (bare identifier, stringised)
 *   FAKE_KIND          SABLE_PLUGIN_MODEL (default) or SABLE_PLUGIN_ATTENTION
 *   FAKE_ABI_MAJOR     the ABI major the plugin claims (default: the host's)
 *   FAKE_PLUGIN_SIZE   SablePlugin.struct_size (default: sizeof)
 *   FAKE_API_SIZE      the kind table's struct_size (default: sizeof)
 *   FAKE_RETURN_NULL   the entry returns NULL
 *   FAKE_GENERIC       model flag SABLE_MODEL_GENERIC
 *   FAKE_ARCH          one architecture string (bare identifier), model plugins only
 *   FAKE_UNRESOLVED    references a symbol nobody defines (immediate binding must fail)
 */
#include <stddef.h>

#include "sable/sable.h"

#define FAKE_STR2(x) #x
#define FAKE_STR(x) FAKE_STR2(x)

#ifndef FAKE_KIND
#define FAKE_KIND SABLE_PLUGIN_MODEL
#endif
#ifndef FAKE_ABI_MAJOR
#define FAKE_ABI_MAJOR SABLE_ABI_MAJOR
#endif
#ifndef FAKE_PLUGIN_SIZE
#define FAKE_PLUGIN_SIZE sizeof(SablePlugin)
#endif

#ifdef FAKE_UNRESOLVED
extern int sable_fake_symbol_that_does_not_exist(void);
#endif

static SableStatus model_create(const SableHostApi* host, SableHostHandle* h, SableModel** out) {
  (void)host;
  (void)h;
  (void)out;
#ifdef FAKE_UNRESOLVED
  return sable_fake_symbol_that_does_not_exist();
#else
  return SABLE_ERR_UNSUPPORTED;
#endif
}
static void model_destroy(SableModel* model) { (void)model; }
static SableStatus model_get_info(SableModel* model, SableModelInfo* out) {
  (void)model;
  (void)out;
  return SABLE_ERR_UNSUPPORTED;
}
static SableStatus model_load_weights(SableModel* model) {
  (void)model;
  return SABLE_ERR_UNSUPPORTED;
}
static SableStatus model_forward(SableModel* model, SableOpsContext* ctx,
                                 const SableForwardBatch* batch, SableForwardOutput* out) {
  (void)model;
  (void)ctx;
  (void)batch;
  (void)out;
  return SABLE_ERR_UNSUPPORTED;
}

#ifdef FAKE_ARCH
static const char* const kArchitectures[] = {FAKE_STR(FAKE_ARCH)};
#define FAKE_NUM_ARCH 1
#else
static const char* const kArchitectures[] = {"unused"};
#define FAKE_NUM_ARCH 0
#endif
#ifdef FAKE_GENERIC
#define FAKE_FLAGS SABLE_MODEL_GENERIC
#else
#define FAKE_FLAGS 0
#endif

static const SableModelApi kModelApi = {
#ifdef FAKE_API_SIZE
    FAKE_API_SIZE,
#else
    sizeof(SableModelApi),
#endif
    FAKE_FLAGS,         FAKE_NUM_ARCH,      kArchitectures,     model_create,
    model_destroy,      model_get_info,     model_load_weights, model_forward};

static SableStatus attn_create(const SableHostApi* host, SableHostHandle* h,
                               const SableAttentionInit* init, SableAttention** out) {
  (void)host;
  (void)h;
  (void)init;
  (void)out;
  return SABLE_ERR_UNSUPPORTED;
}
static void attn_destroy(SableAttention* attn) { (void)attn; }
static SableStatus attn_plan(SableAttention* attn, const SableAttentionBatch* batch) {
  (void)attn;
  (void)batch;
  return SABLE_ERR_UNSUPPORTED;
}
static SableStatus attn_run(SableAttention* attn, SableOpsContext* ctx, int32_t layer,
                            const SableTensor* q, const SableTensor* k, const SableTensor* v,
                            float scale, SableTensor* out) {
  (void)attn;
  (void)ctx;
  (void)layer;
  (void)q;
  (void)k;
  (void)v;
  (void)scale;
  (void)out;
  return SABLE_ERR_UNSUPPORTED;
}
static const SableAttentionApi kAttentionApi = {
#ifdef FAKE_API_SIZE
    FAKE_API_SIZE,
#else
    sizeof(SableAttentionApi),
#endif
    0, NULL, NULL, attn_create, attn_destroy, attn_plan, attn_run};

static const SablePlugin kPlugin = {
    FAKE_PLUGIN_SIZE, FAKE_ABI_MAJOR, SABLE_ABI_MINOR, FAKE_STR(FAKE_NAME), "0.0.1", FAKE_KIND, 0,
    FAKE_KIND == SABLE_PLUGIN_MODEL ? (const void*)&kModelApi : (const void*)&kAttentionApi,
    "fake plugin for tests"};

SABLE_PLUGIN_EXPORT const SablePlugin* sable_plugin_entry(uint32_t host_abi_major) {
  (void)host_abi_major;
#ifdef FAKE_RETURN_NULL
  return NULL;
#else
  return &kPlugin;
#endif
}
