"""LXC: system containers booting systemd from the image's system tree (vmvc.backends.lxc)."""
