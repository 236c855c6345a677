"""Readers: every supported file format becomes one raw table with canonical column names.

A raw table has the columns ``processid, order, family, genus, species, bin, sequence`` (strings,
not yet cleaned), ``split`` when the source has one, ``_line`` (the 1-based line of the record in
its file, for error messages) and any other source columns, kept aside by the loader. The format
is detected from the file's first line; ``.gz`` files are read transparently.

Formats:

* BIOSCAN-5M metadata CSV/TSV (has ``dna_barcode``): only the needed columns are read, with
  compact dtypes, since the real file has 5,150,850 rows.
* BOLD v3 export TSV (has ``nucleotides``): rows whose ``markercode`` is not COI-5P are dropped.
* BOLD data-package / v4+ TSV (has ``nuc``): rows whose ``marker_code`` is not COI-5P are dropped;
  missing values are written as ``None`` there.
* FASTA with headers ``>processid|order|family|genus|species|bin`` (trailing fields optional).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchbarcode.errors import UserError, located

RANKS = ["order", "family", "genus", "species"]

BIOSCAN5M_COLUMNS = [
    "processid", "sampleid", "taxon", "phylum", "class", "order", "family", "subfamily", "genus",
    "species", "dna_bin", "dna_barcode", "country", "province_state", "coord-lat", "coord-lon",
    "image_measurement_value", "area_fraction", "scale_factor", "inferred_ranks", "split",
    "index_bioscan_1M_insect", "chunk",
]


@dataclass(frozen=True)
class Format:
    """How one delimited format names the canonical columns."""

    name: str
    key: str  # the column whose presence identifies the format
    columns: dict  # canonical name -> source column name
    marker: str | None = None  # optional marker column; only COI-5P rows are kept
    read_extras: bool = True


FORMATS = [
    Format(
        "bioscan5m", "dna_barcode",
        {"processid": "processid", "order": "order", "family": "family", "genus": "genus",
         "species": "species", "bin": "dna_bin", "sequence": "dna_barcode", "split": "split"},
        read_extras=False,
    ),
    Format(
        "bold-v3", "nucleotides",
        {"processid": "processid", "order": "order_name", "family": "family_name",
         "genus": "genus_name", "species": "species_name", "bin": "bin_uri",
         "sequence": "nucleotides"},
        marker="markercode",
    ),
    Format(
        "bold-v4", "nuc",
        {"processid": "processid", "order": "order", "family": "family", "genus": "genus",
         "species": "species", "bin": "bin_uri", "sequence": "nuc"},
        marker="marker_code",
    ),
]


@dataclass
class RawTable:
    """What a reader returns: the raw records plus facts about where they came from."""

    frame: pd.DataFrame
    path: str
    format: str
    sequence_field: str  # the source name of the sequence field, for error messages
    counts: dict = field(default_factory=dict)  # reader-level actions, e.g. non-COI rows dropped


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


@contextlib.contextmanager
def _reading(path: Path):
    """What a damaged file raises while it is read (a truncated or corrupt gzip stream, bytes that
    are not UTF-8, an I/O error) becomes one line naming the file; every reader reads under it."""
    try:
        yield
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise located(path, None, _why_unreadable(exc)) from None


def _why_unreadable(exc: Exception) -> str:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, EOFError):  # only gzip streams end early: a plain file just ends
        return f"truncated gzip file: {detail}"
    if isinstance(exc, (zlib.error, gzip.BadGzipFile)):
        return f"corrupt gzip file, or not gzip-compressed ({detail})"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start}: {exc.reason})"
    return f"cannot read file ({type(exc).__name__}: {detail})"


def _first_line(path: Path) -> str:
    with _reading(path), _open_text(path) as fh:
        for line in fh:
            if line.strip():
                return line
    raise located(path, None, "file is empty")


def read_file(path: str | Path) -> RawTable:
    """Detect the format of ``path`` from its first line and read it."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory; expected a data file (BIOSCAN-5M CSV/TSV, BOLD TSV or "
                        f"FASTA; .gz is read transparently), or bioscan5m:{path} for the BIOSCAN-5M "
                        "metadata under a directory")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    first = _first_line(path)
    if first.startswith(">"):
        return read_fasta(path)
    sep = "\t" if "\t" in first else ","
    header = [h.strip().strip('"') for h in first.rstrip("\r\n").split(sep)]
    for fmt in FORMATS:
        if fmt.key in header:
            return _read_delimited(path, fmt, sep, header)
    raise located(
        path, 1,
        "unrecognised header: expected a BIOSCAN-5M metadata file (dna_barcode), a BOLD v3 "
        "export (nucleotides), a BOLD v4 data package (nuc) or FASTA (>processid|order|...)",
    )


def _read_delimited(path: Path, fmt: Format, sep: str, header: list[str]) -> RawTable:
    required = [c for k, c in fmt.columns.items() if k not in ("split",)]
    missing = [c for c in required if c not in header]
    if missing:
        raise located(path, 1, f"{fmt.name} header lacks column(s) {', '.join(missing)}")
    wanted = list(fmt.columns.values())
    if fmt.marker and fmt.marker in header:
        wanted.append(fmt.marker)
    usecols = [c for c in header if c in wanted or fmt.read_extras]
    dtypes = {c: "category" for c in header if c in ("order", "family", "genus", "species",
                                                       "dna_bin", "split") and fmt.name == "bioscan5m"}
    try:
        with _reading(path):
            frame = pd.read_csv(
                path, sep=sep, usecols=usecols, dtype={**{c: str for c in usecols}, **dtypes},
                keep_default_na=False, na_filter=False, engine="c",
                quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL,
            )
    except (pd.errors.ParserError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else exc.__class__.__name__
        raise located(path, None, f"cannot parse {fmt.name} file: {msg}") from None
    frame["_line"] = pd.RangeIndex(2, len(frame) + 2)
    counts = {}
    if fmt.marker and fmt.marker in frame.columns:
        keep = frame[fmt.marker].astype(str).str.upper().eq("COI-5P")
        counts["dropped_other_marker"] = int((~keep).sum())
        frame = frame.loc[keep]
    rename = {src: canon for canon, src in fmt.columns.items() if src in frame.columns}
    clash = [c for c in frame.columns if c in rename.values() and c not in rename]
    frame = frame.rename(columns={c: f"source_{c}" for c in clash}).rename(columns=rename)
    frame = frame.reset_index(drop=True)
    return RawTable(frame, str(path), fmt.name, fmt.columns["sequence"], counts)


def read_fasta(path: str | Path) -> RawTable:
    """FASTA with ``>processid|order|family|genus|species|bin`` headers; sequences may wrap."""
    path = Path(path)
    records: list[list] = []
    seq_parts: list[str] = []
    current: list | None = None
    fields = ["processid", "order", "family", "genus", "species", "bin"]
    with _reading(path), _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if line.startswith(">"):
                if current is not None:
                    current.append("".join(seq_parts))
                    records.append(current)
                parts = line[1:].split("|")
                if not parts[0].strip():
                    raise located(path, lineno, "FASTA header has an empty processid")
                if len(parts) > len(fields):
                    raise located(path, lineno, f"FASTA header has {len(parts)} fields; "
                                                f"expected at most {len(fields)} "
                                                "(processid|order|family|genus|species|bin)")
                parts = [p.strip() for p in parts] + [""] * (len(fields) - len(parts))
                current = [lineno, *parts]
                seq_parts = []
            elif line.strip():  # read_file only sends files whose first line is a header
                seq_parts.append(line.strip())
    if current is not None:
        current.append("".join(seq_parts))
        records.append(current)
    frame = pd.DataFrame(records, columns=["_line", *fields, "sequence"])
    return RawTable(frame, str(path), "fasta", "sequence")


def find_bioscan5m_metadata(directory: str | Path) -> Path | None:
    """The BIOSCAN-5M metadata file under ``directory`` (searched recursively), if any."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    for pattern in ("BIOSCAN_5M_Insect_Dataset_metadata*.csv", "BIOSCAN_5M_Insect_Dataset_metadata*.csv.gz",
                    "BIOSCAN_5M_Insect_Dataset_metadata*.tsv", "BIOSCAN_5M_Insect_Dataset_metadata*.tsv.gz"):
        hits = sorted(directory.rglob(pattern))
        if hits:
            return hits[0]
    return None


def download_bioscan5m(directory: str | Path) -> Path:
    """Download the BIOSCAN-5M metadata into ``directory`` with the ``bioscan-dataset`` package."""
    try:
        from bioscan_dataset import BIOSCAN5M  # type: ignore[import-not-found]
    except ImportError:
        raise UserError("downloading BIOSCAN-5M needs the bioscan-dataset package: "
                        "pip install 'benchbarcode[bioscan]'") from None
    try:
        BIOSCAN5M(root=str(directory), modality=("dna",), download=True)
    except Exception as exc:  # noqa: BLE001  (network errors, checksum failures: all user-facing)
        raise UserError(f"{directory}: BIOSCAN-5M download failed: {exc}") from None
    found = find_bioscan5m_metadata(directory)
    if found is None:
        raise UserError(f"{directory}: download finished but no BIOSCAN-5M metadata file was found")
    return found
