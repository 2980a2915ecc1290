# The install directories (GNUInstallDirs), set before any target refers to
# them (e.g. in $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>).
#
# On Debian (and derivatives) the library goes to the multiarch libdir for
# every prefix, not only for /usr as GNUInstallDirs would do:
# /usr/local/lib/<triplet> is on the default search path of both ld.so and
# pkg-config there.
include_guard(GLOBAL)
if(NOT DEFINED CMAKE_INSTALL_LIBDIR AND CMAKE_LIBRARY_ARCHITECTURE AND EXISTS /etc/debian_version)
  set(CMAKE_INSTALL_LIBDIR "lib/${CMAKE_LIBRARY_ARCHITECTURE}" CACHE PATH "Object code libraries (LIBDIR)")
endif()
include(GNUInstallDirs)
