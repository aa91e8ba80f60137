"""Annotation formats on fixture files written here: Kinetics CSV, Moments in Time, list files, folders."""

import csv

import pytest

from darts_video.data.annotations import (
    AnnotationError,
    read_class_folders,
    read_exclusions,
    read_kinetics_csv,
    read_label_map,
    read_list_file,
    read_moments_csv,
    write_exclusions,
    write_label_map,
)

KINETICS_ROWS = [  # label, youtube_id, start, end, split
    ("abseiling", "--07WQ2iBlw", 1, 11, "train"),
    ('playing "bagpipes"', "a_b_c_d_e_f", 5, 15, "train"),  # an id with underscores
    ("pushing car (by hand)", "Xy_Z-012345", 120, 130, "train"),
    ("tying bow tie, then tie", "zzzzzzzzzzz", 0, 10, "train"),
    ("abseiling", "missingvid1", 3, 13, "train"),  # no file on disk
]


def write_kinetics(tmp_path, per_label_folders: bool):
    csv_path = tmp_path / "train.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        writer.writerows(KINETICS_ROWS)
    root = tmp_path / "videos"
    for label, youtube_id, start, end, _ in KINETICS_ROWS[:4]:
        folder = root / label if per_label_folders else root
        folder.mkdir(parents=True, exist_ok=True)
        extension = ".mkv" if youtube_id.startswith("Xy") else ".mp4"
        (folder / f"{youtube_id}_{start:06d}_{end:06d}{extension}").write_bytes(b"")
    return csv_path, root


@pytest.mark.parametrize("per_label_folders", [False, True])
def test_kinetics_csv_finds_files_flat_or_per_label_and_lists_the_missing(tmp_path, per_label_folders):
    csv_path, root = write_kinetics(tmp_path, per_label_folders)
    annotations = read_kinetics_csv(csv_path, root)
    assert annotations.classes == sorted({row[0] for row in KINETICS_ROWS})
    found = {(e.path.rsplit("/", 1)[-1], annotations.classes[e.label]) for e in annotations.entries}
    assert found == {
        ("--07WQ2iBlw_000001_000011.mp4", "abseiling"),
        ("a_b_c_d_e_f_000005_000015.mp4", 'playing "bagpipes"'),
        ("Xy_Z-012345_000120_000130.mkv", "pushing car (by hand)"),
        ("zzzzzzzzzzz_000000_000010.mp4", "tying bow tie, then tie"),
    }
    assert len(annotations.missing) == 1 and "missingvid1_000003_000013" in annotations.missing[0]
    assert annotations.missing[0].startswith(f"{csv_path}:6: ")


def test_kinetics_val_uses_the_train_classes_and_rejects_unknown_labels(tmp_path):
    csv_path, root = write_kinetics(tmp_path, per_label_folders=False)
    classes = ["abseiling", "pushing car (by hand)", 'playing "bagpipes"', "tying bow tie, then tie", "zumba"]
    annotations = read_kinetics_csv(csv_path, root, classes=classes)
    assert {classes[e.label] for e in annotations.entries} == set(classes[:4])
    with pytest.raises(AnnotationError, match=r"train.csv:2: label 'abseiling' is not among the 1 classes"):
        read_kinetics_csv(csv_path, root, classes=["zumba"])


def test_kinetics_csv_without_the_columns_is_rejected(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("youtube_id,time_start\nabc,1\n")
    with pytest.raises(AnnotationError, match=r"bad.csv:1: expected the columns"):
        read_kinetics_csv(bad, tmp_path)


def test_label_map_round_trips_with_odd_names(tmp_path):
    classes = ['playing "bagpipes"', "pushing car (by hand)", "tying bow tie, then tie"]
    assert read_label_map(write_label_map(classes, tmp_path / "labels.txt")) == classes


def test_moments_in_time_csv_and_categories(tmp_path):
    (tmp_path / "moments_categories.txt").write_text("clapping,0\nrunning,1\nslicing (food),2\n")
    root = tmp_path / "training"
    for relative in ("clapping/a.mp4", "slicing (food)/b c.mp4"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"")
    (tmp_path / "trainingSet.csv").write_text(
        'clapping/a.mp4,clapping,3,0\n"slicing (food)/b c.mp4",slicing (food),2,1\nrunning/gone.mp4,running,3,0\n'
    )
    annotations = read_moments_csv(tmp_path / "trainingSet.csv", root, tmp_path / "moments_categories.txt")
    assert annotations.classes == ["clapping", "running", "slicing (food)"]
    assert [(e.path, e.label) for e in annotations.entries] == [(str(root / "clapping/a.mp4"), 0), (str(root / "slicing (food)/b c.mp4"), 2)]
    assert len(annotations.missing) == 1 and "gone.mp4: no such file" in annotations.missing[0]
    (tmp_path / "validationSet.csv").write_text("clapping/a.mp4,dancing,3,0\n")
    with pytest.raises(AnnotationError, match=r"validationSet.csv:1: label 'dancing'"):
        read_moments_csv(tmp_path / "validationSet.csv", root, tmp_path / "moments_categories.txt")


def test_list_file_with_prefix_spaces_and_comments(tmp_path):
    (tmp_path / "list.txt").write_text("# videos\nclass a/video 1.mp4 0\n\nb/v2.avi 3\n")
    annotations = read_list_file(tmp_path / "list.txt", prefix="/data")
    assert [(e.path, e.label) for e in annotations.entries] == [("/data/class a/video 1.mp4", 0), ("/data/b/v2.avi", 3)]
    assert annotations.classes == ["0", "1", "2", "3"]
    (tmp_path / "bad.txt").write_text("a.mp4 0\nb.mp4 dog\n")
    with pytest.raises(AnnotationError, match=r"bad.txt:2: expected 'path label'"):
        read_list_file(tmp_path / "bad.txt")


def test_class_folders(tmp_path):
    for relative in ("walking/x.mp4", "walking/sub/y.webm", "archery/z.mp4", "archery/notes.txt"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
    annotations = read_class_folders(tmp_path)
    assert annotations.classes == ["archery", "walking"]
    assert sorted((e.path.split(str(tmp_path))[1], e.label) for e in annotations.entries) == [
        ("/archery/z.mp4", 0), ("/walking/sub/y.webm", 1), ("/walking/x.mp4", 1)
    ]


def test_class_folders_of_a_split_keep_the_training_label_map(tmp_path):
    for relative in ("train/archery/a.mp4", "train/bowling/b.mp4", "train/walking/c.mp4", "val/walking/d.mp4", "odd/cooking/e.mp4"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
    classes = read_class_folders(tmp_path / "train").classes
    val = read_class_folders(tmp_path / "val", classes)
    assert val.classes == ["archery", "bowling", "walking"] and [e.label for e in val.entries] == [2]  # not 0
    with pytest.raises(AnnotationError, match=r"odd: class folders \['cooking'\] are not among the 3 classes"):
        read_class_folders(tmp_path / "odd", classes)


def test_exclusion_files_round_trip(tmp_path):
    path = write_exclusions([("/v/b c.mp4", "cannot open: Invalid data"), ("/v/a.mp4", "no video stream")], tmp_path / "bad.txt")
    assert path.read_text().splitlines()[0] == "/v/a.mp4\tno video stream"
    assert read_exclusions(path) == {"/v/a.mp4", "/v/b c.mp4"}
