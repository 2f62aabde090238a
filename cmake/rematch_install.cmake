# `cmake --install` puts the libraries, the headers (under include/rematch/, mirroring the source
# tree) and the package config in place; find_package(rematch) then gives
#   rematch::scheduler  the solvers and the graph and schedule files (standard library, OpenMP,
#                       nlohmann-json)
#   rematch::runtime    the autodiff runtime, its LIBXSMM kernels and the model zoo (when built)
# Installed sources include each other as "scheduler/graph.hpp", hence include/rematch on the path
# next to include (where users write <rematch/scheduler/solver.hpp>).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(rematch_include_root ${CMAKE_INSTALL_INCLUDEDIR}/rematch)
set(rematch_config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/rematch)

add_library(rematch_scheduler_package INTERFACE)
set_target_properties(rematch_scheduler_package PROPERTIES EXPORT_NAME scheduler)
target_link_libraries(rematch_scheduler_package INTERFACE rematch_scheduler rematch_io)
add_library(rematch::scheduler ALIAS rematch_scheduler_package)
set(rematch_exported rematch_scheduler_package rematch_scheduler rematch_io rematch_file)
set(rematch_header_dirs scheduler)

if(TARGET rematch_models)
  add_library(rematch_runtime_package INTERFACE)
  set_target_properties(rematch_runtime_package PROPERTIES EXPORT_NAME runtime)
  target_link_libraries(rematch_runtime_package INTERFACE rematch_models)
  add_library(rematch::runtime ALIAS rematch_runtime_package)
  list(APPEND rematch_exported rematch_runtime_package rematch_models rematch_data rematch_autodiff rematch_kernels)
  list(APPEND rematch_header_dirs kernels autodiff models)
  set(REMATCH_PACKAGE_HAS_RUNTIME ON)
else()
  set(REMATCH_PACKAGE_HAS_RUNTIME OFF)
endif()

install(TARGETS ${rematch_exported} EXPORT rematchTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} ${rematch_include_root})
install(TARGETS rematch RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(dir ${rematch_header_dirs})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir} DESTINATION ${rematch_include_root}
          FILES_MATCHING PATTERN "*.hpp")
endforeach()

install(EXPORT rematchTargets NAMESPACE rematch:: DESTINATION ${rematch_config_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/rematchConfig.cmake.in
  ${PROJECT_BINARY_DIR}/rematchConfig.cmake INSTALL_DESTINATION ${rematch_config_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/rematchConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/rematchConfig.cmake ${PROJECT_BINARY_DIR}/rematchConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/rematch_libxsmm.cmake
        DESTINATION ${rematch_config_dir})
