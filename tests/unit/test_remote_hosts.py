"""Hosts without engines: the local machine is a host, host choice, the one backend selection
path every host takes, volume XML, sparse upload sections (the real SSH path is
tests/integration/test_remote.py)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from contextlib import AbstractContextManager
from pathlib import Path
from types import SimpleNamespace

import pytest

from vmvc import selection
from vmvc.backends.base import Availability, Backend, Instance, InstanceSpec
from vmvc.backends.docker import DockerBackend
from vmvc.backends.libvirt import LibvirtBackend
from vmvc.backends.libvirt_engine.pool import _hole, pool_xml, volume_xml
from vmvc.backends.libvirt_engine.remote import INSTANCE_VOLUME
from vmvc.backends.native import NativeBackend
from vmvc.config import Config, HostSettings, load_config
from vmvc.hosts import LOCAL_HOST, HostError, choose_hosts, is_local, local_host
from vmvc.image.build import Artefacts
from vmvc.selection import record_hosts, select_host, select_hosts


def _config(hosts: list[dict[str, str]], **overrides: object) -> Config:
    return load_config("quick", overrides={"hosts": hosts, **overrides})


LAB = {"name": "lab1", "docker_host": "ssh://root@lab1", "libvirt_uri": "qemu+ssh://lab1/system"}
LAB2 = {"name": "lab2", "docker_host": "ssh://root@lab2"}


def test_the_local_machine_is_a_host_and_the_default_is_every_host() -> None:
    hosts = choose_hosts(_config([LAB, LAB2]), None)
    assert [h.name for h in hosts] == [LOCAL_HOST, "lab1", "lab2"]
    assert is_local(hosts[0]) and not any(is_local(h) for h in hosts[1:])
    # The local host names no URI: each engine uses its local default.
    assert hosts[0].libvirt_uri is None and hosts[0].docker_host is None


def test_named_hosts_only_in_the_configs_order() -> None:
    assert [h.name for h in choose_hosts(_config([LAB, LAB2]), ["lab2", "lab2"])] == ["lab2"]
    assert [h.name for h in choose_hosts(_config([LAB]), [LOCAL_HOST])] == [LOCAL_HOST]
    named = choose_hosts(_config([LAB, LAB2]), ["lab2", LOCAL_HOST])
    assert [h.name for h in named] == [LOCAL_HOST, "lab2"]


@pytest.mark.parametrize(
    ("hosts", "names", "message"),
    [
        ([LAB], ["lab9"], "unknown host 'lab9' (known: local, lab1"),
        ([], ["lab9"], "unknown host 'lab9' (known: local; add [[hosts]]"),
        ([{**LAB, "name": "local"}], None, "reserved"),
        ([LAB, LAB], None, "listed twice"),
        ([{"name": "bare"}], None, "neither libvirt_uri nor docker_host"),
    ],
)
def test_bad_host_lists_are_refused(
    hosts: list[dict[str, str]], names: list[str] | None, message: str
) -> None:
    with pytest.raises(HostError, match=message.replace("(", r"\(").replace("[", r"\[")):
        choose_hosts(_config(hosts), names)


def test_engines_a_host_does_not_offer_are_skipped_even_when_named() -> None:
    config = _config([LAB2], backends=["native", "libvirt"])
    run = select_host(config, config.hosts[0], requested_all=False)  # no connection made
    assert run.backends == {}
    reasons = {s.backend: s.reason for s in run.skipped}
    assert reasons == {
        "native": "native runs on the local host only",
        "libvirt": "no libvirt_uri configured for this host",
    }
    assert {s.host for s in run.skipped} == {"lab2"}


def test_each_engine_picks_its_remote_path_from_the_connection() -> None:
    """One class per engine: the host's URIs decide, constructing connects nowhere."""
    config = _config([LAB])
    lab = config.hosts[0]
    here = LibvirtBackend(config, local_host())
    assert here.uri == config.libvirt_uri and here.shipping is None
    there = LibvirtBackend(config, lab)
    assert there.uri == LAB["libvirt_uri"] and there.shipping is not None
    assert not DockerBackend(config, local_host()).remote
    assert DockerBackend(config, lab).remote
    assert DockerBackend(config).remote is False  # no host at all is this machine too
    assert NativeBackend(config, lab).probe().offered is False


HEALTH: dict[tuple[str, str], Availability] = {}


class FakeBackend(Backend):
    """A backend whose answer per host the test sets (pure selection logic, no engine)."""

    name = "fake"

    def __init__(self, config: Config, host: HostSettings | None = None) -> None:
        self.host = host or local_host()
        self.closed = False

    def probe(self) -> Availability:
        return HEALTH[(self.name, self.host.name)]

    def provision(
        self, artefacts: Artefacts, spec: InstanceSpec
    ) -> AbstractContextManager[Instance]:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


class OtherBackend(FakeBackend):
    name = "other"


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Config:
    classes: dict[str, type[Backend]] = {"fake": FakeBackend, "other": OtherBackend}
    monkeypatch.setattr(selection, "available_backend_classes", lambda: classes)
    # The config accepts only installed backends: these two are "installed" for this test.
    monkeypatch.setattr("vmvc.config.installed_backend_names", lambda: list(classes))
    HEALTH.clear()
    return _config([LAB], backends=["fake", "other"])


def test_one_selection_path_for_the_local_host_and_another(fakes: Config) -> None:
    ok = Availability(True, "answers")
    HEALTH.update({(n, h): ok for n in ("fake", "other") for h in (LOCAL_HOST, "lab1")})
    said: list[str] = []
    runs = select_hosts(fakes, choose_hosts(fakes, None), False, said.append)
    assert [(r.name, r.local, list(r.backends)) for r in runs] == [
        (LOCAL_HOST, True, ["fake", "other"]),
        ("lab1", False, ["fake", "other"]),
    ]
    # Each backend was constructed for its own host.
    assert [b.host.name for r in runs for b in r.backends.values()] == [  # type: ignore[attr-defined]
        LOCAL_HOST, LOCAL_HOST, "lab1", "lab1",
    ]  # fmt: skip
    doc = SimpleNamespace(environment={}, skipped=[])
    record_hosts(doc, runs)  # type: ignore[arg-type]
    assert doc.environment["benchmarked_hosts"] == [LOCAL_HOST, "lab1"]
    assert list(doc.environment["hosts"]) == [
        "lab1"
    ]  # this machine's environment is the document's


def test_a_named_backend_that_does_not_answer_stops_the_run_naming_the_host(
    fakes: Config,
) -> None:
    ok, down = Availability(True, "answers"), Availability(False, "down", "start it")
    HEALTH.update({("fake", LOCAL_HOST): ok, ("other", LOCAL_HOST): down})
    HEALTH.update({("fake", "lab1"): ok, ("other", "lab1"): down})
    with pytest.raises(HostError, match=r"^backend 'other' is not available: down; fix: start"):
        select_host(fakes, local_host(), requested_all=False)
    with pytest.raises(HostError, match=r"^host lab1: backend 'other' is not available"):
        select_host(fakes, fakes.hosts[0], requested_all=False)
    said: list[str] = []
    runs = select_hosts(fakes, choose_hosts(fakes, None), True, said.append)
    assert [list(r.backends) for r in runs] == [["fake"], ["fake"]]
    assert said == ["skipping backend other: down", "host lab1: skipping backend other: down"]


def test_a_host_where_nothing_answers_is_an_error_and_closes_what_it_opened(
    fakes: Config,
) -> None:
    down = Availability(False, "down")
    HEALTH.update({("fake", "lab1"): down, ("other", "lab1"): down})
    HEALTH.update({("fake", LOCAL_HOST): Availability(True, "answers")})
    HEALTH.update({("other", LOCAL_HOST): Availability(True, "answers")})
    with pytest.raises(HostError, match=r"host lab1: no backend is available \(fake: down"):
        select_hosts(fakes, choose_hosts(fakes, None), True, lambda _m: None)


def test_overlay_volume_xml_has_a_raw_backing_store_and_modern_qcow2() -> None:
    volume = ET.fromstring(
        volume_xml("vmvc-x-root.qcow2", 1234, "qcow2", backing="/pool/vmvc-image-a-base.raw")
    )
    assert volume.findtext("name") == "vmvc-x-root.qcow2"
    assert volume.findtext("capacity") == "1234"
    assert volume.findtext("allocation") == "0"
    assert volume.find("target/format").get("type") == "qcow2"  # type: ignore[union-attr]
    assert volume.findtext("target/compat") == "1.1"
    assert volume.findtext("backingStore/path") == "/pool/vmvc-image-a-base.raw"
    raw = ET.fromstring(volume_xml("a&b", 1, "raw", mode="0444"))
    assert raw.findtext("name") == "a&b"
    assert raw.find("target/compat") is None
    assert raw.findtext("target/permissions/mode") == "0444"
    assert ET.fromstring(pool_xml()).findtext("target/path") == "/var/lib/vmvc/pool"


def test_hole_handler_reports_data_and_holes(tmp_path: Path) -> None:
    path = tmp_path / "sparse.raw"
    block = 1 << 20
    with open(path, "wb") as handle:
        handle.truncate(4 * block)
        handle.seek(2 * block)
        handle.write(b"x" * block)
    if path.stat().st_blocks * 512 >= 4 * block:
        pytest.skip("this filesystem does not keep holes")
    fd = os.open(path, os.O_RDONLY)
    try:
        sections = []
        offset = 0
        while offset < 4 * block:
            in_data, length = _hole(None, fd)  # type: ignore[arg-type]
            assert os.lseek(fd, 0, os.SEEK_CUR) == offset  # the handler does not move
            sections.append((in_data, length))
            offset = os.lseek(fd, int(length), os.SEEK_CUR)  # type: ignore[call-overload]
    finally:
        os.close(fd)
    assert sections == [(False, 2 * block), (True, block), (False, block)]


def test_instance_volumes_name_their_run() -> None:
    match = INSTANCE_VOLUME.match("vmvc-20261129T121225Z-9b73b9-libvirt-3-root.qcow2")
    assert match and match.group(2) == "20261129T121225Z-9b73b9"
    assert INSTANCE_VOLUME.match("vmvc-image-73eebf467e96db51-base.raw") is None
    assert INSTANCE_VOLUME.match("vmvc-data-ext4-1024M.raw") is None


def test_the_remote_hosts_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "configs" / "remote-hosts.toml"
    config = load_config(None, example)
    hosts = choose_hosts(config, None)
    assert [(h.name, bool(h.libvirt_uri), bool(h.docker_host)) for h in hosts] == [
        (LOCAL_HOST, False, False),
        ("lab1", True, True),
    ]


def test_libvirt_check_fails_when_virtlogd_is_missing_here_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """libvirtd answers without virtlogd, yet no domain can start: the backend's own doctor
    line says so (the interactive prompt reads that line); another host's is not this
    machine's virtlogd."""
    from vmvc.backends.libvirt_engine import checks

    answered = Availability(True, "libvirt at qemu:///system, QEMU 7.2")  # recorded real output
    monkeypatch.setattr(LibvirtBackend, "probe", lambda self: answered)
    monkeypatch.setattr(checks, "VIRTLOGD_SOCKET", tmp_path / "no-virtlogd-sock")
    found = LibvirtBackend(_config([]), local_host()).checks(False, lambda _m: None)
    assert (found[0].name, found[0].status, found[0].fix) == (
        "backend libvirt",
        "fail",
        "virtlogd -d",
    )
    assert "cannot start" in found[0].detail
    (tmp_path / "no-virtlogd-sock").touch()
    found = LibvirtBackend(_config([]), local_host()).checks(False, lambda _m: None)
    assert found[0].status == "ok"
