"""The README and the documentation site: size, strict build, every code block, and the built site in a browser.

* the README stays product documentation (at most 12,000 characters, the two ``ci:`` blocks kept);
* ``mkdocs build --strict`` (no broken link, anchor, nav entry or API reference) into a temp folder;
* every fenced block of README.md and docs/**.md (see ``docs_blocks``): Python run (or compiled and
  name-checked when marked ``no-run``), shell parsed with ``bash -n`` and its ``reasonkit`` options
  checked against the CLI, repository paths it names present, ``reasonkit verify`` lines run;
* headless chromium opens the built site's home page and one page, and the navigation is there.
"""
from __future__ import annotations

import functools
import re
import http.server
import shutil
import subprocess
import sys
import threading

import pytest
import yaml

from docs_blocks import (
    ROOT, all_blocks, option_problems, reasonkit_invocations, repo_paths, shell_commands, undefined_names,
)

BLOCKS = all_blocks()
PY = [b for b in BLOCKS if b.lang in ("python", "py")]
SHELL = [b for b in BLOCKS if b.lang in ("bash", "sh", "shell", "console")]


def test_readme_is_short_and_keeps_the_ci_blocks():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text) <= 12_000, f"README.md is {len(text):,} characters; the limit is 12,000"
    assert "<!-- ci:main -->\n```bash\nmake demo\n```" in text
    assert "<!-- ci:test -->\n```bash\nmake test\n```" in text


def test_the_blocks_are_found():
    # the checks below are parametrized over these lists: an empty list would check nothing
    assert len(PY) >= 4 and len(SHELL) >= 15
    assert {b.mark for b in BLOCKS} <= {"", "no-run", "gpu"}, "unknown docs-test mark"


@pytest.mark.parametrize("block", PY, ids=lambda b: b.id)
def test_python_block(block, tmp_path, monkeypatch):
    code = compile(block.code, block.id, "exec")
    missing = undefined_names(block.code)
    assert not missing, f"{block.id}: uses names it never defines: {sorted(missing)}"
    if block.mark:
        pytest.skip(f"marked {block.mark}: compiled and name-checked only")
    monkeypatch.chdir(tmp_path)
    exec(code, {"__name__": "__docs__"})


@pytest.mark.parametrize("block", SHELL, ids=lambda b: b.id)
def test_shell_block(block, tmp_path):
    parsed = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True)
    assert parsed.returncode == 0, f"{block.id}: bash -n: {parsed.stderr.strip()}"
    commands = shell_commands(block.code)
    problems = [p for args in reasonkit_invocations(commands) for p in option_problems(args)]
    assert not problems, f"{block.id}: " + "; ".join(problems)
    missing = [p for p in repo_paths(commands) if not (ROOT / p).exists()]
    assert not missing, f"{block.id}: names files the repository does not have: {missing}"


VERIFY = [(b, args) for b in SHELL if not b.mark
          for args in reasonkit_invocations(shell_commands(b.code)) if args[:1] == ["verify"]]


@pytest.mark.parametrize("block,args", VERIFY, ids=[f"{b.id}:{' '.join(a[:3])}" for b, a in VERIFY])
def test_verify_commands_run_as_written(block, args, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from reasonkit.cli import main

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, f"{block.id}: reasonkit {' '.join(args)}: {result.output[-500:]}"
    assert "rows" in result.output


def test_verify_commands_are_there():
    assert len(VERIFY) >= 3


# eval / generate lines that run the embedded model on the shipped examples (no hub model, adapter or server)
_NEEDS_MORE = ("--model", "-m", "--lora", "--backend", "--base-url", "--rescore")
ON_EXAMPLES = [(b, args) for b in SHELL if not b.mark
               for args in reasonkit_invocations(shell_commands(b.code))
               if args[:1] in (["eval"], ["generate"]) and any(a.startswith("examples/") for a in args)
               and not any(a.split("=", 1)[0] in _NEEDS_MORE for a in args)]


def test_example_model_commands_are_there():
    assert {args[0] for _, args in ON_EXAMPLES} == {"eval", "generate"}


@pytest.mark.slow
@pytest.mark.parametrize("block,args", ON_EXAMPLES, ids=[f"{b.id}:{' '.join(a[:3])}" for b, a in ON_EXAMPLES])
def test_example_model_commands_run_as_written(block, args, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from reasonkit.cli import main

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, f"{block.id}: reasonkit {' '.join(args)}: {result.output[-1500:]}"
    if args[0] == "eval":
        (summary,) = (tmp_path / "runs" / "eval").glob("*/summary.json")
        assert '"items": 4' in summary.read_text()  # every row of examples/qa.jsonl was asked


def test_marks_are_not_left_dangling():
    # a mark must sit right before a fence: a mark elsewhere would silently not apply
    for path in (ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if "docs-test:" in line:
                assert i + 1 < len(lines) and lines[i + 1].lstrip().startswith("```"), \
                    f"{path.relative_to(ROOT)}:{i + 1}: docs-test mark not followed by a code block"


# --- the site ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="needs the docs extra")
    pytest.importorskip("mkdocstrings", reason="needs the docs extra")
    out = tmp_path_factory.mktemp("site")
    env = {"NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return out


def test_site_builds_strictly_with_every_nav_page(site):
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8").replace("!!python", "#"))["nav"]

    def pages(entries):
        for entry in entries:
            for value in entry.values():
                yield from (pages(value) if isinstance(value, list) else [value])

    files = list(pages(nav))
    assert "index.md" in files and "api/verifiers.md" in files
    for page in files:
        html = site / (page[:-3] + ".html" if page.endswith("index.md") else page[:-3] + "/index.html")
        assert html.is_file(), f"{page} was not built"
    api = (site / "api" / "verifiers" / "index.html").read_text(encoding="utf-8")
    assert "Verdict" in api and "resolve" in api  # the API reference came from the docstrings


@pytest.fixture(scope="module")
def site_url(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))

    class Quiet(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):  # a browser closing a connection is not news
            pass

    server = Quiet(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a, **k: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_site_navigation_renders_in_a_browser(site_url, browser):
    from selenium.webdriver.common.by import By

    browser.get(site_url + "/")
    assert "reasonkit" in browser.title
    nav = browser.find_element(By.CSS_SELECTOR, "nav.md-nav--primary")
    labels = {a.get_attribute("textContent").strip() for a in nav.find_elements(By.CSS_SELECTOR, "a.md-nav__link")}
    assert {"Getting started", "Evaluation", "Training"} <= labels, labels
    link = nav.find_element(By.XPATH, ".//a[normalize-space()='Evaluation']")
    browser.get(link.get_attribute("href"))
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Evaluation")
    active = browser.find_elements(By.CSS_SELECTOR, "nav.md-nav--primary .md-nav__link--active")
    assert any("Evaluation" in a.get_attribute("textContent") for a in active)
    assert browser.find_elements(By.CSS_SELECTOR, "nav.md-nav--secondary a.md-nav__link")  # the page's table of contents


# --- the training options table against TrainConfig (docs/train.md once called the KL term plain k3) ---

def _train_option_rows():
    text = (ROOT / "docs" / "train.md").read_text(encoding="utf-8")
    section = text.split("\n## Options\n", 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| `--")]


def test_train_options_table_names_real_flags_and_their_defaults():
    import dataclasses

    import click

    from reasonkit.cli import main
    from reasonkit.grpo.config import TrainConfig

    known = {o for p in main.commands["train"].params if isinstance(p, click.Option) for o in p.opts}
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    rows = _train_option_rows()
    flags = [flag for row in rows for flag in re.findall(r"`(--[\w-]+)`", row[0])]
    assert len(rows) >= 20 and {"--kl-estimator", "--importance-sampling", "--importance-sampling-cap"} <= set(flags)
    assert not set(flags) - known, f"docs/train.md lists flags reasonkit train does not have: {set(flags) - known}"
    checked = 0
    for row in rows:
        names = re.findall(r"`--([\w-]+)`", row[0])
        shown = row[1].strip("`")
        if len(names) != 1 or not re.fullmatch(r"[\w.]+", shown) or shown in ("off", "unset"):
            continue
        actual = defaults[names[0].replace("-", "_")]
        same = float(shown) == float(actual) if re.fullmatch(r"[\d.]+", shown) else shown == str(actual)
        assert same, f"docs/train.md says --{names[0]} defaults to {shown}; TrainConfig has {actual!r}"
        checked += 1
    assert checked >= 12
