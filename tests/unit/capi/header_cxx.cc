// baton.h alone, as C++20 with only include/ on the path (see CMakeLists.txt).
#include <baton/baton.h>

int CapiHeaderCxxCheck();
int CapiHeaderCxxCheck() {
  baton_options o{};
  o.size = sizeof o;
  o.build_id = "x";
  baton_hooks h{};
  h.size = sizeof h;
  return static_cast<int>(o.size + h.size) + BATON_IO_ERROR;
}
