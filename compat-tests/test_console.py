"""The web console (``console.listener``) in a real browser: headless Chromium
from Debian driven by Selenium. The test produces keyed JSON records with a
header to two partitions (librdkafka), commits a group's offsets, loads each
page and checks that the numbers shown are what it produced and committed;
the group then consumes to the end and the lag shown (and its chart) follows;
the message browser shows the records as text, pretty JSON and hex, from the
URL and from its form. Screenshots of every page go to the test's tmp dir.
"""
import json
import shutil
import time
import uuid

import pytest

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import free_port

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser():
    # scripts/test.sh installs both; a missing one fails the test, loudly.
    assert shutil.which("chromedriver") and shutil.which("chromium"), \
        "install Debian's chromium and chromium-driver (scripts/test.sh does)"
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,860", "--disable-extensions", "--no-first-run"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(20)
    yield d
    d.quit()


def field(scope, name):
    return scope.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text


def row(driver, row_id):
    return driver.find_element(By.CSS_SELECTOR, f'tr[data-row="{row_id}"]')


def wait(driver, what, fn, timeout=10):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: fn(d), message=f"timed out waiting for {what}")


def show(driver, base, route, ready_css):
    """Navigates to a route and waits for its content; a hash change alone
    re-renders without reloading, so a fresh load is forced."""
    driver.get("about:blank")
    driver.get(base + "/" + route)
    wait(driver, ready_css, lambda d: d.find_elements(By.CSS_SELECTOR, ready_css))
    errors = driver.find_elements(By.CSS_SELECTOR, "p.error")
    assert not errors, errors[0].text


def test_console_pages_show_what_was_produced(broker_factory, browser, tmp_path):
    cport = free_port()
    b = broker_factory({"console.listener": f"127.0.0.1:{cport}",
                        "console.sample.interval.ms": "300"})
    base = f"http://127.0.0.1:{cport}"
    topic, group = f"console-{uuid.uuid4().hex[:6]}", f"console-g-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1,
                                  config={"retention.ms": "7200000"})])[topic].result(10)
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5})
    for i in range(20):
        p.produce(topic, key=f"k{i}", value=json.dumps({"n": i, "tags": ["x"]}),
                  headers=[("src", b"selenium")], partition=0)
    for i in range(10):
        p.produce(topic, key=f"q{i}", value=f"plain {i}", partition=1)
    assert p.flush(10) == 0
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 2)],
             asynchronous=False)
    cluster_id = admin.list_topics(timeout=10).cluster_id
    shots = tmp_path / "screenshots"
    shots.mkdir()

    # Overview: the cluster the client sees.
    show(browser, base, "#/", '[data-field="cluster_id"]')
    assert field(browser, "cluster_id") == cluster_id
    assert field(browser, "version").startswith("kastle ")
    assert field(browser, "broker_count") == "1"
    assert browser.find_elements(By.ID, "broker-configs")
    browser.save_screenshot(str(shots / "overview.png"))

    # Topics: partitions, end offsets and messages as produced.
    show(browser, base, "#/topics", f'tr[data-row="{topic}"]')
    r = row(browser, topic)
    assert field(r, "partition_count") == "2"
    assert field(r, "end") == "30"
    assert field(r, "messages") == "30"
    assert field(r, "start") == "0"
    browser.save_screenshot(str(shots / "topics.png"))

    # Topic detail: each partition, and its configs.
    show(browser, base, f"#/topics/{topic}", 'tr[data-row="1"]')
    assert field(row(browser, "0"), "high_watermark") == "20"
    assert field(row(browser, "1"), "high_watermark") == "10"
    assert field(row(browser, "1"), "messages") == "10"
    assert field(row(browser, "retention.ms"), "value") == "7200000"
    browser.save_screenshot(str(shots / "topic.png"))

    # Groups: the lag of the committed offsets (20-5 + 10-2).
    show(browser, base, "#/groups", f'tr[data-row="{group}"]')
    assert field(row(browser, group), "lag") == "23"
    show(browser, base, f"#/groups/{group}", f'tr[data-row="{topic}-1"]')
    assert field(browser, "lag") == "23"
    assert field(row(browser, f"{topic}-0"), "lag") == "15"
    assert field(row(browser, f"{topic}-1"), "committed_offset") == "2"
    # Let the sampler record the lag before the group moves on.
    wait(browser, "a lag sample", lambda d: (d.refresh() or True) and int(
        d.find_element(By.ID, "lag-chart").get_attribute("data-points")) >= 1)

    # The group consumes to the end: the lag shown, and its chart, follow.
    c.commit(offsets=[TopicPartition(topic, 0, 20), TopicPartition(topic, 1, 10)],
             asynchronous=False)
    c.close()
    show(browser, base, f"#/groups/{group}", f'tr[data-row="{topic}-1"]')
    assert field(browser, "lag") == "0"
    assert field(row(browser, f"{topic}-0"), "lag") == "0"
    before = int(browser.find_element(By.ID, "lag-chart").get_attribute("data-points"))
    wait(browser, "a newer lag sample", lambda d: (d.refresh() or True) and int(
        d.find_element(By.ID, "lag-chart").get_attribute("data-points")) > before)
    time.sleep(0.2)
    browser.save_screenshot(str(shots / "group.png"))

    # Messages: text, pretty JSON and hex.
    show(browser, base, f"#/messages?topic={topic}&partition=0&offset=3&limit=5", 'tr[data-row="3"]')
    offsets = [e.get_attribute("data-row") for e in browser.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert offsets == ["3", "4", "5", "6", "7"]
    assert field(row(browser, "3"), "key") == "k3"
    assert field(row(browser, "3"), "value") == '{"n": 3, "tags": ["x"]}'
    assert "src:" in field(row(browser, "3"), "headers")
    assert "selenium" in field(row(browser, "3"), "headers")
    show(browser, base, f"#/messages?topic={topic}&partition=0&offset=3&limit=1&format=json",
         'tr[data-row="3"]')
    assert field(row(browser, "3"), "value") == '{\n  "n": 3,\n  "tags": [\n    "x"\n  ]\n}'
    browser.save_screenshot(str(shots / "messages-json.png"))
    show(browser, base, f"#/messages?topic={topic}&partition=0&offset=3&limit=1&format=hex",
         'tr[data-row="3"]')
    assert field(row(browser, "3"), "key") == "6b 33"
    # The form: partition 1 from offset 8, as text.
    form = browser.find_element(By.ID, "browse")
    for name, value in (("partition", "1"), ("offset", "8"), ("limit", "10")):
        e = form.find_element(By.ID, f"m-{name}")
        e.clear()
        e.send_keys(value)
    Select(form.find_element(By.ID, "m-format")).select_by_value("text")
    form.find_element(By.ID, "m-go").click()
    wait(browser, "partition 1's records", lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-row="9"]'))
    assert [e.get_attribute("data-row") for e in browser.find_elements(By.CSS_SELECTOR, "tbody tr")] == ["8", "9"]
    assert field(row(browser, "9"), "value") == "plain 9"
    browser.save_screenshot(str(shots / "messages.png"))
    assert b.alive()
