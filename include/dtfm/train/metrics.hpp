// train::metrics: what the trainer reports at a step, as one JSON line, and the progress display
// (a bar redrawn in place on a terminal, plain lines otherwise).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace dtfm::train {

struct step_record {
    std::uint64_t step = 0;
    double loss = std::nan("");       // mean training loss over replicas
    double eval_loss = std::nan("");  // NaN when not evaluated at this step
    double seconds = 0;               // since the run started
    double tokens_per_s = 0;          // over the steps since the previous record
    double learning_rate = 0;
    std::uint64_t bytes_sent = 0;                // payload bytes every rank put on the wire so far
    std::uint64_t bytes_sent_pipeline = 0;       // …between stages (activations and their gradients)
    std::uint64_t bytes_sent_data_parallel = 0;  // …between replicas (gradient or model sync)
    std::uint64_t value_bytes = 0;               // what those bytes weigh uncompressed
    double compression_ratio() const { return bytes_sent == 0 ? 1.0 : static_cast<double>(value_bytes) / static_cast<double>(bytes_sent); }
};

namespace detail {

inline std::string json_number(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

}  // namespace detail

inline std::string to_json_line(const step_record& r) {
    std::ostringstream o;
    o << "{\"step\":" << r.step << ",\"loss\":" << detail::json_number(r.loss) << ",\"eval_loss\":" << detail::json_number(r.eval_loss)
      << ",\"seconds\":" << detail::json_number(r.seconds) << ",\"tokens_per_s\":" << detail::json_number(r.tokens_per_s)
      << ",\"learning_rate\":" << detail::json_number(r.learning_rate) << ",\"bytes_sent\":" << r.bytes_sent
      << ",\"bytes_sent_pipeline\":" << r.bytes_sent_pipeline << ",\"bytes_sent_data_parallel\":" << r.bytes_sent_data_parallel
      << ",\"compression_ratio\":" << detail::json_number(r.compression_ratio()) << "}";
    return o.str();
}

// Draws progress on a FILE (stderr by default): a bar rewritten in place when it is a terminal,
// one plain line per report when it is not (a log file, CI).
class progress {
public:
    enum class mode { automatic, bar, lines, off };

    explicit progress(std::uint64_t total_steps, mode m = mode::automatic, std::FILE* out = stderr)
        : total_(total_steps), out_(out) {
        if (m == mode::automatic) m = ::isatty(::fileno(out)) ? mode::bar : mode::lines;
        mode_ = m;
    }

    void update(const step_record& r, double entropy_floor = std::nan("")) {
        if (mode_ == mode::off) return;
        std::string line = "step " + std::to_string(r.step) + "/" + std::to_string(total_) + "  loss " + fixed(r.loss);
        if (std::isfinite(r.eval_loss)) line += "  eval " + fixed(r.eval_loss);
        if (std::isfinite(entropy_floor)) line += "  (floor " + fixed(entropy_floor) + ")";
        line += "  " + std::to_string(static_cast<long long>(r.tokens_per_s)) + " tok/s";
        if (r.bytes_sent > 0) line += "  " + fixed(r.compression_ratio(), 1) + "x";
        if (mode_ == mode::bar) {
            const int width = 24;
            const int filled = total_ == 0 ? width : static_cast<int>(static_cast<double>(r.step) / static_cast<double>(total_) * width);
            std::string bar(static_cast<std::size_t>(width), ' ');
            for (int i = 0; i < filled && i < width; ++i) bar[static_cast<std::size_t>(i)] = '#';
            std::fprintf(out_, "\r[%s] %s\x1b[K", bar.c_str(), line.c_str());
            if (r.step >= total_) std::fputc('\n', out_);
        } else {
            std::fprintf(out_, "%s\n", line.c_str());
        }
        std::fflush(out_);
    }

private:
    static std::string fixed(double v, int digits = 4) {
        if (!std::isfinite(v)) return "-";
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.*f", digits, v);
        return buf;
    }

    std::uint64_t total_;
    std::FILE* out_;
    mode mode_ = mode::lines;
};

}  // namespace dtfm::train
