/* Symbol visibility for libbaton's public API (C and C++). libbaton is built
 * with -fvisibility=hidden; what its headers mark BATON_EXPORT is the ABI. */
#ifndef BATON_EXPORT_H_
#define BATON_EXPORT_H_

#if defined(__GNUC__) || defined(__clang__)
#define BATON_EXPORT __attribute__((visibility("default")))
#else
#define BATON_EXPORT
#endif

#endif /* BATON_EXPORT_H_ */
