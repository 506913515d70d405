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

# The agent as deployed (README "Deploy with Ansible"): Cargo.toml's `agent` profile, linked
# statically against musl, so it needs no particular C library on a host and maps no shared
# one (libc, libm and ld.so were ~1.5 MiB of its resident memory; issue 16). Needs musl-gcc
# (Debian's musl-tools, for ring's C and assembly) and Rust's musl target (rustup).
AGENT_TARGET=$(uname -m)-unknown-linux-musl
AGENT_BUILD=$CARGO_TARGET_DIR/$AGENT_TARGET/agent/fleet-agent
# build_agent: builds $AGENT_BUILD, installing what that needs first.
build_agent() {
  ensure_packages musl-tools
  if ! rustup target list --installed 2>/dev/null | grep -qx "$AGENT_TARGET"; then
    command -v rustup >/dev/null || { echo "the agent's build needs Rust's $AGENT_TARGET target: install rustup, or add the target to this toolchain" >&2; return 1; }
    echo "adding Rust's $AGENT_TARGET target (rustup target add)" >&2
    rustup target add "$AGENT_TARGET" >&2
  fi
  cargo build --locked -q --profile agent --target "$AGENT_TARGET" -p fleet-agent
}

# scripts/bench-agent --compare: the agent beside sysstat's sadc and Prometheus's node_exporter
# (both as Debian ships them), with chronyd as the loopback NTP server the agent measures.
COMPARE_PACKAGES=(sysstat prometheus-node-exporter chrony)
