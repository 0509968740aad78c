"""Offline k-NN sweep: python main_knn.py --ckpt PATH [data overrides]."""

from zoo.knn_sweep import main

if __name__ == "__main__":
    main()
