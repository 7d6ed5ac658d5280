// plan::load_placement: reads the planner's plan file, {"pipelines": [[device per stage] per
// replica], …}, into a strategy::mesh_placement (devices are ranks); other fields are ignored.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dtfm/error.hpp"
#include "dtfm/strategy/hybrid.hpp"

namespace dtfm::plan {

inline strategy::mesh_placement parse_placement(const std::string& text, const std::string& source = "plan") {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw config_error(source + ": not valid JSON (" + e.what() + ")");
    }
    if (!j.is_object() || !j.contains("pipelines") || !j["pipelines"].is_array())
        throw config_error(source + ": needs a \"pipelines\" array of arrays of device ids");
    std::vector<std::vector<int>> pipelines;
    for (const auto& p : j["pipelines"]) {
        if (!p.is_array()) throw config_error(source + ": every pipeline must be an array of device ids");
        std::vector<int> devices;
        for (const auto& d : p) {
            if (!d.is_number_integer()) throw config_error(source + ": device ids must be integers");
            const auto v = d.get<long long>();
            if (v < 0 || v > 1'000'000) throw config_error(source + ": device id " + std::to_string(v) + " out of range");
            devices.push_back(static_cast<int>(v));
        }
        pipelines.push_back(std::move(devices));
    }
    try {
        return strategy::mesh_placement(std::move(pipelines));
    } catch (const config_error& e) {
        throw config_error(source + ": " + e.what());
    }
}

inline strategy::mesh_placement load_placement(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) throw config_error("cannot open plan file " + file.string());
    std::ostringstream text;
    text << in.rdbuf();
    return parse_placement(text.str(), file.string());
}

}  // namespace dtfm::plan
