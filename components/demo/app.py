"""The Gradio page of `regionedit demo`: input and instruction on the left; the input, P_region
as a heat map and the edit on the right, each scale's edit in a row for "all scales"."""

from __future__ import annotations

import os
import random

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline machines: no telemetry

import gradio as gr  # noqa: E402  (after the telemetry switch it reads at import)

from components.demo.session import (  # noqa: E402
    DemoInputError,
    DemoSession,
    HeadEdit,
    Settings,
    Source,
    describe_failure,
)
from components.training.outputs import NO_TRAINED_HEAD  # noqa: E402

TITLE = "RegionEdit: where the model edits"
CSS = """
#input-image img, #edited img, #repainted img, #region img {
    image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain;
}
#message { color: #b3261e; font-weight: 600; }
"""
# System fonts only: the default theme would ask Google Fonts, which offline browsers wait on.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
)
IMAGE_HEIGHT = 320
REGION_LABEL = "P_region, dark 0 to bright 1 (white: P > τ; green: the truth)"


def build_app(session: DemoSession, seed: int = 0) -> gr.Blocks:
    """The page over `session`; `seed` orders the world scenes the button draws."""
    defaults, draws = session.default_settings(), random.Random(seed)
    notice = "" if session.heads else f"warning: {NO_TRAINED_HEAD}"
    with gr.Blocks(title=TITLE) as app:
        source = gr.State(None)
        gr.Markdown(
            f"# {TITLE}\nA region head picks the pixels to repaint; a frozen inpainting "
            "model repaints only those. Everything outside the region is the input."
        )
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="upload an image", type="filepath", elem_id="upload")
                world = gr.Button("a world scene", elem_id="world-scene")
                scene_info = gr.Markdown(elem_id="scene-info")
                suggestions = gr.Radio(
                    label="instructions with a known answer", visible=False, elem_id="suggested"
                )
                instruction = gr.Textbox(
                    label="instruction",
                    placeholder="make the red circle blue",
                    elem_id="instruction",
                )
                t_o = gr.Textbox(
                    label="t_o, what the input shows (empty: the captioner writes it)",
                    elem_id="t-o",
                )
                model = gr.Dropdown(
                    session.choices, value=session.default_choice, label="model", elem_id="model"
                )
                with gr.Accordion("advanced", open=False):
                    steps = gr.Slider(
                        1, 100, defaults.steps, step=1, label="steps", elem_id="steps"
                    )
                    guidance = gr.Slider(
                        1,
                        20,
                        defaults.guidance_scale,
                        step=0.5,
                        label="guidance",
                        elem_id="guidance",
                    )
                    tau = gr.Slider(0, 1, defaults.tau, step=0.01, label="τ", elem_id="tau")
                    seed_box = gr.Number(defaults.seed, precision=0, label="seed", elem_id="seed")
                run = gr.Button("edit", variant="primary", elem_id="run")
                message = gr.Markdown(notice, elem_id="message")
            with gr.Column(scale=2):
                with gr.Row():
                    shown = gr.Image(
                        label="input",
                        interactive=False,
                        elem_id="input-image",
                        height=IMAGE_HEIGHT,
                        format="png",
                    )
                    region = gr.Image(
                        label=REGION_LABEL,
                        interactive=False,
                        elem_id="region",
                        height=IMAGE_HEIGHT,
                        format="png",
                    )
                    edited = gr.Image(
                        label="edit",
                        interactive=False,
                        elem_id="edited",
                        height=IMAGE_HEIGHT,
                        format="png",
                    )
                repainted = gr.Image(
                    label="repainted pixels (the hard region, feathered)",
                    interactive=False,
                    elem_id="repainted",
                    height=IMAGE_HEIGHT // 2,
                    format="png",
                )
                scales = gr.Gallery(
                    label="each scale's edit",
                    columns=5,
                    rows=1,
                    height="auto",
                    visible=False,
                    elem_id="scales",
                    format="png",
                    object_fit="contain",
                )
                scale_regions = gr.Gallery(
                    label="each scale's P_region",
                    columns=5,
                    rows=1,
                    height="auto",
                    visible=False,
                    elem_id="scale-regions",
                    format="png",
                )
                report = gr.Markdown(elem_id="report")

        def on_upload(path: str | None):
            try:
                loaded = session.load_upload(path)
            except DemoInputError as err:
                return None, None, f"error: {err}", "", gr.Radio(visible=False), ""
            return loaded, loaded.image, notice, f"**{loaded.name}**", gr.Radio(visible=False), ""

        def on_world():
            drawn = session.draw_scene(draws)
            scene = drawn.scene
            info = f"**{drawn.name}** of the world test set (seed {scene.seed}): “{scene.caption}”"
            choices = gr.Radio(scene.instructions, value=scene.instructions[0], visible=True)
            return drawn, drawn.image, notice, info, choices, scene.caption, scene.instructions[0]

        def on_edit(
            chosen: Source | None,
            words: str,
            choice: str,
            caption: str,
            step_count: float,
            guidance_scale: float,
            threshold: float,
            seed_value: float | None,
            progress=gr.Progress(),  # noqa: B008  (Gradio's way to ask for a progress bar)
        ):
            settings = Settings(
                int(step_count), float(guidance_scale), float(threshold), int(seed_value or 0)
            )
            try:
                edits = session.edit(
                    chosen,
                    words,
                    choice,
                    caption,
                    settings,
                    lambda share, what: progress(share, desc=what),
                )
            except Exception as err:  # every failure becomes a message on the page
                hidden = gr.Gallery(visible=False)
                return None, None, None, hidden, hidden, "", describe_failure(err)
            last, many = edits[-1], len(edits) > 1
            row = gr.Gallery([(e.result.image, _caption(e)) for e in edits], visible=many)
            heats = gr.Gallery([(e.heat_map, e.head.scale) for e in edits], visible=many)
            text = _report(edits, settings, choice)
            return last.result.image, last.heat_map, last.result.mask, row, heats, text, notice

        upload.upload(on_upload, upload, [source, shown, message, scene_info, suggestions, t_o])
        world.click(
            on_world, None, [source, shown, message, scene_info, suggestions, t_o, instruction]
        )
        suggestions.input(lambda chosen: chosen, suggestions, instruction)
        run.click(
            on_edit,
            [source, instruction, model, t_o, steps, guidance, tau, seed_box],
            [edited, region, repainted, scales, scale_regions, report, message],
        )
    return app


def serve(session: DemoSession, host: str, port: int, share: bool) -> None:
    """Serve the page until interrupted."""
    app = build_app(session)
    app.queue(default_concurrency_limit=1)  # one edit at a time: the models are shared
    app.launch(
        server_name=host,
        server_port=port,
        share=share,
        theme=THEME,
        css=CSS,
        ssr_mode=False,
        footer_links=[],
        show_error=False,
    )


def _caption(edit: HeadEdit) -> str:
    judged = edit.verdict
    verdict = "" if judged is None else f" · success {judged.success:.0f} · IoU {judged.iou:.2f}"
    return f"{edit.head.scale or edit.head.label} · {edit.seconds:.2f} s{verdict}"


def _report(edits: list[HeadEdit], settings: Settings, choice: str) -> str:
    """t_o and t_e with who wrote each, the time taken, and each head's verdict."""
    first = edits[0].result
    lines = [
        f"**t_o** “{first.original_description}” — {first.original_source}  ",
        f"**t_e** “{first.target_description}” — {first.target_source}  ",
        f"**settings** {settings.steps} steps · guidance {settings.guidance_scale} · "
        f"τ {settings.tau} · seed {settings.seed}",
        "",
        "| head | time | repainted | edit success | IoU |",
        "|---|---|---|---|---|",
    ]
    for edit in edits:
        share = (
            sum(edit.result.mask.getdata())
            / 255
            / (edit.result.mask.width * edit.result.mask.height)
        )
        judged = edit.verdict
        success = "—" if judged is None else f"{judged.success:.0f}"
        iou = "—" if judged is None else f"{judged.iou:.2f}"
        lines.append(
            f"| {edit.head.label} | {edit.seconds:.2f} s | {share:.0%} | {success} | {iou} |"
        )
    if all(edit.verdict is None for edit in edits):
        lines.append(
            "\nNo verdict: only a world scene's suggested instructions have a known answer."
        )
    total = sum(edit.seconds for edit in edits)
    lines.append(f"\n**time** {total:.2f} s for {len(edits)} edit(s) ({choice})")
    return "\n".join(lines)
