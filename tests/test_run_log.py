"""A run's log.jsonl, written by the Trainer and read through RunLog: torn lines, truncation on
resume and the last step read from the file's end."""

import json

from mapdistill_core.training.run_log import RunLog


def test_a_torn_last_line_is_skipped_and_truncate_keeps_the_steps_up_to_the_checkpoint(tmp_path):
    log = RunLog(tmp_path)
    assert log.entries() == [] and log.last_step() == 0 and log.summary().steps == 0
    log.append({"meta": {"commit": "x"}})
    for step in range(1, 6):
        log.append({"step": step, "epoch": 0, "loss": {"total": 1.0 / step}})
    log.append({"epoch": 0, "step": 5, "val": {"mAP": 0.25}})
    log.append({"step": 5, "grad_share": {"map": 0.75, "head": 0.25}, "grad_cosine": {"head": 0.5}})
    with open(log.path, "a") as f:
        f.write('{"step": 6, "epo')  # killed mid-write
    assert log.last_step() == 5 and len(log.entries()) == 8
    summary = log.summary()
    assert summary.val_curve == ({"epoch": 0, "step": 5, "mAP": 0.25},)
    assert summary.grad_share == ({"step": 5, "map": 0.75, "head": 0.25},)
    assert summary.grad_cosine == ({"step": 5, "head": 0.5},)
    log.truncate(3)
    lines = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert [e.get("step") for e in lines] == [None, 1, 2, 3] and log.last_step() == 3
    log.clear()
    assert not log.path.exists() and log.entries() == [] and log.last_step() == 0
