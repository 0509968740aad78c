"""Linear evaluation: python main_linear.py --ckpt PATH [overrides]."""

from zoo.linear import main

if __name__ == "__main__":
    main()
