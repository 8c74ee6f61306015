"""Sphinx extension for the course's book site (``.book/conf.py`` loads it).

On every lesson page it adds:
- a card under the lesson's introduction: its time, download links for the notebook and its
  learner copy, and a link that launches it on Binder;
- a note above each intended error (cells tagged ``raises-exception``), so a reader knows
  the traceback is the point of the cell, not a broken page;
- a link from each output figure to the image itself, to open it full size on a phone.

Settings (in conf.py): ``book_repository_url`` (https://github.com/OWNER/REPO),
``book_branch``, ``book_binder_url``.
"""

import posixpath
import re
from urllib.parse import quote

from docutils import nodes
from sphinx.util.osutil import relative_uri

RAISES_TAG = "tag_raises-exception"
INTENDED_ERROR = (
    "Intended error: this cell fails on purpose, and the traceback below is what the lesson "
    "is showing you."
)


def binder_link(repository_url, branch, notebook_path, binder_url="https://mybinder.org"):
    """The Binder URL that opens ``notebook_path`` of a GitHub repository in JupyterLab."""
    found = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", repository_url)
    if not found:
        raise ValueError(f"book_repository_url must be https://github.com/OWNER/REPO, "
                         f"not {repository_url!r}")  # fmt: skip
    owner, repo = found.groups()
    return (f"{binder_url.rstrip('/')}/v2/gh/{owner}/{repo}/{quote(branch, safe='')}"
            f"?urlpath={quote('lab/tree/' + notebook_path, safe='/')}")  # fmt: skip


def _is_lesson(app, docname):
    return app.env.doc2path(docname).suffix == ".ipynb"


def _text_link(text, uri, classes=()):
    return nodes.reference("", text, refuri=uri, classes=list(classes))


def lesson_card(app, docname, time):
    """The card's paragraph: time, downloads, Binder."""
    config, name = app.config, f"{docname}.ipynb"
    paragraph = nodes.paragraph(classes=["lesson-card"])
    if time:
        paragraph += nodes.strong("", f"Time: {time}")
        paragraph += nodes.Text(" · ")
    paragraph += nodes.Text("Download ")
    paragraph += _text_link("the lesson notebook", f"downloads/{name}", ["download-lesson"])
    paragraph += nodes.Text(" or ")
    paragraph += _text_link("your copy with the answers removed",
                            f"downloads/learner/{name}", ["download-learner"])  # fmt: skip
    paragraph += nodes.Text(" · ")
    binder = binder_link(config.book_repository_url, config.book_branch,
                         f"notebooks/{name}", config.book_binder_url)  # fmt: skip
    paragraph += _text_link("Run it on Binder", binder, ["launch-binder"])
    return paragraph


def add_lesson_card(app, doctree):
    docname = app.env.docname
    if not _is_lesson(app, docname):
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    # Under the introduction: the first paragraph that gives the lesson's time.
    anchor, time = section[0], ""
    for child in section.children:
        found = re.search(r"Time:\s*(~?\s*\d+\s*min)", child.astext())
        if isinstance(child, nodes.paragraph) and found:
            anchor, time = child, found.group(1)
            break
    card = lesson_card(app, docname, time)
    section.insert(section.index(anchor) + 1, card)


def mark_intended_errors(app, doctree):
    for cell in doctree.findall(nodes.container):
        if RAISES_TAG not in cell["classes"]:
            continue
        for output in cell.findall(nodes.container):
            if "cell_output" in output["classes"]:
                output.insert(0, nodes.paragraph("", INTENDED_ERROR, classes=["intended-error"]))
                break


def link_figures_to_full_size(app, doctree, docname):
    """Wrap output images in a link to the image file (Sphinx copies it to _images/)."""
    page = app.builder.get_target_uri(docname)
    for image in list(doctree.findall(nodes.image)):
        if isinstance(image.parent, nodes.reference) or image["uri"] not in app.env.images:
            continue
        target = posixpath.join(app.builder.imagedir, app.env.images[image["uri"]][1])
        uri = relative_uri(page, target)
        link = nodes.reference("", "", refuri=uri, classes=["full-size-figure"],
                               reftitle="Open the figure full size")  # fmt: skip
        parent = image.parent
        index = parent.index(image)
        image.replace_self(link)
        link.append(image)
        # On a phone a wide figure is small, and nothing shows that it is a link: say so.
        hint = nodes.paragraph(classes=["full-size-hint"])
        hint += nodes.reference("", "Open the figure full size", refuri=uri)
        parent.insert(index + 1, hint)


def setup(app):
    app.add_config_value("book_repository_url", "", "env", str)
    app.add_config_value("book_branch", "main", "env", str)
    app.add_config_value("book_binder_url", "https://mybinder.org", "env", str)
    app.connect("doctree-read", add_lesson_card)
    app.connect("doctree-read", mark_intended_errors)
    app.connect("doctree-resolved", link_figures_to_full_size)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
