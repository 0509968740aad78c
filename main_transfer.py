"""Transfer, few-shot and shift evaluation: python main_transfer.py --ckpt PATH [suite=many_shot|few_shot|shift] [overrides]."""

from zoo.eval.cli import main_transfer

if __name__ == "__main__":
    main_transfer()
