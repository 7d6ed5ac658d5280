// sim::simulate: the closed-form pipeline bubble, hand-computed transfers and all-reduces, the
// utilisation sums, compression on slow links, the memory check and bad plans.
#include <catch2/catch.hpp>

#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "dtfm/compress/cast.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/payload.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/error.hpp"
#include "dtfm/plan/plan_file.hpp"
#include "dtfm/plan/topology.hpp"
#include "dtfm/sim/simulator.hpp"

using namespace dtfm;
using namespace dtfm::sim;

namespace {

// n devices of `tflops` peak (memory unchecked), the same delay and bandwidth on every link;
// regions[i] names device i's region when given.
plan::topology uniform_topology(int n, double delay_ms, double gbps, double tflops = 1,
                                std::vector<std::string> regions = {}) {
    std::vector<plan::device> devices;
    for (int i = 0; i < n; ++i) {
        devices.push_back({"gpu" + std::to_string(i), regions.empty() ? "r0" : regions[static_cast<std::size_t>(i)], "test",
                           tflops, 0});
    }
    const auto cells = static_cast<std::size_t>(n) * static_cast<std::size_t>(n);
    return plan::topology::from_matrices(devices, std::vector<double>(cells, delay_ms), std::vector<double>(cells, gbps));
}

// A bare stack of blocks (no embedding or head): every stage costs the same.
gpt_config small_model(int layers) {
    gpt_config c;
    c.layers = layers;
    c.d_model = 64;
    c.heads = 4;
    c.sequence = 16;
    c.vocab = 0;
    return c;
}

sim_options exact(int microbatches) {
    sim_options o;
    o.microbatches = microbatches;
    o.efficiency = 1;
    return o;
}

constexpr double free_link_gbps = 1e15;  // a link whose transfers take no measurable time

}  // namespace

TEST_CASE("simulator: GPipe reproduces the closed-form bubble", "[sim][simulator]") {
    for (const int stages : {1, 2, 4, 8}) {
        for (const int m : {1, 3, 8, 32}) {
            const auto t = uniform_topology(stages, 0, free_link_gbps);
            const auto model = small_model(stages);
            const auto r = simulate<schedule::gpipe>(t, stages, model, exact(m));
            INFO("stages " << stages << ", micro-batches " << m);
            REQUIRE(r.bubble_fraction == Approx(double(stages - 1) / (m + stages - 1)).margin(1e-9));
            // One block per stage at 1 TFLOP/s: (M + S − 1)·(t_f + t_b).
            const double tf = block_forward_flops(model) / 1e12;
            REQUIRE(r.iteration_seconds == Approx((m + stages - 1) * 3 * tf).epsilon(1e-9));
        }
    }
}

TEST_CASE("simulator: 1F1B has the same bubble as GPipe", "[sim][simulator]") {
    for (const int stages : {2, 4, 8}) {
        for (const int m : {1, 4, 8, 32}) {
            const auto t = uniform_topology(2 * stages, 0, free_link_gbps);
            const auto r = simulate<schedule::one_f_one_b>(t, stages, small_model(stages), exact(m));
            INFO("stages " << stages << ", micro-batches " << m);
            REQUIRE(r.bubble_fraction == Approx(double(stages - 1) / (m + stages - 1)).margin(1e-6));
        }
    }
}

TEST_CASE("simulator: one transfer takes latency plus bytes over bandwidth", "[sim][simulator]") {
    // Two stages on two devices, 10 ms and 1 Gbit/s between them; compute nearly free.
    const auto t = uniform_topology(2, 10, 1, 1e6);
    const auto model = small_model(2);
    const auto r = simulate(t, 2, model, exact(1));
    const double bytes = double(compress::payload_header::size + 4 * boundary_elements(model));
    const double transfer = 0.010 + bytes * 8 / 1e9;
    const double tf = block_forward_flops(model) / 1e18;
    // forward, activation, forward, backward, gradient, backward
    REQUIRE(r.iteration_seconds == Approx(2 * transfer + 6 * tf).epsilon(1e-12));
    // The critical path is that chain, link steps included, from 0 to the end.
    REQUIRE(r.critical_path.size() == 6);
    REQUIRE(r.critical_path[1].resource == "link 0->1");
    REQUIRE(r.critical_path[1].end - r.critical_path[1].start == Approx(transfer));
    REQUIRE(r.critical_path[4].resource == "link 1->0");
    REQUIRE(r.critical_path.front().start == 0);
    REQUIRE(r.critical_path.back().end == Approx(r.iteration_seconds));
}

TEST_CASE("simulator: messages on one link queue first-in first-out", "[sim][simulator]") {
    // Compute free, a slow link: M activations leave back to back, so the last arrives after M
    // transfer times plus one latency.
    const auto t = uniform_topology(2, 5, 0.1, 1e6);
    const auto model = small_model(2);
    const int m = 4;
    auto o = exact(m);
    o.pipeline_links = {link_rule{0, codec::none(), codec::of<compress::quantize<8>>("q8")}};
    const auto r = simulate<schedule::gpipe>(t, 2, model, o);
    const double bytes = double(compress::payload_header::size + 4 * boundary_elements(model));
    const double gbytes = double(compress::quantize<8>().max_payload_bytes(boundary_elements(model)));
    // GPipe: all forward activations queue, then the gradients go back the other way.
    const double expected = m * bytes * 8 / 1e8 + 0.005 + m * gbytes * 8 / 1e8 + 0.005;
    REQUIRE(r.iteration_seconds == Approx(expected).epsilon(1e-6));
}

TEST_CASE("simulator: ring all-reduce takes 2(R-1) steps of latency plus a segment", "[sim][simulator]") {
    // One stage, four replicas: every device computes the same, then the ring runs.
    const auto t = uniform_topology(4, 3, 2, 1e6);
    const auto model = small_model(1);
    const auto r = simulate(t, 1, model, exact(1));
    const double n = double(block_parameters(model));
    REQUIRE(block_parameters(model) % 4 == 0);
    const double ring = 2 * 3 * (0.003 + 4 * n / 4 * 8 / 2e9);
    REQUIRE(r.allreduce_seconds.at(0) == Approx(ring).epsilon(1e-9));
    REQUIRE(r.iteration_seconds == Approx(ring + r.pipeline_seconds).epsilon(1e-9));
    REQUIRE(r.critical_path.back().what.find("ring all-reduce of stage 0, step 5") != std::string::npos);
}

TEST_CASE("simulator: a ring with one slow link takes 2(R-1) steps of that link", "[sim][simulator]") {
    // Four replicas, no latency, 5 Gbit/s everywhere but 0.5 Gbit/s on 0→1: the slow link carries
    // one segment per step and is never idle, so the ring ends after 6 of its transfers.
    std::vector<plan::device> devices;
    for (int i = 0; i < 4; ++i) devices.push_back({"gpu" + std::to_string(i), "r0", "test", 1e6, 0});
    std::vector<double> delay(16, 0), bw(16, 5);
    bw[0 * 4 + 1] = 0.5;
    const auto t = plan::topology::from_matrices(devices, delay, bw);
    const auto model = small_model(1);
    const auto r = simulate(t, 1, model, exact(1));
    const double segment = 4.0 * double(block_parameters(model)) / 4;
    REQUIRE(r.allreduce_seconds.at(0) == Approx(6 * segment * 8 / 0.5e9).epsilon(1e-9));
}

TEST_CASE("simulator: two-phase compressed all-reduce by hand, with and without a NIC cap", "[sim][simulator]") {
    const auto t = uniform_topology(4, 3, 2, 1e6);
    const auto model = small_model(1);
    auto o = exact(1);
    o.allreduce = allreduce_kind::compressed;
    o.allreduce_codec = codec::of<compress::quantize<8>>("q8");
    const std::size_t seg = block_parameters(model) / 4;
    const double c = double(compress::quantize<8>().max_payload_bytes(seg));
    // Phase 1 and phase 2 each: three messages on three links at once.
    auto r = simulate(t, 1, model, o);
    REQUIRE(r.allreduce_seconds.at(0) == Approx(2 * (0.003 + c * 8 / 2e9)).epsilon(1e-9));
    // A NIC as fast as one link: the three messages of a phase leave one after another.
    o.nic_gbps = 2;
    r = simulate(t, 1, model, o);
    REQUIRE(r.allreduce_seconds.at(0) == Approx(2 * (0.003 + 3 * c * 8 / 2e9)).epsilon(1e-9));
}

TEST_CASE("simulator: hierarchical all-reduce keeps the slow links for the leaders", "[sim][simulator]") {
    // Two regions of four; 10 Gbit/s inside, 0.1 Gbit/s and 50 ms across.
    std::vector<std::string> regions = {"a", "a", "a", "a", "b", "b", "b", "b"};
    std::vector<plan::device> devices;
    for (int i = 0; i < 8; ++i) devices.push_back({"gpu" + std::to_string(i), regions[std::size_t(i)], "test", 1e6, 0});
    std::vector<double> delay(64), bw(64);
    for (int i = 0; i < 8; ++i)
        for (int j = 0; j < 8; ++j) {
            const bool same = regions[std::size_t(i)] == regions[std::size_t(j)];
            delay[std::size_t(i * 8 + j)] = same ? 1 : 50;
            bw[std::size_t(i * 8 + j)] = same ? 10 : 0.1;
        }
    const auto t = plan::topology::from_matrices(devices, delay, bw);
    auto model = small_model(1);
    model.d_model = 256;
    auto o = exact(1);
    const auto ring = simulate(t, 1, model, o);
    o.allreduce = allreduce_kind::compressed;
    o.allreduce_codec = codec::of<compress::cocktail<>>("cocktail");
    const auto flat = simulate(t, 1, model, o);
    o.allreduce = allreduce_kind::hierarchical;
    const auto hier = simulate(t, 1, model, o);
    REQUIRE(flat.iteration_seconds < ring.iteration_seconds);
    REQUIRE(hier.iteration_seconds < ring.iteration_seconds);
    // Only the two leaders cross regions, so the slow phase is one latency each way at most twice.
    REQUIRE(hier.allreduce_seconds.at(0) > 2 * 0.050);
    REQUIRE(hier.allreduce_seconds.at(0) < 2 * 0.050 + 0.05);
}

TEST_CASE("simulator: per-device busy time sums to the FLOPs over the rates", "[sim][simulator]") {
    const auto t = plan::load_topology(std::filesystem::path(DTFM_SCENARIO_DIR) / "dtfm-case3-multi-datacenter.json");
    auto model = gpt_config::gpt3_1_3b();
    auto o = sim_options{};
    o.microbatches = 16;
    const auto r = simulate(t, 8, model, o);
    const auto costs = stage_costs(model, 8);
    double flops = 0;
    for (const auto& c : costs) flops += 8.0 * o.microbatches * (c.forward_flops + c.backward_flops);
    const double rate = 125e12 * o.efficiency;
    REQUIRE(std::accumulate(r.busy_seconds.begin(), r.busy_seconds.end(), 0.0) == Approx(flops / rate).epsilon(1e-9));
    double fractions = 0;
    for (std::size_t d = 0; d < r.busy_fraction.size(); ++d) {
        REQUIRE(r.busy_fraction[d] > 0);
        REQUIRE(r.busy_fraction[d] <= 1);
        REQUIRE(r.busy_fraction[d] * r.iteration_seconds == Approx(r.busy_seconds[d]));
        fractions += r.busy_fraction[d];
    }
    REQUIRE(fractions * r.iteration_seconds == Approx(flops / rate).epsilon(1e-9));
    REQUIRE(r.tokens_per_second == Approx(16.0 * 2048 * 8 / r.iteration_seconds));
    // The critical path runs from time 0 to the end without gaps.
    REQUIRE(r.critical_path.front().start == 0);
    REQUIRE(r.critical_path.back().end == Approx(r.iteration_seconds));
    for (std::size_t i = 1; i < r.critical_path.size(); ++i)
        REQUIRE(r.critical_path[i].start >= r.critical_path[i - 1].start);
}

TEST_CASE("simulator: compression cuts the time on a slow link", "[sim][simulator]") {
    const auto t = uniform_topology(4, 1, 0.2, 100);
    auto model = small_model(4);
    model.d_model = 512;
    model.sequence = 128;  // 256 KiB activations: about 10 ms each at 0.2 Gbit/s
    auto o = exact(8);
    const auto plain = simulate(t, 4, model, o);
    o.pipeline_links = {link_rule{0, codec::of<compress::quantize<4>>("q4"), codec::of<compress::quantize<8>>("q8")}};
    const auto activations = simulate(t, 4, model, o);
    REQUIRE(activations.pipeline_seconds < 0.5 * plain.pipeline_seconds);
    // Data parallel: 4 replicas of one stage, cocktail in the two-phase all-reduce.
    auto d = exact(1);
    const auto ring = simulate(t, 1, model, d);
    d.allreduce = allreduce_kind::compressed;
    d.allreduce_codec = codec::of<compress::cocktail<>>("cocktail");
    const auto cocktail = simulate(t, 1, model, d);
    REQUIRE(cocktail.allreduce_seconds.at(0) < 0.5 * ring.allreduce_seconds.at(0));
    // A codec that runs slower than the link it saves makes things worse, not better.
    o.pipeline_links = {link_rule{0, codec::of("q4", compress::quantize<4>(), 1e3), codec::none()}};
    REQUIRE(simulate(t, 4, model, o).pipeline_seconds > plain.pipeline_seconds);
}

TEST_CASE("simulator: link rules pick a codec by bandwidth class", "[sim][simulator]") {
    // 0→1 fast, 1→2 slow: only the slow link compresses when the fast class is uncompressed.
    std::vector<plan::device> devices;
    for (int i = 0; i < 3; ++i) devices.push_back({"gpu" + std::to_string(i), "r0", "test", 1e6, 0});
    std::vector<double> delay(9, 0), bw(9, 100);
    bw[1 * 3 + 2] = 1;
    const auto t = plan::topology::from_matrices(devices, delay, bw);
    auto o = exact(1);
    o.pipeline_links = {link_rule{10, codec::none(), codec::none()},
                        link_rule{0, codec::of<compress::cast<compress::fp16>>("fp16"), codec::none()}};
    const auto r = simulate<schedule::gpipe>(t, 3, small_model(3), o);
    bool saw_fast = false, saw_slow = false;
    const auto n = boundary_elements(small_model(3));
    for (const auto& step : r.critical_path) {
        if (step.resource == "link 0->1") {
            saw_fast = step.what.find(std::to_string(compress::payload_header::size + 4 * n) + " bytes") != std::string::npos;
        }
        if (step.resource == "link 1->2") {
            saw_slow = step.what.find(std::to_string(compress::payload_header::size + 2 * n) + " bytes") != std::string::npos;
        }
    }
    REQUIRE(saw_fast);
    REQUIRE(saw_slow);
}

TEST_CASE("simulator: the memory check rejects an over-full device", "[sim][simulator]") {
    const auto t = plan::load_topology(std::filesystem::path(DTFM_SCENARIO_DIR) / "dtfm-case1-datacenter-ondemand.json");
    const auto model = gpt_config::gpt3_1_3b();
    sim_options o;
    o.microbatches = 128;
    // GPipe holds all 128 micro-batches' activations; 1F1B at most 8.
    REQUIRE_THROWS_AS(simulate<schedule::gpipe>(t, 8, model, o), config_error);
    REQUIRE_NOTHROW(simulate<schedule::one_f_one_b>(t, 8, model, o));
    const auto need = memory_bytes<schedule::gpipe>(t, default_placement(t, 8), model, 128);
    REQUIRE(need[0] > 32.0 * (1 << 30));
    o.check_memory = false;
    REQUIRE_NOTHROW(simulate<schedule::gpipe>(t, 8, model, o));
}

TEST_CASE("simulator: bad plans and options are config errors", "[sim][simulator]") {
    const auto t = uniform_topology(8, 1, 1);
    const auto model = small_model(8);
    // 3 stages do not divide 8 devices.
    REQUIRE_THROWS_AS(simulate(t, 3, model, exact(1)), config_error);
    // A plan of 16 ranks names devices 8…15, which a topology of 8 does not have.
    const auto wide = plan::parse_placement(R"({"pipelines": [[0,1,2,3,4,5,6,7],[8,9,10,11,12,13,14,15]]})");
    REQUIRE_THROWS_AS(simulate(t, wide, model, exact(1)), config_error);
    // More stages than layers, no micro-batch, an efficiency out of (0, 1].
    REQUIRE_THROWS_AS(simulate(t, 8, small_model(4), exact(1)), config_error);
    REQUIRE_THROWS_AS(simulate(t, 8, model, exact(0)), config_error);
    auto o = exact(1);
    o.efficiency = 0;
    REQUIRE_THROWS_AS(simulate(t, 8, model, o), config_error);
    // A device with no peak cannot compute.
    REQUIRE_THROWS_AS(simulate(plan::topology::uniform(2, 1, 1), 2, small_model(2), exact(1)), config_error);
}

TEST_CASE("simulator: devices sharing host cores wait for one", "[sim][simulator]") {
    // 1 stage × 4 replicas on free links: each replica runs M forward and M backward ops alone.
    const int m = 3;
    const auto t = uniform_topology(4, 0, free_link_gbps);
    const auto model = small_model(2);
    const double op_pair = 3 * 2 * block_forward_flops(model) / 1e12;  // forward + backward of 2 blocks
    auto o = exact(m);
    const auto alone = simulate<schedule::one_f_one_b>(t, 1, model, o);
    REQUIRE(alone.pipeline_seconds == Approx(m * op_pair).epsilon(1e-9));
    for (const int cores : {1, 2, 4}) {
        o.host_cores = cores;
        const auto shared = simulate<schedule::one_f_one_b>(t, 1, model, o);
        INFO("cores " << cores);
        // The replicas in turns of `cores` at a time, first come first served: 4 ÷ cores turns.
        REQUIRE(shared.pipeline_seconds == Approx(4 / cores * m * op_pair).epsilon(1e-9));
    }
    // 3 cores: between the work spread evenly (4/3 turns) and whole turns (2).
    o.host_cores = 3;
    const auto three = simulate<schedule::one_f_one_b>(t, 1, model, o);
    REQUIRE(three.pipeline_seconds >= 4.0 / 3 * m * op_pair * (1 - 1e-9));
    REQUIRE(three.pipeline_seconds < 2 * m * op_pair);
    o.host_cores = 0;
    REQUIRE_THROWS_AS(simulate<schedule::one_f_one_b>(t, 1, model, o), config_error);
}

TEST_CASE("simulator: the optimizer step follows the all-reduce", "[sim][simulator]") {
    const auto t = uniform_topology(2, 0, free_link_gbps);
    const auto model = small_model(2);
    auto o = exact(2);
    const auto without = simulate<schedule::one_f_one_b>(t, 1, model, o);
    o.optimizer_flops_per_parameter = 1000;
    const auto with = simulate<schedule::one_f_one_b>(t, 1, model, o);
    const double step = 2.0 * static_cast<double>(block_parameters(model)) * 1000 / 1e12;  // 2 blocks at 1 TFLOP/s
    REQUIRE(with.pipeline_seconds == Approx(without.pipeline_seconds));
    REQUIRE(with.iteration_seconds == Approx(without.iteration_seconds + step).epsilon(1e-9));
    o.optimizer_flops_per_parameter = -1;
    REQUIRE_THROWS_AS(simulate<schedule::one_f_one_b>(t, 1, model, o), config_error);
}
