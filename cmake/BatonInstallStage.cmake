# Runs at install time (from BatonInstall.cmake's install(CODE)): writes the
# installed files whose content names the install prefix into BATON_STAGE, so
# that they follow `cmake --install --prefix P` rather than the prefix the
# build was configured with. The install() rules after it copy them.

# baton.pc. pkg-config prepends PKG_CONFIG_SYSROOT_DIR to these absolute paths,
# which is how a tree unpacked somewhere else (dpkg -x) is used.
set(prefix "${BATON_PREFIX}")
set(libdir "${BATON_LIBDIR}")
if(NOT IS_ABSOLUTE "${libdir}")
  set(libdir "\${prefix}/${libdir}")
endif()
set(includedir "${BATON_INCLUDEDIR}")
if(NOT IS_ABSOLUTE "${includedir}")
  set(includedir "\${prefix}/${includedir}")
endif()
set(version "${BATON_VERSION}")
set(libs_private "${BATON_PC_LIBS_PRIVATE}")
set(requires_private "${BATON_PC_REQUIRES_PRIVATE}")
configure_file("${BATON_SOURCE_DIR}/cmake/baton.pc.in" "${BATON_STAGE}/baton.pc.tmp" @ONLY)
file(READ "${BATON_STAGE}/baton.pc.tmp" pc)
string(REGEX REPLACE "\n[A-Za-z.]+: *\n" "\n" pc "${pc}")  # fields left empty
file(WRITE "${BATON_STAGE}/baton.pc" "${pc}")

# The systemd unit examples call the baton binary where it is installed.
set(bindir "${BATON_BINDIR}")
if(NOT IS_ABSOLUTE "${bindir}")
  set(bindir "${BATON_PREFIX}/${bindir}")
endif()
file(GLOB units "${BATON_SOURCE_DIR}/tools/systemd/*")
file(REMOVE_RECURSE "${BATON_STAGE}/systemd")
foreach(unit IN LISTS units)
  get_filename_component(name "${unit}" NAME)
  file(READ "${unit}" text)
  string(REPLACE "/usr/local/bin/baton " "${bindir}/baton " text "${text}")
  file(WRITE "${BATON_STAGE}/systemd/${name}" "${text}")
endforeach()
