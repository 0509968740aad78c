"""Linear evaluation: python main_linear.py --ckpt PATH [overrides]."""

import sys

from zoo.arguments import check_evaluation_arguments
from zoo.errors import exit_on_user_error

if __name__ == "__main__":
    exit_on_user_error(check_evaluation_arguments)(sys.argv[1:])  # missing data or checkpoint in a second, before torch
    from zoo.eval.cli import main_linear

    main_linear()
