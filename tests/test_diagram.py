"""Text and Graphviz renderings of a cell, and the describe command that prints and draws them."""

import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from darts_video.diagram import genotype_to_dot, genotype_to_text, write_diagram
from darts_video.genotype import get_genotype
from darts_video.space import SearchSpace

REPO = Path(__file__).resolve().parents[1]


def test_text_rendering_lists_each_node_with_its_input_and_the_sink():
    text = genotype_to_text(get_genotype("divided_space_time"))
    assert "node 1 = dot_spatial_softmax(input)" in text
    assert "node 2 = dot_temporal_softmax(node 1)" in text
    assert "concat[node 2]" in text


@pytest.mark.parametrize("seed", range(5))
def test_dot_source_has_one_edge_per_connection(seed):
    genotype = SearchSpace(num_nodes=4).sample(random.Random(seed))
    source = genotype_to_dot(genotype)
    edges = set(re.findall(r"^\s*(\w+) -> (\w+)", source, re.MULTILINE))
    expected = {(f"s{n.input}", f"s{i}") for i, n in enumerate(genotype.nodes, start=1)}
    expected |= {(f"s{i}", "sink") for i in genotype.sink} | {("sink", "out"), ("s0", "out")}
    assert edges == expected
    assert source.count("{") == source.count("}")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_graphviz_renders_png_and_svg(tmp_path):
    written = write_diagram(get_genotype("divided_space_time"), tmp_path / "cell")
    assert [p.suffix for p in written] == [".dot", ".png", ".svg"]
    assert (tmp_path / "cell.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "cell.svg").read_text()


def test_without_graphviz_only_the_dot_file_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert write_diagram(get_genotype("non_local"), tmp_path / "cell") == [tmp_path / "cell.dot"]


def run_describe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "describe.py"), *args], capture_output=True, text=True)


def test_describe_space_prints_the_restricted_space():
    result = run_describe("space", "--ops", "dot_temporal_*", "identity", "--nodes", "2")
    assert result.returncode == 0, result.stderr
    assert "2 nodes, dense connections, 4 candidate operations" in result.stdout


def test_describe_genotype_prints_and_draws(tmp_path):
    result = run_describe("genotype", "divided_space_time", "--out", str(tmp_path / "cell"))
    assert result.returncode == 0, result.stderr
    assert "node 2 = dot_temporal_softmax(node 1)" in result.stdout
    assert (tmp_path / "cell.dot").exists()


def test_describe_rejects_a_bad_genotype_before_anything_else(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "darts_video.genotype", "version": 7}')
    result = run_describe("genotype", str(bad))
    assert result.returncode == 2
    assert f"{bad}: field 'version' = 7" in result.stderr
    result = run_describe("genotype", "non_local", "--space", "--nodes", "3")
    assert result.returncode == 2 and "this search space has 3 nodes" in result.stderr
