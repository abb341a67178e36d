"""The gateway's task families end to end: the requests on the wire (paths, fields, auth), the
saved files (type, bytes), the lock entries, a re-run that makes no request, a refused task,
and an interrupted task resumed without a second submit. Checked from the emulator's request
log: the emulator models each family from its published answers, not from our catalog."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest
import yaml
from helpers import KEY_ENV, recipe, sha256

from conftest import CANARY_KEY, Emulator, flow
from flowrunner.media.formats import sniff

JINGLE = """
  lyrics:
    uses: suno.generate_lyrics
    with:
      prompt: "a cheerful jingle about {{ vars.brand }} coffee"
  jingle:
    uses: suno.generate_music
    with:
      prompt: "{{ steps.lyrics.outputs.text }}"
      title: "{{ steps.lyrics.outputs.title }}"
      tags: upbeat synth pop
    save: [jingle-a, jingle-b]
"""


def _api(emulator: Emulator) -> list[dict]:
    return [r for r in emulator.requests() if not r["path"].startswith("/files/")]


@pytest.mark.slow
def test_suno_lyrics_then_music_on_the_wire_and_on_disk(tmp_path: Path, emulator: Emulator) -> None:
    emulator.pending_polls = 2  # what happens while the task runs
    path = recipe(tmp_path, emulator.base_url, JINGLE + """
  words:
    uses: audio.transcribe
    with: {file: "{{ steps.jingle.files[-1] }}"}
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    # a later step's `files` are the clips, never their posters
    (words,) = [c for c in _api(emulator) if c["path"] == "/v1/audio/transcriptions"]
    assert words["files"][0]["sha256"] == sha256(tmp_path / "assets" / "jingle-b.wav")
    calls = [c for c in _api(emulator) if c["path"] != "/v1/audio/transcriptions"]
    assert [c["method"] + " " + c["path"].rsplit("/", 1)[0] for c in calls] == \
        ["POST /suno/submit", *["GET /suno/fetch"] * 3, "POST /suno/submit",
         *["GET /suno/fetch"] * 3]
    assert all(c["authorization"] == f"Bearer {CANARY_KEY}" for c in calls)
    lyrics, music = (c for c in calls if c["method"] == "POST")
    assert lyrics["path"] == "/suno/submit/lyrics"
    assert lyrics["json"] == {"prompt": "a cheerful jingle about Acme coffee"}
    assert music["path"] == "/suno/submit/music"
    # the lyrics' text and title feed the music; the model's default is sent explicitly
    assert music["json"]["prompt"].startswith("[Verse]") and music["json"]["mv"] == "chirp-crow"
    assert music["json"]["title"] == "A Cheerful Jingle About Acme Coffee"

    saved = [tmp_path / "assets" / name for name in ("jingle-a.wav", "jingle-b.wav")]
    for file in saved:
        data = file.read_bytes()
        assert sniff(data[:64]) == "audio/wav"
        with wave.open(io.BytesIO(data)) as sound:  # the result, never the preview stream
            assert sound.getnframes() / sound.getframerate() > 1.0
    assert saved[0].read_bytes() != saved[1].read_bytes()
    lock = yaml.safe_load((tmp_path / "brand.lock").read_text())["instances"]
    assert [a["path"] for a in lock["jingle"]["artifacts"] if not a.get("role")] == \
        ["assets/jingle-a.wav", "assets/jingle-b.wav"]
    assert len(lock["jingle"]["outputs"]["clip_ids"]) == 2
    assert lock["lyrics"]["outputs"]["title"] == "A Cheerful Jingle About Acme Coffee"
    page = (tmp_path / "assets" / "index.html").read_text()
    assert "<audio controls" in page
    # each clip's cover is its poster: beside it, in the lock file, in the gallery; never
    # one of the step's files (`save` named two, the `files` of the step are the clips)
    posters = [a for a in lock["jingle"]["artifacts"] if a.get("role") == "poster"]
    assert [a["path"] for a in posters] == ["assets/jingle-a.poster.png",
                                            "assets/jingle-b.poster.png"]
    for poster in posters:
        assert sha256(tmp_path / poster["path"]) == poster["sha256"]
    assert '<img class="cover" src="jingle-a.poster.png"' in page

    emulator.reset()
    again = flow("run", path, env=KEY_ENV)
    assert again.code == 0, again
    assert _api(emulator) == []
    assert flow("verify", path).code == 0


def test_a_refused_song_fails_with_the_providers_reason_and_is_not_retried(
        tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, JINGLE)
    emulator.fault("moderate-task", 1)
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1, result
    assert "sensitive word" in result.out
    assert [c["path"] for c in _api(emulator) if c["method"] == "POST"] == \
        ["/suno/submit/lyrics"]  # the music step never ran: it needs the lyrics


@pytest.mark.slow
@pytest.mark.parametrize(("step", "saved"), [
    ("uses: suno.generate_music\n    with: {gpt_description_prompt: a jingle}\n"
     "    save: [jingle-a, jingle-b]", "jingle-b.wav"),
    ("uses: midjourney.imagine\n    with: {prompt: a coffee cup}\n    save: board",
     "board.png"),
    ("uses: kling.text_to_video\n    with: {prompt: a launch spot}\n    save: spot",
     "spot.mp4"),
], ids=["suno", "midjourney", "kling"])
def test_an_interrupted_task_is_resumed_not_submitted_again(tmp_path: Path, emulator: Emulator,
                                                            step: str, saved: str) -> None:
    emulator.state.latency = 0.3
    path = recipe(tmp_path, emulator.base_url, f"""
  task:
    {step}
""")
    run = subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path)],
                           env=dict(os.environ, **KEY_ENV), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(c["method"] == "GET"
                                                  for c in _api(emulator)):
        time.sleep(0.02)  # submitted, and polled once
    run.send_signal(signal.SIGKILL)
    run.wait()
    emulator.state.latency = 0
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    assert "resumed task" in result.out
    assert len([c for c in _api(emulator) if c["method"] == "POST"]) == 1
    assert (tmp_path / "assets" / saved).is_file()


def test_text_to_speech_keeps_the_answer_itself_as_the_file(tmp_path: Path,
                                                            emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  tagline:
    uses: audio.speech
    with: {input: "{{ vars.brand }}: coffee that codes", voice: nova}
    save: tagline
  hello:
    uses: audio.speech
    with: {input: "hello", voice: alloy, response_format: wav, speed: 1.25}
    save: voice/hello
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    calls = _api(emulator)
    assert [c["path"] for c in calls] == ["/v1/audio/speech"] * 2
    assert all(c["authorization"] == f"Bearer {CANARY_KEY}" for c in calls)
    bodies = sorted((c["json"] for c in calls), key=lambda body: body["input"])
    # the model and format defaults are sent explicitly: they are part of the cache key
    assert bodies[0] == {"model": "tts-1", "input": "Acme: coffee that codes", "voice": "nova",
                         "response_format": "mp3"}
    assert bodies[1]["response_format"] == "wav" and bodies[1]["speed"] == 1.25
    mp3 = (tmp_path / "assets" / "tagline.mp3").read_bytes()
    assert sniff(mp3[:64]) == "audio/mpeg"
    assert sniff((tmp_path / "assets" / "voice" / "hello.wav").read_bytes()[:64]) == "audio/wav"
    lock = yaml.safe_load((tmp_path / "brand.lock").read_text())["instances"]
    assert lock["tagline"]["artifacts"][0]["path"] == "assets/tagline.mp3"
    emulator.reset()
    assert flow("run", path, env=KEY_ENV).code == 0
    assert _api(emulator) == []


def test_a_speech_parameter_out_of_range_is_refused_before_any_call(tmp_path: Path,
                                                                    emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  tagline:
    uses: audio.speech
    with: {input: "hi", voice: nova, speed: 9, response_format: pcm}
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 3, result
    assert "speed" in result.err and "response_format" in result.err
    assert _api(emulator) == []


def test_a_wrong_catalog_entry_is_refused_by_the_emulator_not_mirrored(tmp_path: Path,
                                                                        emulator: Emulator) -> None:
    """The emulator models the providers, not our catalog: an entry with a wrong field name
    or route (here a recipe-local copy) fails at the emulator as it would at the provider."""
    import json

    from flowrunner.catalog.resources import read_json

    folder = tmp_path / "catalog"
    folder.mkdir()
    speech = read_json("endpoints", "audio", "speech.json")
    speech["id"] = "my.speech"
    speech["params"]["properties"]["format"] = speech["params"]["properties"].pop(
        "response_format")
    speech["defaults"] = {"model": "tts-1", "format": "mp3"}
    (folder / "speech.json").write_text(json.dumps(speech))
    music = read_json("endpoints", "suno", "generate_music.json")
    music["id"] = "my.music"
    music["path"] = "/suno/submit/song"
    (folder / "music.json").write_text(json.dumps(music))
    path = recipe(tmp_path, emulator.base_url, """
  tagline:
    uses: my.speech
    with: {input: "hi", voice: nova}
  song:
    uses: my.music
    with: {gpt_description_prompt: "a jingle"}
""", extra="catalog: [catalog]\n")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1, result
    assert "unknown parameter 'format'" in result.out
    assert "unknown action 'SONG'" in result.out


MOODBOARD = """
  board:
    uses: midjourney.imagine
    with: {prompt: "a cosy coffee shop for {{ vars.brand }} at dawn --ar 16:9"}
    save: board
  hero:
    uses: midjourney.action
    with: {task_id: "{{ steps.board.outputs.task_id }}", button: U2}
    save: hero
  final:
    uses: midjourney.action
    with: {task_id: "{{ steps.hero.outputs.task_id }}", button: "upscale (subtle)"}
    save: hero-final
"""


def test_midjourney_modal_ends_polling_and_a_modal_step_answers_it(tmp_path: Path,
                                                                    emulator: Emulator) -> None:
    """Issue 25, fix 6: a Custom Zoom waits in MODAL for /mj/submit/modal (its submit
    answers code 21 with the task id): polling ends there (it used to wait out 900 s), the
    step gives its task id, and a midjourney.modal step answers it and saves the image."""
    path = recipe(tmp_path, emulator.base_url, MOODBOARD + """
  zoom:
    uses: midjourney.action
    with: {task_id: "{{ steps.hero.outputs.task_id }}", button: Custom Zoom}
  zoomed:
    uses: midjourney.modal
    with: {task_id: "{{ steps.zoom.outputs.task_id }}", prompt: "a cosy cafe --zoom 2"}
    save: zoomed
  change:
    uses: midjourney.change
    with: {task_id: "{{ steps.board.outputs.task_id }}", action: UPSCALE, index: 3}
    save: change
""")
    started = time.monotonic()
    result = flow("run", path, env=KEY_ENV, timeout=120)
    assert result.code == 0, result
    assert time.monotonic() - started < 60  # a hang guard: no 900 s wait on MODAL
    assert "waits for a modal window" in result.out  # said with the zoom step
    posts = [c for c in _api(emulator) if c["method"] == "POST"]
    modal = next(c for c in posts if c["path"] == "/mj/submit/modal")
    zoom = next(c for c in posts if c["path"] == "/mj/submit/action"
                and c["json"]["customId"].startswith("MJ::CustomZoom::"))
    assert modal["json"]["prompt"] == "a cosy cafe --zoom 2"
    assert modal["json"]["taskId"]
    change = next(c for c in posts if c["path"] == "/mj/submit/change")
    assert change["json"]["action"] == "UPSCALE" and change["json"]["index"] == 3
    for name in ("zoomed.png", "change.png"):
        assert sniff((tmp_path / "assets" / name).read_bytes()[:64]) == "image/png"
    assert zoom["json"]["taskId"]


def test_a_remix_account_says_what_to_do_when_a_saved_step_waits_for_a_modal(
        tmp_path: Path, emulator: Emulator) -> None:
    emulator.fault("remix")  # in remix mode, every button waits for its modal
    path = recipe(tmp_path, emulator.base_url, MOODBOARD)
    result = flow("run", path, env=KEY_ENV, timeout=120)
    assert result.code == 1, result
    assert "is MODAL: it waits for a modal window" in result.out
    # the advice names the waiting step, ready to paste
    assert 'uses: midjourney.modal` with `task_id: "{{ steps.hero.outputs.task_id }}"`' in \
        result.out


def test_a_saved_custom_zoom_is_refused_before_paying_and_a_used_modal_says_refresh(
        tmp_path: Path, emulator: Emulator) -> None:
    """Issue 25 review: Custom Zoom and Vary (Region) always wait for a modal, so a step
    that presses one and saves is refused at validation; a modal answered once (a changed
    zoom prompt on the next run) is refused by the provider, and the hint says to press
    the button anew with --refresh."""
    saved = recipe(tmp_path, emulator.base_url, MOODBOARD + """
  zoom:
    uses: midjourney.action
    with: {task_id: "{{ steps.hero.outputs.task_id }}", button: Vary (Region)}
    save: zoom
""", name="saved.yaml")
    refused = flow("validate", saved)
    assert refused.code == 3, refused
    assert re.search(r"saved\.yaml:\d+:\d+: error: steps\.zoom\.save: the button Vary "
                     r"\(Region\) always waits for a modal window", refused.err), refused.err
    assert 'task_id: "{{ steps.zoom.outputs.task_id }}"' in refused.err
    # written in any case: refused at validation too
    (tmp_path / "other.yaml").write_text(saved.read_text().replace(
        "button: Vary (Region)", "button: custom zoom"))
    other = flow("validate", tmp_path / "other.yaml")
    assert other.code == 3 and "always waits for a modal window" in other.err, other
    # from vars (a raw customId for a task id written out): refused once rendered
    templated = recipe(tmp_path, emulator.base_url, """
  zoom:
    uses: midjourney.action
    with: {task_id: "1712", button: "{{ vars.zoom }}"}
    save: zoom
""", name="templated.yaml", extra="")
    templated.write_text(templated.read_text().replace(
        "vars:\n", "vars:\n  zoom: MJ::CustomZoom::5b2d\n", 1))
    other = flow("validate", templated)
    assert other.code == 3 and "steps.zoom.save: the button MJ::CustomZoom::5b2d always " \
        "waits for a modal window (a zoom or a region), so this step never has files to " \
        "save (in zoom)" in other.err, other
    # by its emoji: known only from the earlier task's buttons, refused before it is paid
    emoji = recipe(tmp_path, emulator.base_url, MOODBOARD + """
  zoom:
    uses: midjourney.action
    with: {task_id: "{{ steps.hero.outputs.task_id }}", button: "\U0001F50D"}
    save: zoom
""", name="emoji.yaml")
    stopped = flow("run", emoji, env=KEY_ENV, timeout=120)
    assert stopped.code == 1 and re.search(r"emoji\.yaml:\d+:\d+: zoom\.save: the button .* "
                                           r"always waits", stopped.out), stopped
    assert not [c for c in _api(emulator) if c["path"] == "/mj/submit/action"
                and c["json"]["customId"].startswith("MJ::CustomZoom::")]
    emulator.reset()
    steps = MOODBOARD + """
  zoom:
    uses: midjourney.action
    with: {task_id: "{{ steps.hero.outputs.task_id }}", button: Custom Zoom}
  zoomed:
    uses: midjourney.modal
    with: {task_id: "{{ steps.zoom.outputs.task_id }}", prompt: "PROMPT"}
    save: zoomed
"""
    path = recipe(tmp_path, emulator.base_url, steps.replace("PROMPT", "--zoom 2"))
    assert flow("run", path, env=KEY_ENV, timeout=120).code == 0
    recipe(tmp_path, emulator.base_url, steps.replace("PROMPT", "--zoom 1.5"))
    again = flow("run", path, env=KEY_ENV, timeout=120)
    assert again.code == 1 and "not waiting for a modal" in again.out, again
    assert "flow run --refresh <the button step>" in again.out
    fresh = flow("run", path, "--refresh", "zoom", env=KEY_ENV, timeout=120)
    assert fresh.code == 0, fresh
    # what `resolve` and `wire` send is not a default of the entry
    planned = flow("plan", path)
    assert "customId: MJ::CustomZoom::" in planned.out, planned
    assert not re.search(r"(customId|taskId): .*\(default\)", planned.out), planned.out


@pytest.mark.parametrize(("params", "words"), [
    ("{image: x.png}", "missing required parameter 'prompt'"),
    ("{image: x.png, prompt: p, batchSize: 3}", "batchSize"),
    ("{prompt: p, action: extend, taskId: t}", "missing required parameter"),
])
def test_midjourney_video_fields_are_checked(tmp_path: Path, params: str, words: str) -> None:
    path = recipe(tmp_path, "https://api.elkapi.com", f"""
  clip:
    uses: midjourney.video
    with: {params}
""")
    refused = flow("validate", path)
    assert refused.code == 3 and words in refused.err, refused


def test_midjourney_board_then_buttons_on_the_wire_and_on_disk(tmp_path: Path,
                                                               emulator: Emulator) -> None:
    from PIL import Image

    path = recipe(tmp_path, emulator.base_url, MOODBOARD)
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    submits = [c for c in _api(emulator) if c["method"] == "POST"]
    assert [c["path"] for c in submits] == ["/mj/submit/imagine", "/mj/submit/action",
                                            "/mj/submit/action"]
    assert submits[0]["json"] == {"prompt": "a cosy coffee shop for Acme at dawn --ar 16:9",
                                  "botType": "MID_JOURNEY"}
    lock = yaml.safe_load((tmp_path / "brand.lock").read_text())["instances"]
    board_task = lock["board"]["outputs"]["task_id"]
    # flowrunner's task_id and button became the provider's taskId and customId
    assert submits[1]["json"]["taskId"] == board_task
    assert submits[1]["json"]["customId"].startswith("MJ::JOB::upsample::2::")
    assert set(submits[1]["json"]) == {"taskId", "customId"}
    assert submits[2]["json"]["customId"].startswith("MJ::JOB::upsample_v6_2x_subtle::")
    assert lock["board"]["outputs"]["buttons"][:4] == ["U1", "U2", "U3", "U4"]
    assert all(c["authorization"] == f"Bearer {CANARY_KEY}" for c in _api(emulator))
    with Image.open(tmp_path / "assets" / "board.png") as board:
        assert board.size == (1024, 1024)  # the finished grid, never the in-progress preview

    emulator.reset()
    again = flow("run", path, "--refresh", "hero", env=KEY_ENV)
    assert again.code == 0, again
    # the board is cached: its buttons come from the stored answer, with no fetch of it
    assert not any(board_task in c["path"] for c in _api(emulator))
    assert [c["path"] for c in _api(emulator) if c["method"] == "POST"] == \
        ["/mj/submit/action", "/mj/submit/action"]


def test_a_button_the_task_does_not_offer_is_refused_with_the_choices(tmp_path: Path,
                                                                       emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, MOODBOARD.replace("button: U2", "button: U9"))
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1, result
    assert "offers no 'U9'" in result.out and "U1, U2, U3, U4, 🔄, V1" in result.out
    assert [c["path"] for c in _api(emulator) if c["method"] == "POST"] == \
        ["/mj/submit/imagine"]


def test_a_banned_midjourney_prompt_fails_with_the_providers_words(tmp_path: Path,
                                                                   emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  board:
    uses: midjourney.imagine
    with: {prompt: "a bloodbath in a coffee shop"}
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1, result
    assert "refused the task (code 24: banned prompt)" in result.out
    assert [c["path"] for c in _api(emulator)] == ["/mj/submit/imagine"]  # never polled


def test_midjourney_takes_its_own_auth_header(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  board:
    uses: midjourney.imagine
    with: {prompt: "a coffee cup"}
""", extra="")
    text = path.read_text().replace(f"  base_url: {emulator.base_url}\n",
                                    f"  base_url: {emulator.base_url}\n"
                                    "  auth: {header: mj-api-secret}\n")
    path.write_text(text)
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    assert all(c["authorization"] is None for c in _api(emulator))


LAUNCH = """
  key_visual:
    uses: kling.generate_image
    with: {prompt: "a coffee cup on a desk, morning light", aspect_ratio: "16:9"}
    save: key-visual
  teaser:
    uses: kling.image_to_video
    with: {image: "{{ steps.key_visual.outputs.url }}", prompt: "steam rises", duration: 5}
    save: teaser
"""


def test_kling_image_then_video_on_the_wire_and_on_disk(tmp_path: Path, emulator: Emulator) -> None:
    from flowrunner.media.formats import incomplete

    path = recipe(tmp_path, emulator.base_url, LAUNCH)
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    posts = [c for c in _api(emulator) if c["method"] == "POST"]
    assert [c["path"] for c in posts] == ["/kling/v1/images/generations",
                                          "/kling/v1/videos/image2video"]
    # written as a number in the recipe, sent as the text Kling takes; the model pinned
    assert posts[1]["json"]["duration"] == "5" and posts[1]["json"]["model_name"] == "kling-v3"
    assert posts[1]["json"]["image"].startswith(emulator.base_url + "/files/")
    polls = [c["path"] for c in _api(emulator) if c["method"] == "GET"]
    assert all(p.startswith(("/kling/v1/images/generations/", "/kling/v1/videos/image2video/"))
               for p in polls)
    video = (tmp_path / "assets" / "teaser.mp4").read_bytes()
    assert sniff(video[:64]) == "video/mp4"
    assert incomplete("video/mp4", io.BytesIO(video), len(video)) is None
    lock = yaml.safe_load((tmp_path / "brand.lock").read_text())["instances"]
    assert lock["teaser"]["artifacts"][0]["path"] == "assets/teaser.mp4"
    assert lock["teaser"]["outputs"]["duration"] == "5"
    assert "<video controls" in (tmp_path / "assets" / "index.html").read_text()
    emulator.reset()
    assert flow("run", path, env=KEY_ENV).code == 0
    assert _api(emulator) == []


def test_kling_through_the_gateways_reshaped_answer_too(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  spot:
    uses: kling.text_to_video
    with: {prompt: "a launch spot", aspect_ratio: "9:16", duration: "10"}
    save: spot
""")
    emulator.fault("reshaped", 1)
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    polled = [c for c in _api(emulator) if c["method"] == "GET"]
    assert polled  # answered {task_id, status, url}: read all the same
    assert sniff((tmp_path / "assets" / "spot.mp4").read_bytes()[:64]) == "video/mp4"
    lock = yaml.safe_load((tmp_path / "brand.lock").read_text())["instances"]
    assert float(lock["spot"]["outputs"]["duration"]) == 10


def test_an_unquoted_ratio_gets_a_hint_about_yaml(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  spot:
    uses: kling.text_to_video
    with: {prompt: "a launch spot", aspect_ratio: 16:9}
""")
    result = flow("validate", path)
    assert result.code == 3, result
    assert "969" in result.err and 'write "16:9" in quotes' in result.err
    assert "brand.yaml:" in result.err


def test_openai_format_images_decode_b64_and_upload_edits(
        tmp_path: Path, emulator: Emulator) -> None:
    from PIL import Image

    path = recipe(tmp_path, emulator.base_url, """
  hero:
    uses: openai.generate_image
    with: {prompt: "a coffee cup for {{ vars.brand }}", size: 1536x1024, n: 2}
    save: [hero-a, hero-b]
  retouch:
    uses: openai.edit_image
    with: {image: "{{ steps.hero.files[0] }}", prompt: "add steam"}
    save: retouched
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    generate, edit = _api(emulator)
    assert generate["path"] == "/v1/images/generations"
    assert generate["json"] == {"model": "gpt-image-1.5", "prompt": "a coffee cup for Acme",
                                "size": "1536x1024", "n": 2}
    assert edit["path"] == "/v1/images/edits"
    assert edit["content_type"].startswith("multipart/form-data")
    assert [f["field"] for f in edit["files"]] == ["image"]
    assert edit["files"][0]["sha256"] == sha256(tmp_path / "assets" / "hero-a.png")
    assert edit["fields"] == {"prompt": "add steam", "model": "gpt-image-1.5"}
    for name in ("hero-a.png", "hero-b.png", "retouched.png"):
        with Image.open(tmp_path / "assets" / name) as image:  # decoded from b64_json
            assert image.format == "PNG"
    assert (tmp_path / "assets" / "hero-a.png").read_bytes() != \
        (tmp_path / "assets" / "hero-b.png").read_bytes()
    emulator.reset()
    assert flow("run", path, env=KEY_ENV).code == 0 and _api(emulator) == []
    # one image written as a list is the same request, so the same cache entry
    listed = path.read_text().replace('image: "{{ steps.hero.files[0] }}"',
                                      'image: ["{{ steps.hero.files[0] }}"]')
    assert listed != path.read_text()
    path.write_text(listed)
    assert flow("run", path, env=KEY_ENV).code == 0 and _api(emulator) == []


def test_gpt_image_2_takes_free_sizes_and_edits_take_several_images(tmp_path: Path,
                                                                    emulator: Emulator) -> None:
    """Issue 25, fix 1: the gpt-image-2 family takes any WIDTHxHEIGHT with sides divisible
    by 16 (aspect 1:3 to 3:1, up to 3840x2160); an edit takes up to 16 images, sent as
    `image[]` as OpenAI's SDK sends a list."""
    path = recipe(tmp_path, emulator.base_url, """
  wide:
    uses: openai.generate_image
    with: {model: gpt-image-2.5-flare, prompt: "a skyline", size: 2048x1152, quality: xhigh}
    save: wide
  collage:
    uses: openai.edit_image
    with:
      model: gpt-image-2
      prompt: "one poster from these"
      image: ["{{ steps.wide.files[0] }}", "{{ steps.wide.files[0] }}", "{{ steps.wide.files[0] }}"]
      size: 3840x2160
    save: collage
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    generate, edit = _api(emulator)
    assert generate["json"]["size"] == "2048x1152"
    assert [f["field"] for f in edit["files"]] == ["image[]"] * 3
    for bad, words in (("2000x1000", "divisible by 16"), ("4096x1024", "aspect ratio"),
                       ("4096x2304", "3840x2160")):
        wrong = recipe(tmp_path, emulator.base_url, f"""
  wide:
    uses: openai.generate_image
    with: {{model: gpt-image-2, prompt: "a skyline", size: {bad}}}
""", name="wrong.yaml")
        refused = flow("validate", wrong)
        assert refused.code == 3 and words in refused.err, (bad, refused)
    standard = recipe(tmp_path, emulator.base_url, """
  wide:
    uses: openai.generate_image
    with: {model: gpt-image-1.5, prompt: "a skyline", size: 2048x1152, quality: max}
""", name="standard.yaml")
    refused = flow("validate", standard)
    assert refused.code == 3 and "1024x1024, 1536x1024, 1024x1536 or auto" in refused.err
    assert "for gpt-image-2.5-sunburst and gpt-image-2.5-flare only" in refused.err


def test_a_retired_model_is_refused_and_a_deprecated_one_warned_by_date(
        tmp_path: Path, emulator: Emulator) -> None:
    """Issue 25, models with a lifecycle: judged by today's date (FLOW_TODAY moves it)."""
    path = recipe(tmp_path, emulator.base_url, """
  hero:
    uses: openai.generate_image
    with: {model: gpt-image-1, prompt: "a cup"}
""")
    refused = flow("validate", path)
    assert refused.code == 3, refused
    assert "brand.yaml:12:" in refused.err  # located at the model
    assert "gpt-image-1 was shut down on 2026-10-23; use gpt-image-1.5" in refused.err
    before = flow("validate", path, env={"FLOW_TODAY": "2026-10-22"})
    assert before.code == 0, before  # the day before, it was served
    run = flow("run", path, env=KEY_ENV)
    assert run.code == 3 and emulator.requests() == []  # refused before paying
    default = recipe(tmp_path, emulator.base_url, """
  hero:
    uses: openai.generate_image
    with: {prompt: "a cup"}
""", name="default.yaml")
    later = flow("validate", default, env={"FLOW_TODAY": "2099-01-01"})
    assert later.code == 0  # gpt-image-1.5 has no announced end
    assert flow("validate", path, env={"FLOW_TODAY": "soon"}).code == 2


@pytest.mark.parametrize("shape", ["gateway", "kling-native", "reshaped"])
def test_kling_and_the_unified_route_read_every_answer_shape(tmp_path: Path, emulator: Emulator,
                                                             shape: str) -> None:
    """Issue 25, fix 2: new-api answers its Kling and unified video fetches in its task
    envelope ({code: success, data: {status: SUCCESS, result_url, data: <Kling's>}}); a
    passthrough gateway answers Kling's own shape, the docs print a third. The teaser is
    saved in each; the text-to-video model and aspect ratio are sent explicitly."""
    if shape != "gateway":
        emulator.fault(shape)
    if shape == "reshaped":
        emulator.fault("reshaped")  # the unified route's task too
    path = recipe(tmp_path, emulator.base_url, """
  teaser:
    uses: kling.text_to_video
    with: {prompt: "steam over a cup", duration: 5}
    save: teaser
  clip:
    uses: video.generate
    with: {model: kling-v2-master, prompt: "a cup", size: 1280x720, duration: 5}
    save: clip
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    submit = next(c for c in _api(emulator) if c["path"] == "/kling/v1/videos/text2video")
    assert submit["json"]["model_name"] == "kling-v3"
    assert submit["json"]["aspect_ratio"] == "16:9"  # new-api would otherwise send 1:1
    for name in ("teaser.mp4", "clip.mp4"):
        assert (tmp_path / "assets" / name).read_bytes()[4:8] == b"ftyp"
    if shape == "gateway":
        polls = [c["path"] for c in _api(emulator) if c["method"] == "GET"]
        assert any(p.startswith("/kling/v1/videos/text2video/task_") for p in polls)


def test_a_failed_kling_task_reads_its_reason_not_a_url(tmp_path: Path, emulator: Emulator) -> None:
    """new-api puts a failed task's reason in result_url when it stored no URL: the
    failure is read as a failure, with its reason."""
    emulator.fault("fail-task")
    path = recipe(tmp_path, emulator.base_url, """
  teaser:
    uses: kling.text_to_video
    with: {prompt: "steam over a cup"}
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1, result
    assert "ended with status 'FAILURE': emulated task failure" in result.out


def test_ideogram_poster_goes_as_multipart_even_without_a_file(tmp_path: Path,
                                                              emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  poster:
    uses: ideogram.generate
    with: {prompt: 'A poster that reads "{{ vars.brand }}"', aspect_ratio: 9x16, num_images: 2}
    save: [poster-a, poster-b]
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    (call,) = _api(emulator)
    assert call["path"] == "/ideogram/v1/ideogram-v3/generate"
    assert call["content_type"].startswith("multipart/form-data")  # as Ideogram takes it
    assert call["fields"] == {"prompt": 'A poster that reads "Acme"', "aspect_ratio": "9x16",
                              "num_images": "2"}
    assert sniff((tmp_path / "assets" / "poster-b.png").read_bytes()[:64]) == "image/png"
    both = flow("validate", recipe(tmp_path, emulator.base_url, """
  poster:
    uses: ideogram.generate
    with: {prompt: "x", aspect_ratio: 16x9, resolution: 1024x1024}
""", name="both.yaml"))
    assert both.code == 3 and "cannot be combined" in both.err


def test_transcription_uploads_an_earlier_steps_audio_and_outputs_text(tmp_path: Path,
                                                                       emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  tagline:
    uses: audio.speech
    with: {input: "{{ vars.brand }}: coffee that codes", voice: nova}
    save: tagline
  words:
    uses: audio.transcribe
    with: {file: "{{ steps.tagline.files[0] }}", language: en}
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    speech, transcription = _api(emulator)
    assert transcription["path"] == "/v1/audio/transcriptions"
    assert [f["field"] for f in transcription["files"]] == ["file"]
    assert transcription["files"][0]["sha256"] == sha256(tmp_path / "assets" / "tagline.mp3")
    assert transcription["fields"] == {"language": "en", "model": "whisper-1"}
    lock = yaml.safe_load((tmp_path / "brand.lock").read_text())["instances"]
    assert lock["words"]["outputs"]["text"].startswith("Emulated transcript of ")
    assert lock["words"]["artifacts"] == []


def test_the_unified_video_route_submits_polls_and_saves_the_mp4(tmp_path: Path,
                                                                 emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  clip:
    uses: video.generate
    with: {model: a-video-model, prompt: "a fox", duration: 2, width: 160, height: 96}
    save: clips/clip
""")
    emulator.fault("fail-task", 1)
    failed = flow("run", path, env=KEY_ENV)
    assert failed.code == 1 and "emulated task failure" in failed.out
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    submit = [c for c in _api(emulator) if c["method"] == "POST"][-1]
    assert submit["path"] == "/v1/video/generations"
    assert submit["json"] == {"model": "a-video-model", "prompt": "a fox", "duration": 2,
                              "width": 160, "height": 96}
    assert sniff((tmp_path / "assets" / "clips" / "clip.mp4").read_bytes()[:64]) == "video/mp4"


def test_a_community_model_version_runs_on_the_predictions_route(tmp_path: Path,
                                                                 emulator: Emulator) -> None:
    """Issue 25, fix 9: owner/name:VERSION models run by version id on
    POST /replicate/v1/predictions {version, input}."""
    version = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
    path = recipe(tmp_path, emulator.base_url, f"""
  fox:
    uses: replicate.predict_version
    with: {{version: {version}, input: {{prompt: a fox}}}}
    save: fox
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    create, *polls = _api(emulator)
    assert create["path"] == "/replicate/v1/predictions"
    assert create["json"] == {"version": version, "input": {"prompt": "a fox"}}
    assert polls and all(p["path"].startswith("/replicate/v1/predictions/") for p in polls)
    assert sniff((tmp_path / "assets" / "fox.png").read_bytes()[:64]) == "image/png"
    short = recipe(tmp_path, emulator.base_url, """
  fox:
    uses: replicate.predict_version
    with: {version: someone/fox:abc, input: {}}
""", name="short.yaml")
    assert flow("validate", short).code == 3


@pytest.mark.slow
def test_replicate_predicts_through_the_gateway_and_polls_there(tmp_path: Path,
                                                                emulator: Emulator) -> None:
    emulator.pending_polls = 2  # what happens while the task runs
    path = recipe(tmp_path, emulator.base_url, """
  fox:
    uses: replicate.predict
    with:
      model: black-forest-labs/flux-schnell
      input: {prompt: "a fox for {{ vars.brand }}", num_outputs: 2}
    save: [fox-a, fox-b]
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    calls = _api(emulator)
    # owner/name stays a path (not %2F); the answer's urls.get names api.replicate.com,
    # and every poll goes through the gateway's own route instead (with the gateway's key)
    assert calls[0]["path"] == "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
    assert calls[0]["json"] == {"input": {"prompt": "a fox for Acme", "num_outputs": 2}}
    assert {c["path"] for c in calls[1:]} == {f"/replicate/v1/predictions/{c['path'][-26:]}"
                                              for c in calls[1:]}
    assert len(calls) >= 3
    for name in ("fox-a.png", "fox-b.png"):
        assert sniff((tmp_path / "assets" / name).read_bytes()[:64]) == "image/png"
    escape = recipe(tmp_path, emulator.base_url, """
  fox:
    uses: replicate.predict
    with: {model: "../secrets", input: {}}
""", name="escape.yaml")
    refused = flow("run", escape, env=KEY_ENV)
    assert refused.code == 1 and "is not a path of names" in refused.out


@pytest.mark.parametrize(("step", "submit", "poll"), [
    ("uses: luma.generate_video\n    with: {user_prompt: a fox, duration: 5s}",
     "/luma/generations", "/luma/generations/"),
    ("uses: veo.generate_video\n    with: {prompt: a fox, aspect_ratio: '9:16'}",
     "/v1/video/create", "/v1/video/query"),
    ("uses: pika.generate_video\n    with: {promptText: a fox}", "/pika/generate",
     "/pika/feed/"),
])
def test_video_task_families_submit_poll_and_save(tmp_path: Path, emulator: Emulator, step: str,
                                                  submit: str, poll: str) -> None:
    path = recipe(tmp_path, emulator.base_url, f"""
  clip:
    {step}
    save: clip
""")
    emulator.fault("fail-task", 1)
    failed = flow("run", path, env=KEY_ENV)
    assert failed.code == 1 and "emulated task failure" in failed.out, failed
    result = flow("run", path, env=KEY_ENV)  # a failed task is submitted anew
    assert result.code == 0, result
    calls = _api(emulator)
    assert [c["path"] for c in calls if c["method"] == "POST"] == [submit, submit]
    polls = [c for c in calls if c["method"] == "GET"]
    assert polls and all(c["path"].startswith(poll) for c in polls)
    if poll == "/v1/video/query":  # the id travels in the query
        assert all(c["query"].startswith("id=") for c in polls)
    assert sniff((tmp_path / "assets" / "clip.mp4").read_bytes()[:64]) == "video/mp4"
    emulator.reset()
    assert flow("run", path, env=KEY_ENV).code == 0 and _api(emulator) == []


def test_sora_in_the_reverse_format_and_the_official_route_refused(tmp_path: Path,
                                                                   emulator: Emulator) -> None:
    """Issue 25, fix 5: OpenAI's Sora API shut down on 2026-09-24; ElkAPI lists Sora in its
    reverse format (/v1/video/create, /v1/video/query?id=)."""
    old = recipe(tmp_path, emulator.base_url, """
  spot:
    uses: sora.generate_video
    with: {prompt: "a fox"}
""", name="old.yaml")
    refused = flow("validate", old)
    assert refused.code == 3, refused
    assert "sora.generate_video was shut down on 2026-09-24; use sora.create_video" in \
        refused.err
    path = recipe(tmp_path, emulator.base_url, """
  spot:
    uses: sora.create_video
    with: {prompt: "a fox", orientation: portrait, duration: 15}
    save: spot
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    create, *polls = _api(emulator)
    assert create["path"] == "/v1/video/create" and create["json"] == {
        "prompt": "a fox", "orientation": "portrait", "duration": 15, "model": "sora-2",
        "size": "small", "images": []}
    assert polls and all(p["path"] == "/v1/video/query" and
                         p["query"].startswith("id=sora-2%3Atask_") for p in polls)
    assert sniff((tmp_path / "assets" / "spot.mp4").read_bytes()[:64]) == "video/mp4"
    long = recipe(tmp_path, emulator.base_url, """
  spot:
    uses: sora.create_video
    with: {prompt: "a fox", duration: 25, size: large}
""", name="long.yaml")
    refused = flow("validate", long)
    assert refused.code == 3 and "sora-2 makes 10 or 15 second videos" in refused.err
    assert "size large needs sora-2-pro" in refused.err


def test_a_video_api_streams_its_file_from_content_with_the_key(tmp_path: Path,
                                                                emulator: Emulator) -> None:
    """OpenAI's video format (new-api's /v1/videos, kept for gateways that serve it with
    another upstream): the file is fetched from /content with the key; Sora's own models
    are refused there since OpenAI shut the API down."""
    import json

    from flowrunner.catalog.resources import read_json
    from flowrunner.emulator.images import png

    entry = read_json("endpoints", "sora", "generate_video.json")
    entry["id"] = "team.videos"
    del entry["lifecycle"]
    entry["defaults"]["model"] = "wan-2.6"  # another upstream behind the same route
    entry["params"]["properties"]["model"] = {"type": "string"}
    (tmp_path / "videos.json").write_text(json.dumps(entry))
    (tmp_path / "first-frame.png").write_bytes(png(128, 72, "frame"))
    path = recipe(tmp_path, emulator.base_url, """
  spot:
    uses: team.videos
    with: {prompt: "a fox", seconds: 4, size: 1280x720, input_reference: first-frame.png}
    save: spot
""", extra="catalog: [videos.json]\n")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    calls = emulator.requests()
    create = calls[0]
    assert create["path"] == "/v1/videos" and create["fields"] == {
        "prompt": "a fox", "seconds": "4", "size": "1280x720", "model": "wan-2.6"}
    assert [f["field"] for f in create["files"]] == ["input_reference"]
    content = [c for c in calls if c["path"].endswith("/content")]
    # the file is the API's own: fetched once, with the key (the emulator refuses it without)
    assert len(content) == 1 and content[0]["authorization"] == f"Bearer {CANARY_KEY}"
    assert sniff((tmp_path / "assets" / "spot.mp4").read_bytes()[:64]) == "video/mp4"
    entry["defaults"]["model"] = "sora-2"  # an old copy of the entry: refused upstream
    (tmp_path / "videos.json").write_text(json.dumps(entry))
    refused = flow("run", path, env=KEY_ENV)
    assert refused.code == 1 and "The Videos API shut down on September 24, 2026" in \
        refused.out + refused.err, refused


def test_runway_sends_its_version_header_on_every_call(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  shot:
    uses: runway.image_to_video
    with: {promptImage: "https://example.com/key.png", duration: 5}
    save: shot
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    calls = _api(emulator)
    assert calls[0]["path"] == "/runwayml/v1/image_to_video"
    # Runway requires a ratio for gen4_turbo: the entry's default goes with the model
    assert calls[0]["json"] == {"promptImage": "https://example.com/key.png",
                                "ratio": "1280:720", "duration": 5, "model": "gen4_turbo"}
    # the emulator answers 400 to any call without it, polls included: every call had it
    assert all(c["path"].startswith("/runwayml/v1/tasks/") for c in calls[1:])
    assert sniff((tmp_path / "assets" / "shot.mp4").read_bytes()[:64]) == "video/mp4"


@pytest.mark.parametrize(("params", "words"), [
    ("{model: gen4.5, promptImage: x, ratio: '1280:720'}", "gen4.5 needs a promptText"),
    ("{model: gen4.5, promptImage: x, promptText: p, duration: 12}",
     "gen4.5 takes a duration of 2-10 seconds, not 12"),
    ("{model: veo3.1, promptImage: x, ratio: '1104:832'}", "veo3.1 takes a ratio of 1280:720"),
    ("{model: veo3.1, promptImage: x, ratio: '1280:720', duration: 5}", "4, 6 or 8"),
    ("{model: kling3.0_pro, promptImage: x, ratio: '1280:720'}",
     "kling3.0_pro takes a ratio of 1920:1080, 1080:1920, 1440:1440"),
    ("{model: kling_4, promptImage: x, ratio: '16:9'}", "takes a ratio of auto_720p"),
    ("{model: gemini_omni_flash, promptImage: x, duration: 12}", "3-10 seconds, not 12"),
    ("{promptImage: x, duration: auto}", 'duration "auto" is only for'),
    ("{model: kling2.5_turbo_pro, promptImage: x, promptText: p, ratio: '1280:720'}",
     "takes no ratio"),
])
def test_runway_rules_per_model_refuse_before_paying(tmp_path: Path, params: str,
                                                    words: str) -> None:
    path = recipe(tmp_path, "https://api.elkapi.com", f"""
  shot:
    uses: runway.image_to_video
    with: {params}
""")
    refused = flow("validate", path)
    assert refused.code == 3 and words in refused.err, refused


def test_runway_defaults_follow_the_model_and_an_unlisted_model_is_a_warning(
        tmp_path: Path, emulator: Emulator) -> None:
    """Issue 25 review: a model's own defaults (gen4.5 needs a ratio and a duration) go
    with that model only: kling2.5_turbo_pro takes no ratio, so none is sent (the emulator,
    from Runway's SDK, refuses one); gen3a_turbo, gone from Runway's list with no
    announced end, is a warning, not a refusal, and the emulator refuses it as Runway
    would."""
    path = recipe(tmp_path, emulator.base_url, """
  new:
    uses: runway.image_to_video
    with: {model: gen4.5, promptImage: "https://example.com/a.png", promptText: a fox}
    save: new
  kling:
    uses: runway.image_to_video
    with: {model: kling2.5_turbo_pro, promptImage: "https://example.com/a.png",
           promptText: a fox}
    save: kling
""")
    planned = flow("plan", path)
    assert planned.code == 0, planned
    assert "ratio: 1280:720 (default)" in planned.out and "duration: 5 (default)" in \
        planned.out
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    sent = {c["json"]["model"]: c["json"] for c in _api(emulator)
            if c["path"] == "/runwayml/v1/image_to_video"}
    assert sent["gen4.5"]["ratio"] == "1280:720" and sent["gen4.5"]["duration"] == 5
    assert "ratio" not in sent["kling2.5_turbo_pro"]
    old = recipe(tmp_path, emulator.base_url, """
  old:
    uses: runway.image_to_video
    with: {model: gen3a_turbo, promptImage: "https://example.com/a.png", ratio: "1280:768"}
    save: old
""", name="old.yaml")
    checked = flow("validate", old)
    assert checked.code == 0 and "gen3a_turbo is no longer in the provider's model list " \
        "(checked 2026-12-03), so a paid run may fail; use gen4_turbo" in checked.err, checked
    refused = flow("run", old, env=KEY_ENV)
    assert refused.code == 1 and "model 'gen3a_turbo' is not available" in \
        refused.out + refused.err, refused


def test_the_emulator_refuses_a_runway_entry_without_a_ratio(tmp_path: Path,
                                                            emulator: Emulator) -> None:
    """The emulator models Runway (its SDK), not the catalog: an entry that does not send
    the ratio gen4_turbo requires is refused there, as Runway would."""
    import json

    from flowrunner.catalog.resources import read_json

    entry = read_json("endpoints", "runway", "image_to_video.json")
    entry["id"] = "my.runway"
    entry["defaults"] = {"model": "gen4_turbo"}
    del entry["model_defaults"]
    entry["rules"] = []
    (tmp_path / "runway.json").write_text(json.dumps(entry))
    path = recipe(tmp_path, emulator.base_url, """
  shot:
    uses: my.runway
    with: {promptImage: "https://example.com/key.png"}
""", extra="catalog: [runway.json]\n")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1 and "ratio is required for gen4_turbo" in result.out, result


def test_a_journaled_task_the_provider_no_longer_knows_is_forgotten(tmp_path: Path,
                                                                    emulator: Emulator) -> None:
    import json

    path = recipe(tmp_path, emulator.base_url, """
  spot:
    uses: kling.text_to_video
    with: {prompt: "a launch spot"}
    save: spot
""")
    assert flow("plan", path).code == 0
    key = json.loads(flow("plan", path, "--json").out)["instances"][0]["key"]
    tasks = tmp_path / ".flow" / "cache" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / f"{key}.json").write_text(json.dumps({"id": "424242", "poll_url": None,
                                                   "endpoint": "kling.text_to_video"}))
    gone = flow("run", path, env=KEY_ENV)
    assert gone.code == 1 and "no longer answers for task 424242" in gone.out
    assert not (tasks / f"{key}.json").exists()
    again = flow("run", path, env=KEY_ENV)
    assert again.code == 0, again
    assert len([c for c in _api(emulator) if c["method"] == "POST"]) == 1


@pytest.mark.parametrize(("uses", "extra", "path", "files"), [
    ("ideogram.edit", 'mask: ref.png, prompt: "add a fox"', "/ideogram/v1/ideogram-v3/edit",
     ["image", "mask"]),
    ("ideogram.remix", 'prompt: "in winter", image_weight: 50',
     "/ideogram/v1/ideogram-v3/remix", ["image"]),
    ("ideogram.reframe", "resolution: 1312x736", "/ideogram/v1/ideogram-v3/reframe", ["image"]),
    ("ideogram.replace_background", 'prompt: "a beach"',
     "/ideogram/v1/ideogram-v3/replace-background", ["image"]),
    ("ideogram.describe", "describe_model_version: V_3", "/ideogram/describe", ["image_file"]),
    ("ideogram.upscale", "image_request: {resemblance: 60}", "/ideogram/upscale",
     ["image_file"]),
])
def test_ideogram_image_endpoints_upload_their_files(tmp_path: Path, emulator: Emulator, uses: str,
                                                     extra: str, path: str,
                                                     files: list[str]) -> None:
    from flowrunner.emulator.images import png

    (tmp_path / "ref.png").write_bytes(png(64, 64, "reference"))
    recipe_path = recipe(tmp_path, emulator.base_url, f"""
  step:
    uses: {uses}
    with: {{image: ref.png, {extra}}}
""")
    result = flow("run", recipe_path, env=KEY_ENV)
    assert result.code == 0, result
    (call,) = _api(emulator)
    assert call["path"] == path
    assert [f["field"] for f in call["files"]] == files
    assert {f["sha256"] for f in call["files"]} == {sha256(tmp_path / "ref.png")}
    if uses == "ideogram.upscale":  # JSON text inside the multipart form, as Ideogram reads it
        assert call["fields"] == {"image_request": '{"resemblance":60}'}
    lock = yaml.safe_load((tmp_path / "brand.lock").read_text())["instances"]["step"]
    if uses == "ideogram.describe":
        assert lock["outputs"]["descriptions"] and lock["artifacts"] == []
    else:
        assert len(lock["artifacts"]) == 1


def test_midjourney_blend_describe_and_video(tmp_path: Path, emulator: Emulator) -> None:
    import base64

    from flowrunner.emulator.images import png

    for name in ("a", "b"):
        (tmp_path / f"{name}.png").write_bytes(png(64, 64, name))
    path = recipe(tmp_path, emulator.base_url, """
  blend:
    uses: midjourney.blend
    with: {images: [a.png, b.png], dimensions: SQUARE}
    save: blend
  words:
    uses: midjourney.describe
    with: {image: a.png}
  motion:
    uses: midjourney.video
    with: {image: "{{ steps.blend.outputs.url }}", prompt: slow zoom}
    save: [clip-a, clip-b]
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    posts = {c["path"]: c["json"] for c in _api(emulator) if c["method"] == "POST"}
    # files travel in a JSON body as data URLs, under the provider's field names
    expected = "data:image/png;base64," + base64.b64encode(
        (tmp_path / "a.png").read_bytes()).decode()
    assert posts["/mj/submit/blend"]["base64Array"][0] == expected
    assert len(posts["/mj/submit/blend"]["base64Array"]) == 2
    assert posts["/mj/submit/describe"] == {"base64": expected, "botType": "MID_JOURNEY"}
    assert posts["/mj/submit/video"]["motion"] == "low"
    for name in ("clip-a.mp4", "clip-b.mp4"):
        assert sniff((tmp_path / "assets" / name).read_bytes()[:64]) == "video/mp4"
    lock = yaml.safe_load((tmp_path / "brand.lock").read_text())["instances"]
    assert "description 1" in lock["words"]["outputs"]["prompts"]
    assert (tmp_path / "assets" / "clip-a.poster.png").is_file()  # the task's image
    assert 'src="clip-a.mp4" poster="clip-a.poster.png"' in \
        (tmp_path / "assets" / "index.html").read_text()


def test_minimax_takes_three_requests_all_from_the_catalog(
        tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  clip:
    uses: minimax.generate_video
    with: {prompt: "a fox", duration: 6}
    save: clip
  refused:
    uses: minimax.generate_video
    with: {prompt: "a fox", resolution: 1080P, model: Hailuo-9}
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1, result
    # a refusal inside base_resp (HTTP 200) is a failure with MiniMax's words, not a poll
    assert "refused the task (base_resp.status_code 2013: invalid params: model" in result.out
    paths = [c["path"] for c in _api(emulator)]
    assert paths.count("/minimax/v1/video_generation") == 2
    assert paths.count("/minimax/v1/files/retrieve") == 1
    retrieve = [c for c in _api(emulator) if c["path"] == "/minimax/v1/files/retrieve"][0]
    assert retrieve["query"].startswith("file_id=")
    assert sniff((tmp_path / "assets" / "clip.mp4").read_bytes()[:64]) == "video/mp4"


@pytest.mark.slow
def test_minimax_waits_out_a_busy_answer_and_keeps_a_task_it_cannot_read(
        tmp_path: Path, emulator: Emulator) -> None:
    """Issue 25 review: only content refusals (1026, 1027) fail a MiniMax task; a rate
    limit relayed in base_resp (1002) is waited out, and when it persists the step stops
    with the paid task journaled: the next run polls it instead of paying again. The
    built-in entry, polled more often (its own interval is 8 s)."""
    import json

    from flowrunner.catalog.resources import read_json

    entry = read_json("endpoints", "minimax", "generate_video.json")
    entry["task"]["interval"] = 0.4
    (tmp_path / "minimax.json").write_text(json.dumps(entry))
    path = recipe(tmp_path, emulator.base_url, """
  clip:
    uses: minimax.generate_video
    with: {prompt: "a fox"}
    save: clip
""", extra="catalog: [minimax.json]\n")
    emulator.fault("busy-poll")
    result = flow("run", path, env=KEY_ENV, timeout=120)
    assert result.code == 0, result
    emulator.reset()
    (tmp_path / "assets" / "clip.mp4").unlink()
    recipe(tmp_path, emulator.base_url, """
  clip:
    uses: minimax.generate_video
    with: {prompt: "a hare"}
    save: clip
""", extra="catalog: [minimax.json]\n")
    emulator.fault("busy-poll", count=3)
    stopped = flow("run", path, env=KEY_ENV, timeout=120)
    assert stopped.code == 1, stopped
    assert "3 answers in a row say base_resp.status_code 1002: rate limit exceeded" in \
        stopped.out
    resumed = flow("run", path, env=KEY_ENV, timeout=120)
    assert resumed.code == 0, resumed
    submits = [c for c in _api(emulator) if c["path"] == "/minimax/v1/video_generation"]
    assert len(submits) == 1  # paid once
    # a task that still cannot be read a run later is given up, never a step stuck for good
    recipe(tmp_path, emulator.base_url, """
  clip:
    uses: minimax.generate_video
    with: {prompt: "an owl"}
    save: clip
""", extra="catalog: [minimax.json]\n")
    emulator.fault("busy-poll", count=6)
    assert flow("run", path, env=KEY_ENV, timeout=120).code == 1
    given_up = flow("run", path, env=KEY_ENV, timeout=120)
    assert given_up.code == 1 and "the provider no longer answers for task" in \
        given_up.out, given_up
    assert flow("run", path, env=KEY_ENV, timeout=120).code == 0  # submitted anew
    # a journaled task the provider does not know (2013) is forgotten at once
    recipe(tmp_path, emulator.base_url, """
  clip:
    uses: minimax.generate_video
    with: {prompt: "a lynx"}
    save: clip
""", extra="catalog: [minimax.json]\n")
    emulator.fault("busy-poll", count=3)
    assert flow("run", path, env=KEY_ENV, timeout=120).code == 1
    with emulator.state.lock:  # the provider forgot it (restarted, expired)
        emulator.state.tasks.clear()
    unknown = flow("run", path, env=KEY_ENV, timeout=120)
    assert unknown.code == 1 and "2013: task not found" in unknown.out, unknown
    assert flow("run", path, env=KEY_ENV, timeout=120).code == 0


def test_minimax_a_refusal_while_polling_fails_at_once_and_1080p_is_6_seconds(
        tmp_path: Path, emulator: Emulator) -> None:
    """Issue 25, fix 10: a non-zero base_resp in a query answer is a failure with its
    message (the status alone still said Processing); 1080P means 6 s; 720P is offered."""
    emulator.fault("moderate-task")
    path = recipe(tmp_path, emulator.base_url, """
  clip:
    uses: minimax.generate_video
    with: {prompt: "a fox"}
    save: clip
""")
    started = time.monotonic()
    result = flow("run", path, env=KEY_ENV, timeout=120)
    assert result.code == 1, result
    assert time.monotonic() - started < 60  # not polled to the timeout
    assert "(base_resp.status_code 1026: emulated content violation)" in result.out
    long = recipe(tmp_path, emulator.base_url, """
  clip:
    uses: minimax.generate_video
    with: {prompt: "a fox", resolution: 1080P, duration: 10}
  old:
    uses: minimax.generate_video
    with: {prompt: "a fox", model: T2V-01, resolution: 720P}
""", name="long.yaml")
    refused = flow("validate", long)
    assert refused.code == 3 and "1080P videos are 6 seconds long, not 10" in refused.err
    assert "T2V-01" not in refused.err  # 720P is what T2V-01 makes


EVERY_FAMILY = """
  board:
    uses: midjourney.imagine
    with: {prompt: a fox}
    save: board
  upscale:
    uses: midjourney.action
    with: {task_id: "{{ steps.board.outputs.task_id }}", button: U1}
    save: upscale
  blend:
    uses: midjourney.blend
    with: {images: [ref.png, ref.png]}
    save: blend
  mj_describe:
    uses: midjourney.describe
    with: {image: ref.png}
  mj_video:
    uses: midjourney.video
    with: {image: "{{ steps.upscale.outputs.url }}", prompt: slow pan}
    save: [mj-a, mj-b]
  variation:
    uses: midjourney.change
    with: {task_id: "{{ steps.board.outputs.task_id }}", action: VARIATION, index: 3}
    save: variation
  zoom:
    uses: midjourney.action
    with: {task_id: "{{ steps.upscale.outputs.task_id }}", button: Custom Zoom}
  zoomed:
    uses: midjourney.modal
    with: {task_id: "{{ steps.zoom.outputs.task_id }}", prompt: "a fox --zoom 2"}
    save: zoomed
  poster:
    uses: ideogram.generate
    with: {prompt: 'a poster that reads "Acme"'}
    save: poster
  ideo_edit:
    uses: ideogram.edit
    with: {image: ref.png, mask: ref.png, prompt: a fox}
    save: ideo-edit
  ideo_remix:
    uses: ideogram.remix
    with: {image: ref.png, prompt: a fox}
    save: ideo-remix
  ideo_reframe:
    uses: ideogram.reframe
    with: {image: ref.png, resolution: 1312x736}
    save: ideo-reframe
  ideo_bg:
    uses: ideogram.replace_background
    with: {image: ref.png, prompt: a beach}
    save: ideo-bg
  ideo_up:
    uses: ideogram.upscale
    with: {image: ref.png}
    save: ideo-up
  ideo_describe:
    uses: ideogram.describe
    with: {image: ref.png}
  replicate:
    uses: replicate.predict
    with: {model: owner/model, input: {prompt: a fox}}
    save: replicate
  community:
    uses: replicate.predict_version
    with:
      version: 5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa
      input: {prompt: a fox}
    save: community
  gpt_image:
    uses: openai.generate_image
    with: {prompt: a fox}
    save: gpt-image
  gpt_edit:
    uses: openai.edit_image
    with: {image: ref.png, prompt: a fox}
    save: gpt-edit
  kling_image:
    uses: kling.generate_image
    with: {prompt: a fox}
    save: kling-image
  kling_t2v:
    uses: kling.text_to_video
    with: {prompt: a fox}
    save: kling-t2v
  kling_i2v:
    uses: kling.image_to_video
    with: {image: "{{ steps.kling_image.outputs.url }}"}
    save: kling-i2v
  unified:
    uses: video.generate
    with: {model: some-model, prompt: a fox}
    save: unified
  sora:
    uses: sora.create_video
    with: {prompt: a fox}
    save: sora
  veo:
    uses: veo.generate_video
    with: {prompt: a fox}
    save: veo
  luma:
    uses: luma.generate_video
    with: {user_prompt: a fox}
    save: luma
  runway:
    uses: runway.image_to_video
    with: {promptImage: "{{ steps.kling_image.outputs.url }}"}
    save: runway
  minimax:
    uses: minimax.generate_video
    with: {prompt: a fox}
    save: minimax
  pika:
    uses: pika.generate_video
    with: {promptText: a fox}
    save: pika
  lyrics:
    uses: suno.generate_lyrics
    with: {prompt: a jingle}
  music:
    uses: suno.generate_music
    with: {prompt: "{{ steps.lyrics.outputs.text }}"}
    save: [music-a, music-b]
  speech:
    uses: audio.speech
    with: {input: hello, voice: nova}
    save: speech
  transcript:
    uses: audio.transcribe
    with: {file: "{{ steps.speech.files[0] }}"}
"""


def test_every_gateway_family_validates_plans_runs_and_reruns_from_the_cache(
        tmp_path: Path, emulator: Emulator) -> None:
    import json

    from flowrunner.catalog.entries import load_catalog
    from flowrunner.emulator.images import png

    (tmp_path / "ref.png").write_bytes(png(64, 64, "reference"))
    path = recipe(tmp_path, emulator.base_url, EVERY_FAMILY, extra="concurrency: 8\n")
    families = {"midjourney", "ideogram", "replicate", "openai", "kling", "video", "sora",
                "veo", "luma", "runway", "minimax", "pika", "suno", "audio"}
    shipped = {e for e, endpoint in load_catalog().items() if e.split(".")[0] in families
               and endpoint.lifecycle is None}  # a route shut down upstream is refused
    assert shipped == set(re.findall(r"uses: (\S+)", EVERY_FAMILY))  # every id is here
    assert flow("validate", path).code == 0
    planned = json.loads(flow("plan", path, "--json").out)
    assert len(planned["instances"]) == len(re.findall(r"uses: ", EVERY_FAMILY))
    result = flow("run", path, env=KEY_ENV, timeout=300)
    assert result.code == 0, result
    lock = yaml.safe_load((tmp_path / "brand.lock").read_text())["instances"]
    kinds = {str(sniff((tmp_path / a["path"]).read_bytes()[:64])).split("/")[0]
             for entry in lock.values() for a in entry["artifacts"]}
    assert kinds == {"image", "video", "audio"}
    assert flow("verify", path).code == 0
    emulator.reset()
    again = flow("run", path, env=KEY_ENV)
    assert again.code == 0, again
    assert _api(emulator) == []  # every result came from the cache


def test_posters_are_saved_only_when_every_file_is(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  jingle:
    uses: suno.generate_music
    with: {gpt_description_prompt: "a jingle"}
    save: only-a
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    assert sorted(p.name for p in (tmp_path / "assets").iterdir()) == ["index.html",
                                                                      "only-a.wav"]
    lock = yaml.safe_load((tmp_path / "brand.lock").read_text())["instances"]["jingle"]
    assert [a.get("path") for a in lock["artifacts"]] == ["assets/only-a.wav", None, None, None]
    assert flow("verify", path).code == 0
    assert '<img class="cover"' not in (tmp_path / "assets" / "index.html").read_text()


@pytest.mark.slow
def test_a_200_mb_video_streams_to_disk_in_bounded_memory(
        tmp_path: Path, emulator: Emulator) -> None:
    size = 200 << 20
    path = recipe(tmp_path, emulator.base_url, f"""
  film:
    uses: http
    with:
      method: POST
      path: /_emulator/big
      body: {{bytes: {size}, kind: mp4}}
      artifacts: url
    save: film
""")
    # the peak of flow's own memory (VmHWM of its address space, read as it exits): the
    # rusage of a child also counts the parent's pages from before its exec
    peak = tmp_path / "peak.txt"
    probe = ("import atexit, runpy, sys\n"
             "def peak():\n"
             "    line = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
             f"    open({str(peak)!r}, 'w').write(line.split()[1])\n"
             "atexit.register(peak)\n"
             "sys.argv = ['flow', 'run', sys.argv[1]]\n"
             "runpy.run_module('flowrunner', run_name='__main__')\n")
    run = subprocess.run([sys.executable, "-c", probe, str(path)],
                         env=dict(os.environ, **KEY_ENV), capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    film = tmp_path / "assets" / "film.mp4"
    assert film.stat().st_size == size
    assert sniff(film.read_bytes()[:64]) == "video/mp4"
    assert int(peak.read_text()) < 60 * 1024  # KiB: the file never sits in memory
    lock = yaml.safe_load((tmp_path / "brand.lock").read_text())["instances"]["film"]
    assert lock["artifacts"][0]["bytes"] == size


def test_suno_current_default_and_an_old_model_warned(tmp_path: Path, emulator: Emulator) -> None:
    """Issue 25, fix 7: a current default model; chirp-v3-0 is warned about (not refused);
    the extend and cover fields are checked (they reach Suno only through a gateway that
    keeps them: mainline new-api drops them, and so does the emulator)."""
    old = recipe(tmp_path, emulator.base_url, """
  song:
    uses: suno.generate_music
    with: {gpt_description_prompt: a jingle, mv: chirp-v3-0, negative_tags: metal}
    save: [a, b]
""")
    checked = flow("validate", old)
    assert checked.code == 0, checked
    # gone from the lists, with no announced end: a warning that names no invented date
    assert "warning: steps.song.with.mv: chirp-v3-0 is no longer in the provider's model " \
           "list (checked 2026-12-03), so a paid run may fail; use chirp-crow" in checked.err
    # a field mainline new-api drops on the way: said at the parameter, not refused
    assert "warning: steps.song.with.negative_tags: may never reach the provider" in \
        checked.err
    ran = flow("run", old, env=KEY_ENV)
    assert ran.code == 0 and "chirp-v3-0 is no longer in the provider's model list" in \
        ran.out, ran
    cover = recipe(tmp_path, emulator.base_url, """
  song:
    uses: suno.generate_music
    with: {prompt: "[Verse] la", task: cover}
""", name="cover.yaml")
    refused = flow("validate", cover)
    assert refused.code == 3 and "task cover needs cover_clip_id" in refused.err


def test_a_default_model_is_visible_in_plan_lock_and_diff(
        tmp_path: Path, emulator: Emulator) -> None:
    """Issue 25: the model a step will use, defaulted or not, shows in `flow plan` (marked
    as the entry's default) and the lock file, so a default that changes in a new release
    shows up as a change in `flow diff`."""
    import json
    import subprocess

    from flowrunner.catalog.resources import read_json

    entry = read_json("endpoints", "openai", "generate_image.json")
    entry["id"] = "team.image"
    (tmp_path / "image.json").write_text(json.dumps(entry))
    path = recipe(tmp_path, emulator.base_url, """
  hero:
    uses: team.image
    with: {prompt: "a cup"}
    save: hero
""", extra="catalog: [image.json]\n")
    plan = flow("plan", path)
    assert "model: gpt-image-1.5 (default)" in plan.out, plan
    assert flow("run", path, env=KEY_ENV).code == 0
    lock = yaml.safe_load((tmp_path / "brand.lock").read_text())["instances"]
    assert lock["hero"]["params"]["model"] == "gpt-image-1.5"
    for args in (["init", "-q"], ["config", "user.email", "ci@example.invalid"],
                 ["config", "user.name", "CI"], ["add", "-A"], ["commit", "-q", "-m", "kit"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    entry["defaults"]["model"] = "gpt-image-2"  # the next release pins another model
    (tmp_path / "image.json").write_text(json.dumps(entry))
    assert flow("run", path, env=KEY_ENV).code == 0
    diff = flow("diff", path)
    assert diff.code == 0, diff
    assert "changed  hero" in diff.out and "gpt-image-1.5" in diff.out and \
        "gpt-image-2" in diff.out, diff.out


def _is_submit(request: dict) -> bool:
    """A task's submit (not a batch poll, which is a POST too)."""
    return request["method"] == "POST" and ("/submit/" in request["path"]
                                            or request["path"].startswith("/kling/"))


def _fast_entry(tmp_path: Path, endpoint: str) -> None:
    """The built-in entry of ``endpoint`` as a local entry (`entry.json`), polled every
    0.05 s instead of every few seconds."""
    import json

    from flowrunner.catalog.resources import read_json

    family, name = endpoint.split(".")
    entry = read_json("endpoints", family, f"{name}.json")
    entry["task"]["interval"] = 0.05
    (tmp_path / "entry.json").write_text(json.dumps(entry, ensure_ascii=False))


TASK_FAMILIES = {
    "flux.generate": "{model: flux-pro-1.1, prompt: a fox, width: 512, height: 512}",
    "kling.generate_image": "{prompt: a fox}",
    "kling.text_to_video": "{prompt: a fox}",
    "luma.generate_video": "{user_prompt: a fox, duration: 5s}",
    "midjourney.imagine": "{prompt: a fox}",
    "minimax.generate_video": "{prompt: a fox}",
    "pika.generate_video": "{promptText: a fox}",
    "replicate.predict": "{model: black-forest-labs/flux-schnell, input: {prompt: a fox}}",
    "sora.create_video": "{prompt: a fox}",
    "suno.generate_lyrics": "{prompt: a jingle}",
    "suno.generate_music": "{gpt_description_prompt: a jingle}",
    "veo.generate_video": "{prompt: a fox}",
    "video.generate": "{model: kling-v2-master, prompt: a cup, size: 1280x720, duration: 5}",
}


@pytest.mark.parametrize("endpoint", sorted(TASK_FAMILIES))
def test_every_task_family_reads_a_running_task_as_running(
        tmp_path: Path, emulator: Emulator, endpoint: str) -> None:
    """Each family's entry, polled while the provider's task still runs (the emulator's
    own pending states, from each family's contract): a status the entry puts in the
    wrong set (a pending state among the failures, say) fails here. Each entry is the
    built-in one, polled every 0.05 s instead of every few seconds."""
    _fast_entry(tmp_path, endpoint)
    emulator.pending_polls = 1
    path = recipe(tmp_path, emulator.base_url, f"""
  task:
    uses: {endpoint}
    with: {TASK_FAMILIES[endpoint]}
""", extra="catalog: [entry.json]\n")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    polls = [c for c in _api(emulator) if c["method"] == "GET"]
    assert len(polls) >= 2, polls  # one answer still running, read as such, then done


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ["kling.text_to_video", "midjourney.imagine"])
def test_a_provider_busy_with_the_keys_tasks_is_waited_out_and_each_task_paid_once(
        tmp_path: Path, emulator: Emulator, endpoint: str) -> None:
    """Issue 28: Kling's 1303 (HTTP 429) and Midjourney's "queue full" (code 23) while the
    key's running tasks are at the provider's limit: the run waits and submits again,
    never counts it as a failure, and every task is submitted (paid) once."""
    _fast_entry(tmp_path, endpoint)
    emulator.state.max_running = 1
    emulator.state.tasks.task_seconds = 0.3
    path = recipe(tmp_path, emulator.base_url, f"""
  clip:
    uses: {endpoint}
    matrix: {{n: [1, 2, 3]}}
    with: {{prompt: "a fox {{{{ matrix.n }}}}"}}
""", extra="catalog: [entry.json]\nconcurrency: 3\n")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    assert "3 called" in result.out and "0 failed" in result.out
    if endpoint.startswith("midjourney"):  # (Kling's 429s are first the client's retries)
        assert "for the provider to free a task slot" in result.out
    submits = [r for r in _api(emulator) if _is_submit(r)]
    refused = [r for r in submits if r.get("refused") == "busy"]
    assert refused, "the limit was never reached"
    assert len(submits) - len(refused) == 3  # each task accepted (paid) exactly once


@pytest.mark.slow
def test_max_in_flight_keeps_the_provider_under_its_limit_and_a_refusal_lowers_it(
        tmp_path: Path, emulator: Emulator) -> None:
    """Issue 28: with the provider's limit as `max_in_flight`, a submit waits for a free
    slot and the provider refuses nothing; without it, the first refusal brings the run's
    limit down to what runs (said once), and every task is still paid once."""
    _fast_entry(tmp_path, "midjourney.imagine")
    emulator.state.max_running = 1
    emulator.state.tasks.task_seconds = 0.3
    steps = """
  board:
    uses: midjourney.imagine
    matrix: {n: [1, 2, 3]}
    with: {prompt: "a cup {{ matrix.n }}"}
"""
    path = recipe(tmp_path, emulator.base_url, steps, extra="catalog: [entry.json]\n"
                  "concurrency: 3\n")
    path.write_text(path.read_text().replace("provider:\n", "provider:\n  max_in_flight: 1\n"))
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    submits = [r for r in _api(emulator) if _is_submit(r)]
    assert len(submits) == 3 and not any(r.get("refused") for r in submits)

    emulator.reset()
    path.write_text(path.read_text().replace("  max_in_flight: 1\n", "")
                    .replace("a cup", "a mug"))
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    assert result.out.count("task(s) in flight on provider 'default' for now") == 1
    submits = [r for r in _api(emulator) if _is_submit(r)]
    assert len([r for r in submits if not r.get("refused")]) == 3


@pytest.mark.slow
def test_a_tasks_timeout_starts_with_its_slot(tmp_path: Path, emulator: Emulator) -> None:
    """Review: waiting for a slot must not use up the step's timeout (and then pay for a
    task it has no time left to wait for)."""
    _fast_entry(tmp_path, "midjourney.imagine")
    emulator.state.tasks.task_seconds = 0.6
    path = recipe(tmp_path, emulator.base_url, """
  board:
    uses: midjourney.imagine
    matrix: {n: [1, 2, 3]}
    with: {prompt: "a cup {{ matrix.n }}"}
    timeout: 1.5
""", extra="catalog: [entry.json]\nconcurrency: 3\n")
    path.write_text(path.read_text().replace("provider:\n", "provider:\n  max_in_flight: 1\n"))
    result = flow("run", path, env=KEY_ENV)  # 3 × 0.6 s one after another: 1.8 s > 1.5 s
    assert result.code == 0, result
    assert len([r for r in _api(emulator) if _is_submit(r)]) == 3


@pytest.mark.slow
def test_the_catalogs_cap_for_a_family_keeps_bfl_under_its_24_running_tasks(
        tmp_path: Path) -> None:
    """Issue 28: BFL runs at most 24 of a key's jobs at once (its rate-limiting guide):
    the flux entry says so for the `bfl` kind, and 30 tasks run without one refusal."""
    import threading

    from flowrunner.emulator.server import make_server

    server = make_server("127.0.0.1", 0, api_key=CANARY_KEY, kind="bfl", pending_polls=0,
                         task_seconds=0.5, max_running=24)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                     daemon=True).start()
    try:
        _fast_entry(tmp_path, "flux.generate")
        path = tmp_path / "hero.yaml"
        path.write_text(
            "version: 1\nconcurrency: 8\ncatalog: [entry.json]\n"
            f"provider: {{base_url: \"http://127.0.0.1:{server.server_port}\", kind: bfl, "
            "api_key_env: BFL_API_KEY, auth: {header: x-key}}\n"
            "vars:\n  items: " + str(list(range(30))) + "\n"
            "steps:\n  hero:\n    uses: flux.generate\n    matrix: {n: \"{{ vars.items }}\"}\n"
            "    with: {model: flux-pro-1.1, prompt: \"a fox {{ matrix.n }}\", width: 256, "
            "height: 256}\n")
        plan = flow("plan", path)
        assert "default/flux 24 (the provider's)" in plan.out, plan
        result = flow("run", path, env={"BFL_API_KEY": CANARY_KEY})
        assert result.code == 0, result
        with server.state.lock:
            submits = [r for r in server.state.requests if r["method"] == "POST"]
        assert len(submits) == 30 and not any(r.get("refused") for r in submits)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize(("endpoint", "params", "batch", "single"), [
    ("midjourney.imagine", "{prompt: \"a cup {{ matrix.n }}\"}", "/mj/task/list-by-condition",
     "/fetch"),
    ("suno.generate_lyrics", "{prompt: \"a jingle {{ matrix.n }}\"}", "/suno/fetch",
     "/suno/fetch/"),
])
def test_parked_tasks_of_a_family_are_polled_together(
        tmp_path: Path, emulator: Emulator, endpoint: str, params: str, batch: str,
        single: str) -> None:
    """Issue 28: a provider's due tasks of Midjourney or Suno are polled in one batch
    request (their catalog `batch` route), not one request each."""
    _fast_entry(tmp_path, endpoint)
    emulator.state.tasks.task_seconds = 0.8
    path = recipe(tmp_path, emulator.base_url, f"""
  many:
    uses: {endpoint}
    matrix: {{n: [1, 2, 3, 4, 5, 6]}}
    with: {params}
""", extra="catalog: [entry.json]\nconcurrency: 6\n")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    calls = _api(emulator)
    batches = [c for c in calls if c["method"] == "POST" and c["path"] == batch]
    singles = [c for c in calls if c["method"] == "GET" and single in c["path"]]
    assert batches, [c["path"] for c in calls]
    assert max(len(c["json"]["ids"]) for c in batches) > 1
    assert len(singles) < 6 * 3  # far fewer lone polls than tasks × polls


@pytest.mark.slow
@pytest.mark.parametrize("in_flight", [1])  # (with 2 it ended, a slot short: checked once)
def test_instances_sharing_one_task_finish_and_give_their_slots_back(
        tmp_path: Path, emulator: Emulator, in_flight: int) -> None:
    """Review: three instances of one cache key (the same prompt) follow one task; the
    ones answered from the cache give back the slots they held or waited for, so the
    run ends (it hung with a limit of 1) with one submit."""
    import os
    import subprocess
    import sys

    _fast_entry(tmp_path, "suno.generate_lyrics")
    emulator.state.tasks.task_seconds = 0.5
    path = recipe(tmp_path, emulator.base_url, """
  lyrics:
    uses: suno.generate_lyrics
    matrix: {n: [1, 2, 3]}
    with: {prompt: "the same jingle"}
""", extra="catalog: [entry.json]\n")
    path.write_text(path.read_text().replace("provider:\n",
                                             f"provider:\n  max_in_flight: {in_flight}\n"))
    done = subprocess.run([sys.executable, "-m", "flowrunner", "run", str(path)],
                          env={**os.environ, **KEY_ENV}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 called, 2 cached" in done.stdout
    assert len([r for r in _api(emulator) if _is_submit(r)]) == 1


@pytest.mark.slow
def test_a_task_that_never_gets_a_slot_fails_at_its_timeout_unsubmitted(
        tmp_path: Path, emulator: Emulator) -> None:
    """Review: two tasks out of time keep their slots (the provider still runs them);
    the two waiting behind them fail at their own timeout, submitting nothing, instead
    of waiting for ever."""
    import os
    import subprocess
    import sys

    _fast_entry(tmp_path, "suno.generate_lyrics")
    emulator.state.tasks.task_seconds = 30
    path = recipe(tmp_path, emulator.base_url, """
  lyrics:
    uses: suno.generate_lyrics
    matrix: {n: [1, 2, 3, 4]}
    with: {prompt: "a jingle {{ matrix.n }}"}
    timeout: 1
""", extra="catalog: [entry.json]\n")
    path.write_text(path.read_text().replace("provider:\n", "provider:\n  max_in_flight: 2\n"))
    done = subprocess.run([sys.executable, "-m", "flowrunner", "run", str(path)],
                          env={**os.environ, **KEY_ENV}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    waited = [line for line in done.stdout.splitlines() if "FAILED" in line
              and "for a free task slot (`max_in_flight`); nothing was submitted" in line]
    assert len(waited) == 2, done.stdout
    assert len([r for r in _api(emulator) if _is_submit(r)]) == 2
