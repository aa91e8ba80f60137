"""Candidate attention operations of the search space, and the non-local baseline block.

Importing this package registers every family; :func:`list_ops` then enumerates all candidates.
"""

from darts_video.ops import dot_attention, identity, map_attention  # noqa: F401  (importing registers)
from darts_video.ops.activations import ACTIVATIONS
from darts_video.ops.dot_attention import DotProductAttention
from darts_video.ops.map_attention import MapAttention
from darts_video.ops.nonlocal_block import NonLocalBlock
from darts_video.ops.registry import DIMENSIONS, IDENTITY, OpConfig, OpSpec, create_op, list_ops, register_family

__all__ = [
    "ACTIVATIONS",
    "DIMENSIONS",
    "IDENTITY",
    "DotProductAttention",
    "MapAttention",
    "NonLocalBlock",
    "OpConfig",
    "OpSpec",
    "create_op",
    "list_ops",
    "register_family",
]
