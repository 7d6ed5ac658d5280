// dtfm_fuzz_seeds <dir>: writes a seed corpus of valid inputs for every fuzz target into
// <dir>/<target>/, so each fuzzer starts from well-formed payloads of the current format.
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "dtfm/compress/cast.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/delta.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/compress/randomk.hpp"
#include "dtfm/compress/sign.hpp"
#include "dtfm/compress/topk.hpp"
#include "dtfm/strategy/pipeline_parallel.hpp"
#include "dtfm/train/checkpoint.hpp"
#include "dtfm/transport/checked.hpp"

namespace {

namespace fs = std::filesystem;

void write(const fs::path& dir, const std::string& name, std::span<const std::byte> bytes) {
    fs::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                       static_cast<std::streamsize>(bytes.size()));
}

std::vector<float> sample(std::size_t n) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 13) * 0.37f - 2.0f;
    return v;
}

// A selector byte, then the payload `c` makes of a few tensor sizes.
template <class C>
void payloads(const fs::path& dir, std::uint8_t selector, C c) {
    for (std::size_t n : {0u, 1u, 7u, 100u, 1000u}) {
        const auto values = sample(n);
        std::vector<std::byte> out(1 + c.max_payload_bytes(n));
        out[0] = std::byte{selector};
        const std::size_t written = c.encode(values, std::span(out).subspan(1));
        write(dir, "seed_" + std::to_string(selector) + "_" + std::to_string(n), std::span(out).first(1 + written));
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: dtfm_fuzz_seeds <corpus dir>\n");
        return 2;
    }
    const fs::path root = argv[1];
    payloads(root / "dtfm_fuzz_identity_cast", 0, dtfm::compress::identity{});
    payloads(root / "dtfm_fuzz_identity_cast", 1, dtfm::compress::cast<dtfm::compress::fp16>{});
    payloads(root / "dtfm_fuzz_identity_cast", 2, dtfm::compress::cast<dtfm::compress::bf16>{});

    using namespace dtfm::compress;
    const auto qs = root / "dtfm_fuzz_quantize_sign";
    payloads(qs, 0, quantize<8>{});
    payloads(qs, 1, quantize<4>{});
    payloads(qs, 2, quantize<3, minmax, stochastic, 64>{});
    payloads(qs, 3, quantize<2, minmax>{});
    payloads(qs, 4, quantize<1, absmax, stochastic>{});
    payloads(qs, 5, quantize<4, absmax, nearest, 8>{});
    payloads(qs, 6, sign<>{});
    payloads(qs, 7, sign<64>{});
    const auto sparse = root / "dtfm_fuzz_sparse";
    payloads(sparse, 0, topk<>{});
    payloads(sparse, 1, topk<std::ratio<1, 10>>{});
    payloads(sparse, 2, topk_approx<>{});
    payloads(sparse, 3, randomk<>{});
    payloads(sparse, 4, randomk<std::ratio<1, 10>, false>{});
    payloads(sparse, 5, cocktail<>{});

    // delta: the fuzz target's receiver holds sample 1 (first byte 1) after a full payload.
    {
        constexpr std::size_t n = 64;
        delta<cast<fp16>> sender(16 * n * sizeof(float));
        std::vector<float> activation(n, 0.5f), next(n, 0.75f);
        std::vector<std::byte> buf(1 + sender.max_payload_bytes(n));
        buf[0] = std::byte{1};  // the selector: the receiver expects sample 1
        const auto body = std::span(buf).subspan(1);
        sender.set_sample(1);
        sender.encode(activation, body);
        sender.set_sample(1);
        const auto bytes = sender.encode(next, body);
        write(root / "dtfm_fuzz_delta", "seed_delta", std::span(buf).first(1 + bytes));
        delta<cast<fp16>> fresh(16 * n * sizeof(float));
        fresh.set_sample(1);
        const auto full = fresh.encode(activation, body);
        write(root / "dtfm_fuzz_delta", "seed_full", std::span(buf).first(1 + full));
    }

    std::array<std::byte, dtfm::wire::frame_header::size> frame{};
    dtfm::wire::frame_header{1234, 0xCAFEF00Du}.write(frame);
    write(root / "dtfm_fuzz_frame_header", "seed_frame", frame);

    const std::string topology =
        R"({"name": "seed", "units": {"delay": "ms", "bandwidth": "Gbps"},
            "devices": [{"name": "a", "region": "r0", "gpu": "V100", "peak_tflops": 125, "memory_gib": 32},
                        {"name": "b", "region": "r1", "gpu": "V100", "peak_tflops": 125, "memory_gib": 32}],
            "delay_ms": [[0, 10.5], [10.5, 0]], "bandwidth_gbps": [[0, 1.25], [1.25, 0]]})";
    write(root / "dtfm_fuzz_topology", "seed_two_devices", std::as_bytes(std::span(topology)));

    dtfm::train::checkpoint ckpt;
    const std::vector<float> params{0.5f, -1.0f, 2.0f};
    const std::vector<std::uint64_t> step{12};
    ckpt.put<float>("parameters", params);
    ckpt.put<std::uint64_t>("step", step);
    write(root / "dtfm_fuzz_checkpoint", "seed_two_entries", ckpt.encode());

    {
        // Three sequences of 16 activations, as stage 0 sends them (8-bit and 4-bit delta).
        std::vector<float> activations(48);
        for (std::size_t i = 0; i < activations.size(); ++i) activations[i] = 0.1f * static_cast<float>(i) - 2.0f;
        dtfm::compress::quantize<8> q;
        std::vector<std::byte> message(3 * q.max_payload_bytes(16));
        const auto bytes = dtfm::detail::pipeline_frame(q, activations, 3, {}, message);
        write(root / "dtfm_fuzz_pipeline_frame", "seed_quantize8", std::span(message).first(bytes));
        dtfm::compress::delta<dtfm::compress::quantize<4>> d(1 << 16);
        const std::vector<std::uint64_t> ids{1, 2, 3};
        std::vector<std::byte> full(3 * d.max_payload_bytes(16));
        const auto full_bytes = dtfm::detail::pipeline_frame(d, activations, 3, ids, full);
        write(root / "dtfm_fuzz_pipeline_frame", "seed_delta_first_visit", std::span(full).first(full_bytes));
    }

    const std::string plan = R"({"pipelines": [[0, 2], [1, 3]], "cost": {"dp": 1.0, "pp": 0.5, "total": 2.0}})";
    write(root / "dtfm_fuzz_plan_file", "seed_two_pipelines", std::as_bytes(std::span(plan)));
    return 0;
}
