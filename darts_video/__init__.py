"""darts_video: differentiable search of spatiotemporal attention cells for video classification."""

from darts_video.cell import Cell
from darts_video.genotype import Genotype, GenotypeError, get_genotype, named_genotypes
from darts_video.models import create_model
from darts_video.ops import NonLocalBlock, OpConfig, OpSpec, create_op, list_ops
from darts_video.space import SearchSpace

__version__ = "0.1.0"

__all__ = [
    "Cell",
    "Genotype",
    "GenotypeError",
    "NonLocalBlock",
    "OpConfig",
    "OpSpec",
    "SearchSpace",
    "create_model",
    "create_op",
    "get_genotype",
    "list_ops",
    "named_genotypes",
]
