"""Which prompt is the best: one number for a single prompt; per task for a multi-task run.

A multi-task run (MULTI_TASK) selects each task's prompt on that task's own dev metrics: its
best table holds, in row k, task k's prompt from the evaluation where task k scored best (rows
may come from different steps); the info records each task's step, score and metrics.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

Metrics = Mapping[str, Mapping[str, float]]


def update_per_task(record: dict[str, Any], tasks: Sequence[str], metrics: Metrics, step: int,
                    table: np.ndarray, best_table: Optional[np.ndarray],
                    score: Callable[[Metrics], float]
                    ) -> Optional[tuple[np.ndarray, dict[str, Any]]]:
    """(the new best table `[n, P, d]`, its info) if some task improved at `step`, else None.

    `record["best_tasks"]` ({task: {"score", "step", "metrics"}}) is updated in place, and the
    run's summary fields (`best_score`: the mean of the tasks' best scores, `best_step`: the
    latest improvement, `best_metrics`: each task's best metrics).
    """
    best = record.setdefault("best_tasks", {})
    improved = []
    for index, task in enumerate(tasks):
        if task not in metrics:
            continue
        value = score({task: metrics[task]})
        if task not in best or value > best[task]["score"]:
            best[task] = {"score": value, "step": step, "metrics": dict(metrics[task])}
            improved.append(index)
    if not improved:
        return None
    new = np.array(table if best_table is None else best_table, np.float32)
    new[improved] = table[improved]
    summary = {t: best[t] for t in tasks if t in best}
    info = {"score": float(np.mean([b["score"] for b in summary.values()])),
            "metrics": {t: b["metrics"] for t, b in summary.items()},
            "steps": {t: b["step"] for t, b in summary.items()}}
    record.update(best_score=info["score"], best_step=step, best_metrics=info["metrics"])
    return new, info
