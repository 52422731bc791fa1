"""``report_to``: a real run on the tiny model logs to TensorBoard and to wandb (offline), and both
are read back from the files those libraries wrote (nothing is mocked)."""
from __future__ import annotations

import json
import struct
import time

import pytest


def _wandb_records(path) -> list:
    """History rows of a ``.wandb`` file: a 7-byte header, then a LevelDB-style log of protobuf records
    in 32 KiB blocks (7-byte chunk headers: crc, length, type 1 full / 2 first / 3 middle / 4 last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, buf, rows = path.read_bytes(), 7, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        if kind == 0 and length == 0:  # zero padding up to the block end
            pos += left - 7
            continue
        buf, pos = buf + data[pos:pos + length], pos + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            buf = b""
            rows.append(record)
    return rows


def _wandb_history(path, timeout: float = 30.0) -> list[dict]:
    """The logged rows, once wandb's writer process has written the run's exit record."""
    deadline = time.monotonic() + timeout
    while True:
        records = _wandb_records(path)
        kinds = [r.WhichOneof("record_type") for r in records]
        if "exit" in kinds or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            for r in records if r.WhichOneof("record_type") == "history"]


def test_tensorboard_and_wandb_offline_receive_the_metrics(tiny_model_dir, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from train_fakes import make_trainer

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)  # no key: the run must go offline by itself
    monkeypatch.setenv("WANDB_SILENT", "true")
    trainer = make_trainer(tiny_model_dir, tmp_path, max_steps=3, report_to=("tensorboard", "wandb"))
    trainer.train()
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]

    events = sorted((run / run.name).glob("events.out.tfevents.*"))  # OUTPUT/<run name>/ (hparams below it)
    assert events, "no TensorBoard event file was written"
    acc = EventAccumulator(str(run / run.name))
    acc.Reload()
    for key in ("reward", "loss", "truncated", "zero_variance"):
        scalars = acc.Scalars(key)
        assert [s.step for s in scalars] == [1, 2, 3], key
        assert [s.value for s in scalars] == pytest.approx([r[key] for r in rows], rel=1e-6), key

    (offline,) = (run / "wandb").glob("offline-run-*/run-*.wandb")  # offline mode, inside the run dir
    history = _wandb_history(offline)
    assert [h["_step"] for h in history] == [1, 2, 3]
    assert [h["reward"] for h in history] == pytest.approx([r["reward"] for r in rows], rel=1e-6)
    assert [h["grad_norm"] for h in history] == pytest.approx([r["grad_norm"] for r in rows], rel=1e-6)
