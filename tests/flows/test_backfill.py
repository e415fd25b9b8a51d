"""Backfill: same warehouse as live runs at those times, resumable, dry run, parameters rejected before work."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest
import sqlalchemy as sa

import flows.backfill as backfill_module
from abm_sla.services.stages import utc_now
from abm_sla.warehouse import Warehouse, schema, undo
from flows.backfill import backfill
from flows.parameters import BackfillParameters, InvalidParameters
from tests.flows.conftest import outcome, run_live

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]

STEPS = ["2026-01-12T12:00:00Z", "2026-01-13T12:00:00Z", "2026-01-14T12:00:00Z"]


def params(crm_export, **overrides) -> BackfillParameters:
    fields = {"start": STEPS[0], "end": STEPS[-1], "step_hours": 24, "path": str(crm_export)}
    return BackfillParameters(**{**fields, **overrides})


def step_rows(db_url: str) -> pd.DataFrame:
    return Warehouse(db_url).read_table(schema.runs, schema.runs.c.kind == "backfill-step")


@dataclass(frozen=True)
class Stepped:
    """A step-by-step backfill over :data:`STEPS` into a fresh warehouse: its summaries, warehouse and exports."""

    summaries: list[dict]
    url: str
    outcome: dict[str, pd.DataFrame]


@pytest.fixture(scope="module")
def stepped(crm_export, prefect_harness, tmp_path_factory) -> Stepped:
    """The step-by-step backfill over STEPS, run once for the module: the tests compare the other ways of computing
    those steps (live runs, two backfills at once, the one-pass engine) with it and only read it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('stepped') / 'stepped.db'}"
    summaries = backfill_module.run_backfill(url, **params(crm_export).model_dump(mode="json"))
    return Stepped(summaries, url, outcome(url))


def test_backfill_equals_live_runs_at_those_times(crm_export, stepped, tmp_path):
    live_url = f"sqlite:///{tmp_path / 'live.db'}"
    for as_of in STEPS:
        run_live(live_url, as_of=as_of, source="files", path=str(crm_export))

    summaries = stepped.summaries

    assert [s["as_of"] for s in summaries] == [pd.Timestamp(step).isoformat() for step in STEPS]
    assert summaries[0]["extract"]["files"]["accounts.csv"]["quarantined"] > 0
    live, backfilled = outcome(live_url), stepped.outcome
    assert len(live["mqas"]) > 0 and len(live["sla"]) > 0
    for kind in live:
        pd.testing.assert_frame_equal(backfilled[kind], live[kind], check_dtype=False, obj=kind)
    assert len(step_rows(stepped.url)) == len(STEPS)


def test_failed_backfill_resumes_at_the_failed_step(crm_export, env_db, monkeypatch):
    real_run_once, calls, failures = backfill_module.run_once, [], []

    def failing_second_step(db_url, as_of, *args, **kwargs):
        calls.append(as_of)
        if len(calls) == 2 and not failures:
            failures.append(as_of)
            raise RuntimeError("warehouse went away")
        return real_run_once(db_url, as_of, *args, **kwargs)

    monkeypatch.setattr(backfill_module, "run_once", failing_second_step)
    with pytest.raises(RuntimeError, match="went away"):
        backfill(params(crm_export))
    assert len(step_rows(env_db)) == 1

    calls.clear()
    summaries = backfill(params(crm_export))

    assert calls == [pd.Timestamp(step) for step in STEPS[1:]]  # parsed once, by the form
    assert [s["as_of"] for s in summaries] == [call.isoformat() for call in calls]
    assert sorted(step_rows(env_db)["as_of"]) == [pd.Timestamp(step) for step in STEPS]
    assert backfill(params(crm_export)) == []  # everything done: a third run does nothing


def test_dry_run_lists_steps_and_writes_nothing(crm_export, env_db):
    plan = backfill(params(crm_export, dry_run=True))

    assert [row["status"] for row in plan] == ["to run"] * len(STEPS)
    with Warehouse(env_db).engine.connect() as connection:
        for table in (schema.runs, schema.mqas, schema.accounts, schema.score_history):
            assert connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"end": "2026-01-01T00:00:00Z"}, "end (2026-01-01T00:00:00+00:00) is before start"),
        ({"step_hours": 0}, "step_hours must be more than 0"),
        ({"step_hours": -24}, "step_hours must be more than 0"),
        ({"source": "dynamics"}, "unknown source 'dynamics'"),
        ({"path": "/no/such/export"}, "CRM export folder /no/such/export does not exist"),
        ({"model_path": "/no/model.yaml"}, "scoring model file /no/model.yaml does not exist"),
        ({"start": "last tuesday"}, "is not a date/time"),
    ],
)
def test_invalid_parameters_are_rejected_with_a_plain_message(crm_export, overrides, message):
    fields = {"start": STEPS[0], "end": STEPS[-1], "path": str(crm_export), **overrides}
    with pytest.raises(InvalidParameters, match="invalid parameters: .*" + message.replace("(", r"\(").replace(
            ")", r"\)").replace("+", r"\+")):
        backfill_module.validated(BackfillParameters, fields)


def test_invalid_flow_run_fails_before_any_work(crm_export, env_db):
    """Prefect validates the parameters before the flow body: nothing is written."""
    with pytest.raises(Exception, match="is before start"):
        backfill({"start": STEPS[-1], "end": STEPS[0], "path": str(crm_export)})
    with Warehouse(env_db).engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar_one() == 0


def _artifacts(key_prefix: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=key_prefix)))
    return sorted(found, key=lambda artifact: artifact.created)


def test_one_progress_view_per_backfill_the_step_reports_folded_into_the_steps_table(crm_export, env_db):
    import json

    step_reports_before = len(_artifacts("abm-sla-run"))
    summaries = backfill(params(crm_export))
    assert len(_artifacts("abm-sla-run")) == step_reports_before  # no two cards per step
    key = backfill_module.backfill_key(validated_params := params(crm_export))
    assert validated_params.model_path is None
    table = json.loads(_artifacts(f"backfill-{key}-steps")[-1].data)
    assert [row["as_of"] for row in table] == [pd.Timestamp(step).isoformat() for step in STEPS]
    assert [row["MQAs fired"] for row in table] == [s["handoff"]["mqas_fired"] for s in summaries]
    assert sum(row["MQAs fired"] for row in table) > 0
    assert all(row["status"] == "ran" and row["accounts scored"] > 0 and row["seconds"] > 0 for row in table)
    assert {artifact.type for artifact in _artifacts(f"backfill-{key}")} == {"progress", "markdown", "table"}


def test_a_backfill_starting_mid_history_says_its_first_step_fired_the_history_at_once(crm_export, env_db):
    summaries = backfill(params(crm_export))
    fired = summaries[0]["handoff"]["mqas_fired"]
    assert fired > 0  # the export begins 2026-01-01: eleven days of history qualified these accounts
    key = backfill_module.backfill_key(params(crm_export))
    summary = _artifacts(f"backfill-{key}-summary")[-1].data
    assert f"step 1 (as of {pd.Timestamp(STEPS[0]).isoformat()}) fired {fired} MQAs at once" in summary
    assert "data begins 2026-01-01" in summary and "start_at_data_beginning" in summary
    form = BackfillParameters.model_json_schema()["properties"]
    assert "already qualified by the history before it" in form["start"]["description"]


def test_start_at_data_beginning_fires_each_mqa_when_it_qualified(crm_export, env_db):
    summaries = backfill(params(crm_export, start_at_data_beginning=True))
    first = pd.Timestamp(summaries[0]["as_of"])
    assert first <= pd.Timestamp("2026-01-01T00:00:00Z") < first + pd.Timedelta(hours=24)  # same grid, reaching back
    assert first.hour == 12 and summaries[-1]["as_of"] == pd.Timestamp(STEPS[-1]).isoformat()
    assert summaries[0]["handoff"]["mqas_fired"] == 0  # nothing qualified before the data begins
    assert sum(summary["handoff"]["mqas_fired"] for summary in summaries) > 0
    key = backfill_module.backfill_key(params(crm_export, start_at_data_beginning=True))
    assert key != backfill_module.backfill_key(params(crm_export))
    assert "- warning:" not in _artifacts(f"backfill-{key}-summary")[-1].data


def test_two_identical_backfills_at_once_compute_every_step_once(crm_export, env_db, stepped, monkeypatch):
    import threading

    # both read the steps done before either computes one: without claims, both would compute all of them
    both_planned, real_completed = threading.Barrier(2, timeout=60), backfill_module.completed_steps

    def completed_together(store, key):
        done = real_completed(store, key)
        both_planned.wait()
        return done

    monkeypatch.setattr(backfill_module, "completed_steps", completed_together)
    results, errors = [], []

    def one_backfill():
        try:
            results.append(backfill(params(crm_export)))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=one_backfill) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, errors
    computed = sorted(summary["as_of"] for summaries in results for summary in summaries)
    assert computed == [pd.Timestamp(step).isoformat() for step in STEPS]  # each step once, by one of them
    runs = Warehouse(env_db).read_table(schema.runs)
    assert (runs["kind"] == "run").sum() == len(STEPS)
    assert set(step_rows(env_db)["status"]) == {"completed"}
    shared, alone = outcome(env_db), stepped.outcome  # alone: the same backfill with nothing beside it
    for kind in alone:
        pd.testing.assert_frame_equal(shared[kind], alone[kind], check_dtype=False, obj=kind)


def test_a_claim_of_a_flow_run_that_ended_on_another_host_is_taken_over(crm_export, env_db):
    """A worker that died on another host leaves its step claimed ``running`` with a process this host cannot
    see; once Prefect has ended that flow run (Crashed), the step is taken over instead of waited for."""
    from prefect import flow

    @flow
    def ended() -> None:
        """A flow run in a final state, standing in for the crashed one."""

    @flow
    def claim(key: str, as_of: pd.Timestamp) -> str:
        return backfill_module.claim_step(Warehouse(env_db), key, as_of)

    store, key, as_of = Warehouse(env_db), "k" * 16, pd.Timestamp(STEPS[0])
    gone = str(ended(return_state=True).state_details.flow_run_id)
    row = {"run_id": backfill_module.step_run_id(key, as_of), "kind": "backfill-step", "as_of": as_of.to_pydatetime(),
           "started_at": as_of.to_pydatetime(), "status": "running", "pid": 1, "host": "another-worker",
           "flow_run_id": None}
    with store.engine.begin() as connection:
        connection.execute(schema.runs.insert().values(**row))
    assert claim(key, as_of) == "busy"  # another host's process, no flow run to ask: wait
    with store.engine.begin() as connection:
        connection.execute(schema.runs.update().values(flow_run_id=gone))
    assert claim(key, as_of) == "claimed"  # its flow run ended: taken over


def test_one_pass_backfill_equals_the_step_by_step_backfill_and_is_undone_as_one_unit(crm_export, env_db, stepped):
    one_pass = backfill(params(crm_export, engine="one-pass"))

    assert [s["handoff"]["mqas_fired"] for s in one_pass] == [s["handoff"]["mqas_fired"] for s in stepped.summaries]
    assert sum(s["handoff"]["mqas_fired"] for s in one_pass) > 0
    left, right = stepped.outcome, outcome(env_db)
    for kind in left:
        pd.testing.assert_frame_equal(right[kind], left[kind], check_dtype=False, obj=kind)
    assert len(step_rows(env_db)) == len(STEPS)
    store = Warehouse(env_db)
    runs = store.read_table(schema.runs, schema.runs.c.kind == "backfill")
    assert len(runs) == 1 and runs["status"].tolist() == ["completed"]
    assert {s["run_id"] for s in one_pass} == set(runs["run_id"])

    undo.undo_run(store, runs["run_id"].iloc[0], utc_now())
    for table in (schema.mqas, schema.sla_clocks, schema.escalations, schema.score_history):
        assert store.read_table(table).empty, table.name
    key = backfill_module.backfill_key(params(crm_export, engine="one-pass"))
    assert backfill_module.completed_steps(store, key) == set()  # started again, every step runs again
    history = f"step 1 (as of {pd.Timestamp(STEPS[0]).isoformat()}) fired {one_pass[0]['handoff']['mqas_fired']} MQAs"
    assert one_pass[0]["handoff"]["mqas_fired"] and history in _artifacts(f"backfill-{key}-summary")[-1].data


def test_a_failed_one_pass_backfill_resumes_at_the_failed_step(crm_export, env_db, monkeypatch, stepped):
    real, calls = backfill_module.engine.stages.record_tier_moves, []

    def failing_second_step(store, as_of, *args, **kwargs):
        calls.append(as_of)
        if len(calls) == 2:
            raise RuntimeError("warehouse went away")
        return real(store, as_of, *args, **kwargs)

    monkeypatch.setattr(backfill_module.engine.stages, "record_tier_moves", failing_second_step)
    with pytest.raises(RuntimeError, match="went away"):
        backfill(params(crm_export, engine="one-pass"))
    assert len(step_rows(env_db)) == 1
    monkeypatch.setattr(backfill_module.engine.stages, "record_tier_moves", real)

    summaries = backfill(params(crm_export, engine="one-pass"))

    assert [s["as_of"] for s in summaries] == [pd.Timestamp(step).isoformat() for step in STEPS[1:]]
    left, right = stepped.outcome, outcome(env_db)
    for kind in left:
        pd.testing.assert_frame_equal(right[kind], left[kind], check_dtype=False, obj=kind)
