"""``reasonkit view``: the data it embeds (joined items, disagreement, hack classes), a self-contained
page, and the page itself in headless Chromium (summary, curves, pagination, filters, search)."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from reasonkit.cli import main
from reasonkit.runs import load_run
from reasonkit.view import PAGE, build_data

from run_fakes import GOLD, eval_run, hacker, honest, train_run


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_data_joins_items_over_runs_and_marks_disagreement(tmp_path):
    a, b = eval_run(tmp_path / "a", honest), eval_run(tmp_path / "b", hacker)
    data = build_data([load_run(a), load_run(b), load_run(train_run(tmp_path / "t"))])
    assert [c["label"] for c in data["cols"]] == ["a · base", "b · base"]
    assert [it["id"] for it in data["items"]] == ["0", "1", "2", "3", "4", "5"]
    # golds 18, 3, 70000, 540, 20, 64: honest is wrong on 70000 and 540, hacker on 3 (a hedge)
    assert [it["d"] for it in data["items"]] == [0, 1, 1, 1, 0, 0]
    turn = data["classes"].index("invented_turn")
    assert [turn in it["c"][1][0]["h"] for it in data["items"]] == [True, False, False, True, False, False]
    gsm8k = data["verifiers"].index("gsm8k")
    assert data["items"][1]["c"][0][0]["v"][gsm8k] == [1, "correct"]
    train = data["runs"][2]
    assert train["curves"]["steps"] == [1, 2, 3, 4, 5, 6]
    assert set(train["curves"]["series"]) >= {"reward", "heldout/gsm8k", "audit/length_collapse"}
    assert train["rows"][0]["acc"]["heldout/gsm8k"] == 0.3
    assert data["runs"][0]["rows"][0]["acc"]["gsm8k"] == pytest.approx(4 / 6)


def test_page_is_self_contained_and_text_cannot_escape_the_data_script(tmp_path):
    run_dir = eval_run(tmp_path / "x", lambda p, a, s: "</script><script>window.pwned=1</script><answer>1</answer>",
                       limit=2)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["view", str(run_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched
    assert "<link" not in html and html.count("<script") == 2
    blob = html.split('id="rk-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(blob)["items"][0]["c"][0][0]["t"].startswith("</script>")


def test_view_refuses_an_output_in_a_missing_folder(tmp_path):
    result = CliRunner().invoke(main, ["view", str(train_run(tmp_path / "t")), "-o", str(tmp_path / "no" / "r.html")])
    assert result.exit_code == 2 and "does not exist" in result.output


def visible(browser, css="#items tbody tr"):
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, css)


def test_viewer_in_a_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    n = 60
    a, b = eval_run(tmp_path / "a", honest, limit=n), eval_run(tmp_path / "b", hacker, limit=n)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["view", str(a), str(b), str(train_run(tmp_path / "t")), "-o", str(out)])
    assert result.exit_code == 0, result.output
    golds = list(GOLD.values())[:n]
    disagree = sum((g < 100) != (g % 2 == 0) for g in golds)       # honest right below 100, hacker on even
    turns = sum(g % 2 == 0 and g % 3 == 0 for g in golds)
    assert 0 < disagree < n and 0 < turns < n

    browser.get_log("browser")  # the session's browser may hold messages of pages other tests opened
    browser.get(out.as_uri())
    assert [r.text.split()[0] for r in visible(browser, "#summary tbody tr")] == ["a", "b", "t"]
    assert len(visible(browser, "#curves svg")) == 2 and len(visible(browser, "#curves polyline")) >= 4
    assert len(visible(browser)) == PAGE
    assert browser.find_element(By.ID, "count").text == f"{n} of {n} items"
    browser.find_element(By.ID, "next").click()
    assert len(visible(browser)) == n - PAGE
    first_cells = visible(browser)[0].find_elements(By.TAG_NAME, "td")
    assert len(first_cells) == 3 and "gsm8k" in first_cells[1].text

    browser.find_element(By.ID, "f-disagree").click()
    assert browser.find_element(By.ID, "count").text == f"{disagree} of {n} items"
    assert len(visible(browser)) == min(disagree, PAGE)
    assert all("disagree" in r.get_attribute("class") for r in visible(browser))
    browser.find_element(By.ID, "f-disagree").click()

    Select(browser.find_element(By.ID, "f-hack")).select_by_visible_text("invented_turn")
    assert len(visible(browser)) == turns
    assert all("Human:" in r.text for r in visible(browser))
    browser.save_screenshot(str(tmp_path / "viewer.png"))
    assert (tmp_path / "viewer.png").stat().st_size > 10_000
    Select(browser.find_element(By.ID, "f-hack")).select_by_index(0)

    Select(browser.find_element(By.ID, "f-reason")).select_by_visible_text("gsm8k: not_equal")
    wrong = sum(g >= 100 for g in golds)   # honest off by one (a hedge of hacker's is "ambiguous")
    assert browser.find_element(By.ID, "count").text == f"{wrong} of {n} items"
    Select(browser.find_element(By.ID, "f-reason")).select_by_index(0)

    box = browser.find_element(By.ID, "f-search")
    box.send_keys("Janet")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "count").text.startswith("1 of"))
    assert "Janet" in visible(browser)[0].text
    assert browser.get_log("browser") == []
