"""Encoder registry: built-ins, closest-match errors, third-party entry points, baselines."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
from conftest import install_plugin

from benchbarcode import registry
from benchbarcode.cli import main
from benchbarcode.errors import UserError


def test_builtins_listed(capsys):
    names = {e.name for e in registry.list_encoders()}
    assert {"mae", "mlm", "gpt", "kmer", "random"} <= names
    assert main(["encoders", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"name": "mae"' in out and '"objective": "causal"' in out


def test_unknown_encoder_suggests_closest(capsys):
    with pytest.raises(UserError, match="did you mean mae"):
        registry.get_encoder("mea")
    assert main(["pretrain", "--encoder", "mlmm", "--out", "x"]) == 2
    assert "did you mean mlm" in capsys.readouterr().err


def test_register_twice_is_an_error():
    with pytest.raises(ValueError, match="twice"):
        registry.register_encoder("kmer", family="x", objective="x", description="x")(lambda: None)


def test_entry_point_plugin_discovered(tmp_path, monkeypatch):
    pkg = tmp_path / "bbplugin_demo.py"
    pkg.write_text(textwrap.dedent('''
        import numpy as np
        from benchbarcode.registry import Encoder, EncoderMeta

        class LengthEncoder(Encoder):
            """Sequence length and GC content: a third-party demo encoder."""
            family = "demo"
            objective = "none"

            def __init__(self, **options):
                self.meta = EncoderMeta(name="lengthgc", family="demo", objective="none",
                                        tokenizer="none", k=None, layers=None, heads=None,
                                        hidden_size=None, parameters=0, embedding_dim=2,
                                        max_length=None, pooling="none")

            def embed(self, sequences, batch_size=64, progress=False):
                return np.array([[len(s), (s.count("G") + s.count("C")) / max(1, len(s))]
                                 for s in sequences], dtype=np.float32)
    '''))
    install_plugin(tmp_path, monkeypatch, "bbplugin_demo", pkg.read_text(), "benchbarcode.encoders",
                   "lengthgc = bbplugin_demo:LengthEncoder")
    entry = registry.get_encoder("lengthgc")
    assert entry.origin == "plugin bbplugin-demo 1.0" and entry.meta.family == "demo"
    assert "third-party demo" in entry.description
    emb = entry.create().embed(["GGCC", "AT"])
    assert emb.shape == (2, 2) and emb[0, 1] == 1.0
    sys.modules.pop("bbplugin_demo", None)


def test_kmer_profile_counts_and_normalisation():
    enc = registry.get_encoder("kmer").create(k=2)
    emb = enc.embed(["AAAN", "ACGT", ""])
    assert emb.shape == (3, 16) and emb.dtype == np.float32
    # AAAN: k-mers AA, AA, AN(skipped) -> only AA
    assert emb[0, 0] == pytest.approx(1.0) and np.count_nonzero(emb[0]) == 1
    assert np.linalg.norm(emb[1]) == pytest.approx(1.0) and np.count_nonzero(emb[1]) == 3
    assert not emb[2].any()


def test_random_control_is_seeded_and_deterministic():
    seqs = ["ACGT" * 150, "ACGTTTGA" * 40, "GGGCCCAAATTT" * 20]
    a = registry.get_encoder("random").create(like="mae", seed=1)
    b = registry.get_encoder("random").create(like="mae", seed=1)
    c = registry.get_encoder("random").create(like="mae", seed=2)
    ea, eb, ec = a.embed(seqs), b.embed(seqs), c.embed(seqs)
    assert ea.shape == (3, a.meta.embedding_dim)
    np.testing.assert_array_equal(ea, eb)
    assert not np.allclose(ea, ec)
    # batching and length sorting do not change the vectors
    np.testing.assert_allclose(a.embed(seqs, batch_size=1), ea, rtol=1e-5, atol=1e-6)
    gpt = registry.get_encoder("random").create(like="gpt")
    assert gpt.meta.objective == "random-init" and gpt.embed(seqs).shape[0] == 3


def test_inhouse_encoder_needs_a_checkpoint():
    with pytest.raises(UserError, match="needs --checkpoint"):
        registry.get_encoder("mae").create()
