"""Charge points and places of the engine's memory: numbered the same whether a batch's rows
carry their strings only or also the reader's place codes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from daemon.checks.places import Places
from daemon.records import SessionBatch

# (pdc, station, unit, siren, entity) per row; FRA01 moves to another station in page 2
PAGES = [
    [
        ("FRA01", "ST1", "FRA", "111", "e"),
        ("FRA02", "ST1", "FRA", "111", "e"),
        ("FRA01", "ST1", "FRA", "111", "e"),
        ("FRA03", "ST2", "FRB", "222", ""),
    ],
    [
        ("FRA02", "ST1", "FRA", "111", "e"),
        ("FRA01", "ST9", "FRA", "111", "e"),
        ("FRA04", "ST2", "FRB", "222", ""),
        ("FRA01", "ST9", "FRA", "111", "e"),
    ],
]


def _batch(rows: list[tuple[str, ...]], codes: list[int] | None) -> SessionBatch:
    pdc, station, unit, siren, entity = (list(field) for field in zip(*rows, strict=True))
    count = len(rows)
    times = np.arange(count, dtype=np.int64)
    return SessionBatch(
        source="qualicharge",
        session_id=[f"s{index}" for index in range(count)],
        pdc=pdc,
        station=station,
        operational_unit=unit,
        siren=siren,
        entity=entity,
        start_ns=times,
        end_ns=times + 1,
        energy_kwh=np.ones(count),
        max_power_kw=np.ones(count),
        updated_ns=times,
        place_codes=None if codes is None else np.asarray(codes, np.int64),
    )


def _codes(rows: list[tuple[str, ...]]) -> list[int]:
    """A directory's codes: one per distinct place of the page, numbered from 3 upwards."""
    directory: dict[tuple[str, ...], int] = {}
    return [directory.setdefault(row, 3 + 2 * len(directory)) for row in rows]


def test_place_codes_number_rows_as_their_strings_do() -> None:
    """A page with place codes is numbered as the same page without them, each row's number
    naming its own charge point facts, a moved charge point included."""
    plain, coded = Places(), Places()
    for rows in PAGES:
        page = _batch(rows, None)
        pdcs = plain.pdc_numbers(page.pdc)
        numbers = plain.numbers(page, pdcs)
        coded_page = _batch(rows, _codes(rows))
        coded_pdcs = coded.pdc_numbers(coded_page.pdc, coded_page.place_codes)
        assert coded_pdcs.tolist() == pdcs.tolist()
        assert coded.numbers(coded_page, coded_pdcs).tolist() == numbers.tolist()
        assert [plain[number] for number in numbers.tolist()] == rows
    assert len(plain) == len(coded) == 5  # FRA01 in two places


def test_place_codes_follow_the_rows_they_belong_to() -> None:
    """`take` keeps each row's code; a code column of another length, or with a negative
    code, is refused."""
    rows = PAGES[1]
    page = _batch(rows, _codes(rows))
    taken = page.take([3, 0])
    assert taken.place_codes is not None
    assert taken.place_codes.tolist() == [page.place_codes[3], page.place_codes[0]]  # type: ignore[index]
    with pytest.raises(ValueError, match="place_codes has 2 rows, not 4"):
        replace(page, place_codes=np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="negative code"):
        replace(page, place_codes=np.asarray([0, 1, -1, 1], np.int64))
