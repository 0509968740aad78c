"""`python -m zoo.health --ckpt PATH [--out DIR] [--samples N] [--views Q] [data.KEY=VALUE ...]`: every label-free
health metric of a checkpoint, written to health.json with the spectrum pictures (zoo/eval/health.py)."""

import sys

from zoo.arguments import check_evaluation_arguments
from zoo.errors import exit_on_user_error

if __name__ == "__main__":
    exit_on_user_error(check_evaluation_arguments)(sys.argv[1:])  # a missing checkpoint in a second, before torch
    from zoo.eval.health import main

    main()
