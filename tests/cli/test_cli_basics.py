"""The `reasonkit` command line: --version, --help on every command, the console script."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import reasonkit
from reasonkit.cli import main


def test_version():
    res = CliRunner().invoke(main, ["--version"])
    assert res.exit_code == 0
    assert res.output.strip() == f"reasonkit, version {reasonkit.__version__}"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_group_help_lists_every_command(flag):
    res = CliRunner().invoke(main, [flag])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("Usage: ")
    for name in main.commands:
        assert name in res.output


def test_verify_command_is_registered():
    assert "verify" in main.commands


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, cmd in sorted(group.commands.items()):
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, (*prefix, name))


def test_help_on_every_command():
    commands = list(_all_commands(main))
    assert commands, "no sub-commands registered"
    for path, cmd in commands:
        res = CliRunner().invoke(main, [*path, "--help"], prog_name="reasonkit")
        assert res.exit_code == 0, f"reasonkit {' '.join(path)} --help failed: {res.output}"
        assert res.output.startswith(f"Usage: reasonkit {' '.join(path)}"), res.output
        assert (cmd.help or cmd.short_help or "").strip(), f"reasonkit {' '.join(path)} has no help text"


def test_unknown_command_exit_2():
    res = CliRunner().invoke(main, ["verfy"])
    assert res.exit_code == 2
    assert "No such command 'verfy'" in res.output


def _console_script() -> str:
    found = shutil.which("reasonkit") or str(Path(sys.executable).with_name("reasonkit"))
    assert Path(found).exists(), "the `reasonkit` console script is not installed (pip install -e .)"
    return found


def test_console_script_help(tmp_path):
    res = subprocess.run([_console_script(), "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Usage: reasonkit" in res.stdout and "verify" in res.stdout


def test_console_script_version(tmp_path):
    res = subprocess.run([_console_script(), "--version"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert reasonkit.__version__ in res.stdout
