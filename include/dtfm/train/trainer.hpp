// train::trainer<Hybrid>: the training loop over a stages × replicas mesh. Each step runs the
// pipeline's micro-batches and the data-parallel step (Hybrid = strategy::hybrid<PP, DP>); it
// evaluates on held-out samples, reports metrics as JSON lines and a progress display, and writes
// checkpoints it can resume from — bit-identically on the in-process transport.
//
// Checkpoints: DIR/step-NNNNNNNN/rank-K.ckpt per world rank (train::checkpoint, atomic), then,
// once every rank has written, world rank 0 atomically points DIR/latest at that step and removes
// all but the two newest steps. A crash at any moment leaves `latest` naming a complete step.
// Under MPI, DIR must be a filesystem every rank sees.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <algorithm>
#include <limits>
#include <ostream>
#include <span>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/concepts/optimizer.hpp"
#include "dtfm/concepts/transport.hpp"
#include "dtfm/data/sharding.hpp"
#include "dtfm/data/text_corpus.hpp"
#include "dtfm/error.hpp"
#include "dtfm/optim/clip.hpp"
#include "dtfm/strategy/hybrid.hpp"
#include "dtfm/strategy/pipeline_parallel.hpp"
#include "dtfm/train/checkpoint.hpp"
#include "dtfm/train/metrics.hpp"

namespace dtfm::train {

struct trainer_options {
    std::uint64_t steps = 100;
    int microbatches = 4;
    int micro_batch = 8;                       // sequences per micro-batch
    int context = 64;                          // tokens per sequence
    std::uint64_t train_samples = 1u << 16;    // the finite training set, revisited every epoch
    std::uint64_t seed = 0;                    // the order of the training set
    std::uint64_t eval_every = 0;              // steps between evaluations; 0: only at the end
    int eval_microbatches = 2;                 // per replica, on held-out samples
    std::uint64_t log_every = 1;
    std::filesystem::path checkpoint_dir;      // empty: no checkpoints
    std::uint64_t checkpoint_every = 0;        // 0: only at the end (when a directory is given)
    bool resume = false;                       // start from DIR/latest when it exists
    std::ostream* metrics = nullptr;           // JSON lines, written by the reporting rank
    progress::mode display = progress::mode::automatic;
    double entropy_floor = std::nan("");       // the corpus's best achievable loss, shown beside it
    std::function<double(std::uint64_t)> learning_rate;  // by step, when the optimizer takes one
    float max_grad_norm = 0;                   // > 0: clip by the norm over the whole pipeline
    std::chrono::nanoseconds timeout = std::chrono::minutes(5);
};

struct run_summary {
    bool reporter = false;          // the rank that gathered the metrics; the fields below are its
    std::uint64_t first_step = 0;   // where this run started (after a resume, the checkpoint's step)
    std::uint64_t steps = 0;
    double final_loss = std::nan("");
    double final_eval_loss = std::nan("");
    double tokens_per_s = 0;        // over the whole run, evaluation and checkpoints included
    double seconds = 0;
    step_record last;
    std::vector<step_record> history;
};

namespace detail {

// The corpus's training samples, or its held-out ones (ids ≥ data::held_out_base) where it
// keeps them apart itself (text_corpus).
template <class Corpus>
void sample_for(const Corpus& corpus, std::uint64_t id, std::span<std::int32_t> tokens) {
    if constexpr (requires { corpus.sample(id, tokens, data::split::train); })
        corpus.sample(id >= data::held_out_base ? id - data::held_out_base : id, tokens,
                      id >= data::held_out_base ? data::split::held_out : data::split::train);
    else
        corpus.sample(id, tokens);
}

// Micro-batches as the pipeline asks for them, built from sample ids.
struct batch_builder {
    int context = 0;
    std::vector<std::vector<std::uint64_t>> ids;
    std::vector<std::vector<std::int32_t>> tokens, targets;
    std::vector<std::int32_t> sequence;

    template <class Corpus>
    strategy::microbatch build(const Corpus& corpus, int m, std::vector<std::uint64_t> sample_ids) {
        const auto k = static_cast<std::size_t>(m);
        if (ids.size() <= k) ids.resize(k + 1), tokens.resize(k + 1), targets.resize(k + 1);
        ids[k] = std::move(sample_ids);
        tokens[k].clear(), targets[k].clear();
        sequence.resize(static_cast<std::size_t>(context) + 1);
        for (auto id : ids[k]) {
            sample_for(corpus, id, sequence);
            tokens[k].insert(tokens[k].end(), sequence.begin(), sequence.end() - 1);
            targets[k].insert(targets[k].end(), sequence.begin() + 1, sequence.end());
        }
        return {ids[k], tokens[k], targets[k]};
    }
};

inline std::string step_directory(std::uint64_t step) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "step-%08llu", static_cast<unsigned long long>(step));
    return buf;
}

}  // namespace detail

template <class Hybrid>
class trainer {
public:
    trainer(Hybrid h, trainer_options o) : hybrid_(std::move(h)), options_(std::move(o)) {
        if (options_.microbatches < 1 || options_.micro_batch < 1 || options_.context < 1)
            throw config_error("trainer: micro-batches, micro-batch size and context must be positive");
        if (options_.log_every == 0) options_.log_every = 1;
    }

    // Every rank of `world` calls run, with its own model part (the stage
    // placement().stage_of(world.rank()) of placement().stages()) and its own optimizer (which
    // sees only that stage's parameters). Both are left as training left them.
    template <concepts::transport T, concepts::pipeline_stage S, concepts::optimizer O, class Corpus>
    run_summary run(T& world, S& stage, O& optimizer, const Corpus& corpus) {
        auto groups = hybrid_.split(world);
        const auto& placement = hybrid_.placement();
        if (stage.first() != (groups.stage == 0) || stage.last() != (groups.stage == placement.stages() - 1))
            throw config_error("trainer: rank " + std::to_string(world.rank()) + " runs stage " + std::to_string(groups.stage) +
                               " but was given another part of the model");
        const data::sharding shards(options_.train_samples, placement.replicas(), options_.microbatches, options_.micro_batch,
                                    options_.seed);
        const int reporter = placement.rank_at(placement.stages() - 1, 0);
        const bool reporting = world.rank() == reporter;
        collective::ring_allreduce<double, collective::sum> agree(collective::options{.tag = 0, .timeout = options_.timeout});
        collective::ring_allreduce<double, collective::sum> agree_on_pipeline(collective::options{.tag = 0, .timeout = options_.timeout});
        clipped<O, std::remove_reference_t<decltype(groups.pipeline)>> clip{optimizer, groups.pipeline, options_.max_grad_norm,
                                                                            agree_on_pipeline, {}};

        std::uint64_t step = 0;
        if (options_.resume && !options_.checkpoint_dir.empty()) step = restore(world, groups, stage, optimizer, agree);

        run_summary summary;
        summary.reporter = reporting;
        summary.first_step = step;
        progress display(options_.steps, reporting ? options_.display : progress::mode::off);
        detail::batch_builder train_batches{options_.context, {}, {}, {}, {}};
        detail::batch_builder eval_batches{options_.context, {}, {}, {}, {}};
        const auto started = std::chrono::steady_clock::now();
        pending_report pending;
        pending.previous_step = step;
        pending.previous_at = started;
        started_ = started;

        while (step < options_.steps) {
            if (options_.learning_rate)
                if constexpr (requires { optimizer.set_learning_rate(0.0f); })
                    optimizer.set_learning_rate(static_cast<float>(options_.learning_rate(step)));
            const std::uint64_t this_step = step;
            auto source = [&](int m) { return train_batches.build(corpus, m, shards.ids(this_step, groups.replica, m)); };
            double loss = 0;
            if (options_.max_grad_norm > 0) {
                loss = hybrid_.step(groups, stage, clip, options_.microbatches, source);
            } else {
                loss = hybrid_.step(groups, stage, optimizer, options_.microbatches, source);
            }
            ++step;

            double eval_loss = std::nan("");
            const bool eval_now = step == options_.steps || (options_.eval_every > 0 && step % options_.eval_every == 0);
            if (eval_now) eval_loss = evaluate(groups, stage, corpus, eval_batches);

            if (step % options_.log_every == 0 || step == options_.steps || eval_now) {
                // The reporter prints the previous report (whose numbers have long arrived) and
                // collects this one later: it never waits on the slow links for metrics.
                if (reporting && pending.active) record(pending, summary, display);
                send_stats(world, reporter, loss, eval_loss, pending, reporting);
                pending.step = step;
                pending.at = std::chrono::steady_clock::now();
                pending.active = reporting;
            }
            const bool checkpoint_now = !options_.checkpoint_dir.empty() &&
                                        (step == options_.steps || (options_.checkpoint_every > 0 && step % options_.checkpoint_every == 0));
            if (checkpoint_now) save(world, groups, stage, optimizer, agree, step);
        }
        if (reporting && pending.active) record(pending, summary, display);
        pending.finish(options_.timeout);
        summary.steps = step;
        summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        if (!summary.history.empty()) {
            summary.last = summary.history.back();
            summary.final_loss = summary.last.loss;
            for (const auto& r : summary.history)
                if (std::isfinite(r.eval_loss)) summary.final_eval_loss = r.eval_loss;
        }
        if (summary.seconds > 0) summary.tokens_per_s = static_cast<double>((step - summary.first_step) * tokens_per_step()) / summary.seconds;
        return summary;
    }

    Hybrid& strategy() noexcept { return hybrid_; }
    const trainer_options& settings() const noexcept { return options_; }

private:
    // The optimizer the data-parallel step calls, after clipping the (averaged) gradients by the
    // norm over every stage of the pipeline: each stage's Σg² is summed over the pipeline group.
    template <class O, class T>
    struct clipped {
        using optimizer_concept = optimizer_tag;
        using value_type = float;
        O& inner;
        T& pipeline;
        float max_norm;
        collective::ring_allreduce<double, collective::sum>& sum;

        void step(std::span<float> params, std::span<const float> grads) {
            std::vector<double> s{optim::sum_of_squares(grads)};
            sum.allreduce_blocking(pipeline, std::span<double>(s));
            const float c = optim::clip_coefficient(std::sqrt(s[0]), max_norm);
            if (c == 1.0f) return inner.step(params, grads);
            scaled.assign(grads.begin(), grads.end());
            for (auto& g : scaled) g *= c;
            inner.step(params, std::span<const float>(scaled));
        }
        std::vector<float> scaled;
    };

    std::uint64_t tokens_per_step() const {
        return static_cast<std::uint64_t>(hybrid_.placement().replicas()) * static_cast<std::uint64_t>(options_.microbatches) *
               static_cast<std::uint64_t>(options_.micro_batch) * static_cast<std::uint64_t>(options_.context);
    }

    template <class G, class S, class Corpus>
    double evaluate(G& groups, S& stage, const Corpus& corpus, detail::batch_builder& batches) {
        const auto per = static_cast<std::uint64_t>(options_.micro_batch);
        auto source = [&](int m) {
            std::vector<std::uint64_t> ids(static_cast<std::size_t>(per));
            const std::uint64_t first =
                (static_cast<std::uint64_t>(groups.replica) * static_cast<std::uint64_t>(options_.eval_microbatches) + static_cast<std::uint64_t>(m)) * per;
            for (std::uint64_t i = 0; i < per; ++i) ids[static_cast<std::size_t>(i)] = data::held_out_base + first + i;
            return batches.build(corpus, m, std::move(ids));
        };
        return hybrid_.evaluate(groups, stage, options_.eval_microbatches, source);
    }

    // Per rank and report: loss, eval loss (NaN except on last stages), then the bytes it sent.
    static constexpr std::size_t stats_fields = 6;

    struct pending_report {
        bool active = false;  // receives posted, not yet collected (reporter only)
        std::uint64_t step = 0, previous_step = 0;
        std::chrono::steady_clock::time_point at, previous_at;
        std::vector<std::function<void(std::chrono::nanoseconds)>> waits;
        std::vector<std::vector<double>> received;
        std::vector<std::function<void(std::chrono::nanoseconds)>> sends;
        std::vector<std::vector<double>> sent_buffers;

        step_record collect(int ranks, std::chrono::nanoseconds timeout) {
            step_record r;
            for (auto& w : waits) w(timeout);
            double loss = 0, eval = 0;
            int losses = 0, evals = 0;
            for (int k = 0; k < ranks; ++k) {
                const auto& v = received[static_cast<std::size_t>(k)];
                if (std::isfinite(v[0])) loss += v[0], ++losses;
                if (std::isfinite(v[1])) eval += v[1], ++evals;
                r.bytes_sent_pipeline += static_cast<std::uint64_t>(v[2]);
                r.bytes_sent_data_parallel += static_cast<std::uint64_t>(v[4]);
                r.value_bytes += static_cast<std::uint64_t>(v[3] + v[5]);
            }
            r.bytes_sent = r.bytes_sent_pipeline + r.bytes_sent_data_parallel;
            if (losses > 0) r.loss = loss / losses;
            if (evals > 0) r.eval_loss = eval / evals;
            waits.clear();
            active = false;
            return r;
        }
        void finish(std::chrono::nanoseconds timeout) {
            for (auto& s : sends) s(timeout);
            sends.clear();
            sent_buffers.clear();
        }
    };

    void record(pending_report& pending, run_summary& summary, progress& display) {
        step_record r = pending.collect(hybrid_.placement().ranks(), options_.timeout);
        r.step = pending.step;
        r.seconds = std::chrono::duration<double>(pending.at - started_).count();
        const double dt = std::chrono::duration<double>(pending.at - pending.previous_at).count();
        r.tokens_per_s = dt > 0 ? static_cast<double>((pending.step - pending.previous_step) * tokens_per_step()) / dt : 0;
        if (options_.learning_rate) r.learning_rate = options_.learning_rate(pending.step - 1);
        pending.previous_step = pending.step;
        pending.previous_at = pending.at;
        if (options_.metrics) *options_.metrics << to_json_line(r) << '\n' << std::flush;
        display.update(r, options_.entropy_floor);
        summary.history.push_back(r);
    }

    template <class T>
    void send_stats(T& world, int reporter, double loss, double eval_loss, pending_report& pending, bool reporting) {
        const message_tag tag{channel::control, 1};
        const auto pp = hybrid_.pipeline().sent();
        std::uint64_t dp_payload = 0, dp_values = 0;
        if constexpr (requires { hybrid_.data_parallel().collective().sent(); }) {
            const auto t = hybrid_.data_parallel().collective().sent();
            dp_payload = t.payload_bytes;
            dp_values = t.value_bytes;
        }
        // Earlier sends of this rank are done by now (the reporter waited for them).
        pending.finish(options_.timeout);
        pending.sent_buffers.push_back({loss, eval_loss, static_cast<double>(pp.payload_bytes()), static_cast<double>(pp.value_bytes()),
                                        static_cast<double>(dp_payload), static_cast<double>(dp_values)});
        auto request = std::make_shared<typename T::request_type>(
            world.isend(reporter, tag, std::as_bytes(std::span<const double>(pending.sent_buffers.back()))));
        pending.sends.push_back([request](std::chrono::nanoseconds timeout) { transport::wait_within(*request, timeout, "trainer: metrics send"); });
        if (!reporting) return;
        pending.received.assign(static_cast<std::size_t>(world.size()), std::vector<double>(stats_fields));
        for (int k = 0; k < world.size(); ++k) {
            auto r = std::make_shared<typename T::request_type>(
                world.irecv(k, tag, std::as_writable_bytes(std::span<double>(pending.received[static_cast<std::size_t>(k)]))));
            pending.waits.push_back([r](std::chrono::nanoseconds timeout) { transport::wait_within(*r, timeout, "trainer: metrics receive"); });
        }
    }

    // Every rank holds the same value, or every rank throws.
    template <class T, class Agree>
    static void require_agreement(T& world, Agree& agree, double value, const std::string& what) {
        std::vector<double> v{value, value * value};
        agree.allreduce_blocking(world, std::span<double>(v));
        const double n = world.size();
        if (std::abs(n * v[1] - v[0] * v[0]) > 1e-6 * (1 + v[0] * v[0]))
            throw config_error("trainer: ranks disagree on " + what);
    }

    template <class T, class G, class S, class O, class Agree>
    void save(T& world, G& groups, S& stage, O& optimizer, Agree& agree, std::uint64_t step) {
        const auto dir = options_.checkpoint_dir / detail::step_directory(step);
        std::filesystem::create_directories(dir);
        checkpoint c;
        checkpoint_saver a(c, "");
        std::uint64_t s = step;
        std::int64_t ranks = world.size(), at_stage = groups.stage, at_replica = groups.replica;
        a.value("step", s);
        a.value("world_size", ranks);
        a.value("stage", at_stage);
        a.value("replica", at_replica);
        a.span("parameters", stage.parameters());
        serialize_if_stateful(a, "optimizer", optimizer);
        serialize_if_stateful(a, "data_parallel", hybrid_.data_parallel());
        serialize_if_stateful(a, "pipeline", hybrid_.pipeline());
        c.write_atomic(dir / ("rank-" + std::to_string(world.rank()) + ".ckpt"));
        require_agreement(world, agree, static_cast<double>(step), "the checkpoint step");  // also: everyone has written
        if (world.rank() == 0) {
            const auto latest = options_.checkpoint_dir / "latest";
            const auto tmp = options_.checkpoint_dir / "latest.tmp";
            {
                std::ofstream out(tmp, std::ios::trunc);
                out << detail::step_directory(step) << '\n';
                if (!out) throw error("trainer: cannot write " + tmp.string());
            }
            std::filesystem::rename(tmp, latest);
            prune(step);
        }
    }

    // Keeps the two newest complete steps.
    void prune(std::uint64_t newest) {
        std::vector<std::filesystem::path> old;
        for (const auto& e : std::filesystem::directory_iterator(options_.checkpoint_dir)) {
            const auto name = e.path().filename().string();
            if (e.is_directory() && name.rfind("step-", 0) == 0 && name < detail::step_directory(newest)) old.push_back(e.path());
        }
        std::sort(old.begin(), old.end());
        for (std::size_t i = 0; i + 1 < old.size(); ++i) std::filesystem::remove_all(old[i]);
    }

    template <class T, class G, class S, class O, class Agree>
    std::uint64_t restore(T& world, G& groups, S& stage, O& optimizer, Agree& agree) {
        const auto latest = options_.checkpoint_dir / "latest";
        double found = std::filesystem::exists(latest) ? 1.0 : 0.0;
        require_agreement(world, agree, found, "whether a checkpoint exists");
        if (found == 0.0) return 0;
        std::ifstream in(latest);
        std::string name;
        in >> name;
        if (name.rfind("step-", 0) != 0) throw config_error("trainer: " + latest.string() + " does not name a step directory");
        const auto file = options_.checkpoint_dir / name / ("rank-" + std::to_string(world.rank()) + ".ckpt");
        const checkpoint c = checkpoint::read(file);
        checkpoint_loader a(c, "");
        std::uint64_t step = 0;
        std::int64_t ranks = 0, at_stage = 0, at_replica = 0;
        a.value("step", step);
        a.value("world_size", ranks);
        a.value("stage", at_stage);
        a.value("replica", at_replica);
        if (ranks != world.size() || at_stage != groups.stage || at_replica != groups.replica)
            throw config_error("trainer: " + file.string() + " was written by stage " + std::to_string(at_stage) + " of replica " +
                               std::to_string(at_replica) + " on " + std::to_string(ranks) + " ranks; this rank runs stage " +
                               std::to_string(groups.stage) + " of replica " + std::to_string(groups.replica) + " on " +
                               std::to_string(world.size()));
        a.span("parameters", stage.parameters());
        serialize_if_stateful(a, "optimizer", optimizer);
        serialize_if_stateful(a, "data_parallel", hybrid_.data_parallel());
        serialize_if_stateful(a, "pipeline", hybrid_.pipeline());
        require_agreement(world, agree, static_cast<double>(step), "the step to resume from");
        return step;
    }

    Hybrid hybrid_;
    trainer_options options_;
    std::chrono::steady_clock::time_point started_;
};

}  // namespace dtfm::train
