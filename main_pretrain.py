"""Self-supervised pretraining: python main_pretrain.py [hydra overrides]."""

from zoo.pretrain import main

if __name__ == "__main__":
    main()
