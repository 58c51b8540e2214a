"""Clear errors when the synthesiser or a soundfont is missing (nothing renders without)."""

import pytest

from gensep.cli import main
from gensep.data import midi
from gensep.data.midi import RenderError, find_soundfont, fluidsynth_binary


def test_missing_soundfont_names_the_package_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(midi, "SOUNDFONT_DIRS", (tmp_path,))
    with pytest.raises(RenderError, match=r"TimGM6mb.sf2.*not found.*timgm6mb-soundfont"):
        find_soundfont("TimGM6mb.sf2")
    with pytest.raises(RenderError, match=r"install .*General MIDI soundfont"):
        find_soundfont("Other.sf2")


def test_missing_fluidsynth_names_the_package(monkeypatch):
    monkeypatch.setattr(midi.shutil, "which", lambda name: None)
    with pytest.raises(RenderError, match=r"fluidsynth program is not installed.*fluidsynth"):
        fluidsynth_binary()


@pytest.mark.parametrize("kind", ["band", "choir"])
def test_render_without_fluidsynth_is_one_line_exit_2(kind, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(midi.shutil, "which", lambda name: None)
    out = tmp_path / kind
    assert main(["render", kind, "--out", str(out), "--n-train", "1", "--n-test", "0"]) == 2
    err = capsys.readouterr().err
    assert "fluidsynth" in err and "Traceback" not in err
