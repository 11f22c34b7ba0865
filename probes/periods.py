"""Parse period strings of art catalogues into year spans; what cannot be read is reported, never guessed.

`parse_period(text)` returns a `Period` — a `(start_year, end_year)` tuple (inclusive, CE) with an
`approximate` flag — or None. Accepted forms (case and surrounding spaces ignored):

=============================  ==================  ==============================================
text                           span                rule
=============================  ==================  ==============================================
'XV century', 'xviii century'  1401–1500           any canonical Roman numeral (parsed, validated)
'15th century', '21st c.'      1401–1500           ordinal century (1st, 2nd, 3rd, Nth)
'1800s'                        1800–1899           four digits ending in 00 + s: the hundred years
'1890s'                        1890–1899           decade
'early/mid/late 1800s'         1800–1832 / ...     thirds of the span: early 1800–1832, mid
                                                   1833–1866, late 1867–1899 (also on centuries
                                                   and decades)
'1701 to 1725', '1701-1725'    1701–1725           range ('to', '-', '–', '—'); start <= end <= present
'2001 to present'              2001–`present`      `present` is an argument, default 2025
'1889'                         1889–1889           a single year (3 or 4 digits)
'c. 1810', 'circa 1810',       1810–1810           circa prefix on any form above: same span,
'ca. 1810', 'c1810'                                `approximate=True`
'before 1300', 'after 1900'    None                open-ended: no span to take a midpoint of
anything else                  None                ('', 'unknown', 'XIIII century', '1725 to 1701')
=============================  ==================  ==============================================

Decisions: centuries follow the catalogue convention 'XV century' = 1401–1500, but the colloquial '1800s'
= 1800–1899 (so '1900s' means the hundred years 1900–1999, not the decade 1900–1909). Spans that begin
after `present`, and explicit ranges that end after it, are refused; a century or decade still in
progress ends at `present` ('XXI century' → 2001–2025). `century(start, end)` is the century of the
span's midpoint (1-based: 1900 is in the 19th century, 1901 in the 20th).
"""
from __future__ import annotations

import re

PRESENT = 2025

_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
_ROMAN_OUT = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
              (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
_CIRCA = re.compile(r"^(?:circa|ca\.?|c\.?)\s*(?=\d|[ivxlcdm]+\s+cent|early|mid|late)")
_QUALIFIER = re.compile(r"^(early|mid|middle|late)[\s-]+(.+)$")
_CENTURY_ROMAN = re.compile(r"^([ivxlcdm]+)\s+century$")
_CENTURY_ORDINAL = re.compile(r"^(\d{1,2})(st|nd|rd|th)\s+(?:century|cent\.|c\.)$")
_DECADE = re.compile(r"^(\d{3,4})'?s$")
_RANGE = re.compile(r"^(\d{3,4})\s*(?:to|-|–|—)\s*(\d{3,4}|present)$")
_YEAR = re.compile(r"^(\d{3,4})$")
_OPEN = re.compile(r"^(?:before|after|until|since|pre|post)\b")


class Period(tuple):
    """(start_year, end_year), inclusive, with `approximate` for circa dates. Compares as a plain tuple."""

    def __new__(cls, start: int, end: int, approximate: bool = False):
        self = super().__new__(cls, (int(start), int(end)))
        self.approximate = approximate
        return self

    @property
    def start(self) -> int:
        return self[0]

    @property
    def end(self) -> int:
        return self[1]


def roman_to_int(text: str) -> int | None:
    """Value of a canonical Roman numeral ('XIV' → 14); None for anything else ('IIII', 'VX', 'ABC')."""
    text = text.upper()
    if not text or any(ch not in _ROMAN for ch in text):
        return None
    total = 0
    for ch, nxt in zip(text, text[1:] + " "):
        value = _ROMAN[ch]
        total += -value if nxt in _ROMAN and _ROMAN[nxt] > value else value
    return total if total > 0 and int_to_roman(total) == text else None


def int_to_roman(value: int) -> str:
    out = []
    for amount, symbol in _ROMAN_OUT:
        count, value = divmod(value, amount)
        out.append(symbol * count)
    return "".join(out)


def _century_span(number: int) -> tuple[int, int] | None:
    return (100 * (number - 1) + 1, 100 * number) if number >= 1 else None


def _span(text: str, present: int) -> tuple[int, int] | None:
    """The span of an unqualified, non-circa form, or None."""
    if m := _CENTURY_ROMAN.match(text):
        number = roman_to_int(m.group(1))
        return _century_span(number) if number else None
    if m := _CENTURY_ORDINAL.match(text):
        number = int(m.group(1))
        return _century_span(number) if m.group(2) == _ordinal(number) else None
    if m := _DECADE.match(text):
        year = int(m.group(1))
        width = 100 if year % 100 == 0 else 10 if year % 10 == 0 else 0
        return (year, year + width - 1) if width else None
    if m := _RANGE.match(text):
        start = int(m.group(1))
        end = present if m.group(2) == "present" else int(m.group(2))
        return (start, end) if start <= end <= present else None
    if m := _YEAR.match(text):
        return (int(m.group(1)),) * 2
    return None


def _third(span: tuple[int, int], which: str) -> tuple[int, int]:
    start, end = span
    third = (end - start + 1) // 3
    if which == "early":
        return start, start + third - 1
    if which == "late":
        return end - third + 1, end
    return start + third, end - third


def parse_period(text, present: int = PRESENT) -> Period | None:
    """(start_year, end_year) of a period string, or None when it cannot be read without guessing."""
    if not isinstance(text, str):
        return None
    text = " ".join(text.strip().lower().split())
    approximate = bool(_CIRCA.match(text))
    if approximate:
        text = _CIRCA.sub("", text, count=1)
    if not text or _OPEN.match(text):
        return None
    qualifier = None
    if m := _QUALIFIER.match(text):
        qualifier, text = ("mid" if m.group(1) == "middle" else m.group(1)), m.group(2)
    span = _span(text, present)
    if span is None or not 1 <= span[0] <= present:
        return None
    span = (span[0], min(span[1], present))             # 'XXI century' → 2001–present
    if qualifier:
        if span[0] == span[1]:
            return None                                  # 'early 1810': no thirds of a single year
        span = _third(span, qualifier)
    return Period(*span, approximate=approximate)


def century(start: int, end: int) -> int:
    """1-based century of the span's midpoint: (1401, 1500) → 15, (1900, 1900) → 19."""
    midpoint = (start + end) / 2
    return int((midpoint - 1) // 100) + 1


def century_label(number: int) -> str:
    """'15th century' (sorts chronologically as a string for centuries 10–99)."""
    return f"{number}{_ordinal(number)} century"


def _ordinal(number: int) -> str:
    return {1: "st", 2: "nd", 3: "rd"}.get(number % 10 if number % 100 not in (11, 12, 13) else 0, "th")
