// Picking actions out of a pure session's output, for the session tests.
#pragma once

#include <variant>

#include "protocol/session.h"

namespace baton::testsupport {

template <class T>
const T* Find(const protocol::SessionActions& acts) {
  for (const auto& a : acts) {
    if (auto* p = std::get_if<T>(&a)) return p;
  }
  return nullptr;
}

inline const v1::Envelope* Sent(const protocol::SessionActions& acts) {
  auto* s = Find<protocol::SendAction>(acts);
  return s ? &s->env : nullptr;
}

}  // namespace baton::testsupport
