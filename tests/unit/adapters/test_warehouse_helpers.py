from __future__ import annotations

import pyarrow as pa
import pytest

from dataplatform.adapters.warehouse import _csv_bytes, _to_pyformat, hmac_email, hmac_emails


def test_hmac_email_known_vector() -> None:
    # RFC 4231, test case 2.
    assert (
        hmac_email("what do ya want for nothing?", b"Jefe")
        == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_hmac_emails_vectorised_matches_scalar_and_keeps_nulls() -> None:
    values = pa.chunked_array([["a@x.org", None, "b@y.org"], ["a@x.org", "", "ü@z.de"]])
    hashed = hmac_emails(values, b"key").to_pylist()
    expected = [hmac_email(v, b"key") if v is not None else None for v in values.to_pylist()]
    assert hashed == expected
    assert hashed[1] is None
    assert hashed[0] == hashed[3]
    assert all(len(h) == 64 for h in hashed if h is not None)
    assert hmac_emails(pa.array(["a@x.org"]), b"other")[0].as_py() != hashed[0]


def test_hmac_emails_empty_array() -> None:
    assert hmac_emails(pa.array([], pa.string()), b"k").to_pylist() == []


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT ? , ?", "SELECT %s , %s"),
        ("SELECT '?' , ?", "SELECT '?' , %s"),
        (
            "SELECT 'it''s ?%' WHERE a LIKE 'x%' AND b = ?",
            "SELECT 'it''s ?%%' WHERE a LIKE 'x%%' AND b = %s",
        ),
        (
            'SELECT "we?ird" FROM t WHERE x = ? -- why? 5%\n',
            'SELECT "we?ird" FROM t WHERE x = %s -- why? 5%%\n',
        ),
        ("SELECT 10 % 3 = ?", "SELECT 10 %% 3 = %s"),
    ],
)
def test_question_mark_placeholders_become_pyformat(sql: str, expected: str) -> None:
    assert _to_pyformat(sql) == expected


def test_csv_distinguishes_null_from_empty_string() -> None:
    table = pa.table({"s": ["", None, 'a "q",\nb'], "n": pa.array([1, None, 3], pa.int32())})
    assert _csv_bytes(table) == b'"","1"\n,\n"a ""q"",\nb","3"\n'
