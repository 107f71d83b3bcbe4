#!/usr/bin/env bash
# Idempotent host set-up for vmvc (Debian/Ubuntu, run as root):
#  1. install the host packages that are missing,
#  2. create .venv with vmvc installed (so .venv/bin/vmvc exists),
#  3. start dockerd (no bridge, no iptables), virtlogd and libvirtd if they do not answer.
# A daemon that already answers is never restarted or reconfigured.
# On a fresh host the Python environment is built (from PyPI) while apt installs the engines:
# only the packages libvirt-python compiles against are installed before it starts.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
# What .venv needs before pip runs (libvirt-python is compiled against libvirt-dev).
VENV_PACKAGES=(libvirt-dev pkg-config python3-venv python3-dev gcc)
PACKAGES=(
  "${VENV_PACKAGES[@]}"
  qemu-system-x86 qemu-utils libvirt-daemon-system
  debootstrap debian-archive-keyring busybox-static cpio e2fsprogs util-linux tar
  zstd  # the compressed export form of the portability workload (vmvc/bench/export_forms.py)
  bubblewrap  # the example plugin backend (examples/vmvc-bwrap) that `make test` installs
  tini  # reaps libvirtd's guests at once where pid 1 is not an init (see start_daemons)
  podman runsc  # the podman and gVisor backends (daemonless: nothing to start)
  lxc  # the system container backend (vmvc/backends/lxc_engine: lxc-start per container)
  libc6-dev
  openssh-server openssh-client tmux
)
# Keep an engine that is already installed (e.g. docker-ce on CI runners conflicts with docker.io).
command -v dockerd >/dev/null 2>&1 || PACKAGES+=(docker.io)
# Only for tests (the HTML report in a real browser, workflow linting); a host without them
# still benchmarks, so their absence is a warning, not a failure.
OPTIONAL_PACKAGES=(chromium shellcheck)

# A fresh private file (mktemp: O_EXCL, 0600), never a predictable /tmp name that another
# user could plant as a symlink for root to append to.
if [ -z "${SETUP_LOG:-}" ]; then
  SETUP_LOG=$(mktemp "${TMPDIR:-/tmp}/vmvc-setup.XXXXXXXX.log")
  # kept only when a step failed (its path is printed then)
  drop_log_if_ok() { local status=$?; [ "$status" -ne 0 ] || rm -f "$SETUP_LOG"; }
  trap drop_log_if_ok EXIT
fi
log() { printf 'setup: %s\n' "$*" >&2; }

quietly() { # run a noisy step; show its output only if it fails
  if ! "$@" >>"$SETUP_LOG" 2>&1; then
    log "failed: $* (last lines of $SETUP_LOG follow)"
    tail -n 25 "$SETUP_LOG" >&2
    return 1
  fi
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing_of() { # the packages among "$@" that are not installed
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      echo "$pkg"
    fi
  done
}

APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then
    quietly as_root apt-get update -q
    APT_UPDATED=1
  fi
  quietly as_root env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l \
    apt-get install -y -q "$@"
}

has_dpkg() { command -v dpkg-query >/dev/null 2>&1; }

install_venv_packages() {
  has_dpkg || return 0
  local missing
  mapfile -t missing < <(missing_of "${VENV_PACKAGES[@]}")
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} (needed to build .venv)"
    apt_install "${missing[@]}"
  fi
}

install_packages() {
  if ! has_dpkg; then
    log "not a Debian/Ubuntu host: install by hand: ${PACKAGES[*]}"
    return
  fi
  local missing optional
  mapfile -t missing < <(missing_of "${PACKAGES[@]}")
  mapfile -t optional < <(missing_of "${OPTIONAL_PACKAGES[@]}")
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    # The optional ones ride along in the same dpkg run (one run is much faster than
    # several); if that fails, the required ones alone decide.
    if [ "${#optional[@]}" -eq 0 ] || ! apt_install "${missing[@]}" "${optional[@]}"; then
      apt_install "${missing[@]}"
    fi
  fi
  mapfile -t optional < <(missing_of "${OPTIONAL_PACKAGES[@]}")
  for pkg in "${optional[@]}"; do
    log "installing $pkg (for the tests)"
    apt_install "$pkg" ||
      log "warning: $pkg could not be installed; the tests that need it will fail"
  done
}

python_for_venv() {
  # Prefer a python3 that has venv and headers (libvirt-python compiles against them).
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import venv' 2>/dev/null; then
      echo "$candidate"; return
    fi
  done
  echo python3
}

install_venv() {
  local stamp="$VENV/.vmvc-installed"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$(python_for_venv)" -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ ! -x "$VENV/bin/vmvc" ]; then
    log "installing vmvc and its dependencies into $VENV"
    quietly "$VENV/bin/pip" install -q --upgrade pip
    quietly "$VENV/bin/pip" install -q -e '.[dev]'
    "$VENV/bin/python" -c 'import vmvc, libvirt, docker' && touch "$stamp"
  fi
}

wait_for() { # seconds description command...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 $((seconds * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  log "$what did not come up within ${seconds}s"; return 1
}

start_daemons() {
  if ! timeout 10 docker info >/dev/null 2>&1; then
    log "starting dockerd (--bridge=none --iptables=false)"
    as_root bash -c 'nohup dockerd --bridge=none --iptables=false >/var/log/vmvc-dockerd.log 2>&1 &'
    wait_for 60 dockerd timeout 5 docker info
  fi
  if [ ! -S /run/libvirt/virtlogd-sock ] || ! pgrep -x virtlogd >/dev/null; then
    log "starting virtlogd"
    as_root virtlogd -d
  fi
  if ! timeout 10 virsh -c qemu:///system version >/dev/null 2>&1; then
    log "starting libvirtd"
    # libvirtd daemonizes each QEMU, so an exited guest is reaped by the nearest subreaper or
    # pid 1, and virDomainDestroy waits until the zombie is gone. Without systemd as pid 1
    # (a container, a CI sandbox) that can take seconds: measured here 1.4-2.0 s per VM
    # teardown under a sandbox init. `tini -s` reaps at once, as systemd would.
    if [ "$(cat /proc/1/comm 2>/dev/null)" != systemd ] && command -v tini >/dev/null 2>&1; then
      as_root bash -c 'nohup tini -s -- libvirtd >/var/log/vmvc-libvirtd.log 2>&1 &'
    else
      as_root libvirtd -d
    fi
    wait_for 60 libvirtd timeout 5 virsh -c qemu:///system version
  fi
}

install_venv_packages
# .venv (PyPI downloads, a compile) and the engines (apt) do not depend on each other.
VENV_LOG=$(mktemp /tmp/vmvc-setup-venv.XXXXXX)
install_venv >"$VENV_LOG" 2>&1 &
venv_job=$!
packages_ok=0
install_packages || packages_ok=$?
venv_ok=0
wait "$venv_job" || venv_ok=$?
cat "$VENV_LOG" >&2
rm -f "$VENV_LOG"
[ "$packages_ok" -eq 0 ] && [ "$venv_ok" -eq 0 ] || exit 1
start_daemons
log "ready: $VENV/bin/vmvc"
