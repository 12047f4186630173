"""One budget for heavy work (issue 25): every handler of the app that may decode an image or run
the network is in one concurrency group, so their number at once is one known figure."""
from __future__ import annotations

import gradio as gr
import pytest

from cifar_s9.app import workload


def test_every_computing_event_of_the_app_shares_one_group():
    import app

    groups = {(fn.concurrency_id, fn.concurrency_limit) for fn in app.demo.fns.values()
              if fn.concurrency_limit is not None}
    assert groups == {(workload.HEAVY_GROUP, workload.HEAVY_LIMIT), (workload.IN_ORDER_GROUP, 1)}
    # only the experiment's link box, which builds a string: it decodes nothing and runs no network
    in_order = [fn.fn.__qualname__ for fn in app.demo.fns.values() if fn.concurrency_id == workload.IN_ORDER_GROUP]
    assert in_order == ["ExperimentHandlers.share"]
    waiting = {fn.fn.__name__ for fn in app.demo.fns.values() if fn.concurrency_limit is None}
    # the training stream, its re-attached stream after a reload, its stop and the page's
    # heartbeat: they wait and compute nothing (the one slot bounds the work), and a heartbeat
    # stuck behind heavy work would let an honest run look abandoned
    assert waiting <= {"start", "attach", "stop", "tick"}, waiting
    assert app.launch_options()["state_session_capacity"] == workload.SESSION_CAPACITY


def test_share_one_budget_leaves_only_the_declared_waiters_out():
    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.change(lambda x: x, box, box)
        box.submit(lambda x: x, box, box, concurrency_limit=None)
        box.blur(lambda x: x, box, box, concurrency_limit=1, concurrency_id="mine")
        box.focus(lambda x: x, box, box, concurrency_limit=5, concurrency_id=workload.IN_ORDER_GROUP)
    left_out = workload.share_one_budget(demo, limit=3)
    fns = list(demo.fns.values())
    assert len(left_out) == 2 and fns[1].concurrency_limit is None
    assert (fns[3].concurrency_id, fns[3].concurrency_limit) == (workload.IN_ORDER_GROUP, 1)  # in order: one at a time
    assert [(f.concurrency_id, f.concurrency_limit) for f in (fns[0], fns[2])] == [(workload.HEAVY_GROUP, 3)] * 2


def test_one_session_or_address_cannot_fill_the_queue_over_raw_http():
    import threading

    import httpx
    from synthetic import free_port

    entered, release = threading.Event(), threading.Event()

    def hold(text):
        entered.set()
        release.wait(600)
        return text

    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(hold, box, box, api_name="hold", concurrency_limit=1)
    workload.fair_queue(demo, per_session=3, per_client=5)
    port = free_port()
    demo.queue(max_size=64).launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                                   quiet=True)
    url = f"http://127.0.0.1:{port}/gradio_api/queue/join"

    def join(session: str) -> int:
        body = {"data": ["x"], "fn_index": 0, "session_hash": session, "event_data": None, "trigger_id": None}
        return httpx.post(url, json=body, timeout=120).status_code

    try:
        assert join("a") == 200
        assert entered.wait(600)  # that one runs; what follows waits behind it
        assert [join("a") for _ in range(4)] == [200, 200, 200, 503]  # 3 waiting per session
        assert join("b") == 200 and join("c") == 200  # others still get in ...
        assert join("d") == 503  # ... until the address has 5 waiting
    finally:
        release.set()
        demo.close()


def test_seats_refuse_one_more_at_once_and_free_on_every_way_out():
    import pytest
    from cifar_s9.errors import UserError

    seats = workload.Seats(2, "busy now")
    with seats.taken(), seats.taken():
        with pytest.raises(UserError, match="busy now"):
            with seats.taken():
                pass
    with pytest.raises(RuntimeError):
        with seats.taken(), seats.taken():
            raise RuntimeError("the work failed")
    with seats.taken(), seats.taken():  # both came back after the failure
        pass


def test_a_shared_app_runs_torch_on_one_thread_and_a_personal_app_on_its_default():
    assert workload.torch_threads(None, local=False) == workload.SHARED_APP_THREADS == 1
    assert workload.torch_threads(None, local=True) is None
    assert workload.torch_threads(3, local=False) == workload.torch_threads(3, local=True) == 3
    with pytest.raises(ValueError, match="at least 1"):
        workload.torch_threads(0, local=False)


def test_use_torch_threads_sets_the_process_count():
    import torch

    before = torch.get_num_threads()
    try:
        assert workload.use_torch_threads(2, local=False) == 2 == torch.get_num_threads()
        assert workload.use_torch_threads(None, local=False) == 1 == torch.get_num_threads()
        assert workload.use_torch_threads(None, local=True) == 1  # left as it was
    finally:
        torch.set_num_threads(before)
