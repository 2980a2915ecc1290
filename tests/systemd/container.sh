# Sourced by systemd_e2e.sh: a minimal Debian 12 root (built once, cached)
# booted by systemd-nspawn, and the commands that run inside it.
#
# The container has its own network namespace (--private-network: only its
# own loopback) and a volatile overlay root, so the cached root stays as it
# was built and every run starts from the same state.

# Packages of the shared libraries `ldd` lists for these binaries.
runtime_packages() {
  local lib real pkg
  for lib in $(ldd "$@" | awk '$3 ~ /^\// {print $3}' | sort -u); do
    real=$(realpath "$lib")
    pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null) ||
      die "no Debian package ships $lib (needed by $*)"
    echo "${pkg%%:*}"
  done | sort -u
}

# What goes into the root: systemd as init plus the binaries' libraries.
root_packages() {
  { echo systemd systemd-sysv | tr ' ' '\n'; runtime_packages "$@"; } | sort -u | paste -sd, -
}

build_root() {  # build_root DIR PACKAGES
  mmdebstrap --quiet --variant=minbase --include="$2" bookworm "$1" ||
    die "mmdebstrap could not build a Debian 12 root (it uses this machine's apt sources)"
}

# The cached root for these packages: rebuilt when the package list, the
# candidate versions apt would install, or build_root itself change; roots
# of other keys are removed.
cached_root() {  # cached_root CACHE_DIR PACKAGES
  local cache=$1 packages=$2 key dir
  key=$( {
    echo "$packages"
    apt-cache policy $(tr , ' ' <<<"$packages") 2>/dev/null | grep -E '^[^ ]|Candidate'
    declare -f build_root
  } | sha256sum | cut -c1-16)
  dir="$cache/root-$key"
  if [[ ! -f "$dir/.complete" ]]; then
    mkdir -p "$cache"
    rm -rf "$cache"/root-*
    note "building the Debian 12 root ($packages) into $dir"
    build_root "$dir.tmp" "$packages"
    touch "$dir.tmp/.complete"
    mv "$dir.tmp" "$dir"
  fi
  echo "$dir"
}

CT_NSPAWN_PID=""
CT_PID=""

# Boots ROOT with systemd and waits until it is up. Extra arguments go to
# systemd-nspawn (bind mounts).
boot() {  # boot ROOT LOG [nspawn args...]
  local root=$1 log=$2
  shift 2
  # --keep-unit and --register=no: the host's PID 1 need not be systemd.
  systemd-nspawn --quiet --boot --keep-unit --register=no --private-network --volatile=overlay \
    --machine="baton-e2e-$$" --directory="$root" "$@" >"$log" 2>&1 </dev/null &
  CT_NSPAWN_PID=$!
  local deadline=$((SECONDS + 60))
  while [[ -z "$CT_PID" ]]; do
    kill -0 "$CT_NSPAWN_PID" 2>/dev/null || { cat "$log" >&2; die "systemd-nspawn exited before the container booted (log above): this machine cannot boot a container"; }
    ((SECONDS < deadline)) || die "the container did not start within 60 s"
    # The container's PID 1 is the child of systemd-nspawn that runs
    # systemd (a short-lived helper child comes first).
    local p
    for p in $(pgrep -P "$CT_NSPAWN_PID" || true); do
      [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == systemd ]] && CT_PID=$p
    done
    [[ -n "$CT_PID" ]] || sleep 0.1
  done
  local state=""
  while :; do
    state=$(ct systemctl is-system-running 2>/dev/null || true)
    [[ "$state" == running || "$state" == degraded ]] && break
    kill -0 "$CT_NSPAWN_PID" 2>/dev/null || { cat "$log" >&2; die "the container stopped while booting (log above)"; }
    ((SECONDS < deadline)) || { cat "$log" >&2; die "the container did not finish booting within 60 s (state: $state)"; }
    sleep 0.2
  done
}

# Powers the container off (and kills it if it does not go).
shutdown_container() {
  [[ -n "$CT_NSPAWN_PID" ]] || return 0
  if kill -0 "$CT_NSPAWN_PID" 2>/dev/null; then
    ct systemctl poweroff --no-block >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 20))
    while kill -0 "$CT_NSPAWN_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "$CT_NSPAWN_PID" 2>/dev/null || true
  fi
  wait "$CT_NSPAWN_PID" 2>/dev/null || true
  CT_NSPAWN_PID=""
}

# Runs a command inside the container (every namespace of its PID 1).
ct() { nsenter --target "$CT_PID" --all -- "$@"; }
