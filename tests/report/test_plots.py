"""Plots: every PNG decodes, every axis is titled and labelled."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")

from tinyembed.cli import main  # noqa: E402
from tinyembed.report import Figure  # noqa: E402
from tinyembed.report import figures as plots  # noqa: E402


@pytest.mark.parametrize("name", sorted(plots.POSITIONAL_PLOTS))
def test_every_positional_plot_is_a_titled_png(name):
    # figure_from_matplotlib refuses a plot without a title or with an unlabelled axis.
    figure = plots.POSITIONAL_PLOTS[name]()
    assert isinstance(figure, Figure) and figure.title and min(figure.size) > 200


def test_plot_command_writes_decodable_pngs(tmp_path, capsys):
    tmp_path = tmp_path / "plots"
    assert main(["plot", "positional", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(p.rsplit("/", 1)[-1] for p in printed) == sorted(f"{n}.png" for n in plots.POSITIONAL_PLOTS)
    for path in printed:
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
        assert image.std() > 0.01  # not a blank canvas
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in plots.POSITIONAL_PLOTS)


def test_rope_similarity_depends_only_on_the_offset():
    sim = plots.rope_similarity(40, head_dim=16)
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.diag(sim, 3), np.diag(sim, 3)[0], atol=1e-12)


def test_unwritable_output_directory_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SystemExit) as e:
        main(["plot", "positional", "--out", str(blocker / "sub")])
    assert e.value.code == 2
    assert "cannot write plots" in capsys.readouterr().err
