"""A built wheel carries and reads its own data: the schemas as package data, the contract tests
and the docs as the copies `check` and its citations need. The wheel is built offline by the
build backend (hatchling) and imported from an unpacked copy, away from the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from runpod_testkit.openapi import openapi_json
from runpod_testkit.schemas import schema_names

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_a_built_wheel_reads_its_schemas_from_itself(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "--target", "wheel", "-d", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("runpod_testkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in schema_names():
        assert f"runpod_testkit/_data/schemas/{name}.schema.json" in names
    assert "runpod_testkit/_data/contract/conftest.py" in names
    assert "runpod_testkit/_docs/README.md" in names
    assert not any(name.startswith("schemas/") for name in names)

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        import runpod_testkit
        from runpod_testkit import check_command, schemas
        from runpod_testkit.openapi import openapi_json
        validator = schemas.ContractValidator()
        found = validator.check("run.response", {"id": "a1", "status": "IN_QUEUE"})
        print(json.dumps({
            "package": str(Path(runpod_testkit.__file__).parent),
            "schema_dir": str(schemas.SCHEMA_DIR),
            "names": schemas.schema_names(),
            "ok": found.ok,
            "contract": str(check_command.contract_dir()),
            "openapi": openapi_json(),
        }))
        """
    )
    # The unpacked wheel comes first on the path, before the checkout's editable install.
    env = {**os.environ, "PYTHONPATH": str(site)}
    ran = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)
    package = site / "runpod_testkit"
    assert Path(seen["package"]) == package
    assert Path(seen["schema_dir"]) == package / "_data" / "schemas"
    assert seen["names"] == schema_names()
    assert seen["ok"] is True
    assert Path(seen["contract"]) == package / "_data" / "contract"
    # Same document from the wheel (version aside: the checkout may be installed as another).
    from_wheel, from_checkout = json.loads(seen["openapi"]), json.loads(openapi_json())
    from_wheel["info"].pop("version")
    from_checkout["info"].pop("version")
    assert from_wheel == from_checkout
