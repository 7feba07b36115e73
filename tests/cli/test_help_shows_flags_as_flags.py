"""A flag takes no value, and its help says so: ``--verbose``, not ``--verbose <bool>``."""

from __future__ import annotations

import pytest
import typer

from modelward.cli import app, main


def commands(group: typer.Typer) -> list[list[str]]:
    """Every command line that reaches a command or a group, from the root."""
    found: list[list[str]] = [[]]
    command = typer.main.get_command(group)

    def walk(cmd: object, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            found.append([*path, name])
            walk(sub, [*path, name])

    walk(command, [])
    return found


def test_no_help_page_shows_a_flag_taking_a_value(capsys: pytest.CaptureFixture[str]) -> None:
    pages = commands(app)
    assert ["deploy", "status"] in pages and ["show"] in pages
    for path in pages:
        assert main([*path, "--help"]) == 0
        out = capsys.readouterr().out
        assert "<bool>" not in out, path
    main(["--help"])
    assert "--verbose" in capsys.readouterr().out


def test_verbose_is_a_flag(settings: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--verbose", "models"]) == 0
    assert main(["-v", "models", "--json"]) == 0
    assert capsys.readouterr().out.strip().endswith("[]")
