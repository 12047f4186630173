"""The line above the tabs: which model this session uses, and the way back to the shipped one."""
from __future__ import annotations

import gradio as gr

from ..app import texts
from ..app.serving import ModelChoice
from ..app.session import Session
from .common import AppContext, Shared, owner, user_errors


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

    @user_errors
    def use_reference(self, session: Session, request: gr.Request = None):
        """The reference design (the course's `seed` architecture, trained here), for this session
        only: every tab then shows it, so the two designs can be compared view by view."""
        session = session.with_model(self.ctx.reference_choice(owner(request)))
        return self.banner(session), session


def build(ctx: AppContext, shared: Shared) -> None:
    h = HeaderHandlers(ctx)
    restore = gr.Button("Restore shipped model", size="sm", elem_id="restore", scale=0, min_width=180)
    reference = gr.Button("Use the reference design", size="sm", elem_id="use_reference", scale=0,
                          min_width=180, visible=ctx.reference is not None)
    shared.demo.load(h.banner, [shared.session], [shared.banner], api_visibility="private")
    event = restore.click(h.restore, [shared.session], [shared.banner, shared.session],
                          api_visibility="private")
    shared.model_events.append(event)
    shared.model_events.append(reference.click(h.use_reference, [shared.session], [shared.banner, shared.session],
                                               api_visibility="private"))
    # after every model change (activate, upload, restore): the measured accuracy, if known
    shared.refreshers.append((h.banner, [shared.session], [shared.banner]))
