"""Functions of features that training's online validation and the evaluations both compute: the k-NN
vote, the covariance spectrum, label-free health metrics, per-stage spectra and the 2-D embedding picture."""
