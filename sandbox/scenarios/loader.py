"""Load scenario YAML strictly: every error names the file, the line and the field, and a fix.

YAML is composed into nodes first so that each value keeps its line; duplicate keys (which
PyYAML would silently collapse) are errors. Pydantic then validates the plain data.

A scenario file may come from anyone, so reading it is bounded: only regular files (not a FIFO
or a link to /dev/zero), at most MAX_BYTES, no anchors or aliases (a billion-laughs file or a
recursive alias would expand without end), at most MAX_DEPTH levels of nesting, and a NUL or
other control character is an error at its line, like any other.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from sandbox.errors import ScenarioError
from sandbox.scenarios.models import Scenario

Loc = tuple[str | int, ...]
SUFFIXES = (".yaml", ".yml")
MAX_BYTES = 1 << 20  # the library's largest scenario is 13 KB
MAX_DEPTH = 32  # the schema nests six levels deep


@dataclass(frozen=True)
class ScenarioFile:
    """A loaded scenario with where it came from."""

    path: Path
    sha256: str
    scenario: Scenario


@dataclass
class LoadResult:
    """Every scenario that loaded, and one error per file that did not."""

    files: list[ScenarioFile]
    errors: list[ScenarioError]


def find_scenario_files(paths: Iterable[Path]) -> list[Path]:
    """Expand folders into the YAML files below them, sorted; files are kept as given."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES))
        elif path.exists():
            found.append(path)
        else:
            raise ScenarioError(f"{path}: no such file or folder.", hint="Check the path.")
    return found


def load_scenarios(
    paths: Sequence[Path], check: Callable[[ScenarioFile], ScenarioError | None] | None = None
) -> LoadResult:
    """Load every scenario under `paths`, collecting errors instead of stopping at the first.

    `check` runs on each file that loaded (the carriers pass their build check here).
    """
    result = LoadResult(files=[], errors=[])
    seen: dict[str, Path] = {}
    for path in _unique(find_scenario_files(paths)):
        try:
            loaded = load_scenario_file(path)
        except ScenarioError as exc:
            result.errors.append(exc)
            continue
        first = seen.setdefault(loaded.scenario.id, path)
        if first != path:
            result.errors.append(
                ScenarioError(
                    f"{path}:{_id_line(path)}: id '{loaded.scenario.id}' is already used "
                    f"by {first}.",
                    hint="Give each scenario a unique id.",
                )
            )
            continue
        problem = check(loaded) if check else None
        if problem:
            result.errors.append(problem)
            continue
        result.files.append(loaded)
    return result


def _unique(paths: Iterable[Path]) -> list[Path]:
    """Drop a file named twice (say, by its folder and by itself)."""
    seen: set[Path] = set()
    unique = []
    for path in paths:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique


def _id_line(path: Path) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("id:"):
            return number
    return 1


def load_scenario_file(path: Path) -> ScenarioFile:
    """Load and validate one scenario file."""
    raw = _read_bounded(path)
    data, lines = _parse_yaml(path, raw)
    if "variant" in data:
        raise ScenarioError(
            f"{path}:{lines[('variant',)]}: variant: set by the loader, not in the file.",
            hint="Remove it; the clean twin is derived from the attacked scenario.",
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise _scenario_error(path, exc, lines) from None
    return ScenarioFile(path=path, sha256=hashlib.sha256(raw).hexdigest(), scenario=scenario)


def _read_bounded(path: Path) -> bytes:
    """The file's bytes: a regular file of at most MAX_BYTES, opened without blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        message = f"{path}: cannot read ({exc.strerror})."
        raise ScenarioError(message, hint="Check the path.") from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ScenarioError(
                f"{path}: not a regular file (a device, FIFO or socket).",
                hint="Point at the scenario's .yaml file itself.",
            )
        raw = handle.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise ScenarioError(
            f"{path}: larger than {MAX_BYTES >> 20} MiB; a scenario file is a few kilobytes.",
            hint="Put large documents in the scenario's content, not thousands of copies.",
        )
    return raw


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe composer, refusing aliases and nesting deeper than MAX_DEPTH."""

    path = Path()
    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark else 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ScenarioError(
                f"{self.path}:{line}: YAML anchors and aliases (&name, *name) are not allowed.",
                hint="Write the value out where it is used.",
            )
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ScenarioError(
                f"{self.path}:{line}: nested deeper than {MAX_DEPTH} levels.",
                hint="A scenario nests a few levels (inputs, payload, case...); check the file.",
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _compose(path: Path, text: str) -> yaml.Node | None:
    loader = _BoundedLoader(text)
    loader.path = path
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _parse_yaml(path: Path, raw: bytes) -> tuple[Any, dict[Loc, int]]:
    try:
        node = _compose(path, raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(
            f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x}).",
            hint="Save the file as UTF-8.",
        ) from None
    except yaml.reader.ReaderError as exc:
        line = raw.decode("utf-8")[: exc.position].count("\n") + 1
        raise ScenarioError(
            f"{path}:{line}: the character U+{exc.character:04X} is not allowed in YAML.",
            hint="Remove the control character (a NUL byte, for instance).",
        ) from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ScenarioError(
            f"{path}:{line}: invalid YAML: {exc.problem}.",
            hint="Fix the YAML syntax (indentation, quotes, colons).",
        ) from None
    if not isinstance(node, yaml.MappingNode):
        raise ScenarioError(
            f"{path}:1: a scenario must be a YAML mapping (id, title, family, ...).",
            hint="See scenarios/ for examples.",
        )
    lines: dict[Loc, int] = {}
    return _to_data(path, node, (), lines), lines


def _to_data(path: Path, node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)  # a mapping key's own line wins
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in out:
                raise ScenarioError(
                    f"{path}:{key_node.start_mark.line + 1}: key '{key}' appears twice.",
                    hint="Remove one of them.",
                )
            lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _to_data(path, value_node, (*loc, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(path, item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return _scalar(path, node)


def _scalar(path: Path, node: yaml.Node) -> Any:
    if node.tag.startswith("tag:yaml.org,2002:timestamp"):
        return node.value  # an unquoted date stays the ISO text the author wrote
    try:
        return _CONSTRUCTOR.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as exc:
        raise ScenarioError(
            f"{path}:{node.start_mark.line + 1}: cannot read the value {node.value!r}: {exc}",
            hint="Quote the value, or remove the YAML tag.",
        ) from None


_CONSTRUCTOR = yaml.SafeLoader("")


def _scenario_error(path: Path, exc: ValidationError, lines: dict[Loc, int]) -> ScenarioError:
    problems = [_describe(path, err, lines) for err in exc.errors()]
    return ScenarioError("\n".join(problems), hint="")


def _describe(path: Path, err: Any, lines: dict[Loc, int]) -> str:
    loc: Loc = tuple(err["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    line = _line_for(loc, lines)
    kind = err["type"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        allowed = _allowed_fields(loc[:-1])
        guess = difflib.get_close_matches(name, allowed, n=1)
        fix = f"Did you mean '{guess[0]}'?" if guess else f"Allowed: {', '.join(allowed)}."
        return f"{path}:{line}: {field}: unknown field '{name}'. {fix}"
    if kind == "missing":
        return f"{path}:{line}: {field}: required field is missing. Add it."
    if kind in ("literal_error", "unknown_plugin"):
        known, value = err["ctx"]["expected" if kind == "literal_error" else "known"], err["input"]
        return f"{path}:{line}: {field}: '{value}' is unknown (known: {known}). Fix the name."
    return f"{path}:{line}: {field}: {err['msg']}. Fix the value."


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int:
    while loc not in lines and loc:
        loc = loc[:-1]
    return lines.get(loc, 1)


def _allowed_fields(loc: Loc) -> list[str]:
    """The field names a model accepts at `loc`, walking the schema from Scenario."""
    model: type[BaseModel] | None = Scenario
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation
        model = _model_in(annotation)
    return sorted(f for f in model.model_fields if f != "variant") if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found:
            return found
    return None
