"""Linear evaluation: python main_linear.py --ckpt PATH [overrides]."""

from zoo.eval.cli import main_linear

if __name__ == "__main__":
    main_linear()
