"""The console (/ui) in a real headless browser: Debian's chromium and chromedriver, driven by Selenium, over
the real gateway and supervisor with fake engines (the page is what is tested). With keys: the page asks
for the key once; it sees the model ready, chats in the playground and sees the streamed text, stops and
loads the model from the page. Screenshots are kept in build/screenshots/."""
from __future__ import annotations

from tests.fakes.harness import gateway
from tests.fakes.management import make_manager, models_folder

KEY = "sk-console-1"


def test_console_shows_models_streams_chat_and_stops_and_loads(browser, screenshots, tmp_path, monkeypatch):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    monkeypatch.setenv("CONSOLE_ADMIN", KEY)  # one key for serving and management, as a single operator has
    shots = screenshots
    wait = WebDriverWait(browser, 30)

    def text(selector: str) -> str:  # the table is redrawn every 2 s: an element may go stale as it is read
        try:
            found = browser.find_elements(By.CSS_SELECTOR, selector)
            return found[0].text if found else ""
        except StaleElementReferenceException:
            return ""

    def state_of(model: str) -> str:
        return text(f'tr[data-model="{model}"] td.state')

    def click(selector: str) -> None:
        def clicked(driver) -> bool:
            try:
                driver.find_element(By.CSS_SELECTOR, selector).click()
                return True
            except (StaleElementReferenceException, NoSuchElementException):
                return False
        wait.until(clicked)

    with gateway(tmp_path, ["--tokens", "6", "--delay", "0.05"], keys=(KEY,),
                 extra="gateway: {admin_key_env: CONSOLE_ADMIN}\n",
                 manager=make_manager(tmp_path, models_folder(tmp_path))) as gw:
        browser.get(gw.url + "/ui")
        wait.until(lambda d: d.find_element(By.ID, "key-form").is_displayed())
        assert "sk-" not in browser.current_url
        browser.find_element(By.ID, "key-input").send_keys(KEY)
        browser.find_element(By.ID, "key-save").click()
        wait.until(lambda d: state_of("fake") == "ready")
        assert "fake#0 pid" in text('tr[data-model="fake"] td.engines')
        browser.save_screenshot(str(shots / "1-models.png"))

        browser.find_element(By.CSS_SELECTOR, 'a[data-panel="playground"]').click()
        wait.until(lambda d: d.find_element(By.ID, "pg-input").is_displayed())
        browser.find_element(By.ID, "pg-input").send_keys("Hello there")
        browser.find_element(By.ID, "pg-send").click()
        wait.until(lambda d: "t5" in d.find_element(By.ID, "pg-output").text)
        answer = browser.find_element(By.CSS_SELECTOR, "#pg-output .assistant").text
        assert answer.split() == [f"t{i}" for i in range(6)]  # the streamed deltas, in order
        browser.save_screenshot(str(shots / "2-playground.png"))

        browser.find_element(By.CSS_SELECTOR, 'a[data-panel="activity"]').click()
        wait.until(lambda d: "chat" in d.find_element(By.ID, "activity-rows").text)
        row = browser.find_element(By.CSS_SELECTOR, "#activity-rows tr").text.split()
        assert "fake" in row and "openai" in row and "200" in row and "6" in row
        browser.save_screenshot(str(shots / "3-activity.png"))

        browser.find_element(By.CSS_SELECTOR, 'a[data-panel="models"]').click()
        click('button[data-action="stop"][data-model="fake"]')
        wait.until(lambda d: state_of("fake") == "stopped")
        assert gw.deployment.models[0].held
        browser.save_screenshot(str(shots / "4-stopped.png"))
        click('button[data-action="load"][data-model="fake"]')
        wait.until(lambda d: state_of("fake") == "ready")
        browser.save_screenshot(str(shots / "5-loaded-again.png"))

        browser.find_element(By.CSS_SELECTOR, 'a[data-panel="logs"]').click()
        wait.until(lambda d: "[fake#0] fake: listening" in d.find_element(By.ID, "log-lines").text)
        browser.save_screenshot(str(shots / "6-logs.png"))
    assert sorted(p.name for p in shots.iterdir()) == ["1-models.png", "2-playground.png", "3-activity.png",
                                                       "4-stopped.png", "5-loaded-again.png", "6-logs.png"]
    print(f"screenshots in {shots}")
