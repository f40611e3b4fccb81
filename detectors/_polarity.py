"""Polarity handling shared by the sequential detectors."""

from __future__ import annotations

from typing import Literal

__all__: list[str] = []

Polarity = Literal["increase", "decrease", "both"]
POLARITIES = ("increase", "decrease", "both")


def check_polarity(polarity: str) -> str:
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    return polarity


def check_prob(name: str, value: float, low: float = 0.0, high: float = 1.0) -> float:
    if not low < value < high:
        raise ValueError(f"{name} must be in ({low}, {high}), got {value}")
    return float(value)


def check_int(name: str, value: int, low: int) -> int:
    if int(value) != value or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value}")
    return int(value)
