"""Loading rule and menu YAML files for the operator CLI, with errors that name the file and line.

``load_yaml`` keeps the line of every field (from yaml's node marks), so a ``RuleError`` or ``MenuError``
path such as ``rules[3].keywords[0]`` becomes ``rules/example.yaml:42: rules[3].keywords[0]: …``.
Duplicate keys, which plain YAML loading silently merges, are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from wxloop.domain.menu import Menu, MenuError
from wxloop.domain.rules import RuleError, RuleSet

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FileError(ValueError):
    """A problem in a file, at a line (1-based; 0 when the whole file is concerned)."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


@dataclass
class Loaded:
    """A parsed YAML file: its data and the line of every field path."""

    file: str
    data: object
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, path: str) -> int:
        """The line of ``path`` or of its nearest parent that is in the file (1 if none is)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return 1

    def error(self, path: str, message: str) -> FileError:
        return FileError(self.file, self.line_of(path), f"{path}: {message}" if path else message)


def _walk(node: yaml.Node, path: str, lines: dict[str, int], file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise FileError(file, line, f"duplicate key {key!r} (first on line {seen[key]})")
            seen[key] = line
            child = f"{path}.{key}" if path else str(key)
            lines[child] = line
            _walk(value_node, child, lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, file)


def load_yaml(path: str | Path) -> Loaded:
    """Parse a YAML file; raises :class:`FileError` for unreadable files, syntax errors, duplicate keys."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileError(file, 0, f"cannot read: {exc}") from None
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise FileError(file, 0, "the file is empty")
        lines: dict[str, int] = {}
        _walk(node, "", lines, file)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise FileError(file, line, f"YAML: {message}") from None
    except yaml.YAMLError as exc:
        raise FileError(file, 0, f"YAML: {exc}") from None
    finally:
        loader.dispose()
    return Loaded(file, data, lines)


def load_rule_set(
    path: str | Path, *, app_id: str | None = None, version: str | None = None
) -> tuple[RuleSet, Loaded]:
    """Load and compile a rule-set file; errors become :class:`FileError` with the offending line."""
    loaded = load_yaml(path)
    if not isinstance(loaded.data, dict):
        raise FileError(loaded.file, 1, "the top level must be a mapping")
    try:
        rules = RuleSet.compile(loaded.data, version=version, app_id=app_id)
    except RuleError as exc:
        raise loaded.error(exc.path, exc.message) from None
    return rules, loaded


def load_menu_model(path: str | Path) -> tuple[Menu, Loaded]:
    """Load and validate a menu file; errors become :class:`FileError` with the offending line."""
    loaded = load_yaml(path)
    if not isinstance(loaded.data, dict):
        raise FileError(loaded.file, 1, "the top level must be a mapping")
    try:
        menu = Menu.from_doc(loaded.data)
    except MenuError as exc:
        raise loaded.error(exc.path, exc.message) from None
    return menu, loaded
