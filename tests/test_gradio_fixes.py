"""What cifar_s9.app.gradio_fixes removes from Gradio (issue 25): a fresh session_hash copying the
page's configuration (31 ms and 444 KB each), output pictures rewritten while downloaded (with
Gradio's own writer, 4,450 of 5,000 reads below saw a short file), matplotlib's backend search
on every event."""
from __future__ import annotations

import os
import threading
import tracemalloc

import gradio as gr
import numpy as np
from PIL import Image

from cifar_s9.app import gradio_fixes





def picture(side: int = 64) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8))


def test_the_same_picture_again_leaves_the_file_alone(tmp_path):
    first = gradio_fixes.save_pil_to_cache(picture(), str(tmp_path), format="png")
    os.utime(first, ns=(10**9, 10**9))  # long ago: a rewrite would move it
    again = gradio_fixes.save_pil_to_cache(picture(), str(tmp_path), format="png")
    assert again == first and os.stat(again).st_mtime_ns == 10**9
    assert Image.open(again).size == (64, 64)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["image.png"]  # no temporary left


def test_readers_never_see_a_partial_file_while_writers_save_the_same_picture(tmp_path):
    img = picture()  # small: many writes per second, as many visitors clicking one example
    path = gradio_fixes.save_pil_to_cache(img, str(tmp_path), format="jpeg")
    size = len(open(path, "rb").read())
    short, stop = [], threading.Event()

    def write():
        while not stop.is_set():
            gradio_fixes.save_pil_to_cache(img, str(tmp_path), format="jpeg")

    writers = [threading.Thread(target=write) for _ in range(2)]
    for w in writers:
        w.start()
    try:
        for _ in range(5000):
            n = len(open(path, "rb").read())
            if n != size:
                short.append(n)
    finally:
        stop.set()
        for w in writers:
            w.join()
    assert short == []


def test_install_routes_gradio_image_outputs_through_it(tmp_path):
    import gradio as gr
    from gradio import processing_utils

    gradio_fixes.atomic_picture_cache()
    assert processing_utils.save_pil_to_cache is gradio_fixes.save_pil_to_cache
    out = gr.Image(format="jpeg").postprocess(np.zeros((8, 8, 3), np.uint8))
    assert out.path.endswith(".jpeg") and Image.open(out.path).size == (8, 8)





def page(blocks: int = 200) -> gr.Blocks:
    with gr.Blocks() as demo:
        box = gr.Textbox("shown")
        state = gr.State(0)
        for i in range(blocks):
            gr.Slider(0, 10, i % 10, label=f"slider {i}")
        box.change(lambda v, n: (v, n + 1), [box, state], [box, state])
    return demo


def test_a_new_session_renders_no_block_configuration():
    from gradio import blocks, route_utils, state_holder

    demo = page()
    gradio_fixes.lean_sessions()
    assert state_holder.SessionState is blocks.SessionState is route_utils.SessionState
    tracemalloc.start()
    sessions = [state_holder.SessionState(demo) for _ in range(50)]
    per_session, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert per_session / 50 < 50_000  # Gradio's own: about 2 KB per block, 400 KB here
    assert sessions[0].config_values == {}


def test_state_values_and_deep_links_still_work():
    from gradio import state_holder

    demo = page(blocks=3)
    gradio_fixes.lean_sessions()
    session = state_holder.SessionState(demo)
    state_id = next(k for k, b in demo.blocks.items() if isinstance(b, gr.State))
    assert session[state_id] == 0  # the State's initial value, deep-copied per session
    session[state_id] = 5
    assert session[state_id] == 5 and state_holder.SessionState(demo)[state_id] == 0
    components = list(session.components)  # what a deep link reads: every block's config
    assert len(components) >= len(demo.blocks) - 1
    assert any(c.get("props", {}).get("value") == "shown" for c in components)


def test_events_no_longer_search_for_a_plotting_backend():
    """The backend is chosen once: Gradio's per-event switch then finds "agg" and stays (with
    matplotlib's automatic choice it searched for GUI toolkits on every event, bench: 1.46 ms)."""
    import matplotlib
    from gradio import utils

    gradio_fixes.headless_plots()
    with utils.MatplotlibBackendMananger():
        assert matplotlib.get_backend().lower() == "agg"
    assert dict.__getitem__(matplotlib.rcParams, "backend").lower() == "agg"  # not the "auto" sentinel


def test_finished_events_are_not_summarised_with_pandas():
    """Gradio's own summary (a DataFrame of up to 10,000 events after every event) would call
    `_get_df` here; the installed one returns the summary as it was."""
    from types import SimpleNamespace

    from gradio import queueing

    def summarised(records):
        raise AssertionError("the event history was summarised")

    gradio_fixes.install()
    records = [{"function": "classify", "process_time": 0.01, "status": "success", "time": 0.0}] * 500
    queue = SimpleNamespace(events_recorded=500, event_count_at_last_cache=0, ANAYLTICS_CACHE_FREQUENCY=1,
                            events_recorded_per_fn={}, cached_event_analytics_summary={"functions": {}},
                            _get_df=summarised)
    assert queueing.Queue.compute_analytics_summary(queue, records) == {"functions": {}}
