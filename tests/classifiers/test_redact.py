"""Redaction removes personal data before text leaves the system."""

from __future__ import annotations

import pytest

from classifiers.redact import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ring me on 07700 900123", "ring me on [phone]"),
        ("or +44 7700 900 123 after 6", "or [phone] after 6"),
        ("office (01772) 892400", "office [phone]"),
        ("email sam.jones+uni@uclan.ac.uk please", "email [email] please"),
        ("my postcode is PR1 2HE", "my postcode is [postcode]"),
        ("lives at pr12he", "lives at [postcode]"),
        ("car reg AB12 CDE, also ab12cde", "car reg [vehicle], also [vehicle]"),
        ("old plate P123 ABC", "old plate [vehicle]"),
        ("student number G20123456", "student number [student-number]"),
        ("id 20123456 on my card", "id [student-number] on my card"),
        ("@UCLanCampusCops it was @lad_99", "[handle] it was [handle]"),
    ],
)
def test_personal_data_is_replaced_with_labels(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_ordinary_text_and_roads_survive() -> None:
    text = "Took the A6 then the M6 at 10:30 on 12/11/2026, 3 bikes stolen 🚲 سرقت"
    assert redact(text) == text
