"""cifar_s9 lab: classify, explain, augment, train and inspect a small CIFAR-10 network.

Run `python app.py [--weights PATH] [--data-dir DIR]`, then open http://127.0.0.1:7860
(GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override the address). This file is layout and launch;
each tab is a module in `cifar_s9/ui/` (see its docstring for how to add one).
Named API endpoints: /classify, /explain, /compare, /augment_preview, /feature_maps,
/receptive_field, /occlusion, /explain_all, /faithfulness, /experiment_start, /experiment_status,
/experiment_stop, /runs, /runs_overlay.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import gradio as gr

from cifar_s9.data import app_data
from cifar_s9.app import cleanup, gradio_fixes, http_limits, uploads, workload
from cifar_s9 import paths
from cifar_s9.data.cifar import DEFAULT_CACHE
from cifar_s9.app.experiment_jobs import Experiments
from cifar_s9.app.jobs import LOCAL_SLOT, PUBLIC_SLOT, TrainingJobs
from cifar_s9.app.slot import HEARTBEAT_S
from cifar_s9.experiments.runner import experiment_data
from cifar_s9.app.serving import EvaluationCache, ModelCache
from cifar_s9.app.session import Session
from cifar_s9.ui import augment_lab, classify, experiments, header, inside, mistakes, model, train
from cifar_s9.ui.common import AppContext, Shared

TABS = [("Classify", "classify", classify.build), ("Augmentation lab", "augment", augment_lab.build),
        ("Train", "train", train.build), ("Experiments", "experiments", experiments.build),
        ("Mistakes", "mistakes", mistakes.build), ("Inside", "inside", inside.build),
        ("Model", "model", model.build)]
CSS_FILE = paths.PACKAGE_DIR / "ui" / "app.css"
# Safe defaults for a public app: local-only unless GRADIO_SERVER_NAME says otherwise, request
# bodies and uploads capped before they are read (cifar_s9.app.http_limits), 4 requests at a time,
# 64 queued; the upload folder pruned by age and size (cifar_s9.app.cleanup). Queue positions are
# sent once a second: Gradio's "auto" sends every waiting visitor a message each time any event
# starts, 60 messages per request with a full queue (a tenth of the server's time at 64 users).
MAX_UPLOAD = http_limits.MAX_UPLOAD_BYTES
QUEUE = dict(default_concurrency_limit=4, max_size=64, status_update_rate=1)


def configure(weights=None, data_dir=None, runs_dir=None, local: bool | None = None) -> AppContext:
    """The server-wide context (models, evaluations, the training slot) for the CLI flags and
    the tests; updated in place, so the demo built at import serves the new settings. `local`
    (or CIFAR_S9_LOCAL=1) lifts the training slot's time limit of a public app."""
    weights = weights or os.environ.get("CIFAR_S9_WEIGHTS") or paths.DEFAULT_WEIGHTS
    data_dir = app_data.data_dir_from_env(data_dir)
    runs_dir = runs_dir or os.environ.get("CIFAR_S9_APP_RUNS") or paths.APP_RUNS_DIR
    local = os.environ.get("CIFAR_S9_LOCAL") == "1" if local is None else local
    jobs = TrainingJobs(runs_dir, lambda: app_data.load_training_data(data_dir),
                        policy=LOCAL_SLOT if local else PUBLIC_SLOT)
    evals = EvaluationCache(disk_dir=DEFAULT_CACHE / "evaluations")  # per weights and test set
    experiments = Experiments(jobs, lambda: experiment_data(data_dir))  # in the same one slot
    reference = os.environ.get("CIFAR_S9_REFERENCE_WEIGHTS") or paths.REFERENCE_WEIGHTS
    ctx = AppContext(ModelCache(weights), evals, jobs, experiments, data_dir,
                     Path(reference) if Path(reference).is_file() else None)
    if "CTX" not in globals():
        return ctx
    vars(CTX).update(vars(ctx))
    return CTX


def build_demo(ctx: AppContext) -> gr.Blocks:
    gradio_fixes.install()  # lean new sessions, atomic output pictures, one matplotlib backend
    with gr.Blocks(title="cifar_s9 lab") as demo:
        gr.Markdown("# cifar_s9 lab\nA <200k-parameter CIFAR-10 network: classify, explain, augment, "
                    "train and inspect it. Your choices (model, image, settings) are yours alone.")
        with gr.Row(equal_height=True, elem_id="header_row"):
            banner = gr.Markdown(elem_id="banner")
            shared = Shared(demo, gr.State(Session()), banner,
                            [str(p) for p in app_data.example_paths()])
            header.build(ctx, shared)
        # survives a reload (a new session): the token re-attaches the page to its run
        shared.run_token = gr.BrowserState(None, storage_key="cifar_s9_run")
        shared.ticker = gr.Timer(HEARTBEAT_S)
        with gr.Tabs(overflow_behavior="wrap") as tabs:  # a phone shows every tab, in rows
            shared.tabs = tabs
            for title, tab_id, build in TABS:
                with gr.Tab(title, id=tab_id) as tab:
                    build(ctx, shared, tab)
        for event in shared.model_events:  # a new model for this session: refresh what shows it
            for fn, inputs, outputs in shared.refreshers:
                event.success(fn, inputs, outputs, api_visibility="private")
    workload.share_one_budget(demo)  # at most HEAVY_LIMIT image or network handlers at once
    workload.fair_queue(demo)  # a few waiting events per session and per address
    return uploads.refuse_downloads(demo)  # no file input makes the server fetch a web address


CTX = configure()
demo = build_demo(CTX)


def launch_options(share: bool = False) -> dict:
    return dict(server_name=os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1",
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), share=share,
                css=CSS_FILE.read_text(), theme=gr.themes.Soft(),
                state_session_capacity=workload.SESSION_CAPACITY, **http_limits.launch_kwargs())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="checkpoint to serve (default: the shipped weights)")
    parser.add_argument("--data-dir", help="CIFAR-10 image folder (DIR/test/<class>/*) for the "
                                           "Mistakes tab and training; env CIFAR_S9_DATA_DIR")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--local", action="store_true",
                        help="a personal app: training runs and experiments have no time limit")
    parser.add_argument("--threads", type=int, help="torch threads (default: 1 for a shared app, "
                                                    "every core with --local)")
    args = parser.parse_args(argv)
    ctx = configure(args.weights, args.data_dir, local=args.local or None)
    workload.use_torch_threads(args.threads, ctx.jobs.policy is LOCAL_SLOT)
    cleanup.keep_pruned(uploads.upload_folder(), **cleanup.UPLOAD_CAPS,
                        keep=lambda: uploads.files_in_use(demo))
    CTX.warm_up()  # the shipped model's test-set evaluation, before the first visitor asks
    demo.queue(**QUEUE).launch(**launch_options(share=args.share))


if __name__ == "__main__":
    main()
