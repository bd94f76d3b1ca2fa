"""Demo SavedModels (digit detector and classifiers) built from scikit-learn's load_digits()."""
