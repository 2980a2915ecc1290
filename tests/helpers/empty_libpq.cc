// A shared library named libpq.so.5 that has none of libpq's functions: put
// on LD_LIBRARY_PATH, it makes a process's dlopen("libpq.so.5") find a libpq
// it cannot use, as a test of how the lease reports a libpq it cannot load.
extern "C" int baton_empty_libpq() { return 0; }
