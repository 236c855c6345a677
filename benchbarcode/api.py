"""The public plugin API: everything a third-party encoder or task imports, from one module.

An encoder::

    from benchbarcode.api import Encoder, register_encoder

    @register_encoder("gc", family="baseline", description="GC content")
    class GC(Encoder):
        def embed(self, sequences, batch_size=64, progress=False): ...

A task subclasses :class:`Task`, carries a :class:`TaskMeta` in ``meta`` and returns a
:class:`TaskOutcome` from ``evaluate``; it is registered with :func:`register_task` or an entry
point in the group ``benchbarcode.tasks`` (encoders: ``benchbarcode.encoders``).
"""

from benchbarcode.contracts import (MIN_QUERIES, Encoder, EncoderMeta, QueryOutcomes, Similarity, Task,
                                    TaskMeta, TaskOutcome, is_embedding, too_few_queries)
from benchbarcode.errors import UserError
from benchbarcode.protocol_names import DEFAULT_PROTOCOL, PROTOCOLS, REFERENCE_PROTOCOL
from benchbarcode.registry import register_encoder, register_task

__all__ = ["DEFAULT_PROTOCOL", "MIN_QUERIES", "PROTOCOLS", "REFERENCE_PROTOCOL", "Encoder", "EncoderMeta",
           "QueryOutcomes", "Similarity", "Task", "TaskMeta", "TaskOutcome", "UserError", "is_embedding",
           "register_encoder", "register_task", "too_few_queries"]
