"""Video data: PyAV decoding, the frame index, clip sampling, samplers, transforms, datasets and the
built-in procedural set."""

from darts_video.data.annotations import (
    Annotations,
    AnnotationError,
    VideoEntry,
    read_class_folders,
    read_exclusions,
    read_kinetics_csv,
    read_label_map,
    read_list_file,
    read_moments_csv,
    write_exclusions,
    write_label_map,
)
from darts_video.data.dataset import BadVideoLog, TooManyBadVideos, VideoClipDataset, collate_clips
from darts_video.data.decode import VideoDecodeError, VideoInfo, decode_frames, probe
from darts_video.data.index import VideoIndex, build_index
from darts_video.data.sampler import EpochSampler, sample_rng
from darts_video.data.sampling import ClipSampling
from darts_video.data.splits import load_split, save_split, stratified_split
from darts_video.data.synthetic import SyntheticVideoDataset
from darts_video.data.transforms import ClipTransform

__all__ = [
    "AnnotationError",
    "Annotations",
    "BadVideoLog",
    "ClipSampling",
    "ClipTransform",
    "EpochSampler",
    "SyntheticVideoDataset",
    "TooManyBadVideos",
    "VideoClipDataset",
    "VideoDecodeError",
    "VideoEntry",
    "VideoIndex",
    "VideoInfo",
    "build_index",
    "collate_clips",
    "decode_frames",
    "load_split",
    "probe",
    "read_class_folders",
    "read_exclusions",
    "read_kinetics_csv",
    "read_label_map",
    "read_list_file",
    "read_moments_csv",
    "sample_rng",
    "save_split",
    "stratified_split",
    "write_exclusions",
    "write_label_map",
]
