from __future__ import annotations

import pytest

from dataplatform.registry.semver import FIRST, SemVer, VersionFacts, next_semver, version_label

SIG = (("files_changed", "long"), ("message_length", "long"))
BASE = VersionFacts(run_id="r1", model_family="LogisticRegression", signature_inputs=SIG)


def test_first_version_is_v1_0_0() -> None:
    assert next_semver(None, BASE) == (FIRST, "first version")
    assert str(FIRST) == "v1.0.0"


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (VersionFacts("r2", "LogisticRegression", SIG), SemVer(2, 4, 0)),  # retrained
        (VersionFacts("r1", "LogisticRegression", SIG), SemVer(2, 3, 2)),  # same run
        (VersionFacts("r2", "HistGradientBoostingClassifier", SIG), SemVer(3, 0, 0)),
        (
            VersionFacts("r1", "LogisticRegression", (*SIG, ("has_issue_ref", "long"))),
            SemVer(3, 0, 0),
        ),
        (
            VersionFacts("r2", "LogisticRegression", (("files_changed", "double"), SIG[1])),
            SemVer(3, 0, 0),
        ),
        (VersionFacts("r2", "LogisticRegression", None), SemVer(3, 0, 0)),
        (VersionFacts(None, "LogisticRegression", SIG), SemVer(2, 4, 0)),
    ],
)
def test_bump_rules(current: VersionFacts, expected: SemVer) -> None:
    assert next_semver((SemVer(2, 3, 1), BASE), current)[0] == expected


def test_unknown_family_does_not_force_major() -> None:
    current = VersionFacts("r2", None, SIG)
    assert next_semver((SemVer(1, 0, 0), BASE), current)[0] == SemVer(1, 1, 0)


def test_parse_and_label() -> None:
    assert SemVer.parse("v2.3.1") == SemVer(2, 3, 1)
    assert version_label(SemVer(2, 3, 1), "production") == "v2.3.1-production"
    assert version_label("v1.0.0", None) == "v1.0.0"
    assert version_label(None, "staging") == "unversioned-staging"
    for bad in ("2.3.1", "v2.3", "v2.3.1-production", "vx.1.2"):
        with pytest.raises(ValueError, match="not a semantic version"):
            SemVer.parse(bad)
