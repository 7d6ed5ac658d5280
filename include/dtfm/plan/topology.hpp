// plan::topology: the devices of a training run and the measured delay and bandwidth between every
// ordered pair, read from the scenario JSON format of DT-FM's evaluation (delay_ms, bandwidth_gbps).
#pragma once

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dtfm/error.hpp"

namespace dtfm::plan {

// Scenarios hold 16–256 devices; the cap keeps a hostile file from asking for n² doubles of memory
// (4096² × 2 matrices × 8 bytes is 256 MiB, the most we agree to allocate).
inline constexpr int max_topology_devices = 4096;

}  // namespace dtfm::plan

namespace dtfm::detail {

// Joins the pieces of a message by appending: chains of "literal" + std::string trip a false
// -Wrestrict in GCC 12 at -O2 and above, and users build with -Werror.
template <class... Parts>
std::string cat(const Parts&... parts) {
    std::string s;
    (s.append(std::string_view(parts)), ...);
    return s;
}

template <class... Parts>
[[noreturn]] void fail(std::string_view source, const Parts&... parts) {
    throw config_error(cat(source, ": ", parts...));
}

}  // namespace dtfm::detail

namespace dtfm::plan {

struct device {
    std::string name;
    std::string region;  // devices of one region share fast links; the planner groups by it
    std::string gpu;
    double peak_tflops = 0;
    double memory_gib = 0;
};

class topology;
topology parse_topology(std::string_view json_text, std::string_view source = "<string>");

class topology {
public:
    // n devices gpu0…gpu<n-1> in region "r0", with the same delay (ms) and bandwidth (Gbps)
    // between every ordered pair.
    static topology uniform(int devices, double delay_ms, double bandwidth_gbps);

    // Builds a topology in code, with the checks the file loader makes. The matrices are n×n,
    // row-major (row = sender, column = receiver); diagonal entries are ignored.
    static topology from_matrices(std::vector<device> devices, std::vector<double> delay_ms,
                                  std::vector<double> bandwidth_gbps, std::string name = {},
                                  std::string description = {});

    int size() const noexcept { return n_; }
    const std::string& name() const noexcept { return name_; }
    const std::string& description() const noexcept { return description_; }
    const std::vector<device>& devices() const noexcept { return devices_; }

    // Indices out of range throw std::out_of_range, as std::vector::at does: a caller's bug, not
    // a bad file.
    double delay_ms(int from, int to) const { return delay_[at(from, to)]; }            // 0 on the diagonal
    double bandwidth_gbps(int from, int to) const { return bandwidth_[at(from, to)]; }  // +inf on the diagonal
    double bytes_per_second(int from, int to) const { return bandwidth_gbps(from, to) * 1e9 / 8; }

    // The whole matrices, row-major n×n, for cost models that sweep every pair.
    std::span<const double> delay_matrix() const noexcept { return delay_; }
    std::span<const double> bandwidth_matrix() const noexcept { return bandwidth_; }

    // Distinct regions, in the order their first device appears.
    std::vector<std::string> regions() const;

    // The devices device_ids (in that order) and the links among them; name and description are
    // kept. Throws config_error on an empty list, an id out of range or an id given twice.
    topology subset(std::span<const int> device_ids) const;

private:
    friend topology parse_topology(std::string_view, std::string_view);

    topology() = default;

    // Checks sizes and every value, then stores the matrices with a normalised diagonal.
    static topology make(std::string_view source, std::vector<device> devices, std::vector<double> delay,
                         std::vector<double> bandwidth, std::string name, std::string description);

    std::size_t at(int from, int to) const {
        if (from < 0 || from >= n_ || to < 0 || to >= n_) {
            throw std::out_of_range(dtfm::detail::cat("dtfm::plan::topology: device pair (", std::to_string(from), ", ",
                                                std::to_string(to), ") out of range for ", std::to_string(n_),
                                                " devices"));
        }
        return static_cast<std::size_t>(from) * static_cast<std::size_t>(n_) + static_cast<std::size_t>(to);
    }

    int n_ = 0;
    std::string name_;
    std::string description_;
    std::vector<device> devices_;
    std::vector<double> delay_;      // ms, row-major n×n
    std::vector<double> bandwidth_;  // Gbps, row-major n×n
};

// Reads a scenario file. Every failure, a missing file included, is a config_error naming the path.
topology load_topology(const std::filesystem::path& file);

// Pipeline stages split the devices into equal groups: config_error unless stages >= 1 and
// t.size() % stages == 0.
void check_stages(const topology& t, int stages);

}  // namespace dtfm::plan

namespace dtfm::detail {

using plan::device;
using plan::max_topology_devices;
using plan::topology;


// Shortest text that reads back as v, so a message shows the value as the file wrote it.
inline std::string format_number(double v) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

// Text for a message, cut to `limit` bytes so one hostile value cannot make a huge message.
inline std::string clip(std::string_view s, std::size_t limit = 200) {
    return s.size() <= limit ? std::string(s) : cat(s.substr(0, limit), "...");
}

// A JSON value as it would appear in the file, kept short. Containers are shown only as brackets:
// dump() recurses, and a hostile file can nest arrays a million deep.
inline std::string show(const nlohmann::json& v) {
    if (v.is_array()) return v.empty() ? "[]" : "[...]";
    if (v.is_object()) return v.empty() ? "{}" : "{...}";
    // Replacing bad UTF-8 keeps dump() from throwing; the parser has refused such text already.
    return clip(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 40);
}

inline std::string index_path(std::string_view field, std::size_t i) {
    return cat(field, "[", std::to_string(i), "]");
}
inline std::string index_path(std::string_view field, std::size_t i, std::size_t j) {
    return cat(field, "[", std::to_string(i), "][", std::to_string(j), "]");
}

// Walks JSON text that failed to parse and names where it stopped, as a path such as
// "bandwidth_gbps[3][7]" (the element being read, or the last key before a syntax error). Only the
// failure path pays for this second pass; it exists because nlohmann reports a number overflow
// (1e400) without any position, and a field is easier to fix than a byte offset.
class json_error_locator final : public nlohmann::json_sax<nlohmann::json> {
public:
    const std::string& path() const noexcept { return path_; }

    bool null() override { return element(); }
    bool boolean(bool) override { return element(); }
    bool number_integer(number_integer_t) override { return element(); }
    bool number_unsigned(number_unsigned_t) override { return element(); }
    bool number_float(number_float_t, const string_t&) override { return element(); }
    bool string(string_t&) override { return element(); }
    bool binary(binary_t&) override { return element(); }
    bool start_object(std::size_t) override { return open(false); }
    bool key(string_t& k) override {
        frames_.back().key = k;
        return true;
    }
    bool end_object() override { return close(); }
    bool start_array(std::size_t) override { return open(true); }
    bool end_array() override { return close(); }

    bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception&) override {
        // clip() cuts the path for the message; stopping early spares building it a million deep.
        for (std::size_t f = 0; f < frames_.size() && path_.size() <= 200; ++f) {
            const frame& fr = frames_[f];
            if (fr.is_array) {
                // The innermost array failed on the element after the last one it completed.
                const long i = f + 1 == frames_.size() ? fr.index + 1 : fr.index;
                path_.append("[").append(std::to_string(i)).append("]");
            } else if (!fr.key.empty()) {
                if (!path_.empty()) path_.append(".");
                path_.append(std::string_view(fr.key).substr(0, 200));
            }
        }
        return false;
    }

private:
    struct frame {
        bool is_array;
        long index = -1;
        std::string key;
    };

    bool element() {
        if (!frames_.empty() && frames_.back().is_array) ++frames_.back().index;
        return true;
    }
    bool open(bool is_array) {
        element();
        frames_.push_back(frame{is_array, -1, {}});
        return true;
    }
    bool close() {
        frames_.pop_back();
        return true;
    }

    std::vector<frame> frames_;
    std::string path_;
};

inline nlohmann::json parse_json(std::string_view text, std::string_view source) {
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        json_error_locator locator;
        try {
            (void)nlohmann::json::sax_parse(text, &locator);
        } catch (const nlohmann::json::exception&) {
            // A SAX parse reports through parse_error rather than throwing; should it throw anyway,
            // the first failure already says what is wrong and the locator only adds where.
        }
        std::string_view what = e.what();
        // Drop nlohmann's "[json.exception.parse_error.101] " tag: it names their code, not the file.
        if (what.starts_with("[json.exception.")) {
            if (const auto close = what.find("] "); close != std::string_view::npos) what.remove_prefix(close + 2);
        }
        if (locator.path().empty()) fail(source, "not valid JSON: ", clip(what));
        fail(source, "not valid JSON near ", clip(locator.path()), ": ", clip(what));
    }
}

inline std::string optional_string(const nlohmann::json& obj, const char* key, std::string_view field,
                                   std::string fallback, std::string_view source) {
    const auto it = obj.find(key);
    if (it == obj.end()) return fallback;
    if (!it->is_string()) fail(source, field, " = ", show(*it), ": expected a string");
    return it->get<std::string>();
}

inline double optional_number(const nlohmann::json& obj, const char* key, std::string_view field,
                              std::string_view source) {
    const auto it = obj.find(key);
    if (it == obj.end()) return 0;
    if (!it->is_number()) fail(source, field, " = ", show(*it), ": expected a number");
    return it->get<double>();
}

// Reads an n×n array of numbers, row-major. n is taken from the first matrix read (n < 0) and
// required of the next; the row count is checked before anything n×n is allocated.
inline std::vector<double> read_matrix(const nlohmann::json& doc, const char* field, int& n,
                                       const char* other_field, std::string_view source) {
    const auto it = doc.find(field);
    if (it == doc.end()) fail(source, "missing field ", field, " (an n x n array of numbers)");
    const nlohmann::json& rows = *it;
    if (!rows.is_array()) fail(source, field, " = ", show(rows), ": expected an array of rows");
    const std::size_t size = rows.size();
    if (size == 0 || size > static_cast<std::size_t>(max_topology_devices)) {
        fail(source, field, " has ", std::to_string(size), " rows: a topology has 1 to ",
             std::to_string(max_topology_devices), " devices");
    }
    if (n >= 0 && size != static_cast<std::size_t>(n)) {
        fail(source, field, " has ", std::to_string(size), " rows but ", other_field, " has ", std::to_string(n),
             ": both matrices must be the same size");
    }
    n = static_cast<int>(size);

    std::vector<double> m;
    m.reserve(size * size);
    for (std::size_t i = 0; i < size; ++i) {
        const nlohmann::json& row = rows[i];
        if (!row.is_array()) fail(source, index_path(field, i), " = ", show(row), ": expected an array of numbers");
        if (row.size() != size) {
            fail(source, index_path(field, i), " has ", std::to_string(row.size()), " entries, expected ",
                 std::to_string(size), " (the matrix must be square)");
        }
        for (std::size_t j = 0; j < size; ++j) {
            const nlohmann::json& v = row[j];
            if (!v.is_number()) fail(source, index_path(field, i, j), " = ", show(v), ": expected a number");
            m.push_back(v.get<double>());
        }
    }
    return m;
}

inline device default_device(std::size_t i) { return device{cat("gpu", std::to_string(i)), "r0", "", 0, 0}; }

inline std::vector<device> read_devices(const nlohmann::json& doc, int n, std::string_view source) {
    const auto count = static_cast<std::size_t>(n);
    std::vector<device> devices;
    devices.reserve(count);
    const auto it = doc.find("devices");
    if (it == doc.end()) {
        for (std::size_t i = 0; i < count; ++i) devices.push_back(default_device(i));
        return devices;
    }
    if (!it->is_array()) fail(source, "devices = ", show(*it), ": expected an array of objects");
    if (it->size() != count) {
        fail(source, "devices has ", std::to_string(it->size()), " entries but the matrices are ", std::to_string(n),
             "x", std::to_string(n));
    }
    for (std::size_t i = 0; i < count; ++i) {
        const nlohmann::json& d = (*it)[i];
        const std::string at = index_path("devices", i);
        if (!d.is_object()) fail(source, at, " = ", show(d), ": expected an object");
        device dev = default_device(i);
        dev.name = optional_string(d, "name", cat(at, ".name"), std::move(dev.name), source);
        dev.region = optional_string(d, "region", cat(at, ".region"), std::move(dev.region), source);
        dev.gpu = optional_string(d, "gpu", cat(at, ".gpu"), "", source);
        dev.peak_tflops = optional_number(d, "peak_tflops", cat(at, ".peak_tflops"), source);
        dev.memory_gib = optional_number(d, "memory_gib", cat(at, ".memory_gib"), source);
        devices.push_back(std::move(dev));
    }
    return devices;
}

// The file states its units; anything but ms and Gbps would be silently misread, so it is refused.
inline void check_units(const nlohmann::json& doc, std::string_view source) {
    const auto it = doc.find("units");
    if (it == doc.end()) return;
    if (!it->is_object()) fail(source, "units = ", show(*it), ": expected an object");
    for (const auto& [key, expected] : {std::pair{"delay", "ms"}, std::pair{"bandwidth", "Gbps"}}) {
        const auto u = it->find(key);
        if (u != it->end() && (!u->is_string() || u->get<std::string>() != expected)) {
            fail(source, "units.", key, " = ", show(*u), ": expected \"", expected, "\"");
        }
    }
}

}  // namespace dtfm::detail

namespace dtfm::plan {

inline topology topology::make(std::string_view source, std::vector<device> devices, std::vector<double> delay,
                               std::vector<double> bandwidth, std::string name, std::string description) {
    using dtfm::detail::fail;
    const std::size_t n = devices.size();
    if (n == 0 || n > static_cast<std::size_t>(max_topology_devices)) {
        fail(source, "devices has ", std::to_string(n), " entries: a topology has 1 to ",
             std::to_string(max_topology_devices), " devices");
    }
    for (const auto& [field, m] : {std::pair{"delay_ms", &delay}, std::pair{"bandwidth_gbps", &bandwidth}}) {
        if (m->size() != n * n) {
            fail(source, field, " has ", std::to_string(m->size()), " entries, expected ", std::to_string(n * n), " (",
                 std::to_string(n), " devices squared)");
        }
    }

    std::unordered_map<std::string_view, std::size_t> first_use;
    for (std::size_t i = 0; i < n; ++i) {
        const device& d = devices[i];
        for (const auto& [field, v] :
             {std::pair{".peak_tflops", d.peak_tflops}, std::pair{".memory_gib", d.memory_gib}}) {
            if (!std::isfinite(v) || v < 0) {
                fail(source, dtfm::detail::index_path("devices", i), field, " = ", dtfm::detail::format_number(v),
                     ": must be non-negative and finite");
            }
        }
        // Plans name devices, so a name must pick out one device.
        if (const auto [it, fresh] = first_use.emplace(d.name, i); !fresh) {
            fail(source, dtfm::detail::index_path("devices", i), ".name = \"", dtfm::detail::clip(d.name, 40),
                 "\": already the name of ", dtfm::detail::index_path("devices", it->second));
        }
    }

    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < n; ++j) {
            double& dl = delay[i * n + j];
            double& bw = bandwidth[i * n + j];
            // A device talks to itself for free; the files put arbitrary numbers there.
            if (i == j) {
                dl = 0;
                bw = std::numeric_limits<double>::infinity();
                continue;
            }
            if (!std::isfinite(dl) || dl < 0) {
                fail(source, dtfm::detail::index_path("delay_ms", i, j), " = ", dtfm::detail::format_number(dl),
                     ": delay must be non-negative and finite");
            }
            if (!std::isfinite(bw) || bw <= 0) {
                fail(source, dtfm::detail::index_path("bandwidth_gbps", i, j), " = ", dtfm::detail::format_number(bw),
                     ": bandwidth must be positive and finite");
            }
        }
    }

    topology t;
    t.n_ = static_cast<int>(n);
    t.name_ = std::move(name);
    t.description_ = std::move(description);
    t.devices_ = std::move(devices);
    t.delay_ = std::move(delay);
    t.bandwidth_ = std::move(bandwidth);
    return t;
}

inline topology topology::from_matrices(std::vector<device> devices, std::vector<double> delay_ms,
                                        std::vector<double> bandwidth_gbps, std::string name,
                                        std::string description) {
    return make("topology::from_matrices", std::move(devices), std::move(delay_ms), std::move(bandwidth_gbps),
                std::move(name), std::move(description));
}

inline topology topology::uniform(int devices, double delay_ms, double bandwidth_gbps) {
    if (devices < 1 || devices > max_topology_devices) {
        dtfm::detail::fail("topology::uniform", "devices = ", std::to_string(devices), ": a topology has 1 to ",
                     std::to_string(max_topology_devices), " devices");
    }
    const auto n = static_cast<std::size_t>(devices);
    std::vector<device> ds;
    ds.reserve(n);
    for (std::size_t i = 0; i < n; ++i) ds.push_back(dtfm::detail::default_device(i));
    return make("topology::uniform", std::move(ds), std::vector<double>(n * n, delay_ms),
                std::vector<double>(n * n, bandwidth_gbps), "uniform",
                dtfm::detail::cat(std::to_string(devices), " devices, ", dtfm::detail::format_number(delay_ms), " ms and ",
                            dtfm::detail::format_number(bandwidth_gbps), " Gbps between every pair"));
}

inline std::vector<std::string> topology::regions() const {
    std::vector<std::string> out;
    for (const device& d : devices_) {
        if (std::find(out.begin(), out.end(), d.region) == out.end()) out.push_back(d.region);
    }
    return out;
}

inline topology topology::subset(std::span<const int> device_ids) const {
    const std::string source = dtfm::detail::cat("topology::subset of ", name_.empty() ? "<unnamed>" : name_);
    if (device_ids.empty()) dtfm::detail::fail(source, "device_ids is empty: a topology has at least 1 device");
    const std::size_t m = device_ids.size();
    std::vector<std::size_t> given_at(static_cast<std::size_t>(n_), m);  // m: not given yet
    for (std::size_t k = 0; k < m; ++k) {
        const int id = device_ids[k];
        if (id < 0 || id >= n_) {
            dtfm::detail::fail(source, dtfm::detail::index_path("device_ids", k), " = ", std::to_string(id),
                         ": not a device (0 to ", std::to_string(n_ - 1), ")");
        }
        std::size_t& first = given_at[static_cast<std::size_t>(id)];
        if (first != m) {
            dtfm::detail::fail(source, dtfm::detail::index_path("device_ids", k), " = ", std::to_string(id), ": already given as ",
                         dtfm::detail::index_path("device_ids", first));
        }
        first = k;
    }

    const auto n = static_cast<std::size_t>(n_);
    topology t;
    t.n_ = static_cast<int>(m);
    t.name_ = name_;
    t.description_ = description_;
    t.devices_.reserve(m);
    t.delay_.resize(m * m);
    t.bandwidth_.resize(m * m);
    for (std::size_t a = 0; a < m; ++a) {
        const auto i = static_cast<std::size_t>(device_ids[a]);
        t.devices_.push_back(devices_[i]);
        for (std::size_t b = 0; b < m; ++b) {
            const auto j = static_cast<std::size_t>(device_ids[b]);
            t.delay_[a * m + b] = delay_[i * n + j];
            t.bandwidth_[a * m + b] = bandwidth_[i * n + j];
        }
    }
    return t;
}

inline topology parse_topology(std::string_view json_text, std::string_view source) {
    try {
        const nlohmann::json doc = dtfm::detail::parse_json(json_text, source);
        if (!doc.is_object()) dtfm::detail::fail(source, "expected a JSON object at the top level, got ", dtfm::detail::show(doc));
        dtfm::detail::check_units(doc, source);
        std::string name = dtfm::detail::optional_string(doc, "name", "name", "", source);
        std::string description = dtfm::detail::optional_string(doc, "description", "description", "", source);
        int n = -1;
        std::vector<double> delay = dtfm::detail::read_matrix(doc, "delay_ms", n, "", source);
        std::vector<double> bandwidth = dtfm::detail::read_matrix(doc, "bandwidth_gbps", n, "delay_ms", source);
        std::vector<device> devices = dtfm::detail::read_devices(doc, n, source);
        return topology::make(source, std::move(devices), std::move(delay), std::move(bandwidth), std::move(name),
                              std::move(description));
    } catch (const nlohmann::json::exception& e) {
        // Every value is type-checked before it is read, so this is a guard: no nlohmann exception
        // leaves the loader.
        dtfm::detail::fail(source, e.what());
    }
}

inline topology load_topology(const std::filesystem::path& file) {
    const std::string source = file.string();
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) dtfm::detail::fail(source, "is a directory, not a topology file");
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        const std::error_code why(errno, std::generic_category());
        dtfm::detail::fail(source, "cannot open topology file: ", why.message());
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) dtfm::detail::fail(source, "cannot read topology file");
    return parse_topology(text, source);
}

inline void check_stages(const topology& t, int stages) {
    const std::string source = dtfm::detail::cat("pipeline of ", t.name().empty() ? "<unnamed>" : t.name());
    if (stages < 1) dtfm::detail::fail(source, "stages = ", std::to_string(stages), ": need at least 1 stage");
    if (t.size() % stages != 0) {
        dtfm::detail::fail(source, "stages = ", std::to_string(stages), ": ", std::to_string(t.size()),
                     " devices do not split into ", std::to_string(stages), " equal stages");
    }
}

}  // namespace dtfm::plan
