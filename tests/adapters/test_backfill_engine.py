"""The one-pass backfill engine stores exactly what a step-by-step backfill stores.

A property test feeds two warehouses the same random CRM (the incremental property test's generator:
new, late and back-dated rows, status changes, list rows, opportunities; the demo preset with its
ladders, reassignment on breach and tier moves), runs the same live runs on both (behind, inside and
ahead of the backfill's period), lets more data arrive, then backfills one step by step (score, fire
and route, SLA, tier moves per step, as ``flows/backfill.py`` does) and the other with
:mod:`abm_sla.services.backfill`, over an hourly, daily or irregular grid. Every export and every table the
reports read must be equal (run ids aside: the one-pass backfill is one run).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from abm_sla.services import backfill, exports, stages
from abm_sla.warehouse import Warehouse, schema, undo
from tests.adapters.test_incremental import MODEL, NOW, POLICY, START, Crm, arrival

#: The derived tables compared, with the columns that name the run that wrote a row (left out).
TABLES = {
    schema.score_history: ("run_id",),
    schema.mqas: ("run_id",),
    schema.sla_clocks: (),
    schema.escalations: (),
    schema.reassignments: ("run_id",),
    schema.routing_state: (),
    schema.tier_move_recommendations: ("run_id",),
}
STAGE_RUN_COLUMNS = ["stage", "as_of", "config_version", "model_version", "accounts"]


def live_run(store: Warehouse, as_of: pd.Timestamp, run_id: str) -> None:
    stages.score(store, as_of, MODEL, POLICY, run_id)
    stages.fire_and_route(store, as_of, MODEL, POLICY, run_id)
    stages.evaluate_sla(store, as_of, POLICY, run_id=run_id)
    stages.record_tier_moves(store, as_of, POLICY, MODEL, run_id)


def step_by_step(store: Warehouse, steps: list[pd.Timestamp], full: bool) -> list[int]:
    """The backfill as ``flows/backfill.py`` runs it without the one-pass engine; the MQAs fired per step."""
    fired = []
    for as_of in steps:
        run_id = f"step-{as_of.isoformat()}"
        stages.score(store, as_of, MODEL, POLICY, run_id, full=full)
        fired.append(len(stages.fire_and_route(store, as_of, MODEL, POLICY, run_id, full=full)))
        stages.evaluate_sla(store, as_of, POLICY, run_id=run_id, full=full)
        stages.record_tier_moves(store, as_of, POLICY, MODEL, run_id)
    return fired


def state(store: Warehouse) -> dict[str, pd.DataFrame]:
    """Every export, every derived table (sorted, run ids left out) and the recorded stage runs."""
    out = {kind: frame.reset_index(drop=True) for kind, frame in
           ((kind, exports.EXPORTS[kind](store)) for kind in exports.EXPORTS)}
    for table, dropped in TABLES.items():
        frame = store.read_table(table).drop(columns=[*dropped, "id"], errors="ignore")
        if table is schema.routing_state:  # SQLite's write lock is a row of its own there
            frame = frame[~frame["key"].str.startswith("lock:")]
        keys = [column.name for column in table.primary_key.columns if column.name in frame]
        out[table.name] = frame.sort_values(keys).reset_index(drop=True)
    runs = store.read_table(schema.stage_runs)
    runs["qualified"] = [summary.get("qualified") if stage == "score" else None  # the run's qualified count
                         for stage, summary in zip(runs["stage"], runs["summary"], strict=True)]
    runs = runs[[*STAGE_RUN_COLUMNS, "qualified"]].astype({"accounts": str})
    out["stage_runs"] = runs.sort_values(["stage", "as_of"]).reset_index(drop=True)
    return out


def assert_same(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    for name in left:
        pd.testing.assert_frame_equal(left[name], right[name], check_dtype=False, obj=name)


EXAMPLE = {  # MQAs fired inside the backfill on four accounts, a rejection and a second episode, a late touch
    "first": ([("pricing", "A1", 48, True), ("webinar", "A1", 49, True), ("form_submit", "A1", 50, True),
               ("pricing", "A3", 72, True), ("webinar", "A3", 73, True), ("form_submit", "A3", 74, True),
               ("rejected", "A3", 96, True), ("pricing", "A3", 100, True), ("demo", "A3", 101, True),
               ("pricing", "A2", 80, True), ("webinar", "A2", 81, True), ("form_submit", "A2", 82, True),
               ("pricing", "A4", 90, True), ("webinar", "A4", 91, True), ("form_submit", "A4", 92, True),
               ("working", "A1", 24 * 5, True)], None),
    "live": [30], "later": ([("call", "A1", 60, True), ("intent", "A2", 24 * 3, True)], None),
}


grid = st.one_of(
    st.tuples(st.just("hourly"), st.integers(0, 40 * 24), st.integers(1, 8)),
    st.tuples(st.just("daily"), st.integers(0, 30 * 24), st.integers(1, 6)),
    st.tuples(st.just("irregular"), st.integers(0, 30 * 24), st.lists(st.integers(1, 24 * 9), min_size=1,
                                                                      max_size=5)),
)


def steps_of(spec: tuple) -> list[pd.Timestamp]:
    kind, first, shape = spec
    begin = START + pd.Timedelta(hours=first, minutes=30)
    if kind == "irregular":
        gaps = pd.Series([0, *shape]).cumsum()
        return [begin + pd.Timedelta(hours=int(hours)) for hours in gaps]
    every = pd.Timedelta(hours=1 if kind == "hourly" else 24)
    return [begin + every * number for number in range(shape)]


@settings(max_examples=4, deadline=None, derandomize=True, print_blob=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(first=arrival, live=st.lists(st.integers(0, 60 * 24), max_size=3), later=st.none() | arrival, spec=grid,
       full=st.booleans())
@example(**EXAMPLE, spec=("daily", 40, 5), full=False)
@example(  # an hourly grid through the first touches' business-hour deadlines and ladders (New York and Berlin
    # owners, the deadlines asked again at every step), a run stored behind it and one inside it, ahead of later steps
    first=EXAMPLE["first"], live=[30, 24 * 4 + 3], later=EXAMPLE["later"], spec=("hourly", 24 * 4 - 4, 8), full=False,
)
@example(  # every account at every hourly step through the deadlines and ladders: the stored clocks held in between
    first=EXAMPLE["first"], live=[30], later=EXAMPLE["later"], spec=("hourly", 24 * 4 - 4, 12), full=True,
)
@example(  # a live run ahead of the backfill: its MQAs stand, the scores it reads are pinned
    first=([("pricing", "A1", 48, True), ("webinar", "A1", 49, True), ("form_submit", "A1", 50, True),
            ("pricing", "A3", 72, True), ("webinar", "A3", 73, True), ("form_submit", "A3", 74, True)], None),
    live=[30, 24 * 25], later=([("intent", "A2", 24 * 3, True)], None), spec=("irregular", 40, [5, 30]), full=True,
)
def test_one_pass_backfill_equals_step_by_step(first, live, later, spec, full) -> None:
    check_one_pass_equals_steps(first, live, later, steps_of(spec), full)


def test_one_pass_on_postgresql_equals_step_by_step_on_sqlite(postgres_url) -> None:
    check_one_pass_equals_steps(EXAMPLE["first"], EXAMPLE["live"], EXAMPLE["later"], steps_of(("daily", 40, 5)),
                                False, one_pass_url=postgres_url)


def check_one_pass_equals_steps(first, live, later, steps, full, one_pass_url: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        crm = Crm(root)
        stores = {name: Warehouse(f"sqlite:///{root / f'{name}.db'}") for name in ("steps", "one-pass")}
        if one_pass_url:
            stores["one-pass"] = Warehouse(one_pass_url)
        folders = [crm.arrive(*first)]
        for store in stores.values():
            stages.extract_files(store, folders[0], "load-1", NOW)
        for hours in live:
            as_of = START + pd.Timedelta(hours=hours, minutes=15)
            for store in stores.values():
                live_run(store, as_of, f"live-{hours}")
        if later is not None:
            folder = crm.arrive(*later)
            for store in stores.values():
                stages.extract_files(store, folder, "load-2", NOW)
        fired = step_by_step(stores["steps"], steps, full)
        summaries = backfill.run(stores["one-pass"], steps, MODEL, POLICY, "one-pass", full=full)
        assert [summary["handoff"]["mqas_fired"] for summary in summaries] == fired
        assert_same(state(stores["steps"]), state(stores["one-pass"]))
        for store in stores.values():
            store.engine.dispose()


def test_a_one_pass_backfill_is_undone_as_one_unit_and_logs_each_key_once(tmp_path: Path) -> None:
    """Undoing the one-pass backfill's run gives back the warehouse before it; its undo log holds each row's
    state before the backfill once, however many steps evaluated it."""
    crm = Crm(tmp_path)
    folder = crm.arrive([("pricing", "A1", 48, True), ("webinar", "A1", 49, True), ("form_submit", "A1", 50, True),
                         ("pricing", "A3", 72, True), ("webinar", "A3", 73, True), ("form_submit", "A3", 74, True)],
                        None)
    store = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    stages.extract_files(store, folder, "load", NOW)
    live_run(store, START + pd.Timedelta(hours=60), "live")
    before = state(store)
    steps = [START + pd.Timedelta(days=3 + day) for day in range(12)]
    store.start_run("one-pass", "backfill", steps[0].to_pydatetime(), NOW)
    backfill.run(store, steps, MODEL, POLICY, "one-pass")
    store.finish_run("one-pass", "completed", NOW, {}, MODEL.version)
    log = store.read_table(schema.undo_log, schema.undo_log.c.run_id == "one-pass")
    whole = log[~log["table_name"].str.endswith(undo.COLUMNS_ENTRY)]
    keys = [(name, *(row.get(column.name) for column in schema.metadata.tables[name].primary_key))
            for name, row in zip(whole["table_name"], whole["row"], strict=True)]  # each table's own key
    assert len(log) and not pd.Series(keys).duplicated().any()  # (escalations: level, recipient and owner too)
    assert len(store.read_table(schema.sla_clocks)) > len(before["sla_clocks"])
    undo.undo_run(store, "one-pass", NOW)
    assert_same(before, state(store))
