"""Every CSV export of the console writes through `writer`, so a cell a spreadsheet would run as a
formula (a usage description such as `=HYPERLINK(...)` comes from the operator's product) is
written as text: a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a `'`
in front. Plain numbers (`-1.50`) are left as they are: they are no formula."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeWriter:
    """csv.writer whose cells pass `safe_cell`. Lines end in CRLF (RFC 4180), so a cell holding a
    carriage return or a newline is quoted and stays one cell."""

    def __init__(self, out: TextIO):
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(value) for value in row])


def writer(out: TextIO) -> SafeWriter:
    return SafeWriter(out)
