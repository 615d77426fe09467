"""Property-based fuzzing of every service's OpenAPI document (schemathesis): no
input makes a service answer 500, and every answer matches the published spec."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from oms_devtools.stack import SERVICES, Stack
from oms_runtime.auth import mint_token

from ..conftest import JWT_SECRET

# What a request does to one process does not depend on how many replicas run: the
# replica pass leaves this out.
pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]

# Not checked, on purpose:
# - positive_data_acceptance: some rules cannot be said in JSON Schema (an opaque
#   cursor must come from a previous page; a delivery note may be known already), so
#   schema-valid input is sometimes rightly refused with a 4xx;
# - allow_header_conformance: one path's methods are separate routes, and Starlette's
#   405 lists only those of the route it matched.
EXCLUDED_CHECKS = "positive_data_acceptance,allow_header_conformance"


@pytest.mark.parametrize("service", SERVICES)
def test_no_generated_request_breaks_the_service_or_the_spec(
    service: str, stack: Stack, tmp_path: Path
) -> None:
    admin = mint_token(JWT_SECRET, "fuzzer", "admin")
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{stack.url(service)}/openapi.json",
            "--header",
            f"Authorization: Bearer {admin}",
            "--checks",
            "all",
            "--exclude-checks",
            EXCLUDED_CHECKS,
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--seed",
            "20261125",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,  # schemathesis writes its cache next to where it runs
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
