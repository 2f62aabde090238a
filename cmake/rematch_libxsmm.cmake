# LIBXSMM ships static archives and no CMake or pkg-config metadata: this finds them and defines
# the imported target rematch::libxsmm. The build and the installed package config both use it,
# so consumers of rematch::runtime find the same archives (set LIBXSMM_ROOT to look elsewhere).
if(NOT TARGET rematch::libxsmm)
  find_package(Threads REQUIRED)
  find_path(LIBXSMM_INCLUDE_DIR libxsmm.h HINTS ${LIBXSMM_ROOT} PATH_SUFFIXES include REQUIRED)
  find_library(LIBXSMM_LIBRARY NAMES libxsmm.a xsmm HINTS ${LIBXSMM_ROOT} PATH_SUFFIXES lib REQUIRED)
  find_library(LIBXSMM_NOBLAS_LIBRARY NAMES libxsmmnoblas.a xsmmnoblas HINTS ${LIBXSMM_ROOT} PATH_SUFFIXES lib
               REQUIRED)
  add_library(rematch::libxsmm INTERFACE IMPORTED)
  set_target_properties(rematch::libxsmm PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${LIBXSMM_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${LIBXSMM_LIBRARY};${LIBXSMM_NOBLAS_LIBRARY};Threads::Threads;${CMAKE_DL_LIBS}")
endif()
