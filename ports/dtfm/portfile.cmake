# vcpkg overlay port for dtfm, built from the checkout that holds it.
#
# dtfm has no tagged release yet, so the sources are this repository: ports/dtfm/ sits two
# folders below the root. Once a release is tagged, replace the SOURCE_PATH lines with
#
#   vcpkg_from_github(
#       OUT_SOURCE_PATH SOURCE_PATH
#       REPO <owner>/dtfm
#       REF "v${VERSION}"
#       SHA512 <sha512 of the release archive>   # vcpkg prints it when given 0
#       HEAD_REF main)
#
# (or vcpkg_from_git with URL and REF for a repository outside GitHub), and drop the note
# about rebuilding below. Nothing else in this file changes.
#
# vcpkg hashes the port files, not this source tree, to decide whether a cached build is
# current: after changing the sources, `vcpkg remove dtfm` (or install with
# --no-binarycaching) so the port is rebuilt.
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
if(NOT EXISTS "${SOURCE_PATH}/CMakeLists.txt" OR NOT EXISTS "${SOURCE_PATH}/include/dtfm")
    message(FATAL_ERROR "The dtfm overlay port must stay in <dtfm checkout>/ports/dtfm; "
                        "no dtfm sources at ${SOURCE_PATH}")
endif()

# Header-only: one (release) configuration is all there is to install.
set(VCPKG_BUILD_TYPE release)

# The project's DTFM_WITH_MPI / DTFM_WITH_CUDA / DTFM_WITH_BLAS take AUTO, ON or OFF. A requested feature gives ON
# (configure fails if the dependency is missing); an absent one gives OFF, never AUTO, so the
# package does not depend on whatever MPI, CUDA or BLAS happens to be on the build machine.
vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
    FEATURES
        mpi     DTFM_WITH_MPI
        cuda    DTFM_WITH_CUDA
        blas    DTFM_WITH_BLAS
)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        ${FEATURE_OPTIONS}
        -DDTFM_BUILD_TESTS=OFF
        -DDTFM_BUILD_BENCHMARKS=OFF
        -DDTFM_BUILD_EXAMPLES=OFF
        -DDTFM_INSTALL=ON
        # vcpkg expects a package's CMake config in share/<port>, not share/cmake/<port>.
        -DDTFM_INSTALL_CMAKEDIR=share/dtfm
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME dtfm CONFIG_PATH share/dtfm)

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug")
# The README and LICENSE the project installs for itself; vcpkg's copyright file replaces them.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/doc")
# An INTERFACE library installs nothing in lib/; remove the folder if anything left it empty.
if(IS_DIRECTORY "${CURRENT_PACKAGES_DIR}/lib")
    file(GLOB_RECURSE _dtfm_lib_files "${CURRENT_PACKAGES_DIR}/lib/*")
    if(NOT _dtfm_lib_files)
        file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/lib")
    endif()
endif()

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
