"""Model tab: the session's model: architecture (torchinfo), receptive field, the rules and
its card; and a checkpoint of your own, used by your session only after the same checks."""
from __future__ import annotations

import gradio as gr

from ..analysis import plots, report
from ..app import redact, texts
from ..records.checkpoint import CheckpointError
from ..model.rules import check_rules
from ..app.session import Session
from .common import AppContext, Shared, owner, uploaded_file, user_errors
from ..errors import UserError


def passes_rules(model) -> None:
    """A checkpoint from outside is served only if it is a network of this project's kind."""
    failed = [r.rule for r in check_rules(model) if not r.passed]
    if failed:
        raise CheckpointError(f"this checkpoint breaks the project's rules ({', '.join(failed)}); "
                              "only networks that pass them can be used here")


class ModelHandlers:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def show(self, session: Session):
        active = self.ctx.model(session)
        rf_rows = report.receptive_field_rows(active.model)
        history = active.card.get("history") or []
        curves = plots.training_curves(history, title="training curves from the model card") if history else None
        measured = self.ctx.measured(active)  # the banner's and the Mistakes tab's number, if known
        words = f"{measured[0]:.2%} on {texts.test_images(*measured[1:])}" if measured else None
        card = report.card_markdown(active.card, active.source, active.warning, measured=words)
        return (report.architecture_rows(active.model), rf_rows, plots.receptive_field_chart(rf_rows),
                report.rule_rows(active.model), redact.scrub(card), curves)

    @user_errors
    def designs(self):
        """The shipped designs side by side (the same for every visitor)."""
        import pandas as pd

        headers, rows = report.compare_rows(self.ctx.designs())
        return pd.DataFrame(rows, columns=["property", *headers[1:]])

    @user_errors
    def use_upload(self, file, session: Session, request: gr.Request = None):
        """An uploaded checkpoint becomes this session's model: only a file Gradio stored in its
        upload folder, only if it loads, classifies 32x32 images and passes the rules."""
        if not file:
            raise UserError("upload a .safetensors checkpoint first")
        path = uploaded_file(getattr(file, "path", file))
        name = path.name
        if not name.endswith(".safetensors"):
            raise UserError("only .safetensors checkpoints can be used")
        choice = self.ctx.models.add(path, f"upload {name}", check=passes_rules, owner=owner(request))
        return self.ctx.switch_to(session, choice, "the uploaded model")


def build(ctx: AppContext, shared: Shared, tab: gr.Tab) -> None:
    h = ModelHandlers(ctx)
    with gr.Row(equal_height=False):
        arch = gr.Dataframe(headers=report.ARCH_COLUMNS, label="architecture (torchinfo)",
                            interactive=False, max_height=420, wrap=False, elem_id="arch")
        with gr.Column():
            rules = gr.Dataframe(headers=report.RULE_COLUMNS, label="rules", interactive=False,
                                 wrap=True, elem_id="rules")  # rows grow with wrapped rules (app.css): "PASS" on a phone
            card = gr.Markdown(elem_id="model_card")
    with gr.Row(equal_height=False):
        rf_table = gr.Dataframe(headers=report.RF_COLUMNS, label="receptive field", interactive=False,
                                wrap=False)
        rf_chart = gr.Plot(label="receptive field per layer")
    card_curves = gr.Plot(label="training curves (model card)")
    with gr.Accordion("The shipped designs side by side (ours and the course's reference)", open=True,
                      visible=ctx.reference is not None):
        designs = gr.Dataframe(label="measured on each network and its card", interactive=False,
                               wrap=True, elem_id="designs")
        gr.Markdown("**ours**: the shipped `default.safetensors`; **reference**: `seed.safetensors`, the "
                    "course's reference architecture. Both obey the Session 9 rules and were trained on this CPU; each test accuracy "
                    "was measured once, after the design and its checkpoint were chosen on held-back "
                    "training images. **Use the reference design** (above) to see it in every tab.")
    with gr.Accordion("Use a checkpoint of your own (this browser session only)", open=False):
        upload = gr.File(label=".safetensors checkpoint", file_types=[".safetensors"], type="filepath")
        use_btn = gr.Button("Use it in my session")
        upload_status = gr.Markdown()
    outputs = [arch, rf_table, rf_chart, rules, card, card_curves]
    tab.select(h.show, [shared.session], outputs, api_visibility="private")
    tab.select(h.designs, None, designs, api_visibility="private")
    event = use_btn.click(h.use_upload, [upload, shared.session],
                          [upload_status, shared.banner, shared.session], api_visibility="private")
    shared.model_events.append(event)
    shared.refreshers.append((h.show, [shared.session], outputs))
