#!/usr/bin/env bash
# Installs the Debian packages that layerdisk's tests and benchmarks use:
# the qcow2 and ext4 oracles (qemu-img, e2fsck, debugfs), QEMU for guest
# boots, and the OCI tools that build and serve test images.
set -euo pipefail

packages=(
  qemu-utils e2fsprogs fuse3
  qemu-system-x86 busybox-static
  umoci skopeo debootstrap docker-registry apache2-utils openssl
  zstd xz-utils attr acl libcap2-bin libarchive-tools
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if [[ $(id -u) -ne 0 ]]; then
  if ((${#missing[@]} > 0)); then
    echo "install-system-deps: missing Debian packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  exit 0
fi

# The package lists are refreshed even when nothing is missing, because the
# guest tests fetch the kernel package with apt-get download.
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if ((${#missing[@]} > 0)); then
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
