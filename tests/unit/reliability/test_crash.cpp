// Crash safety with real processes (fork + SIGKILL): a process killed while it writes checkpoints
// leaves the previous one loadable, and training killed at a random step then resumed ends with
// parameters bit-identical to a run that was never interrupted (inproc, deterministic).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "dtfm/train/checkpoint.hpp"
#include "../../support/toy_training.hpp"

using namespace dtfm;
using namespace std::chrono_literals;

namespace {

std::filesystem::path fresh_dir(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() / ("dtfm_crash_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

// Runs body in a child process and kills it with SIGKILL after `after` (if it still runs).
template <class Body>
void run_and_kill(std::chrono::milliseconds after, Body body) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        try {
            body();
        } catch (...) {
            ::_exit(3);
        }
        ::_exit(0);
    }
    std::this_thread::sleep_for(after);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
}

train::checkpoint filled(float value, std::size_t n) {
    train::checkpoint c;
    const std::vector<float> v(n, value);
    c.put<float>("values", v);
    return c;
}

}  // namespace

TEST_CASE("crash: killed while writing a checkpoint, the previous one still loads", "[crash]") {
    const auto dir = fresh_dir("write");
    const auto file = dir / "state.ckpt";
    const std::size_t n = std::size_t{4} << 20;  // 16 MB: each write takes a while
    filled(0.0f, n).write_atomic(file);
    for (int trial = 0; trial < 6; ++trial) {
        run_and_kill(std::chrono::milliseconds(7 + 23 * trial), [&] {
            for (int k = 1;; ++k) filled(static_cast<float>(k), n).write_atomic(file);
        });
        const auto c = train::checkpoint::read(file);  // throws if torn
        std::vector<float> v;
        c.get("values", v);
        REQUIRE(v.size() == n);
        REQUIRE(v.front() == v.back());
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("crash: training killed at a random step resumes bit-identically", "[crash]") {
    test::toy_config bigger;
    bigger.width = 48;
    bigger.layers = 6;
    bigger.context = 12;
    const std::uint64_t steps = 30;
    const auto start = std::chrono::steady_clock::now();
    const auto whole = test::train_toy<test::exact_dp>(test::toy_options(steps, bigger), bigger);
    const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);

    for (double when : {0.35, 0.7}) {
        const auto dir = fresh_dir("train");
        auto o = test::toy_options(steps, bigger);
        o.checkpoint_dir = dir;
        o.checkpoint_every = 1;
        run_and_kill(std::chrono::milliseconds(static_cast<long>(static_cast<double>(duration.count()) * when) + 1),
                     [&] { test::train_toy<test::exact_dp>(o, bigger); });
        o.resume = true;
        const auto resumed = test::train_toy<test::exact_dp>(o, bigger);
        INFO("killed after " << when << " of an uninterrupted run; resumed from step " << resumed.summary.first_step);
        REQUIRE(resumed.summary.steps == steps);
        for (std::size_t r = 0; r < whole.params.size(); ++r) REQUIRE(resumed.params[r] == whole.params[r]);
        std::filesystem::remove_all(dir);
    }
}
