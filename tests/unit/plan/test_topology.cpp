// plan::topology: the five DT-FM scenario files load with the values they state, subset / uniform /
// check_stages, and every malformed input is a config_error naming the source and the field.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dtfm/plan/topology.hpp"

#ifndef DTFM_SCENARIO_DIR
#define DTFM_SCENARIO_DIR ""
#endif
#ifndef DTFM_PLAN_TEST_DATA_DIR
#define DTFM_PLAN_TEST_DATA_DIR ""
#endif

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using dtfm::plan::check_stages;
using dtfm::plan::load_topology;
using dtfm::plan::parse_topology;
using dtfm::plan::topology;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// The five scenarios ship with dtfm in data/scenarios; a build that lost them fails here.
bool have_scenarios() {
    REQUIRE_FALSE(std::string_view(DTFM_SCENARIO_DIR).empty());
    return true;
}

topology scenario(const std::string& stem) {
    return load_topology(std::filesystem::path(DTFM_SCENARIO_DIR) / (stem + ".json"));
}

// The message of the config_error that parsing text throws; any other outcome fails the test.
std::string error_of(std::string_view text) {
    try {
        (void)parse_topology(text, "scenario.json");
    } catch (const dtfm::config_error& e) {
        return e.what();
    }
    FAIL("parse_topology accepted: " << text);
    return {};
}

template <class F>
std::string config_error_of(F&& f) {
    try {
        f();
    } catch (const dtfm::config_error& e) {
        return e.what();
    }
    FAIL("no config_error thrown");
    return {};
}

// A valid 2-device document with one field's text swapped for another.
std::string two_devices(std::string_view delay = "[[0, 1], [1, 0]]", std::string_view bandwidth = "[[0, 5], [5, 0]]",
                        std::string_view extra = "") {
    return std::string(R"({"name": "pair", )") + std::string(extra) + R"("delay_ms": )" + std::string(delay) +
           R"(, "bandwidth_gbps": )" + std::string(bandwidth) + "}";
}

std::vector<dtfm::plan::device> two_named_devices() {
    return {{"a", "r0", "", 0, 0}, {"b", "r0", "", 0, 0}};
}

// A uniform n-device scenario in the files' format, with sites of 16 devices: 1 ms / 10 Gbps inside
// a site, 20 ms / 1 Gbps across.
std::string generated_scenario(int n) {
    std::ostringstream out;
    out << R"({"name": "generated", "units": {"delay": "ms", "bandwidth": "Gbps"}, "devices": [)";
    for (int i = 0; i < n; ++i) {
        out << (i ? "," : "") << R"({"name": "gpu)" << i << R"(", "region": "site)" << i / 16
            << R"(", "gpu": "V100-32GB", "peak_tflops": 125.0, "memory_gib": 32})";
    }
    for (const char* field : {"delay_ms", "bandwidth_gbps"}) {
        const bool delay = std::string_view(field) == "delay_ms";
        out << R"(], ")" << field << R"(": [)";
        for (int i = 0; i < n; ++i) {
            out << (i ? ",[" : "[");
            for (int j = 0; j < n; ++j) {
                const bool same_site = i / 16 == j / 16;
                out << (j ? "," : "") << (delay ? (same_site ? 1 : 20) : (same_site ? 10.0 : 1.25));
            }
            out << "]";
        }
    }
    out << "]}";
    return out.str();
}

}  // namespace

// ---- the five scenarios ---------------------------------------------------------------------

TEST_CASE("topology: every scenario file loads as 64 devices with a clean diagonal", "[topology][scenario]") {
    if (!have_scenarios()) return;
    for (const char* stem : {"dtfm-case1-datacenter-ondemand", "dtfm-case2-datacenter-spot",
                             "dtfm-case3-multi-datacenter", "dtfm-case4-regional", "dtfm-case5-worldwide"}) {
        INFO(stem);
        const topology t = scenario(stem);
        REQUIRE(t.size() == 64);
        REQUIRE(t.devices().size() == 64);
        CHECK(t.name() == stem);
        CHECK_FALSE(t.description().empty());
        REQUIRE(t.delay_matrix().size() == 64u * 64u);
        REQUIRE(t.bandwidth_matrix().size() == 64u * 64u);
        for (int i = 0; i < 64; ++i) {
            CHECK(t.devices()[static_cast<std::size_t>(i)].name == "gpu" + std::to_string(i));
            CHECK(t.devices()[static_cast<std::size_t>(i)].gpu == "V100-32GB");
            CHECK(t.devices()[static_cast<std::size_t>(i)].peak_tflops == 125.0);
            CHECK(t.devices()[static_cast<std::size_t>(i)].memory_gib == 32.0);
            CHECK(t.delay_ms(i, i) == 0.0);
            CHECK(t.bandwidth_gbps(i, i) == inf);
            for (int j = 0; j < 64; ++j) {
                // The files are symmetric; the loader does not require it, but a change would be news.
                CHECK(t.delay_ms(i, j) == t.delay_ms(j, i));
                CHECK(t.bandwidth_gbps(i, j) == t.bandwidth_gbps(j, i));
            }
        }
    }
}

TEST_CASE("topology: case 1, eight on-demand instances of 8 V100s", "[topology][scenario]") {
    if (!have_scenarios()) return;
    const topology t = scenario("dtfm-case1-datacenter-ondemand");
    const auto regions = t.regions();
    REQUIRE(regions.size() == 8);
    for (std::size_t r = 0; r < 8; ++r) CHECK(regions[r] == "instance" + std::to_string(r));
    CHECK(t.devices()[7].region == "instance0");
    CHECK(t.devices()[8].region == "instance1");
    CHECK(t.bandwidth_gbps(0, 7) == 100.0);
    CHECK(t.bandwidth_gbps(0, 8) == 3.125);
    CHECK(t.bandwidth_gbps(63, 0) == 3.125);
    CHECK(t.delay_ms(0, 7) == 0.0);
    CHECK(t.delay_ms(0, 63) == 0.0);  // the file states no latency, even across instances
    CHECK(t.bytes_per_second(0, 8) == Approx(3.125e9 / 8));
}

TEST_CASE("topology: case 2, eight 4-V100 spot instances and 32 single-V100 ones", "[topology][scenario]") {
    if (!have_scenarios()) return;
    const topology t = scenario("dtfm-case2-datacenter-spot");
    const auto regions = t.regions();
    REQUIRE(regions.size() == 40);
    CHECK(regions.front() == "spot0");
    CHECK(regions[7] == "spot7");
    CHECK(regions[8] == "single32");
    CHECK(regions.back() == "single63");
    CHECK(t.bandwidth_gbps(0, 3) == 100.0);
    CHECK(t.bandwidth_gbps(0, 4) == 1.25);
    CHECK(t.bandwidth_gbps(32, 33) == 1.25);
    CHECK(t.bandwidth_gbps(31, 32) == 1.25);
    CHECK(t.delay_ms(0, 63) == 0.0);
}

TEST_CASE("topology: case 3, Ohio and Virginia", "[topology][scenario]") {
    if (!have_scenarios()) return;
    const topology t = scenario("dtfm-case3-multi-datacenter");
    CHECK(t.regions() == std::vector<std::string>{"Ohio", "Virginia"});
    CHECK(t.devices()[31].region == "Ohio");
    CHECK(t.devices()[32].region == "Virginia");
    CHECK(t.delay_ms(0, 31) == 1.0);
    CHECK(t.delay_ms(32, 63) == 1.0);
    CHECK(t.delay_ms(0, 32) == 11.0);
    CHECK(t.delay_ms(63, 0) == 11.0);
    CHECK(t.bandwidth_gbps(0, 31) == 5.0);
    CHECK(t.bandwidth_gbps(0, 32) == 1.12);
    CHECK(t.bytes_per_second(0, 32) == Approx(1.12e9 / 8));
}

TEST_CASE("topology: case 4, four US regions", "[topology][scenario]") {
    if (!have_scenarios()) return;
    const topology t = scenario("dtfm-case4-regional");
    CHECK(t.regions() == std::vector<std::string>{"Virginia", "Oregon", "California", "Ohio"});
    // Regions are blocks of 16: Virginia 0–15, Oregon 16–31, California 32–47, Ohio 48–63.
    CHECK(t.delay_ms(0, 15) == 5.0);
    CHECK(t.bandwidth_gbps(0, 15) == 2.0);
    CHECK(t.delay_ms(0, 16) == 67.0);
    CHECK(t.bandwidth_gbps(0, 16) == 1.15);
    CHECK(t.delay_ms(0, 48) == 11.0);
    CHECK(t.bandwidth_gbps(0, 48) == 1.12);
    CHECK(t.delay_ms(32, 48) == 52.0);
    CHECK(t.bandwidth_gbps(32, 48) == 1.02);
    CHECK(t.delay_ms(16, 32) == 12.0);
    CHECK(t.bandwidth_gbps(16, 32) == 1.25);
}

TEST_CASE("topology: case 5, eight cities on three continents", "[topology][scenario]") {
    if (!have_scenarios()) return;
    const topology t = scenario("dtfm-case5-worldwide");
    CHECK(t.regions() ==
          std::vector<std::string>{"Oregon", "Virginia", "Ohio", "Tokyo", "Seoul", "London", "Frankfurt", "Ireland"});
    // Cities are blocks of 8: Oregon 0–7, Virginia 8–15, …, Tokyo 24–31, Seoul 32–39, London 40–47.
    CHECK(t.delay_ms(0, 7) == 5.0);
    CHECK(t.bandwidth_gbps(0, 7) == 2.0);
    CHECK(t.delay_ms(0, 8) == 67.0);
    CHECK(t.bandwidth_gbps(0, 8) == 0.79);
    CHECK(t.delay_ms(24, 32) == 34.0);
    CHECK(t.bandwidth_gbps(24, 32) == 1.1);
    CHECK(t.delay_ms(32, 40) == 238.0);
    CHECK(t.bandwidth_gbps(32, 40) == 0.342);
    CHECK(t.delay_ms(32, 56) == 228.0);
    CHECK(t.bandwidth_gbps(32, 56) == 0.335);
}

TEST_CASE("topology: subset keeps the links among the chosen devices, in the order given", "[topology][scenario]") {
    if (!have_scenarios()) return;
    const topology t = scenario("dtfm-case3-multi-datacenter");
    const std::vector<int> ids{40, 0, 1};
    const topology s = t.subset(ids);
    REQUIRE(s.size() == 3);
    CHECK(s.name() == t.name());
    CHECK(s.devices()[0].name == "gpu40");
    CHECK(s.devices()[1].name == "gpu0");
    CHECK(s.devices()[2].name == "gpu1");
    CHECK(s.regions() == std::vector<std::string>{"Virginia", "Ohio"});
    CHECK(s.delay_ms(0, 1) == 11.0);
    CHECK(s.bandwidth_gbps(0, 1) == 1.12);
    CHECK(s.delay_ms(1, 2) == 1.0);
    CHECK(s.bandwidth_gbps(2, 1) == 5.0);
    CHECK(s.delay_ms(2, 2) == 0.0);
    CHECK(s.bandwidth_gbps(0, 0) == inf);
}

// ---- a file of our own, asymmetric, with junk on the diagonal ------------------------------

TEST_CASE("topology: load_topology reads rows as senders and ignores the diagonal", "[topology]") {
    const std::filesystem::path file = std::filesystem::path(DTFM_PLAN_TEST_DATA_DIR) / "two_sites.json";
    const topology t = load_topology(file);
    REQUIRE(t.size() == 4);
    CHECK(t.name() == "two-sites");
    CHECK(t.regions() == std::vector<std::string>{"a", "b"});
    CHECK(t.devices()[2].name == "b0");
    CHECK(t.devices()[2].gpu == "A100-80GB");
    CHECK(t.devices()[2].peak_tflops == 312.0);
    CHECK(t.devices()[2].memory_gib == 80.0);
    CHECK(t.bandwidth_gbps(0, 2) == 2.0);  // a → b
    CHECK(t.bandwidth_gbps(2, 0) == 0.5);  // b → a
    CHECK(t.delay_ms(0, 2) == 20.0);
    CHECK(t.delay_ms(2, 0) == 25.0);
    CHECK(t.bytes_per_second(0, 1) == 10e9 / 8);
    for (int i = 0; i < 4; ++i) {
        CHECK(t.delay_ms(i, i) == 0.0);
        CHECK(t.bandwidth_gbps(i, i) == inf);
        CHECK(std::isinf(t.bytes_per_second(i, i)));
    }
    CHECK_THROWS_AS(t.delay_ms(0, 4), std::out_of_range);
    CHECK_THROWS_AS(t.bandwidth_gbps(-1, 0), std::out_of_range);
}

TEST_CASE("topology: a missing file or a directory is a config_error naming the path", "[topology]") {
    const auto missing = std::filesystem::path(DTFM_PLAN_TEST_DATA_DIR) / "no_such_scenario.json";
    CHECK_THAT(config_error_of([&] { (void)load_topology(missing); }),
               StartsWith(missing.string()) && Contains("cannot open"));
    const auto dir = std::filesystem::path(DTFM_PLAN_TEST_DATA_DIR);
    CHECK_THAT(config_error_of([&] { (void)load_topology(dir); }), StartsWith(dir.string()) && Contains("directory"));
}

// ---- uniform, subset errors, check_stages ----------------------------------------------------

TEST_CASE("topology: uniform gives every pair the same link", "[topology]") {
    const topology t = topology::uniform(16, 2.5, 8.0);
    REQUIRE(t.size() == 16);
    CHECK(t.name() == "uniform");
    CHECK(t.regions() == std::vector<std::string>{"r0"});
    CHECK(t.devices()[15].name == "gpu15");
    CHECK(t.devices()[15].gpu.empty());
    CHECK(t.devices()[15].peak_tflops == 0.0);
    CHECK(t.delay_ms(3, 9) == 2.5);
    CHECK(t.bandwidth_gbps(9, 3) == 8.0);
    CHECK(t.bytes_per_second(9, 3) == 1e9);
    CHECK(t.delay_ms(4, 4) == 0.0);
    CHECK(t.bandwidth_gbps(4, 4) == inf);

    CHECK(topology::uniform(1, 0, 1).size() == 1);
    CHECK_THAT(config_error_of([] { (void)topology::uniform(0, 1, 1); }), Contains("devices = 0"));
    CHECK_THAT(config_error_of([] { (void)topology::uniform(4097, 1, 1); }), Contains("devices = 4097"));
    CHECK_THAT(config_error_of([] { (void)topology::uniform(4, -1, 1); }), Contains("delay_ms[0][1] = -1"));
    CHECK_THAT(config_error_of([] { (void)topology::uniform(4, 1, 0); }), Contains("bandwidth_gbps[0][1] = 0"));
}

TEST_CASE("topology: subset rejects an empty list, unknown ids and repeated ids", "[topology]") {
    const topology t = topology::uniform(8, 1, 1);
    CHECK_THAT(config_error_of([&] { (void)t.subset(std::span<const int>{}); }), Contains("empty"));
    const std::vector<int> out_of_range{0, 8};
    CHECK_THAT(config_error_of([&] { (void)t.subset(out_of_range); }), Contains("device_ids[1] = 8"));
    const std::vector<int> negative{-1};
    CHECK_THAT(config_error_of([&] { (void)t.subset(negative); }), Contains("device_ids[0] = -1"));
    const std::vector<int> repeated{3, 5, 3};
    CHECK_THAT(config_error_of([&] { (void)t.subset(repeated); }),
               Contains("device_ids[2] = 3") && Contains("device_ids[0]"));
}

TEST_CASE("topology: check_stages wants a positive divisor of the device count", "[topology]") {
    const topology t = topology::uniform(64, 1, 1);
    for (int stages : {1, 2, 4, 8, 16, 32, 64}) CHECK_NOTHROW(check_stages(t, stages));
    for (int stages : {0, -4}) CHECK_THAT(config_error_of([&] { check_stages(t, stages); }), Contains("at least 1"));
    for (int stages : {3, 5, 65, 128}) {
        CHECK_THAT(config_error_of([&] { check_stages(t, stages); }),
                   Contains("stages = " + std::to_string(stages)) && Contains("64 devices"));
    }
}

// ---- validation: one case per rule ---------------------------------------------------------

TEST_CASE("topology: a minimal document needs only the two matrices", "[topology][validation]") {
    const topology t = parse_topology(R"({"delay_ms": [[0, 1], [2, 0]], "bandwidth_gbps": [[0, 5], [6, 0]]})");
    REQUIRE(t.size() == 2);
    CHECK(t.name().empty());
    CHECK(t.description().empty());
    CHECK(t.devices()[1].name == "gpu1");
    CHECK(t.devices()[1].region == "r0");
    CHECK(t.delay_ms(1, 0) == 2.0);
    CHECK(t.bandwidth_gbps(1, 0) == 6.0);
}

TEST_CASE("topology: text that is not JSON names the source", "[topology][validation]") {
    CHECK_THAT(error_of("this is not json"), StartsWith("scenario.json: not valid JSON"));
    CHECK_THAT(error_of(""), StartsWith("scenario.json: not valid JSON"));
    // The default source says the text came from a string.
    CHECK_THAT(config_error_of([] { (void)parse_topology("{"); }), StartsWith("<string>: not valid JSON"));
}

TEST_CASE("topology: truncated JSON names where it stopped", "[topology][validation]") {
    const std::string msg = error_of(R"({"delay_ms": [[0, 1], [1, 0]], "bandwidth_gbps": [[0, 1], [1)");
    CHECK_THAT(msg, StartsWith("scenario.json: not valid JSON near bandwidth_gbps[1]"));
    CHECK_THAT(msg, Contains("unexpected end of input"));
}

TEST_CASE("topology: a number too large for a double is refused, naming the entry", "[topology][validation]") {
    // nlohmann refuses 1e400 itself (out_of_range.406) rather than reading it as infinity.
    const std::string msg = error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 5], [1e400, 0]]"));
    CHECK_THAT(msg, StartsWith("scenario.json: not valid JSON near bandwidth_gbps[1][0]") && Contains("1e400"));
    CHECK_THAT(error_of(two_devices("[[0, -1e999], [1, 0]]")), Contains("delay_ms[0][1]") && Contains("-1e999"));
}

TEST_CASE("topology: the top level must be an object", "[topology][validation]") {
    CHECK_THAT(error_of("[[0, 1], [1, 0]]"), StartsWith("scenario.json: expected a JSON object at the top level"));
    CHECK_THAT(error_of("42"), Contains("top level"));
}

TEST_CASE("topology: delay_ms and bandwidth_gbps are required", "[topology][validation]") {
    CHECK_THAT(error_of(R"({"bandwidth_gbps": [[0, 1], [1, 0]]})"),
               StartsWith("scenario.json: missing field delay_ms"));
    CHECK_THAT(error_of(R"({"delay_ms": [[0, 1], [1, 0]]})"),
               StartsWith("scenario.json: missing field bandwidth_gbps"));
}

TEST_CASE("topology: a string where a number belongs is refused", "[topology][validation]") {
    CHECK(error_of(two_devices(R"([[0, "1"], [1, 0]])")) ==
          R"(scenario.json: delay_ms[0][1] = "1": expected a number)");
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, true], [1, 0]]")),
               Contains("bandwidth_gbps[0][1] = true: expected a number"));
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [null, 0]]")),
               Contains("bandwidth_gbps[1][0] = null"));
    // The diagonal is ignored, but it is still part of the matrix and must be a number.
    CHECK_THAT(error_of(two_devices(R"([["x", 1], [1, 0]])")), Contains("delay_ms[0][0]"));
}

TEST_CASE("topology: other wrong types are refused, naming the field", "[topology][validation]") {
    CHECK_THAT(error_of(two_devices(R"("fast")")), Contains(R"(delay_ms = "fast": expected an array of rows)"));
    CHECK_THAT(error_of(two_devices("[[0, 1], 7]")), Contains("delay_ms[1] = 7: expected an array of numbers"));
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]", R"("name": 5, )")),
               Contains("name = 5: expected a string"));
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]", R"("description": [], )")),
               Contains("description = []: expected a string"));
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]", R"("devices": {}, )")),
               Contains("devices = {}: expected an array of objects"));
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]", R"("devices": [{}, 3], )")),
               Contains("devices[1] = 3: expected an object"));
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]", R"("devices": [{}, {"name": 1}], )")),
               Contains("devices[1].name = 1: expected a string"));
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]", R"("devices": [{"region": false}, {}], )")),
               Contains("devices[0].region = false: expected a string"));
    CHECK_THAT(
        error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]", R"("devices": [{}, {"peak_tflops": "125"}], )")),
        Contains(R"(devices[1].peak_tflops = "125": expected a number)"));
    CHECK_THAT(
        error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]", R"("devices": [{}, {"memory_gib": -32}], )")),
        Contains("devices[1].memory_gib = -32: must be non-negative and finite"));
}

TEST_CASE("topology: devices, when given, are checked", "[topology][validation]") {
    const topology t = parse_topology(
        two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]", R"("devices": [{"name": "x", "region": "eu"}, {}], )"));
    CHECK(t.devices()[0].name == "x");
    CHECK(t.devices()[0].region == "eu");
    CHECK(t.devices()[1].name == "gpu1");  // a missing name falls back to the index
    CHECK(t.regions() == std::vector<std::string>{"eu", "r0"});
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]",
                                    R"("devices": [{"name": "x"}, {"name": "x"}], )")),
               Contains(R"(devices[1].name = "x": already the name of devices[0])"));
}

TEST_CASE("topology: matrices must be square and not ragged", "[topology][validation]") {
    CHECK(error_of(two_devices("[[0, 1, 2], [1, 0, 2]]")) ==
          "scenario.json: delay_ms[0] has 3 entries, expected 2 (the matrix must be square)");
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1]]")),
               Contains("bandwidth_gbps[1] has 1 entries, expected 2"));
}

TEST_CASE("topology: delay and bandwidth matrices must be the same size", "[topology][validation]") {
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1, 1], [1, 0, 1], [1, 1, 0]]")),
               Contains("bandwidth_gbps has 3 rows but delay_ms has 2"));
}

TEST_CASE("topology: the devices array must match the matrix size", "[topology][validation]") {
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]", R"("devices": [{}, {}, {}], )")),
               Contains("devices has 3 entries but the matrices are 2x2"));
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]", R"("devices": [], )")),
               Contains("devices has 0 entries"));
}

TEST_CASE("topology: off-diagonal bandwidth must be positive and finite", "[topology][validation]") {
    CHECK(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [-1, 0]]")) ==
          "scenario.json: bandwidth_gbps[1][0] = -1: bandwidth must be positive and finite");
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 0], [1, 0]]")),
               Contains("bandwidth_gbps[0][1] = 0: bandwidth must be positive"));
    // JSON cannot spell NaN or infinity, but a topology built in code can hold them.
    const auto build = [](double delay, double bandwidth) {
        (void)topology::from_matrices(two_named_devices(), {0, delay, delay, 0}, {0, bandwidth, bandwidth, 0});
    };
    CHECK_THAT(config_error_of([&] { build(1, std::nan("")); }), Contains("bandwidth_gbps[0][1] = nan"));
    CHECK_THAT(config_error_of([&] { build(1, inf); }), Contains("bandwidth_gbps[0][1] = inf"));
}

TEST_CASE("topology: off-diagonal delay must be non-negative and finite", "[topology][validation]") {
    CHECK(error_of(two_devices("[[0, 1], [-0.5, 0]]")) ==
          "scenario.json: delay_ms[1][0] = -0.5: delay must be non-negative and finite");
    CHECK_NOTHROW(parse_topology(two_devices("[[0, 0], [0, 0]]")));
    const auto build = [](double delay) {
        (void)topology::from_matrices(two_named_devices(), {0, delay, delay, 0}, {0, 1, 1, 0});
    };
    CHECK_THAT(config_error_of([&] { build(std::nan("")); }), Contains("delay_ms[0][1] = nan"));
    CHECK_THAT(config_error_of([&] { build(inf); }), Contains("delay_ms[0][1] = inf"));
}

TEST_CASE("topology: diagonal entries are ignored", "[topology][validation]") {
    const topology t = parse_topology(two_devices("[[-7, 1], [1, 1e300]]", "[[-1, 5], [5, 0]]"));
    CHECK(t.delay_ms(0, 0) == 0.0);
    CHECK(t.delay_ms(1, 1) == 0.0);
    CHECK(t.bandwidth_gbps(0, 0) == inf);
    CHECK(t.bandwidth_gbps(1, 1) == inf);
}

TEST_CASE("topology: the device count must be 1 to 4096", "[topology][validation]") {
    CHECK(error_of(two_devices("[]", "[]")) == "scenario.json: delay_ms has 0 rows: a topology has 1 to 4096 devices");
    // 4097 empty rows: refused on the row count, before any row is read or n² allocated.
    std::string rows = "[";
    for (int i = 0; i < 4097; ++i) rows += i ? ",[]" : "[]";
    rows += "]";
    CHECK_THAT(error_of(two_devices(rows)), Contains("delay_ms has 4097 rows"));
    const topology one = parse_topology(R"({"delay_ms": [[3]], "bandwidth_gbps": [[0]]})");
    CHECK(one.size() == 1);
    CHECK(one.bandwidth_gbps(0, 0) == inf);
}

TEST_CASE("topology: units other than ms and Gbps are refused", "[topology][validation]") {
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]", R"("units": {"bandwidth": "Mbps"}, )")),
               Contains(R"(units.bandwidth = "Mbps": expected "Gbps")"));
    CHECK_THAT(error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]", R"("units": {"delay": "s"}, )")),
               Contains(R"(units.delay = "s": expected "ms")"));
}

TEST_CASE("topology: hostile nesting and huge values give short messages, not a crash", "[topology][validation]") {
    // Deep nesting once overflowed the stack through json::dump() while building a message.
    const std::string open(100000, '['), close(100000, ']');
    CHECK_THAT(error_of(open + close), Contains("top level, got [...]"));
    CHECK_THAT(error_of(two_devices(open + close)), Contains("delay_ms[0][0] = [...]: expected a number"));
    const std::string unclosed = error_of(open);
    CHECK_THAT(unclosed, StartsWith("scenario.json: not valid JSON near [0][0]"));
    CHECK(unclosed.size() < 600);
    const std::string long_name = error_of(two_devices("[[0, 1], [1, 0]]", "[[0, 1], [1, 0]]",
                                                       R"("name": [], )" + std::string(10000, ' ')));
    CHECK_THAT(long_name, Contains("name = []"));
    const std::string long_value = error_of(two_devices("[[0, \"" + std::string(10000, 'x') + "\"], [1, 0]]"));
    CHECK_THAT(long_value, Contains("delay_ms[0][1] = \"xxx") && Contains("...: expected a number"));
    CHECK(long_value.size() < 200);
}

TEST_CASE("topology: every prefix and byte flip of a file parses or throws config_error", "[topology][validation]") {
    // Nothing but a topology or a config_error may come out: no nlohmann exception, no crash.
    std::ifstream in(std::filesystem::path(DTFM_PLAN_TEST_DATA_DIR) / "two_sites.json", std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(text.size() > 100);
    int parsed = 0;
    int refused = 0;
    const auto attempt = [&](std::string_view s) {
        try {
            (void)parse_topology(s, "fuzz.json");
            ++parsed;
        } catch (const dtfm::config_error& e) {
            ++refused;
            REQUIRE_THAT(e.what(), StartsWith("fuzz.json: "));
        }
    };
    for (std::size_t len = 0; len <= text.size(); ++len) attempt(std::string_view(text).substr(0, len));
    for (std::size_t pos = 0; pos < text.size(); ++pos) {
        for (char c : {'"', '[', ']', '{', '-', '9', 'e', ',', ' '}) {
            std::string mutated = text;
            mutated[pos] = c;
            attempt(mutated);
        }
    }
    CHECK(parsed > 0);
    CHECK(refused > 0);
}

TEST_CASE("topology: a generated 256-device scenario parses", "[topology]") {
    const std::string text = generated_scenario(256);
    const auto start = std::chrono::steady_clock::now();
    const topology t = parse_topology(text, "generated.json");
    const auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
    // Timing belongs in benchmarks; this only reports it.
    INFO("parsed " << text.size() << " bytes in " << elapsed.count() << " ms");
    REQUIRE(t.size() == 256);
    CHECK(t.regions().size() == 16);
    CHECK(t.regions().back() == "site15");
    CHECK(t.delay_ms(0, 15) == 1.0);
    CHECK(t.delay_ms(0, 16) == 20.0);
    CHECK(t.bandwidth_gbps(255, 240) == 10.0);
    CHECK(t.bandwidth_gbps(255, 0) == 1.25);
    CHECK(t.bandwidth_gbps(255, 255) == inf);
    const std::vector<int> stage_heads{0, 64, 128, 192};
    CHECK(t.subset(stage_heads).delay_ms(0, 3) == 20.0);
    CHECK_NOTHROW(check_stages(t, 8));
}
