"""Learning the points from outcomes: rows without leakage, the proposal, its holdout and its minimums."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

from abm_sla.domain import learning
from abm_sla.domain.learning import fit, training, validation
from abm_sla.domain.model import DEFAULT_PATH
from abm_sla.domain.scorecard import SlaData
from abm_sla.services import synthetic
from abm_sla.services.config_files import load_model

START = synthetic.DEFAULT_START
MODEL_TEXT = DEFAULT_PATH.read_text(encoding="utf-8")
USELESS = ("email_open", "email_click", "webinar")  # the generator's truth: they predict nothing
FIRMOGRAPHIC = ("employees[0]", "employees[1]", "icp_industry", "target_country")


def day(n: float) -> pd.Timestamp:
    return START + pd.Timedelta(days=n)


@pytest.fixture(scope="module")
def small() -> SlaData:
    return SlaData.of(**synthetic.generate_crm(n_accounts=150, days=200, seed=5, outcome_truth=True))


@pytest.fixture(scope="module")
def truth_crm() -> SlaData:
    """Five quarters of a CRM whose outcomes follow demo and pricing visits, form submits and intent."""
    return SlaData.of(**synthetic.generate_crm(n_accounts=1000, days=450, seed=2, outcome_truth=True))


@pytest.fixture(scope="module")
def truth_proposal(truth_crm) -> learning.ModelProposal:
    return learning.propose_model(truth_crm, MODEL_TEXT, train_until=day(270), data_end=day(450))


# -- training rows without leakage -------------------------------------------------------------------

def _rows(crm: SlaData, as_ofs: pd.DatetimeIndex) -> pd.DataFrame:
    return training.training_rows(crm, load_model(), as_ofs).set_index(["account_id", "at"]).sort_index()


def test_a_signal_after_the_as_of_changes_nothing_in_that_row(small):
    as_of = day(100)
    account = small.accounts["account_id"].iloc[0]
    before = _rows(small, pd.DatetimeIndex([as_of]))
    later = as_of + pd.Timedelta(seconds=1)
    signals = pd.DataFrame({"activity_id": ["X1", "X2"], "account_id": account, "type": ["form_submit", "web_visit"],
                            "occurred_at": [later, later], "contact_id": None, "owner_id": None,
                            "url": [None, "https://acme.com/demo"], "subject": None})
    intent = pd.DataFrame({"intent_id": ["XI"], "account_id": [account], "topic": ["Lead Routing"], "score": [99.0],
                           "observed_at": [later], "provider": ["g2"]})
    deal = pd.DataFrame({"opportunity_id": ["XO"], "account_id": [account], "stage": ["Closed Won"],
                         "amount": [1.0], "created_at": [as_of], "close_date": [as_of + pd.Timedelta(days=5)],
                         "is_closed": [True], "is_won": [True]})

    def injected(at_as_of: bool) -> SlaData:
        shift = -pd.Timedelta(seconds=1) if at_as_of else pd.Timedelta(0)
        return SlaData.of(**{**vars(small), "activities": pd.concat(
            [small.activities, signals.assign(occurred_at=signals["occurred_at"] + shift)], ignore_index=True),
            "intent_signals": pd.concat([small.intent_signals, intent.assign(
                observed_at=intent["observed_at"] + shift)], ignore_index=True),
            "opportunities": pd.concat([small.opportunities, deal], ignore_index=True)})

    after = _rows(injected(False), pd.DatetimeIndex([as_of]))
    pd.testing.assert_frame_equal(after, before)
    # the same signals at the as-of itself are known then, and do change the row (the test can fail)
    at = _rows(injected(True), pd.DatetimeIndex([as_of])).loc[(account, as_of)]
    assert at["count:form_submit"] == before.loc[(account, as_of), "count:form_submit"] + 1
    assert at["count:demo_page_visit"] == before.loc[(account, as_of), "count:demo_page_visit"] + 1


def test_every_row_is_what_the_data_known_at_its_as_of_gives(small):
    """Inputs from the whole history equal inputs from the history cut at each row's as-of."""
    as_ofs = pd.DatetimeIndex([day(60), day(95)])
    whole = _rows(small, as_ofs).drop(columns=["opportunity", "won"])
    for as_of in as_ofs:
        known = SlaData.of(**{**vars(small),
                              "activities": small.activities[small.activities["occurred_at"] <= as_of],
                              "intent_signals": small.intent_signals[small.intent_signals["observed_at"] <= as_of],
                              "opportunities": small.opportunities.iloc[:0]})
        cut = _rows(known, pd.DatetimeIndex([as_of])).drop(columns=["opportunity", "won"])
        pd.testing.assert_frame_equal(whole.xs(as_of, level="at", drop_level=False), cut)


def test_the_outcome_is_an_opportunity_after_the_as_of_and_within_the_horizon():
    rows = pd.DataFrame({"account_id": ["a", "a", "a", "b"], "at": [day(0), day(10), day(100), day(0)]})
    opps = pd.DataFrame({"account_id": ["a", "b"], "created_at": [day(10), day(95)],
                         "close_date": [day(40), day(99)], "is_won": [True, True]})
    out = training.outcomes_after(rows, opps, horizon_days=90)

    assert out["opportunity"].tolist() == [True, False, False, False]  # created at 10: after 0, not after 10
    assert out["won"].tolist() == [True, False, False, False]
    late_win = opps.assign(close_date=[day(95), day(99)])  # closed won after the horizon of the as-of 0
    assert training.outcomes_after(rows, late_win, 90)["won"].tolist() == [False] * 4


def test_accounts_enter_the_rows_once_created_and_the_grid_stops_a_horizon_before_the_end(small):
    grid = training.as_of_grid(day(30), day(200), horizon_days=90, step_days=7)
    assert grid[-1] <= day(110) < grid[-1] + pd.Timedelta(days=7)
    late = small.accounts.assign(created_at=small.accounts["created_at"].where(
        small.accounts.index > 0, day(50)))
    rows = training.training_rows(SlaData.of(**{**vars(small), "accounts": late}), load_model(), grid)
    first = rows[rows["account_id"] == late["account_id"].iloc[0]]
    assert first["at"].min() >= day(50) and len(first) > 0


def test_points_from_the_counts_match_the_scoring(small):
    rows = training.training_rows(small, load_model(), training.as_of_grid(day(30), day(200)))
    again = training.score_from_counts(rows, load_model())
    assert (again["total"].to_numpy() == rows["total"].to_numpy()).all()
    assert (again["qualified"].to_numpy() == rows["qualified"].to_numpy()).all()
    assert rows["qualified"].any()


# -- the proposal on a CRM with a known truth --------------------------------------------------------

def _points(proposal: learning.ModelProposal) -> dict[str, tuple[int, int]]:
    return {row["rule"]: (row["current_points"], row["proposed_points"]) for row in proposal.card["rules"]}


def test_the_proposal_moves_points_to_what_predicts_wins(truth_proposal):
    points = _points(truth_proposal)
    for rule in ("demo_page_visit", "intent_topic"):
        assert points[rule][1] > points[rule][0], rule
    for rule in USELESS:
        assert points[rule][1] < points[rule][0], rule
    assert sum(points[r][1] for r in FIRMOGRAPHIC) < sum(points[r][0] for r in FIRMOGRAPHIC)


def test_the_proposal_beats_the_current_model_on_the_held_back_quarter(truth_proposal):
    current, proposed = (truth_proposal.card["holdout_comparison"][side] for side in ("current", "proposed"))
    assert truth_proposal.proposed and truth_proposal.verdict.startswith("the proposal finds")
    assert proposed["outcome_accounts_found"] > current["outcome_accounts_found"]
    assert proposed["auc"] > current["auc"] and proposed["top_decile_lift"] > current["top_decile_lift"]
    assert abs(proposed["mqa_rows"] - current["mqa_rows"]) <= 0.1 * current["mqa_rows"]  # the same volume
    assert current["rows"] == proposed["rows"] >= truth_proposal.card["holdout"]["rows"] > 0
    assert truth_proposal.card["holdout"]["first_as_of"] >= day(270).isoformat()
    assert truth_proposal.card["training"]["last_as_of"] <= day(180).isoformat()  # outcomes known by 270


def test_the_diff_applies_and_keeps_every_rule_within_its_category_cap(truth_proposal, tmp_path):
    folder = tmp_path / "repo"
    (folder / "config").mkdir(parents=True)
    (folder / "config" / "scoring.yaml").write_text(MODEL_TEXT, encoding="utf-8")
    (tmp_path / "scoring.yaml.diff").write_text(truth_proposal.diff, encoding="utf-8")
    subprocess.run(["patch", "-p1", "-s", "-i", str(tmp_path / "scoring.yaml.diff")], cwd=folder, check=True)
    proposed = load_model(folder / "config" / "scoring.yaml")

    assert proposed.gates.min_total == truth_proposal.card["threshold"]["proposed"]
    for category, rule in proposed.rules():
        cap = proposed.category(category).cap
        most = max(b.points for b in rule.bands) if hasattr(rule, "bands") else (getattr(rule, "max", None)
                                                                                   or rule.points)
        assert most <= cap
    assert [r.name for _, r in proposed.rules()] == [r.name for _, r in load_model().rules()]


def test_the_what_if_lists_the_mqas_that_would_change(truth_proposal):
    what_if = truth_proposal.card["what_if"]
    changed = what_if["changed_mqas"]
    assert len(changed) == what_if["summary"]["newly_pass"] + what_if["summary"]["drop_below"] > 0
    assert {row["change"] for row in changed} <= {"newly passes the hand-off", "drops below the hand-off"}


def test_the_threshold_keeps_the_mqa_volume_unless_told_otherwise(truth_crm, truth_proposal):
    threshold = truth_proposal.card["threshold"]
    assert threshold["training_mqa_rate_proposed"] == pytest.approx(threshold["training_mqa_rate_current"], rel=0.1)
    half = learning.propose_model(truth_crm, MODEL_TEXT, day(270), day(450), volume_factor=0.5).card["threshold"]
    assert half["training_mqa_rate_proposed"] == pytest.approx(threshold["training_mqa_rate_current"] / 2, rel=0.15)
    assert half["proposed"] > threshold["proposed"]


def test_too_few_outcomes_propose_nothing(small):
    proposal = learning.propose_model(small, MODEL_TEXT, train_until=day(150), data_end=day(200))

    assert proposal.verdict.startswith("not enough outcomes to propose anything")
    assert f"minimum {validation.MIN_TRAIN_OUTCOMES}" in proposal.verdict and not proposal.proposed
    assert proposal.diff == ""


# -- the figures -------------------------------------------------------------------------------------

def test_auc_lift_and_calibration_by_hand():
    score = np.array([90, 80, 80, 10, 10, 10, 0, 0, 0, 0])
    outcomes = np.array([True, True, False, False, True, False, False, False, False, False])

    # positives 90, 80, 10 against 7 negatives: wins 7, 6 + 0.5 (a tie at 80), 4 + 2 x 0.5 (two ties at 10)
    assert validation.auc(score, outcomes) == pytest.approx((7 + 6.5 + 5) / 21)
    assert validation.top_lift(score, outcomes) == pytest.approx(1 / 0.3)  # the top row is a win; rate 0.3
    assert validation.top_lift(score, outcomes, share=0.2) == pytest.approx((1 + 0.5) / 2 / 0.3)  # half of the tie
    bands = {b["band"]: (b["rows"], b["outcome_rows"]) for b in validation.calibration(score, outcomes)}
    assert bands == {"0-24": (7, 1), "25-49": (0, 0), "50-74": (0, 0), "75-100": (3, 2)}


def test_the_fit_gives_no_points_to_an_input_that_predicts_nothing():
    rng = np.random.default_rng(0)
    useful, noise = rng.integers(0, 3, 4000), rng.integers(0, 3, 4000)
    chance = 1 / (1 + np.exp(-(-3 + 1.2 * useful)))
    outcomes = (rng.random(4000) < chance).astype(float)
    _, coefficients = fit.fit_logistic(np.column_stack([useful, noise]).astype(float), outcomes)

    assert coefficients[0] == pytest.approx(1.2, abs=0.25) and coefficients[1] < 0.1


def test_the_generator_truth_is_off_by_default_and_leaves_the_accounts_alone():
    plain = synthetic.generate_crm(n_accounts=200, days=90, seed=4)
    again = synthetic.generate_crm(n_accounts=200, days=90, seed=4, outcome_truth=False)
    truth = synthetic.generate_crm(n_accounts=200, days=90, seed=4, outcome_truth=True)
    for kind in plain:
        pd.testing.assert_frame_equal(plain[kind], again[kind])
    pd.testing.assert_frame_equal(plain["accounts"], truth["accounts"])
    assert len(truth["activities"]) > len(plain["activities"])
    assert truth["opportunities"]["opportunity_id"].str.startswith("OT").all()


def test_the_quarterly_question_reads_the_current_score_against_what_followed(truth_crm):
    crm = truth_crm
    check = learning.pipeline_check(crm, load_model(), day(270), day(360))
    figures = check.tables[0][2].set_index("figure")

    assert check.text[0].startswith("Scored at the as-ofs every 7 days in [2026-06-30, 2026-09-28)")
    assert 0.5 < figures.loc["AUC", "won"] < 1 and figures.loc["Rows", "won"] == 1000 * 13
    assert figures.loc["Accounts with the outcome", "opportunity"] >= figures.loc["Accounts with the outcome", "won"]
    few = learning.pipeline_check(crm, load_model(), day(-100), day(-60))  # outcome windows end before the data
    assert few.text[0].startswith("Not enough outcomes to tell")


def test_the_demo_writes_a_proposal_that_beats_the_current_model(tmp_path):
    from abm_sla.services import demo

    proposal, paths = demo.demo_model_proposal(tmp_path, seed=7)

    assert proposal.proposed and proposal.verdict.startswith("the proposal finds")
    assert {path.name for path in paths.values()} == {"scoring.yaml.diff", "model-card.md", "model-card.json"}
    assert paths["diff"].read_text(encoding="utf-8") == proposal.diff != ""
