"""The libvirt backend's public face: the class its entry point names.

Everything libvirt-specific (domain XML, console, deadlines, storage pool, remote hosts,
the acceleration probe, lifecycle operations) lives in `vmvc.backends.libvirt_engine`; this
module only keeps the path the design card fixes and joins the engine with its lifecycle
operations.
"""

from vmvc.backends.libvirt_engine.backend import LibvirtBackend as LibvirtEngine
from vmvc.backends.libvirt_engine.operations import LibvirtOperations


class LibvirtBackend(LibvirtOperations, LibvirtEngine):
    """Guests booted from the shared image, with the lifecycle operations of local libvirt."""


__all__ = ["LibvirtBackend"]
