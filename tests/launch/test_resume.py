"""Kill-and-resume: a run SIGKILLed at chosen and random moments ends bit-identical (issues 6, 11).

One uninterrupted reference run, and the same config in another MODEL_DIR killed with SIGKILL
again and again, at least MIN_KILLS times (before any checkpoint, while the best prompt or a step
checkpoint is half written, between a new best prompt and its step checkpoint, at random moments
of start-up and training, right after the final checkpoint) and restarted each time until it
completes. The final prompt, its optimizer state, the progress record and the best prompt must
equal the reference's bit for bit, keep-N must hold and nothing half-written may be left.

Both runs go at once: most of a start is single-threaded imports and tracing, so two cores
overlap them well. The restarts share a JAX compilation cache (as a user's restarts could); the
reference compiles on its own, so equality also shows the cache changes nothing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from typing import Callable, Optional

import numpy as np
import pytest

from tests.launch.runner import REPO

TRAIN_STEPS = 80
CHECKPOINT_PERIOD = 5
KEEP = 2
FLAGS = ("--gin_file=runs/embedded_default.gin", f"--gin.TRAIN_STEPS={TRAIN_STEPS}",
         f"--gin.CHECKPOINT_PERIOD={CHECKPOINT_PERIOD}", f"--gin.CHECKPOINTS_TO_KEEP={KEEP}",
         "--gin.EVAL_PERIOD=10", "--gin.BATCH_SIZE=8", "--gin.PROMPT_LENGTH=10",
         "--gin.DROPOUT_RATE=0.1")  # dropout on, so a wrong per-step dropout key would show
KILL_SEED = 20261130
MIN_KILLS = 22
DEADLINE_S = 900  # a hard stop (the test takes about 4 minutes on 2 idle cores)
POLL_S = 0.002    # a checkpoint is half-written for some 30-100 ms; poll well inside that
TMP_MARK = ".orbax-checkpoint-tmp"
TRASH_DIR = "being_deleted"  # run_dir.TRASH_DIR, without importing JAX to collect the tests

# A trigger is made at each launch, for its MODEL_DIR; given the seconds since the launch, it
# says whether to kill now.
Trigger = Callable[[float], bool]
TriggerFactory = Callable[[str], Trigger]


def _launch(model_dir: str, log_path: str, extra_env: Optional[dict] = None) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "HF_HUB_OFFLINE": "1", **(extra_env or {})}
    with open(log_path, "w") as log:  # a file, not a pipe: a full pipe would stall the run
        return subprocess.Popen([sys.executable, "-m", "prompt_tuning.train", *FLAGS,
                                 f"--gin.MODEL_DIR='{model_dir}'"],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _entries(model_dir: str, sub: str) -> set[str]:
    try:
        return set(os.listdir(os.path.join(model_dir, sub)))
    except FileNotFoundError:
        return set()


class _NewEntries:
    """Entries of MODEL_DIR/sub that this launch made.

    Names seen at launch are an earlier launch's; such a name counts again once it has gone
    (the restart removes a leftover temporary directory, then may write the same step again).
    """

    def __init__(self, model_dir: str, sub: str):
        self.model_dir, self.sub = model_dir, sub
        self.stale = _entries(model_dir, sub)

    def __call__(self) -> set[str]:
        now = _entries(self.model_dir, self.sub)
        self.stale &= now
        return now - self.stale


def _leftovers(model_dir: str) -> list[str]:
    """Half-written or half-deleted things under MODEL_DIR."""
    found = []
    for root, dirs, files in os.walk(model_dir):
        for name in dirs + files:
            if TMP_MARK in name or name.endswith(".tmp") or name == TRASH_DIR:
                found.append(os.path.relpath(os.path.join(root, name), model_dir))
    return found


# --- Triggers -------------------------------------------------------------------------------
def after_seconds(seconds: float) -> TriggerFactory:
    return lambda model_dir: lambda elapsed: elapsed >= seconds


def while_writing(sub: str, nth: int) -> TriggerFactory:
    """As soon as this launch's `nth` orbax temporary directory appears in MODEL_DIR/sub."""
    def make(model_dir: str) -> Trigger:
        new_entries, seen = _NewEntries(model_dir, sub), set()

        def fire(elapsed: float) -> bool:
            seen.update(n for n in new_entries() if TMP_MARK in n)
            return len(seen) >= nth
        return fire
    return make


def once_committed(sub: str, min_step: int, delay: float = 0.0) -> TriggerFactory:
    """`delay` seconds after this launch commits a step >= `min_step` in MODEL_DIR/sub."""
    def make(model_dir: str) -> Trigger:
        new_entries, committed_at = _NewEntries(model_dir, sub), []

        def fire(elapsed: float) -> bool:
            if not committed_at and any(n.isdigit() and int(n) >= min_step
                                        for n in new_entries()):
                committed_at.append(elapsed)
            return bool(committed_at) and elapsed >= committed_at[0] + delay
        return fire
    return make


def _random_kill(rng: random.Random) -> tuple[str, TriggerFactory]:
    """A kill that fires in any launch with training left: during start-up, or in the middle
    of writing a step checkpoint, or a moment after one was committed (a small delay, so that
    a launch rarely gets further than one checkpoint and the run outlasts the schedule)."""
    kind = rng.choice(("start-up", "writing", "committed"))
    if kind == "start-up":
        seconds = rng.uniform(0.3, 5.0)
        return f"at a random moment of start-up or training ({seconds:.1f} s)", after_seconds(
            seconds)
    if kind == "writing":
        return "while a step checkpoint is written", while_writing("checkpoints", 1)
    delay = rng.uniform(0.0, 0.3)
    return (f"{delay:.2f} s after a step checkpoint is committed",
            once_committed("checkpoints", 1, delay=delay))


def kill_schedule(rng: random.Random) -> list[tuple[str, TriggerFactory]]:
    chosen = [
        ("early, before any checkpoint", after_seconds(rng.uniform(0.5, 6.0))),
        ("while the untrained prompt is written to best/", while_writing("best", 1)),
        ("right after a better prompt is committed to best/ (its step checkpoint not yet)",
         once_committed("best", 1)),
    ]
    final = [("right after the final checkpoint is committed (old ones maybe not yet deleted)",
              once_committed("checkpoints", TRAIN_STEPS))]
    return chosen + [_random_kill(rng) for _ in range(MIN_KILLS - len(chosen) - 1)] + final


def _run_until(proc: subprocess.Popen, trigger: Trigger, started: float,
               deadline: float) -> Optional[float]:
    """Kills `proc` when `trigger` fires; the elapsed time of the kill, or None if it exited."""
    while proc.poll() is None:
        now = time.time()
        if now > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"the kill-and-resume test ran past {DEADLINE_S} s")
        elapsed = now - started
        if trigger(elapsed):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return elapsed
        time.sleep(POLL_S)
    return None


def _tail(path: str, lines: int = 15) -> str:
    with open(path) as f:
        return "".join(f.readlines()[-lines:])


def _step_dirs(model_dir: str, sub: str) -> list[int]:
    return sorted(int(n) for n in os.listdir(os.path.join(model_dir, sub)) if n.isdigit())


def _assert_trees_equal(a, b, what: str) -> None:
    import jax  # pylint: disable=import-outside-toplevel

    paths_a = jax.tree_util.tree_flatten_with_path(a)[0]
    paths_b = jax.tree_util.tree_flatten_with_path(b)[0]
    assert [p for p, _ in paths_a] == [p for p, _ in paths_b], f"{what}: different structure"
    for (path, x), (_, y) in zip(paths_a, paths_b):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and np.array_equal(x, y), (
            f"{what}{jax.tree_util.keystr(path)} differs from the uninterrupted run")


def _kill_and_restart(model_dir: str, schedule: list[tuple[str, TriggerFactory]], logs: str,
                      env: dict, deadline: float) -> list[tuple]:
    """Starts the run once per planned kill and once more; returns the kills made.

    A launch whose trigger never fires runs to completion, which ends the sequence early.
    """
    kills = []
    never: TriggerFactory = lambda model_dir: lambda elapsed: False
    for launch, (what, make_trigger) in enumerate([*schedule, ("to completion", never)], 1):
        log = os.path.join(logs, f"resumed_{launch}.log")
        started = time.time()
        proc = _launch(model_dir, log, env)
        at = _run_until(proc, make_trigger(model_dir), started, deadline)
        if at is None:
            assert proc.returncode == 0, f"launch {launch} failed:\n{_tail(log)}"
            return kills
        kills.append((what, round(at, 2), sorted(_leftovers(model_dir)),
                      _checkpoint_steps(model_dir)))
    raise AssertionError("unreachable: the last launch is never killed")


@pytest.mark.slow
def test_sigkill_at_any_moment_then_resume_is_bit_identical(tmp_path):
    deadline = time.time() + DEADLINE_S
    reference_dir, resumed_dir = str(tmp_path / "reference"), str(tmp_path / "resumed")
    reference = _launch(reference_dir, str(tmp_path / "reference.log"))
    cache = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache"),
             "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    schedule = kill_schedule(random.Random(KILL_SEED))
    try:
        kills = _kill_and_restart(resumed_dir, schedule, str(tmp_path), cache, deadline)
        reference.wait(timeout=max(deadline - time.time(), 1))
    finally:
        if reference.poll() is None:  # the test failed or ran out of time
            reference.kill()
            reference.wait()
    print("kills (when, at s, left half-written, step checkpoints):", *kills, sep="\n  ")
    assert len(kills) == len(schedule) >= MIN_KILLS, (
        f"only {len(kills)} of the planned kills happened: {kills}")
    assert any(any(TMP_MARK in path for path in left) for _, _, left, _ in kills), (
        f"no kill landed while orbax was writing (no temporary directory left): {kills}")
    assert reference.returncode == 0, _tail(str(tmp_path / "reference.log"))
    _compare_runs(reference_dir, resumed_dir)


def _checkpoint_steps(model_dir: str) -> list[int]:
    """The committed step checkpoints, [] before the first."""
    try:
        return _step_dirs(model_dir, "checkpoints")
    except FileNotFoundError:
        return []


def _compare_runs(reference_dir: str, resumed_dir: str) -> None:
    from prompt_tuning.export import prompt_from_run  # pylint: disable=import-outside-toplevel
    from prompt_tuning import run_dir  # pylint: disable=import-outside-toplevel

    best_step = None
    for which in ("latest", "best"):
        want, want_meta = prompt_from_run(reference_dir, which)
        got, got_meta = prompt_from_run(resumed_dir, which)
        assert want.dtype == got.dtype == np.float32
        same = bool(np.array_equal(want, got))  # not in the assert: pytest would print both
        assert same, (f"the {which} prompt differs from the uninterrupted run (largest difference "
                      f"{np.max(np.abs(want - got))})")
        for key in ("step", "dev_metric", "dev_metrics"):
            assert got_meta[key] == want_meta[key], f"{which} {key}: {got_meta[key]!r}"
        best_step = want_meta["step"]
    assert best_step > 0, "the best prompt should be a trained one"

    states = []
    for model_dir in (reference_dir, resumed_dir):
        runs = run_dir.RunCheckpoints(model_dir)
        try:
            states.append(runs.state_tree("latest"))
        finally:
            runs.close()
    (want_state, want_progress), (got_state, got_progress) = states
    _assert_trees_equal(want_state, got_state, "state")  # step, prompt and optimizer state
    assert got_progress == want_progress, "the best-so-far record differs"
    assert int(np.asarray(got_state["step"])) == TRAIN_STEPS

    last = list(range(TRAIN_STEPS - CHECKPOINT_PERIOD * (KEEP - 1), TRAIN_STEPS + 1,
                      CHECKPOINT_PERIOD))
    assert _step_dirs(resumed_dir, "checkpoints") == last
    assert _step_dirs(reference_dir, "checkpoints") == last
    assert _step_dirs(resumed_dir, "best") == _step_dirs(reference_dir, "best") == [best_step]
    assert _leftovers(resumed_dir) == [] and _leftovers(reference_dir) == []


# --- The pieces, in-process and fast: what a kill can leave behind and how the next start copes --
def _tiny_state(step: int):
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

    # pylint: disable-next=import-outside-toplevel
    from prompt_tuning.training import optim, step as step_lib

    state = step_lib.TrainState.create({"prompt/prompt": jnp.full((2, 3), float(step))},
                                       optim.adafactor())
    return state.replace(step=jnp.asarray(step, jnp.int32))


def test_a_run_killed_while_writing_run_json_can_restart(tmp_path):
    from prompt_tuning import errors  # pylint: disable=import-outside-toplevel
    from prompt_tuning import run_dir  # pylint: disable=import-outside-toplevel

    (tmp_path / "run.json.tmp").write_text('{"task": ')  # killed mid-write: only the temporary
    run_dir.check_model_dir(str(tmp_path), {"task": "t"})
    (tmp_path / "notes.txt").write_text("someone else's")
    with pytest.raises(errors.RunDirError, match="holds no run.json"):
        run_dir.check_model_dir(str(tmp_path), {"task": "t"})


def test_opening_checkpoints_writes_nothing(tmp_path):
    from prompt_tuning import run_dir  # pylint: disable=import-outside-toplevel

    for writer in (False, True):
        runs = run_dir.RunCheckpoints(str(tmp_path / "run"), keep=2, writer=writer)
        assert runs.latest_step() is None and runs.best_step() is None
        runs.close()
    assert not (tmp_path / "run").exists()


def test_readers_never_touch_a_live_run(tmp_path):
    from prompt_tuning import run_dir  # pylint: disable=import-outside-toplevel

    model_dir = str(tmp_path)
    writer = run_dir.RunCheckpoints(model_dir, keep=1, writer=True)
    writer.save(_tiny_state(5), {"best_step": None})
    in_progress = tmp_path / "checkpoints" / ("10" + TMP_MARK)  # the writer's next save
    in_progress.mkdir()
    reader = run_dir.RunCheckpoints(model_dir)
    assert reader.restore_params("latest")[1]["step"] == 5
    with pytest.raises(RuntimeError, match="writer=True"):
        reader.save(_tiny_state(6), {})
    reader.close()
    assert in_progress.exists() and _step_dirs(model_dir, "checkpoints") == [5]
    writer.close()


def test_the_writer_clears_what_a_killed_run_left(tmp_path):
    from prompt_tuning import run_dir  # pylint: disable=import-outside-toplevel

    model_dir = str(tmp_path)
    runs = run_dir.RunCheckpoints(model_dir, keep=2, writer=True)
    for step in (5, 10, 15):
        runs.save(_tiny_state(step), {"best_step": None})
    runs.save_best(10, _tiny_state(10).params, {"score": 1.0})
    runs.close()
    # A killed attempt: a half-written step and best, a step moved out but not yet deleted, and
    # a step committed whose older neighbour was not yet deleted (keep-N broken).
    checkpoints, best = tmp_path / "checkpoints", tmp_path / "best"
    for half in (checkpoints / ("20" + TMP_MARK), best / ("20" + TMP_MARK),
                 checkpoints / run_dir.TRASH_DIR / "5"):
        half.mkdir(parents=True)
        (half / "some_file").write_text("half")
    runs = run_dir.RunCheckpoints(model_dir, keep=1, writer=True)  # keep lowered on resume
    assert runs.latest_step() == 15  # temporaries are not steps
    runs.close()  # the restart had nothing to train
    assert _step_dirs(model_dir, "checkpoints") == [15] and _step_dirs(model_dir, "best") == [10]
    assert _leftovers(model_dir) == []


def test_a_new_best_is_written_before_the_old_one_goes(tmp_path):
    from prompt_tuning import run_dir  # pylint: disable=import-outside-toplevel

    model_dir = str(tmp_path)
    runs = run_dir.RunCheckpoints(model_dir, keep=2, writer=True)
    runs.save_best(0, _tiny_state(0).params, {"score": 1.0})
    deleted = []
    real_delete = runs._best.delete  # pylint: disable=protected-access

    def delete(step):  # what a kill at this moment would leave
        deleted.append((step, _step_dirs(model_dir, "best")))
        real_delete(step)

    runs._best.delete = delete  # pylint: disable=protected-access
    runs.save_best(10, _tiny_state(10).params, {"score": 2.0})
    assert deleted == [(0, [0, 10])]
    # Written by a killed, identical attempt: kept as it is.
    runs.save_best(10, _tiny_state(99).params, {"score": 2.0})
    runs.close()
    reader = run_dir.RunCheckpoints(model_dir)
    params, info = reader.restore_params("best")
    reader.close()
    assert info == {"score": 2.0, "step": 10}
    assert np.array_equal(np.asarray(params["prompt/prompt"]), np.full((2, 3), 10.0))
