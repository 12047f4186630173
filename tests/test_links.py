"""Settings in the page's address (issue 28.2): the lab's augmentation and an experiment's form
encode to a query and decode back unchanged; hostile queries are refused in one sentence (or
their unknown names ignored), never with a traceback; the page's base comes from the request
only when it looks like an address."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest

from cifar_s9.app import links
from cifar_s9.app.links import LinkError, read_query
from cifar_s9.data.augment import AugmentConfig
from synthetic import random_config


def through_a_link(pairs):
    """What a browser does with the pairs: one address, then the query parsed back."""
    url = links.link("http://127.0.0.1:7860/", pairs)
    return read_query(parse_qsl(urlsplit(url).query, keep_blank_values=True))


@pytest.mark.parametrize("seed", range(20))
def test_the_lab_round_trips_through_a_link(seed):
    rng = np.random.default_rng(seed)
    cfg = random_config(rng)
    n, preview_seed = int(rng.integers(1, 65)), int(rng.integers(0, 2**32))
    back = links.decode_lab(through_a_link(links.encode_lab(cfg, n, preview_seed)))
    assert back == links.LabLink(cfg, n, preview_seed)


def test_a_default_link_is_short_and_names_the_tab():
    assert links.encode_lab(AugmentConfig()) == [("tab", "augment")]
    assert links.decode_lab(through_a_link([("tab", "augment")])) == links.LabLink(AugmentConfig(), 11, 0)
    pairs = links.encode_lab(AugmentConfig(flip_p=0.25, rotate_limit=30.0), 5, 7)
    assert pairs == [("tab", "augment"), ("flip_p", "0.25"), ("rotate_limit", "30"), ("n", "5"), ("seed", "7")]


@pytest.mark.parametrize("form", [
    dict(question="no-dropout", budget_mode="minutes", budget=3, subset=1000, seed=0, repeats=1),
    dict(question="recipe-default", budget_mode="epochs", budget=40, subset=50_000, seed=2**31 - 1, repeats=5),
    dict(question="no-dropout", budget_mode="minutes", budget=0.5, subset=64, seed=7, repeats=2),
])
def test_an_experiment_round_trips_through_a_link(form):
    aug = random_config(np.random.default_rng(3))
    query = through_a_link(links.encode_experiment(aug=aug, **form))
    assert query.tab == "experiments"
    assert links.decode_experiment(query, links.decode_lab(query).aug) == form
    assert links.decode_lab(query).aug == aug  # the arms' augmentation travels with it


def test_an_experiment_link_fills_what_it_leaves_out_with_the_forms_defaults():
    form = links.decode_experiment(read_query([("budget_mode", "epochs"), ("budget", "4")]), AugmentConfig())
    assert form == dict(question="no-dropout", budget_mode="epochs", budget=4, subset=1000, seed=0, repeats=1)


HOSTILE = [  # (query pairs, words the one refusal must hold)
    ([("flip_p", "2")], "flip_p 2 is above its maximum 1"),
    ([("flip_p", "-0.5")], "below its minimum 0"),
    ([("rotate_limit", "nan")], "rotate_limit must be a finite number"),
    ([("rotate_limit", "1e999")], "finite number"),
    ([("flip_p", "half")], "flip_p must be a number"),
    ([("flip_p", "")], "flip_p must be a number"),
    ([("holes_max", "2.5")], "holes_max must be a whole number"),
    ([("holes_min", "5"), ("holes_max", "2")], "holes_min <= holes_max"),
    ([("border_mode", "<script>alert(1)</script>")], "border_mode must be one of"),
    ([("flip_p", "0.1"), ("flip_p", "0.9")], "flip_p is given twice"),
    ([("flip_p", "9" * 41)], "at most 40"),
    ([("n", "0")], "n (augmented versions) must be a whole number in [1, 64]"),
    ([("seed", "-1")], "seed must be a whole number"),
    ([("seed", str(2**40))], "seed must be a whole number"),
    ([("tab", "../../etc/passwd")], "tab must be one of augment, experiments"),
    ([("x", "y" * 3000)], "longer than 2,000 characters"),
    ([(f"k{i}", "1") for i in range(65)], "more than 64 settings"),
    ([("question", "everything")], "question must be one of no-dropout, recipe-default"),
    ([("budget_mode", "hours")], "budget_mode must be one of minutes, epochs"),
    ([("budget", "inf")], "budget must be a finite number"),
    ([("budget", "500")], "minutes must be in [0.1, 120]"),
    ([("budget_mode", "epochs"), ("budget", "2.5")], "epochs per arm must be a whole number"),
    ([("subset", "0")], "subset (training images) must be a whole number in [1, 50000]"),
    ([("repeats", "6")], "repeats (seeds per arm) must be a whole number in [1, 5]"),
    ([("exp_seed", "-3")], "exp_seed must be a whole number"),
]


@pytest.mark.parametrize("pairs, words", HOSTILE, ids=[w[:30] for _, w in HOSTILE])
def test_a_hostile_link_is_refused_in_one_sentence(pairs, words):
    with pytest.raises(LinkError) as info:
        query = read_query(pairs)
        aug = links.decode_lab(query).aug
        links.decode_experiment(query, aug)
    message = str(info.value)
    assert words in message
    assert "\n" not in message and len(message) < 300 and "Traceback" not in message
    note = links.refused_note(info.value)
    assert "<script>" not in note.replace("\\<", "") and note.startswith("⚠️")


def test_unknown_names_are_ignored_and_named_escaped():
    query = read_query([("flip_p", "0.3"), ("__theme", "dark"), ("view", "api"), ("<img src=x>", "1"),
                        ("utm_source", "x"), ("a", "1"), ("b", "2")])
    assert query.values == {"flip_p": "0.3"}
    assert query.ignored == ("<img src=x>", "utm_source", "a", "b")  # Gradio's own names: silently
    note = links.applied_note("augmentation settings", query)
    assert "\\<img src=x\\>" in note and "<img" not in note.replace("\\<", "") and "and 1 more" in note
    assert links.decode_lab(query).aug == AugmentConfig(flip_p=0.3)
    assert links.ignored_note(read_query([("flip_p", "0.3")])) == ""


@pytest.mark.parametrize("url, headers, base", [
    ("http://127.0.0.1:7860/gradio_api/queue/join?flip_p=1", {}, "http://127.0.0.1:7860/"),
    ("http://localhost:7860/lab/gradio_api/queue/join", {}, "http://localhost:7860/lab/"),
    ("http://10.0.0.5:7860/gradio_api/queue/join", {"X-Forwarded-Host": "me-lab.hf.space",
                                                    "X-Forwarded-Proto": "https"}, "https://me-lab.hf.space/"),
    ("http://[::1]:7860/gradio_api/queue/join", {}, "http://[::1]:7860/"),
    ("http://evil\"><script>x</script>/gradio_api/queue/join", {}, ""),
    ("http://127.0.0.1:7860/gradio_api/queue/join", {"x-forwarded-host": "a b"}, ""),
    ("http://127.0.0.1:7860/gradio_api/queue/join", {"x-forwarded-proto": "javascript"}, ""),
    ("http://127.0.0.1:99999999/gradio_api/queue/join", {}, ""),
    ("http://127.0.0.1:7860/<b>/gradio_api/queue/join", {}, ""),
    ("not a url", {}, ""),
    (None, None, ""),
])
def test_the_page_base_comes_from_the_request_only_when_it_is_an_address(url, headers, base):
    assert links.page_base(url, headers) == base
    assert links.link(base, [("tab", "augment")]) == f"{base}?tab=augment"
