"""What one visitor's browser session owns. Gradio keeps one copy per session (`gr.State`
deep-copies the initial value for each), so this must stay small: the model is a `ModelChoice`
(a content hash into `serving.ModelCache`), never a network; the image is the path of a file
Gradio itself stored in its upload folder. Frozen: handlers return a changed copy.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..data.augment import AugmentConfig
from .serving import ModelChoice


@dataclass(frozen=True)
class Session:
    model: ModelChoice = field(default_factory=ModelChoice)  # the shipped model until chosen
    image: str | None = None        # the current image (Classify's input), shared by the tabs
    aug: AugmentConfig = field(default_factory=AugmentConfig)  # the lab's settings; Train uses them

    def with_model(self, choice: ModelChoice) -> "Session":
        return replace(self, model=choice)

    def with_image(self, path: str | None) -> "Session":
        return replace(self, image=path)

    def with_aug(self, aug: AugmentConfig) -> "Session":
        return replace(self, aug=aug)

