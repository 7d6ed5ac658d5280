// cuda::gpt_stage and cuda::adamw on Thrust's CPP device system, built with g++ and run without a
// GPU: the same functors and launches as on a device, cuda::blas on nn::gemm. Besides the checks
// the GPU test runs (gpt_checks.hpp), the stage is compared with the host nn::gpt_stage bit for
// bit: the same losses, activations passed on and gradients, and the same parameters after AdamW
// steps, split over 1 and 2 stages.
#include <cstdio>
#include <cstring>
#include <exception>

#include "dtfm/nn/gemm.hpp"
#include "dtfm/nn/gpt_stage.hpp"
#include "dtfm/optim/adamw.hpp"
#include "gpt_checks.hpp"

namespace {

using gpt_checks::expect;
using gpt_checks::span_of;

using checks::same_bits;

// `steps` AdamW steps of M micro-batches over `stages` stages, host and device side by side.
void matches_the_host_stage(int stages) {
    const std::string at = std::to_string(stages) + " stage(s): ";
    dtfm::nn::gpt_config c = gpt_checks::tiny_test();
    const int B = 2, M = 2;
    std::vector<dtfm::nn::gpt_stage> host;
    std::vector<std::unique_ptr<dtfm::cuda::gpt_stage>> dev;
    std::vector<dtfm::optim::adamw> host_opt;
    std::vector<dtfm::cuda::adamw> dev_opt;
    for (int i = 0; i < stages; ++i) {
        host.emplace_back(c, i, stages, B, M);
        dev.push_back(std::make_unique<dtfm::cuda::gpt_stage>(c, i, stages, B, M));
        host_opt.emplace_back(dtfm::optim::adamw_options{.lr = 1e-2f});
        dev_opt.emplace_back(dtfm::optim::adamw_options{.lr = 1e-2f});
    }
    for (int i = 0; i < stages; ++i)
        expect(same_bits(dev[i]->parameters_on_host(), host[i].parameters()), at + "the same initial parameters");
    for (int step = 0; step < 3; ++step) {
        for (int i = 0; i < stages; ++i) {
            host[i].zero_gradients();
            dev[i]->zero_gradients();
        }
        for (int m = 0; m < M; ++m) {
            const gpt_checks::batch b(c, B, m + step * M);
            std::vector<float> h_in;
            thrust::device_vector<float> d_in;
            for (int i = 0; i < stages; ++i) {
                host[i].feed(m, b.tokens, b.targets);
                dev[i]->feed(m, b.tokens, b.targets);
                std::vector<float> h_out(host[i].output_size());
                thrust::device_vector<float> d_out(dev[i]->output_size());
                host[i].forward(m, h_in, h_out);
                dev[i]->forward(m, span_of(d_in), span_of(d_out));
                expect(same_bits(checks::to_host(d_out), h_out), at + "stage " + std::to_string(i) + "'s output, step " +
                                                                          std::to_string(step));
                h_in = std::move(h_out);
                d_in = std::move(d_out);
            }
        }
        for (int m = M - 1; m >= 0; --m) {
            std::vector<float> h_grad{1.0f / M};
            thrust::device_vector<float> d_grad(1, 1.0f / M);
            for (int i = stages - 1; i >= 0; --i) {
                std::vector<float> h_in(host[i].input_size());
                thrust::device_vector<float> d_in(dev[i]->input_size());
                host[i].backward(m, h_grad, h_in);
                dev[i]->backward(m, span_of(d_grad), span_of(d_in));
                expect(same_bits(checks::to_host(d_in), h_in), at + "stage " + std::to_string(i) + "'s input gradient");
                h_grad = std::move(h_in);
                d_grad = std::move(d_in);
            }
        }
        for (int i = 0; i < stages; ++i) {
            expect(same_bits(dev[i]->gradients_on_host(), host[i].gradients()), at + "gradients, step " + std::to_string(step));
            host_opt[i].step(host[i].parameters(), host[i].gradients());
            dev_opt[i].step(dev[i]->parameters(), dev[i]->gradients());
            expect(same_bits(dev[i]->parameters_on_host(), host[i].parameters()), at + "parameters after AdamW, step " +
                                                                                      std::to_string(step));
        }
    }
}

}  // namespace

int main() {
    try {
        dtfm::nn::set_blas_threads(1);
        matches_the_host_stage(1);
        matches_the_host_stage(2);
        const int failures = gpt_checks::run_all();  // the running count, this file's checks included
        std::printf("%s\n", failures == 0 ? "all checks passed" : "some checks FAILED");
        return failures == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::printf("FAILED: unexpected exception: %s\n", e.what());
        return 1;
    }
}
