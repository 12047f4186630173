"""Settings in the page's address, as TensorFlow Playground keeps its state: a link opens the app
with the lab's augmentation (and the preview's n and seed), or with an experiment's form, set.

    ?tab=augment&flip_p=0.25&holes_max=3&seed=7
    ?tab=experiments&question=recipe-default&budget_mode=epochs&budget=4&dropout_p=0

`encode_*` give the query pairs (augmentation fields at their defaults are left out, so a link
stays short); `decode_*` read a visitor's query back as the hostile input it is: bounded in
length and count before anything is parsed, a repeated setting refused, unknown names ignored
(and named), and every value judged by the same checks as the sliders and the form (one sentence
for whatever is wrong; nothing is applied then). `page_base` is the app's address, from the
request, when it looks like one (else links are relative). Nothing here knows about Gradio.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urlencode, urlsplit

from ..data.augment import AugmentConfig, validate
from ..errors import UserError
from ..experiments.runner import QUESTIONS
from .experiment_view import BUDGET_MODES, FORM_DEFAULTS, config_from_ui
from .lab import AUG_FIELDS, out_of_range
from .texts import md_escape
from .uinput import MAX_SEED, MAX_VIEWS, coerce_augment, number, whole_number

TAB = "tab"
TABS = ("augment", "experiments")
LAB_DEFAULTS = {"n": 11, "seed": 0}     # the preview's own controls, beside the augmentation fields
# the experiment form's names in a link ("seed" is the lab preview's)
EXPERIMENT_KEYS = {"question": "question", "budget_mode": "budget_mode", "budget": "budget",
                   "subset": "subset", "exp_seed": "seed", "repeats": "repeats"}
KNOWN = {TAB, *AUG_FIELDS, *LAB_DEFAULTS, *EXPERIMENT_KEYS}
MAX_QUERY_CHARS = 2000   # every link this app writes is under 700
MAX_PAIRS = 64
MAX_VALUE_CHARS = 40


class LinkError(UserError):
    """The link's settings cannot be applied; the sentence says why."""


@dataclass(frozen=True)
class Query:
    """The link's known settings (name -> text), and the names it had that mean nothing here."""
    values: dict[str, str]
    ignored: tuple[str, ...] = ()

    def has_any(self, names: Iterable[str]) -> bool:
        return any(n in self.values for n in names)

    @property
    def tab(self) -> str | None:
        return self.values.get(TAB)


def _shown(text: str, limit: int = 24) -> str:
    """A visitor's text inside a message: printable and short (`refused_note` escapes it)."""
    text = "".join(c if c.isprintable() else "?" for c in str(text))
    return text if len(text) <= limit else text[:limit] + "…"


def read_query(pairs: Iterable[tuple[object, object]]) -> Query:
    """The (name, value) pairs of a page's query -> a `Query`; LinkError for a query too long or
    too big to be one of ours, a setting given twice, a value too long or an unknown tab. Names
    that are not settings (Gradio's own `__theme`, `view`, anything else) are ignored."""
    pairs = list(pairs)[:MAX_PAIRS + 1]
    if len(pairs) > MAX_PAIRS:
        raise LinkError(f"this link holds more than {MAX_PAIRS} settings; no link of this app does")
    if sum(len(str(k)) + len(str(v)) + 2 for k, v in pairs) > MAX_QUERY_CHARS:
        raise LinkError(f"this link's settings are longer than {MAX_QUERY_CHARS:,} characters; "
                        "no link of this app is")
    values: dict[str, str] = {}
    ignored: list[str] = []
    for key, value in pairs:
        key, value = str(key), str(value)
        if key not in KNOWN:
            if not key.startswith("__") and key != "view" and key not in ignored:
                ignored.append(key)
            continue
        if key in values:
            raise LinkError(f"{key} is given twice in this link; give each setting once")
        if len(value) > MAX_VALUE_CHARS:
            raise LinkError(f"the value of {key} is {len(value):,} characters long; "
                            f"settings take at most {MAX_VALUE_CHARS}")
        values[key] = value
    if TAB in values and values[TAB] not in TABS:
        raise LinkError(f"tab must be one of {', '.join(TABS)}, got {_shown(values[TAB])!r}")
    return Query(values, tuple(ignored))


def named_tab(pairs: Iterable[tuple[object, object]]) -> str | None:
    """The tab a link names, even one whose settings are refused (so the refusal is seen there):
    the value of its first `tab` pair, if it is one of TABS."""
    tab = next((str(v) for k, v in list(pairs)[:MAX_PAIRS] if str(k) == TAB), None)
    return tab if tab in TABS else None


def ignored_note(query: Query) -> str:
    """One sentence (Markdown) naming a few of the link's names that are not settings, or ""."""
    if not query.ignored:
        return ""
    names = ", ".join(md_escape(repr(_shown(n))) for n in query.ignored[:3])
    more = f" and {len(query.ignored) - 3} more" if len(query.ignored) > 3 else ""
    return f" Ignored what is not a setting here: {names}{more}."


def applied_note(what: str, query: Query) -> str:
    """The line a page shows once a link's settings are in its controls (Markdown)."""
    return f"🔗 This page opened with the link's {what}.{ignored_note(query)}"


def refused_note(exc: Exception) -> str:
    """The one line a page shows for a link it could not apply (Markdown, the text escaped)."""
    return f"⚠️ **This link's settings were not applied:** {md_escape(exc)}"


# ---------------------------------------------------------------- the lab

@dataclass(frozen=True)
class LabLink:
    aug: AugmentConfig
    n: int
    seed: int


def _typed(name: str, text: str):
    """A link's text for an augmentation field -> the number (or choice) the control holds;
    NaN, infinity and text are refused with the field's name."""
    return text if isinstance(getattr(AugmentConfig(), name), str) else number(text, name, LinkError)


def decode_lab(query: Query, base: AugmentConfig = AugmentConfig()) -> LabLink:
    """The lab's settings in `query` over `base` (fields not given keep its values), the preview's
    n and seed; LinkError naming the first thing out of place (nothing applies then)."""
    given = {name: _typed(name, query.values[name]) for name in AUG_FIELDS if name in query.values}
    problem = out_of_range(given)
    if problem:
        raise LinkError(problem)
    try:
        cfg = validate(coerce_augment({**base.to_dict(), **given}))
    except UserError as exc:
        raise LinkError(str(exc)) from None
    n = whole_number(query.values.get("n", LAB_DEFAULTS["n"]), "n (augmented versions)", 1, MAX_VIEWS, LinkError)
    seed = whole_number(query.values.get("seed", LAB_DEFAULTS["seed"]), "seed", 0, MAX_SEED, LinkError)
    return LabLink(cfg, n, seed)


def _text(value) -> str:
    """A setting as it goes in a link: whole floats without ".0", others exactly (repr)."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def aug_pairs(cfg: AugmentConfig) -> list[tuple[str, str]]:
    """The fields of `cfg` that differ from the defaults, in field order."""
    default = AugmentConfig()
    return [(name, _text(getattr(cfg, name))) for name in AUG_FIELDS
            if getattr(cfg, name) != getattr(default, name)]


def encode_lab(cfg: AugmentConfig, n: int = 11, seed: int = 0) -> list[tuple[str, str]]:
    """The query pairs of a link that opens the lab with `cfg` and this preview."""
    validate(cfg)
    pairs = [(TAB, "augment"), *aug_pairs(cfg)]
    for name, value in (("n", n), ("seed", seed)):
        if value != LAB_DEFAULTS[name]:
            pairs.append((name, _text(value)))
    return pairs


# ---------------------------------------------------------------- an experiment

def decode_experiment(query: Query, aug: AugmentConfig) -> dict:
    """The experiment form's values in `query` (the form's defaults for those not given), checked
    exactly as pressing Run checks them, with the arms' augmentation `aug`; LinkError otherwise.
    Returns {question, budget_mode, budget, subset, seed, repeats} ready for the form."""
    form = {**FORM_DEFAULTS, **{field: query.values[key] for key, field in EXPERIMENT_KEYS.items()
                                if key in query.values}}
    for name, choices in (("question", QUESTIONS), ("budget_mode", BUDGET_MODES)):
        if form[name] not in choices:
            raise LinkError(f"{name} must be one of {', '.join(choices)}, got '{_shown(form[name])}'")
    budget = number(form["budget"], "budget", LinkError)
    values = dict(question=form["question"], budget_mode=form["budget_mode"],
                  budget=int(budget) if budget.is_integer() else budget,
                  subset=whole_number(form["subset"], "subset (training images)", 1, 50_000, LinkError),
                  seed=whole_number(form["seed"], "exp_seed", 0, 2**31 - 1, LinkError),
                  repeats=whole_number(form["repeats"], "repeats (seeds per arm)", 1, 5, LinkError))
    try:
        config_from_ui(current_aug=aug.to_dict(), **values)
    except UserError as exc:
        raise LinkError(str(exc)) from None
    return values


def encode_experiment(question, budget_mode, budget, subset, seed, repeats,
                      aug: AugmentConfig) -> list[tuple[str, str]]:
    """The query pairs of a link that opens the Experiments tab with this form and these arms'
    augmentation (the lab's settings, which the arms use); UserError when the form is invalid."""
    config_from_ui(question, aug.to_dict(), budget_mode, budget, subset, seed, repeats)
    form = {"question": question, "budget_mode": budget_mode, "budget": number(budget, "budget"),
            "subset": whole_number(subset, "subset"), "exp_seed": whole_number(seed, "seed"),
            "repeats": whole_number(repeats, "repeats")}
    return [(TAB, "experiments"), *((k, _text(v)) for k, v in form.items()), *aug_pairs(aug)]


# ---------------------------------------------------------------- the address

_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                   r"[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\]")
_PORT = re.compile(r"\d{1,5}")
_PREFIX = re.compile(r"(?:/[A-Za-z0-9._~-]{1,64}){0,8}")
API_PREFIX = "/gradio_api"


def _first(headers: dict, name: str) -> str:
    value = next((str(v) for k, v in headers.items() if str(k).lower() == name), "")
    return value.split(",")[0].strip()


def page_base(request_url: object, headers: dict | None = None) -> str:
    """The app page's address ("http://host:port/prefix/") from the URL of a request the page
    made (its /gradio_api/... call) and the proxy's X-Forwarded-Host/-Proto; "" when any part
    does not look like an address (a forged Host header), and links are then relative."""
    headers = headers or {}
    try:
        url = urlsplit(str(request_url or ""))
        host_port = _first(headers, "x-forwarded-host") or url.netloc
        scheme = _first(headers, "x-forwarded-proto") or url.scheme
    except ValueError:
        return ""
    prefix = url.path.split(API_PREFIX, 1)[0].rstrip("/") if API_PREFIX in url.path else ""
    host, _, port = host_port.rpartition(":") if not host_port.endswith("]") else (host_port, "", "")
    if not host:
        host, port = host_port, ""
    ok = (scheme in ("http", "https") and len(host_port) <= 260 and _HOST.fullmatch(host)
          and (not port or _PORT.fullmatch(port)) and _PREFIX.fullmatch(prefix))
    return f"{scheme}://{host_port}{prefix}/" if ok else ""


def link(base: str, pairs: list[tuple[str, str]]) -> str:
    """The address to share: the page's base and the query (a relative "?..." without a base)."""
    return f"{base}?{urlencode(pairs)}"

