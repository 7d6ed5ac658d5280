// plan::communication_cost: DT-FM's communication cost of a placement (Yuan et al., NeurIPS 2022),
// in seconds per iteration, with D replicas of S stages, delay α (ms) and bandwidth β (Gbps):
//   DP   = max over stages, over devices a of the stage, of Σ_{b in stage, b≠a} 2·(α_ab/1000 + 8·c_dp/(D·β_ab))
//   PP   = Σ over stage boundaries k of max over replicas r of (α/1000 + 8·c_pp/β) on r's link k → k+1
//   cost = DP + 2·PP   (forward activations and backward gradients cross each boundary)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "dtfm/error.hpp"
#include "dtfm/plan/topology.hpp"

namespace dtfm::plan {

// Bytes each tasklet moves per iteration, in GB (10^9 bytes). The defaults are DT-FM's: the fp32
// gradient of one stage of GPT-3-1.3B in 8 stages, and the activations one tasklet sends.
struct cost_params {
    double c_dp_gb = 0.65;
    double c_pp_gb = 0.471;
};

// Who runs what: pipelines[r][s] is the device (an index into the topology) running stage s of
// data-parallel replica r. Stage group s is {pipelines[r][s] for every r}; the order of a pipeline
// is the order activations flow.
struct placement {
    std::vector<std::vector<int>> pipelines;

    int replicas() const noexcept { return static_cast<int>(pipelines.size()); }
    int stages() const noexcept { return pipelines.empty() ? 0 : static_cast<int>(pipelines.front().size()); }

    // The devices of stage s, one per replica, in replica order.
    std::vector<int> stage_group(int s) const {
        std::vector<int> g;
        g.reserve(pipelines.size());
        for (const auto& p : pipelines) g.push_back(p.at(static_cast<std::size_t>(s)));
        return g;
    }
};

struct cost_breakdown {
    double dp = 0;     // seconds: the slowest device's share of the data-parallel exchange
    double pp = 0;     // seconds: one direction of pipeline traffic, summed over boundaries
    double total = 0;  // dp + 2·pp
};

// config_error unless the placement is a non-empty rectangle of distinct devices of t.
inline void check_placement(const topology& t, const placement& p) {
    using dtfm::detail::fail;
    const std::string source = "placement";
    if (p.pipelines.empty() || p.pipelines.front().empty()) fail(source, "needs at least one replica of one stage");
    const std::size_t stages = p.pipelines.front().size();
    std::vector<char> used(static_cast<std::size_t>(t.size()), 0);
    for (std::size_t r = 0; r < p.pipelines.size(); ++r) {
        if (p.pipelines[r].size() != stages) {
            fail(source, "pipeline ", std::to_string(r), " has ", std::to_string(p.pipelines[r].size()),
                 " stages, pipeline 0 has ", std::to_string(stages));
        }
        for (std::size_t s = 0; s < stages; ++s) {
            const int d = p.pipelines[r][s];
            const std::string at = dtfm::detail::index_path("pipelines", r, s);
            if (d < 0 || d >= t.size()) {
                fail(source, at, " = ", std::to_string(d), ": not a device (0 to ", std::to_string(t.size() - 1), ")");
            }
            char& u = used[static_cast<std::size_t>(d)];
            if (u) fail(source, at, " = ", std::to_string(d), ": device used twice");
            u = 1;
        }
    }
}

inline void check_cost_params(const cost_params& c) {
    for (const double v : {c.c_dp_gb, c.c_pp_gb}) {
        if (!std::isfinite(v) || v < 0) {
            dtfm::detail::fail("cost_params", "c_dp_gb = ", dtfm::detail::format_number(c.c_dp_gb),
                               ", c_pp_gb = ", dtfm::detail::format_number(c.c_pp_gb),
                               ": both must be non-negative and finite");
        }
    }
}

// Seconds the data-parallel term charges device a for sending its share to b (a ≠ b), with D replicas.
inline double dp_link_seconds(const topology& t, int a, int b, int replicas, const cost_params& c = {}) {
    return 2 * (t.delay_ms(a, b) / 1000 + 8 * c.c_dp_gb / (replicas * t.bandwidth_gbps(a, b)));
}

// Seconds one activation transfer from a to b takes.
inline double pp_link_seconds(const topology& t, int a, int b, const cost_params& c = {}) {
    return t.delay_ms(a, b) / 1000 + 8 * c.c_pp_gb / t.bandwidth_gbps(a, b);
}

inline cost_breakdown communication_cost(const topology& t, const placement& p, const cost_params& c = {}) {
    check_placement(t, p);
    check_cost_params(c);
    const int replicas = p.replicas();
    const int stages = p.stages();
    cost_breakdown out;
    for (int s = 0; s < stages; ++s) {
        const std::vector<int> group = p.stage_group(s);
        for (const int a : group) {
            double sum = 0;
            for (const int b : group) {
                if (b != a) sum += dp_link_seconds(t, a, b, replicas, c);
            }
            out.dp = std::max(out.dp, sum);
        }
    }
    for (int s = 0; s + 1 < stages; ++s) {
        double worst = 0;
        for (const auto& pipe : p.pipelines) {
            const auto k = static_cast<std::size_t>(s);
            worst = std::max(worst, pp_link_seconds(t, pipe[k], pipe[k + 1], c));
        }
        out.pp += worst;
    }
    out.total = out.dp + 2 * out.pp;
    return out;
}

}  // namespace dtfm::plan
