"""What the evaluation loop hands an engine and what it makes of a failed request.

* :func:`engine_prompt` — rendered text for in-process engines (chat template applied here, with
  ``chat_template_kwargs``); for an engine whose ``chat_api`` is true (``--backend openai``) a
  :class:`~reasonkit.engine.types.ChatPrompt` (messages + pre-fill) when a chat template
  applies, so the server applies its own template; raw prompts stay text (completions endpoint).
* :func:`error_row_fields` — an error row: ``finish_reason="error"``, ``error`` (the reason), empty
  completion, and no verdict columns at all, so nothing scores it.
* :func:`failure_counts` — error rows per adapter; the summary's ``failures`` block.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from reasonkit.engine.types import ChatPrompt
from reasonkit.tasks.prompts import fill

ERROR = "error"


def engine_prompt(bench, item: dict[str, Any], engine: Any, tokenizer: Any,
                  chat_template_kwargs: dict[str, Any] | None = None):
    template = bench.template
    if getattr(engine, "chat_api", False) and not template.raw:
        return ChatPrompt(tuple(template.messages(item)), fill(template.prefill, item) if template.prefill else "")
    return bench.render(item, tokenizer, chat_template_kwargs or None)


def is_error(row: dict[str, Any]) -> bool:
    return row.get("finish_reason") == ERROR or bool(row.get("error"))


def error_row_fields(message: str) -> dict[str, Any]:
    return {"completion": "", "num_tokens": None, "finish_reason": ERROR, "error": message}


def failure_counts(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """``{"samples": k, "groups": g, "by_adapter": {...}, "first": "reason"}`` over the error rows."""
    errors = [r for r in rows if is_error(r)]
    groups = {(r["item_id"], r["adapter"]) for r in errors}
    return {"samples": len(errors), "groups": len(groups),
            "by_adapter": dict(Counter(r["adapter"] for r in errors)),
            "first": errors[0].get("error") if errors else None}
