"""Registry commands: models, versions, show, register, promote, rollback, archive."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import emit_json, settings
from modelward.errors import ModelwardError

if TYPE_CHECKING:
    from modelward.registry import Registry, VersionInfo

__all__ = ["register"]

JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")


@contextmanager
def _registry() -> Iterator[Registry]:
    from modelward.api import open_registry

    with open_registry(settings()) as registry:
        yield registry


def _console() -> Any:
    from rich.console import Console

    return Console()


def _when(info: Any) -> str:
    created = getattr(info, "created_at", None)
    return created.strftime("%Y-%m-%d %H:%M") if created else ""  # minutes are enough to tell versions apart


def models(as_json: bool = JSON_OPTION) -> None:
    """List registered models with their aliases."""
    with _registry() as registry:
        found = registry.models()
    if as_json:
        emit_json([m.to_dict() for m in found])
        return
    if not found:
        _console().print("no models registered yet: see `modelward register --help`")
        return
    from modelward.cli._tables import Column, print_table

    columns = [
        Column("model"),
        Column("latest"),
        Column("aliases", wrap=True),
        Column("updated", drop=1),
        Column("description", wrap=True, drop=2),
    ]
    rows = [
        [
            m.name,
            m.latest_version or "",
            ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items())),
            m.updated_at.strftime("%Y-%m-%d %H:%M") if m.updated_at else "",
            m.description,
        ]
        for m in found
    ]
    print_table(columns, rows)


def versions(name: str = typer.Argument(..., help="Model name."), as_json: bool = JSON_OPTION) -> None:
    """List the versions of a model with their aliases, flavor and lineage."""
    with _registry() as registry:
        found = registry.versions(name)
    if as_json:
        emit_json([v.to_dict() for v in found])
        return
    from modelward.cli._tables import Column, print_table

    columns = [
        Column("version"),
        Column("aliases", wrap=True),
        Column("model"),
        Column("status"),
        Column("created", drop=2),
        Column("git", drop=1),
        Column("description", wrap=True, drop=3),
    ]
    rows = [
        [
            v.version,
            ", ".join(v.aliases),
            (v.model_class or "").rsplit(".", 1)[-1],
            "archived" if v.archived else "live",
            _when(v),
            (v.tags.get("modelward.git.commit") or "")[:10],
            v.description,
        ]
        for v in found
    ]
    print_table(columns, rows)


def show(
    ref: str = typer.Argument(..., help="NAME, NAME@ALIAS or NAME:VERSION."),
    verify: bool = typer.Option(
        False, "--verify", help="Fail (exit 1) unless the version loads with every artifact's sha256."
    ),
    quick: bool = typer.Option(
        False, "--quick", help="Registry facts only: do not load the model to find its runtime."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one version: aliases, signature, lineage, reference profile, pins, serving runtime.

    The runtime is found by the server's own check: compiled to ONNX when it agrees with the native
    model on the reference sample, else the native model (with the reason)."""
    from modelward.cli import fairness_cmds
    from modelward.drift.profile import DatasetProfile
    from modelward.registry.register import PROFILE_FILE

    cfg = settings()
    if not quick or verify:
        from modelward.runtime.loader import load_version  # before MLflow: see modelward.runtime
    with _registry() as registry:
        info = registry.resolve(ref)
        pins = registry.manifest(info.name, info.version)
        serving: dict[str, Any] | None = None
        native = None
        problem = None
        schema: list[dict[str, Any]] = []
        profile: DatasetProfile | None = None
        loaded = None
        if not quick or verify:
            try:
                loaded = load_version(registry, info)
            except ModelwardError as exc:
                if verify:
                    raise
                problem = str(exc)
        if loaded is not None:
            from modelward.runtime.predictor import model_digest, prepare

            native = loaded.runtime
            schema = loaded.schema.to_dict()
            profile = loaded.profile
            predictor = prepare(
                loaded, compile=cfg.compile, cache_dir=cfg.home / "compiled", digest=model_digest(pins)
            )
            serving = predictor.describe()
        else:
            profile = _profile(registry, info, PROFILE_FILE)
            schema = registry.signature(info).to_dict()
        fairness = fairness_cmds.show_section(registry.store, info.name, info.version)
        from modelward.governance.pii_register import stored_check

        pii = stored_check(registry.store, info.name, info.version)
    summary = {
        **info.to_dict(),
        "signature": schema,
        "pinned_files": len(pins),
        "verified": loaded is not None,
        "runtime": serving["runtime"] if serving else None,
        "native_runtime": native,
        "serving": serving,
        "load_problem": problem,
        "schema_source": (loaded.record.get("schema_source") or "signature") if loaded is not None else None,
        "task_source": loaded.record.get("task_source") if loaded is not None else None,
        "profile": _profile_summary(profile),
        "fairness": fairness,
        "pii": pii,
    }
    if as_json:
        emit_json(summary)
        return
    _print_show(summary, pins)


def _profile(registry: Registry, info: VersionInfo, filename: str) -> Any:
    import tempfile

    from modelward.drift.profile import DatasetProfile

    run_id = info.tags.get("modelward.run_id")
    folder = info.tags.get("modelward.artifacts")
    if not run_id or not folder:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = registry.client.download_artifacts(run_id, f"{folder}/{filename}", tmp)
        return DatasetProfile.from_json(Path(path).read_bytes())


def _profile_summary(profile: Any) -> dict[str, Any] | None:
    from modelward.drift.summary import profile_summary

    return profile_summary(profile)


def _print_show(summary: dict[str, Any], pins: dict[str, Any]) -> None:
    from rich.text import Text

    from modelward.cli._tables import Column, print_table

    console = _console()
    tags = summary["tags"]
    lines = [
        Text.assemble((f"{summary['name']}:{summary['version']}", "bold"), f"  {summary['description']}")
    ]
    lines.append(Text(f"  aliases      {', '.join(summary['aliases']) or '-'}"))
    lines.append(Text(f"  status       {'archived' if summary['archived'] else 'live'}"))
    lines.append(Text(f"  model        {summary['model_class']} ({summary['flavor']}, {summary['task']})"))
    if summary["schema_source"] not in (None, "signature"):  # logged without a signature
        lines.append(Text(f"  schema       inferred from the {summary['schema_source']} at registration"))
    serving = summary["serving"]
    if serving:
        if serving["compiled"]:
            how = f"compiled, max abs diff {serving['max_abs_diff']:.2g} from {summary['native_runtime']}"
        else:
            how = f"native: {serving['reason']}"
        lines.append(Text(f"  runtime      {serving['runtime']} ({how}; artifacts verified)"))
    elif summary["load_problem"]:
        lines.append(Text(f"  runtime      unknown: it does not load ({summary['load_problem']})"))
    lines.append(Text(f"  run          {summary['run_id']}"))
    from modelward.registry.federation import Federation

    federation = Federation.from_tags(tags)
    if federation is not None:  # its data stayed on the nodes: no fingerprint to show
        lines.append(Text(f"  federated    {federation.describe()}"))
    else:
        lines.append(Text(f"  dataset      sha256 {tags.get('modelward.dataset.sha256', '-')}"))
    if "modelward.dataset.path" in tags:
        lines.append(Text(f"               {tags['modelward.dataset.path']}"))
    if "modelward.dvc.md5" in tags:
        lines.append(Text(f"  dvc          {tags.get('modelward.dvc.file')} md5 {tags['modelward.dvc.md5']}"))
    if "modelward.git.commit" in tags:
        dirty = " (dirty)" if tags.get("modelward.git.dirty") == "true" else ""
        lines.append(Text(f"  git          {tags['modelward.git.commit']}{dirty}"))
    lines.append(Text(f"  pinned files {len(pins)} (sha256)"))
    from modelward.governance.pii_register import show_line

    scanned = "reference sample" if federation is not None else "training data"
    lines.append(Text(f"  pii          {show_line(summary['pii'], scanned)}"))
    for line in lines:  # Text, not markup: a description or a reason may hold brackets ("[onnx]")
        console.print(line, soft_wrap=True)  # hashes and paths stay whole, for copying
    from modelward.cli.fairness_cmds import print_show_section

    print_show_section(summary["fairness"], console)
    profile = summary["profile"]
    kinds = profile["features"] if profile else {}
    rows = []
    for field in summary["signature"]:
        entry = kinds.get(field["name"], {})
        if entry.get("kind") == "numeric":
            detail = (
                f"min {entry['min']:.4g}  mean {entry['mean']:.4g}  max {entry['max']:.4g}"
                if entry.get("min") is not None
                else ""
            )
        elif entry:
            detail = f"{entry['categories']} categories"
        else:
            detail = ""
        missing = f"{entry['missing_rate']:.1%}" if entry else ""
        rows.append([field["name"], field["type"], entry.get("kind", ""), missing, detail])
    columns = [
        Column("feature"),
        Column("type"),
        Column("kind", drop=1),  # the summary says it too
        Column("missing", drop=2),
        Column("summary", wrap=True, floor=40),
    ]
    title = f"reference profile ({profile['rows'] if profile else 0} rows)"
    print_table(columns, rows, title=title, console=console)


def register_cmd(
    from_mlflow: str = typer.Option(
        ..., "--from-mlflow", help="MLflow model URI: runs:/RUN/model or models:/..."
    ),
    name: str = typer.Option(..., "--name", help="Registered model name."),
    reference: Path = typer.Option(..., "--reference", help="Reference (training) data, .csv or .parquet."),
    target: str | None = typer.Option(None, "--target", help="Label column in the reference data."),
    description: str | None = typer.Option(None, "--description"),
    tag: list[str] = typer.Option([], "--tag", help="KEY=VALUE tag for the version; repeatable."),
    trust: list[str] = typer.Option(
        [], "--trust", help="Extra skops type you reviewed and trust; repeatable."
    ),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Accept a pickle-based model you trust."),
    probability_name: str | None = typer.Option(
        None, "--probability-name", help="Answer member for a binary classifier's positive-class probability."
    ),
    positive_class: str | None = typer.Option(
        None, "--positive-class", help="The positive class (default: the second in class order)."
    ),
    task: str | None = typer.Option(
        None,
        "--task",
        help="classification or regression; by default decided from the model, its signature and the target.",
    ),
    intended_use: str | None = typer.Option(
        None, "--intended-use", help="What the version is for (its model card; `card edit` changes it)."
    ),
    limitations: str | None = typer.Option(
        None, "--limitations", help="Where it must not be used, known weaknesses (its model card)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a model MLflow already holds, with its reference data."""
    from modelward.errors import ConfigError
    from modelward.registry import register_mlflow_model
    from modelward.registry.response import response_tags

    tags: dict[str, str] = {}
    for item in tag:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--tag expects KEY=VALUE, got {item!r}")
        tags[key] = value
    response = {"probability_name": probability_name, "positive_class": positive_class}
    tags.update(response_tags({k: v for k, v in response.items() if v is not None}))
    from modelward.cli.app import error_console
    from modelward.governance.pii_register import check_training_data, record_check, warning_text

    cfg = settings()
    with _registry() as registry, error_console().status(f"registering {from_mlflow} as {name}..."):
        check = check_training_data(registry.store, name, reference, setting=cfg.pii_on_register, warn=False)
        if check is not None and check.report.found:
            warning = f"warning: {warning_text(name, check)}"
            error_console().print(warning, highlight=False, markup=False, soft_wrap=True)
        info = register_mlflow_model(
            registry,
            from_mlflow,
            name,
            reference_data=reference,
            target=target,
            description=description,
            tags=tags,
            trusted_types=trust,
            allow_pickle=allow_pickle,
            task=task,
            intended_use=intended_use,
            limitations=limitations,
        )
        if check is not None:
            record_check(registry.store, info.name, info.version, check, actor=cfg.resolved_actor)
    if as_json:
        emit_json(info.to_dict())
    else:
        from rich.text import Text

        _console().print(Text.assemble("registered ", (info.ref, "bold"), f" from {from_mlflow}"))


def promote(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Version to promote."),
    alias: str = typer.Option("champion", "--alias", "-a", help="Alias to move (champion, challenger, ...)."),
    reason: str | None = typer.Option(None, "--reason", "-r", help="Why; kept in the audit trail."),
    force: bool = typer.Option(False, "--force", help="Promote despite failing gates (needs --reason)."),
    data: Path | None = typer.Option(None, "--data", "-d", help="Holdout for the gates (.parquet/.csv)."),
    label: str | None = typer.Option(None, "--label", help="The holdout's label column."),
    policy: Path | None = typer.Option(None, "--policy", help="Policy YAML (default: the stored policy)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Point an alias (default champion) at a version, once it passes its promotion gates."""
    from modelward.governance.policy import read_policy_file
    from modelward.governance.promotion import promote_gated

    cfg = settings()
    chosen = read_policy_file(policy) if policy is not None else None
    with _registry() as registry:
        done = promote_gated(
            registry,
            name,
            version,
            alias,
            reason=reason,
            force=force,
            data=data,
            label=label,
            policy=chosen,
            compile=cfg.compile,
            cache_dir=cfg.home / "compiled",
        )
    info = done.raise_if_refused()
    if as_json:
        emit_json({**info.to_dict(), "forced": done.forced, "validation": done.validation.to_dict()})
        return
    console = _console()
    skipped = ", ".join(g.name for g in done.validation.skipped)
    if done.forced:
        failing = ", ".join(g.name for g in done.validation.failing)
        console.print(f"forced past failing gates ({failing}); the override is in the audit trail")
    if skipped:
        console.print(f"gates skipped: {skipped} (see `modelward validate {info.name}:{info.version}`)")
    console.print(f"{info.name}@{alias} → version {info.version}")
    from modelward.cli.card_cmds import warn_card

    warn_card(info.ref, done.card_error)


def rollback(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Option("champion", "--alias", "-a", help="Alias to move back."),
    reason: str | None = typer.Option(None, "--reason", "-r", help="Why; kept in the audit trail."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Move an alias back to the version that held it before its last promotion."""
    with _registry() as registry:
        info = registry.rollback(name, alias, reason=reason)
        from modelward.cli.card_cmds import refresh_after_move

        refresh_after_move(registry, info)
    if as_json:
        emit_json(info.to_dict())
    else:
        _console().print(f"{info.name}@{alias} rolled back to version {info.version}")


def archive(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Version to archive."),
    reason: str | None = typer.Option(None, "--reason", "-r"),
    undo: bool = typer.Option(False, "--undo", help="Unarchive the version instead."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Archive a version (skipped by default resolution, cannot be promoted); --undo reverses it."""
    with _registry() as registry:
        info = (
            registry.unarchive(name, version, reason=reason)
            if undo
            else registry.archive(name, version, reason=reason)
        )
    if as_json:
        emit_json(info.to_dict())
    else:
        _console().print(f"{info.ref} is {'archived' if info.archived else 'live'}")


def register(app: typer.Typer) -> None:
    app.command("models")(models)
    app.command("versions")(versions)
    app.command("show")(show)
    app.command("register")(register_cmd)
    app.command("promote")(promote)
    app.command("rollback")(rollback)
    app.command("archive")(archive)
