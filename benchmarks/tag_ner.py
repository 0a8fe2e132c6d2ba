"""CoNLL-2003 English NER: BiLSTM-CRF vs BiLSTM-softmax with char BiLSTM features, from random
word embeddings, in the same setting (Lample et al. 2016's architecture, Huang et al. 2015's
random-embedding anchor).

Model: word embedding 100 + char BiLSTM 2x25 over 25-dim char embeddings -> word BiLSTM 2x100,
dropout 0.5, singletons -> <unk> with probability 0.5; tags read as IOB1, trained as BIO
(--scheme), CRF with BIO constraints. Adam lr 2e-3, clip 5, batch 16, lr halved when dev F1 does
not improve; early stopping on dev (testa) entity F1; the best dev checkpoint is tested on testb.
Entity F1 is seqeval's strict IOB2 score of both sides converted to BIO (the CoNLL script's
reading). A wall-clock budget (--minutes, per model) bounds each run on this shared CPU.

Usage: python benchmarks/tag_ner.py [--models crf softmax] [--minutes 25] [--threads 1]
Writes benchmarks/results/tag_ner.{json,md} (after each model); runs in runs/bench-tag-ner-*.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from rnnlab.tasks.tag.config import TagConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tag_pos import parser, train_one, write_results  # noqa: E402

LABELS = {"crf": "BiLSTM-CRF, char BiLSTM (rnnlab)", "softmax": "BiLSTM-softmax, char BiLSTM "
          "(rnnlab)"}
REFERENCE = ("Huang et al. 2015 BiLSTM-CRF, random embeddings: 84.26; Lample et al. 2016 "
             "LSTM-CRF with pretrained embeddings: 90.94 (target >= 86.0)")


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["crf", "softmax"], choices=tuple(LABELS))
    p.add_argument("--scheme", default="bio", choices=("bio", "bioes"))
    p.add_argument("--lowercase", action="store_true",
                   help="look words up lower-cased (the char BiLSTM still sees the case)")
    p.add_argument("--zero-digits", action="store_true",
                   help="look words up with every digit replaced by 0 (Lample et al. 2016)")
    p.add_argument("--hidden", type=int, default=100, help="word BiLSTM units per direction")
    p.add_argument("--layers", type=int, default=1, help="stacked word BiLSTM layers")
    p.add_argument("--word-embedding", type=int, default=100, help="word embedding size")
    p.add_argument("--char-features", default="lstm", choices=("lstm", "cnn"))
    p.add_argument("--char-embedding", type=int, default=25, help="char embedding size")
    p.add_argument("--char-hidden", type=int, default=25,
                   help="char BiLSTM units each way, or CNN filters")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--name", default="",
                   help="suffix of the results files and run folders (a variant's own name)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for name in args.models:
        config = TagConfig(corpus="conll2003", scheme=args.scheme,
                           char_features=args.char_features, crf=name == "crf",
                           lowercase=args.lowercase, zero_digits=args.zero_digits,
                           hidden=args.hidden, layers=args.layers,
                           word_embedding_size=args.word_embedding,
                           char_embedding_size=args.char_embedding, char_hidden=args.char_hidden,
                           dropout=args.dropout, batch_size=args.batch_size)
        results[LABELS[name]] = train_one(f"ner-{name}{args.name}", config, args)
        write_results(f"ner{args.name}", "CoNLL-2003 English NER (test = testb)", results,
                      REFERENCE, args)


if __name__ == "__main__":
    main()
