"""One exception hierarchy for modelward.

Every error a user can cause or meet is a :class:`ModelwardError`; each subclass also inherits the
builtin it behaves like, so ``except LookupError`` keeps working for callers who do not know us.
Errors carry structured fields (``ModelNotFound.name``) so that the CLI and the server can render
them without parsing messages. HTTP status mapping lives only in ``modelward.serving``.

::

    ModelwardError
    ├── ConfigError (ValueError)
    ├── MissingDependency (ImportError)
    ├── StoreError (RuntimeError)
    │   └── MigrationError
    ├── NotFound (LookupError)
    │   ├── ModelNotFound
    │   ├── VersionNotFound
    │   ├── AliasNotFound
    │   ├── ModelNotServed                 a model (or version) this server does not serve
    │   │   └── VersionNotServed           a version not loaded here (registered or not)
    │   ├── NoExperiment                   no A/B deployment, fewer than two arms logged
    │   └── NoFeedback                     no labelled request fits the metric yet
    ├── InvalidReference (ValueError)
    ├── RegistrationError (ValueError)
    │   └── UntrustedTypes
    ├── LifecycleError (RuntimeError)      promote / rollback / archive refused
    │   ├── StaleDeployment                a deployment changed since it was read
    │   └── SameVersionTargets             a deployment would serve a version against itself
    ├── IntegrityError (RuntimeError)      an artifact's bytes changed since registration
    ├── UnsafeModelFormat (PermissionError) pickle-based model without opt-in
    ├── ModelLoadError (RuntimeError)      a model's files do not load with its flavor's loader
    ├── SchemaError (ValueError)           input does not fit the model's signature
    │   └── RequestInvalid                 a request's bad fields and rows (FieldProblem each)
    ├── AuditChainBroken (RuntimeError)
    ├── ProfileError (ValueError)          values or documents that cannot be profiled
    │   └── ProfileMismatch                two profiles of different shapes
    ├── RoutingError (ValueError)          an invalid split or deployment spec
    ├── ABTestError (ValueError)           invalid A/B input
    │   └── UnknownArm
    ├── CalibrationError (ValueError)      a calibration that cannot be measured as asked
    ├── FeedbackInvalid (ValueError)       malformed feedback items (ItemProblem each)
    ├── ModelLoading (RuntimeError)        a served model not loaded yet
    ├── ModelFailed (RuntimeError)         the model raised on a request
    ├── Overloaded (RuntimeError)          a request that would wait beyond the latency budget
    ├── BodyTooLarge (ValueError)          a request body over the limit
    ├── UnsafeWebhookTarget (PermissionError)
    ├── DeliveryFailed (ConnectionError)   a notification asked for was not delivered
    └── WriterProcessError (RuntimeError)  a prediction log batch the writer process did not write

Where a request's error becomes an HTTP status is decided in ``modelward.serving.problems`` only:
``RequestInvalid.kind`` says what is wrong ("invalid", "malformed", "too-large", "media-type"),
not which status answers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ABTestError",
    "AliasNotFound",
    "AuditChainBroken",
    "BodyTooLarge",
    "CalibrationError",
    "ConfigError",
    "DeliveryFailed",
    "FeedbackInvalid",
    "FieldProblem",
    "IntegrityError",
    "InvalidReference",
    "ItemProblem",
    "LifecycleError",
    "MigrationError",
    "MissingDependency",
    "ModelFailed",
    "ModelLoadError",
    "ModelLoading",
    "ModelNotFound",
    "ModelNotServed",
    "ModelwardError",
    "NoExperiment",
    "NoFeedback",
    "NotFound",
    "Overloaded",
    "ProfileError",
    "ProfileMismatch",
    "RegistrationError",
    "RequestFault",
    "RequestInvalid",
    "RoutingError",
    "SameVersionTargets",
    "SchemaError",
    "StaleDeployment",
    "StoreError",
    "UnknownArm",
    "UnsafeModelFormat",
    "UnsafeWebhookTarget",
    "UntrustedTypes",
    "VersionNotFound",
    "VersionNotServed",
    "WriterProcessError",
]


class ModelwardError(Exception):
    """Base of every error raised by modelward."""


class ConfigError(ModelwardError, ValueError):
    """A setting is missing or malformed."""


class MissingDependency(ModelwardError, ImportError):
    """An optional dependency is not installed; names the extra that provides it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        self.purpose = purpose
        super().__init__(f"{purpose} needs the '{package}' package: pip install 'modelward[{extra}]'")


class StoreError(ModelwardError, RuntimeError):
    """The modelward database could not be opened or written."""


class MigrationError(StoreError):
    """The database schema could not be brought up to date."""


class NotFound(ModelwardError, LookupError):
    """Something named by the user does not exist."""


class ModelNotFound(NotFound):
    def __init__(self, name: str, known: Sequence[str] = ()) -> None:
        import difflib

        self.name = name
        self.known = tuple(known)
        close = difflib.get_close_matches(name, self.known, n=1)
        if close:
            hint = f" (did you mean '{close[0]}'?)"
        elif self.known:
            hint = f" (registered: {', '.join(self.known)})"
        else:
            hint = " (no model is registered yet)"
        super().__init__(f"model '{name}' is not registered{hint}")


class VersionNotFound(NotFound):
    def __init__(self, name: str, version: str, known: Sequence[str] = ()) -> None:
        self.name = name
        self.version = version
        self.known = tuple(known)
        hint = f" (versions: {', '.join(self.known)})" if self.known else ""
        super().__init__(f"model '{name}' has no version {version}{hint}")


class AliasNotFound(NotFound):
    def __init__(self, name: str, alias: str, known: Sequence[str] = ()) -> None:
        self.name = name
        self.alias = alias
        self.known = tuple(known)
        hint = f" (aliases: {', '.join(self.known)})" if self.known else " (it has no aliases)"
        super().__init__(f"model '{name}' has no alias '{alias}'{hint}")


class InvalidReference(ModelwardError, ValueError):
    """A model reference string is malformed."""

    def __init__(self, ref: str, reason: str) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"invalid model reference '{ref}': {reason}; use NAME, NAME@ALIAS or NAME:VERSION")


class RegistrationError(ModelwardError, ValueError):
    """A model could not be registered as asked."""


class UntrustedTypes(RegistrationError):
    """A scikit-learn model contains types outside the reviewed trusted list."""

    def __init__(self, types: Sequence[str]) -> None:
        self.types = tuple(types)
        super().__init__(
            "the model contains types that are not on modelward's reviewed trusted list: "
            + ", ".join(self.types)
            + ". Review them, then pass trusted_types=[...] (CLI: --trust TYPE) to register anyway"
        )


class LifecycleError(ModelwardError, RuntimeError):
    """A promote, rollback or archive was refused."""


class SameVersionTargets(LifecycleError):
    """A deployment spec serves one version against itself: two live arms resolve to the same version,
    the shadow mirrors a version that already serves, or a canary is of its baseline's version.
    ``problems`` says each in a sentence; ``shadow`` is True when one of them is the shadow's."""

    def __init__(self, problems: Sequence[str], *, shadow: bool = False) -> None:
        self.problems = tuple(problems)
        self.shadow = shadow
        super().__init__("; ".join(self.problems))


class IntegrityError(ModelwardError, RuntimeError):
    """A model artifact changed since it was registered."""

    def __init__(self, name: str, version: str, problems: Sequence[str]) -> None:
        self.name = name
        self.version = version
        self.problems = tuple(problems)
        super().__init__(
            f"refusing to load {name} version {version}: its artifacts changed since registration: "
            + "; ".join(self.problems)
        )


class UnsafeModelFormat(ModelwardError, PermissionError):
    """The model can only be loaded by unpickling, and nobody opted in."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(
            f"{what} can only be loaded with pickle, which can run arbitrary code; "
            "register it with allow_pickle=True (CLI: --allow-pickle) if you trust its source"
        )


class ModelLoadError(ModelwardError, RuntimeError):
    """A model's files do not load with its flavor's loader (the library's own error as ``reason``)."""

    def __init__(self, what: str, flavor: str, reason: str) -> None:
        self.what = what
        self.flavor = flavor
        self.reason = reason
        super().__init__(f"{what} does not load as a {flavor} model: {reason}")


class SchemaError(ModelwardError, ValueError):
    """Input rows do not fit the model's signature."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


class AuditChainBroken(ModelwardError, RuntimeError):
    """The audit chain does not verify."""

    def __init__(self, seq: int, reason: str) -> None:
        self.seq = seq
        self.reason = reason
        super().__init__(f"audit chain broken at seq {seq}: {reason}")


# -- input: requests, feedback, profiles, routing, A/B numbers -------------------------------------


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem with the input; ``message`` already names the row and field."""

    message: str
    field: str | None = None
    row: int | None = None

    def to_dict(self) -> dict[str, object]:
        members = (("message", self.message), ("field", self.field), ("row", self.row))
        return {name: value for name, value in members if value is not None}


# What is wrong with a request as a whole: its values or fields ("invalid"), its text is not JSON
# ("malformed"), it has too many rows ("too-large"), it is not JSON at all ("media-type").
RequestFault = Literal["invalid", "malformed", "too-large", "media-type"]


class RequestInvalid(SchemaError):
    """Input that does not fit the schema: ``field_problems`` say where, ``kind`` what is wrong."""

    def __init__(
        self,
        problems: Sequence[FieldProblem],
        *,
        kind: RequestFault = "invalid",
        title: str = "invalid prediction request",
    ) -> None:
        self.field_problems, self.kind, self.title = tuple(problems), kind, title
        # How many problems were found in all; field_problems keeps the first ones of them.
        self.total = len(self.field_problems)
        super().__init__([p.message for p in self.field_problems])

    def __reduce__(self) -> tuple[Any, ...]:  # keyword-only arguments: pickle needs the state apart
        return (type(self), (self.field_problems,), {"kind": self.kind, "title": self.title})


@dataclass(frozen=True, slots=True)
class ItemProblem:
    """One malformed feedback item, by its index in what was sent."""

    index: int
    field: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


class FeedbackInvalid(ModelwardError, ValueError):
    """Some feedback items are malformed; ``problems`` names each by its index. Nothing was written."""

    def __init__(self, problems: Sequence[ItemProblem]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(f"item {p.index}: {p.message}" for p in self.problems[:5])
        more = len(self.problems) - 5
        super().__init__(shown + (f" (and {more} more)" if more > 0 else ""))


class ProfileError(ModelwardError, ValueError):
    """Values that cannot be profiled, or a profile document that cannot be read."""


class ProfileMismatch(ProfileError):
    """Two profiles do not share a shape (edges, categories, features) and cannot be combined."""

    def __init__(self, message: str, feature: str | None = None) -> None:
        self.feature = feature
        super().__init__(message)


class RoutingError(ModelwardError, ValueError):
    """A split policy or one of its arms is invalid, or two policies cannot be compared."""


class StaleDeployment(LifecycleError):
    """The deployment changed since the writer read it (another writer came first)."""

    def __init__(self, model: str, expected: int | None, found: int | None) -> None:
        self.model, self.expected, self.found = model, expected, found
        super().__init__(
            f"the deployment of {model} is at revision {found}, not {expected}: it changed meanwhile"
        )


class ABTestError(ModelwardError, ValueError):
    """The numbers given to the A/B test analysis are invalid or inconsistent."""


class UnknownArm(ABTestError):
    """The control named by the caller is not one of the experiment's arms."""

    def __init__(self, arm: str, arms: Sequence[str]) -> None:
        self.arm = arm
        self.arms = tuple(arms)
        super().__init__(f"no arm named '{arm}' (arms: {', '.join(self.arms)})")


class NoExperiment(NotFound):
    """The model has no A/B deployment and its prediction log has fewer than two arms to compare."""

    def __init__(self, model: str, message: str) -> None:
        self.model = model
        super().__init__(message)


class NoFeedback(NotFound):
    """No served request of the experiment has feedback that fits the metric yet."""

    def __init__(self, model: str, metric: str, message: str) -> None:
        self.model = model
        self.metric = metric
        super().__init__(message)


class CalibrationError(ModelwardError, ValueError):
    """A calibration cannot be measured as asked (a regressor, no target column, no usable rows)."""


# -- serving -------------------------------------------------------------------------------------


class ModelNotServed(NotFound):
    """A model (or a version of it) that this server does not serve."""

    def __init__(self, name: str, served: Sequence[str]) -> None:
        self.name = name
        self.served = tuple(served)
        hint = f" (served: {', '.join(self.served)})" if self.served else " (no models are served)"
        super().__init__(f"model '{name}' is not served here{hint}")


class VersionNotServed(ModelNotServed):
    """A version of a served model that this server has not loaded: ``registered`` says whether the
    registry knows it (then it could be deployed; None when the registry could not be asked);
    ``loaded`` and ``known`` are the versions loaded here and the registered ones."""

    def __init__(
        self,
        name: str,
        version: str,
        *,
        registered: bool | None,
        loaded: Sequence[str],
        known: Sequence[str],
    ) -> None:
        self.version = version
        self.registered = registered  # None: the registry could not be asked
        self.loaded = tuple(loaded)
        self.known = tuple(known)
        here = ", ".join(self.loaded) or "none"
        if registered:
            message = (
                f"version {version} of {name} is registered but not loaded by this server (loaded: {here})"
            )
        elif registered is None:
            message = f"version {version} of {name} is not loaded by this server (loaded: {here})"
        else:
            versions = ", ".join(self.known) or "none"
            message = f"{name} has no version {version} (registered: {versions}; loaded here: {here})"
        NotFound.__init__(self, message)
        self.name = name
        self.served = self.loaded


class ModelLoading(ModelwardError, RuntimeError):
    """A served model that is not loaded yet (``failure`` None: ``retry_after`` seconds is a fair
    wait), or that failed to load (``failure`` says why; it is retried when its version changes)."""

    def __init__(self, name: str, retry_after: int = 2, *, failure: str | None = None) -> None:
        self.name = name
        self.retry_after = retry_after
        self.failure = failure
        if failure is None:
            super().__init__(f"model '{name}' is still loading; retry in {retry_after} s")
        else:
            super().__init__(f"model '{name}' failed to load: {failure}")


class ModelFailed(ModelwardError, RuntimeError):
    """The model raised while predicting: a server-side failure, counted per version."""

    def __init__(self, name: str, version: str, exc: BaseException) -> None:
        self.name = name
        self.version = version
        message = f"{type(exc).__name__}: {exc}"
        super().__init__(f"model '{name}' version {version} failed on this request ({message[:200]})")


class Overloaded(ModelwardError, RuntimeError):
    """The request would be answered beyond the latency budget: shed it (503, Retry-After). ``wait``
    is the expected time in the server, its age included."""

    def __init__(self, name: str, wait: float, budget: float, retry_after: int = 1) -> None:
        self.name, self.wait, self.budget, self.retry_after = name, wait, budget, retry_after
        super().__init__(
            f"{name} is overloaded: the request would be answered after about {wait * 1000:.0f} ms in "
            f"the server, beyond the latency budget of {budget * 1000:.0f} ms; retry in {retry_after} s"
        )


class BodyTooLarge(ModelwardError, ValueError):
    """A request body over the server's limit of ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the request body is larger than the limit of {limit} bytes")


# -- monitoring ----------------------------------------------------------------------------------


class UnsafeWebhookTarget(ModelwardError, PermissionError):
    """A webhook URL, or a redirect, points where modelward refuses to post."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"refusing webhook target {url}: {reason}")


class DeliveryFailed(ModelwardError, ConnectionError):
    """A notification that was asked for explicitly (``modelward alerts test``) was not delivered."""

    def __init__(self, notifier: str, detail: str) -> None:
        self.notifier = notifier
        self.detail = detail
        super().__init__(f"the notification was not delivered to {notifier}: {detail}")


class WriterProcessError(ModelwardError, RuntimeError):
    """A batch the writer process did not write: its reason, as the child (or its exit) gave it."""
