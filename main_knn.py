"""Offline k-NN sweep: python main_knn.py --ckpt PATH [data overrides]."""

from zoo.eval.cli import main_knn

if __name__ == "__main__":
    main_knn()
