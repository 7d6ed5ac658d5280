// collective::operation: the completion handle of an asynchronous collective. Each collective
// runs its calls in order on a detail::background_worker, so the caller computes while the bytes
// move (CocktailSGD hides its link this way). wait() blocks until the call finished and rethrows
// its failure (every wait does); test() never blocks; wait_for(d) returns false when d passed
// first. An empty (default-constructed or moved-from) operation counts as done.
#pragma once

#include "dtfm/detail/background_worker.hpp"

namespace dtfm::collective {

using operation = dtfm::detail::task_handle;

}  // namespace dtfm::collective
