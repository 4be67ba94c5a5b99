#!/usr/bin/env bash
# Builds the OCI test images (Debian minbase, python, zstd and edge-case
# layers, with reference unpacks) into $LAYERDISK_TESTDATA, by default
# /var/cache/layerdisk-testdata. Images already built are kept. Needs root
# and about 2 minutes on 2 cores the first time.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
make_images=${LAYERDISK_MAKE_IMAGES:-$repo/../shared/testdata/make-images}
output=${LAYERDISK_TESTDATA:-/var/cache/layerdisk-testdata}

if [[ ! -x $make_images ]]; then
  echo "testdata: $make_images not found; set LAYERDISK_MAKE_IMAGES to the make-images script" >&2
  exit 1
fi
mkdir -p "$output"
"$make_images" "$output"
