"""The course's book site (`make html`), read in Debian's headless Chromium.

The site is built from the lessons into a temporary folder and served over loopback. Each
check runs at a desktop width and at 390 px (a phone, with mobile emulation), and fails if
the page asks any other host for anything. Screenshots go to .test-output/book-*.png.
"""

import functools
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from playwright.sync_api import expect, sync_playwright
from system_chromium import CHROMIUM_ARGS

from tutorial_project.course.book import build_site
from tutorial_project.course.learner_copies import is_solution

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / ".test-output"
LESSONS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGES = [lesson.stem for lesson in LESSONS]
WIDTHS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
              "is_mobile": True, "has_touch": True},
}  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    work = tmp_path_factory.mktemp("book")
    build_site(LESSONS, work / "site", work=work / "build")
    return work / "site"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the test output stays readable
        pass


@pytest.fixture(scope="module")
def base_url(site):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler,
                                                                     directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(chromium):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(params=list(WIDTHS))
def page(request, browser, base_url):
    """A page at one width; any request to another host is refused, and fails the test."""
    context = browser.new_context(**WIDTHS[request.param])
    foreign = []
    site_host = urlsplit(base_url).netloc

    def only_the_site(route):
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != site_host:
            foreign.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", only_the_site)
    # Generous: a busy 2-core CI machine can take many seconds to load a long lesson.
    context.set_default_timeout(30_000)
    context.set_default_navigation_timeout(90_000)
    page = context.new_page()
    page.width_name = request.param
    page.site = base_url
    try:
        yield page
    finally:
        context.close()
    assert not foreign, f"the site asked other hosts for: {sorted(set(foreign))}"


def screenshot(page, name, full_page=False):
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=OUTPUT / f"book-{name}-{page.width_name}.png", full_page=full_page)


def open_page(page, name):
    page.goto(f"{page.site}/{name}.html")
    page.evaluate("() => document.fonts.ready")


# A tag that makes the browser fetch its URL as the page loads (links to follow are fine).
FETCHED = re.compile(
    r"<(?:script|img|iframe|source|audio|video|embed)\b[^>]*\bsrc=[\"']?(https?:)?//"
    r"|<link\b(?=[^>]*\brel=[\"']?(?:stylesheet|preload|icon|modulepreload))[^>]*"
    r"\bhref=[\"']?(https?:)?//"
    r"|url\(\s*[\"']?(https?:)?//|@import\s+[\"']?(https?:)?//",
    re.IGNORECASE,
)


@pytest.mark.parametrize("text, fetched", [
    ('<script src="https://cdn.example/require.min.js"></script>', True),
    ("<link rel='stylesheet' href='//fonts.example/a.css'>", True),
    ("div{background:url( 'https://cdn.example/a.png')}", True),
    ('<img src="_images/plot.png">', False),
    ('<a href="https://docs.djangoproject.com/en/stable/">Django docs</a>', False),
    ('<link rel="canonical" href="https://example.org/page.html">', False),
])  # fmt: skip
def test_the_offline_check_tells_loads_from_links(text, fetched):
    assert bool(FETCHED.search(text)) is fetched


def test_no_built_file_loads_anything_from_another_host(site):
    files = [*site.rglob("*.html"), *site.rglob("*.css"), *site.rglob("*.js")]
    assert len([f for f in files if f.suffix == ".html"]) > len(PAGES)
    offending = {}
    for path in files:
        found = FETCHED.search(path.read_text(encoding="utf-8", errors="replace"))
        if found:
            offending[str(path.relative_to(site))] = found.group(0)[:120]
    assert not offending, offending


def test_next_and_previous_links_walk_through_every_lesson(page):
    open_page(page, "index")
    for name in PAGES:
        page.locator("a.right-next").click()
        page.wait_for_url(f"**/{name}.html", wait_until="domcontentloaded")
        expect(page.locator("h1").first).to_contain_text(name[:2])
    assert page.locator("a.right-next").count() == 0, "the last lesson links to a next page"
    for name in [*reversed(PAGES[:-1]), "index"]:
        page.locator("a.left-prev").click()
        page.wait_for_url(f"**/{name}.html", wait_until="domcontentloaded")


def test_search_finds_lesson_00(page):
    open_page(page, PAGES[3])
    page.locator("button.search-button__button:visible").first.click()
    field = page.locator("#pst-search-dialog input[name=q]")
    field.fill("SynchronousOnlyOperation")
    field.press("Enter")
    page.wait_for_url("**/search.html?q=SynchronousOnlyOperation*")
    results = page.locator("#search-results li a")
    expect(results.first).to_be_visible(timeout=15_000)
    found = [urlsplit(href).path.rsplit("/", 1)[-1] for href in
             results.evaluate_all("links => links.map(link => link.href)")]  # fmt: skip
    screenshot(page, "search")
    assert f"{PAGES[0]}.html" in found, found


def first_line_of_first_solution(lesson):
    notebook = nbformat.read(lesson, as_version=4)
    solution = next(cell for cell in notebook.cells if is_solution(cell))
    return solution.source.strip().splitlines()[0]


def test_an_answer_is_hidden_until_clicked(page):
    open_page(page, PAGES[0])
    answer = page.locator("details.hide").first
    summary = answer.locator("summary")
    expect(summary).to_contain_text("Show the answer to Exercise 00.1")
    code = answer.locator("div.cell_input pre")
    expect(code).to_be_hidden()
    summary.scroll_into_view_if_needed()
    screenshot(page, "answer-hidden")
    summary.click()
    expect(code).to_be_visible()
    expect(code).to_contain_text(first_line_of_first_solution(LESSONS[0]))
    expect(summary).to_contain_text("Hide the answer")
    screenshot(page, "answer-shown")


# Every element of the page's main column whose content is wider than its box, and that does
# not scroll sideways: it is cut off (overflow hidden/clip) or spills over its neighbours.
CLIPPED = """() => {
    const problems = [];
    const scrolls = (style) => ["auto", "scroll"].includes(style.overflowX);
    for (const element of document.querySelectorAll("main *")) {
        const style = getComputedStyle(element);
        if (style.display === "none" || style.visibility === "hidden") continue;
        if (!element.offsetParent && style.position !== "fixed") continue;
        if (element.scrollWidth <= element.clientWidth + 1 || scrolls(style)) continue;
        if (element.clientWidth === 0 && element.clientHeight === 0) continue;  // inline
        problems.push(element.tagName.toLowerCase() + "." + [...element.classList].join(".")
            + " " + element.clientWidth + "<" + element.scrollWidth + ": "
            + element.textContent.trim().slice(0, 60));
    }
    const page = document.scrollingElement;
    if (page.scrollWidth > window.innerWidth + 1)
        problems.push("the whole page scrolls sideways: " + page.scrollWidth + " px");
    return problems;
}"""


@pytest.mark.parametrize("name", ["index", *PAGES])
def test_nothing_is_cut_off_sideways(page, name):
    open_page(page, name)
    problems = page.evaluate(CLIPPED)
    if name in ("index", PAGES[0], PAGES[2]):
        screenshot(page, name, full_page=name == "index")
    assert not problems, f"{name} at {page.width_name}: " + "\n".join(problems[:20])


def first_page_with_an_intended_error():
    for lesson in LESSONS:
        notebook = nbformat.read(lesson, as_version=4)
        if any("raises-exception" in cell.metadata.get("tags", []) for cell in notebook.cells):
            return lesson.stem
    raise AssertionError("no lesson has an intended error: the check checks nothing")


def test_wide_code_scrolls_and_tracebacks_keep_their_words(page):
    open_page(page, first_page_with_an_intended_error())
    wide = page.evaluate("""() => [...document.querySelectorAll("main pre")]
        .filter((pre) => pre.scrollWidth > pre.clientWidth + 1)
        .map((pre) => getComputedStyle(pre).overflowX)""")
    if page.width_name == "phone":
        assert wide, "no code block is wider than a phone: the check checks nothing"
    assert set(wide) <= {"auto", "scroll"}, wide
    traceback = page.locator("div.tag_raises-exception div.cell_output pre").first
    style = traceback.evaluate("pre => [getComputedStyle(pre).whiteSpace, "
                               "getComputedStyle(pre).wordBreak]")  # fmt: skip
    assert style == ["pre", "normal"], style
    note = page.locator("p.intended-error").first
    expect(note).to_contain_text("Intended error")
    note.scroll_into_view_if_needed()
    screenshot(page, "intended-error")


def test_lesson_page_has_its_card_and_figures_open_full_size(page):
    open_page(page, PAGES[1])
    card = page.locator("p.lesson-card")
    expect(card).to_contain_text(re.compile(r"Time: ~\d+ min"))
    for link in ("a.download-lesson", "a.download-learner"):
        href = card.locator(link).get_attribute("href")
        response = page.request.get(f"{page.site}/{href}")
        assert response.ok and response.json()["cells"], href
    binder = card.locator("a.launch-binder").get_attribute("href")
    assert binder.startswith("https://mybinder.org/v2/gh/"), binder
    assert binder.endswith(f"urlpath=lab/tree/notebooks/{PAGES[1]}.ipynb"), binder
    figures = page.locator("a.full-size-figure")
    assert figures.count() >= 1
    expect(page.locator("p.full-size-hint a")).to_have_count(figures.count())
    figure = figures.first
    image = figure.locator("img")
    image.scroll_into_view_if_needed()
    shown = image.bounding_box()
    assert shown["width"] <= page.viewport_size["width"]
    screenshot(page, "figure")
    figure.click()
    page.wait_for_url("**/_images/*")
    natural = page.evaluate("() => document.images[0].naturalWidth")
    assert natural >= shown["width"]
