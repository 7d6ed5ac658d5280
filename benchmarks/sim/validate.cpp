// dtfm_sim_validate: the simulator's prediction for one dtfm-train run (issue 7, point 9), so a
// measured iteration time can be compared with it. dtfm-train's GPT (nn::gpt_config::tiny() or
// small() on the Markov corpus's 32 tokens), S stages × R replicas on uniform links of --gbps and
// --delay-ms, stretched by --time-scale as transport::throttled does, 1F1B, a ring all-reduce of
// fp32 gradients and fp32 activations (dtfm-train --compress none).
//
//   dtfm_sim_validate --calibrate-one T1 --calibrate-many TM --micro-batches M [--micro-batch b]
//       one stage, one replica and no communication took T1 per iteration with one micro-batch
//       of b sequences and TM with M of them: time = a + M·c. Prints the device FLOP/s (one
//       micro-batch's FLOPs ÷ c) and the once-per-iteration work a (the optimizer step, zeroing
//       gradients, building the batch) as FLOPs per parameter at that speed.
//   dtfm_sim_validate --flops F [--optimizer-flops K] --stages S --replicas R --micro-batches M
//                     --micro-batch b --gbps G --delay-ms D [--time-scale X] [--model tiny] [--cores C]
//       prints the predicted iteration time in seconds, then the pipeline's and the all-reduce's.
//       --cores: the S·R ranks are threads sharing C cores (sim_options::host_cores).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dtfm/error.hpp"
#include "dtfm/plan/topology.hpp"
#include "dtfm/sim/model_cost.hpp"
#include "dtfm/sim/simulator.hpp"

namespace {

using namespace dtfm;

double number(const char* flag, const char* text) {
    char* end = nullptr;
    const double v = std::strtod(text, &end);
    if (end == text || *end != '\0' || !(v >= 0)) throw config_error(std::string(flag) + ": '" + text + "' is not a number >= 0");
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    double calibrate_one = 0, calibrate_many = 0, flops = 0, optimizer_flops = 0, gbps = 10, delay_ms = 0.1, time_scale = 1;
    int stages = 1, replicas = 1, microbatches = 4, micro_batch = 8, cores = 0;
    std::string model_name = "tiny";
    try {
        for (int i = 1; i < argc; i += 2) {
            const std::string flag = argv[i];
            if (i + 1 >= argc) throw config_error(flag + " needs a value");
            const char* v = argv[i + 1];
            if (flag == "--calibrate-one") calibrate_one = number(argv[i], v);
            else if (flag == "--calibrate-many") calibrate_many = number(argv[i], v);
            else if (flag == "--flops") flops = number(argv[i], v);
            else if (flag == "--optimizer-flops") optimizer_flops = number(argv[i], v);
            else if (flag == "--gbps") gbps = number(argv[i], v);
            else if (flag == "--delay-ms") delay_ms = number(argv[i], v);
            else if (flag == "--time-scale") time_scale = number(argv[i], v);
            else if (flag == "--stages") stages = static_cast<int>(number(argv[i], v));
            else if (flag == "--replicas") replicas = static_cast<int>(number(argv[i], v));
            else if (flag == "--micro-batches") microbatches = static_cast<int>(number(argv[i], v));
            else if (flag == "--micro-batch") micro_batch = static_cast<int>(number(argv[i], v));
            else if (flag == "--model") model_name = v;
            else if (flag == "--cores") cores = static_cast<int>(number(argv[i], v));
            else throw config_error("unknown flag " + flag);
        }
        sim::gpt_config model = model_name == "small" ? sim::gpt_config::small() : sim::gpt_config::tiny();
        if (model_name != "tiny" && model_name != "small") throw config_error("--model must be tiny or small");
        model.vocab = 32;  // dtfm-train's Markov corpus
        model.microbatch_size = micro_batch;

        if (calibrate_one > 0 || calibrate_many > 0) {
            if (!(calibrate_many > calibrate_one) || microbatches < 2)
                throw config_error("--calibrate-many must exceed --calibrate-one, with --micro-batches of at least 2");
            const auto st = sim::stage_costs(model, 1).front();
            const double per_microbatch = (calibrate_many - calibrate_one) / (microbatches - 1);
            const double once = std::max(0.0, calibrate_one - per_microbatch);
            const double rate = (st.forward_flops + st.backward_flops) / per_microbatch;
            std::printf("%.6g %.6g\n", rate, once * rate / static_cast<double>(st.parameters));
            return 0;
        }
        if (!(flops > 0)) throw config_error("give --flops (from the calibration) or --calibrate-one and --calibrate-many");
        if (!(time_scale > 0) || !(gbps > 0)) throw config_error("--gbps and --time-scale must be > 0");
        const int n = stages * replicas;
        std::vector<plan::device> devices;
        for (int d = 0; d < n; ++d) devices.push_back({"rank" + std::to_string(d), "here", "cpu", flops / 1e12, 0});
        const auto cells = static_cast<std::size_t>(n) * static_cast<std::size_t>(n);
        const auto t = plan::topology::from_matrices(devices, std::vector<double>(cells, delay_ms * time_scale),
                                                     std::vector<double>(cells, gbps / time_scale));
        sim::sim_options o;
        o.microbatches = microbatches;
        o.efficiency = 1;
        o.allreduce = sim::allreduce_kind::ring;
        if (cores > 0) o.host_cores = cores;
        o.optimizer_flops_per_parameter = optimizer_flops;
        const auto r = sim::simulate<schedule::one_f_one_b>(t, stages, model, o);
        double allreduce = 0;
        for (double a : r.allreduce_seconds) allreduce = std::max(allreduce, a);
        std::printf("%.6f %.6f %.6f\n", r.iteration_seconds, r.pipeline_seconds, allreduce);
        return 0;
    } catch (const dtfm::error& e) {
        std::fprintf(stderr, "dtfm_sim_validate: %s\n", e.what());
        return 1;
    }
}
