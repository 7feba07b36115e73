"""``modelward validate`` (the promotion gates, for CI/CD) and ``modelward policy`` (a model's gates).

``validate`` judges a registered version, or (``--model-uri URI --name NAME``) an MLflow model before
it is registered. It exits 0 when every gate passes, 1 when one fails and 2 when the gates cannot be
evaluated at all (an unknown model, a URI that cannot be read or loaded, a holdout that is missing or
lacks its label, a bad policy).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import emit_json, print_error, settings

if TYPE_CHECKING:
    from modelward.governance.gate_result import Validation

__all__ = ["policy_app", "print_validation", "register", "write_junit"]

JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")
EXIT_FAILED = 1
EXIT_CANNOT_EVALUATE = 2

policy_app = typer.Typer(
    help="A model's promotion policy (the gates `validate` and `promote` run).", no_args_is_help=True
)


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}".strip()


def print_validation(validation: Validation) -> None:
    from rich.console import Console
    from rich.text import Text

    from modelward.cli._tables import Column, print_table

    colours = {"pass": "green", "fail": "bold red", "skipped": "yellow"}
    rows: list[list[str | Text]] = []
    for g in validation.gates:
        threshold = f"{g.op} {_cell(g.threshold, g.unit)}" if g.threshold is not None and g.op else ""
        rows.append([g.name, Text(g.verdict, style=colours[g.verdict]), _cell(g.value, g.unit), threshold])
    against = f"champion {validation.model}:{validation.against}" if validation.against else "no champion"
    console = Console()
    console.print(
        Text(f"{validation.ref} against {against}, policy: {validation.policy_source}"), highlight=False
    )
    console.print(Text(f"holdout: {validation.holdout or 'none'}"), highlight=False)
    # The verdict never wraps; the figures do, when a long gate name leaves them little room.
    columns = [Column("gate"), Column("verdict"), Column("value", wrap=True), Column("threshold", wrap=True)]
    print_table(columns, rows, console=console)
    # Reasons are sentences: printed whole below the table, never squeezed into a column.
    for g in validation.gates:
        if g.reason:
            console.print(
                Text.assemble((f"{g.name} {g.verdict}: ", colours[g.verdict]), g.reason), highlight=False
            )
    console.print(Text(f"verdict: {validation.verdict}", style=colours[validation.verdict]))


def write_junit(validation: Validation, path: Path) -> None:
    """One JUnit testsuite, one testcase per gate: CI systems show failures and skips as they do tests'."""
    import xml.etree.ElementTree as ET

    from modelward import files

    suite = ET.Element(
        "testsuite",
        name=f"modelward validate {validation.ref}",
        tests=str(len(validation.gates)),
        failures=str(len(validation.failing)),
        skipped=str(len(validation.skipped)),
        errors="0",
        time=f"{validation.seconds:.3f}",
    )
    for g in validation.gates:
        case = ET.SubElement(suite, "testcase", classname=f"modelward.gates.{validation.model}", name=g.name)
        if g.verdict == "fail":
            failure = ET.SubElement(case, "failure", message=g.reason or g.describe())
            failure.text = g.describe()
        elif g.verdict == "skipped":
            ET.SubElement(case, "skipped", message=g.reason or "")
        else:
            out = ET.SubElement(case, "system-out")
            out.text = g.describe()
    root = ET.Element("testsuites")
    root.append(suite)
    files.write_bytes(path, ET.tostring(root, encoding="utf-8", xml_declaration=True))


def validate_cmd(
    ref: str | None = typer.Argument(
        None, help="The candidate: name:version or name@alias (or --model-uri and --name)."
    ),
    model_uri: str | None = typer.Option(
        None,
        "--model-uri",
        help="Judge an MLflow model that is not registered (runs:/RUN/model, models:/m-..., a folder).",
    ),
    name: str | None = typer.Option(
        None, "--name", help="With --model-uri: the model whose policy and champion judge it."
    ),
    against: str = typer.Option("champion", "--against", help="The alias (or version) to compare with."),
    data: Path | None = typer.Option(None, "--data", "-d", help="Labelled holdout (.parquet or .csv)."),
    label: str | None = typer.Option(
        None, "--label", help="The holdout's label column (default: the target)."
    ),
    policy: Path | None = typer.Option(None, "--policy", help="Policy YAML (default: the stored policy)."),
    task: str | None = typer.Option(
        None, "--task", help="With --model-uri: classification or regression (default: the champion's)."
    ),
    trust: list[str] = typer.Option(
        [], "--trust", help="With --model-uri: extra skops type you reviewed and trust; repeatable."
    ),
    allow_pickle: bool = typer.Option(
        False, "--allow-pickle", help="With --model-uri: accept a pickle-based model you trust."
    ),
    junit: Path | None = typer.Option(None, "--junit", help="Also write a JUnit XML report here."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the promotion gates of a version, or of an MLflow model before it is registered
    (--model-uri URI --name NAME); exit 0 all pass, 1 a gate failed, 2 cannot evaluate."""
    from modelward.api import validate, validate_model
    from modelward.errors import ModelwardError

    try:
        cfg = settings()
        if data is not None and not data.is_file():
            raise ModelwardError(f"holdout file {data} does not exist")
        if model_uri is not None:
            if ref is not None:
                raise ModelwardError(f"give either a version ({ref}) or --model-uri, not both")
            if not name:
                raise ModelwardError("--model-uri needs --name: the model whose policy and champion judge it")
            result = validate_model(
                model_uri,
                name,
                against=against,
                data=data,
                label=label,
                policy=policy,
                task=task,
                trusted_types=trust,
                allow_pickle=allow_pickle,
                settings=cfg,
            )
        else:
            if ref is None:
                raise ModelwardError(
                    "name the candidate: a version (name:version) or --model-uri URI --name NAME"
                )
            if name is not None or task is not None or trust or allow_pickle:
                raise ModelwardError("--name, --task, --trust and --allow-pickle go with --model-uri")
            result = validate(ref, against=against, data=data, label=label, policy=policy, settings=cfg)
    except ModelwardError as exc:
        print_error(str(exc))
        raise typer.Exit(EXIT_CANNOT_EVALUATE) from exc
    if junit is not None:
        write_junit(result, junit)
    if as_json:
        emit_json(result.to_dict())
    else:
        print_validation(result)
    raise typer.Exit(0 if result.passed else EXIT_FAILED)


@policy_app.command("set")
def policy_set(
    name: str = typer.Argument(..., help="Model name."),
    file: Path = typer.Argument(..., help="Policy YAML."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Store a model's promotion policy (checked first; audited)."""
    from modelward.api import set_policy
    from modelward.governance.policy import read_policy_file

    policy = read_policy_file(file)
    digest = set_policy(name, file.read_text("utf-8"), source=str(file), settings=settings())
    if as_json:
        emit_json({"model": name, "sha256": digest, "policy": policy.to_dict()})
    else:
        typer.echo(f"policy of {name} set from {file}")


@policy_app.command("show")
def policy_show(name: str = typer.Argument(..., help="Model name."), as_json: bool = JSON_OPTION) -> None:
    """Show a model's stored policy (or say that the defaults apply)."""
    from modelward.api import open_registry
    from modelward.governance.gates import effective_policy
    from modelward.governance.reports import VersionReports

    with open_registry(settings()) as registry:
        registry.model(name)
        stored = VersionReports(registry.store).policy(name)
        policy, source = effective_policy(registry, name)
    if as_json:
        out: dict[str, Any] = {"model": name, "source": source, "policy": policy.to_dict()}
        out["yaml"] = stored.body if stored is not None else None
        out["actor"] = stored.actor if stored is not None else None
        emit_json(out)
    elif stored is None:
        typer.echo(f"{name} has no stored policy: the default gates apply (integrity, schema, regression)")
    else:
        typer.echo(f"# policy of {name}, set by {stored.actor}")
        typer.echo(stored.body.rstrip("\n"))


@policy_app.command("delete")
def policy_delete(name: str = typer.Argument(..., help="Model name."), as_json: bool = JSON_OPTION) -> None:
    """Delete a model's stored policy (the defaults apply again; audited)."""
    from modelward.api import open_registry
    from modelward.governance.reports import VersionReports

    cfg = settings()
    with open_registry(cfg) as registry:
        registry.model(name)
        deleted = VersionReports(registry.store).delete_policy(name)
        if deleted:
            registry.audit.append("policy_delete", name, {}, actor=cfg.resolved_actor)
    if as_json:
        emit_json({"model": name, "deleted": deleted})
    else:
        typer.echo(f"policy of {name} deleted" if deleted else f"{name} had no stored policy")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_cmd)
    app.add_typer(policy_app, name="policy")
