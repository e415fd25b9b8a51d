"""The SLA stage's stored clocks held in memory across the steps of a one-pass backfill.

At every step the SLA stage reads every stored clock of its shard (the settled MQAs, the clocks a later run
stamped, the unchanged ones it only restamps), and most of them are the rows the step before left. Within
:func:`clocks_held` (``backfill.finish_steps``), the first step reads them and each later step starts from what
the step before left instead: its rows, less those it deleted, with the new ``as_of`` on the MQAs it restamped,
and the rows of the accounts whose clocks it wrote whole or deleted read again by account (as stored).

The held rows are dropped, and the next step reads the shard again, when anything else writes ``sla_clocks``:
another statement of this process (a reassignment's fresh clocks, an incremental step, an undo: every
statement SQLAlchemy runs is looked at), or a statement of another process that changes the shard's number of
clocks or its newest ``as_of`` (a live run stamps a later one), checked with one aggregate query per step.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from abm_sla.infra.shards import Shard
from abm_sla.services.stages.load import _in_shard
from abm_sla.warehouse import Warehouse, schema

#: A statement that writes ``sla_clocks``.
_WRITES = re.compile(r"^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+\"?sla_clocks\b", re.IGNORECASE)
MQA_KEY = ["account_id", "trigger_at"]


@dataclass
class _Held:
    """The held clocks of one warehouse, per shard, and the connection whose writes they follow."""

    shards: dict[Shard, pd.DataFrame] = field(default_factory=dict)
    own: sa.Connection | None = None

    def seen(self, connection: sa.Connection, _cursor, statement: str, *_args) -> None:
        """SQLAlchemy's ``before_cursor_execute`` (of every engine): a write of ``sla_clocks`` on another connection
        than the one followed drops the held rows."""
        if connection is not self.own and _WRITES.match(statement):
            self.shards.clear()


_HELD: dict[str, _Held] = {}


@contextmanager
def clocks_held(url: str) -> Iterator[None]:
    """Within it, the SLA stage of ``url`` holds each shard's stored clocks from one step to the next (see the
    module's docstring); nested, the outer block's."""
    if url in _HELD:
        yield
        return
    held = _HELD[url] = _Held()
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", held.seen)
    try:
        yield
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", held.seen)
        _HELD.pop(url, None)


def read_clocks(warehouse: Warehouse, shard: Shard, accounts: list[str] | None = None) -> pd.DataFrame:
    """The stored clocks of ``shard`` (of ``accounts`` only unless None): held ones when they are still the stored
    ones (whole shards within :func:`clocks_held`), else read (and held)."""
    table = schema.sla_clocks
    where = [_in_shard(table, shard)]
    if accounts is not None:
        return warehouse.select_in(list(table.columns), where, table.c.account_id, accounts)
    held = _HELD.get(warehouse.url)
    frame = held.shards.get(shard) if held is not None else None
    if frame is not None and _same_extent(warehouse, shard, frame):
        return frame.copy()
    frame = warehouse.select_frame(list(table.columns), where)
    if held is not None:
        held.shards[shard] = frame
    return frame.copy()


def _same_extent(warehouse: Warehouse, shard: Shard, frame: pd.DataFrame) -> bool:
    """Whether the shard's stored clocks are as many as ``frame``'s, with the same newest ``as_of``."""
    table = schema.sla_clocks
    stored = warehouse.select_frame([sa.func.count().label("clocks"), sa.func.max(table.c.as_of).label("as_of")],
                                    [_in_shard(table, shard)])
    newest, held_newest = stored["as_of"].iloc[0], frame["as_of"].max() if len(frame) else pd.NaT
    if int(stored["clocks"].iloc[0]) != len(frame) or pd.isna(newest) != pd.isna(held_newest):
        return False
    return pd.isna(newest) or newest == held_newest


@contextmanager
def own_writes(warehouse: Warehouse, connection: sa.Connection, shard: Shard, held_read: bool) -> Iterator[None]:
    """The SLA stage's writes of ``shard``'s clocks on ``connection``, which :func:`stored_after` follows (when its
    clocks came from :func:`read_clocks` of the whole shard, ``held_read``); anything else: the held rows go."""
    held = _HELD.get(warehouse.url)
    if held is None or not held_read or shard not in held.shards:
        yield
        return
    held.own = connection
    try:
        yield
    except BaseException:
        held.shards.clear()
        raise
    finally:
        held.own = None


def stored_after(
    warehouse: Warehouse, shard: Shard, before: pd.DataFrame, deleted: pd.DataFrame, clocks: pd.DataFrame,
    restamped: pd.Series, as_of: pd.Timestamp,
) -> None:
    """Hold what the SLA stage's step left in ``shard`` (committed): the clocks read ``before`` it, less the
    ``deleted`` keys, the MQAs of the ``clocks`` rows ``restamped`` (only their ``as_of`` set) stamped ``as_of``,
    and the accounts of the other ``clocks`` rows and of ``deleted`` read again."""
    held = _HELD.get(warehouse.url)
    if held is None or shard not in held.shards:
        return
    rewritten = set(clocks.loc[~restamped.to_numpy(dtype=bool), "account_id"]) | set(deleted["account_id"])
    kept = before[~before["account_id"].isin(rewritten).to_numpy()].reset_index(drop=True)
    stamped = pd.MultiIndex.from_frame(clocks.loc[restamped.to_numpy(dtype=bool), MQA_KEY])
    moved = pd.MultiIndex.from_frame(kept[MQA_KEY]).isin(stamped)
    if moved.any():
        kept.loc[moved, "as_of"] = as_of
    parts = [kept, read_clocks(warehouse, shard, sorted(rewritten))] if rewritten else [kept]
    parts = [part for part in parts if len(part)] or parts[:1]
    held.shards[shard] = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
