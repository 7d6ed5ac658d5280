// strategy::pipeline_parallel<Schedule, FwdC, BwdC>: one model cut into stages on the ranks of a
// pipeline group, micro-batches moving through it in the order Schedule gives (GPipe, 1F1B).
// Activations go forward through FwdC, gradients backward through BwdC: AC-SGD (Wang, Yuan et
// al. 2022) uses delta<quantize<4>> forward (keyed by sample id) and quantize<8> backward, after
// a few uncompressed warm-up iterations.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "dtfm/compress/identity.hpp"
#include "dtfm/compress/payload.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/concepts/schedule.hpp"
#include "dtfm/concepts/stage.hpp"
#include "dtfm/concepts/transport.hpp"
#include "dtfm/error.hpp"
#include "dtfm/transport/wait.hpp"
#include "dtfm/wire/endian.hpp"

namespace dtfm::concepts {

// What the pipeline driver needs of a stage beyond concepts::stage: whether it is the first or
// the last, how many floats its forward reads and writes (the last writes its micro-batch loss),
// and feed() for the tokens (first stage) and targets (last stage) of a micro-batch.
template <class S>
concept pipeline_stage = stage<S> && std::same_as<typename S::input_type, float> &&
                         std::same_as<typename S::output_type, float> &&
                         requires(S& s, const S& cs, int m, std::span<const std::int32_t> tokens) {
                             { cs.first() } -> std::same_as<bool>;
                             { cs.last() } -> std::same_as<bool>;
                             { cs.input_size() } -> std::same_as<std::size_t>;
                             { cs.output_size() } -> std::same_as<std::size_t>;
                             s.feed(m, tokens, tokens);
                         };

}  // namespace dtfm::concepts

namespace dtfm::detail {

// A micro-batch's message: one payload per sequence (the delta compressor keys each on its
// sample id), back to back; each payload's header says its length. pipeline_unframe reads bytes
// from a peer: a message that is short, long, or whose payloads lie raises wire_error.
template <class C>
std::size_t pipeline_frame_capacity(const C& c, std::size_t values, std::size_t sequences) {
    if (sequences == 0 || values % sequences != 0)
        throw config_error("pipeline_parallel: " + std::to_string(values) + " values do not split into " +
                           std::to_string(sequences) + " sequences");
    return sequences * c.max_payload_bytes(values / sequences);
}

template <class C>
std::size_t pipeline_frame(C& c, std::span<const float> values, std::size_t sequences, std::span<const std::uint64_t> ids,
                           std::span<std::byte> out) {
    const std::size_t per = values.size() / sequences;
    std::size_t at = 0;
    for (std::size_t i = 0; i < sequences; ++i) {
        if constexpr (requires { c.set_sample(std::uint64_t{}); })
            if (!ids.empty()) c.set_sample(ids[i]);
        at += c.encode(values.subspan(i * per, per), out.subspan(at));
    }
    return at;
}

template <class C>
void pipeline_unframe(C& c, std::span<const std::byte> message, std::span<float> values, std::span<const std::uint64_t> ids,
                      std::size_t sequences = 1) {
    if (!ids.empty()) sequences = ids.size();
    if (sequences == 0) throw config_error("pipeline_parallel: a message must hold at least one sequence");
    const std::size_t per = values.size() / sequences;
    std::size_t at = 0;
    for (std::size_t i = 0; i < sequences; ++i) {
        const std::span<const std::byte> rest = message.subspan(at);
        if (rest.size() < compress::payload_header::size)
            throw wire_error(wire_error::reason::truncated, "pipeline: a micro-batch message ends inside a payload header");
        const std::uint64_t body = wire::load_le<std::uint64_t>(rest.data() + 24);
        if (body > rest.size() - compress::payload_header::size)
            throw wire_error(wire_error::reason::truncated, "pipeline: a payload runs past the end of its message");
        const std::size_t bytes = compress::payload_header::size + static_cast<std::size_t>(body);
        if constexpr (requires { c.set_sample(std::uint64_t{}); })
            if (!ids.empty()) c.set_sample(ids[i]);
        c.decode(rest.first(bytes), values.subspan(i * per, per));
        at += bytes;
    }
    if (at != message.size()) throw wire_error(wire_error::reason::bad_length, "pipeline: bytes left after the last payload");
}

}  // namespace dtfm::detail

namespace dtfm::strategy {

// One micro-batch as the data gives it: its samples' stable ids (the delta compressor's keys),
// and their tokens and targets, sequence after sequence.
struct microbatch {
    std::span<const std::uint64_t> sample_ids;
    std::span<const std::int32_t> tokens;
    std::span<const std::int32_t> targets;
};

struct pipeline_options {
    std::uint32_t tag = 0;  // message ids tag + 4·m + {0, 1, 2} on channel::pipeline
    std::chrono::nanoseconds timeout = std::chrono::minutes(5);
    int warmup_iterations = 0;  // the first iterations send full fp32 both ways
};

struct pipeline_traffic {
    std::uint64_t forward_payload_bytes = 0, forward_value_bytes = 0;
    std::uint64_t backward_payload_bytes = 0, backward_value_bytes = 0;
    std::uint64_t payload_bytes() const noexcept { return forward_payload_bytes + backward_payload_bytes; }
    std::uint64_t value_bytes() const noexcept { return forward_value_bytes + backward_value_bytes; }
};

template <concepts::schedule Schedule, concepts::compressor FwdC = compress::identity,
          concepts::compressor BwdC = compress::identity>
    requires std::same_as<typename FwdC::value_type, float> && std::same_as<typename BwdC::value_type, float>
class pipeline_parallel {
public:
    using schedule_type = Schedule;

    // Each boundary has its own sender and receiver state (a delta cache on either side), so the
    // compressors are made, not copied: make_forward() and make_backward() are each called twice.
    template <class MakeForward, class MakeBackward>
        requires std::same_as<std::invoke_result_t<MakeForward&>, FwdC> && std::same_as<std::invoke_result_t<MakeBackward&>, BwdC>
    pipeline_parallel(MakeForward make_forward, MakeBackward make_backward, pipeline_options o = {})
        : fwd_send_(make_forward()), fwd_recv_(make_forward()), bwd_send_(make_backward()), bwd_recv_(make_backward()), options_(o) {
        if (o.warmup_iterations < 0) throw config_error("pipeline_parallel: warm-up iterations must be ≥ 0");
        if (o.timeout <= std::chrono::nanoseconds::zero()) throw config_error("pipeline_parallel: the timeout must be positive");
    }

    explicit pipeline_parallel(pipeline_options o = {})
        requires std::default_initializable<FwdC> && std::default_initializable<BwdC>
        : pipeline_parallel([] { return FwdC(); }, [] { return BwdC(); }, o) {}

    // One training iteration of `microbatches` micro-batches on this stage; t is the pipeline
    // group (its rank is the stage index). source(m) gives micro-batch m (every stage calls it; the
    // first uses its tokens, the last its targets, all its ids). Gradients accumulate in the
    // stage; the loss it returns is the mean over micro-batches on the last stage, NaN elsewhere.
    template <concepts::transport T, concepts::pipeline_stage S, class Source>
    double run(T& t, S& stage, int microbatches, Source&& source) {
        check(t, stage, microbatches);
        const bool warm = iterations_ < static_cast<std::uint64_t>(options_.warmup_iterations);
        const double loss = warm ? iterate<true>(t, stage, microbatches, source) : iterate<false>(t, stage, microbatches, source);
        ++iterations_;
        return loss;
    }

    // Forward only, uncompressed, keeping no compressor state: the mean loss (last stage) of
    // held-out micro-batches; NaN on other stages.
    template <concepts::transport T, concepts::pipeline_stage S, class Source>
    double evaluate(T& t, S& stage, int microbatches, Source&& source) {
        check(t, stage, microbatches);
        using request = typename T::request_type;
        const int me = t.rank();
        double loss = 0;
        compress::identity plain;
        std::vector<std::byte> buffer;
        for (int m = 0; m < microbatches; ++m) {
            const microbatch mb = source(m);
            stage.feed(m, mb.tokens, mb.targets);
            in_.resize(stage.input_size());
            out_.resize(stage.output_size());
            if (!stage.first()) {
                buffer.resize(dtfm::detail::pipeline_frame_capacity(plain, in_.size(), 1));
                request r = t.irecv(me - 1, tag(m, 2), buffer);
                const std::size_t got = transport::wait_within(r, options_.timeout, "pipeline: evaluation activation");
                dtfm::detail::pipeline_unframe(plain, std::span<const std::byte>(buffer).first(got), std::span<float>(in_), {}, 1);
            }
            stage.forward(m, in_, out_);
            if (stage.last()) {
                loss += static_cast<double>(out_[0]);
            } else {
                buffer.resize(dtfm::detail::pipeline_frame_capacity(plain, out_.size(), 1));
                const std::size_t bytes = dtfm::detail::pipeline_frame(plain, out_, 1, {}, buffer);
                request s = t.isend(me + 1, tag(m, 2), std::span<const std::byte>(buffer).first(bytes));
                transport::wait_within(s, options_.timeout, "pipeline: evaluation send");
            }
        }
        return stage.last() ? loss / microbatches : std::numeric_limits<double>::quiet_NaN();
    }

    pipeline_traffic sent() const noexcept { return traffic_; }
    std::uint64_t iterations() const noexcept { return iterations_; }

    // The iteration count (it decides the warm-up), for checkpoints. AC-SGD's activation caches
    // are not saved: after a restore both sides of a boundary start empty, so the first visit of
    // each sample is sent in full again (correct, and not bit-identical to a run that went on).
    template <class Archive>
    void serialize(Archive& a) {
        a.value("iterations", iterations_);
    }
    const pipeline_options& settings() const noexcept { return options_; }

private:
    template <class T, class S>
    void check(T& t, S& stage, int microbatches) const {
        if (microbatches < 1) throw config_error("pipeline_parallel: need at least one micro-batch");
        if (static_cast<std::uint64_t>(options_.tag) + 4ull * static_cast<std::uint64_t>(microbatches) > message_tag::max_id)
            throw config_error("pipeline_parallel: too many micro-batches for the message ids from tag " + std::to_string(options_.tag));
        if (stage.first() != (t.rank() == 0) || stage.last() != (t.rank() == t.size() - 1))
            throw config_error("pipeline_parallel: stage " + std::to_string(t.rank()) + " of " + std::to_string(t.size()) +
                               " is given a model part that is " + (stage.first() ? "" : "not ") + "first and " +
                               (stage.last() ? "" : "not ") + "last");
    }

    message_tag tag(int m, std::uint32_t kind) const {
        return message_tag{channel::pipeline, options_.tag + 4u * static_cast<std::uint32_t>(m) + kind};
    }

    template <bool Warm, class T, class S, class Source>
    double iterate(T& t, S& stage, int microbatches, Source& source) {
        using request = typename T::request_type;
        const int me = t.rank();
        const auto count = static_cast<std::size_t>(microbatches);
        const std::size_t in_size = stage.input_size(), out_size = stage.output_size();
        std::vector<microbatch> batches(count);
        for (std::size_t m = 0; m < count; ++m) {
            batches[m] = source(static_cast<int>(m));
            if (batches[m].sample_ids.size() != batches[0].sample_ids.size())
                throw config_error("pipeline_parallel: micro-batches of one iteration must hold as many sequences");
        }
        const std::size_t sequences = batches[0].sample_ids.size();
        compress::identity plain;

        // Every receive of the iteration is posted up front, into its own buffer, so a sender's
        // bytes never wait for this stage to reach the op that reads them.
        // Activations travel one payload per sequence, gradients one payload per micro-batch.
        auto sized = [](auto& c, std::size_t values, std::size_t parts) { return values == 0 ? 0 : dtfm::detail::pipeline_frame_capacity(c, values, parts); };
        const bool has_prev = !stage.first(), has_next = !stage.last();
        const std::size_t fwd_in_cap = !has_prev ? 0 : Warm ? sized(plain, in_size, sequences) : sized(fwd_recv_, in_size, sequences);
        const std::size_t fwd_out_cap = !has_next ? 0 : Warm ? sized(plain, out_size, sequences) : sized(fwd_send_, out_size, sequences);
        const std::size_t bwd_in_cap = !has_next ? 0 : Warm ? sized(plain, out_size, 1) : sized(bwd_recv_, out_size, 1);
        const std::size_t bwd_out_cap = !has_prev ? 0 : Warm ? sized(plain, in_size, 1) : sized(bwd_send_, in_size, 1);
        fwd_in_.resize(count);
        bwd_in_.resize(count);
        fwd_out_.resize(count);
        bwd_out_.resize(count);
        std::vector<request> fwd_recvs(count), bwd_recvs(count), sends;
        for (std::size_t m = 0; m < count; ++m) {
            if (!stage.first()) {
                fwd_in_[m].resize(fwd_in_cap);
                fwd_recvs[m] = t.irecv(me - 1, tag(static_cast<int>(m), 0), fwd_in_[m]);
            }
            if (!stage.last()) {
                bwd_in_[m].resize(bwd_in_cap);
                bwd_recvs[m] = t.irecv(me + 1, tag(static_cast<int>(m), 1), bwd_in_[m]);
            }
        }
        in_.resize(in_size);
        out_.resize(out_size);
        grad_out_.resize(out_size);
        grad_in_.resize(in_size);

        double loss = 0;
        for (const pipeline_op op : Schedule{}.ops(me, t.size(), microbatches)) {
            const auto m = static_cast<std::size_t>(op.microbatch);
            const microbatch& mb = batches[m];
            if (op.pass == pipeline_pass::forward) {
                stage.feed(op.microbatch, mb.tokens, mb.targets);
                if (!stage.first()) {
                    const std::size_t got = transport::wait_within(fwd_recvs[m], options_.timeout, "pipeline: activation receive");
                    const auto message = std::span<const std::byte>(fwd_in_[m]).first(got);
                    if constexpr (Warm) dtfm::detail::pipeline_unframe(plain, message, std::span<float>(in_), {}, sequences);
                    else dtfm::detail::pipeline_unframe(fwd_recv_, message, std::span<float>(in_), mb.sample_ids);
                }
                stage.forward(op.microbatch, std::span<const float>(in_), std::span<float>(out_));
                if (stage.last()) {
                    loss += static_cast<double>(out_[0]);
                } else {
                    fwd_out_[m].resize(fwd_out_cap);
                    const std::size_t bytes = Warm ? dtfm::detail::pipeline_frame(plain, out_, sequences, {}, fwd_out_[m])
                                                   : dtfm::detail::pipeline_frame(fwd_send_, out_, sequences, mb.sample_ids, fwd_out_[m]);
                    traffic_.forward_payload_bytes += bytes;
                    traffic_.forward_value_bytes += out_size * sizeof(float);
                    sends.push_back(t.isend(me + 1, tag(op.microbatch, 0), std::span<const std::byte>(fwd_out_[m]).first(bytes)));
                }
            } else {
                if (stage.last()) {
                    grad_out_.assign(out_size, 1.0f / static_cast<float>(microbatches));
                } else {
                    const std::size_t got = transport::wait_within(bwd_recvs[m], options_.timeout, "pipeline: gradient receive");
                    const auto message = std::span<const std::byte>(bwd_in_[m]).first(got);
                    if constexpr (Warm) dtfm::detail::pipeline_unframe(plain, message, std::span<float>(grad_out_), {}, 1);
                    else dtfm::detail::pipeline_unframe(bwd_recv_, message, std::span<float>(grad_out_), {}, 1);
                }
                stage.backward(op.microbatch, std::span<const float>(grad_out_), std::span<float>(grad_in_));
                if (!stage.first()) {
                    bwd_out_[m].resize(bwd_out_cap);
                    const std::size_t bytes = Warm ? dtfm::detail::pipeline_frame(plain, grad_in_, 1, {}, bwd_out_[m]) : dtfm::detail::pipeline_frame(bwd_send_, grad_in_, 1, {}, bwd_out_[m]);
                    traffic_.backward_payload_bytes += bytes;
                    traffic_.backward_value_bytes += in_size * sizeof(float);
                    sends.push_back(t.isend(me - 1, tag(op.microbatch, 1), std::span<const std::byte>(bwd_out_[m]).first(bytes)));
                }
            }
        }
        for (auto& s : sends) transport::wait_within(s, options_.timeout, "pipeline: send");
        return stage.last() ? loss / microbatches : std::numeric_limits<double>::quiet_NaN();
    }

    FwdC fwd_send_, fwd_recv_;
    BwdC bwd_send_, bwd_recv_;
    pipeline_options options_;
    std::uint64_t iterations_ = 0;
    pipeline_traffic traffic_;
    std::vector<float> in_, out_, grad_out_, grad_in_;
    std::vector<std::vector<std::byte>> fwd_in_, bwd_in_, fwd_out_, bwd_out_;
};

}  // namespace dtfm::strategy
