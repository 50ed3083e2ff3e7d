"""The session exclusion rules: codes, thresholds (`SessionRulesConfig`) and their meaning.

Each rule is one bit of a session's `flags`; a session with any bit set is stored with
`accepted=false` and left out of the CARBURE rollup. The per-session rules are those of the
seed notebook and of QualiCharge's TIRUERT filter (duration in total seconds, `enea_max` the
energy the charge point could deliver in that time at its nominal power):

    NEGS  duration < negs_below_s (0)                                  negative duration
    ENEU  energy > eneu_max_kwh (1000)                                 unrealistic energy
    ENEA  energy > enea_factor (1.1) x enea_max                        above possible energy
    ODUS  duration < negs_below_s and energy > odus_min_kwh (1)        energy without duration
    ENEX  energy > enex_min_kwh (50) and > enex_factor (2) x enea_max  far above possible

The neighbour rules compare a session with the one just before it on the same charge point,
in the order (start, end, session id) — the seed's sort, with ties made deterministic:

    DUPS  same start and same end as the previous session (the first one stays accepted)
    OVLP  starts before the previous session ends (the seed's "overlap")

Both are judged independently, as in the seed: a duplicate of a session that lasts more than
zero seconds also starts before its predecessor ends, so it carries DUPS and OVLP.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DUPS",
    "ENEA",
    "ENEU",
    "ENEX",
    "NEGS",
    "NEIGHBOUR_RULES",
    "ODUS",
    "OVLP",
    "RULES",
    "RuleCode",
    "SessionRulesConfig",
    "codes",
    "own_flags",
    "own_flags_array",
]

RuleCode = Literal["NEGS", "ENEU", "ENEA", "ODUS", "ENEX", "DUPS", "OVLP"]

NEGS, ENEU, ENEA, ODUS, ENEX, DUPS, OVLP = 1, 2, 4, 8, 16, 32, 64
RULES: dict[str, int] = {
    "NEGS": NEGS,
    "ENEU": ENEU,
    "ENEA": ENEA,
    "ODUS": ODUS,
    "ENEX": ENEX,
    "DUPS": DUPS,
    "OVLP": OVLP,
}
NEIGHBOUR_RULES = DUPS | OVLP


class SessionRulesConfig(BaseModel):
    """`checks.sessions` in params.json: the exclusion rules' thresholds (DESIGN.md defaults)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True, description="false: every session is accepted (the ledger is still kept)"
    )
    disabled_rules: list[RuleCode] = Field(
        default_factory=list, description='rules never applied, e.g. ["OVLP"]'
    )
    negs_below_s: float = Field(0.0, description="NEGS/ODUS: duration below this (seconds)")
    eneu_max_kwh: float = Field(1000.0, gt=0, description="ENEU: energy above this (kWh)")
    enea_factor: float = Field(1.1, gt=0, description="ENEA: energy above factor x enea_max")
    odus_min_kwh: float = Field(1.0, ge=0, description="ODUS: energy above this (kWh)")
    enex_min_kwh: float = Field(
        50.0, ge=0, description="ENEX: energy above this (kWh); QualiCharge's TIRUERT uses 1000"
    )
    enex_factor: float = Field(2.0, gt=0, description="ENEX: energy above factor x enea_max")
    horizon_days: float = Field(
        35.0,
        gt=0,
        description="sessions kept in memory per charge point (days before its latest start); "
        "older neighbours are read back from the ledger when a late session needs them",
    )

    @property
    def mask(self) -> int:
        """The bits of the rules in force."""
        if not self.enabled:
            return 0
        off = 0
        for code in self.disabled_rules:
            off |= RULES[code]
        return (NEGS | ENEU | ENEA | ODUS | ENEX | DUPS | OVLP) & ~off


def own_flags(
    config: SessionRulesConfig, duration_s: float, energy: float, max_power_kw: float
) -> int:
    """The per-session rule bits (before masking): the readable definition; the engine uses
    `own_flags_array`, the same arithmetic on columns (tests hold them equal)."""
    flags = 0
    if duration_s < config.negs_below_s:
        flags = NEGS
        if energy > config.odus_min_kwh:
            flags |= ODUS
    if energy > config.eneu_max_kwh:
        flags |= ENEU
    enea_max = duration_s / 3600 * max_power_kw
    if energy > enea_max * config.enea_factor:
        flags |= ENEA
    if energy > config.enex_min_kwh and energy > enea_max * config.enex_factor:
        flags |= ENEX
    return flags


def own_flags_array(
    config: SessionRulesConfig,
    duration_s: npt.NDArray[np.float64],
    energy: npt.NDArray[np.float64],
    max_power_kw: npt.NDArray[np.float64],
) -> npt.NDArray[np.int64]:
    """`own_flags` of whole columns at once (the same arithmetic, element by element)."""
    short = duration_s < config.negs_below_s
    enea_max = duration_s / 3600 * max_power_kw
    return (
        np.where(short, NEGS, 0)
        | np.where(short & (energy > config.odus_min_kwh), ODUS, 0)
        | np.where(energy > config.eneu_max_kwh, ENEU, 0)
        | np.where(energy > enea_max * config.enea_factor, ENEA, 0)
        | np.where(
            (energy > config.enex_min_kwh) & (energy > enea_max * config.enex_factor), ENEX, 0
        )
    ).astype(np.int64)


def codes(flags: int) -> list[str]:
    """The rule codes of `flags`, in the canonical order."""
    return [code for code, bit in RULES.items() if flags & bit]
