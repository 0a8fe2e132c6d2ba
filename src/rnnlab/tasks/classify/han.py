"""Hierarchical attention network (Yang et al. 2016, "Hierarchical Attention Networks for
Document Classification", section 2): words build sentences, sentences build the document.

    word encoder      h_it = BiRNN(W_e w_it)                                   (sec. 2.2)
    word attention    u_it = tanh(W_w h_it + b_w),  a_it = softmax_t(u_it^T u_w),
                      s_i = sum_t a_it h_it                                    (eq. 5-7)
    sentence encoder  h_i = BiRNN(s_i)                                         (eq. 8-9)
    sentence attention u_i = tanh(W_s h_i + b_s),  a_i = softmax_i(u_i^T u_s),
                      v = sum_i a_i h_i                                        (eq. 8-10)
    classifier        p = softmax(W_c v + b_c)                                 (eq. 11)

u_w and u_s are the learned context vectors: `AttentionPooling.score` (a bias-free linear map
to one unit) holds each. The paper's encoder is a GRU; any rnnlab cell works (`--cell`).

Masks at both levels: padding words get -inf before the word softmax and are beyond each
sentence's length in the word RNN; padding sentences are never encoded (only the batch's real
sentences are gathered, all of them into ONE call of the word RNN with their lengths), get -inf
before the sentence softmax and are beyond each document's length in the sentence RNN.

Shape legend: B documents, N sentences (the most of the batch), W words (the longest
sentence), M real sentences of the batch, E embedding, S = D*H state size, C classes.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from rnnlab.nn.factory import make_recurrent
from rnnlab.tasks.classify.config import ClassifyConfig
from rnnlab.tasks.classify.model import AttentionPooling, _head, _SentenceModel, length_mask


class HierarchicalAttention(_SentenceModel):
    """`forward(tokens, sentence_counts, word_lengths)` -> logits (B, C) and the attention:
    (sentence weights (B, N), word weights (B, N, W)), zero at padding."""

    def __init__(self, vocab_size: int, num_classes: int, config: ClassifyConfig) -> None:
        super().__init__(vocab_size, config)
        directions = 2 if config.bidirectional else 1
        state = config.hidden * directions
        attention = config.attention_size or state

        def encoder(input_size: int):
            return make_recurrent(config.cell, input_size, config.hidden, config.layers,
                                  dropout=config.dropout, bidirectional=config.bidirectional,
                                  batch_first=True, impl=config.impl)

        self.word_rnn = encoder(config.embedding_size)
        self.word_attention = AttentionPooling(state, attention)  # its `score` is u_w
        self.sentence_rnn = encoder(state)
        self.sentence_attention = AttentionPooling(state, attention)  # its `score` is u_s
        self.head = _head(state, config.mlp_hidden, num_classes, config.dropout)

    def forward(self, tokens: Tensor, sentence_counts: Tensor, word_lengths: Tensor
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """tokens (B, N, W), sentence_counts (B,), word_lengths (B, N) -> logits (B, C)."""
        batch, sentences, words = tokens.shape
        sentence_counts = sentence_counts.to(tokens.device)
        real = length_mask(sentence_counts, sentences)  # (B, N)
        lengths = word_lengths.to(tokens.device)[real]  # (M,)
        x = self.dropout(self.embed(tokens[real]))  # (M, W, E)
        h, _ = self.word_rnn(x, lengths=lengths.cpu())  # (M, W, S): all sentences, one call
        s, word_weights = self.word_attention(h, lengths)  # (M, S), (M, W)
        sentence_vectors = h.new_zeros(batch, sentences, h.shape[-1])  # (B, N, S)
        sentence_vectors[real] = s
        out, _ = self.sentence_rnn(self.dropout(sentence_vectors),
                                   lengths=sentence_counts.cpu())  # (B, N, S)
        v, sentence_weights = self.sentence_attention(out, sentence_counts)  # (B, S), (B, N)
        all_word_weights = word_weights.new_zeros(batch, sentences, words)  # (B, N, W)
        all_word_weights[real] = word_weights
        return self.head(self.dropout(v)), (sentence_weights, all_word_weights)

    def loss(self, tokens: Tensor, sentence_counts: Tensor, word_lengths: Tensor,
             labels: Tensor) -> Tensor:
        """Mean cross-entropy (nats per document) of the gold labels (B,)."""
        logits, _ = self(tokens, sentence_counts, word_lengths)
        return F.cross_entropy(logits, labels)

    @staticmethod
    def collate(documents: list[list[list[int]]]) -> tuple[Tensor, Tensor, Tensor]:
        """Documents of sentences of word ids -> tokens (B, N, W) padded with 0, sentence
        counts (B,), word lengths (B, N) (0 for padding sentences)."""
        counts = torch.tensor([len(doc) for doc in documents], dtype=torch.long)  # (B,)
        widest = max(len(sentence) for doc in documents for sentence in doc)
        tokens = torch.zeros(len(documents), int(counts.max()), max(widest, 1),
                             dtype=torch.long)  # (B, N, W)
        lengths = torch.zeros(tokens.shape[:2], dtype=torch.long)  # (B, N)
        for b, doc in enumerate(documents):
            for i, sentence in enumerate(doc):
                tokens[b, i, : len(sentence)] = torch.as_tensor(sentence, dtype=torch.long)
                lengths[b, i] = len(sentence)
        return tokens, counts, lengths

    @staticmethod
    def unpad_attention(attention: tuple[Tensor, Tensor], row: int, document: list[list[int]]
                        ) -> tuple[list[float], list[list[float]]]:
        """One document's weights without padding: per sentence, and per word of each."""
        sentence_weights, word_weights = attention
        return (sentence_weights[row, : len(document)].tolist(),
                [word_weights[row, i, : len(sentence)].tolist()
                 for i, sentence in enumerate(document)])
