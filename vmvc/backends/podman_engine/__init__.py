"""Podman: daemonless OCI containers from the shared rootfs (vmvc.backends.podman)."""
