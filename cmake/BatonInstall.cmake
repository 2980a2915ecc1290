# What `cmake --install build --prefix P` puts under P: the baton CLI, the
# library (shared with a SONAME, and static), its public headers, baton.pc,
# the CMake package (imported target baton::baton), the man page, the docs
# and the systemd unit examples. debian/ packages exactly this tree.
#
# The version comes from project(baton VERSION ...) alone: the CLI, baton.pc,
# batonConfigVersion.cmake and the man page all derive from PROJECT_VERSION
# (tools/package checks debian/changelog against it).

include(BatonInstallDirs)  # already, from the top: the directories are set before any target uses them
include(CMakePackageConfigHelpers)

option(BATON_INSTALL_MAN "Generate the baton(1) man page with help2man (needs help2man)" ON)
set(BATON_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/baton")

# --- the CLI (the supervisor is the same executable) ---
install(TARGETS baton_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# --- the public headers: include/baton/*.h and nothing else ---
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/baton
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

# --- the library and its CMake package ---
if(TARGET libbaton)
  # Imported as baton::baton, the same name as the in-tree alias.
  set_target_properties(libbaton PROPERTIES EXPORT_NAME baton)
  install(TARGETS libbaton EXPORT batonTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  if(TARGET libbaton_static)
    install(TARGETS libbaton_static ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  endif()
  install(EXPORT batonTargets NAMESPACE baton:: DESTINATION ${BATON_CMAKE_DIR} FILE batonTargets.cmake)
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/batonConfig.cmake.in
    ${PROJECT_BINARY_DIR}/cmake/batonConfig.cmake
    INSTALL_DESTINATION ${BATON_CMAKE_DIR})
  # 0.x: a new minor version may break the API, so only the same minor matches.
  write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/batonConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
  install(FILES ${PROJECT_BINARY_DIR}/cmake/batonConfig.cmake ${PROJECT_BINARY_DIR}/cmake/batonConfigVersion.cmake
    DESTINATION ${BATON_CMAKE_DIR})
endif()

# --- files whose content names install paths: written at install time, so
# that `cmake --install --prefix P` gets P in them, not the configure-time
# prefix (baton.pc; the unit examples' path of the baton binary) ---
set(BATON_STAGE "${PROJECT_BINARY_DIR}/install-stage")
# What a static link of libbaton.a needs besides it (pkg-config --static).
# As plain -l flags rather than Requires.private: pkg-config resolves
# Requires.private even for --cflags, which would make every user of baton.pc
# install protobuf's and fmt's .pc files.
set(BATON_PC_LIBS_PRIVATE "-lprotobuf -lfmt -pthread -ldl")
set(BATON_PC_REQUIRES_PRIVATE "")
install(CODE "
  set(BATON_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(BATON_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(BATON_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(BATON_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(BATON_VERSION \"${PROJECT_VERSION}\")
  set(BATON_PC_LIBS_PRIVATE \"${BATON_PC_LIBS_PRIVATE}\")
  set(BATON_PC_REQUIRES_PRIVATE \"${BATON_PC_REQUIRES_PRIVATE}\")
  set(BATON_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
  set(BATON_STAGE \"${BATON_STAGE}\")
  include(\"${PROJECT_SOURCE_DIR}/cmake/BatonInstallStage.cmake\")
")
if(TARGET libbaton)
  install(FILES ${BATON_STAGE}/baton.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()
install(DIRECTORY ${BATON_STAGE}/systemd DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# --- docs ---
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)

# --- baton(1), from the CLI's own --help and every subcommand's ---
if(BATON_INSTALL_MAN)
  find_program(HELP2MAN help2man)
  if(NOT HELP2MAN)
    message(FATAL_ERROR "help2man not found: it writes the baton(1) man page. Install it (tools/setup installs "
                        "everything the build needs) or configure with -DBATON_INSTALL_MAN=OFF.")
  endif()
  set(BATON_MAN ${PROJECT_BINARY_DIR}/man/baton.1)
  add_custom_command(OUTPUT ${BATON_MAN}
    COMMAND ${CMAKE_COMMAND} -DBATON=$<TARGET_FILE:baton_cli> -DHELP2MAN=${HELP2MAN}
            -DVERSION=${PROJECT_VERSION} -DOUT=${BATON_MAN} -P ${PROJECT_SOURCE_DIR}/cmake/BatonManPage.cmake
    DEPENDS baton_cli ${PROJECT_SOURCE_DIR}/cmake/BatonManPage.cmake
    COMMENT "Writing the baton(1) man page"
    VERBATIM)
  add_custom_target(baton_man ALL DEPENDS ${BATON_MAN})
  install(FILES ${BATON_MAN} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()
