"""``python -m minimal``: list the modules that have a command line.

Each trainer runs as its own module, ``python -m minimal.<module> --preset laptop``, so
this prints their names and exits with status 0.  Given any argument other than
``-h``/``--help`` it prints one line saying so and exits with status 2, like the
trainers do for input they cannot use.
"""

import sys

from minimal.core.config import command_line_modules


def list_trainers(argv: list[str]) -> int:
    names = command_line_modules()
    if argv and argv[0] not in ("-h", "--help"):
        print(f"python -m minimal: error: unexpected {argv[0]!r}; run a trainer as "
              f"python -m minimal.<module> [--preset NAME] [--set KEY=VALUE ...], one of "
              f"{', '.join(names)}", file=sys.stderr)
        return 2
    print("usage: python -m minimal.<module> [--preset NAME] [--set KEY=VALUE ...] [--help]")
    print("modules with a command line:")
    for name in names:
        print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(list_trainers(sys.argv[1:]))
