# cmake --install: headers, the static library, the recmap tool, a CMake
# package (find_package(recmap) -> recmap::recmap) and a pkg-config file.
include(CMakePackageConfigHelpers)

set(RECMAP_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/recmap)

install(TARGETS recmap EXPORT recmapTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/store/include/recmap
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")
install(TARGETS recmap_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(EXPORT recmapTargets
  NAMESPACE recmap::
  FILE recmapTargets.cmake
  DESTINATION ${RECMAP_CMAKE_DIR})
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/recmapConfig.cmake.in
  ${PROJECT_BINARY_DIR}/recmapConfig.cmake
  INSTALL_DESTINATION ${RECMAP_CMAKE_DIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/recmapConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/recmapConfig.cmake
  ${PROJECT_BINARY_DIR}/recmapConfigVersion.cmake
  DESTINATION ${RECMAP_CMAKE_DIR})

# Relocatable: the prefix is found from the .pc file's own directory, so
# `cmake --install --prefix anywhere` gives a working file.
file(RELATIVE_PATH RECMAP_PC_TO_PREFIX
  "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(${PROJECT_SOURCE_DIR}/cmake/recmap.pc.in
  ${PROJECT_BINARY_DIR}/recmap.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/recmap.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
