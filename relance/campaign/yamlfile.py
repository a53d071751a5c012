"""A campaign's YAML, read under a budget: what a file may hold before it is parsed, and
what its anchors and aliases may expand to.

YAML lets a file name a block (`&name`) and repeat it (`*name`); nine lines that repeat
the block before them nine times each (a "billion laughs") stand for a billion values,
which `validate` spent minutes walking. A campaign file of fifty megabytes took as long
to be refused. Both are refused here, before anything walks the document:

- a file of more than `MAX_FILE_BYTES` is not parsed at all (a campaign is a few KB);
- aliases may add at most `MAX_ALIAS_VALUES` values to the document, all together
  (sharing a block a few times is fine; multiplying it is not);
- an alias inside the block it names (a loop) and nesting deeper than `MAX_DEPTH` are
  refused too, with the line where they are.

These are limits of the campaign format, not settings: a file `validate` accepts on one
machine must be accepted by every worker that runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml

MAX_FILE_BYTES = 1 << 20        # 1 MiB: the largest campaign in campaigns/ is under 5 KB
MAX_ALIAS_VALUES = 10_000       # values aliases may add to a document, all together
MAX_DEPTH = 64                  # mappings and lists in lists: a campaign is ~6 deep


class YamlRefused(Exception):
    """The file is over a budget; `line` and `column` (1-based) where known."""

    def __init__(self, message: str, mark: Any = None):
        self.message = message
        self.line = mark.line + 1 if mark is not None else None
        self.column = mark.column + 1 if mark is not None else None
        super().__init__(message)


class _BudgetedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting as it composes what each node stands for once its
    aliases are expanded."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._values: dict[int, int] = {}     # id(node) -> values it stands for, expanded
        self._added = 0                       # values added by aliases so far
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:
                values = self._values.get(id(target))
                if values is None:
                    raise YamlRefused(f"alias *{event.anchor} is inside the block it names "
                                      f"(&{event.anchor}): a loop; repeat the block's "
                                      "fields instead", event.start_mark)
                self._added += values
                if self._added > MAX_ALIAS_VALUES:
                    raise YamlRefused(
                        f"alias *{event.anchor} takes what aliases add to this file past "
                        f"{MAX_ALIAS_VALUES:,} values (its alias budget): an anchor (&) may be "
                        "repeated (*) to share a block, not to multiply it", event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlRefused(f"nested more than {MAX_DEPTH} levels deep; a campaign is a "
                              "few levels deep", self.peek_event().start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        values = self._values
        if isinstance(node, yaml.MappingNode):
            values[id(node)] = 1 + sum(values[id(k)] + values[id(v)] for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            values[id(node)] = 1 + sum(values[id(item)] for item in node.value)
        else:
            values[id(node)] = 1
        return node

    def construct_object(self, node, deep=False):
        # a date that does not exist (2026-13-45), a number of 5,000 digits: a located
        # problem like any other, not a crash
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            text = node.value if isinstance(node.value, str) else ""
            shown = (repr(text) if len(text) <= 40
                     else f"{text[:20]!r}... ({len(text):,} characters)")
            kind = (f"a date ({exc})" if node.tag == "tag:yaml.org,2002:timestamp"
                    else "a number" if node.tag in ("tag:yaml.org,2002:int",
                                                    "tag:yaml.org,2002:float") else "a value")
            raise yaml.constructor.ConstructorError(
                None, None, f"{shown} cannot be read as {kind}"
                + "; write it in quotes to keep it as text", node.start_mark) from None


def read_text(path: Path) -> str:
    """The file's text; YamlRefused if it is larger than a campaign file may be (read no
    further than that, whatever the file is), UnicodeDecodeError if it is not UTF-8."""
    with open(path, "rb") as stream:
        raw = stream.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        size = path.stat().st_size if path.is_file() else None
        raise YamlRefused(
            (f"is {size:,} bytes" if size else "is larger than that")
            + f"; a campaign file holds at most {MAX_FILE_BYTES:,} bytes (1 MiB), and a "
            "campaign needs a few KB: is this the right file? Shared fields go in "
            "_defaults.yaml")
    return raw.decode("utf-8")


def compose(text: str) -> tuple[yaml.Node | None, Callable[[], Any]]:
    """The document's node tree (with every value's line and column), from one parse, and
    the function that builds its data: called after the tree is read, since building
    merges `<<:` keys into the tree. YamlRefused over a budget, yaml.MarkedYAMLError (or
    yaml.YAMLError) if it is not YAML."""
    loader = _BudgetedLoader(text)
    try:
        node = loader.get_single_node()
    except BaseException:
        loader.dispose()
        raise

    def construct() -> Any:
        try:
            return loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    return node, construct
