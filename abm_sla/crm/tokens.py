"""Where a rotated OAuth refresh token is kept between runs (``token_store`` in a source's config).

With refresh token rotation on (Salesforce: a connected app / external client app setting), every
refresh answers a new refresh token and invalidates the one just used, so the next run must read the
new one. ``kind: file`` keeps it in a file written atomically (a temporary file in the same folder,
mode 0600, then ``os.replace``); other kinds (``prefect-secret``: a Prefect Secret block) are
registered by the layer that has Prefect (:func:`register_token_store`), since ``abm_sla`` never
imports Prefect.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from abm_sla.crm.mapping import TokenStoreConfig
from abm_sla.errors import ConfigError


class TokenStore(Protocol):
    """Reads and replaces one secret value."""

    def load(self) -> str | None: ...

    def save(self, token: str) -> None: ...


class FileTokenStore:
    """A token in a file of its own, readable only by its owner, replaced atomically."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def load(self) -> str | None:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def save(self, token: str) -> None:
        """Write ``token`` to a temporary file beside the target (mode 0600), then rename it over the target:
        a reader sees the old token or the new one, never half of one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            os.fchmod(handle, 0o600)
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(token)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise


TokenStoreFactory = Callable[[TokenStoreConfig], TokenStore]
_FACTORIES: dict[str, TokenStoreFactory] = {"file": lambda config: FileTokenStore(str(config.path))}


def register_token_store(kind: str, factory: TokenStoreFactory | None) -> None:
    """Install (or, with ``None``, remove) how a ``token_store`` of ``kind`` is opened."""
    if factory is None:
        _FACTORIES.pop(kind, None)
    else:
        _FACTORIES[kind] = factory


def open_token_store(config: TokenStoreConfig | None) -> TokenStore | None:
    """The store ``config`` names, or None when no store is configured."""
    if config is None:
        return None
    factory = _FACTORIES.get(config.kind)
    if factory is None:
        raise ConfigError(f"token_store kind {config.kind!r} needs Prefect: run through the flows or the CLI")
    return factory(config)
