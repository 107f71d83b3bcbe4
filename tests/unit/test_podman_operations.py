"""Podman's lifecycle operations without podman: the streamed calls, the rootfs import and
the container options, with a shell script standing in for the podman binary (the parsers
of podman's own output are tested on recorded output in test_podman_cli.py)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from vmvc.backends.base import InstanceSpec
from vmvc.backends.capabilities import Capability, Unsupported
from vmvc.backends.gvisor_engine.backend import GvisorBackend
from vmvc.backends.podman_engine import cli
from vmvc.backends.podman_engine.backend import PodmanBackend
from vmvc.backends.podman_engine.cli import Engine, PodmanError
from vmvc.backends.podman_engine.container import ENGINE_LABEL, create_argv
from vmvc.backends.podman_engine.images import image_labels, import_rootfs_as, temp_tag
from vmvc.backends.podman_engine.operations import PodmanDefinition, PodmanImage
from vmvc.config import load_config
from vmvc.image.build import Artefacts

RUN_ID = "20260101T000000Z-rec001"
IMAGE_ID = "4" * 64


def spec(tmp_path: Path, backend: str = "podman") -> InstanceSpec:
    return InstanceSpec(run_id=RUN_ID, name=f"vmvc-{RUN_ID}-{backend}-1", workdir=tmp_path / "w")


def fake_podman(monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """Every podman command runs `sh -c script podman ARGS...` instead ($1 is the verb)."""
    monkeypatch.setattr(Engine, "argv", lambda self, *args: ["sh", "-c", script, "podman", *args])


class Sink:
    """A write-only sink without a file descriptor, like the workload's counting writer."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(data)
        return len(data)


class FailingSource:
    def __init__(self, good: bytes) -> None:
        self.given = False
        self.good = good

    def read(self, size: int = -1) -> bytes:
        if self.given:
            raise OSError("decompressor died")
        self.given = True
        return self.good


def test_a_streamed_output_reaches_the_sink_in_chunks_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_podman(monkeypatch, "head -c 3000000 /dev/zero; echo progress >&2")
    sink = Sink()
    assert Engine().stream("save", "x", sink=sink) == ""
    assert sum(len(c) for c in sink.chunks) == 3_000_000
    assert len(sink.chunks) >= 3  # never held whole: 1 MiB pieces
    assert max(len(c) for c in sink.chunks) <= cli.CHUNK_BYTES


def test_a_source_is_fed_to_stdin_and_the_output_returned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_podman(monkeypatch, "wc -c")
    payload = b"x" * (cli.CHUNK_BYTES * 2 + 17)
    assert Engine().stream("load", source=io.BytesIO(payload)).strip() == str(len(payload))


def test_a_failing_streamed_command_is_one_line_with_podmans_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_podman(monkeypatch, "cat >/dev/null; echo warn >&2; echo 'Error: no space' >&2; exit 125")
    with pytest.raises(PodmanError) as caught:
        Engine().stream("load", source=io.BytesIO(b"archive"))
    assert str(caught.value) == "podman load failed: Error: no space"


def test_a_source_that_fails_fails_the_call_even_if_podman_would_succeed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fake reads to the end and succeeds: only the source's error says the stream was cut.
    fake_podman(monkeypatch, "cat >/dev/null; echo 'Loaded image: x'")
    with pytest.raises(OSError, match="decompressor died"):
        Engine().stream("load", source=FailingSource(b"half an archive"))


def test_a_streamed_command_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_podman(monkeypatch, "exec sleep 30")
    with pytest.raises(PodmanError, match="podman save did not finish within 1 s"):
        Engine().stream("save", sink=Sink(), timeout=1)


def test_the_rootfs_import_streams_the_tree_with_the_unique_file_at_the_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "os-release").write_text("ID=debian\n")
    unique = tmp_path / "unique"
    unique.mkdir()
    (unique / ".only-here").write_text("x\n")
    received, args_file = tmp_path / "received.tar", tmp_path / "args"
    fake_podman(
        monkeypatch, f'printf "%s\\n" "$@" > {args_file}; cat > {received}; echo {IMAGE_ID}'
    )
    labels = {"vmvc.run-id": RUN_ID, ENGINE_LABEL: "gvisor"}
    reference = temp_tag("vmvc-X-podman-1", "export")
    assert import_rootfs_as(Engine(), rootfs, reference, labels, unique) == IMAGE_ID
    with tarfile.open(received) as tar:
        names = {name.removeprefix("./") for name in tar.getnames()}
    assert {"etc/os-release", ".only-here"} <= names
    args = args_file.read_text().splitlines()
    assert args[0] == "import" and args[-2:] == ["-", "localhost/vmvc-x-podman-1:export"]
    assert f"LABEL {ENGINE_LABEL}=gvisor" in args and f"LABEL vmvc.run-id={RUN_ID}" in args


def test_an_import_from_a_failed_tar_is_an_error_and_its_image_is_removed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = tmp_path / "calls"
    fake_podman(monkeypatch, f'echo "$1 $*" >> {calls}; cat >/dev/null; echo {IMAGE_ID}')
    with pytest.raises(PodmanError, match=r"tar of the rootfs failed \(exit 2\)"):
        import_rootfs_as(Engine(), tmp_path / "missing", "localhost/t:x", {})
    verbs = [line.split()[0] for line in calls.read_text().splitlines()]
    assert verbs == ["import", "rmi"]  # the image made of a cut stream never stays


def test_an_import_that_prints_no_id_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "rootfs").mkdir()
    fake_podman(monkeypatch, "cat >/dev/null; echo 'Writing manifest'")
    with pytest.raises(PodmanError, match="podman import printed no image id"):
        import_rootfs_as(Engine(), tmp_path / "rootfs", "localhost/t:x", {})


def test_a_container_from_an_image_gets_every_option_a_rootfs_container_gets(
    tmp_path: Path,
) -> None:
    instance = spec(tmp_path)
    from_rootfs = create_argv(instance, Path("/cache/rootfs"))
    from_image = create_argv(instance, image="localhost/vmvc-x:provision")
    assert from_image[:-3] == from_rootfs[:-4]  # the same options, label for label
    assert from_image[-3:] == ["localhost/vmvc-x:provision", "/opt/vmvc/agent", "serve"]
    assert "--rootfs" not in from_image
    with pytest.raises(ValueError):
        create_argv(instance)
    with pytest.raises(ValueError):
        create_argv(instance, Path("/cache/rootfs"), "localhost/vmvc-x:provision")


def test_define_makes_a_clone_from_the_rootfs_overlay_or_a_container_from_the_image(
    tmp_path: Path,
) -> None:
    artefacts = Artefacts(image_id="abc", root=tmp_path)
    for backend in (PodmanBackend(load_config("quick")), GvisorBackend(load_config("quick"))):
        clone = backend.define(artefacts, spec(tmp_path, backend.name))
        assert isinstance(clone, PodmanDefinition)
        assert f"{artefacts.rootfs}:O" in clone.argv
        assert f"{ENGINE_LABEL}={backend.name}" in clone.argv  # whose it is, in podman's store
        assert clone.step("create") == "podman create (rootfs dir, overlay)"
        image = backend.derive_artefact(artefacts, spec(tmp_path, backend.name))
        assert isinstance(image, PodmanImage)
        assert image.labels[ENGINE_LABEL] == backend.name
        assert image.labels["vmvc.run-id"] == RUN_ID and "vmvc.controller" in image.labels
        made = backend.define(artefacts, spec(tmp_path, backend.name), image)
        assert isinstance(made, PodmanDefinition)
        assert "--rootfs" not in made.argv and made.argv[-3] == image.reference
        with pytest.raises(TypeError):
            backend.define(artefacts, spec(tmp_path, backend.name), object())  # type: ignore[arg-type]


def test_podman_and_gvisor_declare_the_lifecycle_operations_they_have() -> None:
    config = load_config("quick")
    podman, gvisor = PodmanBackend(config), GvisorBackend(config)
    lifecycle = {
        Capability.DERIVE_ARTEFACT,
        Capability.DEFINE,
        Capability.CLONE,
        Capability.ISOLATION_FACTS,
    }
    assert lifecycle | {Capability.EXPORT_IMPORT} <= podman.capabilities
    assert Capability.FULL_COPY not in podman.capabilities  # a clone is always a layer
    assert Capability.RECOVER in podman.capabilities  # podman's restart policy
    # gVisor's save and load would be podman's own again: not declared, and refused.
    assert gvisor.capabilities == podman.capabilities - {Capability.EXPORT_IMPORT}


def test_gvisor_refuses_export_import(tmp_path: Path) -> None:
    gvisor = GvisorBackend(load_config("quick"))
    with pytest.raises(Unsupported, match="gvisor has no export_import"):
        gvisor.porter(Artefacts(image_id="abc", root=tmp_path), spec(tmp_path, "gvisor"))


def test_image_labels_make_a_temporary_image_a_leftover_of_its_run() -> None:
    from vmvc.backends.container_labels import owned_leftover

    labels = image_labels(RUN_ID, "img", "gvisor")
    item = owned_leftover("image", "x", labels, set(), remove=lambda: None)
    assert item is not None and item.run_id == RUN_ID and not item.alive
    assert labels[ENGINE_LABEL] == "gvisor" and labels["vmvc.image-id"] == "img"
