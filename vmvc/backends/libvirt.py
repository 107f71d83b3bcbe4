"""The libvirt backends' public face: the classes their entry points name.

Everything libvirt-specific (domain XML, console, deadlines, storage pool, remote hosts,
the acceleration probe, lifecycle operations) lives in `vmvc.backends.libvirt_engine`; this
module only keeps the path the design card fixes and joins the engine with its lifecycle
operations. `libvirt` boots the minimal VM flavour, `libvirt-full` the full one (the same
image as a normal guest OS: systemd as PID 1, the agent a service; see vmvc.image.vmboot).
"""

from vmvc.backends.base import Availability
from vmvc.backends.capabilities import Capability
from vmvc.backends.libvirt_engine.backend import LibvirtBackend as LibvirtEngine
from vmvc.backends.libvirt_engine.operations import LibvirtOperations


class LibvirtBackend(LibvirtOperations, LibvirtEngine):
    """Guests booted from the shared image, with the lifecycle operations of local libvirt."""


class LibvirtFullBackend(LibvirtBackend):
    """The same guests booted as a normal guest OS: the image's system tree, systemd as
    PID 1, the agent started by `vmvc-agent.service`."""

    name = "libvirt-full"
    label = "full VM"
    flavour = "full"

    @property
    def capabilities(self) -> frozenset[Capability]:  # type: ignore[override]
        """A point on the isolation spectrum (start-up by phase, footprint, the steady
        workloads, isolation facts), not a second subject of the lifecycle claims: cloning,
        scaling or restarting a full guest is the minimal one's work plus the same boot
        (measured by start-up), and each lifecycle series costs dozens of boots under TCG."""
        return frozenset({Capability.ISOLATION_FACTS})

    def probe(self) -> Availability:
        if self.shipping is not None:
            # Another host's pool holds the minimal root disk under the image id only.
            return Availability(
                False, "the full VM flavour runs on the local libvirt only", offered=False
            )
        return super().probe()


__all__ = ["LibvirtBackend", "LibvirtFullBackend"]
