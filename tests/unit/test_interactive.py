"""Interactive selection: when to prompt, the choices, parsing answers, the equivalent command."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from vmvc.config import BASIC_WORKLOADS, RunSettings
from vmvc.doctor import Check
from vmvc.interactive import (
    BackendOption,
    GivenOption,
    InteractiveError,
    Picked,
    backend_options,
    build_choices,
    check_backends,
    converse,
    default_answer,
    describe_profile,
    equivalent_command,
    given_options,
    kvm_state,
    option_args,
    parse_answer,
    vms_summary,
    wants_prompt,
)

BACKENDS = ["native", "docker", "libvirt"]
PROFILES = {"quick": "3 repetitions", "default": "5-15 repetitions", "nightly": "10-30"}


def options(*unavailable: str) -> list[BackendOption]:
    return [
        BackendOption(name, name not in unavailable, f"{name} detail", f"fix {name}")
        for name in BACKENDS
    ]


# -- when to prompt ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interactive", "given", "resume", "stdin", "stdout", "expected"),
    [
        (True, False, False, True, True, True),
        (True, True, False, True, True, True),  # --interactive with --backend: still asks
        (False, False, False, True, True, True),  # bare `vmvc bench` on a terminal
        (False, True, False, True, True, False),  # --backend/--workload/--config given
        (False, False, True, True, True, False),  # --resume
        (False, False, False, False, True, False),  # stdin not a TTY: never prompt
        (False, False, False, True, False, False),  # stdout not a TTY: never prompt
    ],
)
def test_wants_prompt(
    interactive: bool, given: bool, resume: bool, stdin: bool, stdout: bool, expected: bool
) -> None:
    decided = wants_prompt(
        interactive=interactive,
        selection_given=given,
        resume=resume,
        stdin_tty=stdin,
        stdout_tty=stdout,
    )
    assert decided is expected


@pytest.mark.parametrize(("stdin", "stdout"), [(False, True), (True, False), (False, False)])
def test_interactive_without_a_terminal_is_an_error(stdin: bool, stdout: bool) -> None:
    with pytest.raises(InteractiveError, match="--interactive needs a terminal") as info:
        wants_prompt(
            interactive=True,
            selection_given=False,
            resume=False,
            stdin_tty=stdin,
            stdout_tty=stdout,
        )
    assert "\n" not in str(info.value)


def test_interactive_with_resume_is_an_error() -> None:
    with pytest.raises(InteractiveError, match="--resume"):
        wants_prompt(
            interactive=True, selection_given=False, resume=True, stdin_tty=True, stdout_tty=True
        )


# -- the choices ------------------------------------------------------------------------------


def test_backend_options_from_doctor_checks_in_the_usual_order() -> None:
    checks = [
        Check("privileges", "ok", "root"),
        Check("backend docker", "ok", "dockerd 20.10"),
        Check("backend libvirt", "ok", "libvirt at qemu:///system"),
        Check("backend native", "fail", "needs root", "sudo vmvc"),
        Check("virtlogd", "ok", "socket present"),
    ]
    found = backend_options(checks)
    assert [o.name for o in found] == BACKENDS
    assert found[0] == BackendOption("native", False, "needs root", "sudo vmvc")
    assert found[2].available


@pytest.mark.parametrize(
    ("check", "dev_kvm", "cached"),
    [
        (
            Check("KVM", "ok", "a probe guest booted"),
            True,
            {"ok": True, "reason": "a probe guest booted"},
        ),
        (
            Check("KVM", "warn", "no /dev/kvm: VMs will be emulated (TCG), tens of times slower"),
            False,
            None,
        ),
        (
            Check("KVM", "warn", "/dev/kvm exists; not probed (--no-probe)", "vmvc doctor"),
            True,
            None,
        ),
        (
            Check(
                "KVM", "warn", "guest hung: VMs will be emulated (TCG) and results are labelled so"
            ),
            True,
            {"ok": False, "reason": "guest hung"},
        ),
    ],
)
def test_kvm_state_from_doctors_kvm_check(check: Check, dev_kvm: bool, cached: dict | None) -> None:
    assert kvm_state([Check("backend libvirt", "ok", "libvirt"), check]) == (dev_kvm, cached)


def test_defaults_are_all_available_backends_basic_workloads_quick() -> None:
    choices = build_choices(options("native"), "VMs: KVM", PROFILES)
    assert choices.default_backends == ["docker", "libvirt"]
    assert choices.default_workloads == list(BASIC_WORKLOADS)
    assert choices.default_profile == "quick"


def test_defaults_follow_what_the_command_line_gave() -> None:
    choices = build_choices(
        options(),
        "VMs: KVM",
        PROFILES,
        backends_given=["libvirt", "docker"],
        workloads_given=["io", "cpu"],
        profile_given="default",
    )
    assert choices.default_backends == ["docker", "libvirt"]
    assert choices.default_workloads == ["cpu", "io"]
    assert choices.default_profile == "default"


def test_no_available_backend_is_an_error() -> None:
    with pytest.raises(InteractiveError, match="no backend is available"):
        build_choices(options(*BACKENDS), "VMs: KVM", PROFILES)


@pytest.mark.parametrize(
    ("requested", "dev_kvm", "cached", "expected"),
    [
        ("tcg", True, {"ok": True, "reason": "KVM works"}, "emulated with TCG (--accel tcg)"),
        ("kvm", False, None, "VMs: KVM (--accel kvm"),
        ("auto", False, None, "emulated with TCG (no /dev/kvm)"),
        (None, True, None, "probed when the run starts"),
        (None, True, {"ok": True, "reason": "a probe guest booted"}, "VMs: KVM (a probe guest"),
        (
            None,
            True,
            {"ok": False, "reason": "guest hung: VMs are emulated (TCG)"},
            "VMs: emulated with TCG (guest hung);",
        ),
    ],
)
def test_vms_summary(
    requested: str | None, dev_kvm: bool, cached: dict | None, expected: str
) -> None:
    assert expected in vms_summary(requested, dev_kvm, cached)


def test_describe_profile() -> None:
    assert (
        describe_profile(RunSettings(repetitions=3, max_repetitions=3, warmups=0))
        == "3 repetitions"
    )
    assert (
        describe_profile(RunSettings(repetitions=5, max_repetitions=15, warmups=1))
        == "5-15 repetitions (more only while CIs are wide), 1 warmup"
    )


# -- parsing answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("1", ["native"]),
        ("3,1", ["native", "libvirt"]),  # the options' order, whatever the answer's
        ("2 3", ["docker", "libvirt"]),
        ("1-2", ["native", "docker"]),
        ("3-2", ["docker", "libvirt"]),
        ("Docker, libvirt", ["docker", "libvirt"]),
        ("all", BACKENDS),
        ("1, docker 1", ["native", "docker"]),  # repeats collapse
    ],
)
def test_parse_answer(answer: str, expected: list[str]) -> None:
    assert parse_answer(answer, BACKENDS) == expected


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("", "pick at least one"),
        ("4", "4 is not a number from 1 to 3"),
        ("0", "0 is not a number from 1 to 3"),
        ("2-5", "2-5 is not a range within 1-3"),
        ("podman", "'podman' is not one of: native, docker, libvirt"),
    ],
)
def test_parse_answer_refuses(answer: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_answer(answer, BACKENDS)


def test_parse_single_answer() -> None:
    profiles = list(PROFILES)
    assert parse_answer("2", profiles, single=True) == ["default"]
    assert parse_answer("nightly", profiles, single=True) == ["nightly"]
    with pytest.raises(ValueError, match="exactly one"):
        parse_answer("1,2", profiles, single=True)
    with pytest.raises(ValueError, match="not one of"):
        parse_answer("all", profiles, single=True)


def test_an_unavailable_backend_is_refused_with_its_fix() -> None:
    choices = build_choices(options("libvirt"), "VMs: KVM", PROFILES)
    assert check_backends(["docker"], choices) == ["docker"]
    with pytest.raises(ValueError, match=r"libvirt is not available: libvirt detail \(fix"):
        check_backends(["docker", "libvirt"], choices)


def test_default_answer() -> None:
    workloads = ["startup", "cpu", "memory", "io", "footprint", "clone"]
    assert default_answer(["startup", "cpu", "memory", "io", "footprint"], workloads) == "1-5"
    assert default_answer(["native", "libvirt"], BACKENDS) == "1,3"
    assert default_answer(["docker", "libvirt"], BACKENDS) == "2,3"


# -- the equivalent command -------------------------------------------------------------------


def test_equivalent_command() -> None:
    picked = Picked(["docker", "libvirt"], ["startup", "cpu"], "quick")
    rest = option_args(
        [
            GivenOption(("--config", "-c"), Path("my dir/small.toml")),
            GivenOption(("--accel",), "tcg"),
            GivenOption(("--repetitions", "-n"), 2),
            GivenOption(("--plain",), True, is_flag=True, secondary_opts=("--no-plain",)),
            GivenOption(("--host",), ["local", "lab"]),
        ]
    )
    command = shlex.join(equivalent_command(picked, rest))
    assert command == (
        "vmvc bench --backend docker --backend libvirt --workload startup --workload cpu "
        "--profile quick --config 'my dir/small.toml' --accel tcg --repetitions 2 --plain "
        "--host local --host lab"
    )


def test_option_args_of_a_negative_flag() -> None:
    flag = GivenOption(("--plain",), False, is_flag=True, secondary_opts=("--no-plain",))
    assert option_args([flag]) == ["--no-plain"]


def test_given_options_are_read_from_the_command_context() -> None:
    """Only what was typed is repeated (not defaults), long forms, the selection left out."""
    app = typer.Typer()
    seen: list[list[str]] = []

    @app.command()
    def bench(
        ctx: typer.Context,
        backend: Annotated[list[str] | None, typer.Option("--backend", "-b")] = None,
        output: Annotated[Path, typer.Option("--output", "-o")] = Path("results"),
        accel: Annotated[str | None, typer.Option()] = None,
        plain: Annotated[bool, typer.Option()] = False,
        interactive: Annotated[bool, typer.Option("--interactive")] = False,
    ) -> None:
        seen.append(option_args(given_options(ctx)))

    result = CliRunner().invoke(app, ["-b", "docker", "-o", "/tmp/x", "--interactive", "--plain"])
    assert result.exit_code == 0, result.output
    assert seen == [["--output", "/tmp/x", "--plain"]]


# -- the conversation -------------------------------------------------------------------------


def scripted(answers: list[str]) -> tuple[list[tuple[str, str]], object]:
    asked: list[tuple[str, str]] = []

    def ask(question: str, default: str) -> str:
        asked.append((question, default))
        return answers.pop(0)

    return asked, ask


def test_converse_with_defaults() -> None:
    choices = build_choices(options("native"), "VMs: emulated with TCG", PROFILES)
    asked, ask = scripted(["", "", ""])
    said: list[str] = []
    picked = converse(choices, ask, said.append)  # type: ignore[arg-type]
    assert picked == Picked(["docker", "libvirt"], list(BASIC_WORKLOADS), "quick")
    assert [default for _, default in asked] == ["2,3", "1-5", "quick"]
    text = "\n".join(said)
    assert "native   not available: native detail (fix: fix native)" in text
    assert "VMs: emulated with TCG" in text
    assert "1 native (unavailable), 2 docker, 3 libvirt" in text


def test_converse_asks_again_after_a_bad_answer() -> None:
    choices = build_choices(options("libvirt"), "VMs: KVM", PROFILES)
    asked, ask = scripted(["libvirt", "9", "docker", "cpu io", "7", "default"])
    said: list[str] = []
    picked = converse(choices, ask, said.append)  # type: ignore[arg-type]
    assert picked == Picked(["docker"], ["cpu", "io"], "default")
    assert len(asked) == 6
    errors = [line for line in said if "try again" in line]
    assert len(errors) == 3
    assert "libvirt is not available" in errors[0]
    assert "9 is not a number from 1 to 3" in errors[1]
    assert "7 is not a number from 1 to 3" in errors[2]


def test_all_means_every_available_backend() -> None:
    choices = build_choices(options("native"), "VMs: KVM", PROFILES)
    _, ask = scripted(["all", "1", "1"])
    picked = converse(choices, ask, lambda _text: None)  # type: ignore[arg-type]
    assert picked.backends == ["docker", "libvirt"]
