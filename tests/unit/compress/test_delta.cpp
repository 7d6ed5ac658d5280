// delta<C> (AC-SGD): first visits are sent in full, later ones as C(a − m) and smaller; the
// receiver's m is bitwise the sender's; sender and receiver evict the same samples under a small
// budget; the file-backed store behaves as the memory one; hostile payloads are refused without
// changing state. Also the activation_cache itself: least recently used eviction, and its index
// against a reference model.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <list>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "dtfm/compress/activation_cache.hpp"
#include "dtfm/compress/cast.hpp"
#include "dtfm/compress/delta.hpp"
#include "dtfm/compress/identity.hpp"

using namespace dtfm::compress;
using reason = dtfm::wire_error::reason;

namespace {

constexpr std::size_t header = payload_header::size;

std::vector<float> random_values(std::size_t n, float spread, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, spread);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// The activation of `sample` at its `visit`-th visit: a fixed pattern plus a small drift, as a
// layer's output moves slowly while the model trains.
std::vector<float> activation(std::size_t n, std::uint64_t sample, int visit) {
    auto a = random_values(n, 1.0f, static_cast<std::uint32_t>(sample * 7919 + 1));
    const auto drift = random_values(n, 0.01f, static_cast<std::uint32_t>(sample * 104729 + static_cast<std::uint64_t>(visit) + 2));
    for (std::size_t i = 0; i < n; ++i) a[i] += static_cast<float>(visit) * 0.05f + drift[i];
    return a;
}

bool bitwise_equal(std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
}

// One boundary: a sender and a receiver delta of the same type and budget.
template <class D>
struct boundary {
    D sender;
    D receiver;
    std::vector<std::byte> payload;
    std::vector<float> out;

    std::size_t send(std::uint64_t id, std::span<const float> a) {
        payload.resize(sender.max_payload_bytes(a.size()));
        out.resize(a.size());
        sender.set_sample(id);
        const std::size_t bytes = sender.encode(a, payload);
        payload.resize(bytes);
        receiver.set_sample(id);
        receiver.decode(payload, out);
        return bytes;
    }
};

// A directory of its own under the system's temporary directory, removed at the end.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        std::string name = (std::filesystem::temp_directory_path() / "dtfm-test-delta-XXXXXX").string();
        REQUIRE(::mkdtemp(name.data()) != nullptr);
        path = name;
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
    std::size_t files() const {
        return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(path), {}));
    }
};

static_assert(dtfm::concepts::compressor<delta<cast<fp16>>>);
static_assert(dtfm::concepts::compressor<delta<identity, mmap_store>>);

}  // namespace

TEST_CASE("delta: the first visit is sent in full, later ones as C(a − m), and m is bitwise the sender's",
          "[compress][delta]") {
    constexpr std::size_t n = 1000;
    boundary<delta<cast<fp16>>> l{delta<cast<fp16>>(1 << 20), delta<cast<fp16>>(1 << 20), {}, {}};
    REQUIRE(l.sender.max_payload_bytes(n) == header + 4 * n);

    const auto first = activation(n, 42, 0);
    REQUIRE(l.send(42, first) == header + 4 * n);
    REQUIRE(l.payload[6] == std::byte{0});  // full body
    REQUIRE(l.out == first);                // sent in full: exact
    REQUIRE(bitwise_equal(l.sender.reference(42), first));

    double last_err = 0;
    for (int visit = 1; visit < 20; ++visit) {
        const auto a = activation(n, 42, visit);
        REQUIRE(l.send(42, a) == header + header + 2 * n);  // the delta inside cast<fp16>'s own payload
        REQUIRE(l.payload[6] == std::byte{1});
        REQUIRE(bitwise_equal(l.out, l.sender.reference(42)));
        REQUIRE(bitwise_equal(l.receiver.reference(42), l.sender.reference(42)));
        // m tracks a within fp16's precision of the step a − m (≈ 0.05), far better than fp16 of a.
        double err = 0;
        for (std::size_t i = 0; i < n; ++i) err = std::max(err, double{std::fabs(l.out[i] - a[i])});
        REQUIRE(err < 1e-3);
        last_err = err;
    }
    INFO("max |m − a| at the last visit: " << last_err);
    REQUIRE(l.sender.cache().size() == 1);
}

TEST_CASE("delta: with identity the receiver gets every activation, to the rounding of m + (a − m)",
          "[compress][delta]") {
    // First visits are exact. Later ones send a − m exactly, but fp32 rounds a − m and then
    // m + (a − m): exact when a and m are within a factor 2 of each other (Sterbenz), otherwise
    // within an ulp of |a| + |m|.
    constexpr std::size_t n = 333;
    boundary<delta<identity>> l{delta<identity>(1 << 20), delta<identity>(1 << 20), {}, {}};
    std::size_t inexact = 0;
    for (int visit = 0; visit < 5; ++visit) {
        for (std::uint64_t id : {7ull, 0xFFFF'FFFF'0000'0001ull, 0ull}) {
            const auto a = activation(n, id, visit);
            const std::vector<float> m(l.sender.reference(id).begin(), l.sender.reference(id).end());
            const std::size_t bytes = l.send(id, a);
            REQUIRE(bitwise_equal(l.out, l.sender.reference(id)));
            if (visit == 0) {
                REQUIRE(bytes == header + 4 * n);
                REQUIRE(l.out == a);
                continue;
            }
            REQUIRE(bytes == header + header + 4 * n);
            for (std::size_t i = 0; i < n; ++i) {
                REQUIRE(std::fabs(l.out[i] - a[i]) <= 0x1p-23f * (std::fabs(a[i]) + std::fabs(m[i])));
                inexact += l.out[i] != a[i] ? 1 : 0;
            }
        }
    }
    INFO(inexact << " of " << 4 * 3 * n << " values off by rounding");
    REQUIRE(inexact < 4 * 3 * n / 10);
}

TEST_CASE("activation_cache: least recently used is evicted, peek is not a use", "[compress][delta]") {
    activation_cache<> cache(3 * 4 * sizeof(float));
    REQUIRE_THROWS_AS(cache.insert(1), dtfm::error);
    cache.shape(4);
    REQUIRE(cache.capacity() == 3);
    cache.insert(1)[0] = 1.0f;
    cache.insert(2)[0] = 2.0f;
    cache.insert(3)[0] = 3.0f;
    REQUIRE(cache.use(1)[0] == 1.0f);  // order, most recent first: 1 3 2
    REQUIRE(cache.peek(2)[0] == 2.0f);  // not a use
    cache.insert(4);                    // evicts 2
    REQUIRE(!cache.contains(2));
    REQUIRE(cache.contains(1));
    REQUIRE(cache.contains(3));
    REQUIRE(cache.evictions() == 1);
    cache.insert(5);  // evicts 3
    REQUIRE(!cache.contains(3));
    REQUIRE(cache.use(1)[0] == 1.0f);
    REQUIRE(cache.use(99).empty());
    REQUIRE(cache.peek(99).empty());
    cache.clear();
    REQUIRE(cache.size() == 0);
    REQUIRE(!cache.contains(1));

    activation_cache<> too_small(15);
    REQUIRE_THROWS_AS(too_small.shape(4), dtfm::config_error);
}

TEST_CASE("activation_cache: index and recency agree with a reference model over many operations",
          "[compress][delta]") {
    // Few slots, ids from a small range: probes collide, and backward-shift deletion runs often.
    for (const std::size_t slots : {1u, 2u, 5u, 16u, 61u}) {
        activation_cache<> cache(slots * sizeof(float));
        cache.shape(1);
        std::list<std::uint64_t> recency;  // front = most recent
        std::mt19937_64 rng(slots);
        std::uniform_int_distribution<std::uint64_t> pick(0, 3 * slots + 2);
        for (int op = 0; op < 20000; ++op) {
            const std::uint64_t id = pick(rng) * 0x9E3779B97F4A7C15ull;  // spread, but collisions stay
            const auto it = std::find(recency.begin(), recency.end(), id);
            const bool held = it != recency.end();
            REQUIRE(cache.contains(id) == held);
            if (held) {
                REQUIRE(cache.use(id)[0] == static_cast<float>(id % 1000));
                recency.erase(it);
            } else {
                if (recency.size() == slots) recency.pop_back();
                cache.insert(id)[0] = static_cast<float>(id % 1000);
            }
            recency.push_front(id);
            REQUIRE(cache.size() == recency.size());
        }
        for (const std::uint64_t id : recency) REQUIRE(cache.peek(id)[0] == static_cast<float>(id % 1000));
    }
}

TEMPLATE_TEST_CASE("delta: sender and receiver stay in step over a long random sequence with evictions",
                   "[compress][delta]", identity, cast<fp16>, cast<bf16>) {
    constexpr std::size_t n = 64;
    constexpr std::size_t slots = 7;
    constexpr std::uint64_t samples = 20;
    using D = delta<TestType>;
    boundary<D> l{D(slots * n * sizeof(float)), D(slots * n * sizeof(float)), {}, {}};
    std::mt19937 rng(99);
    // Skewed choice, so some samples stay hot and others are evicted and come back.
    std::discrete_distribution<std::uint64_t> pick({8, 8, 4, 4, 4, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
    std::vector<int> visits(samples, 0);
    std::size_t full = 0;
    for (int step = 0; step < 3000; ++step) {
        const std::uint64_t id = pick(rng) * 1000003 + 17;
        const bool was_held = l.sender.reference(id).size() == n;
        const auto a = activation(n, id, visits[(id - 17) / 1000003]++);
        l.send(id, a);
        REQUIRE(l.payload[6] == (was_held ? std::byte{1} : std::byte{0}));
        full += was_held ? 0 : 1;
        REQUIRE(bitwise_equal(l.out, l.sender.reference(id)));
        if (!was_held) REQUIRE(l.out == a);
        if (step % 100 == 0) {
            for (std::uint64_t s = 0; s < samples; ++s) {
                const std::uint64_t sid = s * 1000003 + 17;
                REQUIRE(bitwise_equal(l.sender.reference(sid), l.receiver.reference(sid)));
            }
        }
    }
    REQUIRE(l.sender.cache().size() == slots);
    REQUIRE(l.sender.cache().evictions() == l.receiver.cache().evictions());
    REQUIRE(l.sender.cache().evictions() > 100);
    REQUIRE(full == l.sender.cache().evictions() + slots);
}

TEST_CASE("delta: the mmap store gives the memory store's outputs, from a file in the given directory",
          "[compress][delta]") {
    temp_dir dir;
    constexpr std::size_t n = 128;
    const std::size_t budget = 5 * n * sizeof(float);
    using memory = delta<cast<fp16>>;
    using mapped = delta<cast<fp16>, mmap_store>;
    std::filesystem::path file;
    {
        boundary<memory> in_memory{memory(budget), memory(budget), {}, {}};
        boundary<mapped> in_file{mapped(budget, mmap_store(dir.path)), mapped(budget, mmap_store(dir.path)), {}, {}};
        file = in_file.sender.store().path();
        REQUIRE(file.parent_path() == dir.path);
        REQUIRE(std::filesystem::exists(file));
        REQUIRE(dir.files() == 2);
        std::mt19937 rng(5);
        std::uniform_int_distribution<std::uint64_t> pick(0, 11);
        for (int step = 0; step < 500; ++step) {
            const std::uint64_t id = pick(rng);
            const auto a = activation(n, id, step);
            REQUIRE(in_memory.send(id, a) == in_file.send(id, a));
            REQUIRE(in_memory.payload == in_file.payload);
            REQUIRE(bitwise_equal(in_memory.out, in_file.out));
            REQUIRE(bitwise_equal(in_file.out, in_file.sender.reference(id)));
        }
        REQUIRE(std::filesystem::file_size(file) == budget);
        REQUIRE(in_file.sender.cache().evictions() == in_memory.sender.cache().evictions());
    }
    REQUIRE(!std::filesystem::exists(file));  // removed with the store
    REQUIRE(dir.files() == 0);

    {
        mmap_store kept(dir.path, mmap_store::on_close::keep_file);
        kept.allocate(2, 3);
        kept.slot(1)[2] = 1.5f;
        file = kept.path();
        mmap_store moved(std::move(kept));
        REQUIRE(moved.path() == file);
        REQUIRE(moved.slot(1)[2] == 1.5f);
    }
    REQUIRE(std::filesystem::file_size(file) == 6 * sizeof(float));

    try {
        mmap_store missing(dir.path / "no" / "such" / "directory");
        FAIL("created a file in a directory that does not exist");
    } catch (const dtfm::error& e) {
        REQUIRE_THAT(e.what(), Catch::Contains("No such file or directory"));
    }
}

TEST_CASE("delta: hostile and out-of-step payloads are refused and change nothing", "[compress][delta]") {
    constexpr std::size_t n = 50;
    using D = delta<cast<fp16>>;
    boundary<D> l{D(1 << 16), D(1 << 16), {}, {}};
    l.send(1, activation(n, 1, 0));
    l.send(2, activation(n, 2, 0));
    // A valid delta payload for sample 1, not yet decoded by the receiver.
    std::vector<std::byte> good(l.sender.max_payload_bytes(n));
    l.sender.set_sample(1);
    good.resize(l.sender.encode(activation(n, 1, 1), good));
    REQUIRE(good[6] == std::byte{1});
    std::vector<std::byte> full(l.sender.max_payload_bytes(n));
    l.sender.set_sample(3);
    full.resize(l.sender.encode(activation(n, 3, 0), full));
    REQUIRE(full[6] == std::byte{0});
    const std::vector<float> m1(l.receiver.reference(1).begin(), l.receiver.reference(1).end());

    auto why = [&](const std::vector<std::byte>& p, std::uint64_t id) {
        std::vector<float> out(n);
        l.receiver.set_sample(id);
        try {
            l.receiver.decode(p, out);
        } catch (const dtfm::wire_error& e) {
            return e.why();
        }
        FAIL("accepted a malformed payload");
        return reason::bad_value;
    };
    REQUIRE(why(good, 2) == reason::bad_value);  // the payload names sample 1
    auto p = good;
    p[8] = std::byte{9};  // sample 9: held by neither side
    REQUIRE(why(p, 9) == reason::bad_value);
    p = good;
    p[15] = std::byte{1};  // the high half of the id
    REQUIRE(why(p, 1) == reason::bad_value);
    p = full;
    p[8] = std::byte{2};  // a full payload for sample 2, which the receiver holds
    REQUIRE(why(p, 2) == reason::bad_value);
    p = good;
    p[6] = std::byte{2};  // an unknown body form
    REQUIRE(why(p, 1) == reason::bad_value);
    REQUIRE(why(std::vector<std::byte>(good.begin(), good.begin() + 20), 1) == reason::truncated);
    REQUIRE(why(std::vector<std::byte>(good.begin(), good.end() - 1), 1) == reason::bad_length);
    REQUIRE(why(std::vector<std::byte>(full.begin(), full.end() - 4), 3) == reason::bad_length);
    p = full;
    p[24] = std::byte{0};  // body length lying, and the payload cut to match: full needs 4n
    p[25] = std::byte{0};
    p.resize(header);
    REQUIRE(why(p, 3) == reason::bad_length);
    p = good;
    p[5] = static_cast<std::byte>(kind::cast);  // a cast payload is not a delta payload
    REQUIRE(why(p, 1) == reason::bad_kind);
    p = good;
    p[0] = std::byte{0};
    REQUIRE(why(p, 1) == reason::bad_magic);
    p = good;
    p[header + 5] = static_cast<std::byte>(kind::identity);  // C's own header, inside
    REQUIRE(why(p, 1) == reason::bad_kind);
    p = good;
    p[header + 6] = std::byte{2};  // bf16 inside, for a cast<fp16> delta
    REQUIRE(why(p, 1) == reason::bad_value);
    {
        std::vector<float> wrong(n + 1);
        l.receiver.set_sample(1);
        REQUIRE_THROWS_AS(l.receiver.decode(good, wrong), dtfm::error);
    }

    // Nothing changed: the receiver holds what it held, and the genuine payloads still decode.
    REQUIRE(l.receiver.cache().size() == 2);
    REQUIRE(!l.receiver.cache().contains(3));
    REQUIRE(bitwise_equal(l.receiver.reference(1), m1));
    std::vector<float> out(n);
    l.receiver.set_sample(1);
    l.receiver.decode(good, out);
    REQUIRE(bitwise_equal(out, l.sender.reference(1)));
    l.receiver.set_sample(3);
    l.receiver.decode(full, out);
    REQUIRE(out == activation(n, 3, 0));
}

TEST_CASE("delta: set_sample before every call, a fixed activation size, a budget for one activation",
          "[compress][delta]") {
    constexpr std::size_t n = 16;
    delta<identity> d(4 * n);
    const auto a = activation(n, 1, 0);
    std::vector<std::byte> payload(d.max_payload_bytes(n));
    REQUIRE_THROWS_AS(d.encode(a, payload), dtfm::error);  // no sample named
    d.set_sample(1);
    REQUIRE(d.encode(a, payload) == header + 4 * n);
    REQUIRE_THROWS_AS(d.encode(a, payload), dtfm::error);  // the id was consumed
    d.set_sample(1);
    const auto longer = activation(n + 1, 1, 0);
    std::vector<std::byte> big(d.max_payload_bytes(n + 1));
    REQUIRE_THROWS_AS(d.encode(longer, big), dtfm::error);
    d.set_sample(2);
    REQUIRE(d.encode(a, payload) == header + 4 * n);  // one slot: 1 is evicted
    REQUIRE(d.reference(1).empty());
    REQUIRE(d.cache().evictions() == 1);
    d.set_sample(2);
    std::vector<std::byte> small(d.max_payload_bytes(n) - 1);
    REQUIRE_THROWS_AS(d.encode(a, small), dtfm::error);
    d.clear();
    REQUIRE(d.cache().size() == 0);

    delta<identity> tiny(4 * n - 1);
    tiny.set_sample(1);
    REQUIRE_THROWS_AS(tiny.encode(a, payload), dtfm::config_error);
    delta<identity> empty(1024);
    empty.set_sample(1);
    REQUIRE_THROWS_AS(empty.encode(std::span<const float>{}, payload), dtfm::error);
}
