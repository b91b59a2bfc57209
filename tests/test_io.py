"""capprof.io: atomic writes, the directory exchange and stale temporaries."""

import os

from capprof import io


def test_replacing_a_directory_leaves_the_new_one_and_no_temporaries(tmp_path):
    target = tmp_path / "profile"
    for text in ("old", "new"):
        with io.atomic_directory(target) as tmp:
            (tmp / "a.txt").write_text(text)
    assert (target / "a.txt").read_text() == "new"
    assert os.listdir(tmp_path) == ["profile"]


def test_exchange_swaps_two_directories(tmp_path):
    (tmp_path / "a").mkdir(); (tmp_path / "a" / "x").write_text("a")
    (tmp_path / "b").mkdir(); (tmp_path / "b" / "x").write_text("b")
    if io.exchange(tmp_path / "a", tmp_path / "b"):
        assert (tmp_path / "a" / "x").read_text() == "b" and (tmp_path / "b" / "x").read_text() == "a"


def test_a_killed_writers_temporaries_are_removed_on_the_next_write(tmp_path):
    (tmp_path / ".out.json.999999999-dead.tmp").write_text("half")
    (tmp_path / ".prof.999999999-dead.tmp").mkdir()
    io.atomic_write_text(tmp_path / "out.json", "{}")
    with io.atomic_directory(tmp_path / "prof"):
        pass
    assert sorted(os.listdir(tmp_path)) == ["out.json", "prof"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "f.csv"
    target.write_text("old")

    def fail(handle):
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    try:
        io.atomic_write(target, fail)
    except OSError as exc:
        assert "cannot write" in io.write_problem(exc, target) and "no space left" in io.write_problem(exc, target)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["f.csv"]
