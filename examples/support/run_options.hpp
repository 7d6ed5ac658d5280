// The command-line flags dtfm-train and dtfm-demo share, each defined once (name, check, help).
// They come in groups so that each program keeps its own order of flags in --help.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>

#include "support/gpt_run.hpp"

namespace dtfm::examples {

// --stages, --replicas: the mesh.
inline void add_mesh_options(CLI::App& app, run_settings& s) {
    app.add_option("--stages", s.stages, "pipeline stages")->check(CLI::Range(1, 64));
    app.add_option("--replicas", s.replicas, "data-parallel replicas")->check(CLI::Range(1, 64));
}

// --micro-batches, --micro-batch: a step's batch.
inline void add_micro_batch_options(CLI::App& app, run_settings& s) {
    app.add_option("--micro-batches", s.microbatches, "micro-batches per step")->check(CLI::Range(1, 1024));
    app.add_option("--micro-batch", s.micro_batch, "sequences per micro-batch")->check(CLI::Range(1, 4096));
}

inline void add_transport_option(CLI::App& app, run_settings& s) {
    app.add_option("--transport", s.transport, "inproc or mpi")->check(CLI::IsMember({"inproc", "mpi"}));
}

inline void add_seed_option(CLI::App& app, run_settings& s) { app.add_option("--seed", s.seed, "model, data and corpus seed"); }

// Parses the command line; the exit status where the program ends here (--help, a bad flag).
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    return std::nullopt;
}

}  // namespace dtfm::examples
