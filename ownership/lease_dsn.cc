#include "ownership/lease_dsn.h"

#include <algorithm>
#include <charconv>
#include <regex>

#include <fmt/format.h>

#include "ownership/libpq.h"

namespace baton::ownership {
namespace {

// The secret parts of a DSN as written: a URI's password (userinfo or a
// `password` query parameter) and a `password=` keyword's value, each also
// percent-decoded. libpq's parse errors quote fragments of the DSN (e.g.
// `invalid percent-encoded token: "<password>"`), so every one of these is
// masked wherever it appears, not only the DSN as a whole.
std::vector<std::string> SecretParts(const std::string& dsn) {
  std::vector<std::string> raw;
  static const std::regex kUri(R"(^postgres(ql)?://([^@/]*)@)");
  static const std::regex kQueryPassword(R"([?&]password=([^&]*))");
  static const std::regex kKeyPassword(R"(password\s*=\s*('((?:[^'\\]|\\.)*)'?|\S+))");
  std::smatch m;
  if (std::regex_search(dsn, m, kUri)) {
    const std::string userinfo = m[2].str();
    if (const auto colon = userinfo.find(':'); colon != std::string::npos) raw.push_back(userinfo.substr(colon + 1));
  }
  for (auto it = std::sregex_iterator(dsn.begin(), dsn.end(), kQueryPassword); it != std::sregex_iterator(); ++it) {
    raw.push_back((*it)[1].str());
  }
  for (auto it = std::sregex_iterator(dsn.begin(), dsn.end(), kKeyPassword); it != std::sregex_iterator(); ++it) {
    raw.push_back((*it)[2].matched ? (*it)[2].str() : (*it)[1].str());
  }
  std::vector<std::string> out;
  for (const auto& r : raw) {
    if (r.empty()) continue;
    out.push_back(r);
    std::string decoded;
    for (size_t i = 0; i < r.size(); ++i) {
      uint8_t byte = 0;
      const char* hex = r.data() + i + 1;
      if (r[i] == '%' && i + 2 < r.size() && std::from_chars(hex, hex + 2, byte, 16).ptr == hex + 2) {
        decoded.push_back(static_cast<char>(byte));
        i += 2;
      } else {
        decoded.push_back(r[i]);
      }
    }
    if (decoded != r && !decoded.empty()) out.push_back(decoded);
  }
  // Longest first, so a secret containing another is masked whole.
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

std::string RedactDsnSecrets(const std::string& dsn, std::string text) {
  const std::vector<std::string> secrets = SecretParts(dsn);
  // A quoted fragment that is a piece of a secret is a piece of the secret.
  static const std::regex kQuoted(R"re("([^"]*)")re");
  std::string quoted_masked;
  auto last = text.cbegin();
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kQuoted); it != std::sregex_iterator(); ++it) {
    const std::string inner = (*it)[1].str();
    const bool piece = !inner.empty() && std::any_of(secrets.begin(), secrets.end(), [&](const std::string& sec) {
      return sec.find(inner) != std::string::npos;
    });
    quoted_masked.append(last, (*it)[0].first);
    quoted_masked += piece ? std::string("\"***\"") : (*it)[0].str();
    last = (*it)[0].second;
  }
  quoted_masked.append(last, text.cend());
  text = std::move(quoted_masked);
  for (const auto& sec : secrets) {
    for (auto at = text.find(sec); at != std::string::npos; at = text.find(sec, at + 3)) text.replace(at, sec.size(), "***");
  }
  return text;
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> BuildConnInfo(const StoreSettings& s) {
  // The lease's first use of libpq (MakeLeaseConfig, so Daemon::Create): a
  // daemon configured with a lease fails its start here if libpq is missing.
  auto lib = LoadLibpq();
  if (!lib) return lib.error();
  const Libpq& pq = **lib;
  char* err = nullptr;
  PQconninfoOption* opts = pq.PQconninfoParse(s.dsn.c_str(), &err);
  if (opts == nullptr) {
    std::string msg = err != nullptr ? err : "out of memory";
    if (err != nullptr) pq.PQfreemem(err);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    // libpq quotes the offending text, which may be (a piece of) a password.
    return Error(Errc::kInvalidArgument, fmt::format("lease DSN: {}", RedactDsnSecrets(s.dsn, msg)));
  }
  std::vector<std::pair<std::string, std::string>> out;
  std::string options;
  bool has_app_name = false;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string key = o->keyword;
    if (key == "options") {
      options = o->val;
      continue;
    }
    if (key == "application_name") has_app_name = true;
    out.emplace_back(key, o->val);
  }
  pq.PQconninfoFree(opts);
  // Server-side bounds, so a statement or transaction abandoned by a
  // client that gave up cannot hold the row for long; the server also
  // notices a vanished client during a long statement.
  // search_path: the statements name public.baton_lease, and nothing else
  // is searched, so objects other roles create (a baton_lease in a schema
  // named after our role, an operator in public) cannot stand in for ours.
  options += fmt::format(
      " -c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}"
      " -c client_connection_check_interval=500 -c search_path=pg_catalog,pg_temp",
      ToMillis(s.statement_timeout), ToMillis(s.lock_timeout), ToMillis(s.idle_in_transaction_timeout));
  out.emplace_back("options", options);
  if (!has_app_name && !s.application_name.empty()) out.emplace_back("application_name", s.application_name);
  // Dead peers are noticed by the kernel too, not only by our deadlines.
  out.emplace_back("keepalives_idle", "5");
  out.emplace_back("keepalives_interval", "2");
  out.emplace_back("keepalives_count", "3");
  return out;
}

}  // namespace baton::ownership
