/* Umbrella header of the Sable plugin SDK (ABI 1.0). A plugin includes this, or the C++ helpers in
 * sable/cpp/, and nothing else from Sable. */
#ifndef SABLE_SABLE_H_
#define SABLE_SABLE_H_

#include "sable/abi.h"
#include "sable/attention.h"
#include "sable/comm.h"
#include "sable/grammar.h"
#include "sable/host.h"
#include "sable/model.h"
#include "sable/ops.h"
#include "sable/sampler.h"
#include "sable/tensor.h"

#endif /* SABLE_SABLE_H_ */
