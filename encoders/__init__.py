"""Encoder adapter plugins (importable as ``benchbarcode.encoders``), one module per family.

Importing this package registers the built-in encoders with :mod:`benchbarcode.registry`.
"""

from benchbarcode.encoders import baselines, hf, inhouse  # noqa: F401  (registration side effects)
