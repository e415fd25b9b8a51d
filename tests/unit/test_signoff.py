"""The SLA's sign-off line on every report: who signed the policy in use, or "Re-sign needed"."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain.signoff import COLUMNS, policy_hash, status_line

OLD, NEW = policy_hash(b"targets: {a: 1}\n"), policy_hash(b"targets: {a: 2}\n")


def signatures(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.assign(signed_at=pd.to_datetime(frame["signed_at"], utc=True))


def test_unsigned_signed_and_changed_after_the_signatures():
    assert status_line(signatures(), OLD).startswith("SLA not signed")
    both = signatures(("2026-01-05", "Ann", "head of sales", OLD, "sla.yaml"),
                      ("2026-01-06", "Bo", "head of marketing", OLD, "sla.yaml"))
    line = status_line(both, OLD)
    assert line == (f"SLA signed, policy version {OLD[:12]}: Ann (head of sales) on 2026-01-05; "
                    "Bo (head of marketing) on 2026-01-06.")
    changed = status_line(both, NEW)  # one byte changed in the file after the signatures
    assert changed.startswith("Re-sign needed: the policy changed after the last signatures") and NEW[:12] in changed


def test_a_required_role_missing_on_the_version_in_use_needs_a_re_sign():
    roles = ("head of sales", "head of marketing")
    resigned = signatures(("2026-01-05", "Ann", "head of sales", OLD, "sla.yaml"),
                          ("2026-01-06", "Bo", "head of marketing", OLD, "sla.yaml"),
                          ("2026-04-02", "Ann", "head of sales", NEW, "sla.yaml"))
    assert status_line(resigned, NEW, roles).startswith("Re-sign needed: not yet signed by head of marketing.")
    assert status_line(resigned, OLD, roles).startswith("SLA signed")
    assert status_line(resigned, NEW).startswith("SLA signed")  # no roles required: any signature counts


def test_the_scoring_refresh_prompt_appears_after_max_age_days_and_is_off_at_zero():
    from abm_sla.domain.signoff import scoring_refresh_line

    changed, end = pd.Timestamp("2026-02-01", tz="UTC"), pd.Timestamp("2026-03-03", tz="UTC")  # 30 days
    assert scoring_refresh_line("scoring.yaml", changed, end, 30) is None  # exactly a month: still fresh
    line = scoring_refresh_line("scoring.yaml", changed, end + pd.Timedelta(seconds=1), 30)
    assert line is not None and line.startswith("Scoring refresh due") and "2026-02-01" in line
    assert scoring_refresh_line("scoring.yaml", changed, end + pd.Timedelta(days=90), 0) is None
