"""mkdocs hooks: the pages and tables that are generated, never typed.

- `reference/cli.md` is written from the Typer app (`flows.cli.app`), `reference/params.md`
  from the pydantic config models (`components.config.Params`), at every build.
- A line `{{ include("PATH") }}` or `{{ include("PATH", "VIEW") }}` in a page is replaced by
  that file, rendered: a markdown file whole, or its section whose heading starts with VIEW;
  a CSV as a table; a benchmark's JSON through the named view (`VIEWS`). PATH is relative to
  the repository root and must be a file committed in git (tests/test_docs.py), so that the
  docs build in a fresh clone, before any `dvc repro`. Every measured table in the docs comes
  in this way; pages themselves carry none (tests/test_docs.py enforces it).
"""

from __future__ import annotations

import ast
import csv
import inspect
import json
import posixpath
import re
import statistics
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INCLUDE = re.compile(r'^\{\{\s*include\("([^"]+)"(?:,\s*"([^"]+)")?\)\s*\}\}\s*$')
# Pictures the pipeline and the benchmarks draw, served under generated/ (see `asset`).
PICTURES = ("reports/*.png", "benchmarks/results/*.png", "models/world/curves.png")


class IncludeError(ValueError):
    """An include names a missing file, section or view."""


# ---------------------------------------------------------------- mkdocs events


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    pages = {"reference/cli.md": cli_reference(), "reference/params.md": params_reference()}
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    for pattern in PICTURES:
        for picture in sorted(ROOT.glob(pattern)):
            path = picture.relative_to(ROOT).as_posix()
            files.append(File.generated(config, asset(path), abs_src_path=str(picture)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return expand(markdown, page.file.src_uri)


def asset(path: str) -> str:
    """Where a picture of the repository (`reports/pairs.png`) is served in the site."""
    return f"generated/{path}"


# ---------------------------------------------------------------- includes


def expand(markdown: str, page: str = "index.md") -> str:
    """The page (`page`: its path under docs/) with each include line replaced by the file it
    names, rendered; pictures an included markdown file shows are linked where they are served."""
    out, fenced = [], False
    for line in markdown.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        match = None if fenced else INCLUDE.match(line)
        out.append(render(match.group(1), match.group(2), page) if match else line)
    return "\n".join(out)


def includes(markdown: str) -> list[tuple[str, str | None]]:
    """(path, view) of every include line of a page, outside code blocks."""
    found, fenced = [], False
    for line in markdown.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and (match := INCLUDE.match(line)):
            found.append((match.group(1), match.group(2)))
    return found


def render(path: str, view: str | None = None, page: str = "index.md") -> str:
    file = ROOT / path
    if not file.is_file():
        raise IncludeError(f"include: {path} does not exist (it must be a file committed in git)")
    if file.suffix == ".md":
        text = file.read_text(encoding="utf-8")
        if not view:  # the whole file, under the including page's own title
            text = re.sub(r"\A#\s[^\n]*\n+", "", text)
        body = relink(section(text, view, path) if view else text, path, page)
    elif file.suffix == ".csv":
        with file.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        body = table(rows[0], rows[1:])
    elif file.suffix == ".json":
        if view not in VIEWS:
            raise IncludeError(f"include: {path} needs a view, one of {sorted(VIEWS)}")
        body = VIEWS[view](json.loads(file.read_text(encoding="utf-8")))
    else:
        raise IncludeError(f"include: {path}: only .md, .csv and .json files are rendered")
    return f"{body.rstrip()}\n\n*Generated file: `{path}`.*\n"


def relink(text: str, path: str, page: str) -> str:
    """Relative picture links of an included file, pointed at where the site serves them."""

    def move(match: re.Match) -> str:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path), match.group(2)))
        if "://" in match.group(2) or not any(Path(target).match(p) for p in PICTURES):
            return match.group(0)
        served = posixpath.relpath(asset(target), posixpath.dirname(page) or ".")
        return f"{match.group(1)}({served})"

    return re.sub(r"(!\[[^\]]*\])\(([^)\s]+)\)", move, text)


def section(text: str, title: str, path: str) -> str:
    """The section of a markdown file whose heading starts with `title`, up to the next
    heading of the same or a higher level."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        match = re.match(r"(#+)\s+(.*)", line)
        if match and match.group(2).startswith(title):
            level = len(match.group(1))
            end = next(
                (
                    i
                    for i in range(start + 1, len(lines))
                    if (m := re.match(r"(#+)\s", lines[i])) and len(m.group(1)) <= level
                ),
                len(lines),
            )
            return "\n".join(lines[start:end])
    raise IncludeError(f"include: {path} has no heading starting with {title!r}")


def table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".")


def number(value: float | None, spec: str, scale: float = 1.0) -> str:
    return "" if value is None else format(value * scale, spec)


# ---------------------------------------------------------------- benchmark views

TERA, GIB, MIB = 1e12, 2**30, 2**20


def ladder(result: dict) -> str:
    """benchmarks/train_step.py: one row per setting, each against the one it names (`vs`)."""
    per = result.get("batch", 1)
    timed = any("samples_per_second" in s.get("training_step", {}) for s in result["settings"])
    header = ["setting", "vs", "TFLOP / training sample", "TFLOP / edit"]
    if timed:
        header += ["s / step", "samples/s", "speed-up vs its `vs`", "peak GiB"]
    rate = {
        s["name"]: s.get("training_step", {}).get("samples_per_second") for s in result["settings"]
    }
    rows = []
    for entry in result["settings"]:
        step, edit = entry.get("training_step", {}), entry.get("edit", {})
        note = entry.get("skipped") or entry.get("error")
        if note or not step:
            blank = [""] * (len(header) - 3)
            rows.append([entry["name"], entry.get("vs"), first_sentence(note or "not run"), *blank])
            continue
        flops = step.get("flops_per_sample") or step["flops"] / per
        row = [entry["name"], entry.get("vs"), number(flops, ".2f", 1 / TERA)]
        row.append(number(edit.get("flops"), ".2f", 1 / TERA))  # an edit is one image
        if timed:
            here, before = step.get("samples_per_second"), rate.get(entry.get("vs"))
            row += [
                number(step.get("seconds"), ".2f"),
                number(here, ".2f"),
                f"{here / before:.2f}×" if here and before else "",
                number(step.get("peak_bytes"), ".1f", 1 / GIB),
            ]
        rows.append(row)
    return f"{result.get('machine', '')}, batch {per}, {result.get('resolution')} px.\n\n" + table(
        header, rows
    )


def components(result: dict) -> str:
    """benchmarks/train_step.py: TFLOP per training sample of each component, per setting."""
    per = result.get("batch", 1)
    settings = [s for s in result["settings"] if s.get("training_step", {}).get("components")]
    names = list(settings[0]["training_step"]["components"]) if settings else []
    rows = [
        [s["name"]]
        + [
            number(s["training_step"]["components"].get(n, {}).get("flops"), ".3f", 1 / TERA / per)
            for n in names
        ]
        for s in settings
    ]
    return table(["setting", *(n.replace("_", " ") for n in names)], rows)


def data_scale(result: dict) -> str:
    """benchmarks/data_scale.py: each stage's rate, peak memory and bytes per sample."""
    rows = [
        [
            "source (write)",
            number(result["samples"], ","),
            number(result.get("source_seconds"), ".0f"),
            number(result["samples"] / result["source_seconds"], ",.0f")
            if result.get("source_seconds")
            else "",
            "",
            "",
            number(result.get("source_bytes_per_sample"), ",.0f"),
        ]
    ]
    for name, stage in result["stages"].items():
        rows.append(
            [
                name,
                number(stage.get("inputs"), ","),
                number(stage.get("seconds"), ".0f"),
                number(stage.get("samples_per_s"), ",.0f"),
                number(stage.get("peak_rss_mib"), ",.0f"),
                number(stage.get("peak_tree_mib"), ",.0f"),
                number(stage.get("bytes_per_sample"), ",.0f"),
            ]
        )
    header = ["stage", "inputs", "seconds", "samples/s", "own peak MiB", "tree peak MiB",
              "bytes / sample"]  # fmt: skip
    return (
        f"{result['samples']:,} samples, {result.get('machine', '')}; "
        f"`{result.get('command', '')}`.\n\n" + table(header, rows)
    )


def _pooled(run: dict, metric: str) -> float:
    parts = [run[name] for name in ("emu_edit", "magicbrush") if name in run]
    return sum(p[metric] * p["edits"] for p in parts) / sum(p["edits"] for p in parts)


def training_cost(result: dict) -> str:
    """benchmarks/training_cost.py: the world's quality under each training-step generator,
    both test sets' edits pooled, mean over seeds (per seed in brackets)."""
    rows = []
    for entry in result["settings"]:
        runs = sorted(entry["runs"], key=lambda r: r["seed"])
        ious = [_pooled(r, "region_iou") for r in runs]

        def mean(metric: str, runs: list = runs) -> str:
            return f"{statistics.mean(_pooled(r, metric) for r in runs):.3f}"

        rows.append(
            [
                entry["name"],
                f"{entry['resolution']} px, {entry['steps']}, {entry['guidance_scale']:g}",
                f"{statistics.mean(ious):.3f} (" + ", ".join(f"{v:.3f}" for v in ious) + ")",
                len(runs),
                mean("edit_success"),
                mean("region_fraction"),
                mean("empty_region"),
            ]
        )
    header = ["setting", "world: side, K, guidance", "region IoU, mean (per seed)", "seeds",
              "edit success", "region fraction", "empty"]  # fmt: skip
    return (
        f"Scale {result['scale']} ({result['training_samples']} training samples), "
        f"{result['models']}.\n\n" + table(header, rows)
    )


def head_forms(result: dict) -> str:
    """benchmarks/head_forms.py: the two forms of the region head at the start of training."""
    rows = []
    for form, r in result["forms"].items():
        rows.append(
            [
                form,
                f"{r['p_region_std_across_patches_at_init']:.4f}",
                " → ".join(f"{v:.3f}" for v in r["l_clip_first5_last5"]),
                " → ".join(f"{v:.3f}" for v in r["mask_fraction_first_last"]),
                f"{r['mask_cells_changed']:.3f}",
            ]
        )
    header = ["form", "P_region std across patches at init", "L_CLIP, first 5 → last 5 steps",
              "mask fraction, first → last", "mask cells changed"]  # fmt: skip
    return f"{result['steps']} steps, `{result['models']}`.\n\n" + table(header, rows)


def metrics(result: dict) -> str:
    """Any flat or nested metrics JSON: one row per leaf value."""

    def leaves(value: Any, prefix: str = "") -> list[list[Any]]:
        if isinstance(value, dict):
            return [row for k, v in value.items() for row in leaves(v, f"{prefix}{k}.")]
        if isinstance(value, float):
            value = f"{value:.4g}"
        return [[prefix.rstrip("."), value]]

    return table(["key", "value"], leaves(result))


def release(result: dict) -> str:
    """models/world/manifest.json: the world release's checks and what each model cost."""
    made = result.get("trained_by", {})
    checks = table(
        ["check (on the fp16 files)", "value"],
        [[name, f"{value:.4f}"] for name, value in sorted(result.get("checks", {}).items())],
    )
    models = table(
        ["model", "wall time (min)", "check points on its curve", "last check"],
        [
            [
                name,
                number(model.get("wall_s"), ".1f", 1 / 60),
                len(model.get("curve", [])),
                number(model["curve"][-1]["check"], ".4f") if model.get("curve") else "",
            ]
            for name, model in result.get("models", {}).items()
        ],
    )
    where = f"seed {made.get('seed')}, {made.get('device')} ({made.get('machine')}), " + (
        f"torch {made.get('torch')}"
    )
    return f"Trained on {where}.\n\n{checks}\n\n{models}"


VIEWS: dict[str, Callable[[dict], str]] = {
    "release": release,
    "ladder": ladder,
    "components": components,
    "data-scale": data_scale,
    "training-cost": training_cost,
    "head-forms": head_forms,
    "metrics": metrics,
}


# ---------------------------------------------------------------- references


def cli_reference() -> str:
    """Every `regionedit` command with its options, from the Typer app itself."""
    import typer
    from typer._click.core import Context

    from flows.cli import app

    group = typer.main.get_command(app)
    out = [
        "# CLI reference",
        "",
        "Generated at build time from the Typer app (`flows/cli.py`); "
        "`regionedit COMMAND --help` prints the same.",
        "",
    ]
    for name, command in group.commands.items():
        if command.hidden:
            continue
        ctx = Context(command, info_name=name)
        out += [f"## `regionedit {name}`", "", inspect.cleandoc(command.help or ""), ""]
        rows = [p.get_help_record(ctx) for p in command.params if not p.hidden]
        rows = [(f"`{opt}`", what) for opt, what in filter(None, rows)]
        if rows:
            out += [table(["option", "what"], rows), ""]
    return "\n".join(out)


def params_reference() -> str:
    """Every params.yaml key: type, default and the comment the config model gives it."""
    from pydantic import BaseModel

    from components import config

    out = [
        "# Params reference",
        "",
        "Generated at build time from the pydantic models in `components/config.py`, which "
        "parse `params.yaml` (and every profile in `infra/profiles/`). An unknown key or a wrong "
        "type fails with a message naming both.",
        "",
    ]

    embedded = config.load_params(ROOT / "params.yaml").model_dump()
    header = ["key", "type", "default", "params.yaml", "what"]

    def model_rows(model: type[BaseModel], prefix: str) -> tuple[list, list]:
        notes, rows, nested = field_comments(model), [], []
        for name, field in model.model_fields.items():
            kind, key = field.annotation, f"{prefix}{name}"
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                nested.append((key, kind))
                continue
            value = embedded
            for part in key.split("."):
                value = value[part]
            here, base = shown(value), shown(field.get_default(call_default_factory=True))
            differs = f"`{here}`" if here != base else ""
            rows.append([f"`{key}`", type_name(kind), f"`{base}`", differs, notes.get(name, "")])
        return rows, nested

    rows, sections = model_rows(config.Params, "")
    out += [
        "The `params.yaml` column is the embedded default's value where it differs from the "
        "model's default.",
        "",
        "## Top level",
        "",
        inspect.cleandoc(config.Params.__doc__ or ""),
        "",
        table(header, rows),
        "",
    ]
    while sections:
        key, model = sections.pop(0)
        rows, nested = model_rows(model, f"{key}.")
        out += [f"## `{key}`", "", inspect.cleandoc(model.__doc__ or ""), ""]
        out += [table(header, rows), ""]
        sections = nested + sections
    return "\n".join(out)


def field_comments(model: type) -> dict[str, str]:
    """The comments beside (or just above) each field in the model's source."""
    lines = inspect.getsource(model).splitlines()
    fields = {
        node.target.id: node.lineno
        for node in ast.parse(textwrap.dedent("\n".join(lines))).body[0].body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }
    notes = {}
    for name, lineno in fields.items():
        line = lines[lineno - 1]
        above = []
        i = lineno - 2
        while i >= 0 and lines[i].strip().startswith("#"):
            above.insert(0, lines[i].strip().lstrip("# "))
            i -= 1
        beside = line.split("  # ", 1)[1].strip() if "  # " in line else ""
        notes[name] = " ".join([*above, beside]).strip()
    return notes


def type_name(kind: Any) -> str:
    text = kind.__name__ if isinstance(kind, type) else str(kind)
    return "`" + text.replace("typing.", "").replace("NoneType", "None") + "`"


def shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else repr(value)
