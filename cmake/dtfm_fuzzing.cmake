# libFuzzer targets for every decoder of untrusted bytes. They need clang (libFuzzer is clang's),
# whatever compiler builds the rest, so each target is compiled by a custom command with
# -fsanitize=fuzzer,address,undefined; CTest runs each for DTFM_FUZZ_SECONDS (label fuzz),
# starting from a seed corpus of valid inputs that dtfm_fuzz_seeds writes.

set(DTFM_FUZZ_SECONDS 10 CACHE STRING "Seconds each fuzz target runs under CTest")

# Sets DTFM_FUZZ_CXX to a clang++ that links libFuzzer, or leaves it empty with a message.
function(dtfm_find_libfuzzer)
    find_program(DTFM_FUZZ_CXX_CANDIDATE NAMES clang++-14 clang++-15 clang++-16 clang++)
    set(DTFM_FUZZ_CXX "" PARENT_SCOPE)
    if(NOT DTFM_FUZZ_CXX_CANDIDATE)
        message(STATUS "dtfm: no clang++ found: fuzz targets disabled (apt-get install clang-14 libclang-rt-14-dev)")
        return()
    endif()
    set(probe_dir "${CMAKE_BINARY_DIR}/fuzz-probe")
    file(WRITE "${probe_dir}/probe.cpp"
        "#include <cstddef>\n#include <cstdint>\nextern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n")
    execute_process(
        COMMAND "${DTFM_FUZZ_CXX_CANDIDATE}" -std=c++20 -fsanitize=fuzzer,address,undefined
                "${probe_dir}/probe.cpp" -o "${probe_dir}/probe"
        RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
    if(rc EQUAL 0)
        set(DTFM_FUZZ_CXX "${DTFM_FUZZ_CXX_CANDIDATE}" PARENT_SCOPE)
        message(STATUS "dtfm: fuzz targets built with ${DTFM_FUZZ_CXX_CANDIDATE} (libFuzzer), ${DTFM_FUZZ_SECONDS} s each under CTest")
    else()
        message(STATUS "dtfm: ${DTFM_FUZZ_CXX_CANDIDATE} cannot link libFuzzer: fuzz targets disabled (apt-get install libclang-rt-14-dev)")
    endif()
endfunction()

# dtfm_add_fuzz_target(<name> SOURCE <file>): builds <name> and registers "fuzz <name>".
function(dtfm_add_fuzz_target name)
    cmake_parse_arguments(arg "" "SOURCE" "" ${ARGN})
    set(out "${CMAKE_CURRENT_BINARY_DIR}/bin/${name}")
    file(MAKE_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}/bin")
    set(source "${CMAKE_CURRENT_SOURCE_DIR}/${arg_SOURCE}")
    add_custom_command(OUTPUT "${out}"
        COMMAND "${DTFM_FUZZ_CXX}" -std=c++20 -O1 -g -fno-omit-frame-pointer
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
                "-I${PROJECT_SOURCE_DIR}/include" -MD -MF "${out}.d" "${source}" -o "${out}"
        DEPENDS "${source}" DEPFILE "${out}.d"
        COMMENT "Building fuzz target ${name} with ${DTFM_FUZZ_CXX}" VERBATIM)
    add_custom_target(${name} ALL DEPENDS "${out}")
    set(corpus "${CMAKE_BINARY_DIR}/fuzz-corpus/${name}")
    add_test(NAME "fuzz ${name}"
        COMMAND "${out}" -max_total_time=${DTFM_FUZZ_SECONDS} -seed=1 -rss_limit_mb=2048 -print_final_stats=1 "${corpus}")
    set_tests_properties("fuzz ${name}" PROPERTIES LABELS fuzz FIXTURES_REQUIRED dtfm_fuzz_corpus
        TIMEOUT 300 ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
endfunction()
