// dtfm-peers-export: writes what the PyTorch peer (gpt.py) needs to train on exactly dtfm-train's
// data from exactly its initial parameters: the Markov corpus's training samples and held-out
// samples (context + 1 tokens each), the sharding order of the training set, and the tiny GPT's
// initial parameters in gpt_stage's flat order. Built and run by run.sh only (not by CMake or CI).
//
//   dtfm-peers-export OUT_DIR [SEED=1] [TRAIN_SAMPLES=4096] [HELD_OUT=64]
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "dtfm/data/markov.hpp"
#include "dtfm/data/sharding.hpp"
#include "dtfm/nn/gpt_config.hpp"
#include "dtfm/nn/gpt_stage.hpp"

namespace {

template <class T>
void write(const std::string& path, const std::vector<T>& v) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
    if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s OUT_DIR [SEED] [TRAIN_SAMPLES] [HELD_OUT]\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    const std::uint64_t seed = argc > 2 ? std::stoull(argv[2]) : 1;
    const std::uint64_t samples = argc > 3 ? std::stoull(argv[3]) : 4096;
    const std::uint64_t held_out = argc > 4 ? std::stoull(argv[4]) : 64;
    try {
        // As examples/train.cpp builds them: markov_source(32, 2, 3, seed), tiny() with the
        // corpus's vocabulary and the run's seed.
        const dtfm::data::markov_source corpus(32, 2, 3, seed);
        dtfm::nn::gpt_config cfg = dtfm::nn::gpt_config::tiny();
        cfg.vocab = static_cast<std::size_t>(corpus.vocab());
        cfg.seed = seed;
        const std::size_t length = cfg.context + 1;

        std::vector<std::int32_t> train(samples * length), eval(held_out * length);
        for (std::uint64_t id = 0; id < samples; ++id) corpus.sample(id, std::span(train).subspan(id * length, length));
        for (std::uint64_t k = 0; k < held_out; ++k)
            corpus.sample(dtfm::data::held_out_base + k, std::span(eval).subspan(k * length, length));

        // sharding's order: ids(step, r, m) = order[(step·R·M·B + (r·M + m)·B + i) mod samples].
        // One replica, one micro-batch of one: ids(s, 0, 0)[0] = order[s mod samples].
        const dtfm::data::sharding shards(samples, 1, 1, 1, seed);
        std::vector<std::uint64_t> order(samples);
        for (std::uint64_t s = 0; s < samples; ++s) order[s] = shards.ids(s, 0, 0)[0];

        const dtfm::nn::gpt_stage whole(cfg, 0, 1, 1, 1);
        const auto p = whole.parameters();
        write(dir + "/train.i32", train);
        write(dir + "/held_out.i32", eval);
        write(dir + "/order.u64", order);
        write(dir + "/init.f32", std::vector<float>(p.begin(), p.end()));
        std::ofstream meta(dir + "/meta.json");
        meta << "{\"seed\": " << seed << ", \"train_samples\": " << samples << ", \"held_out\": " << held_out
             << ", \"vocab\": " << cfg.vocab << ", \"context\": " << cfg.context << ", \"d_model\": " << cfg.d_model
             << ", \"heads\": " << cfg.heads << ", \"layers\": " << cfg.layers << ", \"parameters\": " << p.size()
             << ", \"entropy_floor\": " << corpus.loss_floor(static_cast<int>(cfg.context)) << "}\n";
        if (!meta) throw std::runtime_error("cannot write meta.json");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dtfm-peers-export: %s\n", e.what());
        return 1;
    }
    return 0;
}
