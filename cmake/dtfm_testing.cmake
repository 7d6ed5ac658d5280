# Test registration helpers: unit tests (Catch2, one CTest entry per test case), MPI tests
# (through MPIEXEC_EXECUTABLE at several rank counts) and GPU tests (skipped without a device).

# Exit code a test returns to say "skipped, with the reason printed": CTest shows it as Skipped.
set(DTFM_SKIP_RETURN_CODE 77)

include(Catch)

# dtfm_add_unit_test(<name> SOURCES <files…> [LIBS <targets…>] [LABELS <labels…>])
function(dtfm_add_unit_test name)
    cmake_parse_arguments(arg "" "" "SOURCES;LIBS;LABELS" ${ARGN})
    add_executable(${name} ${arg_SOURCES})
    target_link_libraries(${name} PRIVATE dtfm_catch_main dtfm::dtfm ${arg_LIBS})
    dtfm_warnings(${name})
    catch_discover_tests(${name} TEST_PREFIX "${name}: " PROPERTIES LABELS "unit;${arg_LABELS}" TIMEOUT 120)
endfunction()

# Open MPI refuses to run as root and to run more ranks than cores unless told; both are the
# normal case on CI and developer containers. Other MPIs get no extra flags.
function(_dtfm_mpiexec_flags out)
    set(flags "")
    if(NOT DEFINED CACHE{DTFM_MPIEXEC_IS_OPEN_MPI})
        execute_process(COMMAND "${MPIEXEC_EXECUTABLE}" --version OUTPUT_VARIABLE v ERROR_VARIABLE v)
        if(v MATCHES "Open MPI|OpenRTE")
            set(DTFM_MPIEXEC_IS_OPEN_MPI ON CACHE INTERNAL "")
        else()
            set(DTFM_MPIEXEC_IS_OPEN_MPI OFF CACHE INTERNAL "")
        endif()
    endif()
    if(DTFM_MPIEXEC_IS_OPEN_MPI)
        list(APPEND flags --oversubscribe)
    endif()
    set(${out} ${flags} PARENT_SCOPE)
endfunction()

# dtfm_add_mpi_test(<name> SOURCES <files…> [RANKS <n…>] [LIBS <targets…>])
# Builds one program and registers "<name> (np N)" for every N, labelled mpi.
function(dtfm_add_mpi_test name)
    cmake_parse_arguments(arg "" "" "SOURCES;RANKS;LIBS" ${ARGN})
    if(NOT arg_RANKS)
        set(arg_RANKS 2 4)
    endif()
    add_executable(${name} ${arg_SOURCES})
    target_link_libraries(${name} PRIVATE dtfm_catch_mpi_main dtfm::mpi ${arg_LIBS})
    dtfm_warnings(${name})
    _dtfm_mpiexec_flags(extra)
    foreach(n IN LISTS arg_RANKS)
        add_test(NAME "${name} (np ${n})"
            COMMAND "${MPIEXEC_EXECUTABLE}" ${MPIEXEC_NUMPROC_FLAG} ${n} ${extra} ${MPIEXEC_PREFLAGS}
                    "$<TARGET_FILE:${name}>" ${MPIEXEC_POSTFLAGS})
        # A rank that hangs must fail the test, not the CI run. Open MPI's own allocations are
        # never freed (and come from plugins LeakSanitizer cannot name), so under the sanitizers
        # MPI tests check memory errors and undefined behaviour but not leaks; the unit tests
        # check leaks.
        set_tests_properties("${name} (np ${n})" PROPERTIES
            LABELS mpi TIMEOUT 180 PROCESSORS ${n}
            ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;ASAN_OPTIONS=detect_leaks=0:abort_on_error=1")
    endforeach()
endfunction()

# dtfm_add_gpu_test(<name> SOURCES <files…> [LIBS <targets…>])
# The program returns DTFM_SKIP_RETURN_CODE, after printing why, when no CUDA device is present.
function(dtfm_add_gpu_test name)
    cmake_parse_arguments(arg "" "" "SOURCES;LIBS" ${ARGN})
    add_executable(${name} ${arg_SOURCES})
    target_link_libraries(${name} PRIVATE dtfm::cuda ${arg_LIBS})
    # CMake 3.25 does not know nvcc's C++20 flag (CUDA_STANDARD 20 fails), so name it directly.
    target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>)
    add_test(NAME "${name}" COMMAND ${name})
    set_tests_properties("${name}" PROPERTIES LABELS gpu TIMEOUT 300 SKIP_RETURN_CODE ${DTFM_SKIP_RETURN_CODE})
endfunction()

function(dtfm_warnings target)
    if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
        target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wconversion -Werror>)
    endif()
endfunction()
