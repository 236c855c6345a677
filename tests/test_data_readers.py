"""Readers, cleaning and CLI errors, on small files the tests write themselves."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import write

from benchbarcode.cli import main
from benchbarcode.data import load_barcodes
from benchbarcode.data.export import export_bioscan5m
from benchbarcode.data.readers import BIOSCAN5M_COLUMNS

SEQ_A = "ACGTACGTAAATTTGGGCCC" * 5
SEQ_B = "TTTAAACCCGGGTATATATA" * 5

BOLD_V3 = (
    "processid\tbin_uri\torder_name\tfamily_name\tsubfamily_name\tgenus_name\tspecies_name\t"
    "country\tmarkercode\tnucleotides\n"
    f"P1\tBOLD:AAA1\tDiptera\tMuscidae\t\tMusca\tMusca domestica\tCanada\tCOI-5P\tnn{SEQ_A.lower()}--NN\n"
    f"P2\t\tDiptera\tMuscidae\t\tMusca\tMusca sp2\tPeru\tCOI-5P\tNN{SEQ_B}RY\n"
    f"P3\tBOLD:AAA3\tDiptera\tMuscidae\t\tMusca\tMusca sp2\tPeru\tCOI-3P\t{SEQ_B}\n"
    f"P4\tBOLD:AAA4\tLepidoptera\tNoctuidae\t\tAgrotis\tnot_classified\tNA\tCOI-5P\t{SEQ_A}\n"
)
BOLD_V4 = (
    "processid\tbin_uri\torder\tfamily\tgenus\tspecies\tmarker_code\tnuc\n"
    f"Q1\tBOLD:B1\tColeoptera\tCarabidae\tCarabus\tCarabus nemoralis\tCOI-5P\t{SEQ_A}\n"
    f"Q2\tNone\tColeoptera\tCarabidae\tNone\tNone\tCOI-5P\t{SEQ_B}\n"
    f"Q3\tBOLD:B3\tColeoptera\tCarabidae\tCarabus\tCarabus auratus\tITS\t{SEQ_B}\n"
)
FASTA = (
    f">F1|Diptera|Muscidae|Musca|Musca domestica|BOLD:AAA1\n{SEQ_A[:50]}\n{SEQ_A[50:]}\n"
    f">F2|Diptera|Muscidae\n{SEQ_B}\n"
    f">F3\n{SEQ_A}\n"
)


def bioscan_csv(rows: list[dict]) -> str:
    frame = pd.DataFrame([{c: "" for c in BIOSCAN5M_COLUMNS} | r for r in rows], columns=BIOSCAN5M_COLUMNS)
    return frame.to_csv(index=False)


def test_bold_v3_reader_keeps_coi5p_and_cleans(tmp_path):
    ds = load_barcodes(str(write(tmp_path / "bold.tsv", BOLD_V3)))
    t = ds.table
    assert ds.reader == "bold-v3"
    assert list(t["processid"]) == ["P1", "P2", "P4"]  # P3 is COI-3P
    assert ds.cleaning.counts["dropped_other_marker"] == 1
    assert t.loc[0, "sequence"] == SEQ_A  # lowercase, gaps, end Ns
    assert t.loc[1, "sequence"] == SEQ_B  # IUPAC at the end became N, then stripped
    assert pd.isna(t.loc[1, "bin"]) and pd.isna(t.loc[2, "species"])
    assert t.loc[0, "genus"] == "Musca" and t.loc[0, "order"] == "Diptera"
    c = ds.cleaning.counts
    assert (c["lowercase_uppercased"], c["gaps_removed"], c["iupac_to_n"], c["ends_n_stripped"]) == (1, 1, 1, 2)
    assert c["species_missing"] == 1 and c["bin_missing"] == 1
    assert set(ds.extras.columns) >= {"processid", "country", "subfamily_name"}
    assert ds.split_origin == "derived"


def test_bold_v4_reader_none_is_missing(tmp_path):
    ds = load_barcodes(str(write(tmp_path / "bold4.tsv.gz", BOLD_V4)))
    t = ds.table
    assert ds.reader == "bold-v4" and list(t["processid"]) == ["Q1", "Q2"]
    assert pd.isna(t.loc[1, "species"]) and pd.isna(t.loc[1, "genus"]) and pd.isna(t.loc[1, "bin"])
    assert t.loc[1, "split"] == "pretrain"  # no species label -> pretraining corpus


def test_fasta_reader_wrapped_lines_and_optional_fields(tmp_path):
    ds = load_barcodes(str(write(tmp_path / "x.fasta", FASTA)))
    t = ds.table
    assert ds.reader == "fasta"
    assert list(t["sequence"]) == [SEQ_A, SEQ_B, SEQ_A]
    assert t.loc[0, "bin"] == "BOLD:AAA1" and pd.isna(t.loc[1, "genus"]) and pd.isna(t.loc[2, "order"])


def test_bioscan5m_reader_keeps_split_and_compact_dtypes(tmp_path):
    text = bioscan_csv([
        {"processid": "B1", "order": "Diptera", "genus": "Musca", "species": "Musca domestica",
         "dna_bin": "BOLD:X", "dna_barcode": SEQ_A, "split": "train"},
        {"processid": "B2", "order": "Diptera", "dna_barcode": SEQ_B, "split": "pretrain"},
    ])
    ds = load_barcodes(str(write(tmp_path / "BIOSCAN_5M_Insect_Dataset_metadata.csv", text)))
    t = ds.table
    assert ds.reader == "bioscan5m" and ds.split_origin == "source"
    assert list(t["split"]) == ["train", "pretrain"]
    assert all(str(t[c].dtype) == "category" for c in ["order", "family", "genus", "species", "bin", "split"])
    assert pd.isna(t.loc[1, "species"])
    # bioscan5m:DIR finds the metadata file below DIR
    ds2 = load_barcodes(f"bioscan5m:{tmp_path}")
    assert ds2.content_hash() == ds.content_hash()


def test_truncation_and_idempotent_cleaning(tmp_path):
    long = "ACGT" * 200 + "NNNN"
    fasta = f">L1|O|F|G|G s\n{long}\n>L2|O|F|G|G t\n{'A' * 658 + 'NN' + 'C' * 10}\n"
    ds = load_barcodes(str(write(tmp_path / "l.fa", fasta)), max_length=660)
    assert ds.table["sequence"].str.len().tolist() == [660, 658]
    assert ds.cleaning.counts["truncated"] == 2
    out = tmp_path / "again.csv"
    export_bioscan5m(ds, out)
    again = load_barcodes(str(out))
    assert again.cleaning.counts["truncated"] == 0 and again.cleaning.counts["ends_n_stripped"] == 0
    assert again.content_hash() == ds.content_hash()


def test_export_round_trip_is_exact(tmp_path):
    ds = load_barcodes(str(write(tmp_path / "bold.tsv", BOLD_V3)))
    out = tmp_path / "export.csv.gz"
    assert main(["data", "export", "--data", str(tmp_path / "bold.tsv"), "--out", str(out), "--quiet"]) == 0
    back = load_barcodes(str(out))
    assert back.reader == "bioscan5m" and back.split_origin == "source"
    cols = ["processid", "sequence", "order", "family", "genus", "species", "bin", "split"]
    pd.testing.assert_frame_equal(back.table[cols].astype(object), ds.table[cols].astype(object))
    assert back.content_hash() == ds.content_hash()
    header = pd.read_csv(out, nrows=0).columns.tolist()
    assert header == BIOSCAN5M_COLUMNS


def test_on_bad_skip_drops_and_counts(tmp_path):
    fasta = f">A|O|F|G|G s\n{SEQ_A}\n>B|O|F|G|G s\n{SEQ_B}X{SEQ_B}\n>C|O|F|G|G s\nNNNN--NN\n"
    ds = load_barcodes(str(write(tmp_path / "s.fa", fasta)), on_bad="skip")
    assert list(ds.table["processid"]) == ["A"]
    assert ds.cleaning.counts["dropped_invalid_character"] == 1
    assert ds.cleaning.counts["dropped_empty"] == 1
    assert ds.cleaning.records_read == 3 and ds.cleaning.records_kept == 1


BAD_INPUTS = {
    "invalid_char": ("bad.tsv", BOLD_V3.replace(f"Peru\tCOI-5P\tNN{SEQ_B}", f"Peru\tCOI-5P\tNN{SEQ_B[:10]}X"),
                     ["bad.tsv:3:", "'P2'", "'nucleotides'", "'X'"]),
    "duplicate": ("dup.fa", f">D1\n{SEQ_A}\n>D2\n{SEQ_A}\n>D1\n{SEQ_B}\n", ["dup.fa:5:", "duplicate processid 'D1'", "line 1"]),
    "unknown_header": ("h.tsv", "id\tseq\nA\tACGT\n", ["h.tsv:1:", "unrecognised header"]),
    "missing_column": ("m.tsv", "processid\tnucleotides\nA\tACGT\n", ["m.tsv:1:", "order_name"]),
    "empty_processid": ("e.fa", f">|O\n{SEQ_A}\n", ["e.fa:1:", "empty processid"]),
    "bad_split": ("s.csv", bioscan_csv([{"processid": "S1", "dna_barcode": SEQ_A, "split": "training"}]),
                  ["s.csv:2:", "'split'", "'training'"]),
    "empty_file": ("empty.tsv", "", ["empty.tsv", "empty"]),
    "headerless_fasta": ("o.fa", f"{SEQ_A}\n>A\n{SEQ_A}\n", ["o.fa:1:", "unrecognised header"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exit_2_one_line_nothing_written(tmp_path, capsys, case):
    name, text, expected = BAD_INPUTS[case]
    path = write(tmp_path / name, text)
    out = tmp_path / "out" / "export.csv"
    code = main(["data", "export", "--data", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("benchbarcode: error: ")
    for piece in expected:
        assert piece in err
    assert "Traceback" not in err
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))


@pytest.mark.parametrize("argv,expected", [
    (["data", "describe", "--data", "/no/such/file.tsv"], "no such file"),
    (["data", "describe", "--data", "sim:lots"], "sim:SIZE"),
    (["data", "describe", "--data", "bioscan5m:/no/such/dir"], "--download"),
])
def test_bad_sources_exit_2(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
