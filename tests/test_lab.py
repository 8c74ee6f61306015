"""The lab launcher: the learner's copies first, no news prompt, JupyterLab on loopback at 00."""

import json

from tutorial_project.course import lab


def test_news_is_turned_off_and_other_settings_are_kept(tmp_path):
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "dark"},
                                "@jupyterlab/apputils-extension:notification":
                                    {"doNotDisturbMode": True}}))
    lab.turn_off_news(path)
    settings = json.loads(path.read_text())
    assert settings["@jupyterlab/apputils-extension:themes"] == {"theme": "dark"}
    assert settings["@jupyterlab/apputils-extension:notification"] == {
        "doNotDisturbMode": True, "fetchNews": "false", "checkForUpdates": False}


def test_jupyterlab_listens_on_loopback_and_opens_the_learners_lesson_00():
    command = lab.lab_command(8890, lab.COPIES_DIR / lab.FIRST_LESSON)
    assert "--ip=127.0.0.1" in command and "--port=8890" in command
    assert command[-1] == f"--LabApp.default_url=/lab/tree/notebooks/learner/{lab.FIRST_LESSON}"
    assert (lab.REPO / "notebooks" / lab.FIRST_LESSON).exists()


def test_the_launcher_writes_missing_copies_and_keeps_existing_work(tmp_path, monkeypatch,
                                                                    capsys):
    copies = tmp_path / "notebooks" / "learner"
    monkeypatch.setattr(lab, "REPO", tmp_path)
    monkeypatch.setattr(lab, "COPIES_DIR", copies)
    monkeypatch.setattr(lab, "overrides_path", lambda: tmp_path / "overrides.json")
    real_write = lab.write_copies
    monkeypatch.setattr(lab, "write_copies", lambda lessons: real_write(lessons[:2], copies))
    monkeypatch.setattr(lab.sys, "prefix", str(tmp_path))

    assert lab.main(["--dry-run"]) == 0
    first = sorted(copies.glob("*.ipynb"))
    out = capsys.readouterr().out
    assert len(first) == 2 and "Wrote 2 lesson copies for you in notebooks/learner/" in out
    assert f"--LabApp.default_url=/lab/tree/notebooks/learner/{lab.FIRST_LESSON}" in out
    first[0].write_text("my work")
    assert lab.main(["--dry-run"]) == 0
    assert first[0].read_text() == "my work"
    assert "Wrote" not in capsys.readouterr().out
