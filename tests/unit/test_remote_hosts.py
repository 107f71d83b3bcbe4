"""Remote hosts without engines: host choice, backend selection rules, volume XML, sparse
upload sections (the real SSH path is tests/integration/test_remote.py)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vmvc.backends.libvirt_engine.pool import _hole, pool_xml, volume_xml
from vmvc.backends.libvirt_engine.remote import INSTANCE_VOLUME
from vmvc.config import load_config
from vmvc.remote import LOCAL_HOST, RemoteHostError, choose_hosts, select_remote


def _config(hosts: list[dict[str, str]], **overrides: object) -> object:
    return load_config("quick", overrides={"hosts": hosts, **overrides})


LAB = {"name": "lab1", "docker_host": "ssh://root@lab1", "libvirt_uri": "qemu+ssh://lab1/system"}
LAB2 = {"name": "lab2", "docker_host": "ssh://root@lab2"}


def test_default_is_this_machine_and_every_listed_host() -> None:
    local, hosts = choose_hosts(_config([LAB, LAB2]), None)  # type: ignore[arg-type]
    assert local is True
    assert [h.name for h in hosts] == ["lab1", "lab2"]


def test_named_hosts_only() -> None:
    local, hosts = choose_hosts(_config([LAB, LAB2]), ["lab2", "lab2"])  # type: ignore[arg-type]
    assert local is False and [h.name for h in hosts] == ["lab2"]
    local, hosts = choose_hosts(_config([LAB]), [LOCAL_HOST])  # type: ignore[arg-type]
    assert local is True and hosts == []


@pytest.mark.parametrize(
    ("hosts", "names", "message"),
    [
        ([LAB], ["lab9"], "unknown host 'lab9' (known: local, lab1"),
        ([{**LAB, "name": "local"}], None, "reserved"),
        ([LAB, LAB], None, "listed twice"),
        ([{"name": "bare"}], None, "neither libvirt_uri nor docker_host"),
    ],
)
def test_bad_host_lists_are_refused(
    hosts: list[dict[str, str]], names: list[str] | None, message: str
) -> None:
    with pytest.raises(RemoteHostError, match=message.replace("(", r"\(")):
        choose_hosts(_config(hosts), names)  # type: ignore[arg-type]


def test_native_and_unconfigured_engines_are_skipped_with_reasons() -> None:
    config = _config([LAB2], backends=["native", "libvirt"])
    run = select_remote(config, config.hosts[0], requested_all=True)  # type: ignore[attr-defined]
    assert run.backends == {}
    reasons = {s.backend: s.reason for s in run.skipped}
    assert reasons == {
        "native": "native runs on the local host only",
        "libvirt": "no libvirt_uri configured for this host",
    }
    assert {s.host for s in run.skipped} == {"lab2"}


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
    local, hosts = choose_hosts(config, None)
    assert local is True
    assert [(h.name, bool(h.libvirt_uri), bool(h.docker_host)) for h in hosts] == [
        ("lab1", True, True)
    ]
