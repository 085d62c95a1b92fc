// The one exception type of the weights module: every checkpoint problem (bad file, bad header,
// missing tensor, bad slice) is reported as a WeightsError whose message names the file and, where
// there is one, the tensor. Callers at the plugin boundary map it to a SableStatus.
#pragma once

#include <stdexcept>
#include <string>

namespace sable::weights {

class WeightsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace sable::weights
