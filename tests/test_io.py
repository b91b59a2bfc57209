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


def test_a_killed_writers_temporaries_of_any_name_are_removed(tmp_path):
    (tmp_path / ".step_1.999999999-dead.tmp").mkdir()
    (tmp_path / ".rl_module.old-999999999").mkdir()
    mine = io.temporary_name(tmp_path / "step_2")  # this process is alive: kept
    mine.mkdir()
    (tmp_path / "step_0").mkdir()
    assert [p.name for p in io.clean_stale_in(tmp_path)] == [".step_1.999999999-dead.tmp"]
    # the old directory a kill left aside with no directory in its place is put back
    assert sorted(os.listdir(tmp_path)) == sorted([mine.name, "rl_module", "step_0"])


def test_staged_outputs_move_in_whole_or_not_at_all(tmp_path):
    out = tmp_path / "report.html"
    out.write_text("old"); (tmp_path / "report_files").mkdir(); (tmp_path / "report_files" / "a.png").write_text("old")
    try:
        with io.staged_outputs(out, ["report_files"]) as stage:
            (stage / "report.html").write_text("half")
            raise OSError(28, "No space left on device")
    except OSError:
        pass
    assert out.read_text() == "old" and (tmp_path / "report_files" / "a.png").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["report.html", "report_files"]
    with io.staged_outputs(out, ["report_files"]) as stage:
        (stage / "report.html").write_text("new")
        (stage / "report_files").mkdir(); (stage / "report_files" / "b.png").write_text("new")
    assert out.read_text() == "new" and os.listdir(tmp_path / "report_files") == ["b.png"]
    assert sorted(os.listdir(tmp_path)) == ["report.html", "report_files"]


def test_require_space_names_the_directory_free_and_needed(tmp_path, monkeypatch):
    import pytest

    from capprof.errors import CapprofError

    io.require_space(tmp_path / "new" / "out", 1 << 20, "capprof run")  # enough: silent
    monkeypatch.setattr(io, "free_bytes", lambda directory: 3 << 20)
    with pytest.raises(CapprofError) as caught:
        io.require_space(tmp_path / "new" / "out", 16 << 20, "capprof run")
    assert str(caught.value) == (f"no space left in {tmp_path}: 3.0 MiB free, `capprof run` needs about 16.0 MiB; "
                                 "free space there or choose another --out")
