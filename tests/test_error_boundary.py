"""The app's one error boundary (`ui.common.user_errors`, issue 24.5): a `UserError` is the
visitor's to fix and reaches them; any other exception, a torch or numpy ValueError included, is
the server's: logged with its traceback, and the visitor sees only a generic message."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cifar_s9.analysis.gradcam import ExplainError
from cifar_s9.analysis.inside.probe import InsideError, whole
from cifar_s9.app.jobs import NotOwner
from cifar_s9.data.augment import InvalidAugmentConfig
from cifar_s9.data.images import ImageInputError
from cifar_s9.errors import UserError, whole_number
from cifar_s9.records.checkpoint import CheckpointError
from cifar_s9.train.config import InvalidTrainConfig
from cifar_s9.ui.classify import ClassifyHandlers
from cifar_s9.ui.common import SERVER_FAULT, user_errors

SECRET_PATH = "/srv/app/secret/weights.safetensors"


class InternallyBroken(torch.nn.Module):
    """A network whose forward pass trips over a torch ValueError (mismatched batch sizes)."""

    def forward(self, x):
        return F.cross_entropy(torch.zeros(2, 10), torch.zeros(5, dtype=torch.long))


@pytest.mark.parametrize("cls", [CheckpointError, ImageInputError, InvalidAugmentConfig, InvalidTrainConfig,
                                 ExplainError, InsideError, NotOwner])
def test_the_projects_errors_are_user_errors(cls):
    assert issubclass(cls, UserError) and issubclass(cls, ValueError)


def test_an_internal_torch_value_error_is_logged_with_its_traceback_and_the_visitor_sees_a_generic_message(caplog):
    handlers = ClassifyHandlers(SimpleNamespace(model=lambda session: SimpleNamespace(model=InternallyBroken())))
    image = np.zeros((32, 32, 3), np.uint8)
    with caplog.at_level(logging.ERROR, logger="cifar_s9.app"), pytest.raises(gr.Error) as info:
        handlers.classify(image, 3)
    assert info.value.message == SERVER_FAULT  # not torch's words, which name internals
    assert "batch_size" not in str(info.value) and "Traceback" not in str(info.value)
    [record] = [r for r in caplog.records if r.name == "cifar_s9.app"]
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert "Traceback" in caplog.text and "cross_entropy" in caplog.text and "classify" in caplog.text


def test_an_internal_numpy_value_error_never_shows_its_message_or_a_server_path(caplog):
    @user_errors
    def handler():
        np.zeros(3).reshape(2)  # numpy's ValueError
    with caplog.at_level(logging.ERROR, logger="cifar_s9.app"), pytest.raises(gr.Error) as info:
        handler()
    assert info.value.message == SERVER_FAULT and "reshape" not in str(info.value)
    assert "cannot reshape array" in caplog.text and "Traceback" in caplog.text

    @user_errors
    def leaky():
        raise ValueError(f"could not open {SECRET_PATH}")
    with pytest.raises(gr.Error) as info:
        leaky()
    assert SECRET_PATH not in str(info.value) and info.value.message == SERVER_FAULT


def test_a_user_error_reaches_the_visitor_and_stays_out_of_the_log(caplog):
    @user_errors
    def handler(k):
        return whole_number(k, "top-k", 1, 10)
    assert handler("3") == 3
    with caplog.at_level(logging.DEBUG, logger="cifar_s9.app"), pytest.raises(gr.Error) as info:
        handler(2.5)
    assert info.value.message == "top-k must be a whole number in [1, 10], got 2.5"
    assert not [r for r in caplog.records if r.name == "cifar_s9.app"]


@pytest.mark.parametrize("value, message", [
    (True, "must be a number"), (None, "must be a number"), ("x" * 500, "must be a number"),
    (float("nan"), "finite"), (float("-inf"), "finite"), (10**400, "must be a number"), ("1e999", "finite"),
    (2.5, "whole number in \\[0, 9\\], got 2.5"), (-1, "whole number in \\[0, 9\\], got -1"),
])
def test_one_whole_number_parser_for_every_caller(value, message):
    with pytest.raises(UserError, match=message) as info:
        whole_number(value, "seed", 0, 9)
    assert len(str(info.value)) < 120  # a huge input is not echoed back whole
    with pytest.raises(InsideError, match=message):  # the Inside tab's parser is the same one
        whole(value, "seed", 0, 9)
    assert whole_number(" 7 ", "seed", 0, 9) == 7 and whole_number(7.0, "seed", 0, 9) == 7
