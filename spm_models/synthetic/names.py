"""Deterministic names for the synthetic organisation: people, territories, accounts, products.

Everything here is plain data plus vectorised look-ups; nothing is random except through the
generator passed in, so a seed fixes every name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["person_names", "territory_names", "account_names", "PRODUCTS", "SECTORS"]

_FIRST = (
    "Aaliyah Adam Adrian Aisha Alan Alice Amara Amir Ana Andre Anika Anton Ava Beatriz Ben Bianca "
    "Carla Carlos Chen Chloe Clara Daniel Dara David Diego Elena Eli Emeka Emma Eric Fatima Felix "
    "Fiona Gabriel Grace Hana Hassan Ines Isaac Ivan Jade James Jana Javier Jin Joao Julia Kai Kenji "
    "Laila Lars Leah Liam Lina Lucas Maya Mei Mila Nadia Noah Nora Omar Oscar Paula Priya Rafael Rosa "
    "Sam Sara Sofia Tariq Theo Uma Victor Wei Yara Yusuf Zara Zoe"
).split()
_LAST = (
    "Abbott Adeyemi Alvarez Andersen Baker Banerjee Becker Bianchi Brooks Campbell Castro Chen Costa "
    "Dalton Diaz Dubois Eriksen Evans Fischer Flores Garcia Gomez Grant Gupta Hansen Harris Hoffmann "
    "Ito Jansen Jensen Kaur Kim Kowalski Larsen Lee Lopez Marino Martin Meyer Moreau Murphy Nakamura "
    "Nguyen Novak Okafor Olsen Ortiz Park Patel Perez Petrov Quinn Ramos Reyes Rossi Russo Sato "
    "Schmidt Silva Singh Smith Sousa Stein Suzuki Tanaka Taylor Torres Vance Vargas Walker Wang "
    "Weber Wilson Wong Yamamoto Young Zhang Ziegler"
).split()
_INITIALS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))

_CITIES = (
    "Amsterdam,Atlanta,Austin,Barcelona,Berlin,Boston,Brisbane,Brussels,Buenos Aires,Calgary,"
    "Chicago,Copenhagen,Dallas,Denver,Dubai,Dublin,Edinburgh,Frankfurt,Geneva,Hamburg,Helsinki,"
    "Hong Kong,Houston,Istanbul,Johannesburg,Lagos,Lisbon,London,Los Angeles,Lyon,Madrid,"
    "Manchester,Melbourne,Mexico City,Miami,Milan,Minneapolis,Montreal,Mumbai,Munich,Nairobi,"
    "New York,Oslo,Paris,Philadelphia,Phoenix,Prague,Rome,San Francisco,Santiago,Sao Paulo,Seattle,"
    "Seoul,Singapore,Stockholm,Sydney,Tokyo,Toronto,Vancouver,Vienna,Warsaw,Zurich"
).split(",")

_ACCOUNT_A = (
    "Apex Blue Bright Cedar Clear Coastal Crown Delta Eagle Evergreen First Golden Granite Harbor "
    "Iron Keystone Lakeside Maple Meridian North Oak Pacific Pioneer Prime Red Silver Summit "
    "Sterling Union Vertex"
).split()
_ACCOUNT_B = (
    "Analytics Bio Capital Cloud Data Dynamics Energy Foods Freight Health Industries Labs Logistics "
    "Media Medical Metals Mining Motors Networks Partners Pharma Power Retail Robotics Software "
    "Systems Telecom Textiles Travel Works"
).split()
_ACCOUNT_S = "Inc,Ltd,Group,Holdings,Co,Corp,GmbH,LLC,SA,plc,AG,BV".split(",")

#: Customer sectors, drawn uniformly per account.
SECTORS: tuple[str, ...] = (
    "retail",
    "technology",
    "healthcare",
    "finance",
    "manufacturing",
    "energy",
    "telecom",
    "logistics",
    "public sector",
    "media",
)

#: The product catalogue: (product_id, product_name, series, list_price, share of opportunities).
PRODUCTS: tuple[tuple[str, str, str, float, float], ...] = (
    ("P01", "Core Basic", "Core", 1_200.0, 0.22),
    ("P02", "Core Pro", "Core", 4_800.0, 0.20),
    ("P03", "Core Plus", "Core", 9_500.0, 0.14),
    ("P04", "Insight Analytics", "Insight", 7_200.0, 0.16),
    ("P05", "Insight Analytics Pro", "Insight", 15_000.0, 0.10),
    ("P06", "Enterprise Suite", "Enterprise", 38_000.0, 0.08),
    ("P07", "Support Plus", "Services", 2_500.0, 0.10),
)


def person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct "First Last" names; a middle initial is added when the pool runs short.

    The pool has ``len(first) * len(last)`` (about 6,100) plain names; beyond that every name
    gets a middle initial (about 160,000 names).
    """
    nf, nl = len(_FIRST), len(_LAST)
    first = np.array(_FIRST, dtype=object)
    last = np.array(_LAST, dtype=object)
    if n <= nf * nl:
        code = rng.choice(nf * nl, size=n, replace=False)
        return first[code % nf] + " " + last[code // nf]
    pool = nf * nl * len(_INITIALS)
    if n > pool:
        raise ValueError(f"at most {pool} distinct person names are available, {n} were asked for")
    code = rng.choice(pool, size=n, replace=False)
    ini = _INITIALS.astype(object)[(code // (nf * nl))]
    plain = code % (nf * nl)
    return first[plain % nf] + " " + ini + ". " + last[plain // nf]


def territory_names(n: int) -> np.ndarray:
    """Names of ``n`` territories: city names, numbered when more territories than cities."""
    cities = np.array(_CITIES, dtype=object)
    idx = np.arange(n)
    names = cities[idx % len(cities)]
    lap = idx // len(cities)
    suffix = np.where(lap > 0, " " + (lap + 1).astype(str).astype(object), "")
    return names + suffix


def account_names(index: np.ndarray) -> pd.Series:
    """Company-like names for pool positions ``index`` (distinct for distinct positions).

    Names cycle through ``A x B x suffix`` combinations in a scrambled order; positions past
    the number of combinations get a trailing number.
    """
    index = np.asarray(index, dtype=np.int64)
    na, nb, ns = len(_ACCOUNT_A), len(_ACCOUNT_B), len(_ACCOUNT_S)
    combos = na * nb * ns
    # 7,919 is prime and coprime with the number of combinations: a bijection that scrambles.
    code = (index % combos) * 7_919 % combos
    a = np.array(_ACCOUNT_A, dtype=object)[code % na]
    b = np.array(_ACCOUNT_B, dtype=object)[(code // na) % nb]
    s = np.array(_ACCOUNT_S, dtype=object)[code // (na * nb)]
    lap = index // combos
    suffix = np.where(lap > 0, " " + (lap + 1).astype(str).astype(object), "")
    return pd.Series(a + " " + b + " " + s + suffix, dtype="str")
