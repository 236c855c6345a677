"""Encoder adapters (importable as ``benchbarcode.encoders``), one module per family: each turns
a model, a checkpoint or a baseline into ``embed(list[str]) -> float32 [N, D]`` plus its record.

Architectures live in :mod:`benchbarcode.models`; adapters only load and call them. Importing this
package registers the built-in encoders with :mod:`benchbarcode.registry`.
"""

from benchbarcode.encoders import baselines, cnn, hf, inhouse  # noqa: F401  (registration side effects)
