"""One config pattern for ``reasonkit eval``, ``train`` and ``sft``: a typed dataclass per entry point whose
fields carry everything about an option, and the command line, checks and files generated from it.

**Options.** Every init field becomes a flag (``lora_r`` -> ``--lora-r``). Its type, choices
(``Literal[...]``), bounds and help come from the field: the annotation and ``metadata``, whose keys are

- ``help``: the option's help text (the dataclass default is shown with it);
- ``flags``: the option's names when not ``--field-name``, e.g. ``("--model", "-m")``;
- ``multiple``: repeatable (``--lora A --lora B``); a dict field then takes one ``KEY=VALUE`` per flag;
- ``list``: comma-separated (``A,B,...``; automatic for tuple fields that are not ``multiple``);
- ``pairs``: ``KEY=VALUE,KEY=VALUE`` read by :func:`parse_pairs` (automatic for dict fields);
- ``none_words``: words that give None on the command line (``--limit all``);
- ``ge`` / ``gt`` / ``le`` / ``lt``: bounds, checked by :func:`check_fields` (None is always allowed
  for an ``X | None`` field); ``hint``: text added to a bounds error;
- ``metavar``; ``cli: False`` leaves a field off the command line.

Booleans are ``--x/--no-x``. Every option defaults to ``None`` ("not given"), so flags can be laid over a
``--config FILE`` (:func:`read_yaml`), which is laid over the dataclass defaults (:func:`overrides`).

**Checks.** :func:`check_fields` holds a config's values (from YAML, a flag or Python) to their
annotations and bounds: one line naming the field, e.g. ``lora_r = '8': must be a whole number``.

**Run directory.** :func:`run_dir` is the one rule for where a run goes by default:
``runs/<kind>/<task>-<model>``.

Imports click and PyYAML only.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterable

import click

from .errors import ReasonkitError, did_you_mean
from .files import read_text

Option = tuple[str, str, click.Option]  # (field name, kind: value|list|pairs|multiple|multiple_pairs, option)

# What a none_words flag gives: "set this field to None" (a plain None means "flag not given").
EXPLICIT_NONE = type("ExplicitNone", (), {"__repr__": lambda self: "EXPLICIT_NONE"})()


def base_type(tp: Any) -> Any:
    """``int | None`` -> int, ``Optional[float]`` -> float, ``tuple[str, ...]`` -> tuple, Literal -> str."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return base_type(args[0]) if len(args) == 1 else str
    if origin in (list, tuple, typing.Sequence):
        return tuple
    if origin is dict:
        return dict
    if origin is typing.Literal:
        return str
    return tp


def literal_choices(tp: Any) -> list[str] | None:
    """The string choices of ``Literal[...]`` (also inside ``Optional``), else None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            found = literal_choices(arg)
            if found:
                return found
        return None
    if typing.get_origin(tp) is typing.Literal:
        return [a for a in typing.get_args(tp) if isinstance(a, str)] or None
    return None


def _optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


class _IntOrNone(click.ParamType):
    """A whole number, or one of ``words`` for None (``--limit all``); a bad value is one line."""
    name = "integer"

    def __init__(self, flag: str, words: tuple[str, ...]) -> None:
        self.flag, self.words = flag, tuple(words)

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, int) or value is EXPLICIT_NONE:
            return value
        if str(value).strip().lower() in self.words:
            return EXPLICIT_NONE
        try:
            return int(value)
        except ValueError:
            raise ReasonkitError(f"{self.flag} {value!r}: give a whole number or '{self.words[0]}'") from None


class _Choice(click.Choice):
    """``click.Choice`` whose bad value is one line naming the flag, with "did you mean" (no usage text)."""
    def __init__(self, flag: str, choices: list[str]) -> None:
        super().__init__(choices)
        self.flag = flag

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value in self.choices:
            return value
        raise ReasonkitError(f"{self.flag} {value!r}: {did_you_mean(str(value), list(self.choices), 'choice')}")


def _with_default(text: str, f: dataclasses.Field) -> str:
    """The help text, with the dataclass default when there is one worth showing."""
    d = f.default
    if d is dataclasses.MISSING or d is None or isinstance(d, bool) or d == () or d == "":
        return text
    return f"{text}  [default: {d}]".strip()


def field_options(cls: type, *, help: dict[str, str] | None = None, skip: Iterable[str] = (),
                  lists: Iterable[str] = (), dicts: Iterable[str] = ()) -> list[Option]:
    """One click option per init field of the dataclass ``cls`` (see the module docstring)."""
    hints = typing.get_type_hints(cls)
    help, skip, lists, dicts = help or {}, set(skip), set(lists), set(dicts)
    opts: list[Option] = []
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata or {})
        if f.name in skip or not f.init or meta.get("cli") is False:
            continue
        decls = list(meta.get("flags") or ["--" + f.name.replace("_", "-")])
        flag = decls[0]
        hint = hints.get(f.name, str)
        tp = base_type(hint)
        text = _with_default(help.get(f.name) or meta.get("help", ""), f)
        choices = literal_choices(hint)
        common = dict(default=None, metavar=meta.get("metavar"))
        if meta.get("multiple"):
            kind = "multiple_pairs" if tp is dict else "multiple"
            opt = click.Option([*decls, f.name], multiple=True, default=None, metavar=meta.get("metavar"),
                               help=f"{text} (repeatable)".strip())
        elif f.name in lists or meta.get("list") or tp is tuple:
            kind = "list"
            opt = click.Option([*decls, f.name], default=None, metavar=meta.get("metavar", "A,B,..."),
                               help=f"{text} (comma-separated)".strip())
        elif f.name in dicts or meta.get("pairs") or tp is dict:
            kind = "pairs"
            opt = click.Option([*decls, f.name], default=None, metavar=meta.get("metavar", "K=V,..."),
                               help=f"{text} (KEY=VALUE pairs, comma-separated)".strip())
        elif tp is bool:
            kind = "value"
            names = [f"{flag}/--no-{flag[2:]}", *[d for d in decls[1:] if not d.startswith("--")]]
            opt = click.Option([*names, f.name], default=None, help=text)
        elif meta.get("none_words"):
            kind = "value"
            words = tuple(meta["none_words"])
            opt = click.Option([*decls, f.name], type=_IntOrNone(flag, words), **{**common, "metavar":
                               common["metavar"] or f"N|{words[0]}"}, help=text)
        elif tp in (int, float):
            kind = "value"
            opt = click.Option([*decls, f.name], type=tp, **common, help=text)
        elif choices:
            kind = "value"
            opt = click.Option([*decls, f.name], type=_Choice(flag, choices), **common, help=text)
        else:
            kind = "value"
            opt = click.Option([*decls, f.name], type=str, **common, help=text)
        opts.append((f.name, kind, opt))
    return opts


def parse_pairs(flag: str, text: str | None) -> dict[str, Any]:
    """``"a=1,b=x"`` -> ``{"a": 1, "b": "x"}`` (values read as YAML scalars); a part without ``=``
    is one line naming the flag."""
    import yaml

    out: dict[str, Any] = {}
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ReasonkitError(f"{flag} {text!r}: write KEY=VALUE pairs separated by commas")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def parse_pair_list(flag: str, specs: Iterable[str], metavar: str = "KEY=VALUE") -> dict[str, str]:
    """Repeated ``--flag KEY=VALUE`` -> ``{KEY: VALUE}`` (values kept as text)."""
    out: dict[str, str] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ReasonkitError(f"{flag} {spec!r}: write {metavar}, e.g. {flag} question=problem")
        out[key.strip()] = value.strip()
    return out


def overrides(options: list[Option], values: dict[str, Any],
              list_value: Callable[[str, tuple[str, ...]], Any] | None = None) -> dict[str, Any]:
    """The flags that were given, converted to field values (lists split, pairs parsed; a none_words
    flag gives None). ``list_value(name, parts)`` may turn a split list into the field's value."""
    out: dict[str, Any] = {}
    for name, kind, opt in options:
        value = values.get(name)
        if value is None or (kind.startswith("multiple") and not value):
            continue
        flag = opt.opts[0]
        if value is EXPLICIT_NONE:
            value = None
        elif kind == "list":
            parts = tuple(v.strip() for v in str(value).split(",") if v.strip())
            value = list_value(name, parts) if list_value else parts
        elif kind == "pairs":
            value = parse_pairs(flag, value)
        elif kind == "multiple":
            value = tuple(value)
        elif kind == "multiple_pairs":
            value = parse_pair_list(flag, value, opt.metavar or "KEY=VALUE")
        out[name] = value
    return out


# --------------------------------------------------------------------------- values and files


def _bounds_error(meta: dict[str, Any], v: float) -> str | None:
    lo = ("ge", meta["ge"]) if "ge" in meta else ("gt", meta["gt"]) if "gt" in meta else None
    hi = ("le", meta["le"]) if "le" in meta else ("lt", meta["lt"]) if "lt" in meta else None
    bad = (lo and (v < lo[1] if lo[0] == "ge" else v <= lo[1])) or (hi and (v > hi[1] if hi[0] == "le" else v >= hi[1]))
    if not bad:
        return None
    if lo and hi:
        return f"must be in {'[' if lo[0] == 'ge' else '('}{lo[1]:g}, {hi[1]:g}{']' if hi[0] == 'le' else ')'}"
    if lo:
        return f"must be at least {lo[1]:g}" if lo[0] == "ge" else f"must be > {lo[1]:g}"
    return f"must be at most {hi[1]:g}" if hi[0] == "le" else f"must be < {hi[1]:g}"  # type: ignore[index]


def check_fields(cfg: Any, error: type[ReasonkitError] = ReasonkitError,
                 label: Callable[[str, Any], str] | None = None) -> None:
    """Hold every field of the dataclass instance ``cfg`` to its annotation and bounds metadata.

    A ``none_words`` string becomes None. Whole numbers must be ints (not bools); numbers may be ints
    (stored as float) and must be finite; booleans must be bools; text must be str; ``Literal`` values
    must be a choice (with "did you mean"); dict fields must be mappings; a list for a tuple field
    becomes a tuple. ``label(name, value)`` names the value in the message (default ``name = value``)."""
    name_of = label or (lambda name, v: f"{name} = {v!r}")
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        hint = hints.get(f.name, Any)
        if isinstance(v, str) and v.strip().lower() in (f.metadata or {}).get("none_words", ()):
            setattr(cfg, f.name, v := None)  # ``limit: all`` in a file, as ``--limit all`` on the command line
        if v is None or hint is Any:
            continue
        tp, choices, meta = base_type(hint), literal_choices(hint), dict(f.metadata or {})
        if tp is int and (isinstance(v, bool) or not isinstance(v, int)):
            raise error(f"{name_of(f.name, v)}: must be a whole number")
        if tp is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise error(f"{name_of(f.name, v)}: must be a number")
            if not math.isfinite(v):
                raise error(f"{name_of(f.name, v)}: must be a finite number")
            setattr(cfg, f.name, v := float(v))
        if tp is bool and not isinstance(v, bool):
            raise error(f"{name_of(f.name, v)}: must be true or false")
        if tp is dict and not isinstance(v, dict):
            raise error(f"{name_of(f.name, v)}: must be a mapping (key: value)")
        if tp is tuple and isinstance(v, list):
            setattr(cfg, f.name, v := tuple(v))
        if tp is str and not isinstance(v, str):
            raise error(f"{name_of(f.name, v)}: must be a string")
        if choices and v not in choices:
            raise error(f"{name_of(f.name, v)}: {did_you_mean(str(v), choices, f.name.replace('_', ' '))}")
        if tp in (int, float):
            problem = _bounds_error(meta, v)
            if problem:
                raise error(f"{name_of(f.name, v)}: {problem}{meta.get('hint', '')}")


def read_yaml(path: str | Path, error: type[ReasonkitError] = ReasonkitError) -> dict[str, Any]:
    """The mapping in a YAML config file; an unreadable file, bad YAML or a non-mapping is one line
    starting ``config PATH``."""
    import yaml

    path = Path(path)
    try:
        text = read_text(path, "config ", "a YAML config file")
    except ReasonkitError as exc:  # "config PATH: <why>"
        why = exc.message[len(f"config {path}: "):]
        raise error(f"config {path}: cannot read it ({why})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"config {path}{where}: not valid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"config {path}: must be a mapping of key: value lines, not a {type(data).__name__}")
    return data


def run_dir(kind: str, output: str | None, task: str, model: str | None) -> Path:
    """Where a run goes: ``output`` if given, else ``runs/<kind>/<task>-<model>`` (``model`` None = the
    embedded default, named ``default``; a ``.gguf`` suffix dropped; ``:`` in the task made ``_``)."""
    if output:
        return Path(output).expanduser()
    name = Path(str(model)).name if model else "default"
    if name.lower().endswith(".gguf"):
        name = name[: -len(".gguf")]
    return Path("runs") / kind / f"{task.replace(':', '_')}-{name}"
