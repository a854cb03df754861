"""`regionedit demo`: the page in a real headless Chromium, and its logic without a browser."""

from __future__ import annotations

import contextlib
import io
import random
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from components.config import load_params
from components.demo.heads import find_heads
from components.demo.pictures import HARD_REGION, TRUTH, heat_map
from components.demo.session import ALL_SCALES, DemoInputError, DemoSession, Settings, Source
from components.demo.world import WorldScene, verdict, world_scene
from components.editing import Editor
from components.training.outputs import NO_TRAINED_HEAD
from tests.conftest import ROOT, free_port, http_server, http_status, scripts_env

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"  # the screenshot, for people to look at (gitignored)
SCALES = ("1M", "2M", "3M", "4M", "5M")
WAIT = 120  # seconds for a page element: an edit on a loaded CI machine takes a few


@pytest.fixture(scope="module")
def home(zoo, world_zoo, tmp_path_factory) -> Path:
    """A folder as a user has it after training: the default params.yaml, the tiny zoo in
    models/zoo, world models in models/world, and a head per scale in checkpoints/ (the seeded
    head moved a little per scale: real weights files, not trained ones)."""
    root = tmp_path_factory.mktemp("demo-home")
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    (root / "models" / "zoo").mkdir(parents=True)
    for name, folder in zoo.items():
        (root / "models" / "zoo" / name).symlink_to(folder, target_is_directory=True)
    (root / "models" / "world").symlink_to(world_zoo["clip"].parent, target_is_directory=True)
    with contextlib.chdir(root):
        seeded = Editor.from_params("params.yaml").model.head.state_dict()
    for k, scale in enumerate(SCALES):
        generator = torch.Generator().manual_seed(k)
        weights = {
            n: v + 0.05 * torch.randn(v.shape, generator=generator) for n, v in seeded.items()
        }
        (root / "checkpoints" / scale).mkdir(parents=True)
        save_file(weights, root / "checkpoints" / scale / "head.safetensors")
    return root


@pytest.fixture(scope="module")
def session(home) -> DemoSession:
    """The session `regionedit demo` serves in `home`, in this process."""
    local = {scale: home / "checkpoints" / scale / "head.safetensors" for scale in SCALES}
    with contextlib.chdir(home):  # params.yaml names its models relative to the folder
        return DemoSession.start(load_params("params.yaml"), local)


@pytest.fixture(scope="module")
def scene(session):
    world = session.params.world
    return world_scene(world.test_seed, world.test_count, world.side, index=4)


def tau_splitting(session: DemoSession, scene: WorldScene, home: Path) -> float:
    """A τ (on the page's 0.01 grid) between two of P_region's values for the 5M head on
    `scene`, with some of the picture above it, nearest a fifth: the feathered region covers some
    of the picture, not all of it."""
    with contextlib.chdir(home):
        edits = session.edit(
            scene_source(scene),
            scene.instructions[0],
            session.default_choice,
            scene.caption,
            Settings(1, 7.5, tau=1.0),  # τ = 1: no generation, P only
        )
    p = np.asarray(edits[0].result.probability) / 255
    values = np.unique(p)
    splits = [(a + b) / 2 for a, b in zip(values, values[1:], strict=False) if b - a > 0.02]
    shares = {round(tau, 2): float((p > tau).mean()) for tau in splits}
    usable = {tau: share for tau, share in shares.items() if 0 < share < 0.5}
    assert usable, f"no τ leaves part of the picture above it: {shares}"
    return min(usable, key=lambda tau: abs(usable[tau] - 0.2))


def scene_source(scene: WorldScene) -> Source:
    return Source(scene.image, f"world scene {scene.index}", scene)


# The page in a real browser


@pytest.fixture(scope="module")
def server(home, tmp_path_factory) -> str:
    """`regionedit demo` on loopback in `home`, as a user starts it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path_factory.mktemp("demo-log") / "demo.log"
    command = ["regionedit", "demo", "--port", str(port)]
    with http_server(command, url, log, cwd=home, env=scripts_env()):
        yield url


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file() or not CHROMEDRIVER.is_file():
        pytest.skip(
            f"{CHROMIUM} or {CHROMEDRIVER} is absent: apt-get install chromium chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="regionedit-chromium-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1600,1100",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Page:
    """The demo page as a user drives it."""

    def __init__(self, driver, url: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.url = driver, url
        self.wait = WebDriverWait(driver, WAIT)
        driver.get(url)
        self.find("#run")

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, css))

    def all(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def upload(self, path: Path) -> None:
        self.find("#upload input[type=file]").send_keys(str(path))

    def type(self, css: str, text: str) -> None:
        box = self.find(css)
        box.clear()
        box.send_keys(text)

    def choose_model(self, label: str) -> None:
        self.find("#model input").click()
        self.find(f"li[aria-label='{label}']").click()

    def set_tau(self, tau: float) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.XPATH, "//button[contains(., 'advanced')]").click()
        self.type("#tau input[type=number]", f"{tau}")
        self.find("#tau input[type=number]").send_keys("\t")

    def edit(self) -> None:
        """Press "edit" and wait for its answer: a new report or a new message."""
        report, message = self.find("#report").text, self.message()
        self.find("#run").click()
        self.wait.until(
            lambda d: (
                not self.busy()
                and (self.find("#report").text != report or self.message() != message)
            )
        )

    def busy(self) -> bool:
        """Whether an output still shows Gradio's progress (its text joins the element's)."""
        trackers = "#report [data-testid=status-tracker], #message [data-testid=status-tracker]"
        return any("hide" not in t.get_attribute("class").split() for t in self.all(trackers))

    def message(self) -> str:
        return self.find("#message").text

    def picture(self, css: str) -> Image.Image:
        """The image an <img> shows, fetched from the server as the browser fetched it."""
        self.wait.until(lambda d: self.all(f"{css} img"))
        with urllib.request.urlopen(self.all(f"{css} img")[0].get_attribute("src")) as answer:
            return Image.open(io.BytesIO(answer.read())).convert("RGB")


def test_the_page_edits_an_uploaded_world_scene_and_shows_the_region(
    server, browser, session, scene, home, tmp_path
):
    tau = tau_splitting(session, scene, home)
    scene.image.save(tmp_path / "scene.png")
    page = Page(browser, server)
    page.upload(tmp_path / "scene.png")
    page.find("#input-image img")
    instruction = scene.instructions[0]
    page.type("#instruction textarea", instruction)
    page.type("#t-o textarea", scene.caption)
    page.set_tau(tau)
    page.edit()
    assert page.message() == "", page.message()
    edited, repainted = page.picture("#edited"), page.picture("#repainted").convert("L")
    source = np.asarray(scene.image)
    assert edited.size == scene.image.size == repainted.size
    outside = np.asarray(repainted) == 0
    report = page.find("#report").text
    assert 0 < outside.mean() < 1, f"τ {tau}: the region is empty or everything; {report}"
    assert np.array_equal(np.asarray(edited)[outside], source[outside])
    assert not np.array_equal(np.asarray(edited)[~outside], source[~outside])
    heat = np.asarray(page.picture("#region"))
    assert (heat == HARD_REGION).all(axis=-1).any()  # the hard mask's outline is drawn
    known = scene.known_edit(instruction)
    assert f"t_e “{known.t_e}” — template writer" in report
    assert f"τ {tau}" in report
    ARTIFACTS.mkdir(exist_ok=True)
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(ARTIFACTS / "demo.png"))


def test_all_scales_shows_five_edits_of_the_same_input_in_one_row(server, browser, tmp_path):
    page = Page(browser, server)
    page.find("#world-scene").click()
    page.find("#input-image img")
    page.choose_model(ALL_SCALES)
    page.edit()
    assert page.message() == "", page.message()
    page.wait.until(lambda d: len(page.all("#scales img")) == len(SCALES))
    tops = {round(img.rect["y"]) for img in page.all("#scales img")}
    assert len(tops) == 1, f"the scales' edits are not in one row: tops {tops}"
    captions = page.find("#scales").text
    assert all(f"{scale} · " in captions for scale in SCALES), captions
    report = page.find("#report").text
    assert all(f"{scale} · checkpoints/{scale}/head.safetensors" in report for scale in SCALES)


def test_bad_input_is_answered_in_the_page_and_the_server_keeps_serving(server, browser, tmp_path):
    (tmp_path / "notes.txt").write_text("not a picture")
    page = Page(browser, server)
    page.upload(tmp_path / "notes.txt")
    page.wait.until(lambda d: "notes.txt" in page.message())
    assert page.message().startswith("error: upload notes.txt: cannot read it as an image")
    page.find("#world-scene").click()
    page.find("#input-image img")
    page.type("#instruction textarea", "   ")
    page.edit()
    assert "instruction must be a non-empty string" in page.message()
    assert "Traceback" not in browser.page_source
    assert http_status(server) == 200
    page.find("#suggested label")
    suggested = page.all("#suggested input[type=radio]")[1].get_attribute("value")
    page.all("#suggested label")[1].click()  # a suggested instruction: one with a known answer
    box = page.find("#instruction textarea")
    page.wait.until(lambda d: box.get_attribute("value") == suggested)
    page.edit()
    assert page.message() == ""
    assert page.picture("#edited").size == page.picture("#input-image").size
    assert "edit success" in page.find("#report").text


# The logic under the page, in this process


def test_a_non_image_and_an_empty_instruction_are_named_with_what_to_do(session, tmp_path):
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(DemoInputError, match="upload notes.txt: cannot read it as an image"):
        session.load_upload(tmp_path / "notes.txt")
    source = session.draw_scene(random.Random(0))
    with pytest.raises(DemoInputError, match="instruction must be a non-empty string"):
        session.edit(source, " ", session.default_choice, None, session.default_settings())
    with pytest.raises(DemoInputError, match="no image"):
        session.edit(None, "make it blue", session.default_choice, None, session.default_settings())


def test_without_trained_heads_the_page_offers_the_untrained_one_and_says_so(home, session):
    with contextlib.chdir(home):
        params = load_params("params.yaml")
    bare = DemoSession(params, session.editor, [], "sqlite:///absent.db")
    assert bare.choices == ["untrained head (seeded; smoke runs only)"]
    assert "no trained head found (run `dvc repro`" in NO_TRAINED_HEAD
    assert find_heads(params, {}, f"sqlite:///{home / 'absent.db'}") == []
    assert not (home / "absent.db").exists()  # asking does not create a registry


def test_a_scale_without_a_checkpoint_gets_the_registrys_head(session, tmp_path):
    from mlflow import MlflowClient

    from components.training.tracking import register_head

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("demo", (tmp_path / "artifacts").as_uri())
    run = client.create_run(experiment).info.run_id
    head = tmp_path / "head.safetensors"
    save_file(session.editor.model.head.state_dict(), head)
    client.log_artifact(run, str(head), "head")  # as training logs and registers it
    register_head(client, run, "head", "3M", None)
    local = tmp_path / "5M.safetensors"
    heads = find_heads(session.params, {"3M": None, "5M": local}, uri)
    labels = [h.label for h in heads]
    assert labels == ["3M · MLflow region-head@scale-3M (version 1)", f"5M · {local}"]
    assert heads[0].weights(uri).read_bytes() == head.read_bytes()


def test_every_suggested_instruction_of_a_world_scene_is_judged_against_its_answer(scene):
    assert len(scene.instructions) == len(set(scene.instructions)) >= 3
    for edit in scene.edits:
        truth = Image.fromarray(edit.region(scene.side)).convert("L")
        judged = verdict(scene, edit, edit.target_image(scene.side), truth)
        assert (judged.success, judged.iou) == (1.0, 1.0), edit.t_ins
        assert verdict(scene, edit, scene.image, truth).success == 0.0, edit.t_ins
    assert scene.known_edit(scene.instructions[0].upper()) == scene.edits[0]
    assert scene.known_edit("paint it all gold") is None


def test_the_heat_map_outlines_the_hard_region_and_the_truth(scene):
    probability = np.zeros((64, 64), np.uint8)
    probability[16:32, 16:48] = 200  # P = 0.78 on a block
    truth = np.zeros((64, 64), np.uint8)
    truth[40:56, 8:24] = 255
    picture = heat_map(scene.image, Image.fromarray(probability), 0.5, Image.fromarray(truth))
    pixels = np.asarray(picture)
    assert picture.size == (384, 384)  # enlarged six times, nearest
    white, green = (pixels == HARD_REGION).all(-1), (pixels == TRUTH).all(-1)
    assert white[16 * 6, 16 * 6 : 48 * 6].all() and not white[24 * 6, 30 * 6]  # edge, not inside
    assert green[40 * 6, 8 * 6 : 24 * 6].all() and not green[: 40 * 6].any()
    above_all = np.asarray(heat_map(scene.image, Image.fromarray(probability), 0.9))
    assert not (above_all == HARD_REGION).all(-1).any()  # no P exceeds 0.9: no hard region
