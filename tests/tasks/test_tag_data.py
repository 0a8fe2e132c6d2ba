"""Tag schemes (hand-checked cases and round trips), CoNLL-U / CoNLL readers and their errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnlab.data.registry import corpus_files
from rnnlab.errors import RnnlabError
from rnnlab.tasks.tag.config import TagConfig
from rnnlab.tasks.tag.data import (
    bio_to_bioes,
    bio_to_iob1,
    convert_tags,
    is_entity_tagging,
    load_tag_data,
    read_columns,
    read_conllu,
    to_bio,
)

# "U.N. official Ekeus heads for Baghdad" and two adjacent entities of one type
IOB1 = ["I-ORG", "O", "I-PER", "O", "O", "I-LOC", "I-PER", "I-PER", "B-PER", "O"]
BIO = ["B-ORG", "O", "B-PER", "O", "O", "B-LOC", "B-PER", "I-PER", "B-PER", "O"]
BIOES = ["S-ORG", "O", "S-PER", "O", "O", "S-LOC", "B-PER", "E-PER", "S-PER", "O"]


def test_conversions_by_hand():
    assert to_bio(IOB1) == BIO
    assert bio_to_bioes(BIO) == BIOES
    assert to_bio(BIOES) == BIO
    assert bio_to_iob1(BIO) == IOB1
    assert convert_tags(IOB1, "bioes") == BIOES
    assert bio_to_bioes(["B-LOC", "I-LOC", "I-LOC"]) == ["B-LOC", "I-LOC", "E-LOC"]
    # an I- that opens an entity reads as B- (as the CoNLL script reads it)
    assert to_bio(["O", "I-MISC", "I-ORG"]) == ["O", "B-MISC", "B-ORG"]
    assert convert_tags(["NOUN", "VERB"], "none") == ["NOUN", "VERB"]
    assert is_entity_tagging(BIOES) and not is_entity_tagging(["NOUN", "O"])


@st.composite
def bio_sequences(draw):
    """Random valid BIO sequences: entities of random types and lengths between O runs."""
    tags: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        tags += ["O"] * draw(st.integers(0, 2))
        kind = draw(st.sampled_from(["PER", "LOC", "ORG"]))
        tags += ["B-" + kind] + ["I-" + kind] * draw(st.integers(0, 3))
    return tags


@given(bio_sequences())
def test_round_trips_iob1_bio_bioes(bio):
    iob1 = bio_to_iob1(bio)
    assert all(not t.startswith("B-") or (i and iob1[i - 1][2:] == t[2:])
               for i, t in enumerate(iob1))
    assert to_bio(iob1) == bio
    bioes = bio_to_bioes(to_bio(iob1))
    assert to_bio(bioes) == bio
    assert to_bio(bio) == bio  # idempotent on valid BIO
    assert sum(t[:2] in ("B-", "S-") for t in bioes) == sum(t.startswith("B-") for t in bio)


CONLLU = """# sent_id = s1
# text = I don't know.
1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\t_
4.1\tit\tit\tPRON\tPRP\t_\t_\t_\t4:obj\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

# sent_id = s2
1\tYes\tyes\tINTJ\tUH\t_\t0\troot\t_\t_

"""


def test_conllu_tags_syntactic_words_only(tmp_path):
    path = tmp_path / "tiny.conllu"
    path.write_text(CONLLU, encoding="utf-8")
    first, second = read_conllu(path, "upos")
    assert first.words == ["I", "do", "n't", "know", "."]
    assert first.tags == ["PRON", "AUX", "PART", "VERB", "PUNCT"]
    assert second.words == ["Yes"] and second.tags == ["INTJ"]
    assert read_conllu(path, "xpos")[0].tags == ["PRP", "VBP", "RB", "VB", "."]


def test_conllu_missing_tag_names_sentence(tmp_path):
    path = tmp_path / "bad.conllu"
    path.write_text(CONLLU.replace("\tVB\t", "\t_\t"), encoding="utf-8")
    with pytest.raises(RnnlabError, match=r"sentence 1 \(s1\), word 4 'know' has no xpos"):
        read_conllu(path, "xpos")


def test_columns_docstart_and_custom_columns(tmp_path):
    path = tmp_path / "eng.txt"
    path.write_text("-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\n"
                    "Peter NNP I-NP I-PER\n", encoding="utf-8")
    sentences = read_columns(path)
    assert [s.words for s in sentences] == [["EU", "rejects"], ["Peter"]]
    assert [s.tags for s in sentences] == [["I-ORG", "O"], ["I-PER"]]
    assert read_columns(path, token_column=0, tag_column=1)[0].tags == ["NNP", "VBZ"]


@pytest.mark.parametrize("text, message", [
    ("EU B-ORG\nrejects\n", r"bad\.txt:2: 1 columns, expected 2"),
    ("EU\tB-ORG\nrejects\t\n", r"bad\.txt:2: empty tag"),
    ("EU B-ORG x\nrejects O x\n", None),
    ("EU\n", r"bad\.txt:1: 1 columns, no tag column 3"),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    tag_column = 3 if text == "EU\n" else 1
    if message is None:
        assert read_columns(path, 0, tag_column)[0].tags == ["B-ORG", "O"]
    else:
        with pytest.raises(RnnlabError, match=message):
            read_columns(path, 0, tag_column)


def test_user_files_scheme_auto_and_conversion(tmp_path):
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text("EU I-ORG\nsaid O\n\nBonn I-LOC\n", encoding="utf-8")
    valid.write_text("Peter I-PER\nBlackburn I-PER\n", encoding="utf-8")
    data = load_tag_data(TagConfig(corpus=None, train=str(train), valid=str(valid)))
    assert data.scheme == "bio" and data.train[0].tags == ["B-ORG", "O"]
    bioes = load_tag_data(TagConfig(corpus=None, train=str(train), valid=str(valid),
                                    scheme="bioes"))
    assert bioes.valid[0].tags == ["B-PER", "E-PER"] and bioes.test is None
    pos = tmp_path / "pos.txt"
    pos.write_text("EU NNP\n", encoding="utf-8")
    assert load_tag_data(TagConfig(corpus=None, train=str(pos), valid=str(pos))).scheme == "none"
    with pytest.raises(RnnlabError, match="'NNP' is not O or B-"):
        load_tag_data(TagConfig(corpus=None, train=str(pos), valid=str(pos), scheme="bio"))
    with pytest.raises(RnnlabError, match="--valid"):
        load_tag_data(TagConfig(corpus=None, train=str(pos)))


def _have(corpus: str) -> bool:
    try:
        corpus_files(corpus)
    except RnnlabError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _have("conll2003"), reason="conll2003 not in the data directory")
def test_conll2003_counts_match_the_data_readme():
    data = load_tag_data(TagConfig(corpus="conll2003", scheme="bio"))
    assert (len(data.train), len(data.valid), len(data.test)) == (14041, 3250, 3453)
    entities = {k: sum(t == "B-" + k for s in data.train for t in s.tags)
                for k in ("PER", "ORG", "LOC", "MISC")}
    assert entities == {"PER": 6600, "ORG": 6321, "LOC": 7140, "MISC": 3438}


@pytest.mark.skipif(not _have("ud-english-ewt"), reason="ud-english-ewt not in the data dir")
def test_ud_test_counts_match_the_data_readme():
    test = read_conllu(corpus_files("ud-english-ewt")["en_ewt-ud-test.conllu"])
    assert len(test) == 2077 and sum(len(s.words) for s in test) == 25094
