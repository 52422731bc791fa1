"""The fenced code blocks of the README and the docs pages, and the checks tests/docs/test_docs.py runs on them.

A block can be marked by an HTML comment on the line just before its fence:

* ``<!-- docs-test: no-run (why) -->`` — a Python block is compiled and its names checked (every name
  it reads is imported, assigned or a builtin) but not run, e.g. because it downloads a model;
* ``<!-- docs-test: gpu -->`` — a block that needs a GPU machine: parsed, its ``reasonkit`` options
  checked, nothing run.

Unmarked Python blocks are run; unmarked shell blocks are parsed with ``bash -n``, every ``reasonkit``
command in them has its sub-command and options checked against the click command (the objects that
``--help`` prints), repository paths they name must exist, and ``reasonkit verify`` commands are run.
"""
from __future__ import annotations

import ast
import builtins
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_MARK = re.compile(r"<!--\s*docs-test:\s*([\w-]+)")
# Paths in a command that must exist in the repository (outputs such as runs/ are not checked).
_REPO_PATH = re.compile(r"^(examples|train|benchmarks|docs)/[\w./-]+$")


@dataclass(frozen=True)
class Block:
    file: str      # relative to the repository root
    line: int      # line of the opening fence (1-based)
    lang: str
    code: str
    mark: str      # "", "no-run" or "gpu"

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}:{self.lang or 'text'}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks_of(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with the docs-test mark of the line before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang, start = m.group(1), m.group(2), i
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{path}:{start + 1}: code block is never closed")
        prev = lines[start - 1] if start else ""
        mark = _MARK.search(prev)
        out.append(Block(str(path.relative_to(ROOT)), start + 1, lang.lower(), "\n".join(body) + "\n",
                         mark.group(1) if mark else ""))
        i += 1
    return out


def all_blocks() -> list[Block]:
    return [b for path in doc_files() for b in blocks_of(path)]


def undefined_names(code: str) -> set[str]:
    """Names a Python block reads that it never binds (imports, assignments, defs, loop and ``with``
    targets, comprehension variables) and that are not builtins: ``tokenizer``, ``ds``, ``model``."""
    tree = ast.parse(code)
    bound, read = set(dir(builtins)), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return read - bound


def shell_commands(code: str) -> list[list[str]]:
    """The block's commands as token lists: continuation lines joined, comments dropped, ``&&`` / ``;``
    / ``|`` / ``&`` split. ``$'...'`` (ANSI-C quoting) is read as a plain quoted word."""
    text = code.replace("\\\n", " ")
    commands: list[list[str]] = []
    for line in text.splitlines():
        lexer = shlex.shlex(line.replace("$'", "'"), posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        for tok in lexer:
            if tok and set(tok) <= set(";&|"):
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(tok)
        if current:
            commands.append(current)
    return commands


def reasonkit_invocations(commands: list[list[str]]) -> list[list[str]]:
    """The arguments after ``reasonkit`` (or ``"$(which reasonkit)"``) in each command that runs it."""
    out = []
    for tokens in commands:
        for i, tok in enumerate(tokens):
            if tok == "reasonkit" or tok.endswith("/reasonkit") or tok == "$(which reasonkit)":
                out.append(tokens[i + 1:])
                break
    return out


def option_problems(args: list[str]) -> list[str]:
    """What is wrong with ``reasonkit ARGS`` as the click command sees it: an unknown sub-command or
    option. ``...`` stands for elided arguments."""
    import click

    from reasonkit.cli import main

    if not args or args[0] in ("-h", "--help", "--version"):
        return []
    command, group, name = main.commands.get(args[0]), main, args[0]
    while isinstance(command, click.Group) and len(args) > 1 and not args[1].startswith("-"):
        group, name, args = command, f"{name} {args[1]}", args[1:]  # a sub-command of a group (reasonkit qa ...)
        command = group.commands.get(args[0])
    if command is None:
        return [f"unknown sub-command {name!r} (known: {', '.join(sorted(group.commands))})"]
    known = {opt for p in command.params if isinstance(p, click.Option) for opt in (*p.opts, *p.secondary_opts)}
    known |= {"-h", "--help"}
    flags = {opt for p in command.params if isinstance(p, click.Option) and p.is_flag
             for opt in (*p.opts, *p.secondary_opts)} | {"-h", "--help"}
    problems, expect_value = [], False
    for tok in args[1:]:
        if expect_value:
            expect_value = False
            continue
        if tok.startswith("-") and len(tok) > 1 and not re.match(r"^-\d", tok):
            opt = tok.split("=", 1)[0]
            if opt not in known:
                problems.append(f"reasonkit {name}: unknown option {opt}")
            elif "=" not in tok and opt not in flags:
                expect_value = True
    return problems


def repo_paths(commands: list[list[str]]) -> list[str]:
    """Tokens of the commands that name a file or folder of the repository (examples/, train/, ...)."""
    return [tok.split("=", 1)[-1] for tokens in commands for tok in tokens
            if _REPO_PATH.match(tok.split("=", 1)[-1])]
