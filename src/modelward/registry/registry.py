"""The registry: MLflow's model registry plus what it lacks (alias history, artifact pins, audit).

Models, versions, aliases, tags, runs and artifacts live in MLflow, so every MLflow tool keeps
working on them. modelward's store adds the alias history that rollback needs, the sha256 pins
checked at load, and the audit chain. Every mutation writes its store rows and audit event in one
transaction and makes the MLflow change last, inside it: if MLflow refuses, nothing is recorded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from modelward.errors import (
    AliasNotFound,
    IntegrityError,
    LifecycleError,
    ModelNotFound,
    ModelwardError,
    NotFound,
    VersionNotFound,
)
from modelward.governance.audit import AuditLog, utc_timestamp
from modelward.governance.pins import check_version
from modelward.registry.deployments import Deployments
from modelward.registry.integrity import FilePin, PinnedManifest
from modelward.registry.refs import ModelRef, parse_ref, validate_alias, validate_name
from modelward.registry.types import TAG_PREFIX, ModelInfo, VersionInfo, ms_to_datetime
from modelward.schema import FeatureSchema
from modelward.store import Store, alias_events, artifact_files

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

    from modelward.config import Settings

__all__ = ["DEFAULT_ALIAS", "Registry"]

log = logging.getLogger(__name__)

DEFAULT_ALIAS = "champion"
_PAGE = 1000


def _mlflow_error_code(exc: BaseException) -> str | None:
    code = getattr(exc, "error_code", None)
    return str(code) if code is not None else None


class Registry:
    """modelward's view of an MLflow model registry.

    ``Registry(...)`` stores its arguments; :meth:`open` opens and migrates the store. MLflow is
    imported on first use, so a registry that only reads the audit log never loads it.
    """

    def __init__(
        self,
        *,
        tracking_uri: str,
        store: Store,
        artifact_location: str | None = None,
        experiment: str = "modelward",
        actor: str = "unknown",
        trusted_types: Sequence[str] = (),
    ) -> None:
        self.tracking_uri = tracking_uri
        self.store = store
        self.artifact_location = artifact_location
        self.experiment = experiment
        self.actor = actor
        self.trusted_types = tuple(trusted_types)
        self.audit = AuditLog(store)
        self.deployments = Deployments(store, self.audit, actor=actor)
        self._client: MlflowClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        if not settings.database_url or not settings.tracking_uri:
            settings.ensure_home()
        return cls(
            tracking_uri=settings.resolved_tracking_uri,
            store=Store(settings.resolved_database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms),
            artifact_location=settings.resolved_artifact_location,
            experiment=settings.experiment,
            actor=settings.resolved_actor,
            trusted_types=settings.trusted_types,
        )

    def open(self) -> Registry:
        self.store.open()
        self.store.migrate()
        return self

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Registry:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- MLflow access ---------------------------------------------------------------------------

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    @contextmanager
    def mlflow_context(self) -> Iterator[None]:
        """Point MLflow's fluent API (log_model, start_run) at this registry for the block."""
        import mlflow
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        # MLflow keeps these as module globals and copies them into the environment (for its
        # subprocesses); restore both exactly, so neither a caller's set-up nor later Settings change.
        saved_tracking = tracking_utils._tracking_uri
        saved_registry = registry_utils._registry_uri
        saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            yield
        finally:
            tracking_utils._tracking_uri = saved_tracking
            registry_utils._registry_uri = saved_registry
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def _registered_model(self, name: str) -> RegisteredModel:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException as exc:
            if _mlflow_error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                raise ModelNotFound(name, [m.name for m in self.models()][:20]) from exc
            raise

    # -- queries ---------------------------------------------------------------------------------

    def models(self) -> list[ModelInfo]:
        out: list[ModelInfo] = []
        token: str | None = None
        while True:
            page = self.client.search_registered_models(max_results=_PAGE, page_token=token)
            out.extend(self._model_info(m) for m in page)
            token = page.token
            if not token:
                break
        return sorted(out, key=lambda m: m.name)

    def model(self, name: str) -> ModelInfo:
        return self._model_info(self._registered_model(validate_name(name)))

    def versions(self, name: str) -> list[VersionInfo]:
        rm = self._registered_model(validate_name(name))
        escaped = name.replace("'", "\\'")
        out: list[VersionInfo] = []
        token: str | None = None
        while True:
            page = self.client.search_model_versions(f"name='{escaped}'", max_results=_PAGE, page_token=token)
            out.extend(self._version_info(v, rm) for v in page)
            token = page.token
            if not token:
                break
        return sorted(out, key=lambda v: int(v.version))

    def version(self, name: str, version: str | int) -> VersionInfo:
        return self._version_and_aliases(name, version)[0]

    def _version_and_aliases(self, name: str, version: str | int) -> tuple[VersionInfo, dict[str, str]]:
        """The version and every alias of its model, from one read of each."""
        from mlflow.exceptions import MlflowException

        rm = self._registered_model(validate_name(name))
        try:
            mv = self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            if _mlflow_error_code(exc) in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                known = [v.version for v in self.versions(name)]
                raise VersionNotFound(name, str(version), known) from exc
            raise
        return self._version_info(mv, rm), self._aliases(rm)

    def resolve(self, ref: str | ModelRef) -> VersionInfo:
        """``name:version``, ``name@alias``, or ``name`` (its champion, else its latest live version)."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.version is not None:
            return self.version(parsed.name, parsed.version)
        rm = self._registered_model(parsed.name)
        aliases = self._aliases(rm)
        if parsed.alias is not None:
            if parsed.alias not in aliases:
                raise AliasNotFound(parsed.name, parsed.alias, sorted(aliases))
            return self.version(parsed.name, aliases[parsed.alias])
        if DEFAULT_ALIAS in aliases:
            return self.version(parsed.name, aliases[DEFAULT_ALIAS])
        live = [v for v in self.versions(parsed.name) if not v.archived]
        if not live:
            raise NotFound(f"model '{parsed.name}' has no version that is not archived")
        return live[-1]

    def signature(self, info: VersionInfo) -> FeatureSchema:
        """The version's input schema, read from its MLmodel file without loading the model."""
        from mlflow.models import Model

        with self.mlflow_context():
            mlmodel = Model.load(f"models:/{info.name}/{info.version}")
        if mlmodel.signature is None:
            return self._recorded_schema(info)
        return FeatureSchema.from_mlflow_inputs(mlmodel.signature.inputs.to_json())

    def _recorded_schema(self, info: VersionInfo) -> FeatureSchema:
        """The schema inferred at registration for a model logged without a signature (its record)."""
        import tempfile
        from pathlib import Path

        from modelward.registry.register import RECORD_FILE, load_record

        run_id = info.tags.get(TAG_PREFIX + "run_id")
        folder = info.tags.get(TAG_PREFIX + "artifacts")
        if not run_id or not folder:
            return FeatureSchema(())
        with tempfile.TemporaryDirectory(prefix="modelward-record-") as tmp:
            try:
                path = self.client.download_artifacts(run_id, f"{folder}/{RECORD_FILE}", tmp)
            except Exception as exc:  # MLflow raises several types; loading the version says what is wrong
                log.debug("no registration record for %s: %s", info.ref, exc)
                return FeatureSchema(())
            record = load_record(Path(path).read_text("utf-8"))
        return FeatureSchema.from_mlflow_inputs(record.get("schema") or [])

    def manifest(self, name: str, version: str) -> dict[str, FilePin]:
        """The version's pins as the store holds them; :meth:`verified_manifest` before a load."""
        with self.store.read() as conn:
            return self._manifest(conn, name, version)

    @staticmethod
    def _manifest(conn: Connection, name: str, version: str) -> dict[str, FilePin]:
        rows = conn.execute(
            select(artifact_files).where(
                (artifact_files.c.model == name) & (artifact_files.c.version == str(version))
            )
        )
        return {r.path: FilePin(r.path, r.sha256, int(r.size)) for r in rows}

    def verified_manifest(self, name: str, version: str) -> PinnedManifest:
        """The version's pins and load policy, once the audit chain vouches for them.

        The pins in the store must match the digest that the version's ``register`` event recorded
        (see :mod:`modelward.governance.pins`); otherwise, and for a version without pins,
        :class:`~modelward.errors.IntegrityError` names what is wrong.
        """
        with self.store.read() as conn:
            problems, policy = check_version(conn, name, str(version))
            pins = self._manifest(conn, name, str(version))
        if not pins and policy is None and not problems:
            problems = [
                "it has no sha256 pins: it was not registered through modelward (use register_mlflow_model)"
            ]
        if problems or policy is None:
            raise IntegrityError(name, str(version), problems)
        return PinnedManifest(pins, policy)

    def alias_history(self, name: str, alias: str | None = None) -> list[dict[str, Any]]:
        query = select(alias_events).where(alias_events.c.model == name).order_by(alias_events.c.id)
        if alias is not None:
            query = query.where(alias_events.c.alias == alias)
        with self.store.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- lifecycle -------------------------------------------------------------------------------

    def promote(
        self,
        name: str,
        version: str | int,
        alias: str = DEFAULT_ALIAS,
        *,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> VersionInfo:
        """Point ``alias`` at ``version``; the previous holder is remembered for :meth:`rollback`. The raw
        move: the gates run above it (governance.promotion), their results passed as ``detail``."""
        validate_alias(f"{name}@{alias}", alias)
        with self._alias_move(name) as conn:
            # Read under the lock: a holder read before it may be moved by another process meanwhile.
            target, aliases = self._version_and_aliases(name, version)
            refusal = self._refusal(conn, target)
            if refusal is not None:
                raise LifecycleError(refusal)
            current = aliases.get(alias)
            if current == target.version:
                log.info("%s already holds %s", target.ref, alias)
                return target
            self._record_alias_event(conn, name, alias, "promote", target.version, current, reason)
            payload = {
                **(detail or {}),
                "alias": alias,
                "from": current,
                "to": target.version,
                "reason": reason,
            }
            self.audit.append("promote", target.ref, payload, actor=self.actor, conn=conn)
            self.client.set_registered_model_alias(name, alias, target.version)
        return self.version(name, target.version)

    def promotion_refusal(self, name: str, version: str | int) -> str | None:
        """Why :meth:`promote` would refuse this version whatever its gates say (archived, unpinned)."""
        target = self.version(name, version)
        with self.store.read() as conn:
            return self._refusal(conn, target)

    def _refusal(self, conn: Connection, target: VersionInfo) -> str | None:
        if target.archived:
            return f"{target.ref} is archived; unarchive it before promoting it"
        if not self._manifest(conn, target.name, target.version):
            return self._unpinned(target)
        return None

    def _unpinned(self, target: VersionInfo) -> str:
        """Why a version without pins here cannot be promoted: it would never load from this home."""
        from sqlalchemy.engine import make_url

        where = make_url(self.store.url).render_as_string(hide_password=True)
        how = (
            "through another modelward home"
            if target.tags.get(TAG_PREFIX + "artifacts")
            else "outside modelward (straight into MLflow)"
        )
        return (
            f"{target.ref} was registered {how}: this home's store ({where}) holds no sha256 pins for it, "
            f"so it would not load here; register it here with `modelward register --from-mlflow "
            f"models:/{target.name}/{target.version}` (a new version), or use the home that registered it"
        )

    def rollback(self, name: str, alias: str = DEFAULT_ALIAS, *, reason: str | None = None) -> VersionInfo:
        """Move ``alias`` back to the version that held it before the last promotion."""
        validate_alias(f"{name}@{alias}", alias)
        with self._alias_move(name) as conn:
            current = self._aliases(self._registered_model(name)).get(alias)
            stack = self._promotion_stack(conn, name, alias)
            if not stack:
                raise LifecycleError(
                    f"'{alias}' of {name} was never promoted through modelward; nothing to undo"
                )
            previous, last = stack[-1]
            if current != last:
                raise LifecycleError(
                    f"'{alias}' of {name} now points at {current or 'nothing'}, "
                    "but modelward last moved it to "
                    f"{last}: it was changed outside modelward; promote the version you want explicitly"
                )
            if previous is None:
                raise LifecycleError(
                    f"{name}:{last} was the first holder of '{alias}'; there is no earlier one"
                )
            if self.version(name, previous).archived:
                raise LifecycleError(f"the previous holder {name}:{previous} is archived; unarchive it first")
            self._record_alias_event(conn, name, alias, "rollback", previous, last, reason)
            payload = {"alias": alias, "from": last, "to": previous, "reason": reason}
            self.audit.append("rollback", f"{name}:{previous}", payload, actor=self.actor, conn=conn)
            self.client.set_registered_model_alias(name, alias, previous)
        return self.version(name, previous)

    def archive(self, name: str, version: str | int, *, reason: str | None = None) -> VersionInfo:
        """Retire a version: it is skipped by default resolution and cannot be promoted."""
        with self._alias_move(name) as conn:
            # Under the alias lock, so that no promotion can make it a holder between check and tag.
            target = self.version(name, version)
            if target.aliases:
                raise LifecycleError(
                    f"{target.ref} holds {', '.join(target.aliases)}; promote another version first"
                )
            if target.archived:
                return target
            self.audit.append("archive", target.ref, {"reason": reason}, actor=self.actor, conn=conn)
            self.client.set_model_version_tag(name, target.version, TAG_PREFIX + "archived", "true")
        return self.version(name, target.version)

    def unarchive(self, name: str, version: str | int, *, reason: str | None = None) -> VersionInfo:
        with self._alias_move(name) as conn:
            target = self.version(name, version)
            if not target.archived:
                return target
            self.audit.append("unarchive", target.ref, {"reason": reason}, actor=self.actor, conn=conn)
            self.client.delete_model_version_tag(name, target.version, TAG_PREFIX + "archived")
        return self.version(name, target.version)

    # -- helpers ---------------------------------------------------------------------------------

    @contextmanager
    def _mutation(self) -> Iterator[Connection]:
        """A write transaction whose MLflow change, made last inside it, decides the commit."""
        from mlflow.exceptions import MlflowException

        try:
            with self.store.write() as conn:
                yield conn
        except MlflowException as exc:
            raise ModelwardError(f"MLflow refused the change: {exc.message}") from exc

    @contextmanager
    def _alias_move(self, name: str) -> Iterator[Connection]:
        """A mutation holding the model's alias lock: read the aliases and move them inside it.

        On SQLite the write transaction is the lock (BEGIN IMMEDIATE); on PostgreSQL an advisory
        lock per model. Every promote, rollback, archive and unarchive of ``name`` takes it, so each
        sees the state the previous one left, in MLflow and in the alias history alike.
        """
        with self._mutation() as conn:
            self.store.lock(conn, f"modelward.alias.{name}")
            yield conn

    def _record_alias_event(
        self,
        conn: Connection,
        name: str,
        alias: str,
        kind: str,
        version: str | None,
        previous: str | None,
        reason: str | None,
    ) -> None:
        conn.execute(
            alias_events.insert().values(
                model=name,
                alias=alias,
                kind=kind,
                version=version,
                previous_version=previous,
                ts=utc_timestamp(),
                actor=self.actor,
                reason=reason,
            )
        )

    @staticmethod
    def _promotion_stack(conn: Connection, name: str, alias: str) -> list[tuple[str | None, str | None]]:
        """Replay alias moves: a promotion pushes (previous, new); a rollback pops one."""
        rows = conn.execute(
            select(alias_events.c.kind, alias_events.c.version, alias_events.c.previous_version)
            .where((alias_events.c.model == name) & (alias_events.c.alias == alias))
            .order_by(alias_events.c.id)
        )
        stack: list[tuple[str | None, str | None]] = []
        for kind, version, previous in rows:
            if kind == "promote":
                stack.append((previous, version))
            elif kind == "rollback" and stack:
                stack.pop()
        return stack

    @staticmethod
    def _aliases(rm: RegisteredModel) -> dict[str, str]:
        raw = getattr(rm, "aliases", None) or {}
        return {str(k): str(v) for k, v in dict(raw).items()}

    def _model_info(self, rm: RegisteredModel) -> ModelInfo:
        latest = [int(v.version) for v in (rm.latest_versions or [])]
        return ModelInfo(
            name=rm.name,
            description=rm.description or "",
            aliases=self._aliases(rm),
            latest_version=str(max(latest)) if latest else None,
            created_at=ms_to_datetime(rm.creation_timestamp),
            updated_at=ms_to_datetime(rm.last_updated_timestamp),
            tags=dict(rm.tags or {}),
        )

    def _version_info(self, mv: ModelVersion, rm: RegisteredModel) -> VersionInfo:
        version = str(mv.version)
        aliases = tuple(sorted(a for a, v in self._aliases(rm).items() if v == version))
        return VersionInfo(
            name=mv.name,
            version=version,
            aliases=aliases,
            created_at=ms_to_datetime(mv.creation_timestamp),
            run_id=mv.run_id,
            source=mv.source or "",
            description=mv.description or "",
            tags=dict(mv.tags or {}),
        )
