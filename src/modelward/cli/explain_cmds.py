"""``modelward explain REF --input row.json``: why a version answers as it does, per input feature.

``--global --data FILE``: the mean |SHAP| of each feature over a sample of the file, stored with the
version as its ``importance`` report (the model card shows it). Exit 0 on an answer, 1 on a mistake
(unknown model, unreadable input, rows the model's schema refuses, SHAP not installed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import emit_json, settings

if TYPE_CHECKING:
    from modelward.explain import Explanation

__all__ = ["register"]


def _read_rows(path: Path) -> object:
    import orjson

    from modelward.errors import ConfigError

    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(f"input file {path} does not exist") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"input file {path} is not JSON: {exc}") from exc


def _print_rows(explanation: Explanation, top_k: int) -> None:
    from rich.console import Console

    from modelward.cli._tables import Column, print_table

    console = Console()
    for i, row in enumerate(explanation.rows):
        label = f", class {row.label}" if row.label is not None else ""
        console.print(
            f"row {i}{label}: output {row.output:.6g} ({explanation.output_space}) = base value "
            f"{row.base_value:.6g} + contributions ({explanation.method} explainer, "
            f"{explanation.model}:{explanation.version})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        ranked = row.top(top_k if top_k > 0 else len(row.contributions))
        print_table(
            [Column("feature"), Column("contribution", justify="right")],
            [[r["feature"], f"{r['contribution']:+.6g}"] for r in ranked],
            console=console,
        )


def _print_importance(body: dict[str, Any], ref: str) -> None:
    from rich.console import Console

    from modelward.cli._tables import Column, print_table

    console = Console()
    console.print(
        f"{ref}: mean |SHAP| over {body['rows']:,} rows ({body['explainer']} explainer, "
        f"{body['output_space']}), stored as the version's importance report",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    print_table(
        [Column("feature"), Column("mean |SHAP|", justify="right")],
        [[f, f"{v:.6g}"] for f, v in body["features"].items()],
        console=console,
    )


def explain(
    ref: str = typer.Argument(..., help="Model: name, name@alias or name:version."),
    input_file: Path | None = typer.Option(
        None,
        "--input",
        "-i",
        help="JSON file: one record, a list of records, or a predict request body (any of its forms).",
    ),
    top_k: int = typer.Option(
        5, "--top-k", min=0, help="Contributions to list per row, largest first (0: all)."
    ),
    global_: bool = typer.Option(
        False, "--global", help="Global importance (mean |SHAP|) over --data, stored with the version."
    ),
    data: Path | None = typer.Option(None, "--data", help="Data file (.csv or .parquet) for --global."),
    rows: int = typer.Option(500, "--rows", min=1, help="With --global: rows sampled from --data."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Explain predictions with SHAP: per-feature contributions, base value and output.

    modelward explain churn@champion --input row.json. With --global --data train.parquet, the mean
    |SHAP| of each feature is computed and stored with the version (shown in its model card).
    Needs the [explain] extra.
    """
    from modelward.errors import ConfigError
    from modelward.explain import explainer_for
    from modelward.explain.api import rows_frame

    if global_:
        if data is None:
            raise ConfigError("--global needs --data FILE (.csv or .parquet) to sample rows from")
        if input_file is not None:
            raise ConfigError("give --input (explain rows) or --global --data (importance), not both")
        _global(ref, data, rows, as_json)
        return
    if input_file is None:
        raise ConfigError("give --input FILE (a JSON record or request body), or --global --data FILE")
    payload = _read_rows(input_file)
    explainer = explainer_for(ref, settings=settings())
    explanation = explainer.explain(rows_frame(payload, explainer.model.schema))
    if as_json:
        emit_json(explanation.to_dict(top_k or len(explainer.features)))
    else:
        _print_rows(explanation, top_k)


def _global(ref: str, data: Path, rows: int, as_json: bool) -> None:
    from modelward.api import open_registry
    from modelward.explain import Explainer, global_importance, save_importance
    from modelward.registry.register import read_table
    from modelward.runtime import load_version

    cfg = settings()
    frame = read_table(data)
    with open_registry(cfg) as registry:
        info = registry.resolve(ref)
        model = load_version(registry, info)
        explainer = Explainer(model)
        missing = [f for f in explainer.features if f not in frame.columns]
        if missing:
            from modelward.errors import ConfigError

            raise ConfigError(f"{data} lacks the model's input column(s) {', '.join(missing)}")
        body = global_importance(explainer, model.schema.select(frame), rows=rows)
        stored = save_importance(registry.store, info.name, info.version, body, actor=cfg.resolved_actor)
    if as_json:
        emit_json({"model": info.name, "version": info.version, "report_id": stored.id, **body})
    else:
        _print_importance(body, info.ref)


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
