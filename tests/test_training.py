"""The check that ids, labels and masks line up: a tiny causal LM learns from the train split."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from conftest import run_doit
from pipeline import load_split
from pipeline.merge.tensors import IGNORE_INDEX


class TinyCausalLM(nn.Module):
    """Embedding, one GRU layer (causal by construction), a projection to the vocabulary."""

    def __init__(self, vocab: int, width: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.rnn = nn.GRU(width, width, batch_first=True)
        self.head = nn.Linear(width, vocab)

    def forward(self, input_ids):
        hidden, _ = self.rnn(self.embed(input_ids))
        return self.head(hidden)


def causal_lm_loss(logits, labels):
    """Next-token loss, shifted as Hugging Face models do it; -100 labels are ignored."""
    return nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                       labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)


def test_a_tiny_model_trained_on_the_sample_train_split_lowers_its_loss(workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}", "max_length=1024", "budget_new=512",
                    "budget_old=256")[0] == 0
    train = load_split(workdir / "dataset", "train")
    batch = next(iter(DataLoader(train, batch_size=4)))
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].dtype == torch.int64 and batch["input_ids"].shape == (4, 1024)
    assert len(train) == len(train.commit_sha)

    torch.manual_seed(0)
    vocab = max(int(part["input_ids"].max()) for part in train.parts) + 1
    model = TinyCausalLM(vocab)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    length = max(int(part["attention_mask"].sum(dim=1).max())   # skip all-padding columns
                 for part in train.parts)
    losses = []
    loader = DataLoader(train, batch_size=8, shuffle=True)
    while len(losses) < 150:
        for batch in loader:
            loss = causal_lm_loss(model(batch["input_ids"][:, :length]),
                                  batch["labels"][:, :length])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.5 * first, (first, last)
    print(f"loss {first:.2f} -> {last:.2f} over {len(losses)} steps")
