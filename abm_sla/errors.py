"""Errors a user sees as one line: the CLI prints ``str(error)`` and exits non-zero."""


class AbmSlaError(Exception):
    """Base for every error meant for the user rather than a traceback."""


class ConfigError(AbmSlaError):
    """A scoring model, SLA policy or settings file is invalid; the message names the field."""


class SourceError(AbmSlaError):
    """A CRM source cannot be read (missing folder, bad credentials, API refusal)."""


class WarehouseError(AbmSlaError):
    """The warehouse cannot be reached or migrated."""


def required_text(value: str | None, what: str, error: type[AbmSlaError] = AbmSlaError) -> str:
    """``value`` stripped; an empty one raises ``error`` ("<what> is required")."""
    text = (value or "").strip()
    if not text:
        raise error(f"{what} is required")
    return text
