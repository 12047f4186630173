"""The app's tabs, one module each. `app.py` only lays them out and launches.

How to add a tab
----------------
1. Write `cifar_s9/ui/<name>.py` with a handler class and a `build` function::

       class MyHandlers:                       # plain methods: tests call them without a server
           def __init__(self, ctx: AppContext):
               self.ctx = ctx

           @user_errors                        # ValueError -> one readable gr.Error, no traceback
           def show(self, session: Session):
               active = self.ctx.model(session)            # this visitor's model (ActiveModel)
               rgb = to_rgb32(session.image) if session.image else None  # the current image
               ...

       def build(ctx: AppContext, shared: Shared, tab: gr.Tab) -> None:
           h = MyHandlers(ctx)
           out = gr.Markdown()
           tab.select(h.show, [shared.session], [out], api_visibility="private")

2. Register it in `app.py`'s `TABS` list: `("My tab", "my_tab", my_module.build)`.

Where things come from
----------------------
- `ctx` (`common.AppContext`) is server-wide and shared by every visitor: the model cache
  (`ctx.model(session)` gives the session's `ActiveModel`: `.model`, `.card`, `.source`,
  `.warning`), the evaluation cache, the one training slot, the test data (`ctx.test_data()`).
- `shared.session` is the `gr.State` holding this visitor's `session.Session`: `.model` (a small
  `ModelChoice`, the shipped model by default), `.image` (the current image: the path of the
  file Gradio stored for Classify's upload or example; None until one is chosen), `.aug` (the lab's
  `AugmentConfig`). Put it in `inputs=` to read it; return a changed copy
  (`session.with_image(...)`) in `outputs=` to change it, and only from a short handler: a stream
  that returned it would undo what other tabs changed meanwhile (so the training run a session
  started is the slot's record, `jobs.latest(owner, "run")`, not a field of the session).
- `shared.run_token` (a `gr.BrowserState`, kept across reloads) holds the token of this browser's
  latest job in the training slot; `shared.ticker` (a `gr.Timer` outside the tabs, so it ticks
  on every tab) is the page's heartbeat. `ctx.jobs` is the one slot, `ctx.experiments` the A/B
  manager that runs in it (`app/slot.py` says who may stop, attach or extend a job).
- `shared.refreshers.append((fn, inputs, outputs))` re-runs `fn` after the session's model
  changes (activate, restore, upload); `shared.tabs` switches tabs (`gr.Tabs(selected=id)`).
- Computations a tab shows live below ui/ (`app.serving`, `app.texts`, `app.lab`, `analysis.report`, `analysis.plots`),
  tested as plain functions; the module only wires components to them.

Rules every handler follows (the app is public; every event is an HTTP endpoint)
- No module-level state that one visitor could change for another: per-visitor things go in
  the Session; only the training slot is shared.
- Images arrive only through `common.image_input()` (a file in Gradio's upload folder whose header
  was checked); never open a path taken from a request. Hidden handlers get
  `api_visibility="private"`; named API endpoints hang on a hidden button (see classify.py).
- Never show a server path: models are named by file or run name; texts that may hold one
  (exception messages, training messages) go through `redact.scrub`.
"""
