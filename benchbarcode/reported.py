"""Published figures shown beside measured rows: the BIOSCAN-5M paper's table of DNA models.

The figures are package data (``published/bioscan5m_dna.json``, with their source), validated on
load: :func:`load` refuses a file whose entries lack a field, hold a figure outside 0-100 % or
repeat a key, with one line naming the file and the entry. Each entry names the benchbarcode
encoders that measure the same checkpoint (``measured_by``: encoder names plus fields of the
encoder record that must hold, e.g. ``checkpoint.model``), so the leaderboard can put the
reported row next to the measured one.

When a table is BIOSCAN-5M (:func:`bioscan5m_problem`) — decided from what every result records
of its data (``result["data"]``), never from its name alone:

* ``reader == "bioscan5m"``: the source was read by the BIOSCAN-5M metadata reader (``bioscan5m:DIR``
  or a metadata file given by path, with its own ``split`` column). The ``sim-large`` twin is read
  by the same reader but records ``"bioscan5m (sim-large twin)"``; results written before the
  field existed record no reader and never qualify;
* not generated: the source is not ``sim``/``sim-large`` and the file is not a cached twin
  (``sim-large-*``), which the twin's BIOSCAN-5M shape and split names would otherwise let pass;
* ``split_origin == "source"``, no ``--limit``;
* the records as read match BIOSCAN-5M's exactly: 5,150,850 in all and every split's size
  (:data:`BIOSCAN5M_SPLITS`); under the reference protocol the records it dropped as duplicates
  (``data["deduplication"]``) are added back first.

The twin matches the last two rules by construction, which is why the reader and the source
decide; the sizes rule out a part of the file (a head, a subset). And only under the reference
protocol (``data["protocol"]`` and every task's ``protocol["protocol"]`` are ``"reference"``),
the protocol the published figures were measured under.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from benchbarcode.errors import UserError
from benchbarcode.protocol_names import REFERENCE_PROTOCOL

DATA_FILE = "published/bioscan5m_dna.json"  # in the package
FORMAT = 1
BIOSCAN5M_READER = "bioscan5m"  # readers.FORMATS name of the BIOSCAN-5M metadata format
BIOSCAN5M_RECORDS = 5_150_850
BIOSCAN5M_SPLITS = {"pretrain": 4_677_756, "train": 289_203, "val": 14_757, "test": 39_373, "key_unseen": 36_465,
                    "val_unseen": 8_819, "test_unseen": 7_887, "other_heldout": 76_590}
GENERATED = ("sim", "sim-large")  # data sources that are generated, never read
#: task -> the reported figure it is compared with (closed world: species by a linear probe on the
#: test split; open world: genus of unseen species by 1-NN against train)
COMPARED = {"closed-world": "linear_probe_species", "open-world": "nn_unseen_genus"}
FIGURES = ("fine_tuned_species", "linear_probe_species", "nn_unseen_genus")
_TEXT = ("key", "model", "checkpoint", "architecture")
_OPTIONAL_TEXT = ("pretraining_data", "tokens_seen", "note")


@dataclass(frozen=True)
class Reported:
    """One published row: figures in percent (None: not reported) and how to find its measurement."""

    key: str
    model: str
    checkpoint: str
    architecture: str
    pretraining_data: str | None
    tokens_seen: str | None
    fine_tuned_species: float | None
    linear_probe_species: float | None
    nn_unseen_genus: float | None
    encoders: tuple[str, ...]  # benchbarcode encoders that measure the same checkpoint
    match: tuple[tuple[str, object], ...]  # (dotted field of the encoder record, required value)
    note: str | None = None

    def measures(self, meta: dict) -> bool:
        """Whether the encoder record ``meta`` (a result's ``encoder``) is this entry's checkpoint."""
        return meta.get("name") in self.encoders and all(_field(meta, k) == v for k, v in self.match)

    def figure(self, task: str) -> float | None:
        """The reported figure ``task`` is compared with, as a fraction (None: none reported)."""
        value = getattr(self, COMPARED[task]) if task in COMPARED else None
        return None if value is None else value / 100

    def to_dict(self) -> dict:
        return {"key": self.key, "model": self.model, "checkpoint": self.checkpoint,
                "architecture": self.architecture, "pretraining_data": self.pretraining_data,
                "tokens_seen": self.tokens_seen, **{f: getattr(self, f) for f in FIGURES},
                "measured_by": {"encoders": list(self.encoders), "match": dict(self.match)},
                **({"note": self.note} if self.note else {})}


@dataclass(frozen=True)
class ReportedTable:
    name: str
    title: str
    data: str
    source: dict  # citation, url, where
    entries: tuple[Reported, ...]

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "data": self.data, "source": self.source,
                "entries": [e.to_dict() for e in self.entries]}


def _field(record: dict, dotted: str):
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _percent(value, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= 100:
        raise UserError(f"{where}: expected a percentage from 0 to 100 or null, got {value!r}")
    return float(value)


def _text(doc: dict, name: str, where: str, optional: bool = False) -> str | None:
    value = doc.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: {name!r} must be a non-empty string")
    return value


def _entry(doc, where: str) -> Reported:
    if not isinstance(doc, dict):
        raise UserError(f"{where}: expected an object")
    texts = {n: _text(doc, n, where) for n in _TEXT}
    where = f"{where} ({texts['key']})"
    figures = {f: _percent(doc.get(f, "missing"), f"{where}: {f}") for f in FIGURES}
    if all(v is None for v in figures.values()):
        raise UserError(f"{where}: reports no figure")
    by = doc.get("measured_by")
    encoders = by.get("encoders") if isinstance(by, dict) else None
    match = by.get("match") if isinstance(by, dict) else None
    if not (isinstance(encoders, list) and encoders and all(isinstance(e, str) and e for e in encoders)):
        raise UserError(f"{where}: measured_by.encoders must be a non-empty list of encoder names")
    if not isinstance(match, dict) or not all(isinstance(v, (str, int, float, bool)) for v in match.values()):
        raise UserError(f"{where}: measured_by.match must map encoder-record fields to plain values")
    return Reported(**texts, **{n: _text(doc, n, where, optional=True) for n in _OPTIONAL_TEXT}, **figures,
                    encoders=tuple(encoders), match=tuple(sorted(match.items())))


def parse(doc, where: str) -> ReportedTable:
    """A reported table from its JSON document, validated (``where`` names it in errors)."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(f"{where}: not a reported-figures file of format {FORMAT}")
    source = doc.get("source")
    if not isinstance(source, dict) or not all(isinstance(source.get(k), str) and source[k]
                                               for k in ("citation", "url", "where")):
        raise UserError(f"{where}: 'source' must give its citation, url and where")
    entries = doc.get("entries")
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{where}: 'entries' must be a non-empty list")
    parsed = tuple(_entry(e, f"{where}: entry {i + 1}") for i, e in enumerate(entries))
    keys = [e.key for e in parsed]
    if len(set(keys)) != len(keys):
        raise UserError(f"{where}: entry key {next(k for k in keys if keys.count(k) > 1)!r} is repeated")
    return ReportedTable(_text(doc, "name", where), _text(doc, "title", where), _text(doc, "data", where),
                         dict(source), parsed)


def load(path: str | Path | None = None) -> ReportedTable:
    """The reported table in ``path`` (default: the package's BIOSCAN-5M table), validated."""
    if path is None:
        return _packaged()
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: cannot read reported figures ({exc.__class__.__name__}: {exc})") from None
    return parse(doc, str(path))


@functools.lru_cache(maxsize=1)
def _packaged() -> ReportedTable:
    resource = resources.files("benchbarcode").joinpath(DATA_FILE)
    return parse(json.loads(resource.read_text(encoding="utf-8")), f"benchbarcode/{DATA_FILE}")


# ----------------------------------------------------------------------------- when they apply
def _generated(data: dict) -> bool:
    source, name = str(data.get("source", "")), Path(str(data.get("name", ""))).name
    return any(source == g or source.startswith(f"{g}:") for g in GENERATED) or name.startswith("sim-large") \
        or Path(source).name.startswith("sim-large")


def bioscan5m_problem(data: dict) -> str | None:
    """Why the data identity ``data`` (a result's ``data``) is not BIOSCAN-5M as read; None when it is."""
    if data.get("reader") != BIOSCAN5M_READER:
        return f"read by {data.get('reader') or 'an unrecorded reader'}, not the BIOSCAN-5M reader"
    if _generated(data):
        return "generated (sim / sim-large), not read"
    if data.get("split_origin") != "source" or data.get("limit") is not None:
        return "not the source's own splits in full"
    dropped = data.get("deduplication") or {}
    sizes = {s: int(n) + int(dropped.get(s, 0)) for s, n in (data.get("split_sizes") or {}).items() if n or dropped.get(s)}
    records = int(data.get("records", 0)) + sum(int(n) for n in dropped.values())
    if records != BIOSCAN5M_RECORDS or sizes != BIOSCAN5M_SPLITS:
        return f"{records:,} records in splits {sizes}, not BIOSCAN-5M's"
    return None


def applies(data: dict, tasks: dict[str, dict]) -> bool:
    """Whether reported rows belong under a table of ``data`` (its identity) and ``tasks`` (task
    name -> ``{"protocol": ...}``): BIOSCAN-5M under the reference protocol."""
    under_reference = data.get("protocol") == REFERENCE_PROTOCOL and bool(tasks) and all(
        (t.get("protocol") or {}).get("protocol") == REFERENCE_PROTOCOL for t in tasks.values())
    return under_reference and bioscan5m_problem(data) is None
