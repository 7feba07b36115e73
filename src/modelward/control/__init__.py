"""Reserved for a later issue; see docs/architecture.md."""

__all__: list[str] = []
