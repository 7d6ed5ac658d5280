// data::text_corpus: a byte-level corpus from any file (vocabulary 256: one token per byte).
// Sample `id` is the window of tokens starting at a position drawn for that id, from the training
// part (the first 90 %) or the held-out part (the last 10 %) of the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "dtfm/data/markov.hpp"
#include "dtfm/error.hpp"

namespace dtfm::data {

enum class split { train, held_out };

class text_corpus {
public:
    static text_corpus load(const std::filesystem::path& file, std::size_t max_bytes = std::size_t{1} << 30) {
        std::ifstream in(file, std::ios::binary);
        if (!in) throw config_error("text_corpus: cannot open " + file.string());
        std::vector<unsigned char> bytes;
        char buffer[1 << 16];
        while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
            const auto got = static_cast<std::size_t>(in.gcount());
            if (bytes.size() + got > max_bytes)
                throw config_error("text_corpus: " + file.string() + " is larger than " + std::to_string(max_bytes) + " bytes");
            bytes.insert(bytes.end(), buffer, buffer + got);
        }
        return text_corpus(std::move(bytes), file.string());
    }

    text_corpus(std::vector<unsigned char> bytes, std::string name = "text")
        : bytes_(std::move(bytes)), name_(std::move(name)) {
        if (bytes_.size() < 20) throw config_error("text_corpus: " + name_ + " needs at least 20 bytes");
        train_end_ = bytes_.size() - bytes_.size() / 10;
    }

    static constexpr int vocab() { return 256; }
    std::size_t size() const noexcept { return bytes_.size(); }

    // tokens.size() consecutive bytes of the chosen part; throws config_error if that part is
    // shorter than the window.
    void sample(std::uint64_t id, std::span<std::int32_t> tokens, split part = split::train) const {
        const std::size_t begin = part == split::train ? 0 : train_end_;
        const std::size_t end = part == split::train ? train_end_ : bytes_.size();
        if (end - begin < tokens.size())
            throw config_error("text_corpus: " + name_ + " has " + std::to_string(end - begin) +
                               " bytes in this part, a sample needs " + std::to_string(tokens.size()));
        std::uint64_t rng = id * 0x9e3779b97f4a7c15ull + (part == split::train ? 1 : 2);
        const std::size_t start = begin + dtfm::detail::splitmix64(rng) % (end - begin - tokens.size() + 1);
        for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<std::int32_t>(bytes_[start + i]);
    }

private:
    std::vector<unsigned char> bytes_;
    std::string name_;
    std::size_t train_end_ = 0;
};

}  // namespace dtfm::data
