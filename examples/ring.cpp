// dtfm-ring: N ranks as threads (transport::inproc) split into groups, and each group sums its
// members' vectors by passing them around a ring with asynchronous sends and receives — once over
// the raw in-process transport and once over throttled<inproc> links (default 1 Gbit/s, 5 ms).
// Every rank checks it holds the exact sum; the program prints the time and bytes each rank moved
// and, for the emulated links, the time the link model predicts.
//
//   dtfm-ring [--ranks N] [--groups G] [--elements M] [--gbps B] [--delay-ms D]
//   (defaults: 4 ranks, 2 groups, 1M floats, 1 Gbit/s, 5 ms)
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dtfm/dtfm.hpp"
#include "dtfm/transport/throttled.hpp"

namespace {

struct options {
    int ranks = 4;
    int groups = 2;
    long elements = 1'000'000;
    double gbps = 1.0;
    double delay_ms = 5.0;
};

long parse_positive(std::string_view flag, const char* text) {
    char* end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (end == text || *end != '\0' || v <= 0) {
        throw dtfm::config_error(std::string(flag) + " needs a positive integer, got '" + text + "'");
    }
    return v;
}

double parse_number(std::string_view flag, const char* text) {
    char* end = nullptr;
    const double v = std::strtod(text, &end);
    if (end == text || *end != '\0' || !(v >= 0) || v > 1e6) {
        throw dtfm::config_error(std::string(flag) + " needs a number from 0 to 1e6, got '" + text + "'");
    }
    return v;
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            std::puts("usage: dtfm-ring [--ranks N] [--groups G] [--elements M] [--gbps B] [--delay-ms D]");
            std::exit(0);
        }
        if (i + 1 >= argc) throw dtfm::config_error("missing value after " + std::string(flag));
        const char* value = argv[++i];
        if (flag == "--ranks") o.ranks = static_cast<int>(std::min(parse_positive(flag, value), 100000L));
        else if (flag == "--groups") o.groups = static_cast<int>(std::min(parse_positive(flag, value), 100000L));
        else if (flag == "--elements") o.elements = parse_positive(flag, value);
        else if (flag == "--gbps") o.gbps = parse_number(flag, value);
        else if (flag == "--delay-ms") o.delay_ms = parse_number(flag, value);
        else throw dtfm::config_error("unknown flag " + std::string(flag));
    }
    if (o.ranks > 256) throw dtfm::config_error("--ranks is at most 256");
    if (o.elements > 100'000'000) throw dtfm::config_error("--elements is at most 100000000");
    if (o.gbps <= 0) throw dtfm::config_error("--gbps must be positive");
    if (o.groups > o.ranks || o.ranks % o.groups != 0) {
        throw dtfm::config_error("--groups must divide --ranks");
    }
    return o;
}

std::span<const std::byte> bytes_of(const std::vector<float>& v) { return std::as_bytes(std::span(v)); }
std::span<std::byte> bytes_of(std::vector<float>& v) { return std::as_writable_bytes(std::span(v)); }

// Leaves in `sum` the sum of `sum` over the group: at each of size-1 steps, pass on what arrived
// last time and add what arrives now. The receive is posted before the send, so no rank waits on
// a rank that waits on it. The two scratch vectors are the caller's: nothing allocates here.
template <dtfm::concepts::transport Transport>
void ring_sum(Transport& group, std::vector<float>& sum, std::vector<float>& outgoing, std::vector<float>& incoming,
              std::size_t& bytes_moved) {
    const int next = (group.rank() + 1) % group.size();
    const int prev = (group.rank() + group.size() - 1) % group.size();
    outgoing = sum;
    for (int step = 0; step + 1 < group.size(); ++step) {
        const dtfm::message_tag tag{dtfm::channel::data_parallel, static_cast<std::uint32_t>(step)};
        auto recv = group.irecv(prev, tag, bytes_of(incoming));
        auto send = group.isend(next, tag, bytes_of(outgoing));
        bytes_moved += send.wait();
        if (recv.wait() != incoming.size() * sizeof(float)) throw dtfm::wire_error(
            dtfm::wire_error::reason::bad_length, "ring_sum: a message of the wrong size arrived");
        for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += incoming[i];
        outgoing.swap(incoming);
    }
}

struct outcome {
    std::vector<double> seconds;
    std::vector<std::size_t> moved;
    std::vector<int> correct;
};

// Runs the ring once on every rank, over the raw in-process transport or over emulated links.
outcome run_ring(const options& o, bool emulate_links) {
    const int group_size = o.ranks / o.groups;
    const auto n = static_cast<std::size_t>(o.elements);
    const auto ranks = static_cast<std::size_t>(o.ranks);
    outcome out{std::vector<double>(ranks), std::vector<std::size_t>(ranks), std::vector<int>(ranks)};
    dtfm::transport::run_inproc(o.ranks, [&](dtfm::transport::inproc& world) {
        const auto me = static_cast<std::size_t>(world.rank());
        // Consecutive ranks form a group, as the replicas of one pipeline stage would.
        auto group = world.split(world.rank() / group_size, world.rank());
        std::vector<float> sum(n), outgoing(n), incoming(n);
        for (std::size_t i = 0; i < n; ++i) sum[i] = static_cast<float>((world.rank() + 1) * static_cast<int>(i % 7));

        const auto start = std::chrono::steady_clock::now();
        if (emulate_links) {
            const auto links = dtfm::transport::link_model::uniform(group.size(), o.delay_ms, o.gbps);
            dtfm::transport::throttled<dtfm::transport::inproc> slow(std::move(group), links);
            ring_sum(slow, sum, outgoing, incoming, out.moved[me]);
        } else {
            ring_sum(group, sum, outgoing, incoming, out.moved[me]);
        }
        out.seconds[me] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        // Group g holds world ranks g*k … g*k+k-1, so the sum of (rank+1) over it is closed-form.
        const int first = (world.rank() / group_size) * group_size;
        const long coefficient = static_cast<long>(group_size) * (2 * first + group_size + 1) / 2;
        bool ok = true;
        for (std::size_t i = 0; i < n && ok; ++i) ok = sum[i] == static_cast<float>(coefficient * static_cast<long>(i % 7));
        out.correct[me] = ok ? 1 : 0;
    });
    return out;
}

bool report(const options& o, const char* title, const outcome& r) {
    const int group_size = o.ranks / o.groups;
    std::printf("\n%s\n", title);
    bool all = true;
    for (int rank = 0; rank < o.ranks; ++rank) {
        const auto i = static_cast<std::size_t>(rank);
        std::printf("  rank %3d  group %3d  sent %10zu bytes in %9.3f ms  %s\n", rank, rank / group_size, r.moved[i],
                    r.seconds[i] * 1e3, r.correct[i] ? "exact" : "WRONG");
        all = all && r.correct[i] == 1;
    }
    return all;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const options o = parse(argc, argv);
        const int group_size = o.ranks / o.groups;
        const auto n = static_cast<std::size_t>(o.elements);
        std::printf("dtfm %d.%d.%d: %d in-process ranks in %d groups of %d, %zu floats each\n", dtfm::version.major,
                    dtfm::version.minor, dtfm::version.patch, o.ranks, o.groups, group_size, n);

        const bool fast_ok = report(o, "in-process transport:", run_ring(o, false));
        char title[160];
        std::snprintf(title, sizeof title, "throttled links, %.3g Gbit/s and %.3g ms each way:", o.gbps, o.delay_ms);
        const bool slow_ok = report(o, title, run_ring(o, true));
        // Each of the group_size - 1 steps moves one vector over one link: bytes / bandwidth + latency.
        const double step = static_cast<double>(n * sizeof(float)) * 8 / (o.gbps * 1e9) + o.delay_ms / 1e3;
        std::printf("  the link model predicts %.3f ms per rank (%d steps of %.3f ms)\n",
                    step * (group_size - 1) * 1e3, group_size - 1, step * 1e3);

        const bool all = fast_ok && slow_ok;
        std::puts(all ? "\nevery rank holds the exact sum of its group" : "\nsome ranks hold a wrong sum");
        return all ? 0 : 1;
    } catch (const dtfm::config_error& e) {
        std::fprintf(stderr, "dtfm-ring: %s (try --help)\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dtfm-ring: %s\n", e.what());
        return 1;
    }
}
