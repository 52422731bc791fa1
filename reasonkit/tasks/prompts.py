"""Prompt templates: how a data item becomes the text a backend generates from.

A :class:`PromptTemplate` is chat messages with ``{field}`` placeholders filled from the item
(``{question}``, ``{numbers}``, ``{target}``, or any column of a custom data set):

* ``system`` — an optional system message;
* ``user`` — the user message;
* ``prefill`` — an optional start of the assistant turn that the model continues (the AgileRL
  Countdown recipe pre-fills ``Let me solve this step by step.\\n<think>``);
* few-shot examples — (user, assistant) pairs placed before the question;
* ``raw`` — no chat template: plain text for base models.

**Pre-fill and scoring.** The model never writes the pre-filled text, so a verifier that looks
for ``<think>`` would miss it. The harness therefore scores ``score_prefix + completion`` where
``score_prefix`` is the part of the pre-fill from its first ``<think>`` tag on (empty when the
pre-fill opens no tag). This is what the AgileRL recipe does before its format reward
(it prepends ``<think>``), it keeps the format verifier's strict mode usable unchanged, and the
saved ``completion`` column stays exactly what the model generated.

``load_template(spec, default)`` turns ``--template`` (a user message, or a .json / .yaml file)
into a template; files are read through :mod:`reasonkit.files` (one-line errors).

**Flags that name a file** (:func:`prompt_text`, for ``--template``, ``--system`` and ``--prefill``):
a value that names an existing ``.txt`` / ``.md`` file is read and its text used (one trailing newline
dropped); a ``.jinja`` / ``.j2`` file is read as an lm-eval-style Jinja template whose only
expressions are ``{{ field }}`` placeholders (converted to ``{field}``; ``{% ... %}`` blocks and
filters are refused); ``--template`` also reads ``.json`` / ``.yaml`` template files. Any other
existing file or a directory is refused in one line that lists the extensions read, and so is a
missing file whose name ends in one of them: the value would otherwise become the prompt itself
(``--template prompt.txt`` sending the text "prompt.txt"). A user template in which no ``{field}``
appears (system, user and pre-fill together) gives every item the same prompt; it is refused unless
``constant_prompt`` (``--constant-prompt``) asks for it.
"""
from __future__ import annotations

import json
import re
import string
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from ..errors import ReasonkitError
from ..files import read_text

THINK_TAG = "<think>"


def template_fields(text: str) -> list[str]:
    """The ``{name}`` placeholders of a format string (``{{`` escapes are not fields)."""
    names = []
    try:
        for _, name, _, _ in string.Formatter().parse(text):
            if name is not None:
                if name == "" or not name.isidentifier():
                    raise ReasonkitError(f"prompt template {text[:60]!r}: placeholder {{{name}}} must be a "
                                         "column name such as {question}; write {{ and }} for literal braces")
                names.append(name)
    except ValueError as exc:  # unbalanced braces
        raise ReasonkitError(f"prompt template {text[:60]!r}: {exc}; write {{{{ and }}}} for literal braces") \
            from None
    return names


def fill(text: str, item: dict[str, Any]) -> str:
    """``text`` with its ``{field}`` placeholders filled from ``item`` (lists joined with ", ")."""
    values = {}
    for name in template_fields(text):
        if name not in item:
            cols = ", ".join(sorted(k for k in item if not k.startswith("_")))
            raise ReasonkitError(f"prompt template field {{{name}}} has no column in the data "
                                 f"(columns: {cols}); map one with --column {name}=COLUMN")
        value = item[name]
        values[name] = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
    return text.format(**values)


@dataclass(frozen=True)
class PromptTemplate:
    user: str = "{question}"
    system: str | None = None
    prefill: str = ""
    raw: bool = False
    # Few-shot examples as already-written (user, assistant) text pairs.
    few_shot: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # One more example, shown in place of an example that is the item being asked (see :meth:`shots`).
    few_shot_spare: tuple[str, str] | None = None

    @property
    def fields(self) -> list[str]:
        seen: list[str] = []
        for text in (self.system or "", self.user, self.prefill):
            for name in template_fields(text):
                if name not in seen:
                    seen.append(name)
        return seen

    @property
    def score_prefix(self) -> str:
        """What the verifiers see before the completion (see the module docstring)."""
        pos = self.prefill.find(THINK_TAG)
        return self.prefill[pos:] if pos >= 0 else ""

    def check_columns(self, columns: Sequence[str], where: str) -> None:
        missing = [f for f in self.fields if f not in columns]
        if missing:
            raise ReasonkitError(f"{where}: prompt template field {{{missing[0]}}} has no column "
                                 f"(columns: {', '.join(sorted(columns))}); map one with --column "
                                 f"{missing[0]}=COLUMN or change --template")

    def shots(self, item: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        """The worked examples shown before ``item``: never ``item`` itself. When the examples come
        from the split being asked (sampling the train split with few-shot, as ``reasonkit sft
        --sample-few-shot`` does), an example whose question is the item's is dropped and the spare
        takes its place, as lm-evaluation-harness leaves the current document out of its examples.
        Compared by the rendered question text, so a generator's train and test ids never collide."""
        if not self.few_shot:
            return ()
        question = fill(self.user, item)
        if all(q != question for q, _ in self.few_shot):
            return self.few_shot
        pool = [s for s in (*self.few_shot, *([self.few_shot_spare] if self.few_shot_spare else ())) if s[0] != question]
        return tuple(pool[:len(self.few_shot)])

    def messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        msgs: list[dict[str, str]] = []
        if self.system:
            msgs.append({"role": "system", "content": fill(self.system, item)})
        for q, a in self.shots(item):
            msgs.append({"role": "user", "content": q})
            msgs.append({"role": "assistant", "content": a})
        msgs.append({"role": "user", "content": fill(self.user, item)})
        return msgs

    def render(self, item: dict[str, Any], tokenizer: Any = None,
               chat_template_kwargs: dict[str, Any] | None = None) -> str:
        """The prompt text: chat template with a generation prompt (and ``chat_template_kwargs``, e.g.
        ``enable_thinking=False``), then the pre-fill."""
        prefill = fill(self.prefill, item) if self.prefill else ""
        if self.raw:
            parts = [fill(self.system, item)] if self.system else []
            parts += [f"Question: {q}\nAnswer: {a}" for q, a in self.shots(item)]
            parts.append(f"Question: {fill(self.user, item)}\nAnswer:")
            text = "\n\n".join(parts)
            return text + (" " + prefill if prefill else "")
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ReasonkitError("the model's tokenizer has no chat template; pass --raw to prompt it as a "
                                 "base model with plain text")
        text = tokenizer.apply_chat_template(self.messages(item), tokenize=False, add_generation_prompt=True,
                                             **(chat_template_kwargs or {}))
        return text + prefill

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["few_shot"] = [list(p) for p in self.few_shot]
        if self.few_shot_spare is None:  # absent, as in runs written before the spare existed (same identity)
            del d["few_shot_spare"]
        else:
            d["few_shot_spare"] = list(self.few_shot_spare)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PromptTemplate":
        d = dict(d)
        d["few_shot"] = tuple(tuple(p) for p in d.get("few_shot") or ())
        if d.get("few_shot_spare") is not None:
            d["few_shot_spare"] = tuple(d["few_shot_spare"])
        return cls(**d)


TEMPLATE_KEYS = ("user", "system", "prefill", "raw", "few_shot")


TEXT_FILES = (".txt", ".md")
JINJA_FILES = (".jinja", ".j2")
TEMPLATE_FILES = (".json", ".yaml", ".yml")
_JINJA_FIELD = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")


def _read_extensions(flag: str) -> tuple[str, ...]:
    return TEXT_FILES + JINJA_FILES + (TEMPLATE_FILES if flag == "--template" else ())


def _existing(value: str) -> Path | None:
    """``value`` as an existing path, or None (text with a newline or too long for a path is text)."""
    if not value or "\n" in value or len(value) > 1024:
        return None
    try:
        p = Path(value).expanduser()
        return p if p.exists() else None
    except (OSError, ValueError):
        return None


def jinja_to_format(text: str, where: str) -> str:
    """An lm-eval-style Jinja prompt whose only expressions are ``{{ field }}`` as a ``{field}`` format
    string (other braces escaped); ``{% %}``, ``{# #}`` and filters are refused in one line."""
    out, pos = [], 0
    for m in _JINJA_FIELD.finditer(text):
        out.append(text[pos:m.start()].replace("{", "{{").replace("}", "}}"))
        out.append("{" + m.group(1) + "}")
        pos = m.end()
    rest = text[pos:]
    out.append(rest.replace("{", "{{").replace("}", "}}"))
    outside = _JINJA_FIELD.sub("", text)
    for opener in ("{{", "{%", "{#"):
        if opener in outside:
            raise ReasonkitError(f"{where}: only {{{{ field }}}} placeholders are read from Jinja files "
                                 f"(found {opener!r}: blocks, filters and expressions are not supported); "
                                 "write the prompt with {field} placeholders in a .txt file")
    return "".join(out)


def prompt_text(flag: str, value: str | None) -> str | None:
    """The text a ``--template`` / ``--system`` / ``--prefill`` value stands for (see the module
    docstring): a .txt / .md / .jinja file's text, the value itself when it names no file, ``None``
    for None. A ``--template`` .json / .yaml file is returned unchanged (``load_template`` reads it)."""
    if value is None:
        return None
    exts = _read_extensions(flag)
    listed = ", ".join(exts)
    path = _existing(value)
    suffix = Path(value).suffix.lower() if "\n" not in value else ""
    if path is None:
        if suffix in exts and not any(c.isspace() for c in value):
            raise ReasonkitError(f"{flag} {value}: no such file (a value ending in {suffix} is read as a "
                                 "file; to use it as the text itself, add a space or another word)")
        return value
    if path.is_dir():
        raise ReasonkitError(f"{flag} {value}: is a directory; give the text itself or a file ({listed})")
    if suffix in TEMPLATE_FILES and flag == "--template":
        return value
    if suffix not in TEXT_FILES + JINJA_FILES:
        raise ReasonkitError(f"{flag} {value}: names a file of a kind that is not read (only {listed} files "
                             "are read); give the text itself or one of those files")
    text = read_text(path, f"{flag} ")
    text = text[:-1] if text.endswith("\n") else text
    return jinja_to_format(text, f"{flag} {value}") if suffix in JINJA_FILES else text


def check_not_constant(template: PromptTemplate, constant_prompt: bool) -> None:
    """Refuse a user template with no ``{field}`` at all (every item would get the same prompt)."""
    if not constant_prompt and not template.fields:
        raise ReasonkitError(f"--template {template.user[:60]!r}: no {{field}} of the data appears in the "
                             "template, so every item would get the same prompt; add a placeholder such as "
                             "{question}, or pass --constant-prompt if that is what you want")


def load_template(spec: str | None, default: PromptTemplate) -> PromptTemplate:
    """``--template``: a user message with ``{fields}`` (the rest of ``default`` kept), a .txt / .md /
    .jinja file holding one (:func:`prompt_text`), or a .json / .yaml file holding a mapping with
    ``user`` and optionally ``system``, ``prefill``, ``raw``, ``few_shot``."""
    if spec is None:
        return default
    p = Path(spec).expanduser()
    if p.suffix.lower() not in TEMPLATE_FILES or "\n" in spec:
        return replace(default, user=prompt_text("--template", spec))
    text = read_text(p, "--template ", "a .json / .yaml template file")
    try:
        if p.suffix.lower() == ".json":
            d = json.loads(text)
        else:
            import yaml

            d = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parser error is a bad file
        raise ReasonkitError(f"--template {spec}: cannot parse ({type(exc).__name__})") from None
    if not isinstance(d, dict) or "user" not in d:
        raise ReasonkitError(f"--template {spec}: expected a mapping with at least a 'user' message")
    unknown = set(d) - set(TEMPLATE_KEYS)
    if unknown:
        raise ReasonkitError(f"--template {spec}: unknown keys {sorted(unknown)}; use {', '.join(TEMPLATE_KEYS)}")
    return PromptTemplate.from_dict(d)


# --- the built-in templates (wording written for reasonkit) ----------------------------------------

REASONING_SYSTEM = ("You are a careful assistant. Reason step by step inside <think> </think> tags, "
                    "then give only the final answer inside <answer> </answer> tags.")

GSM8K = PromptTemplate(
    system=REASONING_SYSTEM,
    user="{question}\nGive the final answer as a number inside <answer> </answer>.",
)

REASONING_GYM = PromptTemplate(
    system=REASONING_SYSTEM,
    user="{question}\nGive the final answer inside <answer> </answer>.",
)

MATH500 = PromptTemplate(
    system=REASONING_SYSTEM,
    user="{question}\nPut the final answer inside <answer> </answer>, in LaTeX if needed.",
)

# The Countdown task as the AgileRL GRPO recipe poses it (our wording), with its pre-fill.
COUNTDOWN = PromptTemplate(
    system=("You are a helpful assistant. You think through the problem first and then give the user "
            "the answer."),
    user=("Make an equation that equals {target} from the numbers {numbers}. Use + - * / and "
          "parentheses; use every number exactly once. Show your reasoning inside <think> </think> "
          "tags and write the final equation inside <answer> </answer> tags, for example "
          "<answer> (3 + 5) * 2 </answer>."),
    prefill="Let me solve this step by step.\n<think>",
)
