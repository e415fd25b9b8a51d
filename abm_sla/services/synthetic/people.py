"""The synthetic CRM's people: the vendor's users (reps by region) and each account's contacts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import frames
from abm_sla.services.synthetic.common import DAY, _Accounts, _group_positions, _ids, _lookup, _p, _seconds, _to_utc

# id, name, role, manager_id, time_zone, country, active
USERS = (
    ("U001", "Dana Whitfield", "cro", None, "America/New_York", "US", True),
    ("U002", "Priya Raman", "revops", "U001", "America/New_York", "US", True),
    ("U003", "Tom Ellery", "revops", "U001", "Europe/London", "GB", True),
    ("U004", "Marcus Bell", "manager", "U001", "America/New_York", "US", True),
    ("U005", "Sophie Laurent", "manager", "U001", "Europe/London", "GB", True),
    ("U006", "Liam Carter", "manager", "U001", "Australia/Sydney", "AU", True),
    ("U007", "Jenna Ortiz", "sales", "U004", "America/New_York", "US", True),
    ("U008", "Kevin Brooks", "sales", "U004", "America/New_York", "US", True),
    ("U009", "Aisha Grant", "sales", "U004", "America/New_York", "US", True),
    ("U010", "Noah Kim", "sales", "U004", "America/New_York", "US", True),
    ("U011", "Emily Chen", "sales", "U004", "America/New_York", "US", True),
    ("U012", "Ryan Walsh", "sales", "U004", "America/Los_Angeles", "US", True),
    ("U013", "Carlos Mendes", "sales", "U004", "America/Los_Angeles", "US", True),
    ("U014", "Hannah Price", "sales", "U004", "America/Los_Angeles", "US", False),
    ("U015", "Oliver Hughes", "sales", "U005", "Europe/London", "GB", True),
    ("U016", "Charlotte Reid", "sales", "U005", "Europe/London", "GB", True),
    ("U017", "James Doyle", "sales", "U005", "Europe/London", "GB", True),
    ("U018", "Lukas Weber", "sales", "U005", "Europe/Berlin", "DE", True),
    ("U019", "Anna Schmidt", "sales", "U005", "Europe/Berlin", "DE", True),
    ("U020", "Felix Braun", "sales", "U005", "Europe/Berlin", "DE", True),
    ("U021", "Mia Thompson", "sales", "U006", "Australia/Sydney", "AU", True),
    ("U022", "Jack Wilson", "sales", "U006", "Australia/Sydney", "AU", True),
    ("U023", "Grace Miller", "marketing", "U001", "America/New_York", "US", True),
    ("U024", "Ethan Park", "marketing", "U001", "America/Los_Angeles", "US", True),
    ("U025", "Zoe Martin", "marketing", "U001", "Europe/London", "GB", True),
    ("U026", "Rosa Alvarez", "cmo", "U001", "America/New_York", "US", True),  # the one-page SLA's step 2
    ("U027", "Daniel Okafor", "head of sales", "U001", "America/New_York", "US", True),
)
REGION_MANAGERS = ("U004", "U005", "U006")  # Americas, EMEA, APAC: their reps own the region's accounts
DEPARTED_OWNER = "U099"  # an owner id that is in no users.csv
DECISION_MAKERS = (
    "VP Sales", "Chief Technology Officer", "Head of IT", "CFO", "Founder", "CEO", "VP Marketing",
    "SVP Operations", "Head of Revenue Operations", "Chief Revenue Officer", "Vice President, Engineering",
    "Co-Founder & CEO", "CMO", "President",
)
OTHER_TITLES = (
    "Engineer", "Analyst", "Vpn Administrator", "Sales Manager", "Marketing Manager", "Account Executive",
    "Software Engineer", "Data Analyst", "Director of Sales", "IT Manager", "Product Manager",
    "Operations Coordinator", "Recruiter", "Marketing Specialist",
)
FIRST_NAMES = ("alex", "maria", "john", "li", "sarah", "david", "emma", "raj", "laura", "mohamed", "julia",
               "peter", "sofia", "daniel", "yuki", "chloe", "lucas", "nina", "omar", "grace")
LAST_NAMES = ("smith", "garcia", "mueller", "wang", "brown", "dubois", "jansen", "sato", "patel", "silva",
              "jones", "martin", "rossi", "kim", "nguyen", "taylor", "becker", "lopez", "evans", "clark")


def _users() -> pd.DataFrame:
    columns = ["user_id", "name", "role", "manager_id", "time_zone", "country", "active"]
    users = pd.DataFrame(USERS, columns=columns)
    users["email"] = users["name"].str.lower().str.replace(" ", ".", regex=False) + "@acme.com"
    users["active"] = users["active"].astype(bool)
    return users[frames.USER_COLUMNS]


def _reps(users: pd.DataFrame, active_only: bool = True) -> list[np.ndarray]:
    """User indices of the sales reps of each region (Americas, EMEA, APAC)."""
    sales = (users["role"] == "sales") & (users["active"] | (not active_only))
    return [np.flatnonzero(sales & (users["manager_id"] == manager)) for manager in REGION_MANAGERS]


def _regional_rep(rng: np.random.Generator, region: np.ndarray, users: pd.DataFrame) -> np.ndarray:
    """A random active rep of each row's region (what round-robin routing hands out)."""
    rep = np.empty(len(region), dtype=np.int64)
    for index, pool in enumerate(_reps(users)):
        rows = region == index
        rep[rows] = pool[rng.integers(0, len(pool), rows.sum())]
    return rep


def _contacts(
    rng: np.random.Generator, frame: pd.DataFrame, acc: _Accounts, start: pd.Timestamp
) -> pd.DataFrame:
    """1-8 contacts per account, about 30% decision makers; sets the account's lead contact."""
    n = len(acc.ids)
    counts = rng.choice(np.arange(1, 9), n, p=_p((15, 20, 20, 15, 10, 8, 7, 5)))
    account, _ = _group_positions(counts)
    total = len(account)
    decision = rng.random(total) < 0.3
    title_idx = np.where(
        decision, rng.integers(0, len(DECISION_MAKERS), total),
        len(DECISION_MAKERS) + rng.integers(0, len(OTHER_TITLES), total),
    )
    title_idx[rng.random(total) < 0.05] = -1
    decision &= title_idx >= 0
    title = _lookup(DECISION_MAKERS + OTHER_TITLES, title_idx)
    first = pd.Series(np.array(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), total)])
    last = pd.Series(np.array(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), total)])
    domain = pd.Series(frame["domain"].to_numpy()[account])
    email = (first + "." + last + "@" + domain).to_numpy(dtype=object)
    account_created = _seconds(frame["created_at"])[account]
    now = int(start.timestamp())
    created = account_created + (rng.random(total) * (now - account_created)).astype(np.int64)
    updated = np.minimum(now + rng.integers(0, 30 * DAY, total), created + rng.integers(0, 400 * DAY, total))
    contacts = pd.DataFrame({
        "contact_id": _ids("C", total, 7), "account_id": acc.ids[account], "title": title, "email": email,
        "created_at": _to_utc(created), "updated_at": _to_utc(np.maximum(created, updated)),
    })
    acc.contact_start = np.cumsum(counts) - counts
    acc.n_contacts = counts
    acc.lead = acc.contact_start + rng.integers(0, counts)
    dm_rows = np.flatnonzero(decision)[::-1]
    acc.lead[account[dm_rows]] = dm_rows  # the first decision maker wins (assigned last)
    return contacts
