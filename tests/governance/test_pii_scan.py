"""PII detectors and the scanner: planted values are found, checksum look-alikes are not, clean data
stays clean, and large files are read in chunks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from modelward.errors import ConfigError
from modelward.governance.pii import scan_file, scan_frame
from modelward.governance.pii_detectors import column_hint, find, mask

EMAILS = ["john.doe@example.com", "a.b+tag@mail.example.org", "zoe_99@sub.example.co.uk"]
CARDS = ["4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "4012888888881881"]
IBANS = ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "FR1420041010050500013M02606"]
PHONES = ["+44 20 7946 0958", "+33 1 23 45 67 89", "(415) 555-2671", "+49 30 901820"]
# Look-alikes: a digit changed breaks the Luhn check or the mod-97 check.
BAD_CARDS = ["4111 1111 1111 1112", "5555-5555-5555-4445", "4012888888881882"]
BAD_IBANS = ["GB82 WEST 1234 5698 7654 33", "DE89370400440532013001", "FR1420041010050500013M02607"]


def planted() -> pd.DataFrame:
    rows = []
    for i in range(12):
        rows.append(
            {
                "customer_id": f"C{i:04d}",
                "contact": EMAILS[i % 3] if i < 9 else None,
                "comment": f"call me on {PHONES[i % 4]} please",
                "payment": CARDS[i % 4] if i % 2 == 0 else BAD_CARDS[i % 3],
                "account": IBANS[i % 3] if i % 2 == 0 else BAD_IBANS[i % 3],
                "amount": 10.5 * i,
            }
        )
    return pd.DataFrame(rows)


def _counts(report: object) -> dict[str, dict[str, int]]:
    return {c.column: c.counts for c in report.columns}  # type: ignore[attr-defined]


def test_planted_emails_cards_ibans_and_phones_are_all_found_and_look_alikes_ignored() -> None:
    report = scan_frame(planted())
    counts = _counts(report)
    assert counts["contact"] == {"email": 9}
    assert counts["comment"] == {"phone": 12}
    assert counts["payment"] == {"card": 6}  # the six Luhn-valid ones; six Luhn-invalid ignored
    assert counts["account"] == {"iban": 6}  # mod-97-invalid ignored
    assert "customer_id" not in counts and "amount" not in counts
    assert report.found and report.rows == 12


def test_every_planted_value_is_found_on_its_own() -> None:
    for kind, values in (("email", EMAILS), ("card", CARDS), ("iban", IBANS), ("phone", PHONES)):
        for value in values:
            assert [m.kind for m in find(f"x {value} y")] == [kind], value
    for value in BAD_CARDS + BAD_IBANS:
        assert find(value) == [], value


def test_ssn_ips_and_dates_of_birth() -> None:
    assert [m.kind for m in find("ssn 123-45-6789")] == ["ssn"]
    for never_issued in ("000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567", "123-45-0000"):
        assert find(never_issued) == [], never_issued
    assert [m.kind for m in find("from 192.168.10.20")] == ["ipv4"]
    assert find("version 1.2.3.456") == []  # 456 is no octet
    assert [m.kind for m in find("from 2001:db8::8a2e:370:7334")] == ["ipv6"]
    assert find("at 12:30:45") == []
    # A date is a date of birth only in a labelled context or a column whose name says so.
    assert find("invoice 1985-03-12") == []
    assert [m.kind for m in find("born 12/03/1985 in Lyon")] == ["dob"]
    assert [m.kind for m in find("1985-03-12", hint="dob")] == ["dob"]
    assert find("2999-01-01", hint="dob") == []  # not yet born


def test_column_names_hint_at_what_they_hold() -> None:
    assert column_hint("customer_email") == "email"
    assert column_hint("DateOfBirth") == "dob"
    assert column_hint("phone-number") == "phone"
    assert column_hint("SSN") == "ssn"
    assert column_hint("mailbox_size") is None
    assert column_hint("estimated_salary") is None
    report = scan_frame(pd.DataFrame({"ssn": [None, None], "age": [1, 2]}))
    assert [(c.column, c.hint, c.counts) for c in report.columns] == [("ssn", "ssn", {})]
    assert report.found and report.totals() == {"column_name": 1}


def test_examples_are_masked() -> None:
    assert mask("email", "john.doe@example.com") == "j***@e***.com"
    assert mask("card", "4111 1111 1111 1234") == "**** **** **** 1234"
    assert mask("ssn", "123-45-6789") == "***-**-6789"
    report = scan_frame(planted())
    shown = " ".join(e for c in report.columns for ex in c.examples.values() for e in ex)
    for raw in EMAILS + CARDS + IBANS + PHONES:
        assert raw not in shown


def test_the_clean_churn_data_has_no_findings(tmp_path: Path) -> None:
    from tests.conftest import EXAMPLES, _load_example

    generate = _load_example("churn_generate", EXAMPLES / "churn" / "generate.py")
    frame = generate.generate(5_000, seed=3)  # type: ignore[attr-defined]
    assert not scan_frame(frame).found
    frame.to_csv(tmp_path / "churn.csv", index=False)
    frame.to_parquet(tmp_path / "churn.parquet")
    assert scan_file(tmp_path / "churn.csv").to_dict()["columns"] == []
    assert not scan_file(tmp_path / "churn.parquet").found


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_large_files_are_read_in_chunks(tmp_path: Path, suffix: str) -> None:
    frame = pd.concat([planted()] * 500, ignore_index=True)  # 6,000 rows
    path = tmp_path / f"big.{suffix}"
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path)
    seen: list[tuple[int, int | None]] = []
    report = scan_file(path, chunk_rows=1_000, on_chunk=lambda rows, total: seen.append((rows, total)))
    assert [rows for rows, _ in seen] == [1_000 * i for i in range(1, 7)]
    assert {total for _, total in seen} == ({6_000} if suffix == "parquet" else {None})
    assert _counts(report)["payment"] == {"card": 3_000}
    sampled = scan_file(path, chunk_rows=1_000, sample=2_500)
    assert sampled.rows == 2_500


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(ConfigError, match=r"cannot read .*bad\.parquet"):
        scan_file(tmp_path / "bad.parquet")
    with pytest.raises(ConfigError, match="no such file"):
        scan_file(tmp_path / "missing.csv")
    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"use a \.csv, \.tsv or \.parquet file"):
        scan_file(tmp_path / "data.json")


def test_lists_of_ids_are_not_read_as_card_numbers_but_strings_inside_lists_are_scanned(
    tmp_path: Path,
) -> None:
    import numpy as np

    items = [[3, 14, 15, 22, 40, 41, 57, 60, 77, 90], [4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]]
    frame = pd.DataFrame(
        {
            "item_ids": [np.array(row) for row in items],
            "contacts": [["no one", "ann@example.org"], ["4111 1111 1111 1111"]],
        }
    )
    frame.to_parquet(tmp_path / "requests.parquet")

    for report in (scan_frame(frame), scan_file(tmp_path / "requests.parquet")):
        assert report.totals() == {"email": 1, "card": 1}
        assert [c.column for c in report.columns] == ["contacts"]
