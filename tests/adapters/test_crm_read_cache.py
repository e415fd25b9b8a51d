"""The one-pass backfill's read cache: the same rows as the database gives, re-read once a load writes the kind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from abm_sla.domain import frames
from abm_sla.infra.shards import Shard
from abm_sla.services import stages, synthetic
from abm_sla.warehouse import Warehouse
from abm_sla.warehouse.reads import crm_reads_cached

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
START = pd.Timestamp("2026-01-01T00:00:00Z")


def loaded(tmp_path: Path) -> tuple[Warehouse, dict[str, pd.DataFrame]]:
    crm = synthetic.generate_crm(n_accounts=40, start=START, days=30, seed=3)
    store = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    stages.extract_files(store, synthetic.write_export_folder(crm, tmp_path / "first"), "load-1", NOW)
    return store, crm


def pairs(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["account_id", "contact_id"], ignore_index=True)


def test_held_touches_give_the_database_pairs_inside_the_window_and_the_database_outside(tmp_path: Path) -> None:
    store, _ = loaded(tmp_path)
    low, high = (START + pd.Timedelta(days=5)).to_pydatetime(), (START + pd.Timedelta(days=20)).to_pydatetime()
    windows = [(low, high), (low, low + dt.timedelta(days=3)), (high - dt.timedelta(days=1), high),
               (low - dt.timedelta(days=1), high), (low, high + dt.timedelta(seconds=1))]  # the last two: outside
    accounts = sorted(store.read_kind("accounts")["account_id"].astype(str))[:15]
    expected = [(pairs(store.activity_contacts(since, until, frames.MARKETING_TOUCHES)),
                 pairs(store.activity_contacts(since, until, frames.MARKETING_TOUCHES, accounts=accounts)),
                 pairs(store.activity_contacts(since, until, frames.MARKETING_TOUCHES[:1])),
                 pairs(store.activity_contacts(since, until, (*frames.MARKETING_TOUCHES, "meeting"))))
                for since, until in windows]
    assert len(expected[0][0]) > 0 and len(expected[0][1]) < len(expected[0][0])
    with crm_reads_cached(store.url):
        store.hold_events(high, frames.MARKETING_TOUCHES)
        for (since, until), (whole, some, fewer, more) in zip(windows, expected, strict=True):
            pd.testing.assert_frame_equal(pairs(store.activity_contacts(since, until, frames.MARKETING_TOUCHES)), whole)
            pd.testing.assert_frame_equal(pairs(store.activity_contacts(
                since, until, frames.MARKETING_TOUCHES, accounts=accounts)), some)
            pd.testing.assert_frame_equal(pairs(store.activity_contacts(since, until, frames.MARKETING_TOUCHES[:1])),
                                          fewer)
            pd.testing.assert_frame_equal(pairs(store.activity_contacts(
                since, until, (*frames.MARKETING_TOUCHES, "meeting"))), more)


def test_a_load_inside_the_cache_is_read(tmp_path: Path) -> None:
    store, crm = loaded(tmp_path)
    low, high = START.to_pydatetime(), (START + pd.Timedelta(days=40)).to_pydatetime()
    with crm_reads_cached(store.url):
        store.hold_events(high, frames.MARKETING_TOUCHES)
        accounts_before = store.read_kind("accounts")
        touches_before = store.activity_contacts(low, high, frames.MARKETING_TOUCHES)
        assert store.read_kind("accounts").equals(accounts_before)  # a copy of the first read
        more = {kind: frame.copy() for kind, frame in crm.items()}
        account = str(more["accounts"]["account_id"].iloc[0])
        extra_account = more["accounts"].iloc[[0]].assign(account_id="zz-new", name="Newco")
        more["accounts"] = pd.concat([more["accounts"], extra_account], ignore_index=True)
        contact = more["contacts"].iloc[[0]].assign(contact_id="zz-contact", account_id=account)
        more["contacts"] = pd.concat([more["contacts"], contact], ignore_index=True)
        touch = more["activities"][more["activities"]["type"].isin(frames.MARKETING_TOUCHES)].iloc[[0]].assign(
            activity_id="zz-touch", account_id=account, contact_id="zz-contact",
            occurred_at=START + pd.Timedelta(days=39))
        more["activities"] = pd.concat([more["activities"], touch], ignore_index=True)
        stages.extract_files(store, synthetic.write_export_folder(more, tmp_path / "second"), "load-2", NOW)
        accounts_after = store.read_kind("accounts")
        touches_after = store.activity_contacts(low, high, frames.MARKETING_TOUCHES)
    assert len(accounts_after) == len(accounts_before) + 1 and "zz-new" in set(accounts_after["account_id"])
    pd.testing.assert_frame_equal(pairs(touches_after),
                                  pairs(store.activity_contacts(low, high, frames.MARKETING_TOUCHES)))
    assert len(touches_after) == len(touches_before) + 1
    assert ((touches_after["account_id"] == account) & (touches_after["contact_id"] == "zz-contact")).any()


SALES = frames.SALES_TOUCHES + frames.OWNER_EVENTS


def touches(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("activity_id", ignore_index=True)


def test_held_sales_touches_are_the_database_rows_of_each_window_shard_and_account(tmp_path: Path) -> None:
    store, _ = loaded(tmp_path)
    latest = (START + pd.Timedelta(days=29)).to_pydatetime()
    days = [START + pd.Timedelta(days=n) for n in (6, 3, 8, 14)]  # the second starts before the first read
    windows = [(day.to_pydatetime(), (day + pd.Timedelta(days=12)).to_pydatetime()) for day in days]
    windows.append((START.to_pydatetime(), latest + dt.timedelta(seconds=1)))  # ends after the held range
    accounts = sorted(store.read_kind("accounts")["account_id"].astype(str))[:15]
    shard = Shard(1, 3)
    reads = [dict(types=SALES), dict(types=SALES[:2], shard=shard), dict(types=SALES, accounts=accounts),
             dict(types=(*SALES, "web_visit"))]  # the last: more types than held
    expected = [[touches(store.read_kind("activities", since=since, until=until, **read)) for read in reads]
                for since, until in windows]
    assert len(expected[0][0]) > len(expected[0][2]) > 0 and 0 < len(expected[0][1]) < len(expected[0][0])
    database_reads = []
    original = store._read_kind

    def counted(kind, **arguments):
        database_reads.append((kind, arguments["since"], arguments["until"]))
        return original(kind, **arguments)

    store._read_kind = counted
    with crm_reads_cached(store.url):
        store.hold_events(latest, SALES)
        for (since, until), wanted in zip(windows, expected, strict=True):
            for read, rows in zip(reads, wanted, strict=True):
                pd.testing.assert_frame_equal(touches(store.read_kind("activities", since=since, until=until,
                                                                      **read)), rows)
    held = [read for read in database_reads if read[2] == latest]
    # each selection (all the types, two of them) read once, and again only for the earlier start
    assert [since for _, since, _ in held] == [windows[0][0]] * 2 + [windows[1][0]] * 2


def test_held_sales_touches_are_read_again_after_a_load_writes_activities(tmp_path: Path) -> None:
    store, crm = loaded(tmp_path)
    since, until = START.to_pydatetime(), (START + pd.Timedelta(days=40)).to_pydatetime()
    with crm_reads_cached(store.url):
        store.hold_events(until, SALES)
        before = store.read_kind("activities", since=since, until=until, types=SALES)
        more = {kind: frame.copy() for kind, frame in crm.items()}
        call = more["activities"][more["activities"]["type"].eq("call")].iloc[[0]].assign(
            activity_id="zz-call", occurred_at=START + pd.Timedelta(days=39))
        more["activities"] = pd.concat([more["activities"], call], ignore_index=True)
        stages.extract_files(store, synthetic.write_export_folder(more, tmp_path / "second"), "load-2", NOW)
        after = store.read_kind("activities", since=since, until=until, types=SALES)
    assert len(after) == len(before) + 1 and "zz-call" in set(after["activity_id"])


def by_key(frame: pd.DataFrame) -> pd.DataFrame:
    key = "activity_id" if "activity_id" in frame and frame["activity_id"].notna().all() else None
    columns = [key] if key else list(frame.columns)
    return frame.sort_values(columns, ignore_index=True)


def test_held_windows_of_every_type_and_of_intent_move_by_steps_and_are_read_again_past_the_horizon(
        tmp_path: Path) -> None:
    """The tier-move ledger's reads (activities of any type entering its window, buying signals with a url
    filter, intent signals over a score, some accounts): each step's window equals the database's, and each
    selection is read once per horizon."""
    store, _ = loaded(tmp_path)
    latest = (START + pd.Timedelta(days=29)).to_pydatetime()
    steps = [START + pd.Timedelta(days=n, hours=12) for n in range(7, 29)]  # at noon: events on both sides
    accounts = sorted(store.read_kind("accounts")["account_id"].astype(str))[:15]
    buying = ("form_submit", "webinar", "web_visit")
    entering = dict(columns=("account_id", "type", "occurred_at"))
    reads = [("activities", lambda day: day - pd.Timedelta(days=1), entering),
             ("activities", lambda day: day - pd.Timedelta(days=5), dict(
                 types=buying, url_contains={"web_visit": ("/pricing", "/demo")}, accounts=accounts)),
             ("intent_signals", lambda day: day - pd.Timedelta(days=5), dict(min_score=70, accounts=accounts))]
    expected = [[by_key(store.read_kind(kind, since=start(day).to_pydatetime(), until=day.to_pydatetime(), **read))
                 for kind, start, read in reads] for day in steps]
    assert all(len(rows) for rows in expected[-1])
    assert sum(len(rows[1]) for rows in expected) < sum(len(rows[0]) for rows in expected)
    database_reads: dict[str, list[tuple]] = {}
    original = store._read_kind

    def counted(kind, **arguments):
        selection = repr((kind, sorted((name, value) for name, value in arguments.items()
                                       if name not in ("since", "until"))))
        database_reads.setdefault(selection, []).append((arguments["since"], arguments["until"]))
        return original(kind, **arguments)

    store._read_kind = counted
    with crm_reads_cached(store.url):
        store.hold_events(latest, SALES + buying, any_type=True, horizon=pd.Timedelta(days=6))
        for day, wanted in zip(steps, expected, strict=True):
            for (kind, start, read), rows in zip(reads, wanted, strict=True):
                got = store.read_kind(kind, since=start(day).to_pydatetime(), until=day.to_pydatetime(), **read)
                pd.testing.assert_frame_equal(by_key(got), rows, check_dtype=len(rows) > 0)  # none: any dtype
    # 22 daily steps, each read reaching 6 days past its window's end: a selection is read every 7th step, the
    # whole window the first time, then only what follows the rows held
    assert len(database_reads) == 3 and all(len(spans) == 4 for spans in database_reads.values())
    for (_, start, _), spans in zip(reads, database_reads.values(), strict=True):
        assert spans[0][0] == start(steps[0]).to_pydatetime()
        assert [since for since, _ in spans[1:]] == [until for _, until in spans[:-1]]


def test_contacts_by_id_within_the_cache_are_the_database_rows(tmp_path: Path) -> None:
    store, _ = loaded(tmp_path)
    ids = [*sorted(store.read_kind("contacts")["contact_id"].astype(str))[::3], "no-such-contact"]
    wanted = store.contacts_by_id(ids).sort_values("contact_id", ignore_index=True)
    assert 0 < len(wanted) < len(ids)
    with crm_reads_cached(store.url):
        got = store.contacts_by_id(ids).sort_values("contact_id", ignore_index=True)
    pd.testing.assert_frame_equal(got, wanted)


def test_contacts_by_id_are_the_live_contacts_of_every_source(db_url: str) -> None:
    """By id across sources (the key's seeks need each source): a source holding only contacts included, a
    deleted contact left out."""
    store = Warehouse(db_url)
    contacts = pd.DataFrame({"contact_id": ["c1", "c2", "c3"], "account_id": ["a1", "a1", "a2"],
                             "title": ["VP Sales", None, "CFO"]})
    with store.engine.begin() as connection:
        store.store_frames(connection, "files", "accounts", pd.DataFrame({"account_id": ["a1", "a2"]}))
        store.store_frames(connection, "files", "contacts", contacts)
        store.store_frames(connection, "hubspot", "contacts", contacts.iloc[[0, 2]].assign(title="Head of IT"))
        store.mark_deleted(connection, "files", "contacts", ["c3"], NOW)
    found = store.contacts_by_id(["c1", "c3", "c9"]).sort_values(["contact_id", "title"], ignore_index=True)
    assert found[["contact_id", "title"]].values.tolist() == [["c1", "Head of IT"], ["c1", "VP Sales"],
                                                             ["c3", "Head of IT"]]


def last_at(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("account_id", ignore_index=True)


def test_last_activities_advance_from_the_extent_by_the_held_activities_and_are_read_after_a_load(
        tmp_path: Path) -> None:
    """Within the cache, after the extent of a moment, each later moment's last activities are that extent advanced
    by the held activities since: the database's answers, also for an account without a row (read from the
    database), and read from the database again once a load writes activities."""
    store, crm = loaded(tmp_path)
    steps = [START + pd.Timedelta(days=day, hours=hour) for day in range(4, 34, 3) for hour in (0, 7)]
    accounts = [*sorted(store.read_kind("accounts")["account_id"].astype(str)), "no-such-account"]
    expected = [last_at(store.last_activities(step.to_pydatetime(), accounts)) for step in steps]
    assert expected[0]["last_at"].lt(expected[-1]["last_at"]).any()  # the answers move over the steps
    with crm_reads_cached(store.url):
        store.hold_events(steps[-1].to_pydatetime(), frames.MARKETING_TOUCHES, any_type=True,
                          horizon=pd.Timedelta(days=7))
        store.activity_extent(steps[0].to_pydatetime())
        for step, answer in zip(steps, expected, strict=True):
            store.read_kind("activities", since=(step - pd.Timedelta(days=1)).to_pydatetime(),
                            until=step.to_pydatetime(), columns=("account_id", "type", "url", "occurred_at"))
            pd.testing.assert_frame_equal(last_at(store.last_activities(step.to_pydatetime(), accounts)), answer)
        assert store._last_seen(steps[-1].to_pydatetime()).until == steps[-1]  # answered from memory
        more = {kind: frame.copy() for kind, frame in crm.items()}
        account = str(more["accounts"]["account_id"].iloc[0])
        late = more["activities"].iloc[[0]].assign(activity_id="zz-late", account_id=account,
                                                    occurred_at=steps[-1] - pd.Timedelta(minutes=1))
        more["activities"] = pd.concat([more["activities"], late], ignore_index=True)
        stages.extract_files(store, synthetic.write_export_folder(more, tmp_path / "second"), "load-2", NOW)
        after = last_at(store.last_activities(steps[-1].to_pydatetime(), accounts))
        assert store._last_seen(steps[-1].to_pydatetime()) is None
    assert after.loc[after["account_id"].eq(account), "last_at"].tolist() == [steps[-1] - pd.Timedelta(minutes=1)]
