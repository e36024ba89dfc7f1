"""Data safety: only our own files are deleted or overwritten, `--out` is empty or a run of
ours, a finished run is left as it is, every checkpoint is checked before it is loaded, and
Ctrl-C says how to continue."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distill.engine import LogReporter, train
from distill.errors import UsageError
from distill.recipe import load_recipe
from tests.conftest import FAST, ROOT, SMOKE

pytestmark = pytest.mark.integration

ONE = [*FAST, "schedule.epochs=1"]


def sets(*extra: str) -> list[str]:
    return [a for s in [*ONE, *extra] for a in ("--set", s)]


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `folder` with its mtime and content."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def flip(path: Path, at: int | None = None, bit: int = 0x10) -> None:
    """Flip one bit of `path` (by default in its last quarter: tensor data, not a header)."""
    data = bytearray(path.read_bytes())
    i = len(data) * 3 // 4 if at is None else at
    data[i] ^= bit
    path.write_bytes(bytes(data))


def lines(text: str) -> list[str]:
    return [x for x in text.splitlines() if x.strip()]


def flat(text: str) -> str:
    """Notes as one line (an in-process console wraps them at 80 columns)."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished one-epoch run of the smoke recipe (copied by each test that alters it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    train(load_recipe(SMOKE, [*ONE, f"run.out={out}"]))
    return out


def copy_of(run: Path, tmp_path: Path) -> Path:
    """A copy of a module-scoped run that one test may alter."""
    out = tmp_path / run.parent.name
    shutil.copytree(run, out)
    return out


@pytest.fixture
def finished(finished_run, tmp_path) -> Path:
    return copy_of(finished_run, tmp_path)


class _StopAfter(LogReporter):
    """Ctrl-C once epoch `n` (0-based) has ended, before its checkpoint."""

    def __init__(self, n: int):
        self.n = n

    def epoch(self, metrics):
        if metrics["epoch"] == self.n:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def unfinished_run(tmp_path_factory) -> Path:
    """A run of 3 epochs stopped after its first checkpoint (epoch 1 of 3)."""
    out = tmp_path_factory.mktemp("unfinished") / "run"
    with pytest.raises(KeyboardInterrupt) as info:
        train(load_recipe(SMOKE, [*FAST, "schedule.epochs=3", f"run.out={out}"]),
              reporter=_StopAfter(1))
    assert "its last checkpoint is after epoch 1/3" in info.value.distill_stopped
    assert not (out / "summary.json").exists()
    return out


@pytest.fixture
def unfinished(unfinished_run, tmp_path) -> Path:
    return copy_of(unfinished_run, tmp_path)


def resume_args(out: Path, epochs: int = 3) -> list:
    return ["train", SMOKE, "--out", out, "--resume",
            *[a for s in [*FAST, f"schedule.epochs={epochs}"] for a in ("--set", s)]]


# -- 1. only our own files -----------------------------------------------------------------
@pytest.mark.parametrize("resume", [False, True])
def test_a_folder_of_user_files_is_refused_and_left_alone(tmp_path, cli, resume):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / ".draft.tmp").write_text("my draft")
    (mine / "notes.txt").write_text("my notes")
    before = snapshot(mine)
    res = cli("train", SMOKE, "--out", mine, *sets(), *(["--resume"] if resume else []))
    assert res.code == 2, res.err
    assert lines(res.err) == [lines(res.err)[0]] and "--out" in res.err
    assert "not empty" in res.err and str(mine) in res.err
    assert snapshot(mine) == before


def test_only_hidden_user_files_are_no_empty_folder(tmp_path, cli):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / ".draft.tmp").write_text("my draft")
    (mine / ".state.pt.tmp").write_text("not a temporary of ours: no 8-hex tag")
    before = snapshot(mine)
    res = cli("train", SMOKE, "--out", mine, *sets(), "--resume")
    assert res.code == 2 and "--out" in res.err
    assert snapshot(mine) == before


def test_root_working_directory_and_files_are_refused(tmp_path, cli, monkeypatch):
    res = cli("train", SMOKE, "--out", "/", *sets())
    assert res.code == 2 and "--out" in res.err and "'/'" in res.err, res.err
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "notes.txt").write_text("mine")
    monkeypatch.chdir(cwd)
    for out in ("", "."):
        res = cli("train", SMOKE, "--out", out, *sets(), "--resume")
        assert res.code == 2 and "--out" in res.err, res.err
        assert sorted(os.listdir(cwd)) == ["notes.txt"]
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    res = cli("train", SMOKE, "--out", a_file, *sets())
    assert res.code == 2 and "is a file" in res.err and a_file.read_text() == "mine"


def test_an_empty_folder_or_a_new_path_is_a_new_run(tmp_path, cli):
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (empty, tmp_path / "new" / "deeper"):
        res = cli("train", SMOKE, "--out", out, *sets(), "--resume")  # as `make quickstart`
        assert res.code == 0, res.err
        run = json.loads((out / "run.json").read_text())
        assert run["finished"] and run["epoch"] == 1
        assert set(run["files"]) == {p.name for p in out.iterdir()} - {"run.json"}


def test_finished_run_resume_changes_nothing_even_without_state(finished, cli):
    (finished / "state.pt").unlink()
    before = snapshot(finished)
    res = cli("train", SMOKE, "--out", finished, "--resume", *sets())
    assert res.code == 0, res.err
    assert "finished" in res.err and "starting a new run" not in res.err
    assert snapshot(finished) == before
    res = cli("train", SMOKE, "--out", finished, *sets())  # without --resume: refused
    assert res.code == 2 and "already holds a run" in res.err
    assert snapshot(finished) == before


def test_a_foreign_file_in_a_run_is_named_and_kept(finished, unfinished, cli):
    for run, epochs in ((finished, 1), (unfinished, 3)):
        (run / "notes.txt").write_text("mine")
        (run / ".draft.tmp").write_text("mine")
        before = snapshot(run)
        res = cli(*resume_args(run, epochs))
        assert res.code == 2, res.err
        assert len(lines(res.err)) == 1 and "is not a file of the run" in res.err
        assert ".draft.tmp" in res.err or "notes.txt" in res.err
        assert snapshot(run) == before
    # A file with a run file's name the run did not write (no EMA here) is foreign too.
    (unfinished / "notes.txt").unlink()
    (unfinished / ".draft.tmp").unlink()
    (unfinished / "ema.safetensors").write_text("mine")
    res = cli(*resume_args(unfinished))
    assert res.code == 2 and "ema.safetensors" in res.err
    assert (unfinished / "ema.safetensors").read_text() == "mine"


@pytest.mark.parametrize("name", ["model.safetensors", "recipe.yaml", "state.pt"])
def test_a_missing_listed_file_is_named(unfinished, cli, name):
    (unfinished / name).unlink()
    before = snapshot(unfinished)
    res = cli(*resume_args(unfinished))
    assert res.code == 2 and len(lines(res.err)) == 1, res.err
    assert f"{name}' is missing" in res.err
    assert snapshot(unfinished) == before


def test_stale_temporaries_of_run_files_go_and_resume_finishes(unfinished, cli):
    (unfinished / ".state.pt.0123abcd.tmp").write_bytes(b"half")
    (unfinished / ".model.safetensors.deadbeef.tmp").write_bytes(b"half")
    res = cli(*resume_args(unfinished))
    assert res.code == 0, res.err
    assert "resuming" in res.err
    assert not [p for p in unfinished.iterdir() if p.name.endswith(".tmp")]
    assert json.loads((unfinished / "run.json").read_text())["finished"]


def test_a_run_killed_between_a_file_and_run_json_resumes(unfinished_run, tmp_path,
                                                         monkeypatch):
    """What a kill can leave mid-checkpoint: new weights listed as pending, the old state."""
    from distill.checkpoint import run_files

    out = tmp_path / "run"
    shutil.copytree(unfinished_run, out)
    real = run_files.atomic_write_bytes

    def killed_at_state(path, data):
        if Path(path).name == "state.pt":
            raise KeyboardInterrupt
        real(path, data)

    monkeypatch.setattr(run_files, "atomic_write_bytes", killed_at_state)
    r = load_recipe(SMOKE, [*FAST, "schedule.epochs=3", f"run.out={out}"])
    with pytest.raises(KeyboardInterrupt):
        train(r, resume=True)
    assert json.loads((out / "run.json").read_text())["pending"].keys() == {"model.safetensors",
                                                                          "state.pt"}
    monkeypatch.setattr(run_files, "atomic_write_bytes", real)
    assert train(r, resume=True).summary["epochs"] == 3


def test_a_run_of_an_earlier_version_resumes_and_gets_a_manifest(unfinished, finished, cli):
    (unfinished / "run.json").unlink()
    res = cli(*resume_args(unfinished))
    assert res.code == 0, res.err
    assert "no run.json" in flat(res.err) and (unfinished / "run.json").exists()
    (finished / "run.json").unlink()
    (finished / "state.pt").unlink()
    before = snapshot(finished)
    res = cli("train", SMOKE, "--out", finished, "--resume", *sets())
    assert res.code == 0 and "finished" in res.err
    assert snapshot(finished) == before


# -- 2. checkpoints checked ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["state.pt", "model.safetensors", "recipe.yaml"])
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_checkpoint_is_named_on_resume_and_not_loaded(unfinished, cli, name, damage):
    path = unfinished / name
    if damage == "flip":
        flip(path)
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = snapshot(unfinished)
    res = cli(*resume_args(unfinished))
    assert res.code == 2, res.err
    assert len(lines(res.err)) == 1 and f"{name}' is corrupt" in res.err
    assert "resuming" not in res.err
    assert snapshot(unfinished) == before


def test_run_json_itself_is_checked(unfinished, cli):
    doc = json.loads((unfinished / "run.json").read_text())
    doc["epoch"] = 3
    (unfinished / "run.json").write_text(json.dumps(doc))
    res = cli(*resume_args(unfinished))
    assert res.code == 2 and "run.json' is corrupt" in res.err


def test_a_flipped_weight_is_named_by_eval(finished, cli, tmp_path):
    assert cli("eval", finished).code == 0
    flip(finished / "model.safetensors")
    res = cli("eval", finished)
    assert res.code == 2 and len(lines(res.err)) == 1, res.err
    assert "model.safetensors' is corrupt" in res.err
    # A bare copy, away from its run.json: the file's own sha256 names it.
    bare = tmp_path / "bare.safetensors"
    shutil.copy(finished / "model.safetensors", bare)
    res = cli("eval", finished, "--weights", bare)
    assert res.code == 2 and f"{bare}: corrupt" in res.err, res.err


def test_a_flipped_header_byte_is_named_too(finished, tmp_path):
    from distill.checkpoint import load_weights, read_metadata

    bare = tmp_path / "bare.safetensors"
    shutil.copy(finished / "model.safetensors", bare)
    raw = bare.read_bytes()
    meta = read_metadata(bare)
    i = raw.index(b'"mean"') + raw[raw.index(b'"mean"'):].index(b"0.5") + 2  # 0.5 -> 0.4
    flip(bare, i, bit=0x01)
    assert read_metadata(bare)["mean"] != meta["mean"]
    with pytest.raises(UsageError, match="corrupt"):
        load_weights(bare)


def test_a_checkpoint_teacher_checks_its_weights(finished, unfinished, cli, tmp_path):
    own = sets("teacher.kwargs={}", "teacher.input_size=null", "loss.name=soft",
               "student.name=deit_tiny_patch16_224")
    res = cli("train", SMOKE, "--teacher", f"checkpoint:{unfinished}", "--out",
              tmp_path / "a", *own)
    assert res.code == 0, res.err
    assert "is not finished" in flat(res.err)  # the teacher's note
    res = cli("train", SMOKE, "--teacher", f"checkpoint:{finished}", "--out",
              tmp_path / "b", *own)
    assert res.code == 0 and "is not finished" not in res.err, res.err
    flip(finished / "model.safetensors")
    res = cli("train", SMOKE, "--teacher", f"checkpoint:{finished}", "--out",
              tmp_path / "c", *own)
    assert res.code == 2 and len(lines(res.err)) == 1, res.err
    assert "model.safetensors' is corrupt" in res.err and not (tmp_path / "c").exists()
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(finished / "model.safetensors", bare / "model.safetensors")
    res = cli("train", SMOKE, "--teacher", f"checkpoint:{bare}", "--out", tmp_path / "d", *own)
    assert res.code == 2 and "corrupt" in res.err and not (tmp_path / "d").exists(), res.err


def test_cache_build_deletes_only_its_own_temporaries(tmp_path):
    from distill.engine.cache_build import build_cache
    from distill.engine.report import Reporter

    out = tmp_path / "cache"
    out.mkdir()
    (out / ".draft.tmp").write_text("mine")
    (out / ".manifest.json.0123abcd.tmp").write_text("half")
    build_cache(load_recipe(SMOKE, ONE), out, store="hard", reporter=Reporter())
    assert (out / ".draft.tmp").read_text() == "mine"
    assert not (out / ".manifest.json.0123abcd.tmp").exists()


# -- 6. Ctrl-C -----------------------------------------------------------------------------
def test_loader_workers_leave_ctrl_c_to_the_main_process():
    # Run in a fresh interpreter: worker_init changes the process's SIGINT and excepthook.
    code = """
import signal, sys
from distill.data.loaders import worker_init
worker_init(0)
print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)
for kind in (ConnectionResetError, BrokenPipeError, ValueError):
    try:
        raise kind("from the sharer thread")
    except BaseException:
        sys.excepthook(*sys.exc_info())
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "True", res.stderr
    # The peer hanging up is not reported; any other error still is.
    assert "ValueError: from the sharer thread" in res.stderr
    assert "ConnectionResetError" not in res.stderr and "BrokenPipeError" not in res.stderr
    # and every loader of the toolkit starts its workers with it
    from distill.data.loaders import loader_args, worker_init

    assert loader_args(load_recipe(SMOKE).data, False, True)["worker_init_fn"] is worker_init


@pytest.mark.parametrize("where", ["step", "last_epoch"])
def test_a_swallowed_ctrl_c_still_stops_the_run(tmp_path, where):
    # CI saw Ctrl-C land in a fork hook (logging's _releaseLock, as a loader started its
    # workers): CPython printed "Exception ignored" and the run went on to the end. Here the
    # interrupt lands in a finalizer, where it is swallowed the same way: during step 2, or
    # after the last epoch's evaluation (no training step is left to notice it).
    code = f"""
import os, signal
from distill.engine import Reporter, interrupt, train
from distill.recipe import load_recipe

class Swallow:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(10_000))  # the handler runs, inside __del__: its KeyboardInterrupt is lost

class CtrlC(Reporter):
    def advance(self, epoch, done):
        if {where!r} == "step" and done == 2:
            Swallow()

    def epoch(self, row):
        if {where!r} == "last_epoch" and row["epoch"] == 1:
            Swallow()

interrupt.install()
recipe = load_recipe({str(SMOKE)!r}, overrides=["data.options.train_size=64",
    "data.batch_size=16", "schedule.epochs=2", "run.out={tmp_path / 'run'}"])
try:
    train(recipe, reporter=CtrlC())
    print("ran to the end")
except KeyboardInterrupt as exc:
    print("stopped:", exc.distill_stopped)
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert "Exception ignored" in res.stderr, res.stderr  # it was swallowed where it landed
    assert res.stdout.startswith("stopped: "), res.stdout + res.stderr
    assert not (tmp_path / "run" / "summary.json").exists()


def test_deferred_puts_the_handler_back_when_a_pending_handler_raises():
    # signal.signal runs pending handlers first; torch's SIGCHLD one raises when a worker
    # died. The restore is retried, and that error (not a lost Ctrl-C) comes out.
    code = """
import signal
from distill.engine import interrupt
interrupt.install()
real, calls = signal.signal, []
def flaky(sig, handler):
    calls.append(handler)
    if len(calls) == 2:  # the first restore
        raise RuntimeError("DataLoader worker exited unexpectedly")
    return real(sig, handler)
interrupt.signal.signal = flaky
try:
    with interrupt.deferred():
        pass
except RuntimeError as exc:
    print("raised:", exc)
interrupt.signal.signal = real
print(signal.getsignal(signal.SIGINT) is interrupt._handler, len(calls))
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert res.stdout.splitlines() == ["raised: DataLoader worker exited unexpectedly",
                                       "True 3"], res.stdout + res.stderr


def test_ctrl_c_while_loader_workers_start_is_delivered_after(tmp_path):
    # `deferred` holds SIGINT back around the workers' start (where the fork hooks run) and
    # raises it once they are up, in ordinary code; also with other threads about (torch's:
    # the kernel may hand the signal to any of them).
    code = """
import os, signal, threading, time
import torch
from distill.engine import interrupt
torch.ones(512, 512) @ torch.ones(512, 512)  # torch's worker threads are up
threading.Thread(target=time.sleep, args=(1,), daemon=True).start()
interrupt.install()
try:
    with interrupt.deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        print("held back")
    print("lost")
except KeyboardInterrupt:
    print("delivered after")
print(signal.getsignal(signal.SIGINT) is interrupt._handler)  # the handler is back
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert res.stdout.split() == ["held", "back", "delivered", "after", "True"], \
        res.stdout + res.stderr


def test_ctrl_c_says_how_to_resume_and_resume_finishes(tmp_path):
    out = tmp_path / "run"
    args = ["train", str(SMOKE), "--out", str(out),
            *[a for s in ["data.options.train_size=256", "data.batch_size=16",
                          "run.log_every=1", "schedule.epochs=4", "data.num_workers=1"]
              for a in ("--set", s)]]
    env = {**os.environ, "COLUMNS": "200"}
    # A job started in the background (`cmd &`, as some CI runners do) inherits SIGINT
    # ignored, and Python then keeps ignoring it: give the run the default disposition.
    proc = subprocess.Popen([sys.executable, "-m", "distill", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    seen = []
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("epoch 1/4"):
            time.sleep(0.3)  # into epoch 2
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + err
    assert len(lines(err)) == 1 and "Traceback" not in err, err
    line = lines(err)[0]
    assert line.startswith("interrupted: the run in ") and str(out) in line
    assert "continue with: distill train " in line and line.endswith("--resume")
    command = shlex.split(line.split("continue with: ", 1)[1])
    assert command[0] == "distill"
    done = subprocess.run([sys.executable, "-m", "distill", *command[1:]], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr and (out / "summary.json").exists()
    assert json.loads((out / "run.json").read_text())["finished"]


def test_ctrl_c_in_other_commands_is_one_line(monkeypatch, cli, tmp_path):
    import distill.cli.bench as bench_cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_cli, "run_cells", interrupted)
    res = cli("bench", SMOKE, "--losses", "none", "--out", tmp_path / "b", *sets())
    assert res.code == 130 and len(lines(res.err)) == 1, res.err
    assert "benchmark stopped" in res.err and "distill bench" in res.err


@pytest.mark.parametrize("resume", [False, True])
def test_a_folder_with_only_the_users_recipe_is_not_a_run(tmp_path, cli, resume):
    """A `recipe.yaml` alone (the user's own, comments and all) is no run of ours: refused,
    left as it is, with or without --resume."""
    out = tmp_path / "exp"
    out.mkdir()
    mine = "# my experiment\n" + SMOKE.read_text()
    (out / "recipe.yaml").write_text(mine)
    res = cli("train", out / "recipe.yaml", "--out", out, *sets(),
              *(["--resume"] if resume else []))
    assert res.code == 2 and "holds no run of this toolkit" in res.err, res.err
    assert (out / "recipe.yaml").read_text() == mine and sorted(os.listdir(out)) == ["recipe.yaml"]
