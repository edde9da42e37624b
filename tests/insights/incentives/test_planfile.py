"""The plan file: every problem listed at once with its table and key; the example reads; round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from spm_models.exceptions import ConfigError
from spm_models.insights.incentives import (
    AttainmentBonus,
    Commission,
    Draw,
    KpiBonus,
    PlanFileError,
    load_plan_book,
    plan_book_from_mapping,
    plan_book_to_mapping,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "plans").glob("*.toml"))

BROKEN = """
name = "Broken"
colour = "blue"

[[plans]]
id = "ae"
effective_from = "2025-13-01"

  [[plans.components]]
  type = "commission"
  id = "commission"
  tiers = [[0.5, 0.05], [0.2, 0.08]]
  cap_attainment = -1

  [[plans.components]]
  type = "bonus"
  id = "x"

  [[plans.components]]
  type = "kpi_bonus"
  id = "logos"
  kpi = "new_logos"
  steps = [[3, 100.0]]
  per_unit = 5.0

[[plans]]
id = "ae"
effective_from = 2025-01-01
effective_to = 2024-12-31
  [[plans.components]]
  type = "draw"
  id = "draw"
  amount = "lots"

[[contests]]
id = "c1"
kpi = "bookings"
from = 2025-01-01
to = 2025-03-31
pool = 1000
top_n = 2
shares = [0.7, 0.7]

[[assignments]]
agent = "A0001"
plan = "nope"
from = 2025-02-01
"""


def test_every_problem_is_listed_at_once_naming_file_table_and_key(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(PlanFileError) as info:
        load_plan_book(path)
    message = str(info.value)
    assert message.startswith(f"{len(info.value.problems)} problems in the plan file {path}")
    expected = [
        "unknown top-level key(s) colour",
        "plans #1 (id 'ae'): key 'effective_from' must be a date such as 2025-01-01, got '2025-13-01'",
        "plans #1 (id 'ae'), components #1 (id 'commission'): key 'tiers': the first tier must start at attainment 0",
        "key 'tiers': tier start attainments must increase, got [0.5, 0.2]",
        "key 'cap_attainment' must be a positive number or empty, got -1.0",
        "components #2 (id 'x'): key 'type' must be one of commission, attainment_bonus, kpi_bonus, draw, got 'bonus'",
        "components #3 (id 'logos'): key 'kpi' must be one of bookings, margin, product_bookings",
        "key 'steps': give either steps = [[threshold, amount], ...] or per_unit",
        "plans #2 (id 'ae'), components #1 (id 'draw'): key 'amount' must be a number, got 'lots'",
        "contests #1 (id 'c1'): key 'shares' must be non-negative and add up to 1, got [0.7, 0.7]",
        "assignments #1: key 'plan' names no plan of this file: 'nope'",
    ]
    for part in expected:
        assert part in message, part
    assert len(info.value.problems) >= len(expected)
    assert isinstance(info.value, ConfigError) and info.value.exit_code == 2


def test_plan_rules_found_after_parsing_are_listed_too():
    spec = {
        "plans": [
            {
                "id": "a",
                "effective_from": "2025-01-01",
                "effective_to": "2024-01-01",
                "components": [
                    {"type": "draw", "id": "d", "amount": 1.0},
                    {"type": "draw", "id": "d", "amount": 2.0},
                ],
            },
            {"id": "a", "effective_from": "2025-01-01", "components": []},
        ],
        "roles": {"AE": ["A1"], "Senior": ["A1"]},
    }
    with pytest.raises(PlanFileError) as info:
        plan_book_from_mapping(spec, source="inline")
    text = str(info.value)
    for part in (
        "plans #1 (id 'a'): key 'effective_to' is before effective_from (2025-01-01)",
        "component ids must be unique in a plan, repeated: d",
        "a plan has at most one draw",
        "plans #2 (id 'a'): key 'components': a plan needs at least one component",
        "[roles]: agent 'A1' is listed under both 'AE' and 'Senior'",
        "plans: id 'a' is used by more than one plan",
    ):
        assert part in text, part


def test_a_missing_or_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_plan_book(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("plans = [", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_plan_book(bad)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_example_plan_files_read_and_round_trip(path):
    book = load_plan_book(path)
    assert plan_book_from_mapping(plan_book_to_mapping(book), source=str(path)) == book
    kinds = {type(c) for p in book.plans for c in p.components}
    if path.stem == "example":  # the showcase has every kind; the draft drops the KPI bonuses on purpose
        assert kinds == {Commission, AttainmentBonus, KpiBonus, Draw} and book.contests
    else:
        assert kinds == {Commission, AttainmentBonus, Draw} and not book.contests


def test_the_example_has_every_component_and_measure_the_issue_lists():
    book = load_plan_book(ROOT / "plans" / "example.toml")
    comps = [c for p in book.plans for c in p.components]
    assert {c.kpi for c in comps if isinstance(c, KpiBonus)} >= {
        "new_accounts",
        "win_rate",
        "activities",
        "product_bookings",
    }
    assert any(c.method == "retroactive" for c in comps if isinstance(c, Commission))
    assert any(c.tiers[-1].rate < c.tiers[-2].rate for c in comps if isinstance(c, Commission) and len(c.tiers) > 2)
    assert {c.top_n is not None for c in book.contests} == {True, False}  # a top N and a bar
    assert book.assignments and any(p.max_tenure_months for p in book.plans) and any(p.effective_to for p in book.plans)
