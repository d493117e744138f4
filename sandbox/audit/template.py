"""A chat template read as a Jinja syntax tree, never rendered: escapes, triggers, planted text.

A GGUF's template is code that runs on every request. The scan looks for the shapes published
template backdoors and sandbox escapes take: Python internals, branches on words in the
conversation or on the date, literal links and directives, text added to messages, tool calls
written by the template. Chat markup (`<|im_start|>`, `[INST]`, role names) is not prose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TypeVar

from jinja2 import TemplateSyntaxError, nodes
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sandbox.audit.findings import Finding, Severity, shorten
from sandbox.audit.text import directives, links, prose

N = TypeVar("N", bound=nodes.Node)
# Globals that server-side template injection chains start from; no chat template uses them.
SSTI_NAMES = {"self", "cycler", "joiner", "lipsum", "config", "request", "url_for", "g"}
DUNDERS = re.compile(r"__[a-z]+__")
MARKUP = re.compile(r"<[^<>\s]{1,48}>|\[/?[A-Z_]{2,32}\]|<\|[^|]{1,48}\|>")
CONTENT_KEYS = {"content", "text", "reasoning_content"}
# A role header's word; a literal that follows one with text is a turn the template wrote.
TURN_ROLES = re.compile(r"\s*(user|assistant|model)\b")
WHOLE_CONVERSATION = {"string", "tojson", "join", "pprint", "list"}
TOOL_KEYS = {"tool_calls", "arguments", "function", "tool_call"}
# Directives behind a condition are a default system prompt or the instructions of a tool block
# (published templates have both); anywhere else they reach every conversation.
PLACED_DIRECTIVES = {"guarded": Severity.MEDIUM, "tool instructions": Severity.LOW}


def parse(source: str) -> nodes.Template:
    """The template's syntax tree, as transformers and llama-cpp-python would parse it."""
    env = ImmutableSandboxedEnvironment(extensions=[loopcontrols])
    return env.parse(source)


def scan_template(source: str, location: str) -> list[Finding]:
    """Every suspicious shape in one chat template."""
    try:
        tree = parse(source)
    except TemplateSyntaxError as exc:
        return [
            Finding(
                rule="template-unparsable",
                severity=Severity.MEDIUM,
                message=f"Jinja rejects the template: {exc.message}",
                location=location,
                line=exc.lineno,
            )
        ]
    scan = _Scan(tree, location)
    return sorted(set(scan.findings()), key=lambda f: (-f.severity.rank, f.line or 0, f.rule))


class _Scan:
    """One walk over one template: which names hold message content, then the rules."""

    def __init__(self, tree: nodes.Template, location: str) -> None:
        self.tree = tree
        self.location = location
        self.content_names = _content_names(tree)
        self.triggers = list(self._triggers())  # (branch test, finding)
        self.trigger_tests = {id(test) for test, _ in self.triggers} | _relayed(
            tree, {id(test) for test, _ in self.triggers}
        )

    def findings(self) -> Iterator[Finding]:
        yield from self._escapes()
        yield from (finding for _, finding in self.triggers)
        yield from self._literals()
        yield from self._tool_rewrites()
        yield from self._content_rewrites()

    def _finding(
        self, rule: str, severity: Severity, message: str, node: nodes.Node, evidence: str = ""
    ) -> Finding:
        return Finding(
            rule=rule,
            severity=severity,
            message=message,
            location=self.location,
            line=getattr(node, "lineno", None),
            evidence=shorten(evidence),
        )

    def _escapes(self) -> Iterator[Finding]:
        critical = Severity.CRITICAL
        for node in self.tree.find_all(nodes.Getattr):
            if node.attr.startswith("_"):
                yield self._finding(
                    "template-escape",
                    critical,
                    f"reads the attribute {node.attr!r}",
                    node,
                    node.attr,
                )
        for item in self.tree.find_all(nodes.Getitem):
            key = item.arg.value if isinstance(item.arg, nodes.Const) else None
            if isinstance(key, str) and key.startswith("_"):
                yield self._finding(
                    "template-escape", critical, f"reads the item {key!r}", item, key
                )
        for flt in self.tree.find_all(nodes.Filter):
            if flt.name == "attr":
                yield self._finding(
                    "template-escape",
                    Severity.HIGH,
                    "looks attributes up by name with `attr`",
                    flt,
                    "|attr",
                )
        for name in self.tree.find_all(nodes.Name):
            if name.name in SSTI_NAMES:
                yield self._finding(
                    "template-escape",
                    Severity.HIGH,
                    f"uses the global {name.name!r}",
                    name,
                    name.name,
                )
        for const in self.tree.find_all(nodes.Const):
            if isinstance(const.value, str) and (found := DUNDERS.search(const.value)):
                yield self._finding(
                    "template-escape",
                    critical,
                    f"spells the Python internal {found.group()!r}",
                    const,
                    const.value,
                )
        for load in self.tree.find_all(
            (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)
        ):
            yield self._finding(
                "template-escape",
                Severity.HIGH,
                "loads another template",
                load,
                type(load).__name__,
            )

    def _triggers(self) -> Iterator[tuple[nodes.Node, Finding]]:
        """Branch tests on words in the conversation or on the date, each with its finding."""
        for test in _branch_tests(self.tree):
            for literal, node in self._content_comparisons(test):
                if not is_markup(literal):
                    yield (
                        test,
                        self._finding(
                            "template-trigger",
                            Severity.HIGH,
                            f"branches on the conversation containing {shorten(literal, 60)!r}",
                            node,
                            literal,
                        ),
                    )
            for call in test.find_all(nodes.Call):
                if isinstance(call.node, nodes.Name) and call.node.name == "strftime_now":
                    yield (
                        test,
                        self._finding(
                            "template-date-trigger",
                            Severity.MEDIUM,
                            "branches on today's date",
                            call,
                            "strftime_now",
                        ),
                    )

    def _content_comparisons(self, test: nodes.Node) -> Iterator[tuple[str, nodes.Node]]:
        """String literals that a test compares message content against."""
        keys = {id(item.arg) for item in _walk(test, nodes.Getitem)}  # message['content']
        for compare in _walk(test, nodes.Compare):
            sides = [compare.expr, *(op.expr for op in compare.ops)]
            if any(self._reads_content(side) for side in sides):
                literals = (c for s in sides for c in _str_consts(s) if id(c) not in keys)
                yield from ((c.value, compare) for c in literals)
        for call in _walk(test, nodes.Call):
            method = call.node
            if isinstance(method, nodes.Getattr) and self._reads_content(method.node):
                yield from ((c.value, call) for a in call.args for c in _str_consts(a))

    def _reads_content(self, node: nodes.Node) -> bool:
        for part in _walk(node, nodes.Node):
            if isinstance(part, nodes.Getattr) and part.attr in CONTENT_KEYS:
                return True
            if isinstance(part, nodes.Getitem) and _const(part.arg) in CONTENT_KEYS:
                return True
            if isinstance(part, nodes.Name) and part.name in self.content_names:
                return True
            if isinstance(part, nodes.Filter) and part.name in WHOLE_CONVERSATION:
                if isinstance(part.node, nodes.Name) and part.node.name == "messages":
                    return True
        return False

    def _literals(self) -> Iterator[Finding]:
        for text, node, placement in self._emitted_literals():
            for role in written_turns(text):
                yield self._finding(
                    "template-turn",
                    Severity.HIGH,
                    f"writes a {role!r} turn of its own into the conversation ({placement})",
                    node,
                    text,
                )
            plain = MARKUP.sub(" ", text)
            for kind, found in links(plain):
                yield self._finding(
                    "template-link",
                    Severity.HIGH,
                    f"writes the {kind} {found!r} into the prompt",
                    node,
                    text,
                )
            if not prose(plain):
                continue
            if directives(plain):
                severity = PLACED_DIRECTIVES.get(placement, Severity.HIGH)
                yield self._finding(
                    "template-instruction",
                    severity,
                    f"adds directives to the prompt ({placement})",
                    node,
                    text,
                )
            elif placement in ("every message", "appended to content"):
                yield self._finding(
                    "template-injection",
                    Severity.MEDIUM,
                    f"adds text to the conversation ({placement})",
                    node,
                    text,
                )

    def _tool_rewrites(self) -> Iterator[Finding]:
        for assign in self.tree.find_all(nodes.Assign):
            target = assign.target
            invents = any(_str_consts(assign.node)) or any(
                _walk(assign.node, (nodes.Dict, nodes.List))
            )
            if isinstance(target, nodes.NSRef | nodes.Name) and _names_tool(target) and invents:
                yield self._finding(
                    "template-tool-rewrite",
                    Severity.HIGH,
                    "assigns a tool call in the template",
                    assign,
                    _render(target),
                )
        for const in self.tree.find_all(nodes.Const):
            if isinstance(const.value, str) and re.search(r'"name"\s*:\s*"[A-Za-z_]', const.value):
                yield self._finding(
                    "template-tool-rewrite",
                    Severity.HIGH,
                    "writes a literal tool call",
                    const,
                    const.value,
                )
        for call in self.tree.find_all(nodes.Call):
            method = call.node
            if (
                isinstance(method, nodes.Getattr)
                and method.attr in ("update", "append")
                and _mentions(method.node, TOOL_KEYS)
            ):
                yield self._finding(
                    "template-tool-rewrite",
                    Severity.HIGH,
                    f"changes tool calls with .{method.attr}()",
                    call,
                    method.attr,
                )

    def _content_rewrites(self) -> Iterator[Finding]:
        for node, target, args in _replacements(self.tree):
            if target is None or not self._reads_content(target):
                continue
            old = [c.value for a in args[:1] for c in _str_consts(a)]
            if not all(is_markup(o) for o in old):
                yield self._finding(
                    "template-content-rewrite",
                    Severity.MEDIUM,
                    "replaces text inside messages",
                    node,
                    " ".join(old),
                )

    def _emitted_literals(self) -> Iterator[tuple[str, nodes.Node, str]]:
        """Literal text the template writes, with where it lands (see `_placement`)."""
        for output, guards, loops in _outputs(self.tree):
            for child in output.nodes:
                if isinstance(child, nodes.TemplateData):
                    yield child.data, child, self._placement(guards, loops, False)
                    continue
                inline = tuple(c.test for c in _walk(child, nodes.CondExpr))
                placement = self._placement(guards, loops, self._reads_content(child), inline)
                hidden = _error_messages(child)
                for const in _str_consts(child):
                    if id(const) not in hidden:
                        yield const.value, child, placement

    def _placement(
        self,
        guards: tuple[nodes.Node, ...],
        loops: int,
        with_content: bool,
        inline: tuple[nodes.Node, ...] = (),
    ) -> str:
        """Where literal text lands.

        'behind a trigger' (under a branch `_triggers` found, or in an `x if trigger else y` of
        the output), 'appended to content' (in one output with message content), 'every
        message' (inside a loop over messages, not behind a role or first-message guard), 'tool
        instructions' (behind a test on `tools`), 'guarded' (behind some other condition) or
        'every conversation' (unconditional).
        """
        if any(id(g) in self.trigger_tests for g in (*guards, *inline)):
            return "behind a trigger"
        if with_content:
            return "appended to content"
        if loops and not any(_is_role_guard(g) for g in guards):
            return "every message"
        if any(_mentions(g, {"tools"}) for g in guards):
            return "tool instructions"
        return "guarded" if guards else "every conversation"


def _replacements(
    tree: nodes.Template,
) -> Iterator[tuple[nodes.Node, nodes.Node | None, list[nodes.Expr]]]:
    """Every `x|replace(...)` and `x.replace(...)`: the node, `x` and the arguments."""
    for flt in tree.find_all(nodes.Filter):
        if flt.name == "replace":
            yield flt, flt.node, flt.args
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Getattr) and call.node.attr == "replace":
            yield call, call.node.node, call.args


def written_turns(text: str) -> list[str]:
    """The roles of the turns a literal writes whole: a user or assistant header, then text.

    A template that writes an assistant header and then `See https://...` has planted a
    reply for the model to imitate (a few-shot backdoor); a generation prompt, a header alone
    or a header followed by markup (`<think>`) writes none.
    """
    turns, role = [], ""
    for segment in MARKUP.split(text):
        if found := TURN_ROLES.match(segment):
            role, segment = found.group(1), segment[found.end() :]
        if role and re.search(r"[A-Za-z0-9]", segment):
            turns.append(role)
            role = ""
    return turns


def is_markup(text: str) -> bool:
    """True for chat markup and punctuation: special tokens, tags, role headers, whitespace."""
    rest = MARKUP.sub("", text)
    rest = re.sub(r"\b(system|user|assistant|tool|ipython|model|developer)\b", "", rest)
    return not re.search(r"[A-Za-z0-9]", rest)


def _outputs(
    node: nodes.Node, guards: tuple[nodes.Node, ...] = (), loops: int = 0
) -> Iterator[tuple[nodes.Output, tuple[nodes.Node, ...], int]]:
    """Every Output node with the If tests above it and how many message loops enclose it."""
    if isinstance(node, nodes.Output):
        yield node, guards, loops
        return
    if isinstance(node, nodes.If):
        for child in node.body:
            yield from _outputs(child, (*guards, node.test), loops)
        for branch in node.elif_:
            yield from _outputs(branch, (*guards, node.test), loops)
        for child in node.else_:
            yield from _outputs(child, (*guards, node.test), loops)
        return
    if isinstance(node, nodes.For):
        over_messages = _mentions(node.iter, {"messages"})
        for child in node.body:
            yield from _outputs(child, guards, loops + over_messages)
        for child in node.else_:
            yield from _outputs(child, guards, loops)
        return
    for child in node.iter_child_nodes():
        yield from _outputs(child, guards, loops)


def _error_messages(node: nodes.Node) -> set[int]:
    """Ids of the literals passed to `raise_exception`: shown to the caller, never emitted."""
    return {
        id(const)
        for call in _walk(node, nodes.Call)
        if isinstance(call.node, nodes.Name) and call.node.name == "raise_exception"
        for const in _str_consts(call)
    }


def _is_role_guard(test: nodes.Node) -> bool:
    """A condition on a message's role, its position or a system message."""
    return bool(_identifiers(test) & {"role", "system", "first", "last", "index0", "index"})


def _identifiers(node: nodes.Node) -> set[str]:
    """Variable names, attribute and item keys, and string literals in an expression."""
    found = {n.name for n in _walk(node, nodes.Name)}
    found |= {g.attr for g in _walk(node, nodes.Getattr)}
    found |= {c.value for c in _str_consts(node)}
    return found


def _relayed(tree: nodes.Template, trigger_tests: set[int]) -> set[int]:
    """Tests on a flag that a trigger branch sets: `{% set seen.hit = true %}` under the trigger.

    A template can note the trigger in one loop and act on it in another; the second branch is
    as much behind the trigger as the first.
    """
    flags: set[tuple[str, str]] = set()
    for branch in tree.find_all(nodes.If):
        if id(branch.test) in trigger_tests:
            for assign in (a for node in branch.body for a in _walk(node, nodes.Assign)):
                target = assign.target
                if isinstance(target, nodes.NSRef):
                    flags.add((target.name, target.attr))
                elif isinstance(target, nodes.Name):
                    flags.add((target.name, ""))
    if not flags:
        return set()
    return {
        id(test)
        for test in _branch_tests(tree)
        if id(test) not in trigger_tests
        and (
            any((n.name, "") in flags for n in _walk(test, nodes.Name))
            or any(
                isinstance(g.node, nodes.Name) and (g.node.name, g.attr) in flags
                for g in _walk(test, nodes.Getattr)
            )
        )
    }


def _branch_tests(tree: nodes.Template) -> Iterator[nodes.Node]:
    for branch in tree.find_all(nodes.If):
        yield branch.test
    for choice in tree.find_all(nodes.CondExpr):
        yield choice.test
    for loop in tree.find_all(nodes.For):
        if loop.test is not None:
            yield loop.test


def _content_names(tree: nodes.Template) -> set[str]:
    """Names a `{% set %}` or a loop binds to message content (two passes reach x = y = ...)."""
    names: set[str] = set()
    for _ in range(2):
        for assign in tree.find_all(nodes.Assign):
            if isinstance(assign.target, nodes.Name) and _mentions(
                assign.node, CONTENT_KEYS | names
            ):
                names.add(assign.target.name)
    return names


def _mentions(node: nodes.Node, keys: set[str]) -> bool:
    """True when the expression names any of `keys` as a variable, attribute or item."""
    return bool(_identifiers(node) & keys)


def _names_tool(target: nodes.Name | nodes.NSRef) -> bool:
    name = target.name if isinstance(target, nodes.Name) else target.attr
    return name in TOOL_KEYS or name.endswith(("tool_call", "tool_calls"))


def _walk(node: nodes.Node, kind: type[N] | tuple[type[N], ...]) -> Iterator[N]:
    """The node itself when it is of `kind`, then every descendant that is."""
    if isinstance(node, kind):
        yield node
    yield from node.find_all(kind)


def _str_consts(node: nodes.Node) -> Iterator[nodes.Const]:
    for const in _walk(node, nodes.Const):
        if isinstance(const, nodes.Const) and isinstance(const.value, str):
            yield const


def _const(node: nodes.Node) -> object:
    return node.value if isinstance(node, nodes.Const) else None


def _render(node: nodes.Node) -> str:
    if isinstance(node, nodes.NSRef):
        return f"{node.name}.{node.attr}"
    return getattr(node, "name", type(node).__name__)
