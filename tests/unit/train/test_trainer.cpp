// train::trainer with the toy staged model on a 2 × 2 in-process mesh: it learns and reports JSON
// lines; a run stopped at a checkpoint and resumed ends bit-identical to an uninterrupted run
// (momentum SGD, exact and cocktail-compressed data parallelism); damaged, truncated and missing
// checkpoints are refused with clear errors; a torn write leaves the previous checkpoint usable.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "dtfm/collective/compressed_allreduce.hpp"
#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/data/markov.hpp"
#include "dtfm/optim/sgd.hpp"
#include "dtfm/schedule/one_f_one_b.hpp"
#include "dtfm/strategy/data_parallel.hpp"
#include "dtfm/strategy/hybrid.hpp"
#include "dtfm/train/trainer.hpp"
#include "dtfm/transport/inproc.hpp"
#include "../../support/toy_training.hpp"

using namespace dtfm;
using dtfm::test::toy_config;
using dtfm::test::toy_stage;
using dtfm::transport::inproc;
using dtfm::transport::run_inproc;
using namespace std::chrono_literals;

namespace {

using dtfm::test::cocktail_dp;
using dtfm::test::exact_dp;

train::trainer_options base_options(std::uint64_t steps) { return dtfm::test::toy_options(steps); }

template <class DP>
dtfm::test::toy_outcome run(train::trainer_options o) {
    return dtfm::test::train_toy<DP>(std::move(o));
}

std::filesystem::path fresh_dir(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() / ("dtfm_trainer_" + name);
    std::filesystem::remove_all(dir);
    return dir;
}

}  // namespace

TEST_CASE("trainer: the loss falls and every step is a JSON line", "[trainer]") {
    std::ostringstream metrics;
    auto o = base_options(12);
    o.metrics = &metrics;
    const auto out = run<exact_dp>(o);
    REQUIRE(out.summary.reporter);
    REQUIRE(out.summary.history.size() == 12);
    REQUIRE(out.summary.history.back().loss < out.summary.history.front().loss);
    REQUIRE(std::isfinite(out.summary.final_eval_loss));
    REQUIRE(out.summary.tokens_per_s > 0);
    REQUIRE(out.summary.last.bytes_sent_pipeline > 0);
    REQUIRE(out.summary.last.bytes_sent_data_parallel > 0);
    std::istringstream lines(metrics.str());
    std::string line;
    int count = 0, with_eval = 0;
    while (std::getline(lines, line)) {
        ++count;
        REQUIRE(line.front() == '{');
        REQUIRE(line.find("\"tokens_per_s\":") != std::string::npos);
        REQUIRE(line.find("\"compression_ratio\":") != std::string::npos);
        if (line.find("\"eval_loss\":null") == std::string::npos) ++with_eval;
    }
    REQUIRE(count == 12);
    REQUIRE(with_eval == 3);  // steps 4, 8 and 12
    // Replicas of a stage hold the same parameters (ranks 0, 2 run stage 0; 1, 3 stage 1).
    REQUIRE(out.params[0] == out.params[2]);
    REQUIRE(out.params[1] == out.params[3]);
}

TEST_CASE("trainer: resuming from a checkpoint is bit-identical to never stopping", "[trainer][checkpoint]") {
    auto check = [](auto tag, const std::string& name) {
        using DP = typename decltype(tag)::type;
        const auto whole = run<DP>(base_options(10));
        const auto dir = fresh_dir(name);
        auto first = base_options(6);
        first.checkpoint_dir = dir;
        first.checkpoint_every = 3;
        run<DP>(first);
        REQUIRE(std::filesystem::exists(dir / "latest"));
        auto second = base_options(10);
        second.checkpoint_dir = dir;
        second.resume = true;
        const auto resumed = run<DP>(second);
        REQUIRE(resumed.summary.first_step == 6);
        for (std::size_t r = 0; r < 4; ++r) REQUIRE(resumed.params[r] == whole.params[r]);
        std::filesystem::remove_all(dir);
    };
    check(std::type_identity<exact_dp>{}, "exact");
    check(std::type_identity<cocktail_dp>{}, "cocktail");
}

TEST_CASE("trainer: damaged, truncated and missing checkpoints are refused", "[trainer][checkpoint]") {
    const auto dir = fresh_dir("damaged");
    auto first = base_options(4);
    first.checkpoint_dir = dir;
    run<exact_dp>(first);
    std::ifstream in(dir / "latest");
    std::string step;
    in >> step;
    const auto file = dir / step / "rank-1.ckpt";
    auto resume = base_options(6);
    resume.checkpoint_dir = dir;
    resume.resume = true;

    const auto size = std::filesystem::file_size(file);
    std::vector<char> bytes(size);
    std::ifstream(file, std::ios::binary).read(bytes.data(), static_cast<std::streamsize>(size));
    {
        auto flipped = bytes;
        flipped[size / 2] = static_cast<char>(flipped[size / 2] ^ 0x10);
        std::ofstream(file, std::ios::binary | std::ios::trunc).write(flipped.data(), static_cast<std::streamsize>(size));
        REQUIRE_THROWS_AS(run<exact_dp>(resume), dtfm::wire_error);
    }
    {
        std::ofstream(file, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(size - 7));
        REQUIRE_THROWS_AS(run<exact_dp>(resume), dtfm::wire_error);
    }
    std::filesystem::remove(file);
    REQUIRE_THROWS_AS(run<exact_dp>(resume), dtfm::config_error);
    std::filesystem::remove_all(dir);
}

TEST_CASE("trainer: a torn checkpoint write leaves the previous one loadable", "[trainer][checkpoint]") {
    const auto dir = fresh_dir("torn");
    auto first = base_options(4);
    first.checkpoint_dir = dir;
    run<exact_dp>(first);
    // A run killed while writing step 6: a half-written temporary file and a step directory that
    // `latest` never came to name.
    std::filesystem::create_directories(dir / "step-00000006");
    std::ofstream(dir / "step-00000006" / "rank-0.ckpt.tmp.999") << "half a checkpoint";
    std::ofstream(dir / "step-00000006" / "rank-1.ckpt") << "DTFMCKPT garbage";
    auto resume = base_options(6);
    resume.checkpoint_dir = dir;
    resume.resume = true;
    const auto resumed = run<exact_dp>(resume);
    REQUIRE(resumed.summary.first_step == 4);
    REQUIRE(resumed.summary.steps == 6);
    std::filesystem::remove_all(dir);
}

TEST_CASE("checkpoint: entries round-trip, hostile bytes raise wire_error", "[checkpoint]") {
    train::checkpoint c;
    const std::vector<float> v{1.5f, -2.0f};
    c.put<float>("a", v);
    const auto bytes = c.encode();
    const auto back = train::checkpoint::decode(bytes);
    std::vector<float> got;
    back.get("a", got);
    REQUIRE(got == v);
    std::vector<double> wrong;
    REQUIRE_THROWS_AS(back.get("a", wrong), dtfm::wire_error);
    REQUIRE_THROWS_AS(back.get("b", got), dtfm::wire_error);
    for (std::size_t cut = 0; cut < bytes.size(); ++cut)
        REQUIRE_THROWS_AS(train::checkpoint::decode(std::span<const std::byte>(bytes).first(cut)), dtfm::wire_error);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        auto flipped = bytes;
        flipped[i] ^= std::byte{0x01};
        REQUIRE_THROWS_AS(train::checkpoint::decode(flipped), dtfm::wire_error);
    }
}

TEST_CASE("trainer: clipping by the pipeline-wide norm keeps replicas together and still learns", "[trainer]") {
    auto o = base_options(8);
    o.max_grad_norm = 0.05f;  // far below the toy model's gradient norm: every step is clipped
    const auto clipped = run<exact_dp>(o);
    const auto free = run<exact_dp>(base_options(8));
    REQUIRE(clipped.params[0] == clipped.params[2]);
    REQUIRE(clipped.params[1] == clipped.params[3]);
    REQUIRE(clipped.params[0] != free.params[0]);
    REQUIRE(clipped.summary.history.back().loss < clipped.summary.history.front().loss);
}
