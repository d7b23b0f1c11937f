"""``gpufleet completion bash|zsh|fish``: shell completion scripts, generated from the parser.

The commands, their flags and choices are read from the ``argparse`` tree itself, and the
``--filter`` values (``FIELD`` followed by each operator the field allows) and ``--sort`` fields
from the workload field catalogue, so nothing here lists them a second time. The scripts are
static: pressing Tab never starts Python.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from gpufleet.client.usage_commands import GROUPINGS
from gpufleet.core.workload_fields import ALLOWED_OPERATORS, QUERY_FIELDS, Operator
from gpufleet.schemas.enums import Phase
from gpufleet.store.telemetry import TelemetryGroupBy

SHELLS = ("bash", "zsh", "fish")


def filter_candidates() -> list[str]:
    """``FIELD`` followed by each operator the field allows, e.g. ``phase==``, ``phase=@``."""
    return [
        f"{f.name}{operator.value}"
        for f in QUERY_FIELDS
        for operator in sorted(ALLOWED_OPERATORS[f.kind], key=list(Operator).index)
        if f.filterable
    ]


# Values of flags that take a value but have no ``choices``, by their destination.
VALUE_CANDIDATES: dict[str, Callable[[], list[str]]] = {
    "filter": filter_candidates,
    "sort": lambda: [f.name for f in QUERY_FIELDS if f.sortable],
    "group_by": lambda: [group.value for group in TelemetryGroupBy],
    "usage_group_by": lambda: list(GROUPINGS),
    "phase": lambda: [phase.value for phase in Phase],
}


@dataclass
class CommandNode:
    """What can follow one command path (``""``, ``"workloads"``, ``"workloads list"``)."""

    path: str
    subcommands: list[str] = field(default_factory=list)
    positionals: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    # Flags that take a value, with the candidates for it (empty: anything, e.g. a file).
    values: dict[str, list[str]] = field(default_factory=dict)


def command_tree(parser: argparse.ArgumentParser, path: str = "") -> Iterator[CommandNode]:
    """Every command path of the parser, depth first."""
    node = CommandNode(path)
    children = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                node.subcommands.append(name)
                children.append((f"{path} {name}".strip(), child))
        elif action.option_strings:
            node.flags.extend(action.option_strings)
            if action.nargs != 0:
                candidates = _candidates(action)
                for flag in action.option_strings:
                    node.values[flag] = candidates
        elif action.choices:
            node.positionals.extend(str(choice) for choice in action.choices)
    yield node
    for child_path, child in children:
        yield from command_tree(child, child_path)


def _candidates(action: argparse.Action) -> list[str]:
    if action.choices:
        return [str(choice) for choice in action.choices]
    source = VALUE_CANDIDATES.get(action.dest)
    return source() if source else []


def _words(values: list[str]) -> str:
    return shlex.quote(" ".join(values))


def _shell_functions(nodes: list[CommandNode]) -> str:
    """The data as shell functions; the same text runs in bash and in zsh."""
    lines = ["_gpufleet_subcommands() {", '    case "$1" in']
    lines += [f"        {shlex.quote(n.path)}) echo {_words(n.subcommands)} ;;" for n in nodes]
    lines += ["    esac", "}", "_gpufleet_positionals() {", '    case "$1" in']
    lines += [f"        {shlex.quote(n.path)}) echo {_words(n.positionals)} ;;" for n in nodes]
    lines += ["    esac", "}", "_gpufleet_flags() {", '    case "$1" in']
    lines += [f"        {shlex.quote(n.path)}) echo {_words(n.flags)} ;;" for n in nodes]
    lines += ["    esac", "}"]
    lines += [
        "# Candidates for the value of flag $2 under command path $1; fails when $2 takes none.",
        "_gpufleet_values() {",
        '    case "$1|$2" in',
    ]
    for node in nodes:
        for flag, candidates in node.values.items():
            key = shlex.quote(f"{node.path}|{flag}")
            lines.append(f"        {key}) echo {_words(candidates)} ;;")
    lines += ["        *) return 1 ;;", "    esac", "}"]
    return "\n".join(lines) + "\n"


_BASH_DRIVER = r"""
# Completion of gpufleet for bash: source <(gpufleet completion bash)
_gpufleet() {
    # bash splits words at '=' and ':'; read the word being completed from the line instead.
    local line="${COMP_LINE:0:COMP_POINT}"
    local cur="${line##*[[:space:]]}"
    local before="${line%"$cur"}"
    before="${before%"${before##*[![:space:]]}"}"
    local prev="${before##*[[:space:]]}"
    local cmdpath="" word i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        case " $(_gpufleet_subcommands "$cmdpath") " in
            *" $word "*) cmdpath="${cmdpath:+$cmdpath }$word" ;;
        esac
    done
    local candidates
    if ! candidates="$(_gpufleet_values "$cmdpath" "$prev")"; then
        if [[ "$cur" == -* ]]; then
            candidates="$(_gpufleet_flags "$cmdpath")"
        else
            candidates="$(_gpufleet_subcommands "$cmdpath") $(_gpufleet_positionals "$cmdpath")"
        fi
    fi
    COMPREPLY=($(compgen -W "$candidates" -- "$cur"))
    # Only the part after the last '=' or ':' is replaced by bash: drop what comes before it.
    local tail="${cur##*[=:]}"
    local head="${cur%"$tail"}"
    if [[ -n "$head" ]]; then
        COMPREPLY=("${COMPREPLY[@]#"$head"}")
    fi
    # A filter candidate ends in its operator: the value is typed right after it.
    if [[ ${#COMPREPLY[@]} -gt 0 && "${COMPREPLY[0]}" == *[=\<\>@^$] ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}
complete -o default -F _gpufleet gpufleet
"""

_ZSH_DRIVER = r"""
# Completion of gpufleet for zsh: source <(gpufleet completion zsh), after compinit.
_gpufleet() {
    local cur="${words[CURRENT]}" prev="${words[CURRENT-1]}" cmdpath="" word candidates
    for word in "${(@)words[2,CURRENT-1]}"; do
        if [[ " $(_gpufleet_subcommands "$cmdpath") " == *" $word "* ]]; then
            cmdpath="${cmdpath:+$cmdpath }$word"
        fi
    done
    if ! candidates="$(_gpufleet_values "$cmdpath" "$prev")"; then
        if [[ "$cur" == -* ]]; then
            candidates="$(_gpufleet_flags "$cmdpath")"
        else
            candidates="$(_gpufleet_subcommands "$cmdpath") $(_gpufleet_positionals "$cmdpath")"
        fi
    fi
    local -a items open
    items=(${=candidates})
    # A filter candidate ends in its operator: no space after it, the value follows.
    open=(${(M)items:#*[=<>@^$]})
    items=(${items:#*[=<>@^$]})
    (( ${#open} )) && compadd -S '' -- "${open[@]}"
    (( ${#items} )) && compadd -- "${items[@]}"
    return 0
}
if (( $+functions[compdef] )); then
    compdef _gpufleet gpufleet
else
    print -u2 "gpufleet completion: run 'autoload -Uz compinit && compinit' first"
fi
"""


def bash_script(parser: argparse.ArgumentParser) -> str:
    return _shell_functions(list(command_tree(parser))) + _BASH_DRIVER


def zsh_script(parser: argparse.ArgumentParser) -> str:
    return _shell_functions(list(command_tree(parser))) + _ZSH_DRIVER


def _fish_lists(name: str, lists: dict[str, list[str]]) -> list[str]:
    """A fish function printing, one a line, the list its one argument names; the words are
    printed, never evaluated, so ``<``, ``$`` and ``=`` in operators stay as they are."""
    lines = [f"function {name} --argument-names key", "    switch $key"]
    for key, words in lists.items():
        lines.append(f"        case {shlex.quote(key)}")
        if words:
            lines.append("            printf '%s\\n' " + " ".join(shlex.quote(w) for w in words))
    return [*lines, "    end", "end"]


def fish_script(parser: argparse.ArgumentParser) -> str:
    """``complete`` rules, each guarded by the command path typed so far."""
    nodes = list(command_tree(parser))
    values = {f"{n.path}|{flag}": words for n in nodes for flag, words in n.values.items()}
    lines = [
        "# Completion of gpufleet for fish: gpufleet completion fish | source",
        *_fish_lists("__gpufleet_subcommands", {n.path: n.subcommands for n in nodes}),
        *_fish_lists("__gpufleet_words", {n.path: n.subcommands + n.positionals for n in nodes}),
        *_fish_lists("__gpufleet_values", values),
        "function __gpufleet_at --description 'is the command path typed so far $argv[1]?'",
        "    set -l cmdpath ''",
        "    for token in (commandline -opc)[2..-1]",
        "        if contains -- $token (__gpufleet_subcommands $cmdpath)",
        '            set cmdpath (string trim -- "$cmdpath $token")',
        "        end",
        "    end",
        '    test "$cmdpath" = "$argv[1]"',
        "end",
        "complete -c gpufleet -f",
    ]
    for node in nodes:
        at = shlex.quote(f"__gpufleet_at {shlex.quote(node.path)}")
        if node.subcommands or node.positionals:
            words = shlex.quote(f"(__gpufleet_words {shlex.quote(node.path)})")
            lines.append(f"complete -c gpufleet -n {at} -a {words}")
        for flag in node.flags:
            option = f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}"
            rule = f"complete -c gpufleet -n {at} {option}"
            if node.values.get(flag):
                key = shlex.quote(f"{node.path}|{flag}")
                rule += " -x -a " + shlex.quote(f"(__gpufleet_values {key})")
            elif flag in node.values:
                rule += " -r -F"  # a free value, often a file
            lines.append(rule)
    return "\n".join(lines) + "\n"


SCRIPTS: dict[str, Callable[[argparse.ArgumentParser], str]] = {
    "bash": bash_script,
    "zsh": zsh_script,
    "fish": fish_script,
}


def register(commands: argparse._SubParsersAction, root: argparse.ArgumentParser) -> None:
    """Add ``completion SHELL``, which prints the script for the whole ``root`` parser."""
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description=(
            "Print a completion script for commands, flags, filter fields and operators. "
            "bash: source <(gpufleet completion bash); zsh (after compinit): "
            "source <(gpufleet completion zsh); fish: gpufleet completion fish | source"
        ),
    )
    completion.add_argument("shell", choices=SHELLS, help="bash, zsh or fish")

    def run(args: argparse.Namespace, _settings: object) -> int:
        print(SCRIPTS[args.shell](root), end="")
        return 0

    completion.set_defaults(handler=run)
