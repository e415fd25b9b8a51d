"""A seeded synthetic CRM: accounts, people, signals and the sales follow-up, realistic and fast.

:func:`generate_crm` returns the normalized frames of :mod:`abm_sla.domain.frames`;
:func:`write_export_folder` writes them as a SPEC section 2 export folder, optionally
with bad rows for the quarantine. Everything is vectorized numpy, so 200k accounts with
~10M signals take seconds. The same arguments give the same data.

The story per account: background marketing noise and low intent all quarter; some
accounts have *bursts* (a campaign answered: opens, clicks, pricing/demo visits, a form,
high-score intent on a few topics) that take a share of them over the hand-off; the
owner (or, when the owner is gone, another rep) follows up in business hours of their
own calendar, mostly fast, sometimes slowly or never; the sales status moves to
working and then accepted, nurture or rejected; some accepted accounts open deals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from abm_sla.domain import frames

DAY = 86_400
HOUR = 3_600
DEFAULT_START = pd.Timestamp("2026-01-01", tz="UTC")
VENDOR_SITE = "https://acme.com"
BUSINESS_EPOCH = np.datetime64("2000-01-03", "D")

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

# country, share, UTC offset (hours, for the hour of day people read mail), region index
COUNTRIES = (
    ("US", 38, -5, 0), ("CA", 6, -5, 0), ("GB", 12, 0, 1), ("DE", 9, 1, 1), ("FR", 6, 1, 1),
    ("NL", 4, 1, 1), ("AU", 5, 10, 2), ("BR", 4, -3, 0), ("IN", 5, 5.5, 1), ("JP", 3, 9, 2),
    ("ES", 2, 1, 1), ("SE", 2, 1, 1), ("SG", 2, 8, 2), ("MX", 2, -6, 0),
)
TLDS = {"GB": ".co.uk", "DE": ".de", "FR": ".fr", "NL": ".nl", "AU": ".com.au", "BR": ".com.br",
        "IN": ".in", "JP": ".jp", "ES": ".es", "SE": ".se", "SG": ".sg", "MX": ".mx", "CA": ".ca"}
LEGAL = {"US": " Inc.", "CA": " Inc.", "GB": " Ltd", "DE": " GmbH", "FR": " SAS", "NL": " B.V.",
         "AU": " Pty Ltd", "BR": " Ltda", "IN": " Pvt Ltd", "JP": " K.K.", "ES": " S.L.", "SE": " AB",
         "SG": " Pte Ltd", "MX": " S.A. de C.V."}
ICP_INDUSTRIES = (("Software", 16), ("Internet", 8), ("Financial Services", 10), ("Healthcare", 9))
OTHER_INDUSTRIES = (
    ("Manufacturing", 12), ("Retail", 9), ("Education", 6), ("Government", 3), ("Media", 5),
    ("Logistics", 6), ("Energy", 4), ("Construction", 5), ("Hospitality", 4), ("Telecommunications", 5),
)
NAME_PARTS = (
    ("North", "Blue", "Bright", "Silver", "Iron", "Summit", "Clear", "Red", "Green", "Stone", "Swift",
     "Cobalt", "Atlas", "Nova", "Pioneer", "Harbor", "Maple", "Cedar", "Quantum", "Vertex", "Polar", "Sun",
     "River", "Oak", "Falcon", "Crystal", "Granite", "Alpine", "Lumen", "Orbit", "Prism", "Echo", "Zen",
     "Apex", "Terra", "Urban", "Golden", "Bold", "Pixel", "Delta"),
    ("wind", "bridge", "field", "works", "labs", "point", "stack", "logic", "path", "wave", "forge", "line",
     "gate", "base", "core", "sys", "soft", "ware", "hub", "cloud", "mark", "scale", "flow", "grid", "leaf",
     "peak", "port", "ridge", "shift", "view"),
)
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
TOPICS = (
    "Sales Engagement", "Revenue Operations", "CRM Software", "Account-Based Marketing", "Lead Scoring",
    "Sales Automation", "Marketing Automation", "Intent Data", "Pipeline Management", "Sales Forecasting",
    "Customer Data Platform", "Data Integration", "Lead Routing", "Conversation Intelligence",
    "Sales Enablement", "B2B Advertising", "Email Deliverability", "Customer Success", "Cloud Security",
    "Data Warehousing",
)
PROVIDERS = ("bombora", "g2")
URL_PATHS = (  # path, share among background visits, share among burst visits
    ("/", 20, 0), ("/product", 14, 14), ("/pricing", 3, 30), ("/demo", 1, 16), ("/customers", 8, 10),
    ("/integrations", 8, 5), ("/careers", 5, 0), ("/blog/abm-playbook", 12, 6),
    ("/blog/lead-scoring-guide", 10, 5), ("/blog/sla-best-practices", 10, 5), ("/blog/revops-metrics", 9, 3),
    ("/pricing?utm_source=linkedin", 0, 4), ("/demo?ref=webinar", 0, 2),
)
SUBJECTS = {
    "email_open": ("Q1 newsletter", "ABM benchmark report 2026", "Webinar invite: speed to lead",
                   "Product update: routing rules", "Case study: how Northwind cut response time"),
    "email_click": ("Q1 newsletter", "ABM benchmark report 2026", "Webinar invite: speed to lead",
                    "Product update: routing rules"),
    "form_submit": ("Contact sales", "Demo request", "Ebook download: ABM playbook", "Pricing inquiry"),
    "webinar": ("Speed to lead: SLA masterclass", "RevOps office hours", "Intent data 101"),
    "web_visit": (),
    "call": ("Intro call", "Follow-up call", "Left voicemail"),
    "email_sent": ("Following up on your visit", "Quick question", "Re: pricing", "Resources you asked for"),
    "meeting": ("Discovery meeting", "Product demo", "Technical deep dive"),
    "linkedin_message": ("Connection request", "InMail: following up"),
    "owner_assigned": ("Owner assigned by assignment rule",),
    "ad_click": ("LinkedIn ad: SLA benchmark", "Retargeting: pricing"),
    "content_download": ("ABM playbook", "Speed-to-lead checklist"),
    "event_attended": ("RevOps summit booth", "Customer roundtable"),
    "account_research": ("Account research: buying committee", "Account research: next step"),
    "hot_flag": ("Hot account: coordinate with marketing",),
    "campaign_start": ("Q1 Tier 1 program: 1:1 ads", "Q1 Tier 1 program: executive dinner"),
}
TYPE_CODE = {name: code for code, name in enumerate(frames.ACTIVITY_TYPES)}
NOISE_TYPES = {"email_open": 45, "email_click": 15, "form_submit": 3, "web_visit": 34, "webinar": 3}
BURST_TYPES = {"email_open": 16, "email_click": 17, "form_submit": 12, "web_visit": 47, "webinar": 8}
FIRST_TOUCH_TYPES = {"call": 40, "email_sent": 45, "linkedin_message": 15}
FOLLOW_UP_TYPES = {"call": 30, "email_sent": 40, "meeting": 18, "linkedin_message": 12}
STAGES_OPEN = ("Discovery", "Qualification", "Proposal", "Negotiation")

DEFAULT_NOISE_TOUCHES = 7.0  # background marketing touches per account over the period
DEFAULT_NOISE_INTENT = 3.0  # background intent rows per account over the period
BURST_RATE = 0.3  # bursts per account over 90 days, before fit and propensity
MAX_BURSTS = 4


def _p(weights: dict | tuple) -> np.ndarray:
    values = np.asarray(list(weights.values()) if isinstance(weights, dict) else weights, dtype=float)
    return values / values.sum()


_DIGIT_BLOCKS = (48 + np.array([[i // 1000, i // 100 % 10, i // 10 % 10, i % 10] for i in range(10_000)],
                                dtype=np.uint32))


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    """``prefix`` + zero-padded 1..n as an object array of str, built without a Python loop."""
    width = -(-max(width, len(str(n))) // 4) * 4
    codes = np.empty((n, len(prefix) + width), dtype=np.uint32)
    codes[:, : len(prefix)] = np.frombuffer(prefix.encode("utf-32-le"), dtype=np.uint32)
    value = np.arange(1, n + 1, dtype=np.int64)
    for end in range(len(prefix) + width, len(prefix), -4):
        codes[:, end - 4 : end] = _DIGIT_BLOCKS[value % 10_000]
        value //= 10_000
    return codes.view(f"<U{len(prefix) + width}").ravel().astype(object)


def _lookup(values: tuple | list, index: np.ndarray) -> np.ndarray:
    """``values[index]`` as objects; index -1 gives None. Every row shares the same str objects."""
    table = np.array([*values, None], dtype=object)
    return table[index]


def _to_utc(seconds: np.ndarray) -> pd.Series:
    nanoseconds = (np.asarray(seconds, dtype=np.int64) * 1_000_000_000).view("datetime64[ns]")
    return pd.Series(pd.DatetimeIndex(nanoseconds).tz_localize("UTC"))


def _frame(columns: dict[str, object]) -> pd.DataFrame:
    """A frame over the column arrays as they are: no copy, no stacking of same-dtype columns."""
    return pd.DataFrame(columns, copy=False)


def _time_order(at: np.ndarray, span: int) -> np.ndarray:
    """Indices of the rows with 0 <= at < span, by time then position (deterministic, no stable sort)."""
    rows = np.flatnonzero((at >= 0) & (at < span))
    bits = max(len(at).bit_length(), 1)
    if int(span).bit_length() + bits > 62:
        return rows[np.argsort(at[rows], kind="stable")]
    key = (at[rows] << bits) | rows
    key.sort()
    return key & ((1 << bits) - 1)


def _seconds(stamps: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(stamps).as_unit("s").asi8


def _group_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of ``counts`` rows laid out in order: each row's group and position in it."""
    group = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return group, np.arange(counts.sum()) - first[group]


@dataclass
class _Accounts:
    """Per-account arrays the signal generators draw from."""

    ids: np.ndarray
    offset_h: np.ndarray
    region: np.ndarray
    worker: np.ndarray  # the user index who works the account (active owner, else a regional rep)
    fit: np.ndarray  # bool: a firmographic fit (size band and ICP/target market)
    propensity: np.ndarray  # heavy-tailed engagement level, mean 1
    contact_start: np.ndarray | None = None
    n_contacts: np.ndarray | None = None
    lead: np.ndarray | None = None  # a decision maker's contact index, else a random contact


class _Calendar:
    """Business hours (Mon-Fri 09:00-17:00 local, less national holidays) per user, vectorized."""

    def __init__(self, users: pd.DataFrame, start: pd.Timestamp, days: int) -> None:
        import holidays

        years = range(start.year - 1, (start + pd.Timedelta(days=days + 400)).year + 1)
        keys = list(zip(users["time_zone"], users["country"], strict=True))
        self.calendars = sorted(set(keys))
        self.of_user = np.array([self.calendars.index(key) for key in keys])
        self.holidays = [
            np.array(sorted(holidays.country_holidays(country, years=years)), dtype="datetime64[D]")
            for _, country in self.calendars
        ]

    def add(self, base: np.ndarray, hours: np.ndarray, user: np.ndarray) -> np.ndarray:
        """UTC seconds ``hours`` business hours after ``base`` (UTC seconds) in each row's user's calendar."""
        out = np.empty(len(base), dtype=np.int64)
        calendar = self.of_user[user]
        for index, (zone, _) in enumerate(self.calendars):
            rows = calendar == index
            if rows.any():
                out[rows] = self._add(base[rows], hours[rows], zone, self.holidays[index])
        return out

    @staticmethod
    def _add(base: np.ndarray, hours: np.ndarray, zone: str, holidays: np.ndarray) -> np.ndarray:
        local = pd.DatetimeIndex(pd.to_datetime(base, unit="s", utc=True)).tz_convert(zone).tz_localize(None)
        seconds = local.as_unit("s").asi8
        day = seconds // DAY
        date = day.astype("datetime64[D]")
        index = np.busday_count(BUSINESS_EPOCH, date, holidays=holidays)
        open_day = np.is_busday(date, holidays=holidays)
        into = np.where(open_day, np.clip((seconds - day * DAY) / HOUR - 9, 0, 8), 0)
        position = index * 8 + into + hours
        whole = np.floor(position / 8).astype(np.int64)
        new_date = np.busday_offset(BUSINESS_EPOCH, whole, roll="forward", holidays=holidays)
        new_local = new_date.astype("datetime64[s]").astype(np.int64) + np.round(
            (9 + position - whole * 8) * HOUR
        ).astype(np.int64)
        stamps = pd.DatetimeIndex(new_local.astype("datetime64[s]")).tz_localize(
            zone, nonexistent="shift_forward", ambiguous="NaT"
        )
        return stamps.as_unit("s").asi8


def _users() -> pd.DataFrame:
    columns = ["user_id", "name", "role", "manager_id", "time_zone", "country", "active"]
    users = pd.DataFrame(USERS, columns=columns)
    users["email"] = users["name"].str.lower().str.replace(" ", ".", regex=False) + "@acme.com"
    users["active"] = users["active"].astype(bool)
    return users[frames.USER_COLUMNS]


def _accounts(
    rng: np.random.Generator, n: int, start: pd.Timestamp, users: pd.DataFrame
) -> tuple[pd.DataFrame, _Accounts]:
    """The accounts frame and the arrays later steps need."""
    country_idx = rng.choice(len(COUNTRIES), n, p=_p([c[1] for c in COUNTRIES]))
    codes = np.array([c[0] for c in COUNTRIES], dtype=object)
    country = codes[country_idx]
    country[rng.random(n) < 0.02] = None
    offset_h = np.array([c[2] for c in COUNTRIES])[country_idx]
    region = np.array([c[3] for c in COUNTRIES])[country_idx]

    industries = ICP_INDUSTRIES + OTHER_INDUSTRIES
    industry_idx = rng.choice(len(industries), n, p=_p([i[1] for i in industries]))
    industry = _lookup([i[0] for i in industries], np.where(rng.random(n) < 0.03, -1, industry_idx))
    icp = industry_idx < len(ICP_INDUSTRIES)

    employees = np.maximum(1, np.round(rng.lognormal(np.log(150), 1.6, n)))
    employees = np.minimum(employees, 250_000)
    revenue = np.round(employees * rng.lognormal(np.log(120_000), 0.6, n), -3)
    band = np.where((employees >= 200) & (employees <= 5000), 20, np.where(employees >= 50, 10, 0))
    target = np.isin(country, ["US", "CA", "GB", "DE", "FR", "NL", "AU"])
    fit = (band + 10 * icp + 10 * target) >= 30
    employees_out = np.where(rng.random(n) < 0.04, np.nan, employees)
    revenue_out = np.where(rng.random(n) < 0.10, np.nan, revenue)

    large = employees > 1000
    tier_draw = rng.random(n)
    t1, t2 = np.where(large, 0.40, 0.06), np.where(large, 0.80, 0.29)
    tier_code = np.where(tier_draw < t1, 0, np.where(tier_draw < t2, 1, np.where(tier_draw < 0.78, 2, -1)))
    tier = _lookup(["1", "2", "3"], tier_code)

    owner, worker = _owners(rng, region, users)
    names, domains = _names(rng, n, country)
    ids = _ids("A", n, 6)
    created = int(start.timestamp()) - rng.integers(30 * DAY, 1500 * DAY, n)
    updated = np.maximum(created, int(start.timestamp()) - rng.integers(0, 60 * DAY, n))
    frame = pd.DataFrame({
        "account_id": ids, "name": names, "domain": domains, "industry": industry, "employees": employees_out,
        "annual_revenue": revenue_out, "country": country, "owner_id": owner, "tier": tier,
        "created_at": _to_utc(created), "updated_at": _to_utc(updated),
    })
    propensity = rng.gamma(1.2, 1 / 1.2, n)
    return frame, _Accounts(ids, offset_h, region, worker, fit, propensity)


def _owners(
    rng: np.random.Generator, region: np.ndarray, users: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Owner ids (a regional rep; a few none or departed) and the active rep who works each account."""
    n = len(region)
    active = users["active"].to_numpy()
    owner = np.empty(n, dtype=np.int64)
    for index, pool in enumerate(_reps(users, active_only=False)):
        rows = region == index
        owner[rows] = pool[rng.integers(0, len(pool), rows.sum())]
    worker = _regional_rep(rng, region, users)
    draw = rng.random(n)
    owner = np.where(draw < 0.02, -1, np.where(draw < 0.03, -2, owner))
    worker = np.where((owner >= 0) & active[np.maximum(owner, 0)], owner, worker)
    owner_ids = np.array([*users["user_id"], DEPARTED_OWNER, None], dtype=object)
    return owner_ids[owner], worker


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


def _names(rng: np.random.Generator, n: int, country: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Company names and unique domains."""
    first, second = NAME_PARTS
    stem = pd.Series(np.array(first, dtype=object)[rng.integers(0, len(first), n)]) + pd.Series(
        np.array(second, dtype=object)[rng.integers(0, len(second), n)]
    )
    repeat = stem.groupby(stem).cumcount().to_numpy()
    number = pd.Series(np.where(repeat > 0, repeat + 1, 0)).astype(str).replace("0", "")
    slug = stem.str.lower() + number
    country_s = pd.Series(country)
    tld = country_s.map(TLDS).fillna(".com")
    legal = country_s.map(LEGAL).fillna("").where(rng.random(n) < 0.4, "")
    name = stem + np.where(number == "", "", " " + number) + legal
    return name.to_numpy(dtype=object), (slug + tld).to_numpy(dtype=object)


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


@dataclass
class _Events:
    """Activity rows as code arrays (index -1 = none), concatenated before becoming a frame."""

    account: np.ndarray
    kind: np.ndarray
    at: np.ndarray
    contact: np.ndarray
    owner: np.ndarray
    url: np.ndarray
    subject: np.ndarray

    @classmethod
    def concat(cls, parts: list[_Events]) -> _Events:
        """One set of arrays, in compact dtypes."""
        dtypes = (np.int32, np.int8, np.int64, np.int32, np.int16, np.int8, np.int8)
        return cls(*(
            np.concatenate([getattr(part, field).astype(dtype, copy=False) for part in parts])
            for field, dtype in zip(cls.__dataclass_fields__, dtypes, strict=True)
        ))

    def keep(self, rows: np.ndarray) -> _Events:
        return _Events(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))


def _draw_types(rng: np.random.Generator, mix: dict[str, int], n: int) -> np.ndarray:
    """``n`` activity type codes drawn with the weights of ``mix``."""
    return np.array([TYPE_CODE[name] for name in mix])[rng.choice(len(mix), n, p=_p(mix))]


def _subjects(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    """A subject index into the flat subject list for each row (-1 where the type has none)."""
    sizes = np.array([len(SUBJECTS[name]) for name in frames.ACTIVITY_TYPES])
    offsets = np.cumsum(sizes) - sizes
    pick = offsets[kind] + (rng.random(len(kind)) * sizes[kind]).astype(np.int64)
    return np.where(sizes[kind] > 0, pick, -1)


def _first_subject(name: str) -> int:
    """The index of the type's first subject in the flat subject list."""
    return sum(len(SUBJECTS[other]) for other in frames.ACTIVITY_TYPES[:frames.ACTIVITY_TYPES.index(name)])


def _marketing(
    rng: np.random.Generator, acc: _Accounts, account: np.ndarray, at: np.ndarray, mix: dict, burst: bool
) -> _Events:
    """Marketing touches: type, page, contact (the lead in bursts; anonymous web visits) and subject."""
    n = len(account)
    kind = _draw_types(rng, mix, n)
    visit = kind == TYPE_CODE["web_visit"]
    url = np.where(visit, rng.choice(len(URL_PATHS), n, p=_p([u[2 if burst else 1] for u in URL_PATHS])), -1)
    random_contact = acc.contact_start[account] + (rng.random(n) * acc.n_contacts[account]).astype(np.int64)
    contact = np.where(rng.random(n) < (0.75 if burst else 0.2), acc.lead[account], random_contact)
    contact = np.where(visit & (rng.random(n) < (0.3 if burst else 0.55)), -1, contact)
    return _Events(account, kind, at, contact, np.full(n, -1), url, _subjects(rng, kind))


def _touch_times(
    rng: np.random.Generator, offset_h: np.ndarray, days: int, origin: pd.Timestamp
) -> np.ndarray:
    """Seconds since ``origin``: mostly weekdays, around the early afternoon local time."""
    n = len(offset_h)
    day = rng.integers(0, days, n)
    weekday = (origin.weekday() + day) % 7
    day = np.where((weekday >= 5) & (rng.random(n) < 0.8), day + 7 - weekday, day)
    day = np.where(day >= days, np.maximum(day - 7, 0), day)
    local_hour = np.clip(rng.normal(13, 3.5, n), 0, 23.99)
    phase = origin.hour * HOUR + origin.minute * 60 + origin.second
    at = day * DAY + ((local_hour - offset_h) * HOUR).astype(np.int64) - phase
    return np.where(at < 0, at + DAY, np.where(at >= days * DAY, at - DAY, at))


def _intent(rng: np.random.Generator, account: np.ndarray, at: np.ndarray, topic: np.ndarray,
            score: np.ndarray) -> dict[str, np.ndarray]:
    """Intent rows as code arrays; bombora scores are daily (midnight UTC), g2 ones timestamped."""
    provider = (rng.random(len(account)) < 0.4).astype(np.int8)
    at = np.where(provider == 0, at - at % DAY, at)
    return {"account": account.astype(np.int32), "at": at, "topic": topic.astype(np.int8),
            "score": score.astype(np.int8), "provider": provider}


@dataclass
class _Bursts:
    account: np.ndarray
    start: np.ndarray  # seconds since the period start
    pivot: np.ndarray  # the moment the burst most likely crossed the hand-off (its third touch)
    strong: np.ndarray  # bool: enough touches for sales to care


def _bursts(
    rng: np.random.Generator, acc: _Accounts, days: int, origin: pd.Timestamp
) -> tuple[_Bursts, _Events, dict[str, np.ndarray]]:
    """Campaign bursts: touches hours apart by the lead and colleagues, plus high-score intent."""
    rate = BURST_RATE * days / 90 * (0.4 + 0.6 * acc.propensity) * np.where(acc.fit, 1.6, 0.7)
    per_account = np.minimum(rng.poisson(rate), MAX_BURSTS)
    account = np.repeat(np.arange(len(acc.ids)), per_account)
    start = _touch_times(rng, acc.offset_h[account], max(days - 1, 1), origin)
    size = np.clip(2 + rng.poisson(3.5, len(account)), 2, 14)
    burst, position = _group_positions(size)
    gap = rng.exponential(2.5 * HOUR, len(burst)).astype(np.int64)
    gap[position == 0] = 0
    cumulative = np.cumsum(gap)
    first = np.cumsum(size) - size
    at = start[burst] + cumulative - cumulative[first[burst]]
    touches = _marketing(rng, acc, account[burst], at, BURST_TYPES, burst=True)
    pivot = at[first + np.minimum(2, size - 1)]
    n_intent = rng.choice(4, len(account), p=_p((25, 35, 28, 12)))
    source, nth = _group_positions(n_intent)
    topic = (rng.integers(0, len(TOPICS), len(account))[source] + 7 * nth) % len(TOPICS)
    intent_at = start[source] + rng.integers(-72 * HOUR, 24 * HOUR, len(source))
    score = np.round(55 + 45 * rng.beta(4, 2, len(source)))
    intent = _intent(rng, account[source], intent_at, topic, score)
    return _Bursts(account, start, pivot, size >= 4), touches, intent


def _noise(
    rng: np.random.Generator, acc: _Accounts, days: int, origin: pd.Timestamp, touches: float, intent: float
) -> tuple[_Events, dict[str, np.ndarray]]:
    """Background marketing touches and intent all period, heavier for engaged accounts."""
    n = len(acc.ids)
    account = np.repeat(np.arange(n), rng.poisson(touches * acc.propensity))
    events = _marketing(rng, acc, account, _touch_times(rng, acc.offset_h[account], days, origin),
                        NOISE_TYPES, burst=False)
    source = np.repeat(np.arange(n), rng.poisson(intent * acc.propensity))
    at = rng.integers(0, days * DAY, len(source))
    topic = rng.choice(len(TOPICS), len(source), p=_p(np.linspace(3, 1, len(TOPICS))))
    score = np.round(100 * rng.beta(2, 5, len(source)))
    return events, _intent(rng, source, at, topic, score)


def _sales(
    rng: np.random.Generator, acc: _Accounts, bursts: _Bursts, users: pd.DataFrame, calendar: _Calendar,
    t0: int,
) -> tuple[_Events, pd.DataFrame]:
    """The follow-up of each burst: first touch after a business-hours delay, a cadence, status changes."""
    n = len(bursts.account)
    worker = acc.worker[bursts.account]
    responds = rng.random(n) < np.where(bursts.strong, 0.9, 0.6)
    kind_of_delay = rng.choice(4, n, p=_p((55, 20, 15, 10)))
    delay = np.select(
        [kind_of_delay == 0, kind_of_delay == 1, kind_of_delay == 2],
        [rng.exponential(0.8, n), rng.uniform(1, 4, n), rng.uniform(4, 24, n)], rng.uniform(24, 60, n),
    )
    follow_ups = np.where(responds, rng.choice(10, n, p=_p((8, 8, 10, 12, 12, 14, 12, 10, 8, 6))), 0)
    touches = np.where(responds, 1 + follow_ups, 0)
    burst, position = _group_positions(touches)
    gap = np.where(position == 0, delay[burst], rng.exponential(12, len(burst)))
    cumulative = np.cumsum(gap)
    first = np.cumsum(touches) - touches
    offset = cumulative - cumulative[first[burst]] + delay[burst]
    colleague = _regional_rep(rng, acc.region[bursts.account[burst]], users)
    by = np.where(rng.random(len(burst)) < 0.9, worker[burst], colleague)  # an SDR or colleague, sometimes
    base = t0 + bursts.pivot
    at = calendar.add(base[burst], offset, by) - t0
    kind = np.where(position == 0, _draw_types(rng, FIRST_TOUCH_TYPES, len(burst)),
                    _draw_types(rng, FOLLOW_UP_TYPES, len(burst)))
    account = bursts.account[burst]
    contact = np.where(rng.random(len(burst)) < 0.85, acc.lead[account], -1)
    events = _Events(account, kind, at, contact, by, np.full(len(burst), -1), _subjects(rng, kind))
    revops = int(np.flatnonzero(users["role"] == "revops")[0])
    status = _statuses(rng, bursts.account, responds, delay, worker, revops, calendar, base)
    status["at"] -= t0
    return events, status


def _statuses(
    rng: np.random.Generator, account: np.ndarray, responds: np.ndarray, delay: np.ndarray,
    worker: np.ndarray, revops: int, calendar: _Calendar, base: np.ndarray,
) -> pd.DataFrame:
    """``working`` soon after the first touch, then accepted / nurture / rejected (or nothing); 8% never.

    Bursts nobody followed up are sometimes parked in nurture by rev-ops days later. Times are
    UTC seconds, counted from ``base`` (each burst's pivot).
    """
    n = len(account)
    updates = responds & (rng.random(n) < 0.92)
    working = updates & (rng.random(n) < 0.75)
    outcome = rng.choice(4, n, p=_p((55, 20, 7, 18)))  # accepted, nurture, rejected, stays working
    final = updates & (outcome < 3)
    working_after = delay + rng.exponential(3, n)
    working_at = calendar.add(base, working_after, worker)
    final_at = calendar.add(base, working_after + rng.uniform(4, 80, n), worker)
    cleanup = ~responds & (rng.random(n) < 0.3)
    cleanup_at = base + rng.integers(3 * DAY, 10 * DAY, n)
    revops = np.full(n, revops)
    parts = [
        (working, working_at, np.full(n, 0), worker),
        (final, final_at, 1 + np.minimum(outcome, 2), worker),
        (cleanup, cleanup_at, np.full(n, 2), revops),
    ]
    return pd.DataFrame({
        "account": np.concatenate([account[rows] for rows, *_ in parts]),
        "at": np.concatenate([at[rows] for rows, at, *_ in parts]),
        "status": np.concatenate([status[rows] for rows, _, status, _ in parts]),
        "by": np.concatenate([by[rows] for rows, *_, by in parts]),
    })


STATUSES = ("working", "accepted", "nurture", "rejected")
#: The feedback loop's extra status values (``generate_crm(feedback=True)``), in the CRM's own spelling;
#: ``Callback Requested`` is a value no disposition map knows (reported as unknown, never dropped).
FEEDBACK_STATUSES = ("Unqualified", "Meeting Held", "No-Show", "Interested", "Not Ready", "Contacted",
                     "Callback Requested")
REJECTION_REASONS = (  # reason, weight
    ("No budget this fiscal year", 24), ("Too small: under 50 employees", 18),
    ("Using a competitor, renewal in 2027", 16),
    ("No project or timing", 14), ("Contact has no buying authority", 12), ("Student or job seeker", 6),
    ("Existing customer (account management)", 10),
)


def _feedback(
    rng: np.random.Generator, status: pd.DataFrame, bursts: _Bursts, acc: _Accounts, calendar: _Calendar, t0: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The feedback loop on top of the statuses: richer dispositions, rejection reasons (on time, late or
    missing), weekly status updates on accounts left in ``working``, an unknown status value, and the
    CRM's own owner assignment after ~half of the bursts (some later than the routing window).

    Returns the status rows (``status`` now text, with ``reason``) and ``owner_assigned`` events
    (``account, at, by``); times are seconds from ``t0`` as in ``status``.
    """
    out = status.assign(status=np.array(STATUSES, dtype=object)[status["status"].to_numpy()], reason=None)
    names = out["status"].to_numpy(dtype=object)
    draw = rng.random(len(out))
    rejected = names == "rejected"
    names[rejected & (draw < 0.4)] = "Unqualified"  # the CRM's "disqualified" value
    names[(names == "nurture") & (draw < 0.3)] = "Unqualified"  # "not a fit" rather than "not now"
    verdict = np.isin(names, ("rejected", "Unqualified"))
    reason = _lookup([r for r, _ in REJECTION_REASONS], rng.choice(len(REJECTION_REASONS), len(out),
                                                                  p=_p(dict(REJECTION_REASONS))))
    how = rng.choice(3, len(out), p=_p((62, 23, 15)))  # with the verdict, a later row, never
    reasons = np.where(verdict & (how == 0), reason, None)
    later = out[verdict & (how == 1)].assign(
        reason=reason[verdict & (how == 1)],
        at=lambda f: calendar.add(t0 + f["at"].to_numpy(), rng.uniform(2, 64, len(f)), f["by"].to_numpy()) - t0,
    )
    later["status"] = names[verdict & (how == 1)]
    out["status"], out["reason"] = names, reasons
    working = out[out["status"] == "working"]
    mid = working[rng.random(len(working)) < 0.45]
    mid_at = calendar.add(t0 + mid["at"].to_numpy(), rng.uniform(4, 40, len(mid)), mid["by"].to_numpy()) - t0
    mid = mid.assign(status=rng.choice(FEEDBACK_STATUSES[1:6], len(mid), p=_p((30, 15, 25, 15, 15))), at=mid_at)
    weekly = working[rng.random(len(working)) < 0.5]
    weeks = rng.integers(1, 9, len(weekly))
    repeat, _ = _group_positions(weeks)
    gap = (rng.uniform(4.0, 8.5, len(repeat)) * DAY).astype(np.int64)  # every 4-8.5 days: some weeks missed
    cumulative = np.cumsum(gap)
    first = np.cumsum(weeks) - weeks
    since = cumulative - cumulative[first[repeat]] + gap[first[repeat]]
    weekly = weekly.iloc[repeat].assign(at=weekly["at"].to_numpy()[repeat] + since,
                                        status=np.where(rng.random(len(repeat)) < 0.7, "working", "Contacted"))
    unknown = out[rng.random(len(out)) < 0.02].assign(status=FEEDBACK_STATUSES[6], reason=None,
                                                      at=lambda f: f["at"] + 3 * HOUR)
    assigned = rng.random(len(bursts.account)) < 0.5
    worker = acc.worker[bursts.account[assigned]]
    delay = np.where(rng.random(assigned.sum()) < 0.8, rng.uniform(0.1, 20, assigned.sum()),
                     rng.uniform(24, 72, assigned.sum())) * HOUR
    owners = pd.DataFrame({"account": bursts.account[assigned],
                           "at": bursts.pivot[assigned] + delay.astype(np.int64), "by": worker})
    statuses = pd.concat([out, later, mid, weekly, unknown], ignore_index=True)
    return statuses, owners


def _background_sales(
    rng: np.random.Generator, acc: _Accounts, calendar: _Calendar, days: int, t0: int
) -> _Events:
    """Sales touches unrelated to any burst (existing conversations), in business hours."""
    account = np.repeat(np.arange(len(acc.ids)), rng.poisson(0.4 * days / 90, len(acc.ids)))
    n = len(account)
    by = acc.worker[account]
    at = calendar.add(t0 + rng.integers(0, days * DAY, n), rng.uniform(0, 8, n), by) - t0
    kind = _draw_types(rng, FOLLOW_UP_TYPES, n)
    contact = acc.contact_start[account] + (rng.random(n) * acc.n_contacts[account]).astype(np.int64)
    return _Events(account, kind, at, contact, by, np.full(n, -1), _subjects(rng, kind))


def _opportunities(
    rng: np.random.Generator, acc: _Accounts, status: pd.DataFrame, frame: pd.DataFrame, t0: int, days: int
) -> pd.DataFrame:
    """Deals for ~60% of accepted accounts, plus older deals on ~8% of accounts; some closed won or lost."""
    accepted = status[(status["status"] == 1) & (rng.random(len(status)) < 0.6) & (status["at"] < days * DAY)]
    n_old = int(0.08 * len(acc.ids))
    old_accounts = rng.choice(len(acc.ids), n_old, replace=False)
    account = np.concatenate([accepted["account"].to_numpy(), old_accounts])
    created = np.concatenate([
        np.minimum(accepted["at"].to_numpy() + rng.integers(HOUR, 5 * DAY, len(accepted)), days * DAY - 1),
        rng.integers(-365 * DAY, 0, n_old),
    ])
    n = len(account)
    employees = np.nan_to_num(frame["employees"].to_numpy()[account], nan=100)
    amount = np.round(rng.lognormal(np.log(15_000), 0.7, n) * np.clip(employees / 200, 0.5, 20) ** 0.5, -2)
    close = created + rng.integers(20 * DAY, 150 * DAY, n)
    closed = close < days * DAY
    won = closed & (rng.random(n) < 0.35)
    stage = np.where(won, "Closed Won", np.where(closed, "Closed Lost", rng.choice(STAGES_OPEN, n)))
    order = np.argsort(created, kind="stable")
    close_day = t0 + close[order] - (t0 + close[order]) % DAY
    return pd.DataFrame({
        "opportunity_id": _ids("O", n, 6), "account_id": acc.ids[account][order],
        "stage": stage[order].astype(object), "amount": amount[order],
        "created_at": _to_utc(t0 + created[order]), "close_date": _to_utc(close_day),
        "is_closed": closed[order], "is_won": won[order],
    })


def _outbound_deals(activities: pd.DataFrame, accounts: pd.DataFrame, start: pd.Timestamp, days: int,
                    seed: int) -> pd.DataFrame:
    """Open deals sales sourced on its own: on accounts marketing had not touched yet, a few days before
    marketing's first touch (or any time for an account it never touched); about 2% of the accounts."""
    rng = np.random.default_rng(seed + 1)  # its own stream: the rest of the CRM is unchanged
    touches = activities[activities["type"].isin(frames.MARKETING_TOUCHES)]
    first = touches.groupby("account_id")["occurred_at"].min().reindex(accounts["account_id"])
    latest = first.fillna(start + pd.Timedelta(days=days)).reset_index(drop=True) - pd.Timedelta(days=1)
    room = (latest - (start + pd.Timedelta(days=1))).dt.total_seconds().to_numpy()
    eligible = np.flatnonzero(room > 0)
    chosen = np.sort(rng.choice(eligible, min(len(eligible), int(0.02 * len(accounts))), replace=False))
    created = (latest.iloc[chosen] - pd.to_timedelta(rng.random(len(chosen)) * room[chosen], unit="s")).dt.floor("s")
    return pd.DataFrame({
        "opportunity_id": [f"OB{i:05d}" for i in range(1, len(chosen) + 1)],
        "account_id": accounts["account_id"].to_numpy()[chosen], "stage": rng.choice(STAGES_OPEN, len(chosen)),
        "amount": np.round(rng.lognormal(np.log(12_000), 0.6, len(chosen)), -2),
        "created_at": created.to_numpy(), "close_date": pd.Series(pd.NaT, index=range(len(chosen)),
                                                                  dtype="datetime64[ns, UTC]"),
        "is_closed": False, "is_won": False,
    }).astype({"stage": object})


def _activity_frame(
    events: _Events, acc: _Accounts, contact_ids: np.ndarray, users: pd.DataFrame, t0: int
) -> pd.DataFrame:
    flat_subjects = [s for name in frames.ACTIVITY_TYPES for s in SUBJECTS[name]]
    return _frame({
        "activity_id": _ids("ACT", len(events.at), 8),
        "account_id": acc.ids[events.account],
        "type": np.array(frames.ACTIVITY_TYPES, dtype=object)[events.kind],
        "occurred_at": _to_utc(t0 + events.at),
        "contact_id": np.append(contact_ids, None)[events.contact],
        "owner_id": _lookup(list(users["user_id"]), events.owner),
        "url": _lookup([VENDOR_SITE + u[0] for u in URL_PATHS], events.url),
        "subject": _lookup(flat_subjects, events.subject),
        "logged_at": pd.Series(pd.NaT, index=range(len(events.at)), dtype="datetime64[ns, UTC]"),
    })


#: When sales enter a touch in the CRM (issue 26, the crm_hygiene clock): share and delay range in minutes.
LOGGING_DELAYS = ((0.80, 0, 120), (0.14, 120, 1200), (0.06, 1500, 4320))


def _logged_at(rng: np.random.Generator, activities: pd.DataFrame) -> pd.Series:
    """``logged_at`` of the sales touches and of the marketing touches (the engaged-lead data marketing enters;
    issue 26, policy ``crm_updates``): most within two hours, some the next day, a few after 24 hours; NaT for
    other activities. The delays drawn for the sales touches do not depend on the marketing ones."""
    sales = activities["type"].isin(frames.SALES_TOUCHES + frames.MARKETING_TOUCHES).to_numpy()
    shares, lows, highs = (np.array(part, dtype=float) for part in zip(*LOGGING_DELAYS, strict=True))
    band = rng.choice(len(shares), size=len(activities), p=shares / shares.sum())
    minutes = rng.uniform(lows[band], highs[band]).round()
    logged = activities["occurred_at"] + pd.to_timedelta(minutes, unit="min")
    return logged.where(sales)


def _intent_frame(parts: list[dict[str, np.ndarray]], acc: _Accounts, t0: int, span: int) -> pd.DataFrame:
    """Intent rows by time, without two rows of one account, topic, provider and moment."""
    intent = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    rows = np.flatnonzero((intent["at"] >= 0) & (intent["at"] < span))
    key = ((intent["at"][rows] * len(acc.ids) + intent["account"][rows]) * len(TOPICS)
           + intent["topic"][rows]) * len(PROVIDERS) + intent["provider"][rows]
    _, first = np.unique(key, return_index=True)  # by time first, then account, topic, provider
    intent = {name: values[rows[first]] for name, values in intent.items()}
    return _frame({
        "intent_id": _ids("INT", len(first), 8),
        "account_id": acc.ids[intent["account"]],
        "topic": np.array(TOPICS, dtype=object)[intent["topic"]],
        "score": intent["score"].astype(float),
        "observed_at": _to_utc(t0 + intent["at"]),
        "provider": np.array(PROVIDERS, dtype=object)[intent["provider"]],
    })


def _status_frame(
    status: pd.DataFrame, acc: _Accounts, users: pd.DataFrame, t0: int, span: int
) -> pd.DataFrame:
    """Status rows in the period by time (``status`` codes into STATUSES, or text with ``reason``)."""
    status = status[(status["at"] >= 0) & (status["at"] < span)].sort_values("at", kind="stable")
    status = status.drop_duplicates(["account", "at", "status"])
    changed_at = _to_utc(t0 + status["at"].to_numpy())
    account_id = pd.Series(acc.ids[status["account"].to_numpy()])
    codes = status["status"].to_numpy()
    name = pd.Series(codes if codes.dtype == object else np.array(STATUSES, dtype=object)[codes])
    frame = pd.DataFrame({
        # the id the files source gives a status change, so loading the export keeps the same ids
        "status_change_id": account_id + "|" + changed_at.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "|" + name,
        "account_id": account_id, "status": name, "changed_at": changed_at,
        "changed_by": users["user_id"].to_numpy()[status["by"].to_numpy()],
    })
    frame["reason"] = status["reason"].to_numpy() if "reason" in status else None
    return frame


def generate_crm(
    n_accounts: int = 2000,
    start: pd.Timestamp | str = DEFAULT_START,
    days: int = 90,
    seed: int = 7,
    signals_per_account: float | None = None,
    feedback: bool = False,
    marketing_program: bool = False,
    outcome_truth: bool = False,
) -> dict[str, pd.DataFrame]:
    """A synthetic CRM over ``days`` from ``start``: the normalized frames keyed by kind.

    ``feedback`` adds the SLA's feedback loop (issue 14, see :func:`_feedback`, drawn from its own
    random stream so the rest stays the same): dispositions, reasons, weekly updates, an unknown
    status, ``owner_assigned`` activities. The demo turns it on.

    ``signals_per_account`` sets the mean number of activities plus intent rows per account
    (background noise fills what the bursts and sales follow-up leave); None keeps the
    natural ~14 over 90 days. Ids and text are str objects (rows share them), numbers
    floats, flags bools, timestamps ``datetime64[ns, UTC]``. Same arguments, same frames.
    ``marketing_program`` adds the marketing side (:func:`add_marketing_program`); the other
    frames stay exactly as without it. ``outcome_truth`` replaces the opportunities with ones that
    follow a known relation to some signals (:func:`_in_market`, :data:`TRUTH_SIGNALS`) and adds
    those signals, for the scoring model proposal (``abm-sla propose model``) to find.
    """
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(start)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    t0, span = int(start.timestamp()), days * DAY
    users = _users()
    calendar = _Calendar(users, start, days)
    accounts, acc = _accounts(rng, n_accounts, start, users)
    contacts = _contacts(rng, accounts, acc, start)
    bursts, burst_events, burst_intent = _bursts(rng, acc, days, start)
    sales, status = _sales(rng, acc, bursts, users, calendar, t0)
    background = _background_sales(rng, acc, calendar, days, t0)
    touches, intent = DEFAULT_NOISE_TOUCHES * days / 90, DEFAULT_NOISE_INTENT * days / 90
    if signals_per_account is not None:
        fixed = len(burst_events.at) + len(burst_intent["at"]) + len(sales.at) + len(background.at)
        left = max(signals_per_account * n_accounts - fixed, 0.0) / max(n_accounts, 1)
        touches, intent = 0.65 * left, 0.35 * left
    noise_events, noise_intent = _noise(rng, acc, days, start, touches, intent)
    parts = [noise_events, burst_events, sales, background]
    opportunities = _opportunities(rng, acc, status, accounts, t0, days)
    if feedback:
        status, owners = _feedback(np.random.default_rng([seed, 14]), status, bursts, acc, calendar, t0)
        n = len(owners)
        kind = np.full(n, TYPE_CODE["owner_assigned"])
        parts.append(_Events(owners["account"].to_numpy(), kind, owners["at"].to_numpy(), np.full(n, -1),
                             owners["by"].to_numpy(), np.full(n, -1), np.full(n, _first_subject("owner_assigned"))))
    if outcome_truth:
        truth_rng = np.random.default_rng([seed, 27])  # its own stream: without it the CRM is unchanged
        truth_events, truth_intent, truth_opened = _in_market(truth_rng, acc, days)
        parts.append(truth_events)
    events = _Events.concat(parts)
    events = events.keep(_time_order(events.at, span))
    activities = _activity_frame(events, acc, contacts["contact_id"].to_numpy(), users, t0)
    if feedback:
        activities["logged_at"] = _logged_at(np.random.default_rng([seed, 26]), activities)
    outbound = _outbound_deals(activities, accounts, start, days, seed)
    parts = [part for part in (opportunities, outbound) if len(part)] or [opportunities]
    intent_parts = [noise_intent, burst_intent] + ([truth_intent] if outcome_truth else [])
    intent_signals = _intent_frame(intent_parts, acc, t0, span)
    opportunities = pd.concat(parts, ignore_index=True)
    if outcome_truth:
        opportunities = _truth_opportunities(truth_rng, acc, truth_opened, t0, days)
    crm = {
        "accounts": accounts,
        "contacts": contacts,
        "activities": activities,
        "intent_signals": intent_signals,
        "opportunities": opportunities,
        "users": users,
        "status_changes": _status_frame(status, acc, users, t0, span),
        "target_accounts": frames.empty("target_accounts"),
        "requests": frames.empty("requests"),  # issue 26: add_team_requests fills it
    }
    return add_marketing_program(crm, start, days, seed) if marketing_program else crm


#: The known relation of ``outcome_truth`` (what the scoring model proposal should find). Accounts go
#: *in market* at random moments (TRUTH_IN_MARKET per account per 90 days, independent of fit and
#: engagement). In the TRUTH_LEAD_DAYS before that moment the account shows buying signals: demo-page
#: visits, pricing-page visits, form submits (by the account's lead) and high intent (Poisson means in
#: TRUTH_SIGNALS); with chance
#: TRUTH_OPEN an opportunity opens 2 to 30 days after the moment. Email opens and clicks, webinars, other
#: pages and the firmographic fit predict nothing: besides, every account opens TRUTH_BASE_RATE
#: opportunities per 90 days at random. TRUTH_WIN_RATE of the opportunities close won, 10 to 60 days
#: after they open; the others close lost then.
TRUTH_IN_MARKET = 0.4
TRUTH_LEAD_DAYS = 14
TRUTH_SIGNALS = {"/demo": 1.2, "/pricing": 1.0, "form_submit": 0.8, "intent": 1.5}
TRUTH_OPEN = 0.8
TRUTH_KNOWN_VISITOR = 0.6  # the share of those page visits the lead makes signed in (the rest anonymous)
TRUTH_BASE_RATE = 0.03
TRUTH_WIN_RATE = 0.5


def _in_market(rng: np.random.Generator, acc: _Accounts, days: int) -> tuple[_Events, dict, np.ndarray]:
    """The buying signals of in-market moments (:data:`TRUTH_SIGNALS`) and the opportunities they and
    the base rate open: (events, intent rows, [account, created] seconds since the period start)."""
    n, span = len(acc.ids), days * DAY
    moment_account = np.repeat(np.arange(n), rng.poisson(TRUTH_IN_MARKET * days / 90, n))
    moment = rng.integers(0, span, len(moment_account))
    urls = {"/demo": 3, "/pricing": 2, "form_submit": -1}
    parts = []
    for signal, url in urls.items():
        source = np.repeat(np.arange(len(moment)), rng.poisson(TRUTH_SIGNALS[signal], len(moment)))
        account = moment_account[source]
        kind = np.full(len(source), TYPE_CODE["form_submit" if url < 0 else "web_visit"])
        contact = np.where((url < 0) | (rng.random(len(source)) < TRUTH_KNOWN_VISITOR), acc.lead[account], -1)
        at = moment[source] - rng.integers(0, TRUTH_LEAD_DAYS * DAY, len(source))
        parts.append(_Events(account, kind, at, contact, np.full(len(source), -1), np.full(len(source), url),
                             _subjects(rng, kind)))
    source = np.repeat(np.arange(len(moment)), rng.poisson(TRUTH_SIGNALS["intent"], len(moment)))
    intent = _intent(rng, moment_account[source], moment[source] - rng.integers(0, TRUTH_LEAD_DAYS * DAY, len(source)),
                     rng.integers(0, len(TOPICS), len(source)), rng.integers(75, 101, len(source)))
    opens = rng.random(len(moment)) < TRUTH_OPEN
    base = np.repeat(np.arange(n), rng.poisson(TRUTH_BASE_RATE * days / 90, n))
    opportunities = np.column_stack([
        np.concatenate([moment_account[opens], base]),
        np.concatenate([moment[opens] + rng.integers(2 * DAY, 30 * DAY, int(opens.sum())),
                        rng.integers(0, span, len(base))]),
    ])
    return _Events.concat(parts), intent, opportunities


def _truth_opportunities(rng: np.random.Generator, acc: _Accounts, opened: np.ndarray, t0: int,
                         days: int) -> pd.DataFrame:
    """The opportunities of :func:`_in_market` closed in the period, won at :data:`TRUTH_WIN_RATE`."""
    account, created = opened[:, 0], opened[:, 1]
    n = len(account)
    close = created + rng.integers(10 * DAY, 60 * DAY, n)
    won = rng.random(n) < TRUTH_WIN_RATE
    amount = np.round(rng.lognormal(np.log(15_000), 0.7, n), -2)
    keep = np.flatnonzero(close < days * DAY)
    order = keep[np.argsort(created[keep], kind="stable")]
    close_day = t0 + close[order] - (t0 + close[order]) % DAY
    return pd.DataFrame({
        "opportunity_id": _ids("OT", len(order), 6), "account_id": acc.ids[account[order]],
        "stage": np.where(won[order], "Closed Won", "Closed Lost").astype(object), "amount": amount[order],
        "created_at": _to_utc(t0 + created[order]), "close_date": _to_utc(close_day),
        "is_closed": True, "is_won": won[order],
    })


#: Channel touches per account per month by tier (Poisson means) and the TAL share of each tier.
CHANNEL_TOUCHES_PER_MONTH = {"1": 2.0, "2": 0.8, "3": 0.15}
TAL_SHARE = {"1": 1.0, "2": 0.6, "3": 0.05}


def add_marketing_program(crm: dict[str, pd.DataFrame], start: pd.Timestamp, days: int, seed: int) -> dict:
    """The marketing side on top of a synthetic CRM (own random stream): ad clicks, content downloads and
    event attendance by tier, account research after Tier 1 pricing visits (most within 2 business hours,
    some late, some never), and a target account list agreed monthly (``target_accounts``)."""
    rng = np.random.default_rng(seed + 15)
    out = dict(crm)
    tal = _target_list(rng, crm["accounts"], start, days)
    channel = _channel_touches(rng, crm["accounts"], crm["contacts"], start, days)
    research = _research(rng, crm["activities"], crm["accounts"], crm["users"])
    campaigns = _campaigns(np.random.default_rng(seed + 26), crm["accounts"], crm["users"], start, days)
    extra = pd.concat([channel, research, campaigns], ignore_index=True)
    extra["activity_id"] = _ids("MKT", len(extra), 7)
    extra = extra.astype({"occurred_at": "datetime64[ns, UTC]"})
    extra["logged_at"] = pd.Series(pd.NaT, index=extra.index, dtype="datetime64[ns, UTC]")
    activities = pd.concat([crm["activities"], extra[frames.ACTIVITY_COLUMNS]], ignore_index=True)
    out["activities"] = activities.sort_values("occurred_at", kind="stable", ignore_index=True)
    out["target_accounts"] = _priorities(np.random.default_rng(seed + 27), tal, crm["accounts"])
    return out


#: Campaign starts on every Tier 1 account (days after the start) and what share of them marketing researches
#: within 30 days, late (31-50 days) or never.
CAMPAIGN_DAYS = (3, 45)
RESEARCH_SHARES = (0.75, 0.15)


def _campaigns(rng: np.random.Generator, accounts: pd.DataFrame, users: pd.DataFrame, start: pd.Timestamp,
               days: int) -> pd.DataFrame:
    """Tier 1 campaigns (``campaign_start`` on each Tier 1 account) and marketing's account research after each:
    75% within 1-25 days, 15% after 31-50 days, 10% never (docs/designs/tier1-commitments.md)."""
    tier1 = accounts.loc[accounts["tier"].astype(str).eq("1"), "account_id"].to_numpy()
    marketers = users.loc[users["role"].eq("marketing"), "user_id"].to_numpy()
    parts = []
    for number, day in enumerate(d for d in CAMPAIGN_DAYS if d < days):
        started = start + pd.Timedelta(days=day, hours=14)
        subject = SUBJECTS["campaign_start"][number % len(SUBJECTS["campaign_start"])]
        parts.append(pd.DataFrame({"account_id": tier1, "type": "campaign_start", "occurred_at": started,
                                   "contact_id": None, "owner_id": None, "url": None, "subject": subject}))
        draw = rng.random(len(tier1))
        delay = np.where(draw < RESEARCH_SHARES[0], rng.uniform(1, 25, len(tier1)), rng.uniform(31, 50, len(tier1)))
        keep = draw < sum(RESEARCH_SHARES)
        who = marketers[rng.integers(0, len(marketers), int(keep.sum()))] if len(marketers) else None
        parts.append(pd.DataFrame({"account_id": tier1[keep], "type": "account_research",
                                   "occurred_at": started + pd.to_timedelta(delay[keep], unit="D"),
                                   "contact_id": None, "owner_id": who, "url": None,
                                   "subject": SUBJECTS["account_research"][1]}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["account_id", "type", "occurred_at", "contact_id", "owner_id", "url", "subject"])


def _priorities(rng: np.random.Generator, tal: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    """The list's ranking (``priority``, 1 first): Tier 1 accounts first, then Tier 2, then Tier 3, shuffled."""
    tier = tal["account_id"].map(accounts.set_index("account_id")["tier"]).fillna("3").astype(str)
    order = np.lexsort((rng.random(len(tal)), tier.to_numpy()))
    priority = np.empty(len(tal))
    priority[order] = np.arange(1, len(tal) + 1)
    return tal.assign(priority=priority)


def _target_list(rng: np.random.Generator, accounts: pd.DataFrame, start: pd.Timestamp, days: int) -> pd.DataFrame:
    """Every Tier 1, most Tier 2 and a few Tier 3 accounts on the list from 10 days before ``start``;
    a few join or leave at a later monthly agreement (agreed_at = the agreement that added or removed them)."""
    tier = accounts["tier"].fillna("3").astype(str)
    listed = rng.random(len(accounts)) < tier.map(TAL_SHARE).to_numpy()
    agreements = [start - pd.Timedelta(days=10), *(start + pd.Timedelta(days=d) for d in range(30, days, 30))]
    when = rng.integers(0, len(agreements), len(accounts))
    late = rng.random(len(accounts)) < 0.1
    added = np.where(late, when, 0)
    leaves = listed & ~late & (rng.random(len(accounts)) < 0.04) & (len(agreements) > 1)
    removed = np.where(leaves, np.maximum(when, 1), -1)
    stamps = np.array([moment.tz_convert(None).to_datetime64() for moment in agreements], dtype="datetime64[ns]")
    rows = pd.DataFrame({
        "account_id": accounts["account_id"].to_numpy()[listed],
        "added_at": pd.to_datetime(stamps[added[listed]]).tz_localize("UTC"),
        "removed_at": pd.to_datetime(np.where(removed[listed] >= 0, stamps[np.maximum(removed[listed], 0)],
                                              np.datetime64("NaT"))).tz_localize("UTC"),
        "agreed_by": "U001",
    })
    rows["agreed_at"] = rows["removed_at"].fillna(rows["added_at"])
    rows["priority"] = np.nan
    rows["target_account_id"] = rows["account_id"] + "|" + rows["added_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return rows[frames.TARGET_ACCOUNT_COLUMNS].reset_index(drop=True)


def _channel_touches(rng: np.random.Generator, accounts: pd.DataFrame, contacts: pd.DataFrame,
                     start: pd.Timestamp, days: int) -> pd.DataFrame:
    """Ad clicks, content downloads and event attendance, Poisson by tier, by one of the account's contacts."""
    tier = accounts["tier"].fillna("3").astype(str)
    counts = rng.poisson(tier.map(CHANNEL_TOUCHES_PER_MONTH).to_numpy() * days / 30)
    account = np.repeat(accounts["account_id"].to_numpy(), counts)
    people = contacts.groupby("account_id")["contact_id"].agg(list)
    pick = rng.random(len(account))
    contact = [(lambda c, r: c[int(r * len(c))] if isinstance(c, list) and c else None)(people.get(a), r)
               for a, r in zip(account, pick, strict=True)]
    kinds = np.array(frames.CHANNEL_TOUCHES, dtype=object)[rng.choice(3, len(account), p=[0.5, 0.35, 0.15])]
    at = start + pd.to_timedelta(rng.integers(0, days * DAY, len(account)), unit="s")
    subjects = [SUBJECTS[kind][i % len(SUBJECTS[kind])] for i, kind in enumerate(kinds)]
    return pd.DataFrame({"account_id": account, "type": kinds, "occurred_at": at, "contact_id": contact,
                         "owner_id": None, "url": None, "subject": subjects})


def _research(rng: np.random.Generator, activities: pd.DataFrame, accounts: pd.DataFrame,
              users: pd.DataFrame) -> pd.DataFrame:
    """Account research by marketing after a Tier 1 account's first pricing visit of a day: 70% within
    about an hour, 15% a day later, 15% never."""
    tier1 = set(accounts.loc[accounts["tier"].astype(str).eq("1"), "account_id"])
    visits = activities[activities["type"].eq("web_visit") & activities["url"].astype(str).str.contains("/pricing")
                        & activities["account_id"].isin(tier1)]
    visits = visits.assign(day=visits["occurred_at"].dt.floor("D")).drop_duplicates(["account_id", "day"])
    draw = rng.random(len(visits))
    delay = np.where(draw < 0.7, rng.uniform(0.2, 1.5, len(visits)), 26.0)
    keep = draw < 0.85
    marketers = users.loc[users["role"].eq("marketing"), "user_id"].to_numpy()
    return pd.DataFrame({
        "account_id": visits["account_id"].to_numpy()[keep], "type": "account_research",
        "occurred_at": (visits["occurred_at"] + pd.to_timedelta(delay, unit="h")).to_numpy()[keep],
        "contact_id": None, "owner_id": marketers[rng.integers(0, len(marketers), int(keep.sum()))],
        "url": None, "subject": SUBJECTS["account_research"][0],
    })


#: Issue 26's team clocks in the demo: requests per account per month by tier, the share answered and how late
#: (hours: most within a business day, some a few days later, some never), hot flags per Tier 1/2 account.
REQUESTS_PER_MONTH = {"1": 0.5, "2": 0.15, "3": 0.02}
ANSWER_DELAYS = ((0.70, 0.5, 20.0), (0.22, 20.0, 96.0), (0.08, None, None))
HOT_FLAGS_PER_MONTH = {"1": 0.3, "2": 0.1, "3": 0.0}


def add_team_requests(crm: dict[str, pd.DataFrame], start: pd.Timestamp, days: int, seed: int) -> dict:
    """Requests between the teams (``requests``: sales asks marketing for materials, marketing asks sales for
    account information; answered after :data:`ANSWER_DELAYS`) and hot flags by the account's owner
    (``hot_flag`` activities) followed by marketing's account research (same delays), from their own random
    stream; times fall in business hours of weekdays (UTC)."""
    rng = np.random.default_rng([seed, 26])
    accounts, users = crm["accounts"], crm["users"]
    tier = accounts["tier"].fillna("3").astype(str)
    marketers = users.loc[users["role"].eq("marketing"), "user_id"].to_numpy()
    if not len(marketers):
        marketers = users["user_id"].to_numpy()

    def moments(n: int) -> pd.Series:
        day = rng.integers(0, days, n)
        at = pd.Series(start.normalize() + pd.to_timedelta(day, unit="D")
                       + pd.to_timedelta(rng.uniform(9, 17, n), unit="h"))
        weekend = at.dt.dayofweek.to_numpy() >= 5
        return (at + pd.to_timedelta(np.where(weekend, 7 - at.dt.dayofweek.to_numpy(), 0), unit="D")).reset_index(
            drop=True)

    def answers(asked: pd.Series) -> pd.Series:
        shares = np.array([part[0] for part in ANSWER_DELAYS])
        band = rng.choice(len(shares), len(asked), p=shares / shares.sum())
        lows = np.array([part[1] or 0.0 for part in ANSWER_DELAYS])[band]
        highs = np.array([part[2] or 0.0 for part in ANSWER_DELAYS])[band]
        delay = pd.to_timedelta(rng.uniform(lows, highs), unit="h")
        return (asked + delay).where(band < len(shares) - 1)

    counts = rng.poisson(tier.map(REQUESTS_PER_MONTH).to_numpy() * days / 30)
    account = np.repeat(accounts["account_id"].to_numpy(), counts)
    owner = np.repeat(accounts["owner_id"].to_numpy(), counts)
    materials = rng.random(len(account)) < 0.5
    marketer = marketers[rng.integers(0, len(marketers), len(account))]
    asked = moments(len(account))
    requests = pd.DataFrame({
        "request_id": _ids("REQ", len(account), 5), "account_id": account,
        "kind": np.where(materials, "materials", "account_info").astype(object),
        "requested_by": np.where(materials, owner, marketer).astype(object), "requested_at": asked,
        "answered_at": answers(asked), "owner_id": np.where(materials, marketer, owner).astype(object),
    }).sort_values("requested_at", kind="stable", ignore_index=True)
    counts = rng.poisson(tier.map(HOT_FLAGS_PER_MONTH).to_numpy() * days / 30)
    account = np.repeat(accounts["account_id"].to_numpy(), counts)
    flagged = moments(len(account))
    flags = pd.DataFrame({"account_id": account, "type": frames.HOT_FLAG, "occurred_at": flagged,
                          "owner_id": np.repeat(accounts["owner_id"].to_numpy(), counts),
                          "subject": SUBJECTS[frames.HOT_FLAG][0]})
    answered = answers(flagged)
    research = pd.DataFrame({"account_id": account[answered.notna().to_numpy()], "type": "account_research",
                             "occurred_at": answered.dropna().to_numpy(),
                             "owner_id": marketers[rng.integers(0, len(marketers), int(answered.notna().sum()))],
                             "subject": SUBJECTS["account_research"][1]})
    extra = pd.concat([flags, research], ignore_index=True).astype({"occurred_at": "datetime64[ns, UTC]"})
    extra["activity_id"] = _ids("HOT", len(extra), 5)
    extra = extra.reindex(columns=frames.ACTIVITY_COLUMNS)
    extra["logged_at"] = pd.Series(pd.NaT, index=extra.index, dtype="datetime64[ns, UTC]")
    out = dict(crm)
    out["activities"] = pd.concat([crm["activities"], extra], ignore_index=True).sort_values(
        "occurred_at", kind="stable", ignore_index=True)
    out["requests"] = requests[frames.REQUEST_COLUMNS]
    return out


# ---------------------------------------------------------------------------------------------------------
# The export folder (SPEC section 2)

EXPORT_COLUMNS = {
    "accounts.csv": ("accounts", {"account_id": "id"}),
    "contacts.csv": ("contacts", {"contact_id": "id"}),
    "activities.csv": ("activities", {"activity_id": "id"}),
    "intent.csv": ("intent_signals", {"provider": "source"}),
    "opportunities.csv": ("opportunities", {"opportunity_id": "id"}),
    "users.csv": ("users", {"user_id": "id"}),
    "status_changes.csv": ("status_changes", {}),
    "target_accounts.csv": ("target_accounts", {}),
    "requests.csv": ("requests", {}),  # optional (issue 26): written only when there are requests
}
DROPPED = {"intent.csv": ["intent_id"], "status_changes.csv": ["status_change_id"],
           "target_accounts.csv": ["target_account_id"]}
#: Optional columns written only when some row has a value (a CRM without reasons has no reason column).
OPTIONAL_EXPORT_COLUMNS = {"status_changes.csv": ("reason",), "activities.csv": ("logged_at",),
                           "target_accounts.csv": ("priority",)}


def _timestamps(values: pd.Series, rng: np.random.Generator) -> pd.Series:
    """ISO 8601: mostly ``+00:00``; ~5% in another offset (same instant), ~3% without an offset."""
    out = pd.Series("", index=values.index, dtype=object)
    present = values.notna().to_numpy()
    if not present.any():
        return out
    stamps = values[present].dt.tz_convert(None).to_numpy().astype("datetime64[s]")
    draw = rng.random(len(stamps))
    shift = np.where(draw < 0.05, np.where(draw < 0.025, -5, 1), 0)
    local = stamps + shift * np.timedelta64(3600, "s")
    text = pd.Series(np.datetime_as_string(local, unit="s"), dtype=object)
    naive = draw > 0.97
    suffix = np.where(shift == -5, "-05:00", np.where(shift == 1, "+01:00", np.where(naive, "", "+00:00")))
    out[present] = (text + suffix).to_numpy()
    return out


def _numbers(values: pd.Series, decimals: int = 0) -> pd.Series:
    """Plain numbers (``1200`` or ``1200.50``); missing ones empty."""
    if decimals:
        text = values.map(f"{{:.{decimals}f}}".format)
    else:
        text = values.fillna(0).round().astype(np.int64).astype(str)
    return text.astype(object).where(values.notna(), "")


def _export_table(
    file: str, frame: pd.DataFrame, domains: pd.Series, rng: np.random.Generator
) -> pd.DataFrame:
    """One file's table of strings, with the SPEC column names."""
    kind, renames = EXPORT_COLUMNS[file]
    optional = [c for c in OPTIONAL_EXPORT_COLUMNS.get(file, ()) if c not in frame or frame[c].isna().all()]
    table = frame.reindex(columns=frames.COLUMNS[kind]).drop(columns=[*DROPPED.get(file, []), *optional])
    table = table.astype(object).where(table.notna(), "")
    for column in frames.TIMESTAMP_COLUMNS[kind]:
        if column in table:
            table[column] = _timestamps(frame[column], rng)
    for column in ("active", "is_closed", "is_won"):
        if column in table:
            table[column] = frame[column].map({True: "true", False: "false"}).fillna("")
    for column in ("employees", "annual_revenue", "score"):
        if column in table:
            table[column] = _numbers(frame[column])
    if "amount" in table:
        table["amount"] = _numbers(frame["amount"], 2)
    if kind == "accounts":
        table["tier"] = _tiers(frame["tier"], rng)
    if kind == "intent_signals":
        table = _intent_by_domain(table, frame["account_id"].map(domains), rng)
    return table.rename(columns=renames)


def _tiers(tier: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Tiers as ``2``, ``Tier 2`` or `` tier 2 ``; none stays empty."""
    form = rng.choice(3, len(tier))
    text = tier.fillna("").astype(str)
    written = np.select([form == 0, form == 1], [text, "Tier " + text], " tier " + text + " ")
    return pd.Series(np.where(text.isin(["1", "2", "3"]), written, text), index=tier.index, dtype=object)


def _intent_by_domain(table: pd.DataFrame, domain: pd.Series, rng: np.random.Generator) -> pd.DataFrame:
    """~20% of intent rows name the account's domain (in assorted spellings) instead of its id."""
    domain = domain.fillna("")
    by_domain = (rng.random(len(table)) < 0.2) & (domain != "").to_numpy()
    style = rng.choice(4, len(table), p=_p((70, 10, 10, 10)))
    spelled = np.select([style == 1, style == 2, style == 3],
                        ["www." + domain, "https://www." + domain + "/", domain.str.upper()], domain)
    table.insert(1, "domain", np.where(by_domain, spelled, ""))
    table["account_id"] = np.where(by_domain, "", table["account_id"])
    return table


def _dirty_rows(tables: dict[str, pd.DataFrame]) -> dict[str, list[dict]]:
    """A handful of unusable rows per file: each kind of problem the loader must quarantine."""
    account = tables["accounts.csv"].iloc[0].to_dict()
    activity = tables["activities.csv"].iloc[0].to_dict() if len(tables["activities.csv"]) else {}
    when = "2026-01-15T10:00:00+00:00"
    return {
        "accounts.csv": [
            {**account, "name": "Duplicate of the first account"},
            # a bad optional value (employees = "about 500") no longer costs the row; a bad timestamp does
            {**account, "id": "A-BAD-TIME", "domain": "bad-time.example", "updated_at": "2026-13-45T25:00"},
        ],
        "contacts.csv": [
            {"id": "C-ORPHAN", "account_id": "A-MISSING", "title": "CEO", "email": "x@missing.example"},
        ],
        "activities.csv": [
            {"id": "ACT-BAD-TIME", "account_id": account["id"], "type": "call",
             "occurred_at": "2026-02-30T25:61"},
            {"id": "ACT-FAX", "account_id": account["id"], "type": "fax", "occurred_at": when},
            {"id": "ACT-ORPHAN", "account_id": "A-MISSING", "type": "email_open", "occurred_at": when},
            {**activity, "type": "meeting"},
        ],
        "intent.csv": [
            {"account_id": "", "domain": "no-such-company.example", "topic": "CRM Software", "score": "90",
             "observed_at": when, "source": "bombora"},
            {"account_id": account["id"], "domain": "", "topic": "CRM Software", "score": "high",
             "observed_at": when, "source": "g2"},
            {"account_id": "A-MISSING", "domain": "", "topic": "Lead Scoring", "score": "80",
             "observed_at": when, "source": "g2"},
        ],
        "opportunities.csv": [{"id": "O-BAD-AMOUNT", "account_id": account["id"], "stage": "Discovery",
                               "amount": "12k", "created_at": when, "is_closed": "false", "is_won": "false"}],
        "status_changes.csv": [{"account_id": account["id"], "status": "working", "changed_at": "soon"}],
    }


def write_export_folder(
    frames_by_kind: dict[str, pd.DataFrame], path: str | Path, dirty: bool = False, seed: int = 7
) -> Path:
    """Write ``frames_by_kind`` as a CRM export folder (SPEC section 2); returns the folder.

    Timestamps are ISO 8601 (mostly ``+00:00``, a few other offsets or none), booleans
    ``true``/``false``, tiers in mixed spellings and ~20% of intent rows by domain only.
    ``dirty`` appends a handful of unusable rows of every kind the loader quarantines.
    """
    rng = np.random.default_rng(seed)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    accounts = frames_by_kind["accounts"]
    domains = pd.Series(accounts["domain"].to_numpy(), index=accounts["account_id"].to_numpy())
    tables = {
        file: _export_table(file, frames_by_kind[kind], domains, rng)
        for file, (kind, _) in EXPORT_COLUMNS.items()
        if kind in frames_by_kind
        and (kind not in ("target_accounts", "requests") or len(frames_by_kind[kind]))  # none: no file
    }
    if dirty:
        for file, rows in _dirty_rows(tables).items():
            tables[file] = pd.concat([tables[file], pd.DataFrame(rows)], ignore_index=True).fillna("")
    for file, table in tables.items():
        table.to_csv(folder / file, index=False, encoding="utf-8")
    return folder



# ---------------------------------------------------------------------------------------------------------
# Sales acting on tier-move recommendations (the demo's mid-quarter CRM change)

def sales_tier_decisions(accounts: pd.DataFrame, ledger: pd.DataFrame, at: pd.Timestamp, seed: int = 7,
                         accept: float = 0.5, other_way: float = 0.1) -> pd.DataFrame:
    """``accounts`` after sales acted in the CRM on the pending recommendations of ``ledger`` by ``at``:
    about ``accept`` of them moved as recommended (an "off list" move sets the tier to ``off list``), ``other_way``
    of the Tier 2 → 1 ones sent back to Tier 3, the rest left alone (declined when their days pass).
    ``updated_at`` is stamped a few days after the recommendation, never after ``at``."""
    rng = np.random.default_rng(seed)
    pending = ledger[ledger["decision"].eq("pending") & (ledger["recommended_at"] <= at)]
    pending = pending.drop_duplicates("account_id").reset_index(drop=True)
    draw = rng.random(len(pending))
    accepted = draw < accept
    reverse = ~accepted & pending["rule"].eq("promote_2_to_1").to_numpy() & (draw < accept + other_way)
    lag = pd.to_timedelta(rng.uniform(0.5, 10, len(pending)), unit="D")
    stamped = (pending["recommended_at"] + lag.to_numpy()).clip(upper=at)
    new_tier = pending["proposed_tier"].to_numpy()
    changes = pd.DataFrame({"account_id": pending["account_id"], "tier": np.where(reverse, "3", new_tier),
                            "updated_at": stamped})[accepted | reverse].set_index("account_id")
    out = accounts.copy()
    hit = out["account_id"].isin(changes.index)
    out["tier"] = out["tier"].astype(object).where(~hit, out["account_id"].map(changes["tier"]))
    stamp = out["account_id"].map(changes["updated_at"]).astype("datetime64[ns, UTC]")
    out["updated_at"] = stamp.where(hit, pd.to_datetime(out["updated_at"], utc=True).astype("datetime64[ns, UTC]"))
    return out
