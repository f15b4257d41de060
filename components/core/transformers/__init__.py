"""The transformers a model holds beside scikit-learn's own (each one in the model file's
trusted types): outliers, categories, text, calendar, time series, truncated SVD."""
