"""The evaluation runner: dataset conversion, the real service path, resume, failures."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from app.core.config import JuryConfig
from app.core.errors import InvalidRequestError
from eval.datasets import load_items
from eval.harness import RESULTS_FILE, RunPlan, load_results, run_eval, select_items
from tests.builders import RecordingHub, open_bench, scripted_config, step

pytestmark = pytest.mark.anyio

QUESTIONS = [
    {
        "id": f"q-{n}",
        "question": f"Question {n}?",
        "context": None,
        "options": ["right answer", "wrong answer"],
        "answer": "A",
        "category": "Facts" if n % 2 else "Law",
        "source": "test",
        "meta": {"gold_rationale": "SECRET-RATIONALE"},
    }
    for n in range(1, 7)
]
PAIR = {
    "id": "pair-1",
    "instruction": "Say hello.",
    "response_a": "Hello!",
    "response_b": "Goodbye.",
    "answer": "a",
    "category": "Natural",
    "source": "test",
}


def write_jsonl(path: Path, records: Sequence[Mapping[str, Any]]) -> Path:
    """Write records as JSON lines and return the path."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def letter_config() -> JuryConfig:
    """Jurors answering A (two of them) and B (one); the judge answers A."""
    return scripted_config(
        jurors={"a1": [step("A")], "a2": [step("A")], "b1": [step("B")]},
        judge=[step("A", confidence=0.75)],
        default_options=["A", "B"],
        max_rounds=1,
    )


def test_question_records_become_lettered_options_without_meta(tmp_path: Path) -> None:
    [item] = load_items(write_jsonl(tmp_path / "q.jsonl", QUESTIONS[:1]))
    assert item.options == ["A", "B"]
    assert item.gold == "A"
    assert "(A) right answer" in item.request.question
    assert "(B) wrong answer" in item.request.question
    assert "SECRET-RATIONALE" not in item.request.model_dump_json()


def test_pairwise_records_are_judged_in_both_orders(tmp_path: Path) -> None:
    ab, ba = load_items(write_jsonl(tmp_path / "p.jsonl", [PAIR]))
    assert (ab.order, ab.gold, ba.order, ba.gold) == ("ab", "A", "ba", "B")
    assert ab.request.context is not None
    assert ba.request.context is not None
    assert ab.request.context.index("Hello!") < ab.request.context.index("Goodbye.")
    assert ba.request.context.index("Goodbye.") < ba.request.context.index("Hello!")
    assert ab.pair_id == ba.pair_id == "pair-1"


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (dict(QUESTIONS[0], answer="C"), "answer: 'C' is not the letter of an option (A, B)"),
        (dict(QUESTIONS[0], answer="AB"), "answer: 'AB' is not the letter of an option (A, B)"),
        (dict(QUESTIONS[0], answer=""), "answer: '' is not the letter of an option (A, B)"),
        ({k: v for k, v in QUESTIONS[0].items() if k != "question"}, "question: Field required"),
        ({k: v for k, v in QUESTIONS[0].items() if k != "id"}, "id: Field required"),
        (dict(QUESTIONS[0], id=5), "id: Input should be a valid string"),
        (dict(QUESTIONS[0], options=["only"]), "options: List should have at least 2 items"),
        (dict(QUESTIONS[0], options=list("abcdefghijk")), "options: options must hold 2 to 10"),
        (dict(PAIR, answer="c"), "answer: Input should be 'a' or 'b'"),
        ([1, 2], "a record must be a JSON object"),
    ],
)
def test_a_bad_record_is_refused_naming_its_line_and_field(
    tmp_path: Path, line: Any, said: str
) -> None:
    dataset = write_jsonl(tmp_path / "d.jsonl", [QUESTIONS[1], line])

    with pytest.raises(InvalidRequestError) as refused:
        list(load_items(dataset))

    assert refused.value.detail.startswith(f"{dataset}:2: ")
    assert said in refused.value.detail
    assert refused.value.body()["field"] == "dataset"


def test_a_record_whose_id_an_earlier_line_has_is_refused(tmp_path: Path) -> None:
    dataset = write_jsonl(tmp_path / "d.jsonl", [QUESTIONS[0], QUESTIONS[1], QUESTIONS[0]])

    with pytest.raises(
        InvalidRequestError, match=r"d.jsonl:3: id 'q-1' is already the id of line 1"
    ):
        list(load_items(dataset))


def test_answers_are_read_in_either_case(tmp_path: Path) -> None:
    lower = dict(QUESTIONS[0], answer="b")
    upper_pair = dict(PAIR, answer="B")
    [question, ab, ba] = load_items(write_jsonl(tmp_path / "d.jsonl", [lower, upper_pair]))

    assert question.gold == "B"
    assert (ab.gold, ba.gold) == ("B", "A")


def test_limit_counts_records_and_keeps_pairs_together(tmp_path: Path) -> None:
    pairs = [dict(PAIR, id=f"pair-{n}") for n in range(5)]
    plan = RunPlan(dataset=write_jsonl(tmp_path / "p.jsonl", pairs), out=tmp_path, limit=2, seed=7)
    items = select_items(plan)
    assert len(items) == 4
    assert len({item.item_id for item in items}) == 2
    assert select_items(plan) == items  # the seed makes the choice reproducible


async def test_run_writes_report_and_resumes_without_redoing_items(
    tmp_path: Path, sqlite_database: str
) -> None:
    config = letter_config()
    dataset = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    out = tmp_path / "run"
    hub = RecordingHub(config)
    async with open_bench(sqlite_database, config, hub=hub) as bench:
        first = await run_eval(bench.service, RunPlan(dataset=dataset, out=out, limit=4))
        calls_after_first = len(hub.requests)
        # A kill mid-write leaves a truncated last line: that item must run again.
        lines = (out / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
        (out / RESULTS_FILE).write_text("\n".join(lines[:3]) + "\n" + lines[3][:20], "utf-8")
        resumed = await run_eval(bench.service, RunPlan(dataset=dataset, out=out, limit=6))

    assert first.n == 4
    assert first.accuracy.judge.value == 1.0
    assert calls_after_first == 4 * 4  # 3 jurors + judge per item, one round
    # 3 results survived the "kill": items 4, 5 and 6 ran on resume, nothing else.
    assert len(hub.requests) - calls_after_first == 3 * 4
    assert resumed.n == 6
    assert set(load_results(out)) == {f"q-{n}" for n in range(1, 7)}
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["accuracy"]["jurors"]["b1"]["round1"]["value"] == 0.0
    assert report["accuracy"]["round1_majority"]["value"] == 1.0
    assert set(report["by_category"]) == {"Facts", "Law"}
    assert (out / "report.md").exists()
    assert (out / "reliability.png").exists()


async def test_failed_items_stay_in_the_denominator(tmp_path: Path, sqlite_database: str) -> None:
    config = scripted_config(
        jurors={"a1": [step("A")], "x1": [step(failure="error")], "x2": [step(failure="auth")]},
        default_options=["A", "B"],
        quorum=2,
    )
    dataset = write_jsonl(tmp_path / "q.jsonl", QUESTIONS[:2])
    async with open_bench(sqlite_database, config) as bench:
        report = await run_eval(bench.service, RunPlan(dataset=dataset, out=tmp_path / "run"))
    results = load_results(tmp_path / "run")
    assert {r.status for r in results.values()} == {"no_quorum"}
    assert report.n == 2
    assert report.accuracy.judge.value == 0.0


def test_eval_run_records_outcomes_into_the_trust_record(
    tmp_path: Path, sqlite_database: str
) -> None:
    """`jury eval run --record-outcomes` feeds each gold answer to the trust record."""
    from typer.testing import CliRunner

    from app.cli.main import app

    dataset = write_jsonl(tmp_path / "q.jsonl", QUESTIONS[:3])
    config = tmp_path / "letters.yaml"
    config.write_text(
        json.dumps(letter_config().model_dump(mode="json")),
        encoding="utf-8",
    )
    env = {"JURY_DATABASE_URL": sqlite_database, "JURY_AUTO_MIGRATE": "false"}
    run = CliRunner().invoke(
        app,
        [
            "eval",
            "run",
            "--dataset",
            str(dataset),
            "--config",
            str(config),
            "--out",
            str(tmp_path / "run"),
            "--record-outcomes",
        ],
        env=env,
    )
    assert run.exit_code == 0, run.output
    stats = CliRunner().invoke(app, ["trust", "stats", "--json", "--config", str(config)], env=env)
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.output)["n_records"] == 3
