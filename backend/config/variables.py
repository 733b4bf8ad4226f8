"""Lima's template variables: ``{{.Name}}``, ``{{.Param.KEY}}``, ``{{if ...}}...{{end}}``.

A small reader for the part of Go's text/template that Lima's templates use: fields
(``.Dir``, ``.Param.url``, ``.Instance.Config.vmOpts...``), ``{{if}}``/``{{else}}``/``{{end}}``
with ``not``, ``and``, ``or``, ``eq``, ``ne`` and parentheses, string literals, and the ``{{-``
/ ``-}}`` whitespace trimming. A field that does not exist is an error, never literal text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_TOKEN = re.compile(r'\s*(\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+)')
_FUNCS = ("not", "and", "or", "eq", "ne")


class VariableError(ValueError):
    """A template that names an unknown variable or cannot be read."""


Resolve = Callable[[list[str]], Any]


@dataclass
class _If:
    condition: str
    then: list[Any]
    otherwise: list[Any]


def expand(text: str, resolve: Resolve) -> str:
    """``text`` with every action evaluated; ``resolve(["Param", "url"])`` gives a field."""
    if "{{" not in text:
        return text
    tree, _ = _parse(_tokens(text), 0, top=True)
    return "".join(_render(tree, resolve))


def _tokens(text: str) -> list[tuple[str, str]]:
    """("text", str) and ("action", body) pieces, whitespace trimmed where asked."""
    pieces: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(text):
        chunk = text[pos : match.start()]
        if trim_next:
            chunk = chunk.lstrip()
        if match.group(1):
            chunk = chunk.rstrip()
        pieces.append(("text", chunk))
        pieces.append(("action", match.group(2).strip()))
        trim_next = bool(match.group(3))
        pos = match.end()
    tail = text[pos:]
    if "{{" in tail:
        raise VariableError("a '{{' is not closed with '}}'")
    pieces.append(("text", tail.lstrip() if trim_next else tail))
    return pieces


def _parse(pieces: list[tuple[str, str]], i: int, top: bool) -> tuple[list[Any], int]:
    """Nodes until {{else}}/{{end}} (or the end at top level); returns (nodes, next index)."""
    nodes: list[Any] = []
    while i < len(pieces):
        kind, body = pieces[i]
        if kind == "text":
            nodes.append(body)
            i += 1
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in ("else", "end"):
            if top:
                raise VariableError(f"{{{{{word}}}}} without {{{{if}}}}")
            return nodes, i
        if word == "if":
            then, i = _parse(pieces, i + 1, top=False)
            otherwise: list[Any] = []
            if pieces[i][1] == "else":
                otherwise, i = _parse(pieces, i + 1, top=False)
            if pieces[i][1] != "end":
                raise VariableError("{{if}} needs {{end}}")
            nodes.append(_If(body[2:].strip(), then, otherwise))
            i += 1
            continue
        nodes.append(("action", body))
        i += 1
    if not top:
        raise VariableError("{{if}} is not closed with {{end}}")
    return nodes, i


def _render(nodes: list[Any], resolve: Resolve) -> list[str]:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _If):
            branch = node.then if _truthy(evaluate(node.condition, resolve)) else node.otherwise
            out.extend(_render(branch, resolve))
        else:
            out.append(_show(evaluate(node[1], resolve)))
    return out


def evaluate(expression: str, resolve: Resolve) -> Any:
    """The value of one action's expression."""
    tokens = _TOKEN.findall(expression)
    if not tokens:
        raise VariableError("an empty {{ }}")
    value, used = _command(tokens, 0, resolve)
    if used != len(tokens):
        raise VariableError(f"cannot read {expression!r}")
    return value


def _command(tokens: list[str], i: int, resolve: Resolve) -> tuple[Any, int]:
    """A function call (``eq .A "x"``) or a single operand, up to ')' or the end."""
    if tokens[i] in _FUNCS:
        name = tokens[i]
        args: list[Any] = []
        i += 1
        while i < len(tokens) and tokens[i] != ")":
            value, i = _operand(tokens, i, resolve)
            args.append(value)
        return _call(name, args), i
    return _operand(tokens, i, resolve)


def _operand(tokens: list[str], i: int, resolve: Resolve) -> tuple[Any, int]:
    token = tokens[i]
    if token == "(":
        value, i = _command(tokens, i + 1, resolve)
        if i >= len(tokens) or tokens[i] != ")":
            raise VariableError("a '(' is not closed")
        return value, i + 1
    if token.startswith('"'):
        return bytes(token[1:-1], "utf-8").decode("unicode_escape"), i + 1
    if token in ("true", "false"):
        return token == "true", i + 1
    if token.startswith("."):
        return resolve([part for part in token[1:].split(".") if part]), i + 1
    raise VariableError(f"{token!r} is not something Lima's templates use")


def _call(name: str, args: list[Any]) -> Any:
    if name == "not" and len(args) == 1:
        return not _truthy(args[0])
    if name in ("and", "or") and args:
        pick = (lambda v: not _truthy(v)) if name == "and" else _truthy
        return next((v for v in args if pick(v)), args[-1])
    if name in ("eq", "ne") and len(args) == 2:
        return (args[0] == args[1]) == (name == "eq")
    raise VariableError(f"{name} with {len(args)} arguments")


def _truthy(value: Any) -> bool:
    return value not in (None, False, "", 0) and value != [] and value != {}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
