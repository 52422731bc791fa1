"""Helpers for CLI tests of bad input (not a test module): the one-line-error check and a fake
engine for ``reasonkit eval`` that needs no model."""
from __future__ import annotations


def one_line_error(result, *needles: str) -> str:
    """Assert a click result is exit 2 with exactly one ``Error: ...`` line holding every needle."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def use_fake_engine(monkeypatch, answer: str = "<answer>4</answer>", prompts: list | None = None):
    """Make ``reasonkit eval`` generate with a :class:`FakeBackend` (answers ``answer``; the prompts it
    was given are appended to ``prompts`` when a list is passed)."""
    from eval_fakes import FakeBackend
    from reasonkit.eval import runner as runner_mod

    def script(prompt, adapter, sample):
        if prompts is not None:
            prompts.append(prompt)
        return answer

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(runner_mod, "open_backend", lambda config: (FakeBackend(script), "fake-model"))
