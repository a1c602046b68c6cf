"""A tokenizer in, the layout of a row out: which token ids mark each part of an example.

The layout is StarCoder's commit format. Each marker is one of the tokenizer's own special
tokens where it has one for that role (StarCoder: `<reponame>`, `<filename>`,
`<commit_before>`, `<commit_msg>`, `<commit_after>`; StarCoder2: `<repo_name>`,
`<file_sep>`, and from its pull-request tokens `<pr_base_code>` for the code before,
`<pr_comment>` for the message, `<pr_diff>` for the change), else the marker's own name
written as plain text (`<ctx_struct>` as ordinary tokens): no token is added to a given
tokenizer unless `add_marker_tokens` asks for it. The trained tokenizer has all of them.
Padding is `<pad>` where the tokenizer has it, else the end-of-text id (padding is
masked out either way).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.chunks.pieces import ELISION

END_OF_TEXT = "<|endoftext|>"
PAD = "<pad>"
CONTEXT_KINDS = ("import", "struct", "enum", "trait", "impl", "fn", "macro", "const")
# Role -> its marker's own name, then the special tokens that can stand for it.
ROLE_TOKENS = {
    "repo": ("<reponame>", "<repo_name>"),
    "file": ("<filename>", "<file_sep>"),
    "before": ("<commit_before>", "<pr_base_code>"),
    "message": ("<commit_msg>", "<pr_comment>"),
    "after": ("<commit_after>", "<pr_diff>"),
    **{f"ctx_{kind}": (f"<ctx_{kind}>",) for kind in CONTEXT_KINDS},
}
# The markers the trained tokenizer has as special tokens (and add_marker_tokens adds).
MARKER_TOKENS = [END_OF_TEXT, PAD] + [names[0] for names in ROLE_TOKENS.values()]


@dataclass(frozen=True)
class Layout:
    ids: dict          # role -> marker token ids (one id for a special token)
    texts: dict        # role -> the marker as it reads in decoded text
    special: dict      # role -> whether the marker is a special token
    end_id: int
    pad_id: int
    # Tokens holding a line break (byte-level BPE's `Ċ`): an import list over its budget is
    # cut after the last of them that fits, a valid list of whole `use` lines.
    line_end_ids: frozenset = frozenset()
    # The elision marker `// …` on a line of its own: it ends an import list cut there.
    elision_ids: tuple = ()

    def context(self, kind: str) -> list:
        return self.ids[f"ctx_{kind}" if kind in CONTEXT_KINDS else "ctx_fn"]

    def describe(self) -> dict:
        """For manifest.json: each role's marker text, whether it is special, its ids."""
        return {role: {"text": self.texts[role], "special": self.special[role],
                       "ids": self.ids[role]} for role in self.ids} | {
            "end": {"text": END_OF_TEXT, "special": True, "ids": [self.end_id]},
            "pad": {"id": self.pad_id}}


def layout_of(tokenizer) -> Layout:
    ids, texts, special = {}, {}, {}
    for role, names in ROLE_TOKENS.items():
        found = next((name for name in names if tokenizer.token_to_id(name) is not None), None)
        special[role] = found is not None
        texts[role] = found or names[0]
        ids[role] = [tokenizer.token_to_id(found)] if found else \
            tokenizer.encode(names[0], add_special_tokens=False).ids
    end_id = tokenizer.token_to_id(END_OF_TEXT)
    pad_id = tokenizer.token_to_id(PAD)
    line_end_ids = frozenset(token_id for token, token_id in tokenizer.get_vocab().items()
                             if "\n" in token or "Ċ" in token)
    elision_ids = tuple(tokenizer.encode(ELISION, add_special_tokens=False).ids)
    return Layout(ids, texts, special, end_id, end_id if pad_id is None else pad_id,
                  line_end_ids, elision_ids)

