"""How a number, a header, a scale and a markdown table are written, everywhere in the report."""

from __future__ import annotations

from components.evaluation.report.prose import HEADERS
from components.evaluation.report.schema import LOWER_IS_BETTER


def cell(value: float | None, printed: bool = False) -> str:
    """A measured value to 4 decimals; a published one exactly as the paper prints it."""
    if value is None:
        return "–"
    return str(value) if printed else f"{value:.4f}"


def count(row: dict) -> str:
    """A row's cases, blank where it has none (a published row, a task's row)."""
    return "" if row["cases"] is None else str(row["cases"])


def column_header(column: str) -> str:
    if column in HEADERS:
        return HEADERS[column]
    return f"{column} {'↓' if column in LOWER_IS_BETTER else '↑'}"


def scale_key(scale: str) -> tuple[float, str]:
    number = scale.rstrip("MKk")
    return (float(number), scale) if number.replace(".", "", 1).isdigit() else (float("inf"), scale)


def markdown_table(headers: list[str], body: list[list[str]], labels: int = 1) -> list[str]:
    """A markdown table: the first `labels` columns are names (left), the rest numbers (right)."""
    rule = "|" + "---|" * labels + "---:|" * (len(headers) - labels)
    return ["| " + " | ".join(headers) + " |", rule, *("| " + " | ".join(b) + " |" for b in body)]
