"""Portability's export forms: packing, keys, catalogue order, statistics and report rows.

Each form (uncompressed, compressed by the same compressor on every backend) must stay a
metric group of its own from the sample to the report: a compressed size pooled with, or
divided by, an uncompressed one is the mistake issue 13 found in C06.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from vmvc import catalogue, stats
from vmvc.backends.libvirt_engine import bundle
from vmvc.backends.libvirt_engine.domain_xml import DomainDisk, DomainSpec, domain_xml
from vmvc.bench import export_forms
from vmvc.bench.export_forms import COMPRESSED, FORMS, UNCOMPRESSED, reading, writing
from vmvc.keys import display, metric_key, split_form, split_key
from vmvc.orchestrate import reanalyse
from vmvc.proc import ToolError
from vmvc.report import render

STREAM = b"vmvc portable export " * 5000


def test_a_form_is_a_metric_key_of_its_own() -> None:
    assert metric_key("export_bytes", {"form": "compressed"}) == "export_bytes@compressed"
    assert metric_key("export_bytes", {"form": "uncompressed"}) == "export_bytes@uncompressed"
    # An older vmvc's description of the form is no form: the key stays the metric.
    assert metric_key("export_bytes", {"form": "qcow2, zlib-compressed"}) == "export_bytes"
    assert metric_key("all_ready_s", {"n": 3, "form": "compressed"}) == "all_ready_s@N=3"
    assert split_key("export_bytes@compressed") == ("export_bytes", None)
    assert split_form("export_bytes@compressed") == ("export_bytes", "compressed")
    assert split_form("all_ready_s@N=3") == ("all_ready_s@N=3", None)
    assert display("export_s@uncompressed") == "export_s (uncompressed)"
    assert display("all_ready_s@N=3") == "all_ready_s (N=3)"


def test_the_catalogue_lists_the_forms_the_workload_exports_uncompressed_first() -> None:
    portability = catalogue.workload("portability")
    assert portability is not None
    assert portability.forms == tuple(form.name for form in FORMS)
    assert portability.forms[0] == "uncompressed"
    forms = ["compressed", "zzz", "uncompressed", None]
    ranked = sorted(forms, key=lambda f: catalogue.form_rank("portability", f))
    assert ranked == [None, "uncompressed", "compressed", "zzz"]


def test_the_compressed_form_records_its_compressor_and_level() -> None:
    assert UNCOMPRESSED.metadata()["compressor"] == "none"
    assert COMPRESSED.metadata() == {
        "form": "compressed",
        "compressor": "zstd",
        "compression_level": 3,
        "compression_threads": 1,
    }


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.name)
def test_each_form_gives_back_the_engines_plain_stream(tmp_path: Path, form) -> None:
    archive = tmp_path / f"export{form.suffix}"
    with writing(archive, form) as sink:
        sink.write(STREAM[:7])
        sink.write(STREAM[7:])
    assert sink.count == len(STREAM)
    on_disk = archive.read_bytes()
    assert (on_disk == STREAM) == (form.compressor is None)
    if form.compressor:
        assert on_disk[:4] == b"\x28\xb5\x2f\xfd"  # zstd's frame magic
        assert len(on_disk) < len(STREAM) / 10
    with reading(archive, form) as source:
        assert source.read(3) + source.read() == STREAM


def test_a_reader_that_stops_early_still_ends_the_decompressor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tar stops reading at its end marker; the rest of the stream (more than a pipe holds)
    # must not leave the decompressor blocked on a full pipe.
    monkeypatch.setattr(export_forms, "_FINISH_TIMEOUT_S", 5)
    archive = tmp_path / "export.zst"
    with writing(archive, COMPRESSED) as sink:
        sink.write(STREAM)
    assert len(STREAM) > 2**16  # more than a Linux pipe buffers
    with reading(archive, COMPRESSED) as source:
        assert source.read(100) == STREAM[:100]


def test_a_damaged_compressed_export_fails_the_import(tmp_path: Path) -> None:
    archive = tmp_path / "export.zst"
    with writing(archive, COMPRESSED) as sink:
        sink.write(STREAM)
    archive.write_bytes(archive.read_bytes()[:-8])  # truncated in transit
    with pytest.raises(ToolError, match="decompressing"), reading(archive, COMPRESSED) as source:
        source.read()


def _portability_doc(build_doc):
    return build_doc(
        {
            "libvirt": {
                "portability/export_bytes@uncompressed": [2.0e8, 2.1e8, 2.0e8, 2.05e8],
                "portability/export_bytes@compressed": [7.0e7, 7.1e7, 7.0e7, 7.05e7],
            },
            "docker": {
                "portability/export_bytes@uncompressed": [1.9e8, 1.95e8, 1.9e8, 1.92e8],
                "portability/export_bytes@compressed": [7.2e7, 7.3e7, 7.2e7, 7.25e7],
            },
        },
        accel="kvm",
        metadata={
            f"{b}:portability/export_bytes@compressed": {
                "compressor": "zstd",
                "compression_level": 3,
                "compression_threads": 1,
                "holds": f"{b} things",
            }
            for b in ("docker", "libvirt")
        },
    )


def test_statistics_keep_the_forms_apart(build_doc) -> None:
    doc = _portability_doc(build_doc)
    summarized = stats.summarize(doc)
    keys = {(s.backend, s.metric) for s in summarized.summaries}
    assert keys == {
        (b, f"export_bytes@{f}")
        for b in ("docker", "libvirt")
        for f in ("uncompressed", "compressed")
    }
    for form in ("uncompressed", "compressed"):
        summary = summarized.summary("libvirt", "portability", f"export_bytes@{form}")
        assert summary is not None and summary.n == 4
        ratio = summarized.ratio("libvirt", "docker", "portability", f"export_bytes@{form}")
        assert ratio is not None and 0.9 < ratio.ratio < 1.1  # like with like


def test_the_report_shows_one_row_per_form_uncompressed_first(build_doc) -> None:
    doc = _portability_doc(build_doc)
    reanalyse(doc)
    text = render(doc, "md")
    rows = [line for line in text.splitlines() if line.startswith("| export\\_bytes")]
    assert [row.split(" | ")[0] for row in rows] == [
        "| export\\_bytes (uncompressed)",
        "| export\\_bytes (compressed)",
    ]
    assert all("\N{EM DASH}" not in row for row in rows)  # both backends, both forms
    assert "Form compressed: zstd level 3, 1 thread, the same for every backend." in text
    assert "Form uncompressed: no compression, the same for every backend." in text
    assert "holds: libvirt things" in text


def test_the_charts_have_one_bar_per_form(build_doc) -> None:
    doc = _portability_doc(build_doc)
    reanalyse(doc)
    html = render(doc, "html")
    assert '"x":["export_bytes (uncompressed)","export_bytes (compressed)"]' in html


# -- the VM bundle (libvirt engine): pure tar and XML logic, no daemon --------------------


def _domain(directory: Path) -> str:
    return domain_xml(
        DomainSpec(
            name="vmvc-test-libvirt-1",
            run_id="test",
            owner_pid=1,
            domain_type="qemu",
            vcpus=1,
            memory_mib=512,
            kernel=directory / "vmlinuz",
            initrd=directory / "initrd.img",
            cmdline="console=ttyS0 vmvc.run=test",
            disks=[DomainDisk(directory / "disk.qcow2", "qcow2", "vda")],
            console_log=directory / "console.log",
            firmware=directory / "firmware.rom",
        )
    )


def test_the_bundles_domain_xml_names_only_files_inside_the_bundle(tmp_path: Path) -> None:
    relative = bundle.relative_xml(_domain(tmp_path / "staging"))
    assert str(tmp_path) not in relative
    assert "<kernel>vmlinuz</kernel>" in relative and "<initrd>initrd.img</initrd>" in relative
    assert 'file="disk.qcow2"' in relative and ">firmware.rom</loader>" in relative
    assert "vmvc:instance" in relative  # the run's label survives the rewrite
    placed = bundle.placed_xml(relative, tmp_path / "imported")
    assert f"<kernel>{tmp_path}/imported/vmlinuz</kernel>" in placed
    assert f'file="{tmp_path}/imported/disk.qcow2"' in placed
    assert "console=ttyS0 vmvc.run=test" in placed
    hostile = relative.replace("<kernel>vmlinuz</kernel>", "<kernel>/etc/shadow</kernel>")
    with pytest.raises(bundle.BundleError, match="names"):
        bundle.placed_xml(hostile, tmp_path / "imported")


def _files(directory: Path, names: list[str]) -> dict[str, Path]:
    directory.mkdir()
    for name in names:
        (directory / name).write_bytes(name.encode() * 100)
    return {name: directory / name for name in names}


def test_a_bundle_unpacks_to_the_files_it_was_made_of(tmp_path: Path) -> None:
    files = _files(tmp_path / "src", ["disk.qcow2", "vmlinuz", "initrd.img"])
    archive = tmp_path / "bundle.tar"
    with open(archive, "wb") as sink:
        bundle.write_bundle(sink, files, "<domain/>")
    target = tmp_path / "dst"
    target.mkdir()
    with open(archive, "rb") as source:
        found = bundle.read_bundle(source, target)
    assert found == {"disk.qcow2", "vmlinuz", "initrd.img", "domain.xml"}
    for name, path in files.items():
        assert (target / name).read_bytes() == path.read_bytes()
    assert (target / "domain.xml").read_text() == "<domain/>"


@pytest.mark.parametrize(
    ("names", "error"),
    [
        (["disk.qcow2", "vmlinuz"], "lacks initrd.img"),  # no initramfs: cannot boot
        (["disk.qcow2", "vmlinuz", "initrd.img", "evil.sh"], "unexpected entry 'evil.sh'"),
    ],
)
def test_a_bundle_missing_a_boot_file_or_holding_others_is_refused(
    tmp_path: Path, names: list[str], error: str
) -> None:
    archive = tmp_path / "bundle.tar"
    with tarfile.open(archive, "w") as tar:
        for name, path in _files(tmp_path / "src", [*names, "domain.xml"]).items():
            tar.add(path, arcname=name)
    target = tmp_path / "dst"
    target.mkdir()
    with open(archive, "rb") as source, pytest.raises(bundle.BundleError, match=error):
        bundle.read_bundle(source, target)
    assert not (target / "evil.sh").exists()
