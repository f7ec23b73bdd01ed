"""Argument types for the command line: bounds are checked while parsing, before any model loads.

An unbounded number is a resource knob: ``crs search -k 100000000`` grew to 5.3 GB before it
failed. argparse reports a type error as ``crs search: error: argument -k: must be between 1
and 1000, got 100000000`` and exits with status 2.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable


def int_between(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type=`` that accepts whole numbers from ``low`` to ``high``, both included."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in some messages
    return parse
