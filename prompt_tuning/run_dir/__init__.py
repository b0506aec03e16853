"""A run's directory (MODEL_DIR): its identity (run.json), its lock (run.lock), its training
checkpoints and best prompt. Training writes it; eval, infer and export only read it.

    MODEL_DIR/run.json         identity: the run's config, less what may change on resume
    MODEL_DIR/run.lock         held by the one process that writes the run
    MODEL_DIR/config.gin       the operative gin config (written by the launcher)
    MODEL_DIR/checkpoints/N/   train state (prompt, optimizer state, step) + progress JSON
                               + a copy of the best prompt so far + checksums of its arrays
    MODEL_DIR/best/N/          the best prompt so far + its dev metrics + checksums
    MODEL_DIR/train/, validation/   TensorBoard scalars
"""

from prompt_tuning.run_dir.checkpoints import TRASH_DIR, RunCheckpoints
from prompt_tuning.run_dir.identity import (RUN_FILE, check_model_dir, read_run_file,
                                            write_run_file)
from prompt_tuning.run_dir.lock import LOCK_FILE, RunLock, lock_for

__all__ = ["LOCK_FILE", "RUN_FILE", "TRASH_DIR", "RunCheckpoints", "RunLock", "lock_for",
           "check_model_dir", "read_run_file", "write_run_file"]
