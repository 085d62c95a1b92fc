/* Compiles the SDK headers as C: the boundary must stay plain C. */
#include "sable/sable.h"
int sable_sdk_headers_compile_as_c(void) { return (int)sizeof(SablePlugin); }
