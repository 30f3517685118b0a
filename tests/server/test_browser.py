"""The web chat page in a real headless browser: Debian's chromium driven by selenium
through Debian's chromedriver (set explicitly, so Selenium Manager never runs or
downloads anything). Load /, attach an image, send, see streamed text appear."""
import time

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from conftest import MEDIA, Server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def srv(package):
    s = Server(package, "--parallel", 2, "--ctx-per-slot", 1024)
    yield s
    assert s.stop() == 0, "\n".join(s.log)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_chat_page_streams_a_reply_to_an_image(srv, browser):
    browser.get(srv.url + "/")
    assert browser.title == "q3vl chat"
    browser.find_element(By.ID, "max-tokens").clear()
    browser.find_element(By.ID, "max-tokens").send_keys("24")
    browser.find_element(By.ID, "temperature").clear()
    browser.find_element(By.ID, "temperature").send_keys("0")
    browser.find_element(By.ID, "image").send_keys(str(MEDIA / "small_120x64.png"))
    browser.find_element(By.ID, "input").send_keys("What is in the picture?")
    browser.find_element(By.ID, "send").click()
    deadline = time.time() + 60
    reply = ""
    while time.time() < deadline:
        replies = browser.find_elements(By.CSS_SELECTOR, ".msg.assistant .text")
        stats = browser.find_element(By.ID, "stats").text
        reply = replies[-1].text if replies else ""
        if reply and "tokens/s" in stats and browser.find_element(By.ID, "send").is_enabled():
            break
        time.sleep(0.1)
    assert reply, browser.find_element(By.ID, "messages").text
    assert "tokens/s" in browser.find_element(By.ID, "stats").text
    # The image went out as a data URL and shows in the user's bubble.
    img = browser.find_element(By.CSS_SELECTOR, ".msg.user img")
    assert img.get_attribute("src").startswith("data:image/png;base64,")
    # The server saw one streamed request with image tokens in its prompt.
    deadline = time.time() + 5  # the line is written just after the stream's last bytes
    while not [l for l in srv.log if "POST /v1/chat/completions 200" in l] and time.time() < deadline:
        time.sleep(0.02)
    line = [l for l in srv.log if "POST /v1/chat/completions 200" in l][-1]
    assert " stream" in line and int(line.split("prompt=")[1].split()[0]) > 40
