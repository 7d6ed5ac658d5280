# Configures, builds and runs the consumer project in a fresh folder; fails on any step.
# cmake -DMODE=find_package|add_subdirectory|fetchcontent -DWORK=dir -DCONSUMER_SOURCE=dir
#       -DDTFM_SOURCE=dir [-DPREFIX=dir] [-DWITH_MPI=ON -DMPIEXEC=mpiexec] [-DWITH_JSON=ON] [-DWITH_BLAS=ON]
#       -DGENERATOR=… -P run_consumer.cmake

function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    message("$ ${ARGN}\n${out}")
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "failed (${rc}): ${ARGN}")
    endif()
    set(last_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK}")
set(args -S "${CONSUMER_SOURCE}" -B "${WORK}" -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DDTFM_CONSUME=${MODE}" "-DDTFM_SOURCE_DIR=${DTFM_SOURCE}")
if(DEFINED PREFIX)
    # Only this prefix: the consumer must not find dtfm anywhere else by accident.
    list(APPEND args "-DCMAKE_PREFIX_PATH=${PREFIX}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
endif()
if(WITH_MPI)
    list(APPEND args -DDTFM_CONSUMER_MPI=ON)
endif()
if(WITH_JSON)
    list(APPEND args -DDTFM_CONSUMER_JSON=ON)
endif()
if(WITH_BLAS)
    list(APPEND args -DDTFM_CONSUMER_BLAS=ON)
endif()
run("${CMAKE_COMMAND}" ${args})
run("${CMAKE_COMMAND}" --build "${WORK}")

if(WITH_MPI)
    run("${CMAKE_COMMAND}" -E env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
        OMPI_MCA_rmaps_base_oversubscribe=1 "${MPIEXEC}" -n 2 "${WORK}/dtfm_consumer")
    string(REGEX MATCHALL "consumer ok" oks "${last_output}")
    list(LENGTH oks n)
    if(NOT n EQUAL 2)
        message(FATAL_ERROR "expected 'consumer ok' from 2 ranks, saw ${n}")
    endif()
else()
    run("${WORK}/dtfm_consumer")
    if(NOT last_output MATCHES "consumer ok")
        message(FATAL_ERROR "the consumer did not report success")
    endif()
endif()
