#!/usr/bin/env bash
# vmvc's workload image is Debian: the rootfs comes from debootstrap and the guest kernel from
# Debian's archive through apt (`apt-cache depends linux-image-amd64`, `apt-get download`).
# A Debian host already has that archive in its apt sources, so this script does nothing there.
# On Ubuntu (a GitHub-hosted runner, for instance) it adds the Debian suite as an apt source
# that apt never installs from by itself (pin priority 1): vmvc can then look up and download
# the guest kernel, and finds the mirror for debootstrap, while the host stays Ubuntu.
# Idempotent; run as root.
set -euo pipefail

SUITE=${VMVC_SUITE:-bookworm}
MIRROR=${VMVC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SOURCES=/etc/apt/sources.list.d/vmvc-debian-guest.sources
PREFERENCES=/etc/apt/preferences.d/vmvc-debian-guest

# shellcheck source=/dev/null
. /etc/os-release
if [ "${ID:-}" = debian ]; then
  echo "debian-guest-source: a Debian host already has Debian's archive; nothing to add"
  exit 0
fi

host=${MIRROR#*://}
host=${host%%/*}
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q debian-archive-keyring debootstrap

cat >"$SOURCES" <<EOF
# Added by vmvc scripts/debian-guest-source.sh: the guest kernel and debootstrap mirror.
Types: deb
URIs: $MIRROR
Suites: $SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

cat >"$PREFERENCES" <<EOF
# Never upgrade or install host packages from Debian; vmvc only looks up and downloads.
Package: *
Pin: origin "$host"
Pin-Priority: 1
EOF

apt-get update -q
echo "debian-guest-source: $SUITE from $MIRROR added (pin priority 1)"
