"""`vmvc bench --interactive`: pick backends, workloads and profile from what doctor finds.

Everything that decides something is a pure function (whether to prompt, the choices and
their defaults, how an answer parses, the equivalent command), so it is tested without a
terminal; `choose_interactively` only wires them to prompts. The equivalent non-interactive
command is always printed before the run, so the next run (or a CI job) can skip the prompts.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from vmvc.config import ALL_WORKLOADS, BASIC_WORKLOADS, PROFILES, RunSettings

DEFAULT_PROFILE = "quick"

Ask = Callable[[str, str], str]  # (question, default shown) -> the answer as typed
Say = Callable[[str], None]


class InteractiveError(Exception):
    """Prompting is impossible or was abandoned: one line for the user, exit code 2."""


@dataclass(frozen=True)
class BackendOption:
    name: str
    available: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Choices:
    """What the user picks from, with the defaults an empty answer takes."""

    backends: list[BackendOption]
    workloads: list[str]
    profiles: dict[str, str]  # name -> one-line description
    vms: str  # how VMs will run here: KVM, TCG or "decided by a probe"
    default_backends: list[str]
    default_workloads: list[str]
    default_profile: str

    @property
    def available(self) -> list[str]:
        return [b.name for b in self.backends if b.available]


@dataclass(frozen=True)
class Picked:
    backends: list[str]
    workloads: list[str]
    profile: str


@dataclass(frozen=True)
class GivenOption:
    """A `vmvc bench` option given on the command line, to repeat in the equivalent command."""

    opts: Sequence[str]  # e.g. ("--output", "-o")
    value: Any
    is_flag: bool = False
    secondary_opts: Sequence[str] = ()


# -- deciding -------------------------------------------------------------------------------


def wants_prompt(
    *,
    interactive: bool,
    selection_given: bool,
    resume: bool,
    stdin_tty: bool,
    stdout_tty: bool,
) -> bool:
    """Prompt when asked to (a terminal is then required), or for a bare `vmvc bench` on a
    terminal. Never without a terminal: a script or CI job must not hang on a question."""
    terminal = stdin_tty and stdout_tty
    if interactive:
        if resume:
            raise InteractiveError(
                "--interactive cannot be combined with --resume (a resumed run keeps its choices)"
            )
        if not terminal:
            raise InteractiveError(
                "--interactive needs a terminal (stdin and stdout are not both TTYs); "
                "pass --backend/--workload/--profile instead"
            )
        return True
    return terminal and not selection_given and not resume


def vms_summary(requested: str | None, dev_kvm: bool, cached: dict[str, Any] | None) -> str:
    """How VMs will run: KVM, emulated with TCG, or not known until the run probes KVM."""
    slow = "VM trials take many times longer and are labelled TCG"
    if requested == "tcg":
        return f"VMs: emulated with TCG (--accel tcg); {slow}"
    if requested == "kvm":
        return "VMs: KVM (--accel kvm; the run stops if KVM does not work)"
    if not dev_kvm:
        return f"VMs: emulated with TCG (no /dev/kvm); {slow}"
    if cached is None:
        return "VMs: KVM if a probe guest boots under it, else TCG (probed when the run starts)"
    reason = str(cached.get("reason", "")).removesuffix(": VMs are emulated (TCG)")
    if cached.get("ok"):
        return f"VMs: KVM ({reason})" if reason else "VMs: KVM"
    return f"VMs: emulated with TCG ({reason}); {slow}"


def kvm_state(checks: Sequence[Any]) -> tuple[bool, dict[str, Any] | None]:
    """(is there a /dev/kvm, the cached probe) as doctor's KVM check says it without a probe
    boot; no KVM check (no backend runs VMs): what the device node says."""
    kvm = next((c for c in checks if c.name == "KVM"), None)
    if kvm is None:
        return Path("/dev/kvm").exists(), None
    if kvm.status == "ok":
        return True, {"ok": True, "reason": kvm.detail}
    if kvm.detail.startswith("no /dev/kvm"):
        return False, None
    if "not probed" in kvm.detail:
        return True, None
    return True, {"ok": False, "reason": kvm.detail.split(": VMs will be emulated")[0]}


def backend_options(checks: Sequence[Any]) -> list[BackendOption]:
    """Backends from doctor's checks (the "backend <name>" rows: each backend folds in what
    else it needs, e.g. virtlogd), in the usual order native, docker, libvirt, then any
    plugin backend."""
    found: dict[str, BackendOption] = {}
    for check in checks:
        if not check.name.startswith("backend "):
            continue
        name = check.name.removeprefix("backend ")
        found[name] = BackendOption(name, check.status == "ok", check.detail, check.fix)
    from vmvc.backends.base import available_backend_classes

    installed = list(available_backend_classes())  # in the usual order: baseline first
    order = [n for n in installed if n in found] + sorted(set(found) - set(installed))
    return [found[n] for n in order]


def describe_profile(run: RunSettings) -> str:
    """'3 repetitions' or '5-15 repetitions (more only while CIs are wide), 1 warmup'."""
    if run.max_repetitions > run.repetitions:
        text = f"{run.repetitions}-{run.max_repetitions} repetitions (more only while CIs are wide)"
    else:
        text = f"{run.repetitions} repetitions"
    if run.warmups:
        text += f", {run.warmups} warmup{'s' if run.warmups > 1 else ''}"
    return text


def build_choices(
    backends: list[BackendOption],
    vms: str,
    profiles: dict[str, str],
    *,
    backends_given: Sequence[str] | None = None,
    workloads_given: Sequence[str] | None = None,
    profile_given: str | None = None,
) -> Choices:
    """Defaults: what was given on the command line, else every available backend, the
    basic workloads and the quick profile."""
    available = [b.name for b in backends if b.available]
    if not available:
        reasons = "; ".join(f"{b.name}: {b.detail}" for b in backends) or "none installed"
        raise InteractiveError(f"no backend is available ({reasons}); run `vmvc doctor`")
    given = [b for b in backends_given or () if b != "all"]
    default_backends = [b for b in available if b in given] or available
    default_workloads = [w for w in ALL_WORKLOADS if w in (workloads_given or ())]
    default_profile = profile_given if profile_given in profiles else DEFAULT_PROFILE
    return Choices(
        backends=backends,
        workloads=list(ALL_WORKLOADS),
        profiles=profiles,
        vms=vms,
        default_backends=default_backends,
        default_workloads=default_workloads or list(BASIC_WORKLOADS),
        default_profile=default_profile,
    )


def parse_answer(answer: str, options: Sequence[str], *, single: bool = False) -> list[str]:
    """Names picked by an answer: numbers (1-based), ranges (2-4), names, or 'all';
    separated by commas or spaces. The result keeps the options' order, without repeats."""
    tokens = _tokens(answer)
    if not tokens:
        raise ValueError("pick at least one")
    lowered = [o.lower() for o in options]
    chosen: set[int] = set()
    for token in tokens:
        if token == "all" and not single:
            chosen.update(range(len(options)))
        elif re.fullmatch(r"\d+", token):
            chosen.add(_index(int(token), options))
        elif match := re.fullmatch(r"(\d+)-(\d+)", token):
            low, high = sorted((int(match[1]), int(match[2])))
            if low < 1 or high > len(options):
                raise ValueError(f"{token} is not a range within 1-{len(options)}")
            chosen.update(range(low - 1, high))
        elif token in lowered:
            chosen.add(lowered.index(token))
        else:
            raise ValueError(f"'{token}' is not one of: {', '.join(options)}")
    if single and len(chosen) != 1:
        raise ValueError("pick exactly one")
    return [options[i] for i in sorted(chosen)]


def _tokens(answer: str) -> list[str]:
    return [t for t in re.split(r"[,\s]+", answer.strip().lower()) if t]


def _index(number: int, options: Sequence[str]) -> int:
    if not 1 <= number <= len(options):
        raise ValueError(f"{number} is not a number from 1 to {len(options)}")
    return number - 1


def check_backends(picked: list[str], choices: Choices) -> list[str]:
    """Refuse a backend doctor found unavailable, saying why and what fixes it."""
    by_name = {b.name: b for b in choices.backends}
    for name in picked:
        option = by_name[name]
        if not option.available:
            fix = f" (fix: {option.fix})" if option.fix else ""
            raise ValueError(f"{name} is not available: {option.detail}{fix}")
    return picked


def default_answer(defaults: Sequence[str], options: Sequence[str]) -> str:
    """The default as the user could have typed it: '1-5', '1,2,3' or a name."""
    numbers = [options.index(d) + 1 for d in defaults]
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}-{numbers[-1]}"
    return ",".join(str(n) for n in numbers)


def option_args(given: Sequence[GivenOption]) -> list[str]:
    """Options as they would be typed (long forms): ['--accel', 'tcg', '--plain', ...]."""
    args: list[str] = []
    for option in given:
        name = max(option.opts, key=len)
        if option.is_flag:
            if option.value:
                args.append(name)
            elif option.secondary_opts:
                args.append(max(option.secondary_opts, key=len))
        elif isinstance(option.value, list | tuple):
            for item in option.value:
                args += [name, str(item)]
        elif option.value is not None:
            args += [name, str(option.value)]
    return args


def equivalent_command(picked: Picked, other_options: Sequence[str] = ()) -> list[str]:
    """The `vmvc bench` command that runs the same selection without prompting."""
    argv = ["vmvc", "bench"]
    for backend in picked.backends:
        argv += ["--backend", backend]
    for workload in picked.workloads:
        argv += ["--workload", workload]
    return [*argv, "--profile", picked.profile, *other_options]


def menu(options: Sequence[str], notes: dict[str, str] | None = None) -> str:
    """'1 native, 2 docker, 3 libvirt (unavailable)'."""
    return ", ".join(
        f"{i} {o}" + (f" ({notes[o]})" if notes and notes.get(o) else "")
        for i, o in enumerate(options, 1)
    )


# -- prompting ------------------------------------------------------------------------------


def _ask_until_valid(
    ask: Ask, say: Say, question: str, default: str, parse: Callable[[str], list[str]]
) -> list[str]:
    while True:
        answer = ask(question, default)
        try:
            return parse(answer if answer.strip() else default)
        except ValueError as exc:
            say(f"[red]{escape(str(exc))}[/red]; try again")


def converse(choices: Choices, ask: Ask, say: Say) -> Picked:
    """The questions, in order; an invalid answer is explained and asked again."""
    say("[bold]vmvc doctor found:[/bold]")
    for option in choices.backends:
        if option.available:
            say(f"  [green]✓[/green] {option.name:<8} {escape(option.detail)}")
        else:
            fix = f" (fix: {option.fix})" if option.fix else ""
            say(f"  [red]✗[/red] {option.name:<8} not available: {escape(option.detail + fix)}")
    say(f"  {escape(choices.vms)}")
    names = [b.name for b in choices.backends]
    unavailable = {b.name: "unavailable" for b in choices.backends if not b.available}
    say(f"\nBackends: {menu(names, unavailable)}")
    backends = _ask_until_valid(
        ask,
        say,
        "Which backends? (numbers or names, 'all')",
        default_answer(choices.default_backends, names),
        lambda a: check_backends(_all_available(a, names, choices), choices),
    )
    basic = default_answer(BASIC_WORKLOADS, choices.workloads)
    say(f"\nWorkloads (basic: {basic}): {menu(choices.workloads)}")
    workloads = _ask_until_valid(
        ask,
        say,
        "Which workloads?",
        default_answer(choices.default_workloads, choices.workloads),
        lambda a: parse_answer(a, choices.workloads),
    )
    profiles = list(choices.profiles)
    say("\nProfiles:")
    for number, (name, description) in enumerate(choices.profiles.items(), 1):
        say(f"  {number} {name:<8} {escape(description)}")
    [profile] = _ask_until_valid(
        ask,
        say,
        "Which profile?",
        choices.default_profile,
        lambda a: parse_answer(a, profiles, single=True),
    )
    return Picked(backends, workloads, profile)


def _all_available(answer: str, names: list[str], choices: Choices) -> list[str]:
    """'all' means every available backend (as `--backend all` skips what is missing)."""
    picked = parse_answer(answer, names)
    if "all" in _tokens(answer):
        picked = [n for n in picked if n in choices.available]
    return picked


def _doctor_choices(
    backends_given: Sequence[str] | None,
    workloads_given: Sequence[str] | None,
    profile_given: str | None,
    accel: str | None,
) -> Choices:
    from vmvc.config import load_config
    from vmvc.doctor import backend_checks
    from vmvc.hosts import local_host

    profiles = {name: describe_profile(load_config(name).run) for name in PROFILES}
    default = load_config(DEFAULT_PROFILE)
    checks = backend_checks(default, local_host(), probe=False, say=lambda _message: None)
    dev_kvm, cached = kvm_state(checks)
    return build_choices(
        backend_options(checks),
        vms_summary(accel, dev_kvm, cached),
        profiles,
        backends_given=backends_given,
        workloads_given=workloads_given,
        profile_given=profile_given,
    )


# What the prompts decide; every other option given is repeated as it was.
SELECTION_PARAMS = {"backend", "workload", "profile", "interactive"}


def given_options(ctx: Any) -> list[GivenOption]:
    """The options of the running command given on the command line (or by environment
    variable), in declared order. `ctx` is the command's (typer/click) Context."""
    given = []
    for param in ctx.command.params:
        name = param.name or ""
        if param.param_type_name != "option" or name in SELECTION_PARAMS:
            continue
        source = ctx.get_parameter_source(name)
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
            given.append(
                GivenOption(param.opts, ctx.params[name], param.is_flag, param.secondary_opts)
            )
    return given


def choose_interactively(
    interactive: bool,
    ctx: Any,
    *,
    backend: list[str] | None,
    workload: list[str] | None,
    profile: str | None,
    config_file: Path | None,
    accel: str | None,
    resume: str | None,
) -> Picked | None:
    """The selection for `vmvc bench`, asked on the terminal; None when not prompting."""
    if not wants_prompt(
        interactive=interactive,
        selection_given=bool(backend or workload or config_file),
        resume=resume is not None,
        stdin_tty=sys.stdin.isatty(),
        stdout_tty=sys.stdout.isatty(),
    ):
        return None
    import typer
    from rich.console import Console
    from rich.prompt import Confirm as RichConfirm
    from rich.prompt import Prompt

    console = Console()
    choices = _doctor_choices(backend, workload, profile, accel)

    def ask(question: str, default: str) -> str:
        return Prompt.ask(question, console=console, default=default, show_default=True)

    def say(text: str) -> None:
        console.print(text, highlight=False)

    try:
        picked = converse(choices, ask, say)
        command = shlex.join(equivalent_command(picked, option_args(given_options(ctx))))
        say("\nThe same run without questions:")
        console.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)
        run = RichConfirm.ask("Run it now?", console=console, default=True)
    except EOFError:
        raise InteractiveError("no answer (end of input): nothing was run") from None
    if not run:
        say("Not run.")
        raise typer.Exit(0)
    return picked
