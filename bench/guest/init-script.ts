/**
 * The guest's /init, run by busybox sh as PID 1. It loads the modules listed
 * in /etc/layerdisk-modules, mounts the root that /job/env describes, runs
 * /job/command inside it with chroot and reports on the second serial port
 * (/dev/ttyS1), which carries nothing else:
 *
 *   LAYERDISK-RESULT 1 <ok|error> <exit status> <stdout bytes> <stderr bytes> <stage>\n
 *   <stdout bytes><stderr bytes>
 *
 * /job/env sets ROOT_TYPE (blk, virtiofs or none), ROOT_DEV, ROOT_FSTYPE,
 * ROOT_OPTIONS and VIRTIOFS_TAG. Files from the job archive appear inside
 * the root under /run/layerdisk, a tmpfs. The root is unmounted before the
 * report so every write has reached the disk when the host reads the result.
 */
export const COMMAND_START_MARKER = "LAYERDISK-COMMAND-START";
export const RESULT_MAGIC = "LAYERDISK-RESULT 1";

export const INIT_SCRIPT = `#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
: > /tmp/stdout
: > /tmp/stderr

report() {
  stty -F /dev/ttyS1 raw -echo
  {
    echo "${RESULT_MAGIC} $1 $2 $(wc -c < /tmp/stdout) $(wc -c < /tmp/stderr) $3"
    cat /tmp/stdout /tmp/stderr
  } > /dev/ttyS1
  poweroff -f
}

fail() {
  echo "layerdisk-init: $2" >> /tmp/stderr
  echo "layerdisk-init: $2" > /dev/console
  report error 255 "$1"
}

. /job/env || fail env "cannot read /job/env"

for module in $(cat /etc/layerdisk-modules); do
  insmod "/lib/modules/$module.ko" || fail modules "insmod $module failed"
done

wait_for_device() {
  tries=0
  while [ ! -b "$1" ]; do
    tries=$((tries + 1))
    [ "$tries" -gt 200 ] && return 1
    usleep 50000
  done
}

mkdir -p /newroot
case "$ROOT_TYPE" in
  blk)
    wait_for_device "$ROOT_DEV" || fail root "$ROOT_DEV did not appear within 10 s"
    mount -t "$ROOT_FSTYPE" -o "$ROOT_OPTIONS" "$ROOT_DEV" /newroot || fail root "mount $ROOT_DEV failed"
    ;;
  virtiofs)
    mount -t virtiofs -o "$ROOT_OPTIONS" "$VIRTIOFS_TAG" /newroot || fail root "mount -t virtiofs $VIRTIOFS_TAG failed"
    ;;
  none)
    ;;
  *)
    fail env "unknown ROOT_TYPE '$ROOT_TYPE'"
    ;;
esac

command_text=$(cat /job/command)

if [ "$ROOT_TYPE" = none ]; then
  mkdir -p /run/layerdisk
  cp -a /job/files/. /run/layerdisk/
  echo "${COMMAND_START_MARKER}"
  sh -c "$command_text" < /dev/null > /tmp/stdout 2>> /tmp/stderr
  report ok $? run
fi

mount -t devtmpfs devtmpfs /newroot/dev || fail root "the root has no /dev directory"
mount -t proc proc /newroot/proc || fail root "the root has no /proc directory"
mount -t sysfs sysfs /newroot/sys || fail root "the root has no /sys directory"
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || fail root "the root has no /run directory"
mkdir -p /newroot/run/layerdisk
cp -a /job/files/. /newroot/run/layerdisk/

echo "${COMMAND_START_MARKER}"
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \\
  chroot /newroot /bin/sh -c "$command_text" < /dev/null > /tmp/stdout 2>> /tmp/stderr
status=$?

umount /newroot/run /newroot/sys /newroot/proc /newroot/dev
sync
if ! umount /newroot; then
  mount -o remount,ro /newroot || fail unmount "cannot unmount or remount the root read-only"
fi
report ok "$status" run
`;
