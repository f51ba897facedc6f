"""Anthropic-defined client tools (`bash_*`, `text_editor_*`, `computer_*`, `memory_*`) as
OpenAI functions.

These tools carry a versioned `type` and no `input_schema`, like server tools, but the
client executes them: Claude knows their schema, a local model does not. Stripping them, as
server tools are stripped, would silently take a tool away from the model; forwarding them
schema-less makes a function the model cannot call correctly (checklist §D, items 17 and 48).
So each gets the input schema Anthropic documents for it ("Bash tool", "Text editor tool",
"Computer use tool", "Memory tool" in the tool-use docs) and a description saying what it
does. The model's calls come back as ordinary `tool_use` blocks under the tool's own name.
"""

from __future__ import annotations

from typing import Any

from continuum_cli.wire.anthropic import ToolDef

Schema = dict[str, Any]

_STRING: Schema = {"type": "string"}
_INTEGER: Schema = {"type": "integer"}
_RANGE: Schema = {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}


def _object(properties: Schema, required: list[str]) -> Schema:
    return {"type": "object", "properties": properties, "required": required}


def _command(*names: str) -> Schema:
    return {"type": "string", "enum": list(names)}


_BASH = _object({
    "command": {**_STRING, "description": "The shell command to run."},
    "restart": {"type": "boolean", "description": "Restart the shell session instead."},
}, [])

_EDITOR_FIELDS: Schema = {
    "path": {**_STRING, "description": "Absolute path of the file or directory."},
    "file_text": {**_STRING, "description": "Content of the new file (create)."},
    "old_str": {**_STRING, "description": "Exact text to replace, unique in the file "
                                          "(str_replace)."},
    "new_str": {**_STRING, "description": "Replacement text (str_replace), or the text to "
                                          "insert (insert)."},
    "insert_line": {**_INTEGER, "description": "Insert after this line; 0 is the start "
                                               "(insert)."},
    "view_range": {**_RANGE, "description": "First and last line to show, 1-based; -1 for "
                                            "the end (view)."},
}

_MEMORY_FIELDS: Schema = {
    **_EDITOR_FIELDS,
    "insert_text": {**_STRING, "description": "The text to insert (insert)."},
    "old_path": {**_STRING, "description": "Path to rename (rename)."},
    "new_path": {**_STRING, "description": "New path (rename)."},
}

_COMPUTER_ACTIONS = (
    "key", "type", "mouse_move", "left_click", "left_click_drag", "right_click",
    "middle_click", "double_click", "triple_click", "screenshot", "cursor_position",
    "scroll", "left_mouse_down", "left_mouse_up", "hold_key", "wait",
)
_COMPUTER = _object({
    "action": {**_command(*_COMPUTER_ACTIONS), "description": "What to do."},
    "coordinate": {**_RANGE, "description": "[x, y] in screen pixels."},
    "text": {**_STRING, "description": "Text to type, or the key combination (e.g. ctrl+s)."},
    "scroll_direction": _command("up", "down", "left", "right"),
    "scroll_amount": _INTEGER,
    "duration": {"type": "number", "description": "Seconds (hold_key, wait)."},
}, ["action"])


def _editor(version: str) -> Schema:
    # the 2025-04 and later editors dropped undo_edit
    commands = ["view", "create", "str_replace", "insert"]
    if version < "20250429":
        commands.append("undo_edit")
    return _object({"command": _command(*commands), **_EDITOR_FIELDS}, ["command", "path"])


_MEMORY = _object({
    "command": _command("view", "create", "str_replace", "insert", "delete", "rename"),
    **_MEMORY_FIELDS,
}, ["command"])

_DESCRIPTIONS = {
    "bash": "Run a command in a persistent bash shell and return its output.",
    "text_editor": "View, create and edit text files: view a file (with line numbers) or a "
                   "directory, create a file, replace a unique string, insert text after a "
                   "line.",
    "computer": "Control the computer's screen, mouse and keyboard; take screenshots.",
    "memory": "Read and write files in the persistent /memories directory to keep what "
              "should be remembered across conversations.",
}


def builtin_function(tool: ToolDef) -> tuple[str, Schema]:
    """(description, parameters) of an Anthropic-defined client tool (`tool.builtin_kind` is
    set). A computer's display size is part of the tool definition the model must know."""
    kind, version = str(tool.builtin_kind), str(tool.type).rpartition("_")[2]
    description = tool.description or _DESCRIPTIONS[kind]
    extra = tool.model_extra or {}
    if kind == "computer" and extra.get("display_width_px"):
        description += (f" The display is {extra['display_width_px']}x"
                        f"{extra.get('display_height_px', '?')} pixels.")
    schemas = {"bash": _BASH, "computer": _COMPUTER, "memory": _MEMORY}
    return description, schemas[kind] if kind in schemas else _editor(version)
