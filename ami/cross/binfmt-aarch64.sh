#!/bin/bash
# Lets this x86_64 host run arm64 programs through qemu-user-static: registers qemu-aarch64 with
# binfmt_misc (mounting it if needed), as systemd-binfmt does on a booted host with
# qemu-user-static installed. For the arm64 tests that exec programs (ami/cross/build-deb.sh) and
# the arm64 image's chroot steps (ami/image-test/run.sh). No-op when already registered.
set -euo pipefail
[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] && exit 0
[[ -e /proc/sys/fs/binfmt_misc/register ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
echo "[binfmt] registered qemu-aarch64 with binfmt_misc"
