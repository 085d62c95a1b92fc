/* Sable plugin ABI: versions, status codes and the one entry point every plugin exports.
 *
 * Rules (see DESIGN.md "The plugin ABI"):
 *  - Every struct that crosses the boundary starts with `uint32_t struct_size`. Minor versions only
 *    append fields; a reader uses a field only when SABLE_HAS says the writer's struct covers it.
 *  - Only C types cross. Objects are opaque handles created and destroyed by the same side.
 *  - Fallible functions return SableStatus (SABLE_OK == 0) and report details through the host's
 *    set_error call; on failure they leave their outputs untouched.
 *  - Each shipped minor version of a table is frozen below a line "end of ABI 1.N".
 */
#ifndef SABLE_ABI_H_
#define SABLE_ABI_H_

#include <stddef.h>
#include <stdint.h>

#define SABLE_ABI_MAJOR 1
#define SABLE_ABI_MINOR 9

#ifdef __cplusplus
#define SABLE_EXTERN_C extern "C"
#else
#define SABLE_EXTERN_C
#endif

#if defined(_WIN32)
#define SABLE_PLUGIN_EXPORT SABLE_EXTERN_C __declspec(dllexport)
#else
#define SABLE_PLUGIN_EXPORT SABLE_EXTERN_C __attribute__((visibility("default")))
#endif

/* True when `ptr` (a pointer to a versioned struct) is large enough to contain `field`. */
#define SABLE_HAS(ptr, field)                                       \
  ((ptr) != NULL && (size_t)(ptr)->struct_size >=                   \
                        offsetof(__typeof__(*(ptr)), field) + sizeof((ptr)->field))

typedef int32_t SableStatus;
enum {
  SABLE_OK = 0,
  SABLE_ERR_INVALID_ARGUMENT = 1, /* a caller passed something malformed */
  SABLE_ERR_NOT_FOUND = 2,        /* a named thing (tensor, config key, plugin) does not exist */
  SABLE_ERR_UNSUPPORTED = 3,      /* valid, but this implementation cannot do it */
  SABLE_ERR_OUT_OF_MEMORY = 4,
  SABLE_ERR_DEVICE = 5, /* a CUDA/driver call failed */
  SABLE_ERR_IO = 6,
  SABLE_ERR_REJECTED = 7, /* grammar: the token is not allowed here */
  SABLE_ERR_INTERNAL = 8  /* a bug: an exception escaped, an invariant broke */
};

typedef enum SablePluginKind {
  SABLE_PLUGIN_MODEL = 1,
  SABLE_PLUGIN_ATTENTION = 2,
  SABLE_PLUGIN_SAMPLER = 3,
  SABLE_PLUGIN_GRAMMAR = 4
} SablePluginKind;

/* What sable_plugin_entry returns. Static storage, owned by the plugin, valid until unload. */
typedef struct SablePlugin {
  uint32_t struct_size;
  uint16_t abi_major;      /* must equal the host's SABLE_ABI_MAJOR */
  uint16_t abi_minor;      /* the minor the plugin was built against */
  const char* name;        /* unique among loaded plugins, e.g. "llama" */
  const char* version;     /* the plugin's own version string */
  uint32_t kind;           /* SablePluginKind */
  uint32_t reserved;       /* 0 */
  const void* api;         /* SableModelApi / SableAttentionApi / SableSamplerApi / SableGrammarApi */
  const char* description; /* one line, may be NULL */
  /* end of ABI 1.0 - do not modify above */
} SablePlugin;

/* The one exported symbol. Returns NULL when the plugin cannot serve `host_abi_major`. */
typedef const SablePlugin* (*SablePluginEntryFn)(uint32_t host_abi_major);
#define SABLE_PLUGIN_ENTRY_SYMBOL "sable_plugin_entry"

#endif /* SABLE_ABI_H_ */
