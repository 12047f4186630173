"""Server paths never reach a visitor: `scrub` (issue 13)."""
from __future__ import annotations

import pytest

from cifar_s9.app.redact import scrub


@pytest.mark.parametrize("text, expected", [
    ("saved /work/app/runs/app/20261127-1200-default/model.safetensors",
     "saved model.safetensors"),
    ("Active model is now `/tmp/gradio/ab12/model.safetensors`.", "Active model is now `model.safetensors`."),
    ("cannot open '/etc/passwd': denied", "cannot open 'passwd': denied"),
    ("Could not load /data/cifar: missing. Try again", "Could not load cifar: missing. Try again"),
    ("see /srv/app/weights/.", "see weights."),
    ("~/projects/x.png was read", "x.png was read"),
    (r"C:\Users\me\model.safetensors failed", "model.safetensors failed"),
    ("C:/Users/me/x.png", "x.png"),
    ("(/tmp/a/b.png)", "(b.png)"),
    ("file=/tmp/gradio/abc/cat.png", "file=cat.png"),
    ("10000 images of image folder ../shared/data/cifar10-jpeg/test", "10000 images of image folder test"),
])
def test_absolute_paths_become_their_last_part(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize("text", [
    "https://huggingface.co/spaces/x/y and http://127.0.0.1:7860/gradio_api/info",
    "1,200 img/s on 2 CPU threads; 3/4 done",
    "weights/default.safetensors (relative)",
    "learning rate 0.1, loss 2.30",
    "GET /config",  # one part: an endpoint, not a server path
])
def test_text_without_server_paths_is_unchanged(text):
    assert scrub(text) == text


def test_roots_with_spaces_are_removed_first():
    assert scrub("read /home/my user/app/runs/x/model.json", roots=["/home/my user/app"]) == \
        "read runs/x/model.json"
    assert scrub("in /home/my user/app", roots=["/home/my user/app/"]) == "in [server folder]"


def test_anything_becomes_text():
    assert scrub(FileNotFoundError(2, "No such file", "/root/secret/k.pem")) == \
        "[Errno 2] No such file: 'k.pem'"
