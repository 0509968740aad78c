"""Self-supervised pretraining: python main_pretrain.py [hydra overrides]."""

import sys

from zoo.arguments import check_pretrain_arguments
from zoo.errors import exit_on_user_error

if __name__ == "__main__":
    # A bad name or value on the command line fails in a second, before torch and Lightning are imported.
    exit_on_user_error(check_pretrain_arguments)(sys.argv[1:])
    from zoo.pretrain import main

    main()
