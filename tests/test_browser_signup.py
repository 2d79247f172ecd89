"""A person signs up in a real browser (Debian's Chromium via Playwright) and lands on their org."""

import re
import uuid

import pytest

pytestmark = pytest.mark.browser


def test_signup_in_the_browser_lands_on_the_new_organization(live_server_url, chromium_browser):
    suffix = uuid.uuid4().hex[:6]
    page = chromium_browser.new_page()
    try:
        page.goto(f"{live_server_url}/")
        page.get_by_role("link", name="Create your organization").click()
        page.get_by_label("First name").fill("Browser")
        page.get_by_label("Last name").fill("Person")
        page.get_by_label("Work email").fill(f"browser-{suffix}@example.test")
        page.get_by_label("Password").fill("Quite-a-Strong-Passw0rd")
        page.get_by_label("Organization name").fill(f"Scribes {suffix}")
        page.get_by_role("button", name="Create organization").click()

        page.wait_for_url(re.compile(rf".*/o/scribes-{suffix}/$"))
        assert page.get_by_test_id("org-heading").inner_text() == f"Scribes {suffix}"
        assert page.get_by_test_id("org-role").inner_text() == "Owner"
        assert page.get_by_test_id("no-projects").is_visible()
        page.screenshot(path="/tmp/scriptorium-signup.png")
    finally:
        page.close()


def test_signup_with_a_taken_address_shows_the_error_in_the_form(live_server_url, chromium_browser):
    page = chromium_browser.new_page()
    try:
        page.goto(f"{live_server_url}/signup/")
        page.get_by_label("First name").fill("Late")
        page.get_by_label("Work email").fill(f"late-{uuid.uuid4().hex[:6]}@example.test")
        page.get_by_label("Password").fill("Quite-a-Strong-Passw0rd")
        page.get_by_label("Organization name").fill("Whatever")
        page.get_by_label("Organization address (optional)").fill("org-a")
        page.get_by_role("button", name="Create organization").click()
        assert page.get_by_text("already taken").is_visible()
        assert "/signup/" in page.url
    finally:
        page.close()
