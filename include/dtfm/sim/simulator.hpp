// sim::simulate: a discrete-event simulation of one training iteration of a hybrid plan (pipeline
// stages × data-parallel replicas) over a topology, before anything runs. Compute takes FLOPs ÷
// (peak × efficiency); messages take their compressed size ÷ bandwidth plus latency on each directed
// link, first-in first-out, optionally behind a per-device NIC cap — exactly what
// transport::throttled<T> emulates — so a prediction can be checked against a measured run.
//
// What is modelled, and the overlap rules:
// - Each stage of each replica runs its ops in the order Schedule::ops gives (schedule::gpipe or
//   schedule::one_f_one_b, the same code the pipeline executes). An op starts when the device is
//   free and its input has arrived (a forward needs the previous stage's activation, a backward the
//   next stage's gradient). Encoding the op's output and decoding its input run on the device, as
//   part of the op, at the codec's throughput.
// - A forward sends its activation as one payload per sequence (b payloads of s·d values), a
//   backward its gradient as one payload of b·s·d values, as strategy::pipeline_parallel frames
//   them; a message is issued when the op ends and queues on its link behind earlier ones.
// - The data-parallel all-reduce of stage s starts, on each replica's device, when that device has
//   run its last op and its last pipeline send has left (pipeline_parallel::run waits for its sends,
//   then hybrid::step calls the all-reduce). So the last stages' all-reduces overlap the backward
//   passes still draining through the first stages, and every all-reduce shares the link queues
//   with whatever else is on them. The iteration ends when the last all-reduce ends, plus the
//   optimizer step when sim_options::optimizer_flops_per_parameter gives it a cost; reduction
//   arithmetic and the next iteration's start are not modelled (a synchronous
//   iteration from an idle start, the steady state's upper bound).
// - ring: ring_allreduce's 2(R−1) steps over the replicas in replica order, segment-sized messages
//   of fp32 (a rank sends step t+1 once it has received step t; slices within a step are not
//   modelled, so every step pays one latency). compressed: compressed_allreduce's two phases — each
//   rank encodes and sends its R−1 foreign segments, starting after itself; a server that has all
//   R−1 contributions decodes them, encodes the average once and sends it to the R−1 others.
//   hierarchical: a ring inside each region (regions from the topology), the two-phase compressed
//   all-reduce between the regions' leaders (the lowest replica of each), then a chain broadcast
//   from the leader, in at most 64 slices forwarded as they arrive.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/compress/identity.hpp"
#include "dtfm/concepts/schedule.hpp"
#include "dtfm/error.hpp"
#include "dtfm/plan/topology.hpp"
#include "dtfm/schedule/gpipe.hpp"
#include "dtfm/schedule/one_f_one_b.hpp"
#include "dtfm/sim/model_cost.hpp"
#include "dtfm/strategy/hybrid.hpp"
#include "dtfm/transport/link_model.hpp"

namespace dtfm::sim {

// How a message of n fp32 values travels: its size on the wire (a real compressor's
// max_payload_bytes, so the simulated bytes are the sent bytes) and the throughput, in input bytes
// per second, of its encode and (separately) of its decode. By default a codec costs no time.
struct codec {
    std::string name = "none";
    std::function<std::size_t(std::size_t)> payload_bytes;
    double bytes_per_second = std::numeric_limits<double>::infinity();

    template <class C>
    static codec of(std::string name, C c = C(), double bytes_per_second = std::numeric_limits<double>::infinity()) {
        auto held = std::make_shared<C>(std::move(c));
        return codec{std::move(name), [held](std::size_t n) { return held->max_payload_bytes(n); }, bytes_per_second};
    }
    static codec none() { return of<compress::identity>("none"); }

    std::size_t bytes(std::size_t n) const { return payload_bytes ? payload_bytes(n) : n * sizeof(float); }
    double seconds(std::size_t n) const { return static_cast<double>(n * sizeof(float)) / bytes_per_second; }
};

// Pipeline links by class: a message uses the first rule whose min_gbps is at most its link's
// bandwidth (list the rules fastest first); a link no rule matches is uncompressed.
struct link_rule {
    double min_gbps = 0;
    codec forward = codec::none();
    codec backward = codec::none();
};

enum class allreduce_kind { ring, compressed, hierarchical };

inline const char* to_string(allreduce_kind k) {
    switch (k) {
    case allreduce_kind::ring: return "ring";
    case allreduce_kind::compressed: return "compressed";
    case allreduce_kind::hierarchical: return "hierarchical";
    }
    return "?";
}

struct sim_options {
    int microbatches = 1;    // M, per replica per iteration
    double efficiency = 0.3;  // achieved fraction of each device's peak_tflops (default 30%)
    std::vector<link_rule> pipeline_links;
    allreduce_kind allreduce = allreduce_kind::ring;
    codec allreduce_codec = codec::none();  // compressed, and hierarchical's inter-region phase
    std::optional<double> nic_gbps;         // cap on the sum of what each device sends
    bool check_memory = true;               // config_error when a stage does not fit its device
    // The devices are threads sharing this many cores (ranks as threads on one machine, as
    // dtfm-train runs them): an op also waits for a free core, first come first served. The
    // critical path does not show these waits.
    std::optional<int> host_cores;
    // The optimizer step and whatever else a rank does once per iteration (zeroing gradients,
    // building the batch), as FLOPs per parameter of its stage, run after the stage's all-reduce.
    // 0: not modelled (a GPU's AdamW step is milliseconds against seconds of pipeline).
    double optimizer_flops_per_parameter = 0;
};

struct path_step {
    std::string resource;  // "device 3" or "link 3->11"
    std::string what;
    double start = 0, end = 0;
};

struct iteration_result {
    double iteration_seconds = 0;
    double pipeline_seconds = 0;  // when the last forward/backward op ended
    double tokens_per_iteration = 0;
    double tokens_per_second = 0;
    double bubble_fraction = 0;             // 1 − Σ busy ÷ (devices × pipeline_seconds)
    std::vector<double> busy_seconds;       // per topology device (0 for devices the plan leaves out)
    std::vector<double> busy_fraction;      // busy_seconds ÷ iteration_seconds
    std::vector<double> memory_bytes;       // per topology device
    std::vector<double> allreduce_seconds;  // per stage: first member's start to last member's end
                                            // (and its optimizer step, when modelled)
    std::vector<path_step> critical_path;   // the chain of events that ended last, in time order
};

// Stages × (devices ÷ stages) replicas in device order: config_error unless stages divides them.
inline strategy::mesh_placement default_placement(const plan::topology& t, int stages) {
    plan::check_stages(t, stages);
    return strategy::mesh_placement::default_order(stages, t.size() / stages);
}

}  // namespace dtfm::sim

namespace dtfm::sim::detail {

enum class node_kind : std::uint8_t { forward, backward, activation, gradient, ring_step, to_server, from_server, broadcast };

struct node {
    node_kind kind;
    int from, to;  // device (ops), or the link's ends (messages)
    int stage, replica, index;
    double bytes;
    double start, end;
    int pred;
};

class engine {
public:
    // `expected` events (ops and messages) are reserved up front: growing the vectors was most of
    // the run time.
    engine(transport::link_model links, std::size_t expected) : links_(std::move(links)) {
        nodes_.reserve(expected);
        actions_.reserve(2 * expected);
        heap_.reserve(expected);
        const auto n = static_cast<std::size_t>(links_.devices());
        link_free_.assign(n * n, 0.0);
        link_node_.assign(n * n, -1);
        nic_free_.assign(n, 0.0);
        nic_node_.assign(n, -1);
    }

    double now() const { return now_; }
    std::vector<node>& nodes() { return nodes_; }

    void at(double t, std::function<void()> f) {
        actions_.push_back(std::move(f));
        heap_.push_back({t, seq_++, actions_.size() - 1});
        std::push_heap(heap_.begin(), heap_.end(), std::greater<event>());
    }

    void run() {
        while (!heap_.empty()) {
            std::pop_heap(heap_.begin(), heap_.end(), std::greater<event>());
            const event e = heap_.back();
            heap_.pop_back();
            now_ = e.time;
            auto f = std::move(actions_[e.action]);
            f();
        }
    }

    int add(node n) {
        nodes_.push_back(n);
        return static_cast<int>(nodes_.size()) - 1;
    }

    struct sent {
        double departure;
        int node;
    };

    // Issues a message now, as throttled<T>::isend: it starts when the link and the sender's NIC
    // are free, leaves after bytes ÷ min(link, NIC), arrives one latency later.
    sent send(node info, int ready_node, std::function<void(int)> on_arrival) {
        const int a = info.from, b = info.to;
        double start = now_;
        int pred = ready_node;
        double departure = now_, arrival = now_;
        if (a != b) {
            const std::size_t l = static_cast<std::size_t>(a) * static_cast<std::size_t>(links_.devices()) + static_cast<std::size_t>(b);
            const auto nic = static_cast<std::size_t>(a);
            if (link_free_[l] > start) {
                start = link_free_[l];
                pred = link_node_[l];
            }
            if (nic_free_[nic] > start) {
                start = nic_free_[nic];
                pred = nic_node_[nic];
            }
            const double rate = std::min(links_.bytes_per_second(a, b), links_.nic_bytes_per_second(a));
            departure = start + info.bytes / rate;
            arrival = departure + links_.delay_seconds(a, b);
            link_free_[l] = departure;
            nic_free_[nic] = start + info.bytes / links_.nic_bytes_per_second(a);
        }
        info.start = start;
        info.end = arrival;
        info.pred = pred;
        const int id = add(info);
        if (a != b) {
            link_node_[static_cast<std::size_t>(a) * static_cast<std::size_t>(links_.devices()) + static_cast<std::size_t>(b)] = id;
            nic_node_[static_cast<std::size_t>(a)] = id;
        }
        at(arrival, [f = std::move(on_arrival), id] { f(id); });
        return {departure, id};
    }

private:
    struct event {
        double time;
        std::uint64_t seq;
        std::size_t action;
        bool operator>(const event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
    };

    transport::link_model links_;
    std::vector<double> link_free_, nic_free_;
    std::vector<int> link_node_, nic_node_;
    std::vector<node> nodes_;
    std::vector<std::function<void()>> actions_;
    std::vector<event> heap_;  // a min-heap on (time, seq): ties run in the order they were scheduled
    std::uint64_t seq_ = 0;
    double now_ = 0;
};

inline std::size_t segment_size(std::size_t n, std::size_t parts, std::size_t i) {
    return n / parts + (i < n % parts ? 1 : 0);
}

// One all-reduce among members 0…R−1 (devices given); start(k, node) at engine.now() when member k
// joins; done(k, node) when member k holds the result.
class collective {
public:
    virtual ~collective() = default;
    virtual void start(int member, int node) = 0;
    std::function<void(int, int)> done;
};

class ring : public collective {
public:
    ring(engine& e, std::vector<int> devices, std::size_t n, int stage)
        : e_(e), dev_(std::move(devices)), n_(n), stage_(stage), r_(static_cast<int>(dev_.size())),
          steps_(2 * (r_ - 1)), started_(dev_.size(), false), next_(dev_.size(), 0), received_(dev_.size(), 0),
          latest_(dev_.size(), -1) {}

    void start(int k, int node) override {
        started_[u(k)] = true;
        latest_[u(k)] = node;
        if (received_[u(k)] == steps_) {
            done(k, node);
            return;
        }
        pump(k);
    }

private:
    static std::size_t u(int k) { return static_cast<std::size_t>(k); }

    std::size_t bytes(int k, int t) const {
        const int idx = t < r_ - 1 ? (k - t + r_) % r_ : (k + 1 - (t - (r_ - 1)) + 2 * r_) % r_;
        return sizeof(float) * segment_size(n_, u(r_), u(idx));
    }

    void pump(int k) {
        while (started_[u(k)] && next_[u(k)] < steps_ && received_[u(k)] >= next_[u(k)]) {
            const int t = next_[u(k)]++;
            const int to = (k + 1) % r_;
            node info{node_kind::ring_step, dev_[u(k)], dev_[u(to)], stage_, k, t, static_cast<double>(bytes(k, t)), 0, 0, -1};
            e_.send(info, latest_[u(k)], [this, to](int id) { arrive(to, id); });
        }
    }

    void arrive(int k, int id) {
        ++received_[u(k)];
        latest_[u(k)] = id;
        if (started_[u(k)] && received_[u(k)] == steps_) done(k, id);
        pump(k);
    }

    engine& e_;
    std::vector<int> dev_;
    std::size_t n_;
    int stage_, r_, steps_;
    std::vector<bool> started_;
    std::vector<int> next_, received_, latest_;
};

class two_phase : public collective {
public:
    two_phase(engine& e, std::vector<int> devices, std::size_t n, int stage, const codec& c)
        : e_(e), dev_(std::move(devices)), n_(n), stage_(stage), r_(static_cast<int>(dev_.size())), codec_(c),
          started_(dev_.size(), false), contributions_(dev_.size(), 0), results_(dev_.size(), 0),
          latest_(dev_.size(), -1) {}

    void start(int k, int node) override {
        started_[u(k)] = true;
        latest_[u(k)] = node;
        if (r_ == 1) {
            done(k, node);
            return;
        }
        double t = e_.now();
        for (int d = 1; d < r_; ++d) {
            const int j = (k + d) % r_;
            t += codec_.seconds(seg(j));
            e_.at(t, [this, k, j, node] {
                node_info_send(node_kind::to_server, k, j, node, [this, j](int id) { contribution(j, id); });
            });
        }
        maybe_serve(k);
    }

private:
    static std::size_t u(int k) { return static_cast<std::size_t>(k); }
    std::size_t seg(int j) const { return segment_size(n_, u(r_), u(j)); }

    template <class F>
    void node_info_send(node_kind kind, int from, int segment, int ready, F on_arrival, int to = -1) {
        const int dest = to < 0 ? segment : to;
        node info{kind, dev_[u(from)], dev_[u(dest)], stage_, from, segment, static_cast<double>(codec_.bytes(seg(segment))), 0, 0, -1};
        e_.send(info, ready, std::move(on_arrival));
    }

    void contribution(int j, int id) {
        ++contributions_[u(j)];
        latest_[u(j)] = id;
        maybe_serve(j);
    }

    void maybe_serve(int j) {
        if (!started_[u(j)] || contributions_[u(j)] != r_ - 1) return;
        contributions_[u(j)] = -1;  // served
        // Decode R−1 contributions, encode the average once; then send it to every other rank.
        const double t = e_.now() + static_cast<double>(r_) * codec_.seconds(seg(j));
        const int ready = latest_[u(j)];
        e_.at(t, [this, j, ready] {
            for (int d = 1; d < r_; ++d) {
                const int k = (j + d) % r_;
                node_info_send(node_kind::from_server, j, j, ready, [this, k](int id) { result(k, id); }, k);
            }
        });
        ++results_[u(j)];  // its own segment
        if (results_[u(j)] == r_) finish(j);
    }

    void result(int k, int id) {
        ++results_[u(k)];
        latest_[u(k)] = id;
        if (results_[u(k)] == r_) finish(k);
    }

    void finish(int k) {
        const int last = latest_[u(k)];
        const double t = e_.now() + static_cast<double>(r_ - 1) * codec_.seconds(n_ / u(r_));
        e_.at(t, [this, k, last] { done(k, last); });
    }

    engine& e_;
    std::vector<int> dev_;
    std::size_t n_;
    int stage_, r_;
    codec codec_;
    std::vector<bool> started_;
    std::vector<int> contributions_, results_, latest_;
};

// The leader (member 0) sends the whole buffer down the chain 0 → 1 → …, slice by slice; a member
// forwards a slice once it has it and has joined.
class chain_broadcast : public collective {
public:
    static constexpr std::size_t max_slices = 64;

    chain_broadcast(engine& e, std::vector<int> devices, std::size_t n, int stage, std::size_t slice_bytes = std::size_t{1} << 20)
        : e_(e), dev_(std::move(devices)), stage_(stage), p_(static_cast<int>(dev_.size())),
          joined_(dev_.size(), false), have_(dev_.size(), 0), sent_(dev_.size(), 0), latest_(dev_.size(), -1) {
        const std::size_t total = n * sizeof(float);
        const std::size_t slice = std::max(slice_bytes, (total + max_slices - 1) / max_slices);
        for (std::size_t at = 0; at < total; at += slice) slices_.push_back(static_cast<double>(std::min(slice, total - at)));
        have_[0] = static_cast<int>(slices_.size());
    }

    void start(int k, int node) override {
        joined_[u(k)] = true;
        latest_[u(k)] = node;
        pump(k);
        if (k == 0 || have_[u(k)] == static_cast<int>(slices_.size())) done(k, latest_[u(k)]);
    }

private:
    static std::size_t u(int k) { return static_cast<std::size_t>(k); }

    void pump(int k) {
        if (!joined_[u(k)] || k + 1 >= p_) return;
        while (sent_[u(k)] < have_[u(k)]) {
            const int i = sent_[u(k)]++;
            node info{node_kind::broadcast, dev_[u(k)], dev_[u(k + 1)], stage_, k, i, slices_[u(i)], 0, 0, -1};
            e_.send(info, latest_[u(k)], [this, k](int id) { arrive(k + 1, id); });
        }
    }

    void arrive(int k, int id) {
        ++have_[u(k)];
        latest_[u(k)] = id;
        pump(k);
        if (joined_[u(k)] && have_[u(k)] == static_cast<int>(slices_.size())) done(k, id);
    }

    engine& e_;
    std::vector<int> dev_;
    int stage_, p_;
    std::vector<double> slices_;
    std::vector<bool> joined_;
    std::vector<int> have_, sent_, latest_;
};

class hierarchical : public collective {
public:
    hierarchical(engine& e, const std::vector<int>& devices, const std::vector<int>& region_of_member, std::size_t n,
                 int stage, const codec& c)
        : region_of_(region_of_member), local_(devices.size(), 0) {
        int regions = 0;
        for (int g : region_of_) regions = std::max(regions, g + 1);
        members_.resize(static_cast<std::size_t>(regions));
        for (std::size_t k = 0; k < devices.size(); ++k) {
            auto& m = members_[static_cast<std::size_t>(region_of_[k])];
            local_[k] = static_cast<int>(m.size());
            m.push_back(static_cast<int>(k));
        }
        std::vector<int> leaders;
        for (std::size_t g = 0; g < members_.size(); ++g) {
            std::vector<int> devs;
            for (int k : members_[g]) devs.push_back(devices[static_cast<std::size_t>(k)]);
            leaders.push_back(devs[0]);
            intra_.push_back(std::make_unique<ring>(e, devs, n, stage));
            broadcast_.push_back(std::make_unique<chain_broadcast>(e, devs, n, stage));
            // The leader goes on to the inter-region phase; the others wait for the broadcast.
            intra_.back()->done = [this, g](int i, int node) {
                if (i == 0) inter_->start(static_cast<int>(g), node);
                else broadcast_[g]->start(i, node);
            };
            broadcast_.back()->done = [this, g](int i, int node) { done(members_[g][static_cast<std::size_t>(i)], node); };
        }
        inter_ = std::make_unique<two_phase>(e, leaders, n, stage, c);
        inter_->done = [this](int g, int node) { broadcast_[static_cast<std::size_t>(g)]->start(0, node); };
    }

    void start(int k, int node) override {
        const auto uk = static_cast<std::size_t>(k);
        intra_[static_cast<std::size_t>(region_of_[uk])]->start(local_[uk], node);
    }

private:
    std::vector<int> region_of_, local_;
    std::vector<std::vector<int>> members_;
    std::vector<std::unique_ptr<ring>> intra_;
    std::vector<std::unique_ptr<chain_broadcast>> broadcast_;
    std::unique_ptr<two_phase> inter_;
};

}  // namespace dtfm::sim::detail

namespace dtfm::sim {

namespace detail {

inline const link_rule* rule_for(const sim_options& o, double gbps) {
    for (const auto& r : o.pipeline_links)
        if (gbps >= r.min_gbps) return &r;
    return nullptr;
}

inline std::string describe(const node& n) {
    const auto s = [](auto v) { return std::to_string(v); };
    switch (n.kind) {
    case node_kind::forward:
        return "forward of micro-batch " + s(n.index) + ", stage " + s(n.stage) + ", replica " + s(n.replica);
    case node_kind::backward:
        return "backward of micro-batch " + s(n.index) + ", stage " + s(n.stage) + ", replica " + s(n.replica);
    case node_kind::activation:
        return "activation of micro-batch " + s(n.index) + ", stage " + s(n.stage) + " to " + s(n.stage + 1) +
               ", replica " + s(n.replica) + " (" + s(static_cast<long long>(n.bytes)) + " bytes)";
    case node_kind::gradient:
        return "gradient of micro-batch " + s(n.index) + ", stage " + s(n.stage) + " to " + s(n.stage - 1) +
               ", replica " + s(n.replica) + " (" + s(static_cast<long long>(n.bytes)) + " bytes)";
    case node_kind::ring_step:
        return "ring all-reduce of stage " + s(n.stage) + ", step " + s(n.index) + " (" +
               s(static_cast<long long>(n.bytes)) + " bytes)";
    case node_kind::to_server:
        return "all-reduce of stage " + s(n.stage) + ", phase 1, segment " + s(n.index) + " (" +
               s(static_cast<long long>(n.bytes)) + " bytes)";
    case node_kind::from_server:
        return "all-reduce of stage " + s(n.stage) + ", phase 2, segment " + s(n.index) + " (" +
               s(static_cast<long long>(n.bytes)) + " bytes)";
    case node_kind::broadcast:
        return "regional broadcast of stage " + s(n.stage) + ", slice " + s(n.index) + " (" +
               s(static_cast<long long>(n.bytes)) + " bytes)";
    }
    return "?";
}

}  // namespace detail

// Bytes every device of the plan needs (parameter and optimizer state, and the activations the
// schedule holds at once); 0 for devices the plan leaves out.
template <concepts::schedule Schedule = schedule::one_f_one_b>
std::vector<double> memory_bytes(const plan::topology& t, const strategy::mesh_placement& p, const gpt_config& model,
                                 int microbatches) {
    const auto costs = stage_costs(model, p.stages());
    std::vector<double> out(static_cast<std::size_t>(t.size()), 0.0);
    for (int r = 0; r < p.replicas(); ++r) {
        for (int s = 0; s < p.stages(); ++s) {
            const int d = p.rank_at(s, r);
            if (d >= t.size()) continue;
            out[static_cast<std::size_t>(d)] = stage_memory_bytes(
                model, costs[static_cast<std::size_t>(s)], Schedule::in_flight(s, p.stages(), microbatches));
        }
    }
    return out;
}

// One iteration of the plan `p` (p.rank_at(s, r) is the topology device running stage s of
// replica r) training `model` with o.microbatches micro-batches per replica.
template <concepts::schedule Schedule = schedule::one_f_one_b>
iteration_result simulate(const plan::topology& t, const strategy::mesh_placement& p, const gpt_config& model,
                          const sim_options& o = {}) {
    using detail::node;
    using detail::node_kind;
    const int S = p.stages(), R = p.replicas(), M = o.microbatches;
    if (p.ranks() > t.size())
        throw config_error("simulate: the plan places " + std::to_string(p.ranks()) + " ranks (devices 0…" +
                           std::to_string(p.ranks() - 1) + "), the topology has " + std::to_string(t.size()) + " devices");
    if (M < 1) throw config_error("simulate: need at least one micro-batch");
    if (o.host_cores && *o.host_cores < 1) throw config_error("simulate: host_cores must be at least 1");
    if (!(o.optimizer_flops_per_parameter >= 0) || !std::isfinite(o.optimizer_flops_per_parameter))
        throw config_error("simulate: optimizer_flops_per_parameter must be finite and >= 0");
    if (!(o.efficiency > 0 && o.efficiency <= 1))
        throw config_error("simulate: efficiency " + std::to_string(o.efficiency) + " must be in (0, 1]");
    const auto costs = stage_costs(model, S);
    const auto& devs = t.devices();
    for (int d = 0; d < p.ranks(); ++d) {
        if (!(devs[static_cast<std::size_t>(d)].peak_tflops > 0))
            throw config_error("simulate: device " + std::to_string(d) + " (" + devs[static_cast<std::size_t>(d)].name +
                               ") has no peak_tflops");
    }

    iteration_result res;
    res.memory_bytes = memory_bytes<Schedule>(t, p, model, M);
    if (o.check_memory) {
        for (int d = 0; d < p.ranks(); ++d) {
            const auto& dev = devs[static_cast<std::size_t>(d)];
            const double need = res.memory_bytes[static_cast<std::size_t>(d)];
            if (dev.memory_gib > 0 && need > dev.memory_gib * 1073741824.0)
                throw config_error("simulate: device " + std::to_string(d) + " (" + dev.name + ", stage " +
                                   std::to_string(p.stage_of(d)) + ") needs " + std::to_string(need / 1073741824.0) +
                                   " GiB, has " + std::to_string(dev.memory_gib) + " GiB");
        }
    }

    auto links = transport::link_model::from_topology(t);
    if (o.nic_gbps) links.with_nic_cap(*o.nic_gbps);
    const std::size_t messages_per_group =
        o.allreduce == allreduce_kind::ring ? static_cast<std::size_t>(2 * R * R) : static_cast<std::size_t>(2 * R * R + 64 * R);
    detail::engine e(links, static_cast<std::size_t>(4 * S * R * M) + static_cast<std::size_t>(S) * messages_per_group);

    const std::size_t boundary = boundary_elements(model);
    const std::size_t per_sequence = boundary / static_cast<std::size_t>(model.microbatch_size);
    const auto b = static_cast<std::size_t>(model.microbatch_size);

    // Per rank (replica r, stage s), index r·S + s.
    struct rank_state {
        int device = 0;
        std::vector<pipeline_op> ops;
        std::size_t next = 0;
        bool busy = false;
        int last_node = -1;
        double last_departure = 0;
        int departure_node = -1;
        std::vector<int> fwd_in, bwd_in;  // arrival node per micro-batch, −1 until it arrives
        double busy_seconds = 0;
        double end = 0;
        bool waiting_for_core = false;
    };
    std::vector<rank_state> ranks(static_cast<std::size_t>(S * R));
    const auto at = [&](int r, int s) -> rank_state& { return ranks[static_cast<std::size_t>(r * S + s)]; };
    for (int r = 0; r < R; ++r) {
        for (int s = 0; s < S; ++s) {
            auto& st = at(r, s);
            st.device = p.rank_at(s, r);
            st.ops = Schedule{}.ops(s, S, M);
            st.fwd_in.assign(static_cast<std::size_t>(M), -1);
            st.bwd_in.assign(static_cast<std::size_t>(M), -1);
        }
    }

    const auto codec_for = [&](int from, int to, bool forward) -> const codec* {
        const link_rule* rule = detail::rule_for(o, from == to ? std::numeric_limits<double>::infinity() : t.bandwidth_gbps(from, to));
        if (!rule) return nullptr;
        return forward ? &rule->forward : &rule->backward;
    };
    const codec plain = codec::none();
    const auto wire_bytes = [&](const codec& c, bool forward) {
        return static_cast<double>(forward ? b * c.bytes(per_sequence) : c.bytes(boundary));
    };

    // Data-parallel groups, one per stage, members in replica order.
    std::vector<std::unique_ptr<detail::collective>> groups;
    std::vector<int> members_done(static_cast<std::size_t>(S), 0);
    std::vector<double> group_start(static_cast<std::size_t>(S), std::numeric_limits<double>::infinity());
    std::vector<double> group_end(static_cast<std::size_t>(S), 0);
    std::vector<int> group_node(static_cast<std::size_t>(S), -1);
    std::vector<std::string> region_names;
    for (const auto& d : devs) region_names.push_back(d.region);
    for (int s = 0; s < S; ++s) {
        std::vector<int> members;
        for (int r = 0; r < R; ++r) members.push_back(p.rank_at(s, r));
        const std::size_t n = costs[static_cast<std::size_t>(s)].parameters;
        std::unique_ptr<detail::collective> c;
        if (o.allreduce == allreduce_kind::ring) {
            c = std::make_unique<detail::ring>(e, members, n, s);
        } else if (o.allreduce == allreduce_kind::compressed) {
            c = std::make_unique<detail::two_phase>(e, members, n, s, o.allreduce_codec);
        } else {
            std::vector<std::string> seen;
            std::vector<int> region_of;
            for (int d : members) {
                const auto& name = region_names[static_cast<std::size_t>(d)];
                auto it = std::find(seen.begin(), seen.end(), name);
                if (it == seen.end()) {
                    seen.push_back(name);
                    it = seen.end() - 1;
                }
                region_of.push_back(static_cast<int>(it - seen.begin()));
            }
            c = std::make_unique<detail::hierarchical>(e, members, region_of, n, s, o.allreduce_codec);
        }
        c->done = [&, s, n](int k, int node_id) {
            const auto us = static_cast<std::size_t>(s);
            // The optimizer step follows the all-reduce on each member's device.
            const int device = p.rank_at(s, k);
            const double step = static_cast<double>(n) * o.optimizer_flops_per_parameter /
                                (devs[static_cast<std::size_t>(device)].peak_tflops * 1e12 * o.efficiency);
            const double end = e.now() + step;
            if (end >= group_end[us]) {
                group_end[us] = end;
                group_node[us] = node_id;
            }
            ++members_done[us];
        };
        groups.push_back(std::move(c));
    }

    std::function<void(int, int)> try_start;
    int cores_free = o.host_cores ? *o.host_cores : std::numeric_limits<int>::max();
    std::deque<std::pair<int, int>> core_queue;  // ranks (r, s) ready to run, waiting for a core
    const auto release_core = [&] {
        ++cores_free;
        while (cores_free > 0 && !core_queue.empty()) {
            const auto [qr, qs] = core_queue.front();
            core_queue.pop_front();
            at(qr, qs).waiting_for_core = false;
            try_start(qr, qs);
        }
    };
    const auto arrive = [&](int r, int s, bool forward, int m, int id) {
        auto& st = at(r, s);
        (forward ? st.fwd_in : st.bwd_in)[static_cast<std::size_t>(m)] = id;
        try_start(r, s);
    };

    const auto finish = [&](int r, int s, pipeline_op op, int id) {
        auto& st = at(r, s);
        st.busy = false;
        st.last_node = id;
        st.end = e.now();
        release_core();
        const bool forward = op.pass == pipeline_pass::forward;
        const int peer_stage = forward ? s + 1 : s - 1;
        if (peer_stage >= 0 && peer_stage < S) {
            const int to = at(r, peer_stage).device;
            const codec* c = codec_for(st.device, to, forward);
            node info{forward ? node_kind::activation : node_kind::gradient, st.device, to, s, r, op.microbatch,
                      wire_bytes(c ? *c : plain, forward), 0, 0, -1};
            const auto sent = e.send(info, id, [&, r, peer_stage, forward, m = op.microbatch](int arrival) {
                arrive(r, peer_stage, forward, m, arrival);
            });
            if (sent.departure >= st.last_departure) {
                st.last_departure = sent.departure;
                st.departure_node = sent.node;
            }
        }
        if (st.next == st.ops.size()) {
            // The pipeline is done here once its sends have left; then the all-reduce starts.
            const double start = std::max(e.now(), st.last_departure);
            const int why = st.last_departure > e.now() ? st.departure_node : id;
            e.at(start, [&, r, s, why] {
                auto& g = group_start[static_cast<std::size_t>(s)];
                g = std::min(g, e.now());
                groups[static_cast<std::size_t>(s)]->start(r, why);
            });
        } else {
            try_start(r, s);
        }
    };

    try_start = [&](int r, int s) {
        auto& st = at(r, s);
        if (st.busy || st.next == st.ops.size()) return;
        const pipeline_op op = st.ops[st.next];
        const auto m = static_cast<std::size_t>(op.microbatch);
        const bool forward = op.pass == pipeline_pass::forward;
        int input = -1;
        if (forward && s > 0) {
            input = st.fwd_in[m];
            if (input < 0) return;
        } else if (!forward && s < S - 1) {
            input = st.bwd_in[m];
            if (input < 0) return;
        }
        if (st.waiting_for_core) return;
        if (cores_free == 0) {
            st.waiting_for_core = true;
            core_queue.emplace_back(r, s);
            return;
        }
        --cores_free;
        ++st.next;
        st.busy = true;
        const auto& cost = costs[static_cast<std::size_t>(s)];
        const double rate = devs[static_cast<std::size_t>(st.device)].peak_tflops * 1e12 * o.efficiency;
        double seconds = (forward ? cost.forward_flops : cost.backward_flops) / rate;
        // Decode the input, encode the output: on this device, inside the op.
        if (input >= 0) {
            const int from = at(r, forward ? s - 1 : s + 1).device;
            if (const codec* c = codec_for(from, st.device, forward)) seconds += c->seconds(boundary);
        }
        if (const int peer = forward ? s + 1 : s - 1; peer >= 0 && peer < S) {
            if (const codec* c = codec_for(st.device, at(r, peer).device, forward)) seconds += c->seconds(boundary);
        }
        st.busy_seconds += seconds;
        // Whichever came last — the device's previous op or the input — made this op start now.
        int pred = st.last_node;
        if (input >= 0 && (pred < 0 || e.nodes()[static_cast<std::size_t>(input)].end >= e.nodes()[static_cast<std::size_t>(pred)].end))
            pred = input;
        const int id = e.add(node{forward ? node_kind::forward : node_kind::backward, st.device, st.device, s, r,
                                  op.microbatch, 0, e.now(), e.now() + seconds, pred});
        e.at(e.now() + seconds, [&, r, s, op, id] { finish(r, s, op, id); });
    };

    e.at(0, [&] {
        for (int r = 0; r < R; ++r)
            for (int s = 0; s < S; ++s) try_start(r, s);
    });
    e.run();

    for (int s = 0; s < S; ++s) {
        if (members_done[static_cast<std::size_t>(s)] != R)
            throw error("simulate: the all-reduce of stage " + std::to_string(s) + " did not finish (a simulator bug)");
    }
    for (const auto& st : ranks) {
        if (st.next != st.ops.size()) throw error("simulate: a pipeline deadlocked (a simulator bug)");
    }

    // Results.
    res.busy_seconds.assign(static_cast<std::size_t>(t.size()), 0.0);
    double busy = 0;
    int last = -1;
    for (const auto& st : ranks) {
        res.busy_seconds[static_cast<std::size_t>(st.device)] = st.busy_seconds;
        busy += st.busy_seconds;
        res.pipeline_seconds = std::max(res.pipeline_seconds, st.end);
        if (last < 0 || e.nodes()[static_cast<std::size_t>(st.last_node)].end > e.nodes()[static_cast<std::size_t>(last)].end)
            last = st.last_node;
    }
    res.iteration_seconds = res.pipeline_seconds;
    for (int s = 0; s < S; ++s) {
        const auto us = static_cast<std::size_t>(s);
        res.allreduce_seconds.push_back(group_end[us] - group_start[us]);
        if (group_end[us] > res.iteration_seconds) {
            res.iteration_seconds = group_end[us];
            last = group_node[us];
        }
    }
    res.tokens_per_iteration = static_cast<double>(M) * model.microbatch_size * model.sequence * R;
    res.tokens_per_second = res.tokens_per_iteration / res.iteration_seconds;
    res.bubble_fraction = 1 - busy / (static_cast<double>(S * R) * res.pipeline_seconds);
    res.busy_fraction.resize(res.busy_seconds.size());
    for (std::size_t d = 0; d < res.busy_seconds.size(); ++d) res.busy_fraction[d] = res.busy_seconds[d] / res.iteration_seconds;

    for (int id = last; id >= 0; id = e.nodes()[static_cast<std::size_t>(id)].pred) {
        const node& n = e.nodes()[static_cast<std::size_t>(id)];
        const bool op = n.kind == node_kind::forward || n.kind == node_kind::backward;
        res.critical_path.push_back(path_step{
            op ? "device " + std::to_string(n.from) : "link " + std::to_string(n.from) + "->" + std::to_string(n.to),
            detail::describe(n), n.start, n.end});
    }
    std::reverse(res.critical_path.begin(), res.critical_path.end());
    return res;
}

// The default placement (device order) of `stages` stages: config_error unless stages divides the
// topology's devices.
template <concepts::schedule Schedule = schedule::one_f_one_b>
iteration_result simulate(const plan::topology& t, int stages, const gpt_config& model, const sim_options& o = {}) {
    return simulate<Schedule>(t, default_placement(t, stages), model, o);
}

}  // namespace dtfm::sim
