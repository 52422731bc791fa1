"""Command-line options generated from a config dataclass, so a CLI can never drift from its config.

Every field of the dataclass becomes a flag (``lora_r`` -> ``--lora-r``); the type, the choices
(``Literal[...]``) and the help come from the field itself (``metadata={"help": ...}``). Booleans are
``--x/--no-x``; fields listed as *lists* are comma-separated; fields listed as *dicts* are
``KEY=VALUE,KEY=VALUE`` pairs whose values are read as YAML scalars (:func:`parse_pairs`). Every
option defaults to ``None``, meaning "not given", so flags can be laid over a ``--config FILE``.

Used by ``reasonkit train`` and ``reasonkit sft``. Imports click and PyYAML only.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Callable, Iterable

import click

from .errors import ReasonkitError

Option = tuple[str, Any, click.Option]  # (field name, base type, the click option)


def base_type(tp: Any) -> Any:
    """``int | None`` -> int, ``Optional[float]`` -> float, ``tuple[str, ...]`` -> tuple, Literal -> str."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return base_type(args[0]) if len(args) == 1 else str
    if origin in (list, tuple, typing.Sequence):
        return tuple
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


def field_options(cls: type, *, help: dict[str, str] | None = None, skip: Iterable[str] = (),
                  lists: Iterable[str] = (), dicts: Iterable[str] = ()) -> list[Option]:
    """One click option per init field of the dataclass ``cls`` (see the module docstring)."""
    hints = typing.get_type_hints(cls)
    help, skip, lists, dicts = help or {}, set(skip), set(lists), set(dicts)
    opts: list[Option] = []
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        flag = "--" + f.name.replace("_", "-")
        hint = hints.get(f.name, str)
        tp = base_type(hint)
        text = help.get(f.name) or (f.metadata.get("help", "") if f.metadata else "")
        choices = literal_choices(hint)
        if f.name in lists or tp is tuple:
            opt = click.Option([flag, f.name], default=None, metavar="A,B,...", help=f"{text} (comma-separated)".strip())
            tp = tuple
        elif f.name in dicts or tp is dict:
            opt = click.Option([flag, f.name], default=None, metavar="K=V,...",
                               help=f"{text} (KEY=VALUE pairs, comma-separated)".strip())
            tp = dict
        elif tp is bool:
            opt = click.Option([f"{flag}/--no-{flag[2:]}", f.name], default=None, help=text)
        elif tp in (int, float):
            opt = click.Option([flag, f.name], type=tp, default=None, help=text)
        elif choices:
            opt = click.Option([flag, f.name], type=click.Choice(choices), default=None, help=text)
        else:
            opt = click.Option([flag, f.name], type=str, default=None, help=text)
        opts.append((f.name, tp, opt))
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


def overrides(options: list[Option], values: dict[str, Any],
              list_value: Callable[[str, tuple[str, ...]], Any] | None = None) -> dict[str, Any]:
    """The flags that were given, converted to field values (lists split, pairs parsed).
    ``list_value(name, parts)`` may turn a split list into the field's value (default: the tuple)."""
    out: dict[str, Any] = {}
    for name, tp, _ in options:
        value = values.get(name)
        if value is None:
            continue
        if tp is tuple:
            parts = tuple(v.strip() for v in str(value).split(",") if v.strip())
            value = list_value(name, parts) if list_value else parts
        elif tp is dict:
            value = parse_pairs("--" + name.replace("_", "-"), value)
        out[name] = value
    return out
