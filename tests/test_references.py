"""Every reference the suite prints or declares resolves to something a user can open: a page
under docs/ with the anchor it names, or a public URL. Nothing cites files that do not ship
(the developers' notes beside the repository, or the documentation's source file names)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"

DOC_CITATION = re.compile(r"\bdocs/(?P<path>[\w./-]+?\.md)(?:#(?P<anchor>[\w-]+))?")
MARKDOWN_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
ANCHOR = re.compile(r"""<a id="(?P<id>[\w-]+)"></a>""")
NOT_SHIPPED = re.compile(
    r"runpod-api-notes|queue-api-reference|\.\./shared|/work/shared|DESIGN\.md|design card"
    r"|\b[\w/-]+\.mdx\b|§"
)
"""Citations of files a user of the repository cannot open."""

TEXT_SUFFIXES = {".py", ".md", ".json", ".j2", ".js", ".css", ".toml", ".yaml", ".yml", ".conf"}
SHIPPED_TOP_LEVEL = ("Dockerfile", "Dockerfile.emulator", "dev")
# Folders that hold no shipped text: tools' state, builds, run outputs (and hidden folders but
# .github). os.walk does not follow runpod_testkit/_data/contract, the link to contract/.
SKIPPED_FOLDERS = {"__pycache__", "build", "dist", "node_modules", "reports"}


def _shipped_text() -> list[Path]:
    """Every text file of the repository except this one: it spells bad citations on purpose."""
    found = [REPO / name for name in SHIPPED_TOP_LEVEL]
    for folder, subfolders, names in os.walk(REPO):
        subfolders[:] = [
            name
            for name in subfolders
            if name not in SKIPPED_FOLDERS and (name == ".github" or not name.startswith("."))
        ]
        found += (Path(folder) / name for name in names if Path(name).suffix in TEXT_SUFFIXES)
    return [path for path in found if path != Path(__file__).resolve()]


SHIPPED_TEXT = _shipped_text()
README_CITATION = re.compile(r"""\(README: "?(?P<section>[^),"]+)""")
"""`(README: Fault injection)`: a section of the README, named by its heading's first words."""


def anchors_of(page: Path) -> set[str]:
    return {match["id"] for match in ANCHOR.finditer(page.read_text(encoding="utf-8"))}


def unresolved(citation: str) -> str | None:
    """Why `citation` (one piece of a check's ref) cannot be opened, or None if it can."""
    if citation.startswith("https://"):
        return None
    match = DOC_CITATION.fullmatch(citation)
    if match is None:
        return "neither docs/<page>.md#<anchor> nor an https:// URL"
    page = DOCS / match["path"]
    if not page.is_file():
        return f"no page {page.relative_to(REPO)}"
    anchor = match["anchor"]
    if anchor is not None and anchor not in anchors_of(page):
        return f"no anchor #{anchor} in {page.relative_to(REPO)}"
    return None


_COLLECT = """
import json, sys
import pytest

class Refs:
    found = []
    def pytest_collection_modifyitems(self, items):
        for item in items:
            marker = item.get_closest_marker("contract")
            if marker is not None:
                self.found.append([item.nodeid, *marker.args[:2], marker.kwargs.get("ref", "")])

refs = Refs()
status = pytest.main(["contract", "--collect-only", "-q", "-p", "no:cacheprovider"], plugins=[refs])
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump({"status": int(status), "refs": refs.found}, out)
"""


@pytest.fixture(scope="module")
def declared_refs(tmp_path_factory: pytest.TempPathFactory) -> list[list[str]]:
    """(test id, operation, check, ref) of every contract check, as pytest collects them."""
    out = tmp_path_factory.mktemp("refs") / "refs.json"
    subprocess.run(
        [sys.executable, "-c", _COLLECT, str(out)], cwd=REPO, check=True, capture_output=True
    )
    collected = json.loads(out.read_text(encoding="utf-8"))
    assert collected["status"] == 0
    refs: list[list[str]] = collected["refs"]
    return refs


def test_every_contract_check_cites_a_rule_that_resolves(declared_refs: list[list[str]]) -> None:
    assert len(declared_refs) > 50  # the whole suite was collected
    problems = []
    for test_id, operation, check, ref in declared_refs:
        if not ref:
            problems.append(f"{test_id} ({operation}/{check}): no ref")
        for citation in ref.split("; "):
            why = unresolved(citation.strip())
            if why is not None:
                problems.append(f"{test_id} ({operation}/{check}): {citation!r}: {why}")
    assert not problems, "\n".join(problems)


def test_each_check_cites_its_own_anchor(declared_refs: list[list[str]]) -> None:
    """A check's rule is the anchor named after it (auth checks: the 401 rule of the page)."""
    for test_id, _, check, ref in declared_refs:
        assert ref.endswith(f"#{check}"), f"{test_id}: {check} cites {ref}"


def test_every_docs_citation_in_the_repository_resolves() -> None:
    problems = []
    for path in SHIPPED_TEXT:
        text = path.read_text(encoding="utf-8")
        for match in DOC_CITATION.finditer(text):
            why = unresolved(match.group(0))
            if why is not None:
                problems.append(f"{path.relative_to(REPO)}: {match.group(0)}: {why}")
    assert not problems, "\n".join(problems)


def test_links_between_the_docs_pages_resolve() -> None:
    problems = []
    for page in DOCS.rglob("*.md"):
        for match in MARKDOWN_LINK.finditer(page.read_text(encoding="utf-8")):
            target = match["target"]
            if target.startswith("https://"):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.is_file():
                problems.append(f"{page.relative_to(REPO)}: {target}: no such file")
            elif anchor and anchor not in anchors_of(linked):
                problems.append(f"{page.relative_to(REPO)}: {target}: no anchor #{anchor}")
    assert not problems, "\n".join(problems)


def test_every_readme_section_cited_exists() -> None:
    headings = [
        line.lstrip("#").strip()
        for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    ]
    cited = {
        (path.relative_to(REPO).as_posix(), match["section"].strip())
        for path in SHIPPED_TEXT
        for match in README_CITATION.finditer(path.read_text(encoding="utf-8"))
    }
    assert len(cited) >= 3  # the --help texts cite the README this way
    missing = [
        f"{where}: README: {section}"
        for where, section in sorted(cited)
        if not any(heading.startswith(section) for heading in headings)
    ]
    assert not missing, "\n".join(missing)


def test_the_scan_reads_every_kind_of_shipped_text() -> None:
    scanned = {path.relative_to(REPO).as_posix() for path in SHIPPED_TEXT}
    for expected in (
        "README.md",
        "benchmarks/README.md",
        "contract/test_run.py",
        "examples/plain/handler.py",
        "loadtests/locust.conf",
        "runpod_testkit/templates/page.html.j2",
        "runpod_testkit/_data/schemas/run.response.schema.json",
        "tests/targets/variants.py",
        ".github/workflows/ci.yml",
        "Dockerfile",
    ):
        assert expected in scanned, expected
    assert not any(
        name.startswith((".venv/", "runpod_testkit/_data/contract/")) for name in scanned
    )


def test_nothing_cites_files_that_do_not_ship() -> None:
    problems = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in SHIPPED_TEXT
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if NOT_SHIPPED.search(line)
    ]
    assert not problems, "\n".join(problems)


def test_the_resolver_refuses_what_does_not_resolve() -> None:
    assert unresolved("docs/operations/cancel.md#unknown-job-404") is None
    assert unresolved("https://docs.runpod.io/serverless/endpoints/job-states") is None
    assert unresolved("docs/operations/cancel.md#no-such-rule") is not None
    assert unresolved("docs/operations/nowhere.md#shape") is not None
    assert unresolved("runpod-api-notes.md §2.6") is not None


def test_every_operation_has_its_page() -> None:
    from runpod_testkit.operations import OPERATIONS

    names = set(OPERATIONS) - {"status-sync"}
    missing = [name for name in sorted(names) if not (DOCS / "operations" / f"{name}.md").is_file()]
    assert not missing
