"""PyAV decoding on real files: frame counts, seeking equals decoding from the start, bad files."""

import random

import av
import numpy as np
import pytest

from helpers import VIDEOS
from darts_video.data.decode import VideoDecodeError, decode_frames, probe

FILES = {  # name: (frames, fps, width, height), as the testdata README lists them
    "arm_wrestling.mp4": (280, 28, 340, 256),
    "mpeg4_320x240.avi": (164, 25, 320, 240),
    "short_32frames.mp4": (32, 30, 340, 256),
}


def all_frames(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


@pytest.mark.parametrize("name", FILES)
def test_probe_counts_the_decodable_frames(name):
    frames, fps, width, height = FILES[name]
    info = probe(VIDEOS / name)
    assert (info.num_frames, round(info.fps), info.width, info.height) == (frames, fps, width, height)
    assert len(all_frames(VIDEOS / name)) == frames


@pytest.mark.parametrize("name", FILES)
def test_seeking_gives_the_frames_of_decoding_from_the_start(name):
    reference = all_frames(VIDEOS / name)
    info = probe(VIDEOS / name)
    rng = random.Random(0)
    starts = [0, info.num_frames - 1, *(rng.randrange(info.num_frames) for _ in range(8))]
    if name == "arm_wrestling.mp4":
        starts += [186, 187, 188, 229, 230, 268]  # around keyframes
    for start in starts:
        indices = [min(start + 2 * i, info.num_frames - 1) for i in range(8)]
        clip = decode_frames(VIDEOS / name, indices, info).numpy()
        assert clip.shape == (8, info.height, info.width, 3)
        assert np.array_equal(clip, reference[indices]), f"{name}: clip starting at {start}"


def test_frames_come_back_in_the_order_asked_with_repeats():
    reference = all_frames(VIDEOS / "short_32frames.mp4")
    indices = [5, 3, 3, 31, 0]
    assert np.array_equal(decode_frames(VIDEOS / "short_32frames.mp4", indices).numpy(), reference[indices])


def test_short_side_is_downscaled_in_the_converter():
    clip = decode_frames(VIDEOS / "arm_wrestling.mp4", [0, 100], short_side=128)
    assert clip.shape == (2, 128, 170, 3)
    clip = decode_frames(VIDEOS / "mpeg4_320x240.avi", [10], short_side=120)
    assert clip.shape == (1, 120, 160, 3)


def test_an_index_past_the_last_frame_repeats_the_last_frame():
    reference = all_frames(VIDEOS / "short_32frames.mp4")
    clip = decode_frames(VIDEOS / "short_32frames.mp4", [30, 31, 40]).numpy()
    assert np.array_equal(clip, reference[[30, 31, 31]])


def make_bad_videos(folder) -> dict:
    """The broken inputs users meet, written by the test; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    zero = folder / "zero_bytes.mp4"
    zero.write_bytes(b"")
    text = folder / "text.mp4"
    text.write_text("this is not a video\n" * 100)
    truncated = folder / "truncated.mp4"
    truncated.write_bytes((VIDEOS / "arm_wrestling.mp4").read_bytes()[:30000])
    audio_only = folder / "audio_only.mp4"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (np.sin(np.linspace(0, 200, 16000)) * 0.3).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in (*stream.encode(frame), *stream.encode()):
            container.mux(packet)
    return {"zero_bytes": zero, "text": text, "truncated": truncated, "audio_only": audio_only, "missing": folder / "missing.mp4"}


@pytest.mark.parametrize("case", ["zero_bytes", "text", "truncated", "audio_only", "missing"])
def test_bad_files_raise_a_decode_error_naming_the_file(tmp_path, case):
    path = make_bad_videos(tmp_path)[case]
    with pytest.raises(VideoDecodeError) as error:
        decode_frames(path, [0, 1, 2])
    assert str(error.value).startswith(f"{path}: ")


def faststart_copy(source, target):
    """Remux with the mp4 index (moov) before the media data, as ``-movflags faststart`` writes it."""
    with av.open(str(source)) as original, av.open(str(target), "w", options={"movflags": "faststart"}) as copy:
        stream = copy.add_stream_from_template(original.streams.video[0])
        for packet in original.demux(original.streams.video[0]):
            if packet.dts is not None:  # not the empty packet that ends the demuxing
                packet.stream = stream
                copy.mux(packet)
    return target


def test_a_cut_file_whose_index_survives_decodes_what_is_there(tmp_path):
    """Keep the mp4 index but cut the media data: the frames before the cut are the real ones,
    and frames past it are not invented (an index past the end gets the last decoded frame)."""
    source = faststart_copy(VIDEOS / "short_32frames.mp4", tmp_path / "faststart.mp4")
    data = source.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # the index first: it survives the cut
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    info = probe(cut)
    assert 16 < info.num_frames < 32  # the packets still in the file, not the index's 32
    reference = all_frames(VIDEOS / "short_32frames.mp4")
    clip = decode_frames(cut, [*range(16), info.num_frames - 1, 31], info).numpy()
    assert np.array_equal(clip[:16], reference[:16])
    assert np.array_equal(clip[-1], clip[-2])
