"""`--model lstm|gru|...` is `--model rnn --cell NAME`, saved in the canonical spelling."""

from __future__ import annotations

import pytest

from rnnlab.cli.main import main
from rnnlab.errors import RnnlabError
from rnnlab.nn.factory import CELLS
from rnnlab.tasks.classify.config import ClassifyConfig
from rnnlab.tasks.lm.config import LMConfig
from rnnlab.tasks.registry import load_run
from rnnlab.tasks.tag.config import TagConfig
from rnnlab.tasks.translate.config import TranslateConfig


@pytest.mark.parametrize("cell", [c for c in CELLS if c != "rnn"])
@pytest.mark.parametrize("config_cls", [LMConfig, ClassifyConfig, TagConfig, TranslateConfig])
def test_a_cell_name_as_model_is_the_recurrent_model_with_that_cell(config_cls, cell):
    config = config_cls(model=cell)
    assert (config.model, config.cell) == ("rnn", cell)
    assert config == config_cls(model="rnn", cell=cell)


def test_the_family_and_other_models_are_unchanged():
    assert (LMConfig().model, LMConfig().cell) == ("rnn", "lstm")
    assert TranslateConfig().cell == "gru"
    assert LMConfig(model="transformer").model == "transformer"
    assert ClassifyConfig(model="han", cell="gru").cell == "gru"


def test_contradictions_and_cells_a_task_lacks_are_one_line_errors():
    with pytest.raises(RnnlabError, match="--model gru and --cell rnn disagree"):
        LMConfig(model="gru", cell="rnn")
    assert (TagConfig(model="lstm").model, TagConfig().cell) == ("rnn", "lstm")
    with pytest.raises(RnnlabError, match="--model must be one of"):
        TagConfig(model="cnn")
    with pytest.raises(RnnlabError, match="--cell must be one of"):
        TagConfig(cell="conv")


def test_the_tagger_encodes_with_the_cell_it_is_given(tmp_path):
    """`train tag --model gru`: the word encoder is a bidirectional GRU, saved as cell gru."""
    from rnnlab.nn.recurrent import GRU
    from rnnlab.tasks.registry import load_predictor

    data = tmp_path / "train.conll"
    data.write_text("the DET\ncat NOUN\nsat VERB\n\na DET\ndog NOUN\n\n" * 10,
                    encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "tag", "--train", str(data), "--valid", str(data), "--model", "gru",
                 "--crf", "--hidden", "4", "--word-embedding-size", "4", "--char-features",
                 "none", "--max-steps", "1", "--run-dir", str(run), "--quiet",
                 "--threads", "1"]) == 0
    assert (load_run(run).config.model, load_run(run).config.cell) == ("rnn", "gru")
    encoder = load_predictor(run).model.encoder
    assert isinstance(encoder, GRU) and encoder.bidirectional


def test_the_cli_saves_the_canonical_spelling(tmp_path, capsys):
    text = tmp_path / "train.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 40, encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "lm", "--train", str(text), "--model", "gru", "--hidden", "8",
                 "--layers", "1", "--batch-size", "4", "--bptt", "8", "--max-steps", "1",
                 "--run-dir", str(run), "--quiet", "--threads", "1"]) == 0
    config = load_run(run).config
    assert (config.model, config.cell) == ("rnn", "gru")
