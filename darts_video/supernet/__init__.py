"""The differentiable search: mixed cells in a backbone, architecture parameters, discretisation."""

from darts_video.supernet.arch import MODES, ArchitectureParameters, ArchWeights, CandidateMask
from darts_video.supernet.mixed import MixedCell, MixedOp
from darts_video.supernet.supernet import Supernet

__all__ = ["MODES", "ArchWeights", "ArchitectureParameters", "CandidateMask", "MixedCell", "MixedOp", "Supernet"]
