"""gVisor: the container's system calls answered by a user-space kernel (vmvc.backends.gvisor)."""
