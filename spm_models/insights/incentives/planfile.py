"""The plan file: a plan book in TOML, validated with every problem listed at once.

::

    name = "FY2025 sales compensation"
    default_role = "Account Executive"      # everyone not listed under [roles]

    [roles]
    "Enterprise AE" = ["A0001", "A0003"]

    [[plans]]
    id = "ae"
    name = "Account Executive plan"
    effective_from = 2025-01-01             # a TOML date or "YYYY-MM-DD"
    effective_to = 2025-06-30               # optional, inclusive
    roles = ["Account Executive"]           # optional eligibility: roles, territories,
    territories = ["T01", "T02"]            #   hired_on_or_after, hired_before,
    max_tenure_months = 6                   #   min_tenure_months, max_tenure_months
    proration = "days"                      # or "none"

      [[plans.components]]
      type = "commission"                   # commission, attainment_bonus, kpi_bonus, draw
      id = "commission"
      measure = "bookings"                  # or "margin"
      tiers = [[0.0, 0.05], [1.0, 0.08], [1.5, 0.10]]   # [from attainment, marginal rate]
      cap_attainment = 2.0

      [[plans.components]]
      type = "kpi_bonus"
      id = "new-logos"
      kpi = "new_accounts"
      steps = [[3, 500.0], [6, 1500.0]]     # [threshold, amount]: the highest step reached

    [[contests]]
    id = "q4-push"
    kpi = "product_bookings"
    segment = "Enterprise"
    from = 2025-10-01
    to = 2025-12-31
    pool = 10000.0
    top_n = 3
    shares = [0.5, 0.3, 0.2]

    [[assignments]]                         # explicit plan for one person from a date
    agent = "A0004"
    plan = "senior"
    from = 2025-08-15

Every key of every table is checked (type, range, the rules of :mod:`.plan`), unknown keys are
problems, and all problems are raised together in one :class:`~spm_models.exceptions.ConfigError`
naming the file, the table (``plans #2 (id 'ae'), components #1 (id 'commission')``), the key and
what was expected. :func:`plan_book_to_mapping` writes a book back as such a mapping (the review
records it in its settings).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from spm_models.exceptions import ConfigError
from spm_models.insights.incentives.assign import book_data_problems
from spm_models.insights.incentives.credits import measure_problems
from spm_models.insights.incentives.plan import COMPONENT_TYPES, Assignment, Contest, Plan, PlanBook, Step, Tier

__all__ = [
    "load_plan_book",
    "plan_book_from_mapping",
    "plan_book_to_mapping",
    "PlanFileError",
    "example_plan_file",
    "check_plan_book",
    "load_checked_plan_book",
]


class PlanFileError(ConfigError):
    """Every problem of one plan file (``problems``: one line each)."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the plan file {source}; nothing was used:"
        super().__init__(head + "\n  " + "\n  ".join(self.problems))


# ----------------------------------------------------------------------------- value parsers
# each returns the parsed value or raises ValueError with what was expected


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("a non-empty text")
    return v.strip()


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError("a number")
    return float(v)


def _whole(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("a whole number")
    return int(v)


def _flag(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("true or false")
    return v


def _date(v: Any) -> pd.Timestamp:
    if isinstance(v, dt.datetime):
        return pd.Timestamp(v.date())
    if isinstance(v, dt.date):
        return pd.Timestamp(v)
    if isinstance(v, str):
        try:
            return pd.Timestamp(dt.date.fromisoformat(v.strip()))
        except ValueError:
            pass
    raise ValueError("a date such as 2025-01-01")


def _texts(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise ValueError('a list of texts such as ["A0001", "A0002"]')
    return tuple(x.strip() for x in v)


def _pairs(v: Any, names: tuple[str, str], make: Callable) -> tuple:
    if not isinstance(v, list) or not v:
        raise ValueError(f"a list of [{names[0]}, {names[1]}] pairs")
    out = []
    for item in v:
        if isinstance(item, Mapping) and set(item) == set(names):
            a, b = item[names[0]], item[names[1]]
        elif isinstance(item, list) and len(item) == 2:
            a, b = item
        else:
            raise ValueError(f"a list of [{names[0]}, {names[1]}] pairs, not {item!r}")
        out.append(make(_number(a), _number(b)))
    return tuple(out)


def _tiers(v: Any) -> tuple[Tier, ...]:
    return _pairs(v, ("from_attainment", "rate"), Tier)


def _steps(v: Any) -> tuple[Step, ...]:
    return _pairs(v, ("at", "amount"), Step)


def _shares(v: Any) -> tuple[float, ...]:
    if not isinstance(v, list):
        raise ValueError("a list of fractions such as [0.5, 0.3, 0.2]")
    return tuple(_number(x) for x in v)


#: Table -> TOML key -> (field name, parser, required).
_COMMON = {"id": ("id", _text, True), "type": (None, _text, True), "name": ("name", _text, False)}
SPECS: dict[str, dict[str, tuple[str | None, Callable, bool]]] = {
    "commission": {
        **_COMMON,
        "measure": ("measure", _text, False),
        "period": ("period", _text, False),
        "tiers": ("tiers", _tiers, True),
        "method": ("method", _text, False),
        "cap_attainment": ("cap_attainment", _number, False),
        "cap_amount": ("cap_amount", _number, False),
        "no_quota_rate": ("no_quota_rate", _number, False),
    },
    "attainment_bonus": {
        **_COMMON,
        "measure": ("measure", _text, False),
        "period": ("period", _text, False),
        "steps": ("steps", _steps, True),
    },
    "kpi_bonus": {
        **_COMMON,
        "kpi": ("kpi", _text, True),
        "segment": ("segment", _text, False),
        "period": ("period", _text, False),
        "steps": ("steps", _steps, False),
        "per_unit": ("per_unit", _number, False),
        "above": ("above", _number, False),
        "cap_amount": ("cap_amount", _number, False),
        "min_deals": ("min_deals", _whole, False),
    },
    "draw": {
        **_COMMON,
        "amount": ("amount", _number, True),
        "recoverable": ("recoverable", _flag, False),
        "quarters": ("quarters", _whole, False),
        "period": ("period", _text, False),
    },
    "plan": {
        "id": ("id", _text, True),
        "name": ("name", _text, False),
        "effective_from": ("effective_from", _date, True),
        "effective_to": ("effective_to", _date, False),
        "roles": ("roles", _texts, False),
        "territories": ("territories", _texts, False),
        "hired_on_or_after": ("hired_on_or_after", _date, False),
        "hired_before": ("hired_before", _date, False),
        "min_tenure_months": ("min_tenure_months", _whole, False),
        "max_tenure_months": ("max_tenure_months", _whole, False),
        "proration": ("proration", _text, False),
        "components": (None, None, True),
    },
    "contest": {
        "id": ("id", _text, True),
        "name": ("name", _text, False),
        "kpi": ("kpi", _text, True),
        "segment": ("segment", _text, False),
        "from": ("start", _date, True),
        "to": ("end", _date, True),
        "pool": ("pool", _number, True),
        "top_n": ("top_n", _whole, False),
        "shares": ("shares", _shares, False),
        "above": ("above", _number, False),
        "roles": ("roles", _texts, False),
        "territories": ("territories", _texts, False),
        "min_deals": ("min_deals", _whole, False),
    },
    "assignment": {
        "agent": ("agent_id", _text, True),
        "plan": ("plan_id", _text, True),
        "from": ("start", _date, True),
        "to": ("end", _date, False),
    },
}
_CLASSES = {**COMPONENT_TYPES, "plan": Plan, "contest": Contest, "assignment": Assignment}
_TOP = {"name", "default_role", "roles", "plans", "contests", "assignments", "currency"}


def _defaults(cls: type) -> dict[str, Any]:
    import dataclasses

    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _where(kind: str, index: int, table: Mapping) -> str:
    ident = table.get("id") if isinstance(table, Mapping) else None
    plural = {"plan": "plans", "contest": "contests", "assignment": "assignments"}.get(kind, "components")
    return f"{plural} #{index}" + (f" (id {ident!r})" if isinstance(ident, str) else "")


def _fields(kind: str, table: Any, where: str, problems: list[str]) -> dict[str, Any] | None:
    """The parsed fields of one table (None when it has problems, which are appended)."""
    if not isinstance(table, Mapping):
        problems.append(f"{where}: expected a table of settings, got {table!r}")
        return None
    spec = SPECS[kind]
    before = len(problems)
    unknown = sorted(set(table) - set(spec))
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)}; this table takes {', '.join(spec)}")
    values = {}
    for key, (name, parse, required) in spec.items():
        if key not in table:
            if required:
                problems.append(f"{where}: key {key!r} is missing")
            continue
        if name is None:
            continue
        try:
            values[name] = parse(table[key])
        except ValueError as exc:
            problems.append(f"{where}: key {key!r} must be {exc}, got {table[key]!r}")
    return values if len(problems) == before else None


def _build(kind: str, values: dict[str, Any], where: str, problems: list[str]):
    """The object of ``values`` after its own rules (:meth:`problems` of the class), or None."""
    cls = _CLASSES[kind]
    ns = SimpleNamespace(**{**_defaults(cls), **values})
    if kind == "contest" and ns.top_n is not None and not ns.shares and isinstance(ns.top_n, int) and ns.top_n > 0:
        ns.shares = tuple([1.0 / ns.top_n] * ns.top_n)
    if hasattr(cls, "problems"):
        found = cls.problems(ns)
        if found:
            for key, msg in found:
                glue = " " if msg.startswith(("must", "is ", "needs ")) else ": "
                problems.append(f"{where}: key {key!r}{glue}{msg}")
            return None
    return cls(**values)


def _component(table: Any, where: str, problems: list[str]):
    kind = table.get("type") if isinstance(table, Mapping) else None
    if kind not in COMPONENT_TYPES:
        problems.append(f"{where}: key 'type' must be one of {', '.join(COMPONENT_TYPES)}, got {kind!r}")
        return None
    values = _fields(kind, table, where, problems)
    return None if values is None else _build(kind, values, where, problems)


def _plan(table: Any, where: str, problems: list[str]) -> Plan | None:
    values = _fields("plan", table, where, problems)
    comps = table.get("components") if isinstance(table, Mapping) else None
    parts = []
    if comps is not None:
        if not isinstance(comps, list):
            problems.append(f"{where}: 'components' must be [[plans.components]] tables")
            return None
        for j, c in enumerate(comps, start=1):
            parts.append(_component(c, f"{where}, {_where('component', j, c)}", problems))
    if values is None or any(p is None for p in parts):
        return None
    return _build("plan", {**values, "components": tuple(parts)}, where, problems)


def _list(spec: Mapping, key: str, problems: list[str]) -> list:
    v = spec.get(key, [])
    if not isinstance(v, list):
        problems.append(f"{key}: must be [[{key}]] tables, got {type(v).__name__}")
        return []
    return v


def plan_book_from_mapping(spec: Mapping[str, Any], *, source: str = "<memory>") -> PlanBook:
    """Build and check a plan book from a mapping (a parsed plan file; module docstring).

    Raises
    ------
    PlanFileError
        Every problem found, each naming its table, key and what was expected.
    """
    problems: list[str] = []
    unknown = sorted(set(spec) - _TOP)
    if unknown:
        problems.append(f"unknown top-level key(s) {', '.join(unknown)}; a plan file takes {', '.join(sorted(_TOP))}")
    plans = [_plan(t, _where("plan", i, t), problems) for i, t in enumerate(_list(spec, "plans", problems), 1)]
    if not plans and not spec.get("contests"):
        problems.append("a plan file needs at least one [[plans]] table")
    contests = []
    for i, t in enumerate(_list(spec, "contests", problems), 1):
        where = _where("contest", i, t)
        values = _fields("contest", t, where, problems)
        contests.append(None if values is None else _build("contest", values, where, problems))
    assignments = []
    for i, t in enumerate(_list(spec, "assignments", problems), 1):
        where = _where("assignment", i, t)
        values = _fields("assignment", t, where, problems)
        assignments.append(None if values is None else _build("assignment", values, where, problems))
    roles = spec.get("roles", {})
    parsed_roles: dict[str, tuple[str, ...]] = {}
    if not isinstance(roles, Mapping):
        problems.append("[roles] must be a table of role = [agent ids]")
    else:
        for role, ids in roles.items():
            try:
                parsed_roles[str(role)] = _texts(ids)
            except ValueError as exc:
                problems.append(f"[roles]: key {role!r} must be {exc}, got {ids!r}")
        seen: dict[str, str] = {}
        for role, ids in parsed_roles.items():
            for a in ids:
                if a in seen and seen[a] != role:
                    problems.append(f"[roles]: agent {a!r} is listed under both {seen[a]!r} and {role!r}")
                seen[a] = role
    default_role = spec.get("default_role", "")
    if not isinstance(default_role, str):
        problems.append(f"default_role must be a text, got {default_role!r}")
    name = spec.get("name", "Incentive plans")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"name must be a non-empty text, got {name!r}")
    good_plans = [p for p in plans if p is not None]
    for key, what in (("plans", "plan"), ("contests", "contest")):
        raw = [t.get("id") for t in _list(spec, key, []) if isinstance(t, Mapping) and isinstance(t.get("id"), str)]
        for dup in sorted({i for i in raw if raw.count(i) > 1}):
            problems.append(f"{key}: id {dup!r} is used by more than one {what}")
    ids = [t.get("id") for t in _list(spec, "plans", []) if isinstance(t, Mapping)]
    for i, a in enumerate(assignments, 1):
        if a is None:
            continue
        where = _where("assignment", i, {})
        if a.plan_id not in ids:
            problems.append(f"{where}: key 'plan' names no plan of this file: {a.plan_id!r} (plans: {', '.join(ids)})")
        if a.end is not None and a.end < a.start:
            problems.append(f"{where}: key 'to' ({a.end.date()}) is before 'from' ({a.start.date()})")
    if problems:
        raise PlanFileError(source, problems)
    return PlanBook(
        plans=tuple(good_plans),
        contests=tuple(contests),
        assignments=tuple(assignments),
        roles=parsed_roles,
        default_role=default_role,
        name=name.strip(),
        source=source,
    )


def load_plan_book(path: str | Path) -> PlanBook:
    """Read and check a plan file (module docstring).

    Raises
    ------
    ConfigError
        The file is missing or not TOML; :class:`PlanFileError` with every problem of its content.
    """
    p = Path(path)
    try:
        spec = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"plan file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the plan file {p}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the plan file {p} is not valid TOML: {exc}") from None
    return plan_book_from_mapping(spec, source=str(p))


# ----------------------------------------------------------------------------- writing back


def _plain(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat()
    if isinstance(v, (Tier,)):
        return [v.from_attainment, v.rate]
    if isinstance(v, Step):
        return [v.at, v.amount]
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def _table(obj: Any, kind: str) -> dict[str, Any]:
    defaults = _defaults(type(obj))
    out = {}
    for key, (name, _, required) in SPECS[kind].items():
        if key == "type":
            out["type"] = obj.type
            continue
        if name is None:
            continue
        value = getattr(obj, name)
        if value is None or (not required and name in defaults and value == defaults[name]):
            continue
        out[key] = _plain(value)
    return out


def plan_book_to_mapping(book: PlanBook) -> dict[str, Any]:
    """The plan file mapping of ``book`` (JSON-able: dates as ISO text); reading it back with
    :func:`plan_book_from_mapping` gives an equal book."""
    plans = []
    for p in book.plans:
        t = _table(p, "plan")
        t["components"] = [_table(c, c.type) for c in p.components]
        plans.append(t)
    out: dict[str, Any] = {"name": book.name, "plans": plans}
    if book.default_role:
        out["default_role"] = book.default_role
    if book.roles:
        out["roles"] = {r: list(ids) for r, ids in book.roles.items()}
    if book.contests:
        out["contests"] = [_table(c, "contest") for c in book.contests]
    if book.assignments:
        out["assignments"] = [_table(a, "assignment") for a in book.assignments]
    return out


def example_plan_file(name: str = "example") -> Path:
    """Path of an example plan file shipped with the workbench (``"example"``: the built-in example's
    plans; ``"draft"``: a draft to model against them).

    They live in ``plans/`` of the source checkout; a built wheel carries them as the package data
    of ``spm_models.insights.incentives.plan_files`` (the ``package-dir`` mapping in pyproject.toml).

    Raises
    ------
    ConfigError
        No such example.
    """
    shipped = resources.files("spm_models.insights.incentives").joinpath("plan_files")
    folder = (
        shipped if isinstance(shipped, Path) and shipped.is_dir() else Path(__file__).resolve().parents[3] / "plans"
    )
    path = Path(folder) / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in Path(folder).glob("*.toml"))) or "none"
        raise ConfigError(f"no example plan file {name!r} in {folder} (examples: {known})")
    return path


def check_plan_book(book: PlanBook, tables: Mapping[str, pd.DataFrame]) -> None:
    """Check a plan book against the data it will pay on, every problem at once.

    The agent ids of ``[roles]`` and ``[[assignments]]`` and the territories of plans and
    contests must be in the data, every role a plan names must be held by someone, and every
    measure the book pays on must be there: margin on the deals, the product lines and activity
    types named, lost deals for a win rate
    (:func:`~spm_models.insights.incentives.assign.book_data_problems`,
    :func:`~spm_models.insights.incentives.credits.measure_problems`).

    Raises
    ------
    PlanFileError
        One line per problem, naming the table and key of the plan file.
    """
    agents = tables["agents"]
    territories = tables.get("territories")
    known = list(territories["territory_id"].astype("str")) if territories is not None else None
    problems = book_data_problems(book, agents, known)
    users = [
        (f"plans #{i} (id {p.id!r}), components #{j} (id {c.id!r})", c.measures)
        for i, p in enumerate(book.plans, 1)
        for j, c in enumerate(p.components, 1)
    ]
    users += [(f"contests #{i} (id {c.id!r})", c.measures) for i, c in enumerate(book.contests, 1)]
    for where, keys in users:
        problems += [f"{where}: {m}" for m in measure_problems(tables, keys)]
    if problems:
        raise PlanFileError(f"{book.source} (against the data)", problems)


def load_checked_plan_book(path: str | Path, tables: Mapping[str, pd.DataFrame]) -> PlanBook:
    """:func:`load_plan_book`, then :func:`check_plan_book` against ``tables``.

    Raises
    ------
    ConfigError
        Every problem of the file, or of the book against the data.
    """
    book = load_plan_book(path)
    check_plan_book(book, tables)
    return book
