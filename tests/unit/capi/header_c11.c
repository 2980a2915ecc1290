/* baton.h alone, as C11 with only include/ on the path: it must compile
 * warning-free under -Wall -Wextra -Werror -pedantic (see CMakeLists.txt). */
#include <baton/baton.h>

/* Every type and function is usable from C. */
int capi_header_c11_check(void);
int capi_header_c11_check(void) {
  baton_options o = {.size = sizeof o};
  baton_hooks h = {.size = sizeof h};
  baton_seal_report r = {.size = sizeof r};
  baton_sealed_state s = {.size = sizeof s};
  baton_log_fn log = 0;
  int (*create)(const baton_options*, baton_daemon**, baton_error**) = baton_create;
  (void)log;
  (void)create;
  return (int)(o.size + h.size + r.size + s.size) + BATON_OK + BATON_ROLE_SUCCESSOR + BATON_LEVEL_ERROR;
}
