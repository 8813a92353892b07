"""The web UI in a real headless Chromium (Debian's package) against a real uvicorn server
over the built 8k sample: search, filters, order, a paper with TeX, related papers,
keyword chips, ❤ interests kept across reloads and changing the order, the tool pages,
and a phone-width layout. Screenshots go to test-artifacts/screenshots/ (look at them).
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit
from urllib.request import urlopen

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
    pytest.skip("Debian chromium + chromium-driver not installed (apt-get install chromium chromium-driver)", allow_module_level=True)
pytest.importorskip("selenium", reason="selenium is a dev dependency")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
WAIT = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(built_settings, search_engine):
    """A real uvicorn on 127.0.0.1 serving the app, in a background thread."""
    import uvicorn

    from service.app import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(built_settings, engine=search_engine), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def _chrome(width: int, height: int, mobile: bool = False):
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={tempfile.mkdtemp(prefix='papers-chrome-')}",
                f"--window-size={width},{height}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    if mobile:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture(scope="module")
def browser():
    driver = _chrome(1280, 900)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def phone():
    driver = _chrome(375, 812, mobile=True)
    yield driver
    driver.quit()


def shot(driver, name: str, full: bool = True) -> Path:
    """Save a screenshot (full page height, up to 4000 px) as a test artifact."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    if full:
        width = driver.execute_script("return window.innerWidth")
        height = min(4000, driver.execute_script("return document.documentElement.scrollHeight"))
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
        driver.save_screenshot(str(path))
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        if width < 600:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": 812, "deviceScaleFactor": 1, "mobile": True})
    else:
        driver.save_screenshot(str(path))
    return path


def wait(driver, condition, timeout: int = WAIT):
    return WebDriverWait(driver, timeout).until(condition)


def hits(driver) -> list:
    return driver.find_elements(By.CSS_SELECTOR, "ol.hits > li.hit")


def hit_ids(driver) -> list[str]:
    return [h.get_attribute("data-id") for h in hits(driver)]


def csp_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]


def reset_interests(driver, server: str) -> None:
    driver.get(server + "/interests")
    driver.execute_script("window.localStorage.clear()")


# -- tests --------------------------------------------------------------------------------------


def test_search_filter_and_sort(browser, server):
    browser.get(server + "/")
    box = browser.find_element(By.ID, "home-q")
    assert box == browser.switch_to.active_element, "the home search box has focus"
    shot(browser, "desktop-home")
    box.send_keys("neural network", Keys.ENTER)
    wait(browser, lambda d: len(hits(d)) > 0)
    assert "/search?q=neural+network" in browser.current_url
    assert browser.find_elements(By.CSS_SELECTOR, ".hit mark"), "query words are highlighted"
    shot(browser, "desktop-search")

    # filter by a category expression through the form
    cat = browser.find_element(By.ID, "f-cat")
    if not cat.is_displayed():
        browser.find_element(By.CSS_SELECTOR, ".filters-box > summary").click()
    cat.clear()
    cat.send_keys("cs.LG-cs.CV", Keys.ENTER)
    wait(browser, lambda d: "cat=cs.LG-cs.CV" in d.current_url)
    query = parse_qs(urlsplit(browser.current_url).query, keep_blank_values=True)
    assert set(query) == {"q", "cat"}, "empty fields and defaults stay out of the shareable URL"
    assert hits(browser)
    for h in hits(browser):
        cats = [c.text for c in h.find_elements(By.CSS_SELECTOR, ".cat")]
        assert "cs.LG" in cats and "cs.CV" not in cats, cats

    # newest first through the order select; the filter stays
    Select(browser.find_element(By.ID, "f-sort")).select_by_value("date")
    browser.find_element(By.CSS_SELECTOR, ".field-submit button").click()
    wait(browser, lambda d: "sort=date" in d.current_url)
    assert "cat=cs.LG-cs.CV" in browser.current_url
    days = [t.get_attribute("datetime") for t in browser.find_elements(By.CSS_SELECTOR, ".hit .hit-meta time")]
    assert days and days == sorted(days, reverse=True)

    # paging keeps everything
    nxt = browser.find_elements(By.CSS_SELECTOR, ".pager a[rel=next]")
    if nxt:
        first_page = hit_ids(browser)
        nxt[0].click()
        wait(browser, lambda d: "page=2" in d.current_url)
        assert not set(first_page) & set(hit_ids(browser))
    assert not csp_errors(browser)


def test_arxiv_url_in_the_search_box_opens_the_paper(browser, server):
    browser.get(server + "/search")
    box = browser.find_element(By.ID, "q")
    box.send_keys("https://arxiv.org/abs/0704.0808v1", Keys.ENTER)
    wait(browser, lambda d: d.current_url.endswith("/paper/0704.0808"))
    assert "Hilbert Transform" in browser.find_element(By.CSS_SELECTOR, "h1.paper-title").text


def test_paper_page_tex_related_chips_and_bibtex(browser, server):
    browser.get(server + "/search?q=" + "Hilbert transform vector fields Stein conjecture" + "&mode=bm25")
    wait(browser, lambda d: len(hits(d)) > 0)
    link = browser.find_element(By.CSS_SELECTOR, "li.hit[data-id='0704.0808'] .hit-title a")
    link.click()
    wait(browser, EC.presence_of_element_located((By.ID, "paper")))
    assert browser.current_url.endswith("/paper/0704.0808")
    # the abstract's TeX is rendered by the local KaTeX
    wait(browser, lambda d: d.execute_script("return document.documentElement.getAttribute('data-tex-rendered')") == "1")
    assert browser.find_elements(By.CSS_SELECTOR, ".abstract .katex")
    assert "$" not in browser.find_element(By.CSS_SELECTOR, ".abstract").text
    # related papers, each explained by shared keywords
    related = browser.find_elements(By.CSS_SELECTOR, "#related li.hit")
    assert related and any(r.find_elements(By.CSS_SELECTOR, ".shared .chip") for r in related)
    shot(browser, "desktop-paper")
    # BibTeX copy button
    copy = browser.find_element(By.CSS_SELECTOR, "[data-copy-target=bibtex]")
    assert copy.text == "Copy BibTeX"
    copy.click()
    wait(browser, lambda d: copy.get_attribute("data-copied") == "1")
    # a keyword chip opens a search for that keyword
    chip = browser.find_element(By.CSS_SELECTOR, ".keywords .chip")
    word = chip.text
    chip.click()
    wait(browser, lambda d: "/search?" in d.current_url)
    q = parse_qs(urlsplit(browser.current_url).query)["q"][0]
    assert q == f'"{word}"'
    assert hits(browser), f"the chip search {q!r} finds papers"
    assert not csp_errors(browser)


def test_slash_focuses_search(browser, server):
    browser.get(server + "/paper/0704.0808")
    browser.find_element(By.TAG_NAME, "body").send_keys("/")
    assert browser.switch_to.active_element.get_attribute("id") == "top-q"


def _open_papers(browser, server, query: str, n: int) -> list[str]:
    browser.get(server + "/search?mode=bm25&q=" + query)
    wait(browser, lambda d: len(hits(d)) >= n)
    ids = hit_ids(browser)[:n]
    for pid in ids:
        browser.get(server + "/paper/" + pid)
        wait(browser, EC.presence_of_element_located((By.ID, "paper")))
    return ids


def _interests(browser) -> dict:
    return json.loads(browser.execute_script("return window.localStorage.getItem('papers.interests.v1')") or "{}")


def test_interests_persist_and_change_the_heart_order(browser, server, app_client):
    reset_interests(browser, server)
    opened = _open_papers(browser, server, "quantum+entanglement", 3)
    browser.get(server + "/interests")
    words = browser.find_elements(By.CSS_SELECTOR, "#cloud a")
    assert words, "the cloud shows the keywords of the opened papers"
    prefs = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#prefs-list li")]
    assert 0 < len(prefs) <= 20
    assert set(_interests(browser)["papers"]) == set(opened)
    sizes = [float(w.value_of_css_property("font-size").rstrip("px")) for w in words]
    assert max(sizes) > min(sizes), "weights are drawn as sizes"
    # recommendations from the papers read (POST /api/recommend)
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#recs li.hit"))
    recommended = [li.get_attribute("data-id") for li in browser.find_elements(By.CSS_SELECTOR, "#recs li.hit")]
    assert recommended and not set(recommended) & set(opened)
    shot(browser, "desktop-interests")

    browser.refresh()
    assert [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#prefs-list li")] == prefs, "kept across a reload"
    browser.get(server + "/paper/" + opened[0])  # opening a paper again does not count twice
    browser.get(server + "/interests")
    assert [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#prefs-list li")] == prefs

    # ❤ order on a broad search
    browser.get(server + "/search?q=learning&mode=bm25")
    wait(browser, lambda d: len(hits(d)) > 0)
    plain = hit_ids(browser)
    browser.find_element(By.CSS_SELECTOR, "a[data-prefs-link]").click()
    wait(browser, lambda d: "sort=prefs" in d.current_url)
    params = parse_qs(urlsplit(browser.current_url).query)
    assert params["prefs"][0].split(",") == prefs, "the link carries the top-20 preference keywords"
    hearted = hit_ids(browser)
    assert hearted != plain, "❤ changes the order"
    top = app_client.get(f"/api/papers/{hearted[0]}").json()
    text = (top["title"] + " " + top["abstract"]).lower()
    pref_words = [w.lower() for p in params["prefs"][0].split(",") for w in p.split()]
    assert any(w in text for w in pref_words), (hearted[0], pref_words)
    shot(browser, "desktop-search-heart")

    # the order select fills the keywords in too
    browser.get(server + "/search?q=learning&mode=bm25")
    Select(browser.find_element(By.ID, "f-sort")).select_by_value("prefs")
    browser.find_element(By.CSS_SELECTOR, ".field-submit button").click()
    wait(browser, lambda d: "sort=prefs" in d.current_url)
    assert parse_qs(urlsplit(browser.current_url).query).get("prefs"), "the form sends the preference keywords"
    assert hit_ids(browser) == hearted

    # and the daily list
    browser.get(server + "/daily/cs.CV")
    browser.find_element(By.CSS_SELECTOR, "a[data-prefs-link]").click()
    wait(browser, lambda d: "prefs=" in d.current_url)
    assert hits(browser)
    assert not csp_errors(browser)


def test_interest_profile_adds_up_variants_of_one_term(browser, server):
    """Three real papers name one term three ways: "graph neural network models",
    "GNN" (shown under its long form) and "graph neural networks". The interest profile
    keeps one entry for it, under the first name, holding the weight of all three."""
    from indexer.text.keywords import interest_key

    reset_interests(browser, server)
    weights = []
    for pid in ("2606.29748", "2606.30291", "2508.11826"):
        browser.get(server + "/paper/" + pid)
        wait(browser, EC.presence_of_element_located((By.ID, "paper")))
        kws = json.loads(browser.find_element(By.ID, "paper").get_attribute("data-keywords"))
        term = [k for k in kws if k["key"] == "graph neural network"]
        assert len(term) == 1, (pid, kws)
        weights.append(term[0]["weight"])
    stored = _interests(browser)
    names = [w for w in stored["keywords"] if interest_key(w) == "graph neural network"]
    assert names == ["graph neural network models"], names
    assert stored["keywords"][names[0]] == pytest.approx(sum(weights), abs=1e-3)
    assert stored["terms"]["graph neural network"] == "graph neural network models"
    browser.get(server + "/interests")
    cloud = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#cloud a")]
    assert "graph neural network models" in cloud
    assert not {"gnn", "gnns", "graph neural networks"} & set(cloud)


def test_interests_import_export_clear(browser, server, tmp_path):
    reset_interests(browser, server)
    browser.get(server + "/interests")
    assert browser.find_element(By.ID, "cloud-empty")
    good = tmp_path / "interests.json"
    good.write_text(json.dumps({"version": 1, "keywords": {"graph neural network": 3.0, "message passing": 1.5}, "papers": ["0704.0808"]}))
    browser.find_element(By.ID, "interests-import").send_keys(str(good))
    wait(browser, lambda d: "Imported 2 keywords" in d.find_element(By.ID, "interests-message").text)
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#prefs-list .chip")] == ["graph neural network", "message passing"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"keywords": "nope"}')
    browser.find_element(By.ID, "interests-import").send_keys(str(bad))
    wait(browser, lambda d: "not a papers interests export" in d.find_element(By.ID, "interests-message").text)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#prefs-list .chip")) == 2, "a bad file changes nothing"
    browser.find_element(By.ID, "interests-export").click()
    wait(browser, lambda d: d.find_element(By.ID, "interests-message").text == "Exported.")
    browser.find_element(By.ID, "interests-clear").click()
    try:
        wait(browser, EC.alert_is_present(), timeout=5).accept()
    except TimeoutException:
        pytest.fail("clearing asks for confirmation")
    wait(browser, lambda d: d.find_elements(By.ID, "cloud-empty"))
    assert _interests(browser) == {}


def test_keyword_and_similar_pages(browser, server):
    browser.get(server + "/keywords")
    area = browser.find_element(By.ID, "kw-text")
    area.send_keys("Graph neural networks learn node representations by message passing. "
                   "We study over-smoothing in deep graph neural networks and propose a residual message passing scheme.")
    browser.find_element(By.CSS_SELECTOR, ".textform button[type=submit]").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".kw-word"))
    words = [w.text.lower() for w in browser.find_elements(By.CSS_SELECTOR, ".kw-word")]
    assert any("graph" in w or "message passing" in w for w in words), words
    shot(browser, "desktop-keywords")

    browser.get(server + "/similar")
    browser.find_element(By.ID, "sim-text").send_keys(
        "We propose a convolutional neural network for semantic segmentation of urban street scenes.")
    browser.find_element(By.CSS_SELECTOR, ".textform button[type=submit]").click()
    wait(browser, lambda d: len(hits(d)) > 0)
    assert browser.find_elements(By.CSS_SELECTOR, ".hit .shared .chip")
    shot(browser, "desktop-similar")


def test_daily_page_day_navigation(browser, server):
    browser.get(server + "/daily/cs.CV")
    day = browser.find_element(By.ID, "d-date").get_attribute("value")
    browser.find_element(By.CSS_SELECTOR, ".daynav a[rel=prev]").click()
    wait(browser, lambda d: d.find_element(By.ID, "d-date").get_attribute("value") < day)
    assert hits(browser)
    browser.find_element(By.CSS_SELECTOR, ".daynav a[rel=next]").click()
    wait(browser, lambda d: d.find_element(By.ID, "d-date").get_attribute("value") == day)
    shot(browser, "desktop-daily")


def test_api_docs_work_offline_under_the_csp(browser, server):
    """The footer's "API" link opens Swagger UI, built from local files only, which lists the
    endpoints and shows a parameter's schema, with no CSP violation."""
    browser.get(server + "/")
    browser.get_log("browser")  # drop earlier messages
    browser.find_element(By.CSS_SELECTOR, "footer a[href='/docs']").click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 10)
    paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/api/search", "/api/daily/{catexpr}"} <= {p.replace("\u200b", "") for p in paths}, paths
    browser.find_element(By.CSS_SELECTOR, "#operations-search-search_api_search_get .opblock-summary").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#operations-search-search_api_search_get tr[data-param-name='size']"))
    requests = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert requests and all(u.startswith(server) for u in requests), requests
    assert not csp_errors(browser)
    shot(browser, "desktop-api-docs", full=False)


@pytest.mark.parametrize(
    "name,path",
    [("home", "/"), ("search", "/search?q=graph+neural+network&cat=cs.LG"), ("paper", "/paper/0704.0808"),
     ("daily", "/daily/cs.CV"), ("interests", "/interests"), ("keywords", "/keywords")],
)
def test_phone_layout_has_no_sideways_scroll(phone, server, name, path):
    phone.get(server + path)
    wait(phone, lambda d: d.execute_script("return document.readyState") == "complete")
    width = phone.execute_script("return document.documentElement.scrollWidth")
    assert width <= 375, f"{path} is {width}px wide on a 375px phone"
    shot(phone, f"phone-{name}")


@pytest.mark.parametrize("query,needles", [
    ("图神经网络", ("graph neural", "gnn")),
    ("基于Transformer的目标检测", ("detect",)),
    ("大语言模型的数学推理", ("reason", "math")),
])
def test_chinese_topic_queries_find_on_topic_papers(browser, server, query, needles):
    """README's Chinese examples (issue #13): hybrid search's top 5 are on topic, and the page
    says what the Chinese was searched as in English."""
    browser.get(server + "/search?" + urlencode({"q": query, "mode": "hybrid"}))
    wait(browser, lambda d: len(hits(d)) >= 5)
    for pid in hit_ids(browser)[:5]:  # the page shows a snippet: judge the whole abstract
        paper = json.loads(urlopen(f"{server}/api/papers/{pid}", timeout=30).read())
        text = (paper["title"] + " " + paper["abstract"]).lower()
        assert any(n in text for n in needles), (query, paper["title"])
    assert "Also searched in English" in browser.find_element(By.CSS_SELECTOR, ".translated").text


def test_unmatched_phrase_says_it_was_relaxed(browser, server):
    browser.get(server + "/search?" + urlencode({"q": '"graph neural quantum chromodynamics lattice"', "mode": "bm25"}))
    wait(browser, lambda d: len(hits(d)) > 0)
    assert "No exact match for" in browser.find_element(By.CSS_SELECTOR, ".notice.relaxed").text
