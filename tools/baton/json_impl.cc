// Boost.JSON is header-only when its sources are compiled once per binary;
// this is the one place for the baton CLI.
#include <boost/json/src.hpp>
