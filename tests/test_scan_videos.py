"""scripts/scan_videos.py: finds every bad video of a list and writes an exclusion file."""

import subprocess
import sys
from pathlib import Path

from helpers import VIDEOS, run_script
from test_decode import make_bad_videos
from darts_video.data import VideoClipDataset, VideoIndex, read_exclusions, read_list_file

REPO = Path(__file__).resolve().parents[1]


def test_scan_lists_the_bad_videos_and_datasets_accept_the_list(tmp_path):
    bad = make_bad_videos(tmp_path / "videos")
    lines = [f"{VIDEOS / 'arm_wrestling.mp4'} 0", f"{VIDEOS / 'mpeg4_320x240.avi'} 1"] + [f"{path} 2" for path in bad.values()]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "bad.txt"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "scan_videos.py"), str(tmp_path / "list.txt"), "--out", str(out), "--workers", "2",
         "--video-index", str(tmp_path / "index.npz")],
        capture_output=True, text=True,
    )
    assert result.returncode == 1, result.stderr  # bad videos found
    assert "2 good, 5 bad of 7 videos" in result.stdout
    assert read_exclusions(out) == {str(path) for path in bad.values()}
    reasons = dict(line.split("\t") for line in out.read_text().splitlines())
    assert reasons[str(bad["missing"])] == "file not found"
    assert reasons[str(bad["audio_only"])] == "no video stream"
    dataset = VideoClipDataset(read_list_file(tmp_path / "list.txt").entries, ["a", "b", "c"], mode="val", exclude=out)
    assert len(dataset) == 2
    index = VideoIndex.load(tmp_path / "index.npz")  # the frame index a run reads with --video-index
    rows = index.rows()
    assert len(index) == 7 and index.info(rows[str(VIDEOS / "arm_wrestling.mp4")]).num_frames == 280
    assert index.error(rows[str(bad["missing"])]) == "file not found"


def test_scan_of_a_clean_list_exits_zero(tmp_path):
    (tmp_path / "list.txt").write_text(f"{VIDEOS / 'short_32frames.mp4'} 0\n")
    result = run_script(REPO / "scripts" / "scan_videos.py", str(tmp_path / "list.txt"), "--out", str(tmp_path / "bad.txt"), "--full")
    assert result.returncode == 0, result.stderr
    assert "1 good, 0 bad of 1 videos" in result.stdout and (tmp_path / "bad.txt").read_text() == ""
