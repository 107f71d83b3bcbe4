"""The libvirt backend's public face: the class its entry point names.

Everything libvirt-specific (domain XML, console, deadlines, storage pool, remote hosts,
the acceleration probe) lives in `vmvc.backends.libvirt_engine`; this module only keeps the
path the design card fixes.
"""

from vmvc.backends.libvirt_engine.backend import LibvirtBackend

__all__ = ["LibvirtBackend"]
