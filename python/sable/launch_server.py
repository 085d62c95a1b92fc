"""python -m sable.launch_server --model-path ... : `sable serve` from Python.

The same C++ code as the sable binary's serve command runs (through the binding), with the same
flags (--help lists them), YAML config, warm-up, signals and exit codes."""

import sys

from sable import _sable


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return _sable.serve_main("python -m sable.launch_server", args)


if __name__ == "__main__":
    sys.exit(main())
