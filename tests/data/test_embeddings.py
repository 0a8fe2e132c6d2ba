import pytest
import torch

from rnnlab.data.embeddings import load_pretrained
from rnnlab.data.vocab import Vocab
from rnnlab.errors import RnnlabError


def test_glove_and_word2vec_text_formats(tmp_path):
    vocab = Vocab(["film", "Good", "absent"])
    glove = tmp_path / "glove.txt"
    glove.write_text("film 1 2 3\ngood 4 5 6\nother 7 8 9\n", "utf-8")
    w2v = tmp_path / "w2v.txt"
    w2v.write_text("3 3\nfilm 1 2 3\ngood 4 5 6\nother 7 8 9\n", "utf-8")
    for path in (glove, w2v):
        result = load_pretrained(path, vocab, dim=3)
        assert result.found == 2 and result.searched == 3
        assert result.vectors.shape == (7, 3)
        assert torch.equal(result.vectors[vocab.stoi["film"]], torch.tensor([1.0, 2, 3]))
        assert torch.equal(result.vectors[vocab.stoi["Good"]], torch.tensor([4.0, 5, 6]))
        assert torch.equal(result.vectors[vocab.pad_id], torch.zeros(3))
        assert "2 of 3" in result.summary()


def test_exact_case_wins_over_lowercase(tmp_path):
    vocab = Vocab(["Paris"])
    path = tmp_path / "v.txt"
    path.write_text("paris 0 0\nParis 1 1\n", "utf-8")
    assert load_pretrained(path, vocab).vectors[4].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("content, message", [
    ("a 1 2\nb 1\n", "1 values, expected 2"),
    ("", "empty"),
    ("a 1 x\n", "could not convert"),
])
def test_bad_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "v.txt"
    path.write_text(content, "utf-8")
    with pytest.raises(RnnlabError, match=message):
        load_pretrained(path, Vocab(["a", "b"]))


def test_dimension_mismatch_and_encoding(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("a 1 2\n", "utf-8")
    with pytest.raises(RnnlabError, match="2-dimensional"):
        load_pretrained(path, Vocab(["a"]), dim=3)
    path.write_bytes(b"caf\xe9 1 2\n")
    with pytest.raises(RnnlabError, match="v.txt:1: not UTF-8"):
        load_pretrained(path, Vocab(["a"]))
