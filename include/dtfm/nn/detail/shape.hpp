// Shape checks shared by the layers of dtfm::nn: a span must hold exactly the elements its shape
// names and a token id must be in the vocabulary, else a dtfm::error that names the layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "dtfm/error.hpp"

namespace dtfm::nn::detail {

// The message names scope + layer ("nn::" + "layer_norm_forward"; the CUDA stage passes "cuda::").
inline void expect_size(std::size_t got, std::size_t want, const char* layer, const char* what, const char* scope = "nn::") {
    if (got != want)
        throw error(std::string(scope) + layer + ": " + what + " has " + std::to_string(got) + " elements, the shape needs " +
                    std::to_string(want));
}

// A token or target id as a row index, or a dtfm::error when it is outside [0, vocab).
inline std::size_t token_row(std::int32_t t, std::size_t vocab, const char* layer, const char* scope = "nn::") {
    if (t < 0 || static_cast<std::size_t>(t) >= vocab)
        throw error(std::string(scope) + layer + ": token " + std::to_string(t) + " outside the vocabulary of " +
                    std::to_string(vocab));
    return static_cast<std::size_t>(t);
}

}  // namespace dtfm::nn::detail
