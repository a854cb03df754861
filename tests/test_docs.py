"""The docs site: it builds strictly, its references are generated, and no page carries a
measured figure typed by hand (docs/hooks.py includes those from files the pipeline or a
benchmark wrote) or a commit hash."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]

# A number followed by a unit of what a run measures: memory, compute, throughput, time,
# shares and ratios. In a page these may only arrive through an include line.
NUMBER = r"(?<![\w.])\d(?:[\d,.]*\d)?"
MEASURED = re.compile(
    NUMBER + r"\s*(?:KiB|MiB|GiB|TiB|KB|MB|GB|TB|[TGP]?FLOPs?\b|FLOP/s|samples?/s|samples per "
    r"second|ms\b|s\b|sec\b|seconds?\b|min\b|minutes?\b|h\b|hours?\b|%)"
    # a measured ratio has decimals (3.42×); 8×8 or 2 × 768 is a shape
    r"|(?<![\w.])\d+\.\d+\s*×"
)
# Scores typed into a table (0.119): at least three decimals.
SCORE = re.compile(r"(?<![\w.])\d+\.\d{3,}\b")
# A commit-like token: 7 to 40 hex digits with at least one digit and one letter.
COMMIT = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b")
# Figures the paper publishes (its hardware, its training time), quoted, not measured here.
PAPER = ("80 GB", "4.6 hours", "38 samples/s")


def load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prose(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines that are not code, not include lines and not links'
    targets: what a reader reads as typed text."""
    hooks, out, fenced = load_hooks(), [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or hooks.INCLUDE.match(line):
            continue
        out.append((number, re.sub(r"`[^`]*`|\]\([^)]*\)", "", line)))
    return out


def hand_typed(path: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for number, line in prose(path.read_text(encoding="utf-8")):
        checked = line
        for quote in PAPER:
            checked = checked.replace(quote, "")
        where = f"{path.relative_to(root)}:{number}"
        if match := MEASURED.search(checked):
            problems.append(f"{where}: measured figure {match.group(0)!r} typed by hand")
        if line.lstrip().startswith("|") and (match := SCORE.search(checked)):
            problems.append(f"{where}: score {match.group(0)!r} typed into a table")
        if match := COMMIT.search(line):
            problems.append(f"{where}: commit-like token {match.group(0)!r}")
    return problems


def test_rule_catches_typed_figures(tmp_path):
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    page.write_text(
        "| stage | peak |\n|---|---|\n| features | 1,423 MiB |\n"
        "It reached 19.6 samples/s on one GPU.\n| ours | 0.119 |\nmeasured on df45e68\n"
        "```\nregionedit train  # 20 s on this CPU: code, not prose\n```\n"
        '{{ include("reports/tables.md") }}\n'
    )
    problems = hand_typed(page, root=tmp_path)
    assert [p.split(": ", 1)[1].split(" ")[0] for p in problems] == [
        "measured", "measured", "score", "commit-like",
    ]  # fmt: skip


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_hand_typed_measurements(path):
    assert hand_typed(path) == []


def tracked() -> set[str] | None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return set(listed.splitlines())


def test_includes_name_committed_files():
    """The docs build runs in a fresh clone before any `dvc repro`: an include of a file that
    only the pipeline writes would break it there."""
    hooks, files = load_hooks(), tracked()
    if files is None:
        pytest.skip("not a git checkout")
    named = {
        (page.relative_to(ROOT), path, view)
        for page in SOURCES
        for path, view in hooks.includes(page.read_text(encoding="utf-8"))
    }
    assert named, "no page includes a generated file"
    pictures = {
        (page.relative_to(ROOT), picture)
        for page in SOURCES
        for picture in re.findall(r"\]\((?:\.\./)*generated/([^)\s]+)\)", page.read_text("utf-8"))
    }
    assert [(str(page), path) for page, path, _ in sorted(named) if path not in files] == []
    assert [(str(page), path) for page, path in sorted(pictures) if path not in files] == []
    for _, path, view in named:
        assert hooks.render(path, view).strip()


def test_site_builds_strictly_with_generated_references(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is in the test extra: pip install -e '.[test]'")
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]

    import typer

    from components.config import Params
    from flows.cli import app

    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for name in typer.main.get_command(app).commands:
        assert f"regionedit {name}" in cli
    params = (site / "reference" / "params" / "index.html").read_text(encoding="utf-8")
    for section, field in Params.model_fields.items():
        assert section in params, field
    for page in site.rglob("*.html"):
        text = re.sub(r"(?s)<script.*?</script>", "", page.read_text(encoding="utf-8"))
        text = re.sub(r"<[^>]+>", " ", text)
        assert not COMMIT.search(re.sub(r"\s+", " ", text)), page
