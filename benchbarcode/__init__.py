"""benchbarcode: a benchmark suite for DNA-barcode encoders.

This package is the core: the CLI (:mod:`benchbarcode.cli`), the registry and the plugin contract
(:mod:`.registry`, :mod:`.contracts`, and :mod:`.api` for plugins), encoder specs resolved once
(:mod:`.spec`), data (:mod:`.data`), tokenizers, the in-house architectures (:mod:`.models`),
pretraining, embedding with its cache, profiling, result files and their store (:mod:`.results`,
:mod:`.store`), the summary rule (:mod:`.summary`) and the leaderboard. Encoder adapters live in
``encoders/`` (installed as :mod:`benchbarcode.encoders`), tasks in ``tasks/``
(:mod:`benchbarcode.tasks`).
"""

__version__ = "0.1.0"
