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


def add_stage_options(parser: argparse.ArgumentParser) -> None:
    """The dialogue's swappable stages, chosen by name (crs.settings; each registry lists its
    names): the same three options for `crs chat`, `crs eval` and app.py. Left out, each comes
    from its CRS_* variable, else the default."""
    parser.add_argument("--parser", metavar="SPEC", default=None,
                        help="critique parser: rules, llm, fake:SCRIPT.json (default $CRS_PARSER, else llm with "
                             "--llm, else rules)")
    parser.add_argument("--image-reader", metavar="SPEC", default=None, dest="reader",
                        help="image reader: offline, llm, hf:DIR, fake:READING.json (default $CRS_IMAGE_READER, "
                             "else llm with --llm, else offline)")
    parser.add_argument("--reply-writer", metavar="SPEC", default=None, dest="writer",
                        help="reply writer: templates, fake[:TEXT] (default $CRS_REPLY_WRITER or templates)")
