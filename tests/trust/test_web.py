"""The reviewer's web page through the ASGI client: pages, forms, errors and escaping."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from .harness import SMALL_PLAN, Served, propose, seed, serve

# Enough recorded verdicts for more than one page of flips.
LARGE_PLAN = {
    "deploy": {"approve": 33, "reject": 21, "defer": 6},
    "finance": {"approve": 6, "reject": 24, "defer": 30},
}

pytestmark = pytest.mark.anyio

SCRIPT = "<script>alert('x')</script>"


class Page(HTMLParser):
    """An HTML response read as a person sees it: its text (spaces collapsed) and its links."""

    def __init__(self, response: httpx.Response, status: int = 200) -> None:
        super().__init__()
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("text/html")
        self.html = response.text
        self.hrefs: list[str] = []
        self.inputs: dict[str, str] = {}
        self._text: list[str] = []
        self.feed(response.text)
        self.text = " ".join(" ".join(self._text).split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Collect a link's address and a form field's value."""
        named = dict(attrs)
        href = named.get("href")
        if tag == "a" and href is not None:
            self.hrefs.append(href)
        if tag == "input" and named.get("name"):
            self.inputs[str(named["name"])] = named.get("value") or ""

    def handle_data(self, data: str) -> None:
        """Collect text (entities arrive decoded)."""
        self._text.append(data)

    @staticmethod
    def text_of(html: str) -> str:
        """Return the text of an HTML fragment, spaces collapsed."""
        parts: list[str] = []

        class Text(HTMLParser):
            def handle_data(self, data: str) -> None:
                parts.append(data)

        Text().feed(html)
        return " ".join(" ".join(parts).split())

    def links(self, containing: str) -> list[str]:
        """Return the link addresses that contain ``containing``."""
        return [href for href in self.hrefs if containing in href]


async def _pending(served: Served, **body: Any) -> dict[str, Any]:
    await seed(served, SMALL_PLAN)
    return await propose(served.client, **body)


async def _csrf(client: httpx.AsyncClient, proposal_id: int) -> str:
    """Open a proposal's page as a browser would and return its form's CSRF token."""
    return Page(await client.get(f"/review/proposals/{proposal_id}")).inputs["csrf"]


def _form(csrf: str, reviewer: str = "rita", comment: str = "evidence checked") -> dict[str, str]:
    return {"reviewer": reviewer, "comment": comment, "csrf": csrf}


async def test_the_index_shows_pending_proposals_weights_and_audit(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        proposal = await _pending(served, created_by="ops-bot")
        page = Page(await served.client.get("/review"))
        assert "Pending proposals" in page.text
        assert page.links("/review/proposals/")[0].endswith(f"/review/proposals/{proposal['id']}")
        assert "No version approved yet: the neutral weights are in force." in page.text
        assert "proposal.created" in page.text
        assert "ops-bot" in page.text
        css = await served.client.get("/review/review.css")
        assert (css.status_code, css.headers["content-type"]) == (200, "text/css; charset=utf-8")


async def test_a_proposal_page_leads_with_the_decision_and_links_flips_to_transcripts(
    sqlite_database: str,
) -> None:
    async with serve(sqlite_database) as served:
        proposal = await _pending(served)
        page = Page(await served.client.get(f"/review/proposals/{proposal['id']}"))
        flipped = proposal["replay"]["flipped"]
        assert flipped, "the small plan must flip decisions"
        html = page.html
        # Top to bottom: the headline, what changes, the replay, the form; then the flips.
        order = ['class="headline"', 'id="changes"', 'id="replay"', 'form class="decision"']
        order += ['id="charts"', 'id="flips"', 'id="evidence"']
        assert [html.index(marker) for marker in order] == sorted(
            html.index(marker) for marker in order
        )
        replay = proposal["replay"]
        assert f"replayed on {replay['n']} verdicts with outcomes" in page.text
        assert f"{len(flipped)} decisions flip" in page.text
        # What changes: one row per (juror, category) cell, with its posterior accuracy.
        changes = html.split('id="changes"')[1].split('id="replay"')[0]
        cells = proposal["evidence"]["cells"]
        assert changes.count("<td>alpha</td>") == sum(c["juror"] == "alpha" for c in cells)
        alpha = next(c for c in cells if (c["juror"], c["category"]) == ("alpha", "deploy"))
        accuracy = alpha["accuracy"]
        assert f"{accuracy['mean']:.3f} [{accuracy['lower']:.2f}, " in page.text
        # The candidate-rule comparison of each category, in the decision section.
        assert proposal["selection"], "the small plan compares candidate rules"
        changes_text = Page.text_of(changes)
        for category, selection in proposal["selection"].items():
            chosen = selection["chosen"]
            assert f"Candidate rules, {category}: {chosen} chosen" in changes_text
            assert f"rule → {chosen}, verdict from {selection['verdict_source']}" in changes_text
            assert f"{chosen} (chosen)" in changes_text
        # Pictures, drawn on the server, each with a text alternative.
        assert html.count('<svg class="chart" role="img"') == 2
        assert "Juror accuracy by category" in page.text
        assert "Active and proposed weights" in page.text
        # Flips: question text, category, who was right, linked to the transcript.
        flips = html.split('id="flips"')[1]
        assert "Go ahead with this deploy change?" in flips
        assert "the proposed weights" in flips or "the active weights" in flips
        transcripts = page.links("/review/verdicts/")
        shown = min(len(flipped), 20)
        assert [href.rsplit("/", 1)[1] for href in transcripts] == flipped[:shown]
        transcript = Page(await served.client.get(transcripts[0]))
        assert "Go ahead with this deploy change?" in transcript.text
        assert "Round 1" in transcript.text
        assert "Round 2" in transcript.text
        assert "I say reject." in transcript.text
        assert "Outcome" in transcript.text
        assert "(dataset, recorded by dataset," in transcript.text


async def test_flipped_verdicts_come_a_page_at_a_time(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        await seed(served, LARGE_PLAN)
        proposal = await propose(served.client)
        flipped = proposal["replay"]["flipped"]
        assert len(flipped) > 20, "the plan must flip more than a page"
        url = f"/review/proposals/{proposal['id']}"
        first = Page(await served.client.get(url))
        assert [h.rsplit("/", 1)[1] for h in first.links("/review/verdicts/")] == flipped[:20]
        assert f"1\N{EN DASH}20 of {len(flipped)}" in first.text
        [following] = first.links("?flips=20")
        second = Page(await served.client.get(following.split("#")[0]))
        assert [h.rsplit("/", 1)[1] for h in second.links("/review/verdicts/")] == flipped[20:40]
        assert second.links("?flips=0")
        beyond = Page(await served.client.get(f"{url}?flips=100000"))
        assert "No flip on this page" in beyond.text
        refused = await served.client.get(f"{url}?flips=-1")
        assert refused.status_code == 422


async def test_a_calibration_proposal_shows_its_reliability_before_and_after(
    sqlite_database: str,
) -> None:
    async with serve(sqlite_database) as served:
        await seed(served, SMALL_PLAN)
        proposal = await propose(served.client, kind="calibration")
        stored = proposal["evidence"]["reliability"]
        n = proposal["replay"]["n"]
        for which in ("active", "proposed"):
            assert sum(b["n"] for b in stored[which]) == n
            assert len(stored[which]) == 10
        page = Page(await served.client.get(f"/review/proposals/{proposal['id']}"))
        assert "Reliability before and after" in page.text
        assert "calibration error (ECE)" in page.text
        charts = page.html.split('id="charts"')[1].split('id="flips"')[0]
        assert charts.count('<svg class="chart" role="img"') == 1
        # The text alternative lists every non-empty bin with its count.
        filled = [b for which in ("active", "proposed") for b in stored[which] if b["n"]]
        assert charts.count("<td>active</td>") + charts.count("<td>proposed</td>") == len(filled)


async def test_the_home_page_charts_accuracy_by_week_and_version(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        empty = Page(await served.client.get("/review"))
        assert "No verdict has a recorded outcome yet." in empty.text
        await seed(served, {"deploy": {"reject": 3, "approve": 1}})
        page = Page(await served.client.get("/review"))
        accuracy = page.html.split('id="accuracy"')[1].split('id="decided"')[0]
        assert accuracy.count('<svg class="chart" role="img"') == 1
        assert "Verdict accuracy by week" in accuracy
        # One week, neutral weights: the judge said reject, right on 3 of 4.
        assert "<td>neutral</td>" in accuracy
        assert "0.750 [0.30, 0.95] (3/4)" in Page.text_of(accuracy)


async def test_a_verdict_reads_like_a_deliberation(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        ids = await seed(served, {"deploy": {"reject": 1}})
        page = Page(await served.client.get(f"/review/verdicts/{ids['deploy'][0]}"))
        html = page.html
        sections = ["deliberation-summary", "positions", "shifts", "dissent", "judge"]
        sections += ["baselines", "transcript"]
        at = [html.index(f'id="{name}"') for name in sections]
        assert at == sorted(at), "the deliberation comes before the raw transcript"
        assert "The panel decided reject" in page.text
        # Side by side: one row per juror, one column per round.
        positions = html.split('id="positions"')[1].split('id="shifts"')[0]
        assert positions.count("<th>Round ") == 2
        assert positions.count('<th scope="row">') == 3
        # bravo moved from approve to reject in round 2, with the argument it gave.
        shifts = Page.text_of(html.split('id="shifts"')[1].split('id="dissent"')[0])
        assert "bravo , round 2: approve → reject right I say reject." in shifts
        dissent = Page.text_of(html.split('id="dissent"')[1].split('id="judge"')[0])
        assert "alpha held approve" in dissent
        assert "charlie held defer" in dissent
        baselines = Page.text_of(html.split('id="baselines"')[1].split('id="transcript"')[0])
        assert "Judge reject right" in baselines
        assert "Round-1 majority approve wrong" in baselines


async def test_approving_through_the_form_activates_a_version(database_url: str) -> None:
    async with serve(database_url) as served:
        client = served.client
        proposal = await _pending(served)
        url = f"/review/proposals/{proposal['id']}"
        csrf = await _csrf(client, proposal["id"])
        posted = await client.post(f"{url}/approve", data=_form(csrf))
        assert posted.status_code == 303
        assert posted.headers["location"].endswith(f"/review?decided={proposal['id']}")
        stored = (await client.get(f"/trust/proposals/{proposal['id']}")).json()
        decision = (stored["status"], stored["decided_by"], stored["version"])
        assert decision == ("approved", "rita", 1)
        assert (await client.get("/trust/weights")).json()["version"] == 1
        index = Page(await client.get(posted.headers["location"]))
        notice = f"Proposal #{proposal['id']} is approved by rita: version 1 is now active."
        assert notice in index.text
        assert "In force: version 1 — approved by rita" in index.text
        assert '<span class="badge active">active</span>' in index.html
        assert f"rita proposal.approved proposal:{proposal['id']} evidence checked" in index.text
        # A decided proposal shows its fate and no form.
        decided = Page(await client.get(url))
        assert "<form" not in decided.html
        assert "Comment evidence checked Made active version 1" in decided.text
        assert "Decided" in decided.text


async def test_rolling_back_to_the_neutral_weights_from_the_page(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        client = served.client
        proposal = await _pending(served)
        csrf = await _csrf(client, proposal["id"])
        approved = await client.post(
            f"/review/proposals/{proposal['id']}/approve", data=_form(csrf)
        )
        assert approved.status_code == 303
        index = Page(await client.get("/review"))
        assert "the neutral weights (before any approval)" in index.text
        form = {"version": "0", "reviewer": "sam", "comment": "back to neutral", "csrf": csrf}
        restored = await client.post("/review/weights/rollback", data=form)
        assert (restored.status_code, restored.headers["location"]) == (303, "/review?restored=0")
        assert (await client.get("/trust/weights")).json()["version"] is None
        after = Page(await client.get(restored.headers["location"]))
        assert "The neutral weights are active again, restored by sam." in after.text
        assert "sam weights.rolled_back weights:0 back to neutral" in after.text
        again = Page(await client.post("/review/weights/rollback", data=form), 409)
        assert "Not restored: weights version 0 is already active." in again.text
        missing = Page(
            await client.post("/review/weights/rollback", data={**form, "version": "9"}), 404
        )
        assert "Not restored: weights version 9 not found." in missing.text
        blank = Page(
            await client.post("/review/weights/rollback", data={**form, "comment": ""}), 422
        )
        assert "Not restored: comment:" in blank.text
        forged = await client.post("/review/weights/rollback", data={**form, "csrf": ""})
        assert forged.status_code == 403


async def test_rejecting_through_the_form_changes_no_weights(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        client = served.client
        proposal = await _pending(served)
        form = _form(await _csrf(client, proposal["id"]), "sam", "too few outcomes")
        posted = await client.post(f"/review/proposals/{proposal['id']}/reject", data=form)
        assert posted.status_code == 303
        stored = (await client.get(f"/trust/proposals/{proposal['id']}")).json()
        assert (stored["status"], stored["comment"]) == ("rejected", "too few outcomes")
        assert (await client.get("/trust/weights")).json()["version"] is None
        index = Page(await client.get(posted.headers["location"]))
        assert f"Proposal #{proposal['id']} is rejected by sam." in index.text
        assert "No proposal awaits review." in index.text
        assert f"sam proposal.rejected proposal:{proposal['id']} too few outcomes" in index.text


async def test_deciding_a_decided_proposal_is_a_clear_409(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        client = served.client
        proposal = await _pending(served)
        url = f"/review/proposals/{proposal['id']}"
        csrf = await _csrf(client, proposal["id"])
        assert (await client.post(f"{url}/reject", data=_form(csrf))).status_code == 303
        again = Page(await client.post(f"{url}/approve", data=_form(csrf, "sam", "late")), 409)
        error = f"Not approved: proposal {proposal['id']} is rejected, not proposed."
        assert error in again.text
        assert '<span class="badge rejected">rejected</span>' in again.html
        assert (await client.get("/trust/weights")).json()["version"] is None
        audit = (await client.get("/trust/audit")).json()["items"]
        assert [e["action"] for e in audit].count("proposal.approved") == 0


async def test_a_blank_comment_is_refused_and_the_form_kept(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        client = served.client
        proposal = await _pending(served)
        url = f"/review/proposals/{proposal['id']}/approve"
        csrf = await _csrf(client, proposal["id"])
        refused = Page(await client.post(url, data=_form(csrf, "rita", "   ")), 422)
        assert "Not approved: comment: String should have at least 1 character." in refused.text
        assert 'value="rita"' in refused.html
        missing = Page(await client.post(url, data={"comment": "fine", "csrf": csrf}), 422)
        assert "Not approved: reviewer: String should have at least 1 character." in missing.text
        stored = (await client.get(f"/trust/proposals/{proposal['id']}")).json()
        assert stored["status"] == "proposed"


async def test_unknown_proposals_and_verdicts_are_404_pages(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        client = served.client
        csrf = await _csrf(client, (await _pending(served))["id"])
        assert "proposal 999 not found" in Page(await client.get("/review/proposals/999"), 404).text
        posted = Page(await client.post("/review/proposals/999/approve", data=_form(csrf)), 404)
        assert "proposal 999 not found" in posted.text
        verdict = Page(await client.get("/review/verdicts/nope"), 404)
        assert "verdict 'nope' not found" in verdict.text


async def test_user_text_is_escaped_everywhere(sqlite_database: str) -> None:
    async with serve(sqlite_database) as served:
        client = served.client
        proposal = await _pending(served, reason=SCRIPT, created_by="<b>bot</b>")
        posted = await client.post(
            f"/review/proposals/{proposal['id']}/reject",
            data=_form(
                await _csrf(client, proposal["id"]), "<i>rita</i>", '<img src=x onerror="alert(1)">'
            ),
        )
        assert posted.status_code == 303
        asked = await client.post("/verdict", json={"question": f"Deploy {SCRIPT}?"})
        assert asked.status_code == 200, asked.text
        pages = [
            Page(await client.get("/review")),
            Page(await client.get(f"/review/proposals/{proposal['id']}")),
            Page(await client.get(f"/review/verdicts/{asked.json()['id']}")),
        ]
        for page in pages:
            for markup in ("<script", "<img", "<b>", "<i>"):
                assert markup not in page.html
        index, proposal_page, transcript = pages
        # Shown as text: what the person sees is exactly what was typed.
        assert '<img src=x onerror="alert(1)">' in index.text
        assert f"Reason {SCRIPT}" in proposal_page.text
        assert "<b>bot</b>" in proposal_page.text
        assert "<i>rita</i>" in proposal_page.text
        assert f"Question: Deploy {SCRIPT}?" in transcript.text
