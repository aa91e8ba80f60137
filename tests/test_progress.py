"""Progress: plain lines, no carriage-return frames, when the output is a file or a pipe."""

import io

from darts_video.engine.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_progress_is_one_line_every_n_steps_and_never_a_bar_frame():
    log = io.StringIO()
    assert list(progress(range(250), "epoch 2/8", stream=log, every=100)) == list(range(250))
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 2
    assert lines[0].startswith("epoch 2/8: batch 100/250, ") and lines[0].endswith(" batch/s")
    assert lines[1].startswith("epoch 2/8: batch 200/250, ")
    short = io.StringIO()
    list(progress(range(30), "epoch 1/8", stream=short, every=100))
    assert short.getvalue() == ""  # a short epoch: the loop's own epoch line is enough


def test_iterables_without_a_length_take_a_total_and_disabled_progress_is_silent():
    log = io.StringIO()
    list(progress(iter(range(4)), "scanning", stream=log, every=2, unit="video", total=4))
    assert log.getvalue().splitlines()[0].startswith("scanning: video 2/4, ")
    quiet = io.StringIO()
    assert list(progress(range(300), "epoch 1/1", enabled=False, stream=quiet, every=1)) == list(range(300))
    assert quiet.getvalue() == ""  # ranks other than 0


def test_on_a_terminal_it_is_a_tqdm_bar():
    terminal = Terminal()
    list(progress(range(5), "epoch 1/8", stream=terminal))
    assert "\r" in terminal.getvalue() and "epoch 1/8" in terminal.getvalue()
