"""A three-person organisation whose statements are computed by hand in the tests.

Quarters of 2025: Q1 has 90 days, Q2 91, Q3 92. A1 is an Account Executive from before the
data; A2 is hired on 15 February 2025 (a ramp plan with a recoverable draw for six months,
then the AE plan); A3 is an AE put on the senior plan from 15 August 2025 by an assignment.
The AE plan changes on 1 July 2025 (h1 -> h2).
"""

from __future__ import annotations

import pandas as pd

from spm_models.data.dataset import Dataset
from spm_models.data.validation import validate
from spm_models.insights.incentives import plan_book_from_mapping

BOOK = {
    "name": "Handmade plans",
    "default_role": "AE",
    "plans": [
        {
            "id": "h1",
            "effective_from": "2025-01-01",
            "effective_to": "2025-06-30",
            "roles": ["AE"],
            "min_tenure_months": 6,
            "components": [
                {"type": "commission", "id": "commission", "tiers": [[0.0, 0.05], [1.0, 0.08]], "cap_attainment": 2.0},
                {"type": "attainment_bonus", "id": "club", "steps": [[1.0, 1000.0]]},
                {"type": "kpi_bonus", "id": "logos", "kpi": "new_accounts", "steps": [[2, 200.0]]},
                {
                    "type": "kpi_bonus",
                    "id": "demos",
                    "kpi": "activities",
                    "segment": "demo",
                    "period": "month",
                    "steps": [[10, 100.0]],
                },
            ],
        },
        {
            "id": "h2",
            "effective_from": "2025-07-01",
            "roles": ["AE"],
            "min_tenure_months": 6,
            "components": [
                {"type": "commission", "id": "commission", "tiers": [[0.0, 0.04], [1.0, 0.10]]},
                {"type": "attainment_bonus", "id": "club", "steps": [[1.0, 2000.0]]},
            ],
        },
        {
            "id": "ramp",
            "effective_from": "2025-01-01",
            "max_tenure_months": 6,
            "components": [
                {"type": "commission", "id": "commission", "tiers": [[0.0, 0.05], [1.0, 0.08]]},
                {"type": "draw", "id": "draw", "amount": 3000.0, "recoverable": True, "quarters": 2},
            ],
        },
        {
            "id": "senior",
            "effective_from": "2025-01-01",
            "roles": ["Senior"],
            "components": [{"type": "commission", "id": "commission", "tiers": [[0.0, 0.10]]}],
        },
    ],
    "contests": [
        {
            "id": "q1",
            "kpi": "bookings",
            "from": "2025-01-01",
            "to": "2025-03-31",
            "pool": 1000.0,
            "top_n": 2,
            "shares": [0.6, 0.4],
        }
    ],
    "assignments": [{"agent": "A3", "plan": "senior", "from": "2025-08-15"}],
}

#: (agent, close date, amount, account, outcome)
DEALS = [
    ("A1", "2025-01-20", 60_000, "X1", "won"),
    ("A1", "2025-03-10", 60_000, "X2", "won"),
    ("A1", "2025-02-01", 9_000, "X9", "lost"),
    ("A1", "2025-05-05", 100_000, "X1", "won"),
    ("A1", "2025-08-01", 150_000, "X3", "won"),
    ("A2", "2025-03-01", 10_000, "X4", "won"),
    ("A2", "2025-05-20", 80_000, "X5", "won"),
    ("A2", "2025-07-10", 10_000, "X6", "won"),
    ("A2", "2025-09-10", 30_000, "X7", "won"),
    ("A3", "2025-02-10", 25_000, "X1", "won"),
    ("A3", "2025-07-15", 23_000, "X8", "won"),
    ("A3", "2025-09-01", 20_000, "X8", "won"),
]
QUOTAS = {"A1": (100_000, 100_000, 100_000), "A2": (20_000, 40_000, 40_000), "A3": (50_000, 50_000, 46_000)}
QUARTERS = [("2025-01-01", "2025-03-31"), ("2025-04-01", "2025-06-30"), ("2025-07-01", "2025-09-30")]
DEMOS = [("A1", "2025-01-06", 6), ("A1", "2025-01-13", 5), ("A1", "2025-02-03", 4), ("A3", "2025-03-03", 10)]


def handmade_dataset() -> Dataset:
    deals = pd.DataFrame(
        {
            "opportunity_id": [f"O{i}" for i in range(len(DEALS))],
            "agent_id": [d[0] for d in DEALS],
            "account_id": [d[3] for d in DEALS],
            "product_id": "P1",
            "created_date": "2024-12-01",
            "stage": "negotiation",
            "outcome": [d[4] for d in DEALS],
            "close_date": [d[1] for d in DEALS],
            "amount": [str(d[2]) for d in DEALS],
        }
    )
    targets = pd.DataFrame(
        [
            {"agent_id": a, "territory_id": None, "period_start": s, "period_end": e, "quota": str(q)}
            for a, qs in QUOTAS.items()
            for (s, e), q in zip(QUARTERS, qs)
        ]
    )
    tables = {
        "territories": pd.DataFrame({"territory_id": ["T1", "T2"], "territory_name": ["North", "South"]}),
        "agents": pd.DataFrame(
            {
                "agent_id": ["A1", "A2", "A3"],
                "agent_name": ["Ann", "Bo", "Cy"],
                "territory_id": ["T1", "T1", "T2"],
                "manager": None,
                "hire_date": [None, "2025-02-15", None],
                "leave_date": None,
            }
        ),
        "accounts": pd.DataFrame(
            {
                "account_id": [f"X{i}" for i in range(1, 10)],
                "account_name": [f"Acc {i}" for i in range(1, 10)],
                "sector": None,
            }
        ),
        "products": pd.DataFrame(
            {"product_id": ["P1"], "product_name": ["Core"], "series": ["Core"], "list_price": None}
        ),
        "opportunities": deals,
        "activities": pd.DataFrame(
            {
                "agent_id": [d[0] for d in DEMOS],
                "date": [d[1] for d in DEMOS],
                "activity_type": "demo",
                "count": [str(d[2]) for d in DEMOS],
            }
        ),
        "targets": targets,
    }
    return validate(Dataset(tables={k: v.astype(object) for k, v in tables.items()}, source="handmade"))


def handmade_book(**changes):
    spec = {**BOOK, **changes}
    return plan_book_from_mapping(spec, source="handmade")
