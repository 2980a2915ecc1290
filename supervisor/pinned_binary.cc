#include "supervisor/pinned_binary.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace baton::supervisor {
namespace {

bool ReadAt(int fd, void* buf, size_t n, off_t at) {
  return ::pread(fd, buf, n, at) == static_cast<ssize_t>(n);
}

// The build id note inside one PT_NOTE segment, "" if none.
std::string BuildIdInNotes(int fd, off_t offset, uint64_t size) {
  constexpr uint64_t kMaxNotes = 64 * 1024;  // notes are tiny; never read a huge bogus segment
  if (size == 0 || size > kMaxNotes) return "";
  std::string notes(size, '\0');
  if (!ReadAt(fd, notes.data(), notes.size(), offset)) return "";
  const auto align4 = [](uint64_t v) { return (v + 3) & ~uint64_t{3}; };
  uint64_t pos = 0;
  while (pos + sizeof(Elf64_Nhdr) <= notes.size()) {
    Elf64_Nhdr h;
    std::memcpy(&h, notes.data() + pos, sizeof h);
    const uint64_t name_at = pos + sizeof h;
    const uint64_t desc_at = name_at + align4(h.n_namesz);
    const uint64_t next = desc_at + align4(h.n_descsz);
    if (next > notes.size() + 3 || desc_at + h.n_descsz > notes.size()) return "";
    if (h.n_type == NT_GNU_BUILD_ID && h.n_namesz == 4 && std::memcmp(notes.data() + name_at, "GNU", 4) == 0) {
      std::string hex;
      for (uint64_t i = 0; i < h.n_descsz; ++i) {
        hex += fmt::format("{:02x}", static_cast<unsigned char>(notes[desc_at + i]));
      }
      return hex;
    }
    pos = next;
  }
  return "";
}

}  // namespace

std::string ReadElfBuildId(int fd) {
  Elf64_Ehdr eh;
  if (!ReadAt(fd, &eh, sizeof eh, 0)) return "";
  // 64-bit little-endian ELF only: the machines baton runs on.
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 512) {
    return "";
  }
  for (uint16_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    if (!ReadAt(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph))) return "";
    if (ph.p_type != PT_NOTE) continue;
    if (auto id = BuildIdInNotes(fd, static_cast<off_t>(ph.p_offset), ph.p_filesz); !id.empty()) return id;
  }
  return "";
}

Result<std::shared_ptr<PinnedBinary>> PinnedBinary::Inherit(int fd, std::string path, std::vector<std::string> args,
                                                            std::string build_id, bool script) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error(Errc::kFailedPrecondition, fmt::format("pinned binary {}: fd {} is not an open regular file", path, fd));
  }
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return ErrnoError(fmt::format("pinned binary {}: FD_CLOEXEC", path), errno);
  auto pin = std::shared_ptr<PinnedBinary>(new PinnedBinary());
  pin->fd = fd;
  pin->path = std::move(path);
  pin->args = std::move(args);
  pin->build_id = std::move(build_id);
  pin->script = script;
  return pin;
}

PinnedBinary::~PinnedBinary() {
  if (fd >= 0) ::close(fd);
}

Result<std::shared_ptr<PinnedBinary>> PinnedBinary::Open(const std::string& path, std::vector<std::string> args) {
  if (path.empty()) return Error(Errc::kInvalidArgument, "binary: empty path");
  const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    const int err = errno;
    return Error(err == ENOENT ? Errc::kNotFound : err == EACCES ? Errc::kPermissionDenied : Errc::kFailedPrecondition,
                 fmt::format("binary {}: {}", path, std::strerror(err)));
  }
  const int fd = ::fcntl(raw, F_DUPFD_CLOEXEC, kPinnedFdFloor);
  const int dup_err = errno;
  ::close(raw);
  if (fd < 0) return ErrnoError(fmt::format("binary {}: pin", path), dup_err);
  std::shared_ptr<PinnedBinary> pin(new PinnedBinary());
  pin->fd = fd;
  pin->path = path;
  pin->args = std::move(args);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError(fmt::format("binary {}: fstat", path), errno);
  if (!S_ISREG(st.st_mode)) return Error(Errc::kFailedPrecondition, fmt::format("binary {}: not a regular file", path));
  // Execute permission of the pinned file itself (the path may change).
  if (::faccessat(fd, "", X_OK, AT_EMPTY_PATH) != 0 && (st.st_mode & 0111) == 0) {
    return Error(Errc::kPermissionDenied, fmt::format("binary {}: not executable", path));
  }
  char magic[2] = {};
  pin->script = ReadAt(fd, magic, 2, 0) && magic[0] == '#' && magic[1] == '!';
  pin->build_id = ReadElfBuildId(fd);
  return pin;
}

void PinHistory::Serving(std::shared_ptr<PinnedBinary> pin) {
  if (!pin) return;
  pins_.erase(std::remove(pins_.begin(), pins_.end(), pin), pins_.end());
  pins_.push_front(std::move(pin));
  while (pins_.size() > depth_) pins_.pop_back();
}

void PinHistory::Forget(const std::shared_ptr<PinnedBinary>& pin) {
  pins_.erase(std::remove(pins_.begin(), pins_.end(), pin), pins_.end());
}

}  // namespace baton::supervisor
