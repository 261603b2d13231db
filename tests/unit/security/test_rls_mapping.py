"""The repository -> department mapping is checked before it reaches the database."""

from __future__ import annotations

import pytest

from dataplatform.security.rls import DepartmentConfigError, department_role, validate_mapping


def test_valid_mapping_passes() -> None:
    mapping = {"encode/httpx": "web", "psf/requests": "platform_2"}
    assert validate_mapping(mapping) == mapping
    assert department_role("web") == "dept_web"


@pytest.mark.parametrize(
    "mapping",
    [
        {"httpx": "web"},
        {"encode/httpx": "Web"},
        {"encode/httpx": ""},
        {"encode/httpx": "web; drop role x"},
        {"encode/httpx": "x" * 41},
        {"a/b/c": "web"},
    ],
)
def test_malformed_mapping_is_refused(mapping: dict[str, str]) -> None:
    with pytest.raises(DepartmentConfigError):
        validate_mapping(mapping)
