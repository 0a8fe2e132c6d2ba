"""Documents: the sentence rule, document examples, IMDB as a classification corpus (movie-level
dev split, test read only when asked), and NBSVM against a brute-force computation."""

import io
import itertools
import json
import math
import random
import tarfile

import pytest
import torch

from rnnlab.data.sentences import split_sentences
from rnnlab.errors import RnnlabError
from rnnlab.tasks.classify.config import ClassifyConfig
from rnnlab.tasks.classify.data import load_classify_data, tokenize_document
from rnnlab.tasks.classify.documents import (
    coverage,
    encode_example,
    encode_examples,
    ngrams,
    sentences_of,
)
from rnnlab.tasks.classify.nbsvm import NBSVM

GOOD = ["A great film.", "I loved the cast!", "Superb acting, really.", "Mr. Smith shines."]
BAD = ["An awful film.", "I hated the plot!", "Dreadful acting, really.", "What a bore?"]


pytestmark = pytest.mark.usefixtures("one_thread")


def write_imdb(folder, movies: int = 10, per_movie: int = 4, seed: int = 0):
    """A generated aclImdb_v1.tar.gz: `movies` train movies (and 3 test ones)."""
    rng = random.Random(seed)
    files = {}
    for split, count in (("train", movies), ("test", 3)):
        for label, pool, ratings in (("pos", GOOD, (7, 10)), ("neg", BAD, (1, 4))):
            urls = []
            for number in range(count * per_movie // 2):
                text = "<br /><br />".join(rng.sample(pool, 2)) + " " + rng.choice(pool)
                files[f"aclImdb/{split}/{label}/{number}_{rng.randint(*ratings)}.txt"] = text
                urls.append(f"http://www.imdb.com/title/tt{split}{number % count}/usercomments")
            files[f"aclImdb/{split}/urls_{label}.txt"] = "\n".join(urls)
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / "aclImdb_v1.tar.gz", "w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return folder


def test_sentence_rule():
    text = ('Mr. Smith went to Washington. It was great!!! Really?<br /><br />"Yes." '
            'He said so.<br/>J. Doe agreed... ok\nnew line')
    assert split_sentences(text) == ["Mr. Smith went to Washington.", "It was great!!!",
                                     "Really?", '"Yes."', "He said so.", "J. Doe agreed...",
                                     "ok", "new line"]
    assert split_sentences("  <br /><BR>  ") == []
    tokens, lengths = tokenize_document("Don't go. It's bad!<br />Fine")
    assert tokens == ["do", "n't", "go", ".", "it", "'s", "bad", "!", "fine"]
    assert lengths == (4, 4, 1)


def test_document_encoding_per_model():
    tokens, lengths = tokenize_document("a b c d. e f. g h i. j.")
    from rnnlab.data.vocab import Vocab
    from rnnlab.tasks.classify.data import Example

    ex = Example(tokens, "pos", "x", lengths)
    assert sentences_of(ex) == [["a", "b", "c", "d", "."], ["e", "f", "."],
                                ["g", "h", "i", "."], ["j", "."]]
    vocab = Vocab.build(tokens, 1)
    han = ClassifyConfig(model="han", max_sentences=2, max_sentence_len=3)
    assert encode_example(vocab, ex, han) == [vocab.encode(["a", "b", "c"]),
                                              vocab.encode(["d", "."])]  # a long one, cut
    wide = ClassifyConfig(model="han", max_sentences=3, max_sentence_len=4)
    assert encode_example(vocab, ex, wide) == [vocab.encode(["a", "b", "c", "d"]),
                                               vocab.encode(["."]), vocab.encode(["e", "f", "."])]
    flat = ClassifyConfig(model="rnn", max_len=4)
    assert encode_example(vocab, ex, flat) == vocab.encode(["a", "b", "c", "d"])
    assert coverage([ex], 4, 5) == 1.0 and coverage([ex], 3, 5) == 0.0
    assert coverage([ex], 4, 4) == 0.0
    assert ngrams(["a", "b", "a", "b"], 2) == ["a", "b", "a b", "b a"]


def test_imdb_corpus_dev_by_movie_and_test_on_request(tmp_path):
    data_dir = tmp_path / "data"
    write_imdb(data_dir / "aclimdb")
    config = ClassifyConfig(corpus="aclimdb", model="han", dev_fraction=0.2)
    data = load_classify_data(config, str(data_dir))
    assert len(data.train) + len(data.valid) == 40 and data.labels == ["negative", "positive"]
    assert data.test is None  # not read yet
    assert len(data.split("test")) == 12
    assert all(ex.sentences and sum(ex.sentences) == len(ex.tokens) for ex in data.train)
    assert not any("br" in ex.tokens for ex in data.train)  # <br /> is a break, not words
    again = load_classify_data(config, str(data_dir))
    assert [ex.where for ex in again.valid] == [ex.where for ex in data.valid]
    other = load_classify_data(ClassifyConfig(corpus="aclimdb", dev_fraction=0.2,
                                              split_seed=7), str(data_dir))
    assert [ex.where for ex in other.valid] != [ex.where for ex in data.valid]


def test_imdb_movies_never_on_both_sides(tmp_path):
    """Held-out reviews are those of whole movies: check by the url files."""
    from rnnlab.data.aclimdb import read_aclimdb

    data_dir = tmp_path / "data"
    write_imdb(data_dir / "aclimdb", movies=10, per_movie=6)
    reviews = {r.where: r.movie for r in read_aclimdb(data_dir / "aclimdb")["train"]}
    data = load_classify_data(ClassifyConfig(corpus="aclimdb", dev_fraction=0.3),
                              str(data_dir))
    train_movies = {reviews[ex.where] for ex in data.train}
    dev_movies = {reviews[ex.where] for ex in data.valid}
    assert dev_movies and train_movies and not train_movies & dev_movies
    assert len(dev_movies) == 3


def test_user_documents_and_their_errors(tmp_path):
    path = tmp_path / "docs.jsonl"
    rows = [{"body": "Great. Loved it!" if i % 2 else "Bad. Hated it.", "y": str(i % 2)}
            for i in range(30)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = ClassifyConfig(train=str(path), model="han", text_column="body", label_column="y")
    data = load_classify_data(config, None)
    assert all(ex.sentences == (2, 4) or ex.sentences == (2, 3) for ex in data.train)
    ids, labels = encode_examples(data, data.train, config)
    assert all(len(doc) == 2 for doc in ids) and set(labels) == {0, 1}
    path.write_text(json.dumps({"body": " <br /> ", "y": "1"}) + "\n", encoding="utf-8")
    with pytest.raises(RnnlabError, match=r"docs.jsonl:1: empty text"):
        load_classify_data(config, None)
    path.write_text(json.dumps({"text": "x", "y": "1"}) + "\n", encoding="utf-8")
    with pytest.raises(RnnlabError, match=r"docs.jsonl:1: no key 'body'"):
        load_classify_data(config, None)


def test_nbsvm_matches_brute_force():
    """r = log((p/|p|_1) / (q/|q|_1)) with p, q the smoothed binarized counts, and the logit
    sum_j r_j w_j + b over a document's distinct features, computed feature by feature."""
    torch.manual_seed(0)
    rng = random.Random(0)
    features, classes = 12, 3
    docs = [rng.sample(range(4, features), rng.randint(1, 6)) for _ in range(15)]
    labels = [rng.randrange(classes) for _ in docs]
    model = NBSVM(features, classes, ClassifyConfig(model="nbsvm"))
    model.fit_ratios(docs, labels)
    with torch.no_grad():
        model.weight.weight.normal_()
        model.bias.normal_()
    for c in range(classes):
        pairs = list(zip(docs, labels, strict=True))
        p = [1.0 + sum(j in d for d, y in pairs if y == c) for j in range(features)]
        q = [1.0 + sum(j in d for d, y in pairs if y != c) for j in range(features)]
        for j in range(4, features):
            expected = math.log((p[j] / sum(p)) / (q[j] / sum(q)))
            assert model.ratio[j, c].item() == pytest.approx(expected, rel=1e-5)
        assert model.ratio[:4, c].abs().sum().item() == 0.0
    from rnnlab.data.buckets import pad_batch

    tokens, lengths = pad_batch(docs)
    logits, _ = model(tokens, lengths)
    r, w, b = model.ratio.tolist(), model.weight.weight.tolist(), model.bias.tolist()
    for d, doc in enumerate(docs):
        for c in range(classes):
            expected = sum(r[j][c] * w[j][c] for j in doc) + b[c]
            assert logits[d, c].item() == pytest.approx(expected, abs=1e-5)
    # binary: the two classes' ratios are exact opposites (one against the rest)
    two = NBSVM(features, 2, ClassifyConfig(model="nbsvm"))
    two.fit_ratios(docs, [y % 2 for y in labels])
    torch.testing.assert_close(two.ratio[:, 0], -two.ratio[:, 1])


def test_nbsvm_features_are_distinct_ngrams():
    from rnnlab.data.vocab import Vocab
    from rnnlab.tasks.classify.data import Example

    ex = Example(["not", "good", "not", "good"], "neg", "x")
    config = ClassifyConfig(model="nbsvm", ngrams=2)
    vocab = Vocab.build(itertools.chain(ngrams(ex.tokens, 2)), 1)
    ids = encode_example(vocab, ex, config)
    assert sorted(vocab.decode(ids)) == ["good", "good not", "not", "not good"]
