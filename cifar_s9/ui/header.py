"""The line above the tabs: which model this session uses, and the way back to the shipped one."""
from __future__ import annotations

import gradio as gr

from ..app import texts
from ..app.serving import ModelChoice
from ..app.session import Session
from .common import AppContext, Shared


class HeaderHandlers:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def banner(self, session: Session) -> str:
        """The session's model and its accuracy: the app's evaluation once there is one (the
        number the Mistakes tab shows), else its card's, each with the images it counts."""
        active = self.ctx.model(session)
        return texts.banner(active.source, active.card, active.warning, session.model.shipped,
                            self.ctx.measured(active))

    def restore(self, session: Session):
        """Back to the shipped model, for this session only."""
        session = session.with_model(ModelChoice())
        return self.banner(session), session


def build(ctx: AppContext, shared: Shared) -> None:
    h = HeaderHandlers(ctx)
    restore = gr.Button("Restore shipped model", size="sm", elem_id="restore", scale=0, min_width=180)
    shared.demo.load(h.banner, [shared.session], [shared.banner], api_visibility="private")
    event = restore.click(h.restore, [shared.session], [shared.banner, shared.session],
                          api_visibility="private")
    shared.model_events.append(event)
    # after every model change (activate, upload, restore): the measured accuracy, if known
    shared.refreshers.append((h.banner, [shared.session], [shared.banner]))
