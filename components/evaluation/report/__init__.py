"""The paper's Tables 2-4 beside ours, the world's known answers and checks, and a scaling plot.

Table 2 (Emu Edit): CLIP_dir, CLIP_out, L1, CLIP_img, DINO. Table 3 (MagicBrush): L1, L2,
CLIP-I, DINO, CLIP-T, single- and multi-turn. Table 4 (loss ablation, Emu Edit). Measured rows:
ours per scale, InstructPix2Pix and the copy of the input (a trivial baseline), all in the same
harness, each labelled with its profile, training samples and where its models' weights come
from; ours adds its mean region fraction, share of empty regions and, on MagicBrush, region IoU.
Published rows come from `published.yaml`. A metric scored by a random model says so.

Known answers (DESIGN §10): where a test set knows each edit's region and target, every system's
region overlap and edit success beside the trivial baselines and the ceiling, so that no number
can look good alone. World models: each world model checked alone, and the loss landscape
(metrics/world.json).

One job a module: `schema` (what each table holds), `prose` (every sentence and title),
`formatting` (cells, headers, markdown tables), `tables` (the paper's rows), `known` (the known
answers' rows), `verdicts` (the world checks judged), `plots` (scaling.png) and `markdown`
(tables.md and the CSVs).
"""

from components.evaluation.report.known import KnownAnswers, known_answers
from components.evaluation.report.markdown import metric_notes, write_report
from components.evaluation.report.tables import load_published, report_tables
from components.evaluation.report.verdicts import landscape_verdict

__all__ = [
    "KnownAnswers",
    "known_answers",
    "landscape_verdict",
    "load_published",
    "metric_notes",
    "report_tables",
    "write_report",
]
