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
    │   └── AliasNotFound
    ├── InvalidReference (ValueError)
    ├── RegistrationError (ValueError)
    │   └── UntrustedTypes
    ├── LifecycleError (RuntimeError)      promote / rollback / archive refused
    ├── IntegrityError (RuntimeError)      an artifact's bytes changed since registration
    ├── UnsafeModelFormat (PermissionError) pickle-based model without opt-in
    ├── SchemaError (ValueError)           input does not fit the model's signature
    │   └── RequestInvalid                 (modelward.validation) a request's bad fields and rows
    ├── AuditChainBroken (RuntimeError)
    ├── ProfileError (ValueError)          (modelward.drift) ├── ProfileMismatch
    ├── RoutingError (ValueError)          (modelward.routing) an invalid split
    ├── ABTestError (ValueError)           (modelward.feedback) invalid A/B input
    └── serving: ModelNotServed (NotFound), ModelLoading, ModelFailed, BodyTooLarge
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AliasNotFound",
    "AuditChainBroken",
    "ConfigError",
    "IntegrityError",
    "InvalidReference",
    "LifecycleError",
    "MigrationError",
    "MissingDependency",
    "ModelNotFound",
    "ModelwardError",
    "NotFound",
    "RegistrationError",
    "SchemaError",
    "StoreError",
    "UnsafeModelFormat",
    "UntrustedTypes",
    "VersionNotFound",
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
