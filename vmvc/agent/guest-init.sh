#!/bin/sh
# PID 1 of a vmvc VM after the initramfs switched to the (read-only) root disk.
# It mounts what the agent needs, serves commands on the serial console, then powers off.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sys /sys 2>/dev/null
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs -o mode=1777,size=64m tmpfs /tmp
# The data disk is where the I/O workload writes, like a container volume or a native dir.
[ -b /dev/vdb ] && mount -t ext4 -o noatime /dev/vdb /data
hostname vmvc-guest
echo "VMVC-USERSPACE"
# raw: no echo of the host's commands back to it and no CR/LF translation.
stty -F /dev/ttyS0 raw -echo 2>/dev/null
/opt/vmvc/agent serve < /dev/ttyS0 > /dev/ttyS0 2>&1
# Without ACPI power-off a halted guest stays "running": ask the kernel directly.
echo o > /proc/sysrq-trigger
sleep 10
