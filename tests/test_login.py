"""The page behind an OpenID Connect login (Streamlit's st.login), against oidc-provider-mock on loopback: a desk
member signs in and asks, sees only their own chats; someone outside RAG_ALLOWED_USERS is turned away."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from oidc_provider_mock import User, run_server_in_thread

from .conftest import TEST_LLM_PORT
from .pagetools import ARTIFACTS, free_port, serve_page

USERS = [
    User(sub="alice", claims={"email": "alice@desk.org", "name": "Alice"}),
    User(sub="bob", claims={"email": "bob@desk.org", "name": "Bob"}),
    User(sub="mallory", claims={"email": "mallory@elsewhere.org", "name": "Mallory"}),
]


@pytest.fixture
def login_page(real_index: Path, tmp_path: Path) -> Iterator[str]:
    """The page with login on: its secrets name the mock provider; only @desk.org addresses are let in."""
    with run_server_in_thread(port=free_port(), user_claims=USERS) as provider:
        port = free_port()
        secrets_file = tmp_path / "secrets.toml"
        secrets_file.write_text(
            "[auth]\n"
            f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_hex(16)}"\n'
            'client_id = "news-desk"\n'
            f'client_secret = "{secrets.token_hex(16)}"\n'
            f'server_metadata_url = "http://localhost:{provider.server_port}/.well-known/openid-configuration"\n'
        )
        env = {
            "RAG_INDEX_DIR": str(real_index),
            "RAG_STATE_DIR": str(tmp_path / "state"),
            "RAG_LLM_PORT": str(TEST_LLM_PORT),
            "RAG_ALLOWED_USERS": "@desk.org, editor@freelance.net",
        }
        with serve_page(env, ("--secrets.files", str(secrets_file)), port=port) as url:
            yield url


def _sign_in(browser, url: str, who: str):  # type: ignore[no-untyped-def]
    """A fresh browser (no cookies): open the page, sign in at the provider as `who`, back on the page."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.get_by_role("button", name="Sign in").click(timeout=120_000)
    page.get_by_role("button", name=who, exact=True).click(timeout=60_000)  # the provider's form
    page.wait_for_url(f"{url}/**", timeout=60_000)
    return context, page


def test_members_sign_in_and_keep_their_own_chats_others_are_turned_away(browser, login_page: str) -> None:  # type: ignore[no-untyped-def]
    anonymous = browser.new_page()
    anonymous.goto(login_page)
    anonymous.get_by_role("button", name="Sign in").wait_for(timeout=120_000)
    assert anonymous.get_by_placeholder("Ask about the articles…").count() == 0  # nothing of the archive shows
    anonymous.close()

    alice, page = _sign_in(browser, login_page, "alice")
    box = page.get_by_placeholder("Ask about the articles…")
    box.wait_for(timeout=120_000)
    assert page.get_by_text("Signed in as alice@desk.org").is_visible()
    box.fill("ماذا قالت ماو نينغ عن الاستخدام المزدوج؟")
    box.press("Enter")
    page.locator("[data-testid='stChatMessage']").nth(1).get_by_text("Answered by").wait_for(timeout=300_000)
    sidebar = page.locator("[data-testid='stSidebar']")
    assert sidebar.get_by_role("button", name="ماذا قالت ماو نينغ").count() == 1
    page.screenshot(path=str(ARTIFACTS / "login-signed-in.png"))
    alice.close()

    bob, page = _sign_in(browser, login_page, "bob")
    page.get_by_placeholder("Ask about the articles…").wait_for(timeout=120_000)
    assert page.locator("[data-testid='stSidebar']").get_by_role("button", name="ماذا قالت ماو نينغ").count() == 0
    bob.close()

    mallory, page = _sign_in(browser, login_page, "mallory")
    page.get_by_text("mallory@elsewhere.org may not use this page").wait_for(timeout=120_000)
    assert page.get_by_placeholder("Ask about the articles…").count() == 0
    page.screenshot(path=str(ARTIFACTS / "login-refused.png"))
    mallory.close()
