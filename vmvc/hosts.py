"""Which hosts a command covers: the local machine is the host named "local", every
`[[hosts]]` entry of the config is another one.

    [[hosts]]
    name = "lab1"
    libvirt_uri = "qemu+ssh://root@lab1/system?keyfile=/root/.ssh/vmvc&no_tty=1"
    docker_host = "ssh://root@lab1"

A host is a `HostSettings`: its name and the URIs its engines are reached at. The local host
gives none, so each engine uses its local default (the config's `libvirt_uri`, dockerd from
the environment); an engine that a `[[hosts]]` entry gives no URI for is not run there.
Pure logic: nothing here connects anywhere.
"""

from __future__ import annotations

from vmvc.config import Config, HostSettings

LOCAL_HOST = "local"


class HostError(Exception):
    """A host cannot be used as asked; one line naming the host and what is wrong."""


def local_host() -> HostSettings:
    return HostSettings(name=LOCAL_HOST)


def is_local(host: HostSettings | None) -> bool:
    """None is the local host too: a backend constructed without a host runs here."""
    return host is None or host.name == LOCAL_HOST


def configured_hosts(config: Config) -> dict[str, HostSettings]:
    """Every host the config knows, local first, by name."""
    hosts = {LOCAL_HOST: local_host()}
    for host in config.hosts:
        if host.name == LOCAL_HOST:
            raise HostError(f"host name '{LOCAL_HOST}' is reserved for this machine")
        if host.name in hosts:
            raise HostError(f"host '{host.name}' is listed twice in [[hosts]]")
        if not (host.libvirt_uri or host.docker_host):
            raise HostError(f"host '{host.name}' has neither libvirt_uri nor docker_host")
        hosts[host.name] = host
    return hosts


def choose_hosts(config: Config, names: list[str] | None) -> list[HostSettings]:
    """The hosts named (in the config's order, local first); default: every host."""
    hosts = configured_hosts(config)
    if not names:
        return list(hosts.values())
    unknown = [n for n in names if n not in hosts]
    if unknown:
        known = ", ".join(hosts)
        hint = "" if len(hosts) > 1 else "; add [[hosts]] to the config"
        raise HostError(f"unknown host '{unknown[0]}' (known: {known}{hint})")
    return [host for name, host in hosts.items() if name in names]


def choose_host(config: Config, name: str) -> HostSettings:
    """One host by name (`vmvc doctor --host NAME`, `vmvc clean --host NAME`)."""
    return choose_hosts(config, [name])[0]
