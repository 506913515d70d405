# Shared by scripts/demo and scripts/test: install what the build and tests need, and use one
# persistent target directory outside the clone so dependencies compile once per machine.
set -euo pipefail

FLEET_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/fleet-target}
# Link Debian's RocksDB (see README "Why the system RocksDB").
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine)
export ROCKSDB_LIB_DIR=${ROCKSDB_LIB_DIR:-/usr/lib/$multiarch}

# ensure_packages PKG...: installs the Debian packages that are missing.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  # Packages such as chrony and prometheus-alertmanager start their service on install; the
  # tests start their own instances on loopback, and a system chronyd could step the clock. A
  # temporary policy-rc.d (exit 101) tells Debian's maintainer scripts not to start anything.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod +x "$policy"
    made_policy=1
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$made_policy" = 1 ]; then "${sudo[@]}" rm -f "$policy"; fi
}

# Build needs: bindgen's libclang for the RocksDB bindings, and the RocksDB library itself.
BUILD_PACKAGES=(libclang-dev librocksdb-dev pkg-config)

# scripts/bench-agent --compare: the agent beside sysstat's sadc and Prometheus's node_exporter
# (both as Debian ships them), with chronyd as the loopback NTP server the agent measures.
COMPARE_PACKAGES=(sysstat prometheus-node-exporter chrony)
