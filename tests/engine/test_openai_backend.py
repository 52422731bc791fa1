"""Fault injection for ``--backend openai`` against a stub server on 127.0.0.1 (tests/openai_stub.py).

Every test bounds its requests (a handful of items, retries with millisecond backoff) and its time
(per-request timeouts under a second); the stub stops itself at the end of each test.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from openai_stub import Stub, free_port
from reasonkit.cli import main
from reasonkit.engine import SamplingConfig, get_backend
from reasonkit.engine.types import ChatPrompt
from reasonkit.engine.openai_http import backoff_seconds, public_url, retry_after_seconds

FAST = "backoff_base=0.01,backoff_cap=0.2,timeout=2"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"question": f"How much is item {i}?", "answer": str(i)}) + "\n"
                            for i in range(6)))
    return path


def eval_args(stub_urls, data, out, *extra, options=FAST):
    urls = [stub_urls] if isinstance(stub_urls, str) else stub_urls
    args = ["eval", "--backend", "openai", "--model", "stub", "-b", "custom", "--data", str(data),
            "--verifier", "gsm8k", "--limit", "all", "-o", str(out), "-q", "--backend-options", options]
    for u in urls:
        args += ["--base-url", u]
    return args + list(extra)


def rows_of(out):
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def test_helpers():
    assert retry_after_seconds("2") == 2.0 and retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    import random

    rng = random.Random(0)
    waits = [backoff_seconds(a, 0.5, 4.0, rng) for a in range(10)]
    assert all(0 <= w <= min(4.0, 0.5 * 2 ** a) for a, w in enumerate(waits))
    assert public_url("http://user:pw@host:8000/v1/") == "http://host:8000/v1"
    from reasonkit.eval.config import EvalConfig

    cfg = EvalConfig(backend="openai", base_url=("http://user:pw@host:8000/v1",))
    assert cfg.to_dict()["base_url"] == ["http://host:8000/v1"]


def test_clean_run_scores_every_item_on_the_chat_endpoint(tmp_path, data):
    with Stub() as stub:
        r = CliRunner().invoke(main, eval_args(stub.url, data, tmp_path / "o", "--lora", "ad1"))
        assert r.exit_code == 0, r.output
        reqs = stub.generation_requests()
    rows = rows_of(tmp_path / "o")
    assert len(rows) == 12 and all(r["gsm8k.correct"] is True for r in rows)
    assert {r["path"] for r in reqs} == {"/v1/chat/completions"}
    assert {r["body"]["model"] for r in reqs} == {"stub", "ad1"}
    assert {r["served_model"] for r in rows} == {"stub", "ad1"} and {r["base_model"] for r in rows} == {"stub"}
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["failures"]["samples"] == 0
    assert [m["id"] for m in summary["server"]["models"]] == ["stub", "ad1"]
    assert rows[0]["num_tokens"] == 3  # from the returned token ids


def test_retry_after_500_hang_drop_and_malformed_json_recover(tmp_path, data):
    faults = {1: ("status", 429, {"Retry-After": "0.3"}), "item 1?": ("status", 503),
              "item 2?": ("hang", 5), "item 3?": "drop", "item 4?": "malformed"}
    with Stub(faults=faults) as stub:
        t0 = time.perf_counter()
        r = CliRunner().invoke(main, eval_args(stub.url, data, tmp_path / "o", "--concurrency", "1",
                                               options="backoff_base=0.01,backoff_cap=1,timeout=0.5"))
        elapsed = time.perf_counter() - t0
        assert r.exit_code == 0, r.output
        assert len(stub.generation_requests()) == 6 + 5  # each fault cost one retry
    rows = rows_of(tmp_path / "o")
    assert sorted(r["item_id"] for r in rows) == sorted({r["item_id"] for r in rows})
    assert all(r["gsm8k.correct"] is True and r["completion"] for r in rows)
    assert elapsed >= 0.3 + 0.5  # waited out Retry-After and the timeout


def test_persistent_500_is_an_error_row_counted_and_only_it_is_rerun(tmp_path, data):
    with Stub(persistent={"item 2?": ("status", 500)}) as stub:
        r = CliRunner().invoke(main, eval_args(stub.url, data, tmp_path / "o", options=FAST + ",max_retries=2"))
        assert r.exit_code == 1
        assert "1 of 6 requests failed" in r.output and "HTTP 500" in r.output
        assert len([q for q in stub.generation_requests() if "item 2?" in json.dumps(q["body"])]) == 3
    rows = rows_of(tmp_path / "o")
    bad = [r for r in rows if r["finish_reason"] == "error"]
    assert len(bad) == 1 and bad[0]["completion"] == "" and "gsm8k.correct" not in bad[0]
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["failures"]["samples"] == 1
    assert summary["adapters"]["base"]["items"] == 5  # the failed item is not scored as wrong
    with Stub() as healthy:
        r = CliRunner().invoke(main, eval_args(healthy.url, data, tmp_path / "o"))
        assert r.exit_code == 0, r.output
        assert [json.dumps(q["body"]).count("item 2?") for q in healthy.generation_requests()] == [1]
    rows = rows_of(tmp_path / "o")
    assert len(rows) == 6 and all(r["gsm8k.correct"] is True for r in rows)


def test_400_is_not_retried_and_length_is_truncated(tmp_path, data):
    with Stub(persistent={"item 0?": ("status", 400), "item 5?": "length"}) as stub:
        r = CliRunner().invoke(main, eval_args(stub.url, data, tmp_path / "o"))
        assert r.exit_code == 1
        assert len([q for q in stub.generation_requests() if "item 0?" in json.dumps(q["body"])]) == 1
    rows = {r["item_id"]: r for r in rows_of(tmp_path / "o")}
    five = next(r for r in rows.values() if "item 5" in r["prompt"])
    assert five["finish_reason"] == "length" and five["gsm8k.reason"] == "truncated"


def test_replica_down_is_taken_out_of_rotation(tmp_path, data):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with Stub() as stub:
        r = CliRunner().invoke(main, eval_args([dead, stub.url], data, tmp_path / "o", "--concurrency", "1",
                                               options=FAST + ",eject_after=2"))
        assert r.exit_code == 0, r.output
        assert "out of rotation" in r.output
        assert len(stub.generation_requests()) == 6
    assert all(r["gsm8k.correct"] is True for r in rows_of(tmp_path / "o"))


def test_n_refused_falls_back_to_seeded_requests(tmp_path):
    with Stub(refuse_n=True) as stub:
        backend = get_backend("openai", "stub", base_url=stub.url, backoff_base=0.01)
        outs = backend.generate(["item 3", "item 4"], SamplingConfig(n=3, temperature=0.7, seed=10))
        bodies = [q["body"] for q in stub.generation_requests()]
    assert [len(o.completions) for o in outs] == [3, 3]
    assert all(c.text == "<answer>3</answer>" for c in outs[0].completions)
    singles = sorted(b["seed"] for b in bodies if b["n"] == 1)
    assert singles == [10, 11, 12, 13, 14, 15]  # prompt i, sample j: seed + i * n + j


def test_greedy_n_is_one_request_and_logprobs_come_back(tmp_path):
    with Stub() as stub:
        backend = get_backend("openai", "stub", base_url=stub.url)
        outs = backend.generate([[1, 2, 3]], SamplingConfig(n=2, temperature=0.0, logprobs=True))
        assert len(stub.generation_requests()) == 1 and stub.generation_requests()[0]["body"]["n"] == 1
    comp = outs[0].completions
    assert len(comp) == 2 and comp[0].logprobs == [-0.5, -0.25, -0.125] and comp[0].token_ids == [100, 101, 102]
    assert outs[0].prompt_token_ids == [1, 2, 3, 4, 5]


def test_prefill_is_sent_to_vllm_and_refused_elsewhere(tmp_path):
    prompt = ChatPrompt(({"role": "user", "content": "item 7"},), prefill="<think>")
    with Stub() as stub:
        get_backend("openai", "stub", base_url=stub.url).generate([prompt], SamplingConfig())
        body = stub.generation_requests()[0]["body"]
    assert body["continue_final_message"] is True and body["messages"][-1] == {"role": "assistant",
                                                                              "content": "<think>"}
    with Stub(owned_by="openai") as other:
        with pytest.raises(Exception, match="no assistant pre-fill"):
            get_backend("openai", "stub", base_url=other.url).generate([prompt], SamplingConfig())
        assert other.generation_requests() == []


def test_api_key_is_sent_but_never_written(tmp_path, data, monkeypatch):
    secret = "sk-test-very-secret-123"
    monkeypatch.setenv("MY_KEY", secret)
    with Stub(persistent={"item 1?": ("status", 500)}) as stub:
        r = CliRunner().invoke(main, eval_args(stub.url, data, tmp_path / "o",
                                               "--api-key-env", "MY_KEY", options=FAST + ",max_retries=1"))
        assert {q["headers"].get("Authorization") for q in stub.generation_requests()} == {f"Bearer {secret}"}
    assert r.exit_code == 1 and secret not in r.output
    for name in ("config.json", "summary.json", "samples.jsonl"):
        text = (tmp_path / "o" / name).read_text()
        assert secret not in text and "MY_KEY" in (tmp_path / "o" / "config.json").read_text()


def test_bad_server_flags_are_one_line(tmp_path, data):
    with Stub() as stub:
        for i, (extra, message) in enumerate(((["--backend-options", "timout=3"], "did you mean 'timeout'"),
                                              (["--lora", "nope"], "not served here"),
                                              (["--lora", "a=/x"], "served adapter's name"))):
            r = CliRunner().invoke(main, eval_args(stub.url, data, tmp_path / f"o{i}", *extra, options="timeout=2"))
            assert r.exit_code == 2 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
        assert not (tmp_path / "o0").exists()  # refused before anything was written
    r = CliRunner().invoke(main, ["eval", "--base-url", "http://127.0.0.1:1/v1", "-o", str(tmp_path / "p")])
    assert r.exit_code == 2 and "--backend openai" in r.output
    r = CliRunner().invoke(main, ["eval", "--backend", "vllm", "--backend-options", "tensor_paralel_size=2",
                                  "-o", str(tmp_path / "q")])
    assert r.exit_code == 2 and "tensor_parallel_size" in r.output


@pytest.mark.parametrize("option, message", [
    ("tensor_parallel_size=two", "whole number >= 1"), ("tensor_parallel_size=0", "whole number >= 1"),
    ("data_parallel_size=1.5", "whole number >= 1"), ("gpu_memory_utilization=1.5", "fraction in (0, 1]"),
    ("gpu_memory_utilization=high", "a number > 0"), ("enforce_eager=maybe", "true or false"),
    ("max_model_len=-4", "whole number >= 1"), ("logprobs_mode=best", "one of raw_logprobs")])
def test_backend_option_values_are_checked_in_one_line(tmp_path, option, message):
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["eval", "--backend", "vllm", "--backend-options", option, "-o", str(out)])
    assert r.exit_code == 2 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert option.split("=")[0] in r.output and not out.exists()
    r = CliRunner().invoke(main, ["train", "--backend", "vllm", "--backend-options", option,
                                  "--output", str(tmp_path / "t")])
    assert r.exit_code == 2 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_good_backend_option_values_pass():
    from reasonkit.engine import check_option_values

    check_option_values({"tensor_parallel_size": 2, "gpu_memory_utilization": 0.5, "enforce_eager": True,
                         "max_model_len": None, "seed": 0, "timeout": 2.5, "logprobs_mode": "processed_logprobs"})


def test_without_model_the_records_name_the_served_model(tmp_path, data):
    with Stub() as stub:
        args = eval_args(stub.url, data, tmp_path / "o")
        i = args.index("--model")
        r = CliRunner().invoke(main, args[:i] + args[i + 2:])
        assert r.exit_code == 0, r.output
    rows = rows_of(tmp_path / "o")
    assert {r["model"] for r in rows} == {"stub"} and {r["served_model"] for r in rows} == {"stub"}
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["model"] == "stub" and summary["config"]["model"] == "stub"


def test_generate_against_the_server(tmp_path):
    with Stub() as stub:
        r = CliRunner().invoke(main, ["generate", "--backend", "openai", "--base-url", stub.url, "--model", "stub",
                                      "--chat-template-kwargs", "enable_thinking=false", "What is 41 + 1?"])
        body = stub.generation_requests()[0]["body"]
    assert r.exit_code == 0, r.output
    assert "<answer>1</answer>" in r.output and body["chat_template_kwargs"] == {"enable_thinking": False}


def test_raw_uses_the_completions_endpoint(tmp_path, data):
    with Stub() as stub:
        r = CliRunner().invoke(main, eval_args(stub.url, data, tmp_path / "o", "--raw"))
        assert r.exit_code == 0, r.output
        assert {q["path"] for q in stub.generation_requests()} == {"/v1/completions"}


def test_kill_mid_run_then_rerun_gives_every_item_once(tmp_path):
    data = tmp_path / "many.jsonl"
    data.write_text("".join(json.dumps({"question": f"item {i}?", "answer": str(i)}) + "\n" for i in range(40)))
    out = tmp_path / "o"
    with Stub(persistent={"item": ("hang", 0.05)}) as stub:  # slow answers so the kill lands mid-run
        args = [sys.executable, "-m", "reasonkit"] + eval_args(stub.url, data, out, "--chunk-size", "4",
                                                               "--concurrency", "2")[0:]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if (out / "samples.jsonl").exists() and len((out / "samples.jsonl").read_text().splitlines()) >= 8:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        before = len(rows_of(out))
        assert 8 <= before < 40
        r = CliRunner().invoke(main, eval_args(stub.url, data, out, "--chunk-size", "4"))
        assert r.exit_code == 0, r.output
    rows = rows_of(out)
    assert sorted(int(r["reference"]["answer"]) for r in rows) == list(range(40))
    assert all(r["gsm8k.correct"] is True for r in rows)
