// sim::time_search: the planner's time objective (issue 7, point 7). Chooses, together, the
// placement of S stages × R replicas on a topology's devices, the compression of each link class
// (activations forward and their gradients backward: none, fp16, q8, q4) and of the data-parallel
// all-reduce (ring of fp32, or the two-phase / hierarchical all-reduce with fp16, q8, q4 or
// cocktail), and the micro-batch count M, to minimise the simulated iteration time (sim::simulate)
// within each device's memory (sim::memory_bytes: parameters + optimizer state + the activations
// 1F1B holds). The global batch is fixed, so M sets the micro-batch size b = batch ÷ (R·M).
//
// Search: simulated annealing with the simulator as the objective, on the planner's budget and trace
// (plan::detail::search_run) and its seeded generator. Starts: DT-FM's communication-cost placement
// from plan::anneal_search, device order and, when memory is tight, a placement that gives the
// most demanding stages the largest devices; each is improved by coordinate descent over the
// compression and M, then rounds of annealing mix swaps of two devices with changes of one choice,
// from a temperature of 2% of the best time down to 0.01%, each later round from the best found.
// A candidate that does not fit memory is refused before it is simulated. Deterministic for a seed
// and an evaluation budget; a time budget only decides where the same path stops.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dtfm/compress/cast.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/error.hpp"
#include "dtfm/plan/search.hpp"
#include "dtfm/plan/topology.hpp"
#include "dtfm/schedule/one_f_one_b.hpp"
#include "dtfm/sim/model_cost.hpp"
#include "dtfm/sim/simulator.hpp"

namespace dtfm::sim {

enum class codec_kind { none, fp16, q8, q4, cocktail };

inline const char* to_string(codec_kind k) {
    switch (k) {
    case codec_kind::none: return "none";
    case codec_kind::fp16: return "fp16";
    case codec_kind::q8: return "q8";
    case codec_kind::q4: return "q4";
    case codec_kind::cocktail: return "cocktail";
    }
    return "?";
}

inline codec_kind parse_codec_kind(std::string_view s) {
    for (auto k : {codec_kind::none, codec_kind::fp16, codec_kind::q8, codec_kind::q4, codec_kind::cocktail})
        if (s == to_string(k)) return k;
    throw config_error("unknown codec '" + std::string(s) + "' (none, fp16, q8, q4, cocktail)");
}

// Encode and decode throughput of each codec, in fp32 input bytes per second. The defaults are the
// one-core host rates dtfm_bench_compress measured at 16M values (docs/benchmarks.md).
struct codec_rates {
    double cast_quantize = 15e9;  // fp16, q8, q4
    double cocktail = 7e9;
};

// The dtfm compressor behind each choice, so the simulated bytes are the bytes it sends:
// cast<fp16>, quantize<8>, quantize<4> and cocktail<> (random 10%, top 20%, 4 bits).
inline codec make_codec(codec_kind k, const codec_rates& r = {}) {
    switch (k) {
    case codec_kind::none: return codec::none();
    case codec_kind::fp16: return codec::of("fp16", compress::cast<compress::fp16>(), r.cast_quantize);
    case codec_kind::q8: return codec::of("q8", compress::quantize<8>(), r.cast_quantize);
    case codec_kind::q4: return codec::of("q4", compress::quantize<4>(), r.cast_quantize);
    case codec_kind::cocktail: return codec::of("cocktail", compress::cocktail<>(), r.cocktail);
    }
    return codec::none();
}

// A pipeline link belongs to the first class (fastest first) whose min_gbps its bandwidth reaches.
struct link_class {
    std::string name;
    double min_gbps = 0;
};

inline std::vector<link_class> default_link_classes() {
    return {{"fast", 25}, {"regional", 1.5}, {"wan", 0}};  // inside an instance, a region, across regions
}

// What the search chooses besides the placement.
struct compression_choice {
    int microbatches = 1;                // M per replica per iteration
    std::vector<codec_kind> forward;     // per link class: activations
    std::vector<codec_kind> backward;    // per link class: their gradients
    allreduce_kind allreduce = allreduce_kind::ring;
    codec_kind allreduce_codec = codec_kind::cocktail;  // compressed and hierarchical only

    bool operator==(const compression_choice&) const = default;
};

struct time_search_options {
    std::uint64_t seed = 1;
    double seconds = 0;            // wall-clock cap; 0: none
    std::uint64_t evaluations = 0; // candidates (each simulated unless it does not fit); 0: none
    int global_batch = 1024;       // sequences per iteration over all replicas
    double efficiency = 0.3;       // of each device's peak_tflops
    std::optional<double> memory_gib;  // every device's memory; else the topology's (0 there: unchecked)
    std::vector<link_class> classes = default_link_classes();
    codec_rates rates{};
    std::vector<codec_kind> forward_codecs{codec_kind::none, codec_kind::fp16, codec_kind::q8, codec_kind::q4};
    // AC-SGD keeps activation gradients at 6–8 bits.
    std::vector<codec_kind> backward_codecs{codec_kind::none, codec_kind::fp16, codec_kind::q8};
    std::vector<codec_kind> allreduce_codecs{codec_kind::fp16, codec_kind::q8, codec_kind::q4, codec_kind::cocktail};
    std::vector<allreduce_kind> allreduces{allreduce_kind::ring, allreduce_kind::compressed, allreduce_kind::hierarchical};
    std::optional<strategy::mesh_placement> start;  // a placement to start from, besides the planner's
    bool search_placement = true;                   // false: keep the start (or device order)
    std::uint64_t round_moves = 200;                // annealing moves per round
};

struct time_search_result {
    strategy::mesh_placement plan = strategy::mesh_placement::default_order(1, 1);
    compression_choice choice;
    int microbatch_size = 1;           // b = global_batch ÷ (R·M)
    iteration_result simulated;        // of plan and choice
    double max_memory_gib = 0;         // the most any device needs
    std::uint64_t evaluations = 0;     // candidates considered
    std::uint64_t simulations = 0;     // of them, simulated
    double seconds = 0;
    std::vector<plan::trace_point> trace;  // best iteration time over the search
};

// The simulator's options for a choice.
inline sim_options to_sim_options(const compression_choice& c, const time_search_options& o) {
    sim_options s;
    s.microbatches = c.microbatches;
    s.efficiency = o.efficiency;
    s.check_memory = false;  // time_search checks memory against its own limits
    for (std::size_t k = 0; k < o.classes.size(); ++k)
        s.pipeline_links.push_back({o.classes[k].min_gbps, make_codec(c.forward.at(k), o.rates), make_codec(c.backward.at(k), o.rates)});
    s.allreduce = c.allreduce;
    s.allreduce_codec = make_codec(c.allreduce_codec, o.rates);
    return s;
}

inline std::string describe(const compression_choice& c, const std::vector<link_class>& classes, int microbatch_size) {
    std::string s = "M=" + std::to_string(c.microbatches) + ", b=" + std::to_string(microbatch_size);
    for (std::size_t k = 0; k < classes.size(); ++k)
        s += ", " + classes[k].name + " " + to_string(c.forward.at(k)) + "/" + to_string(c.backward.at(k));
    s += std::string(", DP ") + sim::to_string(c.allreduce);
    if (c.allreduce != allreduce_kind::ring) s += std::string("+") + to_string(c.allreduce_codec);
    return s;
}

}  // namespace dtfm::sim

namespace dtfm::sim::detail {

class time_problem {
public:
    time_problem(const plan::topology& t, int stages, const gpt_config& model, const time_search_options& o)
        : t_(t), stages_(stages), model_(model), o_(o) {
        plan::check_stages(t, stages);
        replicas_ = t.size() / stages;
        (void)stage_costs(model, stages);  // config_error for a model the stages cannot split
        if (o.global_batch < 1 || o.global_batch % replicas_ != 0)
            throw config_error("time_search: a global batch of " + std::to_string(o.global_batch) + " sequences does not split over " +
                               std::to_string(replicas_) + " replicas");
        if (!(o.efficiency > 0 && o.efficiency <= 1))
            throw config_error("time_search: efficiency must be in (0, 1]");
        if (o.memory_gib && !(std::isfinite(*o.memory_gib) && *o.memory_gib > 0))
            throw config_error("time_search: device memory must be a positive number of GiB");
        if (o.classes.empty()) throw config_error("time_search: no link classes");
        if (o.forward_codecs.empty() || o.backward_codecs.empty() || o.allreduces.empty() || o.allreduce_codecs.empty())
            throw config_error("time_search: every choice needs at least one option");
        if (!(o.rates.cast_quantize > 0) || !(o.rates.cocktail > 0))
            throw config_error("time_search: codec rates must be positive");
        const int per_replica = o.global_batch / replicas_;
        for (int m = 1; m <= per_replica; ++m)
            if (per_replica % m == 0) counts_.push_back(m);
        for (const auto& d : t.devices()) {
            const double gib = o.memory_gib ? *o.memory_gib : d.memory_gib;
            limit_.push_back(gib > 0 ? gib * 1073741824.0 : std::numeric_limits<double>::infinity());
        }
    }

    int stages() const { return stages_; }
    int replicas() const { return replicas_; }
    const std::vector<int>& counts() const { return counts_; }
    const time_search_options& options() const { return o_; }
    int microbatch_size(int m) const { return o_.global_batch / replicas_ / m; }

    gpt_config model_for(int m) const {
        gpt_config c = model_;
        c.microbatch_size = microbatch_size(m);
        return c;
    }

    // The most a device of the plan needs over its memory limit, as a fraction (≤ 0: it fits).
    double overflow(const strategy::mesh_placement& p, int m) const {
        const auto need = memory_bytes<schedule::one_f_one_b>(t_, p, model_for(m), m);
        double worst = -std::numeric_limits<double>::infinity();
        for (std::size_t d = 0; d < need.size(); ++d) worst = std::max(worst, need[d] / limit_[d] - 1);
        return worst;
    }
    bool fits(const strategy::mesh_placement& p, int m) const { return overflow(p, m) <= 0; }

    iteration_result simulate(const strategy::mesh_placement& p, const compression_choice& c) const {
        return sim::simulate<schedule::one_f_one_b>(t_, p, model_for(c.microbatches), to_sim_options(c, o_));
    }

    // The placement that gives the stages needing most memory (at M micro-batches) the devices with
    // most: stages by need and devices by limit, both descending, R devices a stage. When any
    // placement fits, this one does.
    strategy::mesh_placement memory_order(int m) const {
        const auto costs = stage_costs(model_for(m), stages_);
        std::vector<int> stage_order(static_cast<std::size_t>(stages_));
        std::iota(stage_order.begin(), stage_order.end(), 0);
        const auto need = [&](int s) {
            return stage_memory_bytes(model_for(m), costs[static_cast<std::size_t>(s)],
                                      schedule::one_f_one_b::in_flight(s, stages_, m));
        };
        std::stable_sort(stage_order.begin(), stage_order.end(), [&](int a, int b) { return need(a) > need(b); });
        std::vector<int> devices(static_cast<std::size_t>(t_.size()));
        std::iota(devices.begin(), devices.end(), 0);
        std::stable_sort(devices.begin(), devices.end(),
                         [&](int a, int b) { return limit_[static_cast<std::size_t>(a)] > limit_[static_cast<std::size_t>(b)]; });
        std::vector<std::vector<int>> g(static_cast<std::size_t>(replicas_), std::vector<int>(static_cast<std::size_t>(stages_)));
        std::size_t next = 0;
        for (int s : stage_order)
            for (int r = 0; r < replicas_; ++r) g[static_cast<std::size_t>(r)][static_cast<std::size_t>(s)] = devices[next++];
        return strategy::mesh_placement(std::move(g));
    }

    // config_error, naming what does not fit, when no placement fits at any M.
    void check_something_fits() const {
        for (int m : counts_)
            if (fits(memory_order(m), m)) return;
        // The fewest bytes: every micro-batch count tried; report the smallest micro-batches.
        const int m = counts_.back();
        const auto costs = stage_costs(model_for(m), stages_);
        double worst_need = 0;
        int worst_stage = 0;
        for (int s = 0; s < stages_; ++s) {
            const double need = stage_memory_bytes(model_for(m), costs[static_cast<std::size_t>(s)],
                                                   schedule::one_f_one_b::in_flight(s, stages_, m));
            if (need > worst_need) worst_need = need, worst_stage = s;
        }
        const double state = static_cast<double>(costs[static_cast<std::size_t>(worst_stage)].parameters) * model_.state_bytes_per_parameter;
        const double most = *std::max_element(limit_.begin(), limit_.end());
        throw config_error("time_search: the model does not fit in device memory with any micro-batch count: stage " +
                           std::to_string(worst_stage) + " needs " + plan_gib(worst_need) + " GiB at micro-batches of " +
                           std::to_string(microbatch_size(m)) + " sequence(s) (" + plan_gib(state) +
                           " GiB of parameters and optimizer state), the largest device has " + plan_gib(most) +
                           " GiB; use more stages or devices with more memory");
    }

private:
    static std::string plan_gib(double bytes) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2f", bytes / 1073741824.0);
        return buf;
    }

    const plan::topology& t_;
    int stages_, replicas_ = 1;
    gpt_config model_;
    time_search_options o_;
    std::vector<int> counts_;
    std::vector<double> limit_;
};

}  // namespace dtfm::sim::detail

namespace dtfm::sim {

inline time_search_result time_search(const plan::topology& t, int stages, const gpt_config& model,
                                      const time_search_options& o = {}) {
    const detail::time_problem pr(t, stages, model, o);
    pr.check_something_fits();
    plan::search_options so;
    so.seed = o.seed;
    so.seconds = o.seconds;
    so.iterations = o.evaluations;
    plan::detail::search_run run(t, stages, so);  // checks the budget
    plan::detail::rng r(o.seed);
    const int S = stages, R = pr.replicas();
    const auto& counts = pr.counts();
    const double inf = std::numeric_limits<double>::infinity();
    std::uint64_t simulations = 0;

    // The budget. search_run keeps the trace; the clock is read after every candidate here, not
    // at search_run's adaptive stride: refusals for memory take microseconds and simulations
    // milliseconds, so a stride learnt on refusals would overrun the time cap.
    std::uint64_t count = 0;
    bool spent = false;
    const auto done = [&] { return spent; };
    const auto count_one = [&] {
        (void)run.next();  // keeps the trace's candidate numbers
        ++count;
        if (o.evaluations != 0 && count >= o.evaluations) spent = true;
        if (o.seconds > 0 && run.elapsed() >= o.seconds) spent = true;
    };

    // Iteration seconds of a candidate, +inf when it does not fit; counts against the budget.
    const auto score = [&](const strategy::mesh_placement& p, const compression_choice& c) {
        count_one();
        if (!pr.fits(p, c.microbatches)) return inf;
        ++simulations;
        return pr.simulate(p, c).iteration_seconds;
    };

    // Starts. DT-FM's cost with this model's sizes (fp32 gradient of the largest stage, fp32
    // activations a tasklet sends per iteration) and a fixed swap budget, so the start is the same
    // on any machine.
    std::vector<strategy::mesh_placement> starts;
    if (o.start) {
        if (o.start->stages() != S || o.start->replicas() != R)
            throw config_error("time_search: the start placement has " + std::to_string(o.start->stages()) + " stages × " +
                               std::to_string(o.start->replicas()) + " replicas, the search " + std::to_string(S) + " × " +
                               std::to_string(R));
        starts.push_back(*o.start);
    }
    if (o.search_placement || starts.empty()) {
        if (o.search_placement && S > 1 && R > 1) {
            const auto costs = stage_costs(pr.model_for(counts.front()), S);
            double grad = 0;
            for (const auto& c : costs) grad = std::max(grad, gradient_bytes(c));
            plan::search_options ds;
            ds.seed = o.seed;
            ds.iterations = 20000;
            ds.costs = {grad / 1e9, static_cast<double>(o.global_batch / R) * boundary_bytes(pr.model_for(counts.back())) / 1e9};
            starts.push_back(strategy::mesh_placement(plan::anneal_search(t, S, ds).plan.pipelines));
        }
        starts.push_back(strategy::mesh_placement::default_order(S, R));
    }
    // Memory: where the starts fit at no micro-batch count, the memory order does.
    bool any_fits = false;
    for (const auto& p : starts)
        for (int m : counts) any_fits = any_fits || pr.fits(p, m);
    if (!any_fits) {
        for (int m : counts) {
            if (pr.fits(pr.memory_order(m), m)) {
                starts.push_back(pr.memory_order(m));
                break;
            }
        }
    }

    const std::size_t K = o.classes.size();
    compression_choice plain;
    plain.forward.assign(K, o.forward_codecs.front());
    plain.backward.assign(K, o.backward_codecs.front());
    plain.allreduce = o.allreduces.front();
    plain.allreduce_codec = o.allreduce_codecs.back();

    // Coordinate descent over the choices for a fixed placement, from c (time `best`).
    const auto descend = [&](const strategy::mesh_placement& p, compression_choice& c, double& best) {
        for (int round = 0; round < 2 && !done(); ++round) {
            const compression_choice before = c;
            const auto consider = [&](const compression_choice& x) {
                if (done() || x == c) return;
                const double s = score(p, x);
                if (s < best) best = s, c = x;
            };
            for (int m : counts) {
                compression_choice x = c;
                x.microbatches = m;
                consider(x);
            }
            for (auto k : o.allreduces) {
                compression_choice x = c;
                x.allreduce = k;
                consider(x);
                if (k == allreduce_kind::ring) continue;
                for (auto codec : o.allreduce_codecs) {
                    x.allreduce_codec = codec;
                    consider(x);
                }
            }
            for (std::size_t k = 0; k < K; ++k) {
                for (auto f : o.forward_codecs) {
                    compression_choice x = c;
                    x.forward[k] = f;
                    consider(x);
                }
                for (auto b : o.backward_codecs) {
                    compression_choice x = c;
                    x.backward[k] = b;
                    consider(x);
                }
            }
            if (c == before) break;
        }
    };

    // The plain choice at the largest micro-batches that fit, for each start; then the descent.
    strategy::mesh_placement best_p = starts.front();
    compression_choice best_c = plain;
    double best = inf;
    for (const auto& p : starts) {
        compression_choice c = plain;
        c.microbatches = counts.front();
        for (int m : counts) {
            if (pr.fits(p, m)) {
                c.microbatches = m;
                break;
            }
        }
        double s = score(p, c);
        descend(p, c, s);
        if (s < best) {
            best = s;
            best_p = p;
            best_c = c;
            (void)run.offer(best);
        }
        if (done()) break;
    }

    // Annealing: swaps of two devices and changes of one choice.
    std::vector<std::vector<int>> grid = best_p.pipelines();
    compression_choice cur_c = best_c;
    double cur = best;
    const bool swaps = o.search_placement && S * R > 1;
    const auto pick = [&](const auto& options) { return options[static_cast<std::size_t>(r.below(static_cast<int>(options.size())))]; };
    for (int round = 0; !done() && std::isfinite(best); ++round) {
        if (round > 0) {
            grid = best_p.pipelines();
            cur_c = best_c;
            cur = best;
        }
        const double t0 = 0.02 * best * std::pow(0.5, std::min(round, 8)), t1 = 1e-4 * best;
        const double ratio = t1 < t0 ? std::log(t1 / t0) : 0.0;
        for (std::uint64_t mv = 0; mv < o.round_moves && !done(); ++mv) {
            const double temp = t0 * std::exp(ratio * static_cast<double>(mv) / static_cast<double>(o.round_moves));
            compression_choice c = cur_c;
            std::vector<std::vector<int>> g = grid;
            if (!swaps || r.below(4) == 0) {
                const int which = r.below(static_cast<int>(2 * K + 3));
                if (which == 0) {
                    // M: a neighbouring count half the time, any count otherwise.
                    auto at = static_cast<int>(std::find(counts.begin(), counts.end(), c.microbatches) - counts.begin());
                    if (r.below(2) == 0) at = std::clamp(at + (r.below(2) == 0 ? -1 : 1), 0, static_cast<int>(counts.size()) - 1);
                    else at = r.below(static_cast<int>(counts.size()));
                    c.microbatches = counts[static_cast<std::size_t>(at)];
                } else if (which == 1) {
                    c.allreduce = pick(o.allreduces);
                } else if (which == 2) {
                    c.allreduce_codec = pick(o.allreduce_codecs);
                } else if (which < static_cast<int>(K) + 3) {
                    c.forward[static_cast<std::size_t>(which - 3)] = pick(o.forward_codecs);
                } else {
                    c.backward[static_cast<std::size_t>(which - 3) - K] = pick(o.backward_codecs);
                }
                if (c == cur_c) {  // no change: counted, so a space with one choice still ends
                    count_one();
                    continue;
                }
            } else {
                const int a = r.below(S * R);
                int b = r.below(S * R - 1);
                if (b >= a) ++b;
                std::swap(g[static_cast<std::size_t>(a / S)][static_cast<std::size_t>(a % S)],
                          g[static_cast<std::size_t>(b / S)][static_cast<std::size_t>(b % S)]);
            }
            const strategy::mesh_placement p(g);
            const double s = score(p, c);
            if (!std::isfinite(s)) continue;
            if (s < cur || s < cur - temp * std::log(1 - r.uniform01())) {
                grid = std::move(g);
                cur_c = c;
                cur = s;
                if (s < best) {
                    best = s;
                    best_p = p;
                    best_c = c;
                    (void)run.offer(best);
                }
            }
        }
    }
    if (!std::isfinite(best))
        throw config_error("time_search: no candidate fitted device memory within the budget; give it more evaluations or time");

    time_search_result res;
    res.plan = best_p;
    res.choice = best_c;
    res.microbatch_size = pr.microbatch_size(best_c.microbatches);
    res.simulated = pr.simulate(best_p, best_c);
    for (double b : res.simulated.memory_bytes) res.max_memory_gib = std::max(res.max_memory_gib, b / 1073741824.0);
    res.evaluations = count;
    res.simulations = simulations;
    res.seconds = run.elapsed();
    // search_run's trace, without its placement cost: recorded through offer() above.
    res.trace = run.finish(t, plan::placement{best_p.pipelines()}).trace;
    return res;
}

}  // namespace dtfm::sim
