"""The review page end to end in a real browser: Debian's Chromium, driven by Playwright.

Keys are on, as in any shared deployment: the reviewer signs in with a reviewer key through the
page's form, and the session cookie does the rest. Screenshots are kept under
``.test-artifacts/browser/`` (git-ignored; ``JURY_TEST_ARTIFACTS`` moves it) for a person to
look at; the tests check what must be on the first screen at 1280x800 themselves.

The app runs under a real uvicorn server on a free loopback port, in a thread of the test; the
browser is ``/usr/bin/chromium`` (Playwright never downloads one here), headless, with a fresh
profile and its background networking off: this machine's network is closed, and a browser
that calls home at every start only slows the test down.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn
from playwright.async_api import Page, ViewportSize, async_playwright, expect

from app.http.app import create_app
from app.security.models import Role
from tests.builders import eventually
from tests.security.keys import add_keys, bearer
from tests.services import ServiceError, ensure_chromium

from .harness import SMALL_PLAN, panel_config, propose, seed, serve, settings_for

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_TIMEOUT_MS = 10_000
START_TIMEOUT_S = 15
FIRST_SCREEN: ViewportSize = {"width": 1280, "height": 800}
REPO = Path(__file__).resolve().parents[2]
KEYS = {"rita": Role.REVIEWER, "sam": Role.REVIEWER, "ada": Role.ADMIN}


@pytest.fixture
def chromium() -> Path:
    """Return Debian's Chromium, installed if missing, or fail saying how to skip these tests."""
    try:
        return ensure_chromium(CHROMIUM)
    except ServiceError as exc:
        pytest.fail(f'{exc}; install it or deselect these tests with -m "not browser"')


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    """Return this test's screenshot folder, kept after the run."""
    root = Path(os.environ.get("JURY_TEST_ARTIFACTS") or REPO / ".test-artifacts")
    folder: Path = root / "browser" / str(request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@asynccontextmanager
async def live_server(database_url: str) -> AsyncIterator[str]:
    """Serve the app with uvicorn on a free loopback port and yield its base URL."""
    app = create_app(settings_for(database_url), config=panel_config())
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))  # the port is ours from here on: no race for a free one
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:

        async def started() -> bool:
            assert thread.is_alive(), "the server stopped while starting"
            return bool(server.started)

        await eventually(started, what="the server started", timeout_s=START_TIMEOUT_S)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await anyio.to_thread.run_sync(thread.join, START_TIMEOUT_S)
        listener.close()


async def _sign_in(page: Page, base: str, key: str, name: str) -> None:
    """Open the review page without a session, get sent to the form, sign in with ``key``."""
    await page.goto(f"{base}/review")
    await page.wait_for_url(re.compile(r"/review/signin$"))
    # The stylesheet loads without a key: the header has its colours before anyone signed in.
    await expect(page.locator("header")).to_have_css("background-color", "rgb(29, 43, 58)")
    await page.get_by_label("Reviewer key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/review$"))
    await expect(page.locator("header")).to_contain_text(f"Signed in as {name}")


async def _in_first_screen(page: Page, selector: str) -> None:
    """Assert the element is entirely within the first screen, without scrolling."""
    await page.evaluate("window.scrollTo(0, 0)")
    box = await page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not shown"
    bottom = box["y"] + box["height"]
    assert box["y"] >= 0, f"{selector} starts above the page"
    assert bottom <= FIRST_SCREEN["height"], f"{selector} ends at {bottom:.0f}px"


async def _decide(page: Page, *, reviewer: str, comment: str, button: str) -> None:
    await page.get_by_label("Reviewer", exact=True).fill(reviewer)
    await page.get_by_label("Comment").fill(comment)
    await page.get_by_role("button", name=button).click()


async def _approve_the_weights_proposal(page: Page, base: str, flips: int, shots: Path) -> None:
    """Read the pending proposal, open a flipped verdict's transcript, come back, approve."""
    await page.goto(f"{base}/review")
    pending = page.locator("#pending tbody tr")
    await expect(pending).to_have_count(1)
    await expect(pending).to_contain_text("weights")
    await pending.get_by_role("link", name="Review").click()

    await expect(page.locator("h1")).to_contain_text("Proposal #1: weights proposed")
    await page.screenshot(path=shots / "proposal-first-screen.png")
    # What a reviewer must find without scrolling: the decision summary, the replay, the form.
    for needed in ("#summary .headline", "#changes h2", "#replay", "form.decision"):
        await _in_first_screen(page, needed)
    await expect(page.locator("#summary .headline")).to_contain_text(f"{flips} decisions flip")
    await expect(page.locator("table.changes tbody tr").first).to_contain_text("alpha")
    await expect(page.locator("#charts svg[role=img]")).to_have_count(2)
    await expect(page.locator("#flips h2")).to_have_text(f"Flipped verdicts ({flips})")
    await page.locator("#flips tbody a").first.click()

    await expect(page.locator("h1")).to_contain_text("Verdict")
    await expect(page.get_by_text("Go ahead with this deploy change?").first).to_be_visible()
    await expect(page.get_by_role("heading", name="Positions, round by round")).to_be_visible()
    await expect(page.get_by_role("heading", name="Round 2")).to_be_visible()
    await page.screenshot(path=shots / "transcript.png", full_page=True)
    await page.go_back()

    await expect(page.locator("h1")).to_contain_text("Proposal #1")
    await page.screenshot(path=shots / "proposal.png", full_page=True)
    await _decide(page, reviewer="anyone", comment="Replay is better: approve.", button="Approve")
    await page.wait_for_url(re.compile(r"/review\?decided=1$"))
    # The signed-in key's name is the reviewer of record, whatever the form said.
    await expect(page.get_by_role("status")).to_contain_text(
        "Proposal #1 is approved by rita: version 1 is now active."
    )
    await expect(page.locator("#weights")).to_contain_text("In force: version 1")
    await expect(page.locator("#accuracy svg[role=img]")).to_have_count(1)
    active = page.locator("#weights tbody tr", has_text="active")
    await expect(active).to_contain_text("version 1")
    approval = page.locator("#audit tbody tr", has_text="proposal.approved")
    await expect(approval).to_contain_text("rita")
    await expect(approval).to_contain_text("Replay is better: approve.")
    await page.screenshot(path=shots / "home.png", full_page=True)


async def _reject_the_calibration_proposal(page: Page, base: str, shots: Path) -> None:
    await page.goto(f"{base}/review")
    pending = page.locator("#pending tbody tr")
    await expect(pending).to_have_count(1)
    await expect(pending).to_contain_text("calibration")
    await pending.get_by_role("link", name="Review").click()

    await expect(page.locator("h1")).to_contain_text("Proposal #2: calibration proposed")
    await page.screenshot(path=shots / "calibration-first-screen.png")
    for needed in ("#summary .headline", "#replay", "form.decision"):
        await _in_first_screen(page, needed)
    await expect(page.locator("#charts svg[role=img]")).to_have_count(1)
    await expect(page.locator("#charts")).to_contain_text("Reliability before and after")
    await page.screenshot(path=shots / "calibration.png", full_page=True)
    await _decide(page, reviewer="anyone", comment="One judge only: not yet.", button="Reject")
    await page.wait_for_url(re.compile(r"/review\?decided=2$"))
    await expect(page.get_by_role("status")).to_contain_text("Proposal #2 is rejected by rita.")
    await expect(page.locator("#pending")).to_contain_text("No proposal awaits review.")
    await expect(page.locator("#decided tbody tr", has_text="#2")).to_contain_text("rejected")
    await expect(page.locator("#weights")).to_contain_text("In force: version 1")
    rejection = page.locator("#audit tbody tr", has_text="proposal.rejected")
    await expect(rejection).to_contain_text("rita")
    await expect(rejection).to_contain_text("One judge only: not yet.")


async def _seed_with_keys(database_url: str) -> tuple[int, dict[str, str]]:
    """Record the small plan and a weights proposal in local mode, then turn keys on."""
    async with serve(database_url) as served:
        await seed(served, SMALL_PLAN)
        proposal = await propose(served.client, created_by="ops-bot")
    flips = len(proposal["replay"]["flipped"])
    assert flips > 0
    return flips, await add_keys(database_url, KEYS)


@asynccontextmanager
async def chromium_page(chromium: Path, profile: Path) -> AsyncIterator[Page]:
    """Yield a page of a fresh headless Chromium with a 1280x800 window."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=FIRST_SCREEN,
        )
        try:
            browser.set_default_timeout(STEP_TIMEOUT_MS)
            yield await browser.new_page()
        finally:
            await browser.close()


async def test_a_reviewer_signs_in_approves_rejects_and_signs_out(
    sqlite_database: str, chromium: Path, tmp_path: Path, shots: Path
) -> None:
    flips, keys = await _seed_with_keys(sqlite_database)
    async with (
        live_server(sqlite_database) as base,
        httpx.AsyncClient(base_url=base, trust_env=False, headers=bearer(keys["ada"])) as api,
        chromium_page(chromium, tmp_path / "profile") as page,
    ):
        await _sign_in(page, base, keys["rita"], "rita")
        await page.screenshot(path=shots / "signed-in.png")
        await _approve_the_weights_proposal(page, base, flips, shots)
        created = await api.post(
            "/trust/proposals", json={"kind": "calibration", "min_evidence": 10}
        )
        assert created.status_code == 201, created.text
        await _reject_the_calibration_proposal(page, base, shots)
        # Back to the neutral weights, as before the first approval.
        await page.get_by_label("Restore").select_option("0")
        await page.get_by_label("Why").fill("Back to neutral: one week is not enough.")
        await page.get_by_role("button", name="Restore").click()
        await page.wait_for_url(re.compile(r"/review\?restored=0$"))
        await expect(page.get_by_role("status")).to_contain_text(
            "The neutral weights are active again, restored by rita."
        )
        assert (await api.get("/trust/weights")).json()["version"] is None
        cookies = await page.context.cookies()
        [session] = [c for c in cookies if c["name"] == "jury_review"]
        assert (session["httpOnly"], session["sameSite"], session["path"]) == (
            True,
            "Strict",
            "/review",
        )
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(re.compile(r"/review/signin$"))
        await page.goto(f"{base}/review")
        await page.wait_for_url(re.compile(r"/review/signin$"))
    for shot in ("signed-in", "proposal-first-screen", "proposal", "transcript", "home"):
        assert (shots / f"{shot}.png").read_bytes().startswith(b"\x89PNG")


ATTACK = """<!doctype html><title>prize</title>
<form method="post" action="{action}">
  <input name="reviewer" value="mallory"><input name="comment" value="free weights">
  <input name="csrf" value="guessed">
  <button type="submit">Claim your prize</button>
</form>"""


async def test_a_cross_origin_form_is_refused_in_the_browser(
    sqlite_database: str, chromium: Path, tmp_path: Path, shots: Path
) -> None:
    _, keys = await _seed_with_keys(sqlite_database)
    async with (
        live_server(sqlite_database) as base,
        httpx.AsyncClient(base_url=base, trust_env=False, headers=bearer(keys["ada"])) as api,
        chromium_page(chromium, tmp_path / "profile") as page,
    ):
        await _sign_in(page, base, keys["rita"], "rita")
        # Another site (another port: same site, so even SameSite=Strict sends the cookie),
        # served by the browser itself, posting to the approve form.
        evil = base.rsplit(":", 1)[0] + ":9"
        action = f"{base}/review/proposals/1/approve"
        await page.route(
            f"{evil}/**",
            lambda route: route.fulfill(
                content_type="text/html", body=ATTACK.format(action=action)
            ),
        )
        await page.goto(f"{evil}/prize")
        await page.get_by_role("button", name="Claim your prize").click()
        await expect(page.get_by_role("alert")).to_contain_text("posted from another site")
        await page.screenshot(path=shots / "refused.png")
        stored = (await api.get("/trust/proposals/1")).json()
        assert (stored["status"], stored["decided_by"]) == ("proposed", None)
